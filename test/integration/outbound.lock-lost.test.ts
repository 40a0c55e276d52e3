/**
 * A delivery job whose BullMQ lock could not be renewed while its attempt was in flight (an event loop
 * too busy to run the renewal timer) is taken for stalled and handed to another worker. Before, that
 * worker sent the message again while the first attempt was still waiting for its answer: two
 * concurrent requests with the same webhook-id from two healthy workers. Now the second worker finds the
 * delivery's attempt claim held and defers until the first attempt's outcome is saved (then: delivered,
 * nothing more to do).
 *
 * Deterministic: worker A runs with `skipLockRenewal` (exactly what a loop that cannot renew does) and a
 * 1 s lock; worker B checks for stalled jobs every 300 ms. The receiver answers after 3 s. Real Redis,
 * real BullMQ workers, a real HTTP receiver on loopback.
 *
 * The workers run the delivery path on a worker-role runtime, as the service's worker process does: its
 * Redis clients wait for a slow Redis. The API's clients (the service started here is the API alone)
 * give up on a command after 2 s; a delivery run on them failed when a loaded machine stalled Redis that
 * long — "Command timed out" instead of the test's result, or, after the attempt had gone out, its
 * outcome unsaved, a second send.
 */
import { Worker } from 'bullmq';
import { createDeliveryProcessor } from '../../src/outbound/delivery.worker.js';
import { DELIVERY_QUEUE, type DeliveryJob } from '../../src/queues/delivery.queue.js';
import { startDeliveryRig, type DeliveryRig } from '../helpers/delivery-rig.js';
import { waitFor } from '../helpers/service.js';

let rig: DeliveryRig;

beforeAll(async () => {
  rig = await startDeliveryRig({ OUTBOUND_TIMEOUT_MS: '8000', OUTBOUND_RETRY_SCHEDULE_MS: '60000' });
});
afterAll(async () => {
  await rig?.close();
});

test.each([
  ['delivered', 200, 'p200'],
  // A's outcome (retry in 60 s) is saved but A cannot move the job it lost: B's run waits for the schedule.
  ['retried on the schedule', 500, 'p500'],
])('a job whose lock was lost mid-attempt is not sent again while that attempt is in flight (%s)', async (_, status, partnerId) => {
  const { workerRt, workers } = rig;
  for (const w of workers.splice(0)) await w.close(true);
  const rx = await rig.receiver(() => new Promise((resolve) => setTimeout(() => resolve(status), 3_000)));
  const endpointId = await rig.endpoint(partnerId, rx.url);

  const errors: string[] = [];
  const worker = (opts: { lockDuration: number; skipLockRenewal?: boolean; skipStalledCheck?: boolean; stalledInterval?: number }): Worker => {
    const w = new Worker<DeliveryJob, string>(DELIVERY_QUEUE, createDeliveryProcessor(workerRt.delivery), {
      connection: workerRt.bullConnection('worker'),
      prefix: workerRt.keys.queuePrefix(DELIVERY_QUEUE),
      concurrency: 1,
      maxStalledCount: 100,
      ...opts,
    });
    w.on('error', (err) => errors.push(err.message));
    workers.push(w);
    return w;
  };
  // Worker A: its lock (1 s) is never renewed, as when its event loop is blocked past the lock.
  worker({ lockDuration: 1_000, skipLockRenewal: true, skipStalledCheck: true });

  const { messageId } = await workerRt.outbound.emit(partnerId, 'attribution.order_attributed', { orderId: 'o1' }, 'o-1');
  await waitFor(async () => rx.ids.length >= 1, 10_000, 10);
  // Worker B: healthy; its stalled check finds A's job without a lock and takes it over.
  worker({ lockDuration: 30_000, stalledInterval: 300 });

  await waitFor(async () => {
    const stored = await workerRt.outbound.message(partnerId, messageId!);
    const d = stored?.deliveries.find((x) => x.endpointId === endpointId);
    return status === 200 ? d?.state === 'delivered' : d?.attempts === 1 && d.nextAttemptAt !== null;
  }, 20_000, 50);
  // Past B's deferrals (about a second each): the job is done (or waits for its retry), nothing more goes out.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  // Before: B sent it again about 1.5 s into A's attempt: two requests in flight, two in all (and, after a
  // failed attempt, a third a second later instead of the scheduled 60 s).
  expect(rx.maxOpen()).toBe(1);
  expect(rx.ids).toEqual([messageId]);
}, 60_000);
