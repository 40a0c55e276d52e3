/**
 * The outbound-webhook `delivery` queue: one job per (message, endpoint, run). HTTP failures are
 * retried by the handler itself on the webhook schedule (moveToDelayed); BullMQ's own attempts only
 * cover unexpected errors (Redis hiccups, bugs).
 */
import { withCurrentRequestId } from '../lib/request-context.js';
import { Queue, type ConnectionOptions, type Job, type JobsOptions } from 'bullmq';
import type { Keys } from '../store/keys.js';
import { closeQueue } from './close-queue.js';

export const DELIVERY_QUEUE = 'delivery';

export interface DeliveryJob {
  partnerId: string;
  messageId: string;
  endpointId: string;
  /** 1 for the emit, 2… for manual redeliveries. */
  run: number;
  /** The request (or the job) that caused this delivery (src/lib/request-context.ts). */
  requestId?: string;
}

/**
 * `${messageId}.${endpointId}` (plus `.r<run>` for a redelivery). BullMQ refuses custom ids with one
 * `:` ("Custom Id cannot contain :"), so the pair is joined with a dot; neither id contains one.
 */
export function deliveryJobId(j: Pick<DeliveryJob, 'messageId' | 'endpointId' | 'run'>): string {
  return j.run === 1 ? `${j.messageId}.${j.endpointId}` : `${j.messageId}.${j.endpointId}.r${j.run}`;
}

const DELIVERY_JOB_OPTS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: { age: 7 * 86_400, count: 10_000 },
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 },
};

export class DeliveryProducer {
  readonly queue: Queue<DeliveryJob>;
  constructor(connection: ConnectionOptions, keys: Keys) {
    this.queue = new Queue<DeliveryJob>(DELIVERY_QUEUE, { connection, prefix: keys.queuePrefix(DELIVERY_QUEUE) });
    this.queue.on('error', () => undefined); // surfaced through the add() promise instead
  }

  /** Idempotent: a job id that still exists (waiting, delayed, active, failed) is not added again. */
  async enqueue(job: DeliveryJob): Promise<void> {
    await this.queue.add('deliver', withCurrentRequestId(job), { ...DELIVERY_JOB_OPTS, jobId: deliveryJobId(job) });
  }

  async find(job: Pick<DeliveryJob, 'messageId' | 'endpointId' | 'run'>): Promise<Job<DeliveryJob> | undefined> {
    return this.queue.getJob(deliveryJobId(job));
  }

  async close(): Promise<void> {
    await closeQueue(this.queue);
  }
}
