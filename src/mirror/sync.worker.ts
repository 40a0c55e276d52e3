/** BullMQ workers for the per-platform, per-shard sync queues. */
import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Keys } from '../store/keys.js';
import { allSyncQueueNames, type SyncJob } from '../queues/queues.js';
import type { SyncService } from './sync.service.js';

const SyncJobSchema = z.object({ partnerId: z.string().min(1), showId: z.string().min(1), targetId: z.string().min(1) });

export interface SyncWorkerOptions {
  connection: ConnectionOptions;
  keys: Keys;
  shards: number;
  concurrency: number;
  log: Logger;
  lockMs?: number;
}

export function createSyncProcessor(service: SyncService) {
  return async (job: Job<SyncJob>, token?: string): Promise<string> => {
    const data = SyncJobSchema.parse(job.data);
    const outcome = await service.sync(data);
    if (outcome.kind === 'delay') {
      // A wait is a delayed job, not a sleeping handler; it keeps its deduplication id meanwhile.
      await job.moveToDelayed(Date.now() + outcome.delayMs, token);
      throw new DelayedError(outcome.reason);
    }
    return outcome.state;
  };
}

export function startSyncWorkers(service: SyncService, opts: SyncWorkerOptions): Worker[] {
  const processor = createSyncProcessor(service);
  return allSyncQueueNames(opts.shards).map(({ name }) => {
    const w = new Worker<SyncJob, string>(name, processor, {
      connection: opts.connection,
      prefix: opts.keys.queuePrefix(name),
      concurrency: opts.concurrency,
      // Intents make a re-run after a stall harmless; keep the lock short so a crashed worker's
      // jobs come back quickly.
      lockDuration: opts.lockMs ?? 30_000,
      stalledInterval: Math.max(500, Math.floor((opts.lockMs ?? 30_000) / 2)),
      maxStalledCount: 100,
    });
    w.on('failed', (job, err) => opts.log.error({ err, queue: name, jobId: job?.id, attempts: job?.attemptsMade }, 'sync job failed'));
    w.on('error', (err) => opts.log.error({ err, queue: name }, 'sync worker error'));
    return w;
  });
}
