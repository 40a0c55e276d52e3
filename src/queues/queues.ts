/**
 * Queue names, typed job payloads and producers. Sync work is split per platform (isolation: a slow
 * platform never holds up another) and per shard (load spreads across Redis Cluster slots); each
 * queue's BullMQ prefix carries a hash tag.
 */
import { withCurrentRequestId } from '../lib/request-context.js';
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { digestOf } from '../lib/crypto.js';
import { PLATFORMS, type Platform } from '../targets/target.adapter.js';
import { keyPart, type Keys } from '../store/keys.js';
import { promoteIfDelayed } from './promote.js';
import { closeQueue } from './close-queue.js';

export interface SyncJob {
  partnerId: string;
  showId: string;
  targetId: string;
  /** The request that caused this job (src/lib/request-context.ts); absent for sweeps and schedules. */
  requestId?: string;
}

/** The shard of a show's sync queues: the first 32 bits of SHA-1(partnerId NUL showId), mod `shards`. */
export function shardOf(partnerId: string, showId: string, shards: number): number {
  return parseInt(digestOf('sha1', `${partnerId}\u0000${showId}`, 'hex').slice(0, 8), 16) % shards; // one-shot where Node has it (src/lib/crypto.ts)
}

export function syncQueueName(platform: Platform, shard: number): string {
  return `sync-${platform}-${shard}`;
}

export function allSyncQueueNames(shards: number): { platform: Platform; shard: number; name: string }[] {
  return PLATFORMS.flatMap((platform) => Array.from({ length: shards }, (_, shard) => ({ platform, shard, name: syncQueueName(platform, shard) })));
}

/** One coalesced job per (show, target): BullMQ deduplication holds the id while a job waits, is delayed or runs (plus at most one follow-up queued behind a running job). */
export function syncJobId(j: SyncJob): string {
  // keyPart: ids may contain ':' (show `x:y` + target `z` and show `x` + target `y:z` are different jobs)
  return `sync:${keyPart(j.partnerId)}:${keyPart(j.showId)}:${j.targetId}`;
}

const SYNC_JOB_OPTS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: { count: 10_000 },
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
};

/** A sync job's BullMQ options (also copied into the ingest script's inline add, src/queues/inline-sync.ts: a change here is checked by its conformance test). */
export function syncJobOpts(job: SyncJob, delayMs: number): JobsOptions {
  // keepLastIfActive: an event that lands while this (show, target)'s sync is running gets one more
  // sync after it finishes, created atomically by BullMQ when the active job completes. Without it,
  // an event arriving after the job's last version check and before BullMQ drops the deduplication
  // id would be deduplicated into the finishing job and never mirrored (ARCHITECTURE pitfalls).
  return { ...SYNC_JOB_OPTS, deduplication: { id: syncJobId(job), keepLastIfActive: true }, ...(delayMs > 0 ? { delay: delayMs } : {}) };
}

export class SyncProducer {
  private readonly queues = new Map<string, Queue>();
  constructor(
    private readonly connection: ConnectionOptions,
    private readonly keys: Keys,
    private readonly shards: number,
  ) {}

  queue(platform: Platform, shard: number): Queue {
    const name = syncQueueName(platform, shard);
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.keys.queuePrefix(name) });
      q.on('error', () => undefined); // surfaced through the add() promise instead
      this.queues.set(name, q);
    }
    return q;
  }

  allQueues(): Queue[] {
    return allSyncQueueNames(this.shards).map(({ platform, shard }) => this.queue(platform, shard));
  }

  async enqueue(platform: Platform, job: SyncJob, delayMs = 0): Promise<void> {
    const shard = shardOf(job.partnerId, job.showId, this.shards);
    await this.queue(platform, shard).add('sync', withCurrentRequestId(job), syncJobOpts(job, delayMs));
  }

  /**
   * Many syncs at once (the dispatcher's batches): one addBulk per queue (one pipeline, one write),
   * with enqueue()'s options, so each is coalesced with a job already waiting for its (show, target).
   */
  async enqueueBulk(jobs: { platform: Platform; job: SyncJob }[]): Promise<void> {
    const byQueue = new Map<Queue, { name: string; data: SyncJob; opts: JobsOptions }[]>();
    for (const { platform, job } of jobs) {
      const q = this.queue(platform, shardOf(job.partnerId, job.showId, this.shards));
      let list = byQueue.get(q);
      if (!list) byQueue.set(q, (list = []));
      list.push({ name: 'sync', data: job, opts: syncJobOpts(job, 0) });
    }
    await Promise.all([...byQueue].map(([q, list]) => q.addBulk(list)));
  }

  /** Operator "resync": run a delayed sync now rather than when its delay ends. */
  async promote(platform: Platform, job: SyncJob): Promise<boolean> {
    const q = this.queue(platform, shardOf(job.partnerId, job.showId, this.shards));
    const jobId = await q.getDeduplicationJobId(syncJobId(job));
    if (!jobId) return false;
    const existing = await q.getJob(jobId);
    // Not delayed (waiting, running, done) or gone by the time of the promote: false, never a throw
    // (the sweep's job failed on 'Job <id> is not in the delayed state' when the delay ended between
    // a check and the promote).
    return existing !== undefined && (await promoteIfDelayed(existing));
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => closeQueue(q)));
  }
}
