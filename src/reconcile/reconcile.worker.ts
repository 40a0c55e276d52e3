/** Runs reconciliation jobs (worker role). */
import { traced } from '../lib/request-context.js';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Keys } from '../store/keys.js';
import { RECONCILE_QUEUE, type ReconcileService } from './reconcile.service.js';

export function startReconcileWorker(service: ReconcileService, opts: { connection: ConnectionOptions; keys: Keys; log: Logger }): Worker {
  const w = new Worker(
    RECONCILE_QUEUE,
    traced(opts.log, async (job: Job) => {
      const { id } = z.object({ id: z.string().min(1) }).parse(job.data);
      const rec = await service.run(id);
      return rec.status;
    }),
    { connection: opts.connection, prefix: opts.keys.queuePrefix(RECONCILE_QUEUE), concurrency: 2 },
  );
  w.on('failed', (job, err) => opts.log.error({ err, reconciliationId: job?.id }, 'reconciliation failed'));
  w.on('error', (err) => opts.log.error({ err }, 'reconcile worker error'));
  return w;
}
