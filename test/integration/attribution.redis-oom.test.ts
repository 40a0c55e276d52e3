/**
 * An attribution job whose run a full Redis refused (`maxmemory` with noeviction: "OOM command not
 * allowed") is handed back as delayed without using up one of its BullMQ attempts (12, backoff from
 * 1 s: about an hour of a full Redis failed it for good before), and is handled once Redis has room.
 * Here the job has a single attempt, so the old code fails it on the first refusal. Deterministic:
 * Redis is made full as the worker starts the run. Real Redis, the service's real attribution worker.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ATTRIBUTION_QUEUE } from '../../src/queues/attribution.queue.js';
import { createPartner, orderEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let admin: Redis;
let queue: Queue;

beforeAll(async () => {
  svc = await startService({ workers: true });
  admin = svc.redis.client() as Redis;
  queue = new Queue(ATTRIBUTION_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(ATTRIBUTION_QUEUE) });
  await createPartner(svc, 'aoom');
}, 60_000);
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await queue?.close();
  await svc?.close();
});

test('an attribution run refused by a full Redis (OOM) does not count as an attempt, and is handled once Redis has room', async () => {
  const service = svc.rt.attribution;
  const handle = service.handlePartnerEvent.bind(service);
  let runs = 0;
  // The worker's service is this one: its first run finds Redis full.
  Object.assign(service, {
    handlePartnerEvent: async (...args: Parameters<typeof handle>) => {
      if (runs++ === 0) await admin.config('SET', 'maxmemory', '1');
      return handle(...args);
    },
  });
  const job = await queue.add('event', { partnerId: 'aoom', eventId: 'ev-oom-1', event: orderEvent('o-oom-1') }, { jobId: 'ev-oom-1', attempts: 1 });

  await waitFor(async () => runs >= 1 && (await queue.getJobState(job.id!)) === 'delayed', 20_000, 50);
  // Before: the job failed (its one attempt used), or stayed active with its failure refused.
  expect((await queue.getJob(job.id!))?.attemptsMade).toBe(0);

  await admin.config('SET', 'maxmemory', '0');
  await waitFor(async () => (await queue.getJobState(job.id!)) === 'completed', 20_000, 100);
  expect(runs).toBe(2);
}, 60_000);
