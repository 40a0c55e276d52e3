/** BullMQ workers for the per-platform, per-shard sync queues. */
import { traced } from '../lib/request-context.js';
import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Keys } from '../store/keys.js';
import { allSyncQueueNames, type SyncJob } from '../queues/queues.js';
import { performance } from 'node:perf_hooks';
import type { LockSignal, SyncRun, SyncService } from './sync.service.js';
import { bounded, syncJobDuration } from '../lib/metrics.js';
import { PLATFORMS } from '../targets/target.adapter.js';
import { handleWorkerOutages, RedisOutageLog } from '../lib/redis-outage-log.js';
import { delayParked } from '../queues/parking.js';
import { HandBacks, handBack, handBackWhileRedisRefuses, RedisRefusedHandBack } from '../queues/hand-backs.js';
import type { CountedRun, TargetRunCap } from './target-cap.js';

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * The job's data as the producer wrote it (src/queues/queues.ts), checked without a schema library:
 * three non-empty strings, per job on the hot path. Anything else fails the job like a parse error.
 */
function syncJobOf(data: unknown): SyncJob {
  const d = data as Partial<Record<keyof SyncJob, unknown>> | null;
  if (!d || typeof d !== 'object' || !nonEmpty(d.partnerId) || !nonEmpty(d.showId) || !nonEmpty(d.targetId)) {
    throw new TypeError('sync job data must carry partnerId, showId and targetId (non-empty strings)');
  }
  return { partnerId: d.partnerId, showId: d.showId, targetId: d.targetId };
}

export interface SyncWorkerOptions {
  connection: ConnectionOptions;
  keys: Keys;
  shards: number;
  concurrency: number;
  log: Logger;
  lockMs?: number;
  /** How long a job whose run Redis refused waits before its next run (REDIS_REFUSED_RETRY_MS; src/queues/hand-backs.ts). */
  refusedRetryMs?: number;
  /**
   * After each run: what it came to (the ops console's timeline of sync attempts). Must not throw.
   * A run that ends with its last save has recorded its entry there (SyncRun.startedAt): not called for it.
   */
  onRun?: RunObserver;
  /** While Redis is down, at most one reminder line per this many ms (default 15 s; src/lib/redis-outage-log.ts). */
  outageLogIntervalMs?: number;
  /** The per-target cap on concurrent runs (SYNC_TARGET_CONCURRENCY; src/mirror/target-cap.ts); none when absent. */
  cap?: TargetRunCap;
}

export type RunObserver = (job: SyncJob, outcome: string, durationMs: number, error?: string) => Promise<void>;

/**
 * The signal of one run: AbortSignal's `abort` event for one listener at a time, without an
 * AbortController and an EventTarget per job (a visible part of the worker's CPU per sync).
 */
export class RunSignal implements LockSignal {
  aborted = false;
  private listener: (() => void) | undefined;
  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener;
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined;
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const l = this.listener;
    this.listener = undefined; // once
    l?.();
  }
}

/**
 * Runs of this process, by queue and job id, so that a lock BullMQ could not renew (the job is
 * about to be taken over) ends the run's lease at once instead of when it lapses.
 */
export class SyncRuns {
  private readonly runs = new Map<string, RunSignal>();
  start(queue: string, jobId: string | undefined): RunSignal {
    const s = new RunSignal();
    if (jobId !== undefined) this.runs.set(`${queue}\u0000${jobId}`, s);
    return s;
  }
  end(queue: string, jobId: string | undefined): void {
    if (jobId !== undefined) this.runs.delete(`${queue}\u0000${jobId}`);
  }
  lockLost(queue: string, jobIds: string[]): void {
    for (const id of jobIds) this.runs.get(`${queue}\u0000${id}`)?.abort();
  }
}

/** The duration histogram's labels of a sync queue's runs, by result. */
interface RunLabels {
  done: { platform: string; result: 'done' };
  delayed: { platform: string; result: 'delayed' };
  error: { platform: string; result: 'error' };
}

/** The labels of a sync queue (`sync-<platform>-<shard>`: its platform), worked out once per queue. */
const queueLabels = new Map<string, RunLabels>();
function labelsOf(queueName: string): RunLabels {
  let l = queueLabels.get(queueName);
  if (l === undefined) {
    const platform = bounded(/^sync-([a-z]+)-\d+$/.exec(queueName)?.[1], PLATFORMS);
    l = { done: { platform, result: 'done' }, delayed: { platform, result: 'delayed' }, error: { platform, result: 'error' } };
    queueLabels.set(queueName, l);
  }
  return l;
}

/**
 * `cap`: a run of a slow target at its cap is not run, its job is delayed and parked (woken when a run
 * of that target ends here). `closing`: true once the workers close; a held-back job then waits out its delay.
 * `handBacks`: the workers', through which a job is moved to delayed (src/queues/hand-backs.ts).
 */
export function createSyncProcessor(
  service: SyncService,
  runs: SyncRuns = new SyncRuns(),
  onRun?: RunObserver,
  cap?: TargetRunCap,
  closing: () => boolean = () => false,
  handBacks?: HandBacks,
) {
  return async (job: Job<SyncJob>, token?: string): Promise<string> => {
    const data = syncJobOf(job.data);
    const labels = labelsOf(job.queueName);
    let counted: CountedRun | null | undefined;
    if (cap) {
      // The queue's platform is the target's: its own timeout (PLATFORM_TIMEOUTS_MS) sets when a run is slow.
      counted = await cap.enter(data.targetId, token, labels.done.platform);
      if (counted === null) {
        // Not a run (no timeline entry, no duration): the job waits for a slot of its target.
        const untilMs = Date.now() + cap.parkMs();
        const park = (jobId: string, wake: () => Promise<boolean>): void => {
          if (!closing()) cap.park(data.targetId, jobId, untilMs, wake);
        };
        return delayParked(job, token, untilMs, `target ${data.targetId} is slow and at its cap of concurrent sync runs`, park, handBacks);
      }
    }
    // The job's lock token is the run's identity: a takeover after a stall has a new one, and the
    // intents it owns are fenced against the stalled run (src/store/intent.repository.ts).
    const signal = runs.start(job.queueName, job.id);
    // One observe per run with labels made once per queue (the histogram's startTimer makes two
    // closures, an hrtime pair and a merged label object per run).
    const p0 = performance.now();
    const t0 = Date.now();
    const run: SyncRun = { signal };
    if (token) run.token = token;
    // With an observer, a run that ends with its last save records itself there (outcome.recorded).
    if (onRun) run.startedAt = t0;
    let outcome;
    try {
      // Redis full or refusing (OOM, READONLY, …): the job waits and runs again (its intents make the
      // re-run safe), its attempts untouched; before, each such run was one of its 10.
      outcome = await handBackWhileRedisRefuses(job, token, handBacks, () => service.sync(data, run));
      syncJobDuration.observe(outcome.kind === 'delay' ? labels.delayed : labels.done, (performance.now() - p0) / 1000);
    } catch (err) {
      if (err instanceof DelayedError) {
        syncJobDuration.observe(labels.delayed, (performance.now() - p0) / 1000);
        // Not when Redis refused the run: its record (an XADD) would be refused too, and each such
        // hand-back (every 5 s per job for the whole outage) logged 'could not record a sync run'.
        if (!(err instanceof RedisRefusedHandBack)) await onRun?.(data, 'delayed', Date.now() - t0, err.message);
        throw err;
      }
      syncJobDuration.observe(labels.error, (performance.now() - p0) / 1000);
      await onRun?.(data, 'error', Date.now() - t0, err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      runs.end(job.queueName, job.id);
      counted?.leave();
    }
    if (!(outcome.kind === 'done' && outcome.recorded)) await onRun?.(data, outcome.kind === 'delay' ? 'delayed' : outcome.state, Date.now() - t0, outcome.kind === 'delay' ? outcome.reason : undefined);
    if (outcome.kind === 'delay') {
      // A wait is a delayed job, not a sleeping handler; it keeps its deduplication id meanwhile.
      await handBack(job, Date.now() + outcome.delayMs, token, handBacks);
      throw new DelayedError(outcome.reason);
    }
    return outcome.state;
  };
}

export function startSyncWorkers(service: SyncService, opts: SyncWorkerOptions): Worker[] {
  const runs = new SyncRuns();
  const outage = new RedisOutageLog(opts.log, 'sync workers', opts.outageLogIntervalMs === undefined ? {} : { intervalMs: opts.outageLogIntervalMs });
  let closing = false;
  // A lock renewal that came after the run's own move to delayed is not a lost lock (src/queues/hand-backs.ts).
  const handBacks = new HandBacks(opts.lockMs ?? 30_000, opts.refusedRetryMs);
  const processor = traced(opts.log, createSyncProcessor(service, runs, opts.onRun, opts.cap, () => closing, handBacks));
  // The slow targets, read from Redis once a second: only their runs are counted (src/mirror/target-cap.ts).
  opts.cap?.start();
  return allSyncQueueNames(opts.shards).map(({ name }) => {
    const w = new Worker<SyncJob, string>(name, processor, {
      connection: opts.connection,
      prefix: opts.keys.queuePrefix(name),
      concurrency: opts.concurrency,
      // Intents make a re-run after a stall harmless; keep the lock short so a crashed worker's
      // jobs come back quickly. The mirror lease (SyncService) lasts as long as this lock.
      lockDuration: opts.lockMs ?? 30_000,
      stalledInterval: Math.max(500, Math.floor((opts.lockMs ?? 30_000) / 2)),
      maxStalledCount: 100,
    });
    // Not the renewals that came after a job's own move to delayed: its run is over, and a new run of the
    // same job in this process must not be ended for them.
    w.on('lockRenewalFailed', (jobIds: string[]) => runs.lockLost(name, jobIds.filter((id) => !handBacks.handedBack(name, id))));
    w.on('closing', () => {
      if (closing) return;
      closing = true;
      opts.cap?.close();
      opts.cap?.unparkAll().catch((err: unknown) => opts.log.warn({ err }, 'could not end the wake-ups of held-back syncs'));
    });
    // A job failed because Redis was down is counted into the outage's lines, not a line of its own.
    w.on('failed', (job, err) => outage.jobFailed(err, { queue: name, jobId: job?.id, attempts: job?.attemptsMade }, 'sync job failed'));
    // Redis down: one line for all the workers' reconnect errors, reminders, and one when it is back.
    // A full (OOM) or read-only Redis refusing its fetch: asks again once a second, not in a loop; its connection errors into the outage's lines (src/lib/redis-outage-log.ts).
    handleWorkerOutages(w, outage, { queue: name }, 'sync worker error', (err) => handBacks.staleRenewal(err, name, opts.log));
    return w;
  });
}
