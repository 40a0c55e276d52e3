/** BullMQ worker for the `delivery` queue: one attempt per run of the handler, waits as delayed jobs. */
import { traced } from '../lib/request-context.js';
import { deliveryAttempts } from '../lib/metrics.js';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DELIVERY_QUEUE, type DeliveryJob } from '../queues/delivery.queue.js';
import type { Keys } from '../store/keys.js';
import type { DeliveryService } from './delivery.service.js';
import { handleWorkerOutages, RedisOutageLog } from '../lib/redis-outage-log.js';
import { delayParked } from '../queues/parking.js';
import { handBackWhileRedisRefuses, HandBacks } from '../queues/hand-backs.js';
import { StoredRecordCorruptError } from '../store/stored-record.js';

const DeliveryJobSchema = z.object({ partnerId: z.string().min(1), messageId: z.string().min(1), endpointId: z.string().min(1), run: z.number().int().min(1) });

export interface DeliveryWorkerOptions {
  connection: ConnectionOptions;
  keys: Keys;
  concurrency: number;
  /** BullMQ lock (default 30 s); raised to three attempt timeouts when shorter (see deliveryLockMs). */
  lockDurationMs?: number;
  /** The per-attempt timeout (OUTBOUND_TIMEOUT_MS). */
  attemptTimeoutMs?: number;
  /** How long a job whose run Redis refused waits before its next run (REDIS_REFUSED_RETRY_MS; src/queues/hand-backs.ts). */
  refusedRetryMs?: number;
  log: Logger;
}

/**
 * `closing`: true once the worker is closing; a job held back for a slot then waits out its delay
 * (another worker, or this process restarted, runs it) instead of waiting for a wake-up. `handBacks`:
 * the worker's, through which a retry is moved to delayed (src/queues/hand-backs.ts).
 */
export function createDeliveryProcessor(service: DeliveryService, closing: () => boolean = () => false, handBacks?: HandBacks) {
  return async (job: Job<DeliveryJob>, token?: string): Promise<string> => {
    // Data of another shape (a job added by hand or by another version): no run mends it, so it fails
    // for good at once (one 'delivery job failed' line), never retried through BullMQ's attempts.
    const parsed = DeliveryJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`not a delivery job (${parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.code}`).join(', ')}): failed, never retried`);
    const data = parsed.data;
    // Redis full or refusing (OOM, READONLY, …): the job waits and runs again, its attempts untouched.
    const outcome = await handBackWhileRedisRefuses(job, token, handBacks, () => service.deliver(data)).catch((err: unknown) => {
      // Its message does not read (counted when read): failed for good, its line naming the key; the
      // worker goes on with the other jobs. Retried, it read the same bytes 5 times over 30 s.
      if (err instanceof StoredRecordCorruptError) throw new UnrecoverableError(err.message);
      throw err;
    });
    deliveryAttempts.inc({ outcome: outcome.kind });
    if (outcome.kind === 'retry' || outcome.kind === 'deferred') {
      // The next attempt is a delayed job, not a sleeping handler; the job id (and webhook-id) stay.
      const untilMs = Date.now() + outcome.delayMs;
      // Held back for a slot of its partner: woken (promoted) when one frees, its delay is the fallback.
      const park =
        outcome.kind === 'deferred' && outcome.park
          ? (jobId: string, wake: () => Promise<boolean>): void => {
              if (!closing()) service.park(data.partnerId, jobId, untilMs, wake);
            }
          : undefined;
      return delayParked(job, token, untilMs, outcome.reason, park, handBacks);
    }
    return outcome.kind;
  };
}

/**
 * The delivery job's lock: at least three attempt timeouts, so that the lock — renewed every half of it
 * — outlasts an attempt even when one renewal is late, and a job is not taken for stalled while its
 * attempt runs. A renewal can still be missed (an event loop blocked for longer); the attempt claim
 * (DeliveryService.deliver) keeps the second worker from sending at the same time.
 */
export function deliveryLockMs(lockDurationMs: number | undefined, attemptTimeoutMs: number | undefined): number {
  return Math.max(lockDurationMs ?? 30_000, 3 * (attemptTimeoutMs ?? 0));
}

export function startDeliveryWorker(service: DeliveryService, opts: DeliveryWorkerOptions): Worker<DeliveryJob, string> {
  let closing = false;
  const lockMs = deliveryLockMs(opts.lockDurationMs, opts.attemptTimeoutMs);
  // A retry's lock renewal that came after its own move to delayed is not a lost lock (src/queues/hand-backs.ts).
  const handBacks = new HandBacks(lockMs, opts.refusedRetryMs);
  const w = new Worker<DeliveryJob, string>(DELIVERY_QUEUE, traced(opts.log, createDeliveryProcessor(service, () => closing, handBacks)), {
    connection: opts.connection,
    prefix: opts.keys.queuePrefix(DELIVERY_QUEUE),
    concurrency: opts.concurrency,
    lockDuration: lockMs,
    // A stalled delivery is simply attempted again: receivers dedupe on webhook-id.
    maxStalledCount: 100,
  });
  w.on('closing', () => {
    closing = true;
    service.unparkAll().catch((err: unknown) => opts.log.warn({ err }, 'could not end the wake-ups of parked deliveries'));
  });
  // Redis down: one line per outage (and reminders), not one per reconnect attempt or per job it failed (src/lib/redis-outage-log.ts).
  const outage = new RedisOutageLog(opts.log, 'delivery worker');
  w.on('failed', (job, err) => {
    outage.jobFailed(err, { jobId: job?.id, attemptsMade: job?.attemptsMade }, 'delivery job failed');
    // Failed for good (BullMQ set finishedOn: its last attempt, or an UnrecoverableError on any, such as
    // a record that does not read): its delivery is marked failed. Marked on the last attempt only, one
    // failed for good on its first was `pending` for ever, nothing queued to send it.
    const data = job && job.finishedOn !== undefined ? DeliveryJobSchema.safeParse(job.data) : undefined;
    if (job && data?.success) {
      service.markFailed(data.data, err).catch((e: unknown) => opts.log.warn({ err: e, jobId: job.id }, 'could not mark delivery failed'));
    }
  });
  // A full (OOM) or read-only Redis refusing its fetch: asks again once a second, not in a loop; its connection errors into the outage's lines (src/lib/redis-outage-log.ts).
  handleWorkerOutages(w, outage, { queue: DELIVERY_QUEUE }, 'delivery worker error', (err) => handBacks.staleRenewal(err, DELIVERY_QUEUE, opts.log));
  return w;
}
