/** Runs reconciliation jobs (worker role). */
import { traced } from '../lib/request-context.js';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Keys } from '../store/keys.js';
import { RECONCILE_QUEUE, type ReconcileService } from './reconcile.service.js';
import { RedisOutageLog } from '../lib/redis-outage-log.js';

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
  // Redis down: one line per outage (and reminders), not one per reconnect attempt (src/lib/redis-outage-log.ts).
  const outage = new RedisOutageLog(opts.log, 'reconcile worker');
  w.on('error', (err) => outage.error(err, {}, 'reconcile worker error'));
  w.on('ready', () => outage.recovered());
  return w;
}
