/**
 * The `attribution` queue: one job per stored partner order event (`order.created` / `order.refunded`).
 * The job id is derived from the event id, so a re-delivered webhook (ingest's duplicate path hands the
 * same event id again) is one job. The event id is a stream id of the order's own event log, unique
 * only within that order, hence the hash over (partner, order, event id); BullMQ also refuses ':' in ids.
 */
import { withCurrentRequestId } from '../lib/request-context.js';
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { createHash } from 'node:crypto';
import type { PartnerEvent } from '../domain/events.js';
import type { Keys } from '../store/keys.js';
import { closeQueue } from './close-queue.js';

export const ATTRIBUTION_QUEUE = 'attribution';

export interface AttributionJob {
  partnerId: string;
  eventId: string;
  event: PartnerEvent;
  /**
   * An order.created's mark from its store (OrderEventRepository ingest/ingestOne): true when its
   * order's recorded currency is another (the worker does not book it). Absent on jobs added by an
   * older version: the worker then reads the recorded currency itself.
   */
  otherCurrency?: boolean;
  /** The request that caused this job (src/lib/request-context.ts). */
  requestId?: string;
}

export function orderIdOf(event: PartnerEvent): string | undefined {
  if (event.type === 'order.created') return event.data.order.id;
  if (event.type === 'order.refunded') return event.data.refund.orderId;
  return undefined;
}

export function attributionJobId(partnerId: string, orderId: string, eventId: string): string {
  return 'ev-' + createHash('sha256').update(`${partnerId}\u0000${orderId}\u0000${eventId}`).digest('base64url').slice(0, 32);
}

const JOB_OPTS: JobsOptions = {
  // Completed ids are kept for a day so that re-deliveries within it stay one job; a later re-run is harmless (idempotent ledger).
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { count: 10_000 },
  attempts: 12,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
};

export class AttributionProducer {
  readonly queue: Queue<AttributionJob>;
  constructor(connection: ConnectionOptions, keys: Keys) {
    this.queue = new Queue<AttributionJob>(ATTRIBUTION_QUEUE, { connection, prefix: keys.queuePrefix(ATTRIBUTION_QUEUE) });
    this.queue.on('error', () => undefined); // surfaced through the add() promise instead
  }

  async enqueue(partnerId: string, eventId: string, event: PartnerEvent, otherCurrency?: boolean): Promise<void> {
    const orderId = orderIdOf(event);
    if (!orderId) return;
    await this.queue.add(event.type, withCurrentRequestId({ partnerId, eventId, event, ...(otherCurrency !== undefined ? { otherCurrency } : {}) }), { ...JOB_OPTS, jobId: attributionJobId(partnerId, orderId, eventId) });
  }

  async close(): Promise<void> {
    await closeQueue(this.queue);
  }
}
