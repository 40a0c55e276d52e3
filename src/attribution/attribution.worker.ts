/** BullMQ worker for the `attribution` queue: one stored partner order event per job. */
import { traced } from '../lib/request-context.js';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PartnerEventSchema } from '../domain/events.js';
import { ATTRIBUTION_QUEUE, orderIdOf, type AttributionJob } from '../queues/attribution.queue.js';
import type { Keys } from '../store/keys.js';
import type { OrderEventRepository } from '../store/show.repository.js';
import type { AttributionService } from './attribution.service.js';
import { handleWorkerOutages, RedisOutageLog } from '../lib/redis-outage-log.js';
import { handBackWhileRedisRefuses, HandBacks } from '../queues/hand-backs.js';
import { StoredRecordCorruptError } from '../store/stored-record.js';

const JobSchema = z.object({ partnerId: z.string().min(1), eventId: z.string().min(1), event: PartnerEventSchema, otherCurrency: z.boolean().optional() });

export interface AttributionWorkerOptions {
  connection: ConnectionOptions;
  keys: Keys;
  concurrency: number;
  /** Job lock (ms); the stalled-job check runs at half of it. */
  lockMs?: number;
  /** How long a job whose run Redis refused waits before its next run (REDIS_REFUSED_RETRY_MS; src/queues/hand-backs.ts). */
  refusedRetryMs?: number;
  log: Logger;
  /** Clears each handled event's pending mark. */
  orderEvents?: OrderEventRepository;
}

export function createAttributionProcessor(service: AttributionService, orderEvents?: OrderEventRepository, handBacks?: HandBacks) {
  return async (job: Job<AttributionJob>, token?: string): Promise<string> => {
    const parsed = JobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid attribution job: ${parsed.error.message}`);
    // Redis full or refusing (OOM, READONLY, …): the job waits and runs again (the ledger step is
    // idempotent), its attempts untouched; before, each such run was one of its 12.
    return handBackWhileRedisRefuses(job, token, handBacks, () => attribute(service, parsed.data, orderEvents)).catch((err: unknown) => {
      // A record it reads does not read (a click): failed for good, one line naming the key; the order
      // stays pending, passed over by the sweep (logged once) until an operator repairs the key.
      if (err instanceof StoredRecordCorruptError) throw new UnrecoverableError(err.message);
      throw err;
    });
  };
}

/** One event's attribution, and its pending mark cleared. */
async function attribute(service: AttributionService, data: z.infer<typeof JobSchema>, orderEvents?: OrderEventRepository): Promise<string> {
  const { partnerId, eventId, event, otherCurrency } = data;
  // The store's mark (AttributionJob.otherCurrency): no read of the order's recorded currency here.
  const outcome = await service.handlePartnerEvent(partnerId, event, otherCurrency);
  // Handled: the sweep no longer needs to look at it (src/attribution/order-event.sweep.ts).
  const orderId = orderIdOf(event);
  if (orderEvents && orderId) await orderEvents.handled(partnerId, orderId, eventId);
  if ('refundId' in outcome) return outcome.waitingForOrder ? 'refund_waiting_for_order' : outcome.isNew ? 'refund_applied' : 'refund_duplicate';
  return outcome.isNew ? (outcome.attributed ? 'attributed' : 'unattributed') : 'duplicate';
}

export function startAttributionWorker(service: AttributionService, opts: AttributionWorkerOptions): Worker {
  // A lock renewal that came after the run's own move to delayed is not a lost lock (src/queues/hand-backs.ts).
  const handBacks = new HandBacks(opts.lockMs ?? 30_000, opts.refusedRetryMs);
  const w = new Worker<AttributionJob, string>(ATTRIBUTION_QUEUE, traced(opts.log, createAttributionProcessor(service, opts.orderEvents, handBacks)), {
    connection: opts.connection,
    prefix: opts.keys.queuePrefix(ATTRIBUTION_QUEUE),
    concurrency: opts.concurrency,
    // The ledger step is idempotent, so a re-run after a stall is harmless.
    lockDuration: opts.lockMs ?? 30_000,
    stalledInterval: Math.max(500, Math.floor((opts.lockMs ?? 30_000) / 2)),
    maxStalledCount: 100,
  });
  // Redis down: one line per outage (and reminders), not one per reconnect attempt or per job it failed (src/lib/redis-outage-log.ts).
  const outage = new RedisOutageLog(opts.log, 'attribution worker');
  w.on('failed', (job, err) => outage.jobFailed(err, { jobId: job?.id, attempts: job?.attemptsMade }, 'attribution job failed'));
  // A full (OOM) or read-only Redis refusing its fetch: asks again once a second, not in a loop; its connection errors into the outage's lines (src/lib/redis-outage-log.ts).
  handleWorkerOutages(w, outage, {}, 'attribution worker error', (err) => handBacks.staleRenewal(err, ATTRIBUTION_QUEUE, opts.log));
  return w;
}
