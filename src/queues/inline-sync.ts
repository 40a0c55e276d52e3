/**
 * Sync jobs made by the ingest script itself (config INGEST_SYNC_JOBS=inline, the default; one Redis
 * only, never a Cluster: docs/architecture.md "Sync dispatch"). On one Redis the show event's Lua step
 * (ShowRepository.ingestOne, INGEST_SHOW_ONE_INLINE_LUA) makes the show's sync jobs (one per enabled
 * target) in BullMQ's own Redis structures, instead of an entry in the sync-dispatch stream that the
 * dispatcher (src/mirror/sync.dispatcher.ts) turns into `addBulk` calls. Measured in
 * docs/benchmarks.md ("Ingest on one Redis: the sync job made by the ingest script itself").
 *
 * It copies BullMQ 5.81.5's `addStandardJob-9.lua` (with `deduplicateJobWithoutReplace`,
 * `storeDeduplicatedNextJob`, `storeJob`, `getTargetQueueList`, `addJobInTargetList`,
 * `getOrSetMaxEvents`) for exactly the options SyncProducer.enqueueBulk gives (syncJobOpts with no
 * delay): no custom job id (the queue's counter), no parent, no repeat, no priority, FIFO,
 * deduplication `{ id, keepLastIfActive: true }` without a ttl. It is coupled to BullMQ's internals
 * (key names, hash fields, opts short names, event stream entries, the `dn:` follow-up that
 * moveToFinished reads back), which BullMQ may change in any release: package.json pins BullMQ to the
 * exact version, and test/unit/inline-sync.bullmq-pin.test.ts fails when the scripts this copies
 * change. Before moving the pin, re-read those scripts against this file and run
 * test/integration/inline-sync.conformance.test.ts (addBulk and this side by side).
 * Its keys are named inside the script (not declared): one Redis only, never a Cluster.
 */
import { Backoffs, Job } from 'bullmq';
import { shardOf, syncJobId, syncJobOpts, syncQueueName, type SyncJob } from './queues.js';
import type { Keys } from '../store/keys.js';
import type { Platform } from '../targets/target.adapter.js';

/**
 * How a show event on one Redis asks for its syncs: `inline` (jobs made by the ingest script),
 * `dispatch` (the stream entry the dispatcher turns into jobs; always so on a Cluster). `none` (no
 * entry, no job: the upper bound) only for the bench (bench/sut/service-api.ts): syncs left to the sweep.
 */
export type IngestSyncMode = 'dispatch' | 'inline' | 'none';

/** Arguments per job the Lua fragment reads: queue key prefix, deduplication id, data JSON, opts JSON. */
export const INLINE_ARGS_PER_JOB = 4;

/**
 * Lua: after the script's own ARGV (`countArg` holds the job count, the jobs' arguments follow it,
 * INLINE_ARGS_PER_JOB each) and with `timestamp` (the caller's Date.now(), as BullMQ's `job.timestamp`),
 * adds each job as BullMQ 5.81.5's addStandardJob does for these options.
 */
export function inlineSyncAddLua(countArg: number, timestamp: string): string {
  return `for j = ${countArg + 1}, ${countArg} + ${INLINE_ARGS_PER_JOB} * tonumber(ARGV[${countArg}]), ${INLINE_ARGS_PER_JOB} do
  local qp = ARGV[j]
  local deId = ARGV[j + 1]
  local data = ARGV[j + 2]
  local opts = ARGV[j + 3]
  local evK = qp .. 'events'
  local metaK = qp .. 'meta'
  local jobId = redis.call('INCR', qp .. 'id') .. ''
  local maxEvents = redis.call('HGET', metaK, 'opts.maxLenEvents')
  if not maxEvents then
    maxEvents = 10000
    redis.call('HSET', metaK, 'opts.maxLenEvents', maxEvents)
  end
  local deK = qp .. 'de:' .. deId
  if not redis.call('SET', deK, jobId, 'NX') then
    local cur = redis.call('GET', deK)
    local nextStored = false
    if cur then
      for _, v in pairs(redis.call('LRANGE', qp .. 'active', 0, -1)) do
        if v == cur then nextStored = true break end
      end
      if nextStored then
        local dnK = qp .. 'dn:' .. deId
        redis.call('DEL', dnK)
        redis.call('HSET', dnK, 'name', 'sync', 'data', data, 'opts', opts, 'jid', jobId)
        redis.call('PERSIST', deK)
      end
    end
    -- (the same two events whether the next job was stored or not)
    redis.call('XADD', evK, 'MAXLEN', '~', maxEvents, '*', 'event', 'debounced', 'jobId', cur, 'debounceId', deId)
    redis.call('XADD', evK, 'MAXLEN', '~', maxEvents, '*', 'event', 'deduplicated', 'jobId', cur, 'deduplicationId', deId, 'deduplicatedJobId', jobId)
  else
    redis.call('HMSET', qp .. jobId, 'name', 'sync', 'data', data, 'opts', opts, 'timestamp', ${timestamp}, 'delay', 0, 'priority', 0, 'deid', deId)
    redis.call('XADD', evK, '*', 'event', 'added', 'jobId', jobId, 'name', 'sync')
    local qa = redis.call('HMGET', metaK, 'paused', 'concurrency', 'max', 'duration')
    local target = qp .. 'wait'
    local pausedOrMaxed = false
    if qa[1] then
      target = qp .. 'paused'
      pausedOrMaxed = true
    elseif qa[2] then
      pausedOrMaxed = redis.call('LLEN', qp .. 'active') >= tonumber(qa[2])
    end
    redis.call('LPUSH', target, jobId)
    if not pausedOrMaxed then redis.call('ZADD', qp .. 'marker', 0, '0') end
    redis.call('XADD', evK, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
  end
end
`;
}

const ID_PLACEHOLDER = '\u0000deduplication-id\u0000';

/**
 * The opts JSON BullMQ stores for a sync job (Job's constructor defaults, Backoffs.normalize,
 * Job.optsAsJSON's short names: `de` for deduplication), with the deduplication id spliced in.
 */
function optsTemplate(): (dedupId: string) => string {
  const opts = syncJobOpts({ partnerId: '', showId: '', targetId: '' }, 0);
  const withDefaults = { attempts: 0, ...opts, deduplication: { ...opts.deduplication, id: ID_PLACEHOLDER } };
  withDefaults.backoff = Backoffs.normalize(opts.backoff!);
  const json = JSON.stringify(Job.optsAsJSON(withDefaults));
  const [head, tail] = json.split(JSON.stringify(ID_PLACEHOLDER)) as [string, string];
  return (dedupId) => head + JSON.stringify(dedupId) + tail;
}

/** The per-job arguments of inlineSyncAddLua for a show's enabled targets. */
export class InlineSyncJobs {
  private readonly opts = optsTemplate();
  constructor(
    private readonly keys: Keys,
    private readonly shards: number,
  ) {}

  /** The BullMQ key prefix of a sync queue (`<prefix>:<name>:`, as BullMQ's QueueKeys name them). */
  queueKeyPrefix(platform: Platform, shard: number): string {
    const name = syncQueueName(platform, shard);
    return `${this.keys.queuePrefix(name)}:${name}:`;
  }

  args(partnerId: string, showId: string, targets: readonly { id: string; platform: Platform; enabled: boolean }[], requestId: string | undefined): string[] {
    const out: string[] = [];
    let shard = -1;
    for (const t of targets) {
      if (!t.enabled) continue;
      if (shard < 0) shard = shardOf(partnerId, showId, this.shards);
      // The dispatcher's job data: { ...show, targetId } with the show's first request id.
      const job: SyncJob = { partnerId, showId, targetId: t.id, ...(requestId ? { requestId } : {}) };
      const dedupId = syncJobId(job);
      out.push(this.queueKeyPrefix(t.platform, shard), dedupId, JSON.stringify(job), this.opts(dedupId));
    }
    return [String(out.length / INLINE_ARGS_PER_JOB), ...out];
  }
}

/**
 * The mode a process's ingest uses for INGEST_SYNC_JOBS (`setting`): `inline` on one Redis only; on a
 * Redis Cluster always `dispatch` (the inline script names keys of other slots, which a Cluster
 * refuses), with `ignored` set so that the start logs why.
 */
export function ingestSyncMode(setting: 'inline' | 'dispatch', cluster: boolean): { mode: 'inline' | 'dispatch'; ignored: boolean } {
  if (setting === 'inline' && cluster) return { mode: 'dispatch', ignored: true };
  return { mode: setting, ignored: false };
}
