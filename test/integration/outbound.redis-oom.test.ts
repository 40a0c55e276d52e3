/**
 * A delivery whose run Redis refused — a Redis at `maxmemory` with `maxmemory-policy noeviction`
 * answering "OOM command not allowed" — is handed back as delayed without using up one of its BullMQ
 * attempts, and goes out once Redis has room again. Before, each such run was a failed attempt: after
 * five (about half a minute of a full Redis, backoff from 2 s) the job was failed for good, the message's
 * delivery stayed `pending` (marking it failed was refused too) and nothing ever sent it again.
 *
 * Deterministic: the receiver makes Redis full (`CONFIG SET maxmemory 1`) before it answers the first
 * request, so saving that attempt's outcome is refused. Real Redis, the real delivery worker
 * (startDeliveryWorker), a real HTTP receiver on loopback. The worker's hand-back waits 1 s, not the
 * 5 s default (REDIS_REFUSED_RETRY_MS, its `refusedRetryMs`); the last test runs the handed-back job
 * when it has changed the endpoint (promote), not after a wait it hopes is long enough.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { DELIVERY_QUEUE, deliveryJobId } from '../../src/queues/delivery.queue.js';
import { startDeliveryRig, type DeliveryRig, type Receiver } from '../helpers/delivery-rig.js';
import { logSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/service.js';

/** The delivery worker's hand-back wait (REDIS_REFUSED_RETRY_MS) in the first test. */
const REFUSED_RETRY_MS = 1_000;
let rig: DeliveryRig;
let admin: Redis;

beforeAll(async () => {
  rig = await startDeliveryRig({ OUTBOUND_TIMEOUT_MS: '8000' });
  admin = rig.svc.redis.client() as Redis;
});
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await rig?.close();
});

/**
 * Partner `partnerId`'s endpoint at a receiver that fills Redis (maxmemory 1) before it answers its
 * first request 200, a delivery worker of its own (the earlier ones closed; its hand-back waits
 * `refusedRetryMs`) and an order_attributed message: once the send went through and its save was
 * refused (the job handed back, delayed).
 */
async function sentThenRefused(partnerId: string, refusedRetryMs: number): Promise<{ rx: Receiver; endpointId: string; messageId: string; jobId: string; queue: Queue }> {
  const { workerRt } = rig;
  await Promise.all(rig.workers.splice(0).map((w) => w.close()));
  const rx = await rig.receiver(async (n) => {
    if (n === 0) await admin.config('SET', 'maxmemory', '1');
    return 200;
  });
  const endpointId = await rig.endpoint(partnerId, rx.url);
  const { log } = logSink('fatal');
  rig.workers.push(startDeliveryWorker(workerRt.delivery, { connection: workerRt.bullConnection('worker'), keys: workerRt.keys, concurrency: 1, refusedRetryMs, log }));
  const queue = new Queue(DELIVERY_QUEUE, { connection: workerRt.bullConnection('worker'), prefix: workerRt.keys.queuePrefix(DELIVERY_QUEUE) });
  const { messageId } = await workerRt.outbound.emit(partnerId, 'attribution.order_attributed', { orderId: `o-${partnerId}` }, `o-${partnerId}`);
  const jobId = deliveryJobId({ messageId: messageId!, endpointId, run: 1 });
  await waitFor(async () => rx.ids.length >= 1 && (await queue.getJobState(jobId)) === 'delayed', 20_000, 50);
  return { rx, endpointId, messageId: messageId!, jobId, queue };
}

test('a delivery run refused by a full Redis (OOM) does not count as an attempt, and its send that went through is saved once Redis has room, not sent again', async () => {
  const { workerRt } = rig;
  const { rx, endpointId, messageId, jobId, queue } = await sentThenRefused('poom', REFUSED_RETRY_MS);
  try {
    const job = await queue.getJob(jobId);
    // Before: 1 (one of five attempts gone per refused run).
    expect(job?.attemptsMade).toBe(0);
    // Delayed by the worker's setting, not the 5 s default.
    expect(job?.delay).toBeGreaterThan(0);
    expect(job?.delay).toBeLessThanOrEqual(REFUSED_RETRY_MS);

    await admin.config('SET', 'maxmemory', '0');
    await waitFor(async () => {
      const stored = await workerRt.outbound.message('poom', messageId);
      return stored?.deliveries.find((d) => d.endpointId === endpointId)?.state === 'delivered';
    }, 20_000, 100);
    // The send went through before Redis refused its save: the run after saves that outcome and sends
    // nothing. Before: sent again (same webhook-id) by each run whose claim Redis took, here once.
    expect(rx.ids).toEqual([messageId]);
  } finally {
    await queue.close();
  }
}, 60_000);

/**
 * A full Redis refusing the worker's fetch of a due job: one line when it starts and one, with the
 * count, once a job is taken again (src/lib/redis-outage-log.ts). Before, each refused fetch was a
 * 'delivery worker error' line of its own, one a second per worker for as long as Redis stayed full.
 */
test('refused fetches of a full Redis are one line when it starts and one when it ends, with their count', async () => {
  const { workerRt } = rig;
  // The first test's worker closed: the job must be this worker's, or its end line never comes.
  await Promise.all(rig.workers.splice(0).map((w) => w.close()));
  const rx = await rig.receiver(async () => 200);
  const endpointId = await rig.endpoint('poom2', rx.url);
  const { messageId } = await workerRt.outbound.emit('poom2', 'attribution.order_attributed', { orderId: 'o2' }, 'o-2');
  const { log, lines } = logSink<{ msg: string; errors?: number }>('info');
  await admin.config('SET', 'maxmemory', '1');
  rig.workers.push(startDeliveryWorker(workerRt.delivery, { connection: workerRt.bullConnection('worker'), keys: workerRt.keys, concurrency: 1, log }));
  await new Promise((resolve) => setTimeout(resolve, 3_500));
  const refusedLines = lines.filter((l) => /delivery worker/.test(l.msg));
  // Before: a 'delivery worker error' line per refused fetch (about one a second).
  expect(refusedLines.map((l) => l.msg)).toEqual(['delivery worker: Redis unavailable (repeats are logged at most every 15 s)']);

  await admin.config('SET', 'maxmemory', '0');
  await waitFor(async () => {
    const stored = await workerRt.outbound.message('poom2', messageId!);
    return stored?.deliveries.find((d) => d.endpointId === endpointId)?.state === 'delivered';
  }, 20_000, 100);
  const end = lines.find((l) => l.msg === 'delivery worker: Redis reachable again');
  expect(end?.errors).toBeGreaterThanOrEqual(2);
  expect(lines.filter((l) => l.msg === 'delivery worker error')).toEqual([]);
}, 60_000);

/**
 * The outcome a worker keeps for a send whose save Redis refused is the endpoint's answer at the URL it
 * was sent to. An operator who changes the endpoint's URL before the next run wants the message at the
 * new one: before, the kept outcome was matched on the run and attempt count only, so the old URL's 2xx
 * was recorded as delivered and the new URL never got the message.
 */
test("a kept outcome is not saved for an endpoint whose URL changed since: the message goes to the new URL", async () => {
  const { workerRt, svc } = rig;
  const moved = await rig.receiver(async () => 200);
  // The handed-back run waits a minute: it comes when promoted below, after the endpoint changed.
  const { rx: old, endpointId, messageId, jobId, queue } = await sentThenRefused('poom3', 60_000);
  try {
    await admin.config('SET', 'maxmemory', '0');
    // Before the handed-back run: the endpoint now points elsewhere.
    const r = await svc.api(`/v1/partners/poom3/endpoints/${endpointId}`, { method: 'PATCH', json: { url: moved.url } });
    expect(r.status).toBe(200);
    await (await queue.getJob(jobId))!.promote();
    await waitFor(async () => {
      const stored = await workerRt.outbound.message('poom3', messageId);
      return stored?.deliveries.find((d) => d.endpointId === endpointId)?.state === 'delivered';
    }, 20_000, 100);
    // Before: [] (the old URL's 200 saved as the delivery).
    expect(moved.ids).toEqual([messageId]);
    expect(old.ids).toEqual([messageId]);
  } finally {
    await queue.close();
  }
}, 60_000);
