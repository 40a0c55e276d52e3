/**
 * Scheduled work, run through a BullMQ job scheduler so that any number of scheduler processes
 * produce each tick once: the mirror sweep (and, later, reconciliation per partner cron).
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Keys } from '../store/keys.js';
import type { SweepService } from '../mirror/sweep.service.js';

export const SCHEDULER_QUEUE = 'scheduler';

export interface SchedulerHandle {
  close(): Promise<void>;
}

export async function startScheduler(opts: { connection: () => ConnectionOptions; keys: Keys; sweep: SweepService; sweepIntervalMs: number; log: Logger }): Promise<SchedulerHandle> {
  const prefix = opts.keys.queuePrefix(SCHEDULER_QUEUE);
  const queue = new Queue(SCHEDULER_QUEUE, { connection: opts.connection(), prefix });
  await queue.upsertJobScheduler('mirror-sweep', { every: opts.sweepIntervalMs }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: 100 } });
  const worker = new Worker(
    SCHEDULER_QUEUE,
    async (job) => {
      if (job.name === 'sweep') return opts.sweep.sweep();
      return null;
    },
    { connection: opts.connection(), prefix, concurrency: 1 },
  );
  worker.on('failed', (job, err) => opts.log.error({ err, job: job?.name }, 'scheduled job failed'));
  worker.on('error', (err) => opts.log.error({ err }, 'scheduler worker error'));
  return {
    close: async () => {
      await worker.close();
      await queue.close();
    },
  };
}
