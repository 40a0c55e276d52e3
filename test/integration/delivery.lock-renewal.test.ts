/**
 * "could not renew lock" for delivery jobs (seen at error level against two `npm start` processes with
 * slow receivers answering 5xx): BullMQ's lock renewal of a job whose handler was moving it to delayed
 * for its retry. The handler's moveToDelayed deletes the job's lock; BullMQ untracks the job only once
 * the handler has returned (Worker.processJob), so a renewal its timer sends while the move is in flight
 * reaches Redis after it and finds no lock (src/queues/hand-backs.ts). Harmless: the job waits for its
 * retry, which one worker runs once. It is now a debug line; a lock that is really lost (gone while the
 * attempt runs, so that another worker may take the job over) is still an error line.
 *
 * Deterministic: worker A reaches Redis through a proxy that holds A's moveToDelayed of the job until
 * A's next lock renewal of that job comes after it (as a Redis busy for one renewal period would), so
 * the renewal runs after the move. Worker B, the second process's worker, reaches Redis directly. Real
 * Redis, the real delivery workers (startDeliveryWorker), a real HTTP receiver on loopback.
 */
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { DELIVERY_QUEUE, deliveryJobId } from '../../src/queues/delivery.queue.js';
import { waitFor } from '../helpers/service.js';
import { logSink } from '../helpers/log-sink.js';
import { startDeliveryRig, type DeliveryRig } from '../helpers/delivery-rig.js';
import { startRedisHoldProxy, type RedisHoldProxy } from '../helpers/redis-hold-proxy.js';

interface Line {
  level: number;
  msg: string;
  jobId?: string;
  err?: { message?: string };
}

let rig: DeliveryRig;
let proxy: RedisHoldProxy;

beforeAll(async () => {
  // Attempts of 400 ms: the delivery lock is 3 × that (1.2 s), renewed every 300 ms; retries after 300 ms.
  rig = await startDeliveryRig({ OUTBOUND_TIMEOUT_MS: '400', OUTBOUND_RETRY_SCHEDULE_MS: '300' });
  proxy = await startRedisHoldProxy(rig.svc.redis.port);
});
afterAll(async () => {
  await rig?.close();
  await proxy?.close();
});

/** A receiver's answer: `status` after `ms`. */
const after = (ms: number, status: number): Promise<number> => new Promise((resolve) => setTimeout(() => resolve(status), ms));

/**
 * A delivery worker as the service starts it; `viaProxy`: its Redis connection goes through the hold
 * proxy; `lockMs`: its lock when shorter than the one the attempt timeout makes (1.2 s).
 */
function deliveryWorker(viaProxy: boolean, lockMs?: number): Line[] {
  const { log, lines } = logSink<Line>('debug');
  const { workerRt } = rig;
  const connection = viaProxy ? { host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: null } : workerRt.bullConnection('worker');
  const lock = lockMs === undefined ? { lockDurationMs: 400, attemptTimeoutMs: rig.svc.config.outboundTimeoutMs } : { lockDurationMs: lockMs, attemptTimeoutMs: 0 };
  rig.workers.push(startDeliveryWorker(workerRt.delivery, { connection, keys: workerRt.keys, concurrency: 1, ...lock, log }));
  return lines;
}

const renewalErrors = (lines: Line[]): Line[] => lines.filter((l) => l.level >= 50 && /could not renew lock/.test(l.err?.message ?? ''));

afterEach(async () => {
  for (const w of rig.workers.splice(0)) await w.close(true);
});

test('a retry whose lock renewal comes after its own move to delayed is not logged as an error, and is delivered once', async () => {
  const { workerRt } = rig;
  // The first attempt fails slowly (503 after 100 ms): retried; the retry is delivered.
  const rx = await rig.receiver((n) => (n === 0 ? after(100, 503) : Promise.resolve(200)));
  const endpointId = await rig.endpoint('p-race', rx.url);
  // A's moveToDelayed of the job (EVALSHA/EVAL with 12 keys, the job's key among them) is held until A
  // sends a renewal of the same job (extendLocks: one key, the stalled set; the job id among its args).
  const hold = proxy.holdNext(
    (c) => c.includes(`.${endpointId}`) && /\r\n\$2\r\n12\r\n/.test(c),
    (c) => c.includes(`.${endpointId}`) && /\r\n\$1\r\n1\r\n/.test(c) && c.includes(':stalled'),
  );
  const linesA = deliveryWorker(true);
  const { messageId } = await workerRt.outbound.emit('p-race', 'attribution.order_attributed', { orderId: 'o1' }, 'o-1');
  await waitFor(async () => rx.ids.length >= 1, 10_000, 10);
  const linesB = deliveryWorker(false);

  await hold.held;
  // The renewal was sent while the move was in flight: it ran after it, on a job no longer locked.
  expect(await hold.released).toBe('until');
  await waitFor(async () => (await workerRt.outbound.message('p-race', messageId!))?.deliveries.find((d) => d.endpointId === endpointId)?.state === 'delivered', 10_000, 20);
  const jobId = deliveryJobId({ messageId: messageId!, endpointId, run: 1 });
  const raced = (): Line[] => linesA.filter((l) => l.level === 20 && l.jobId === jobId && /lock renewal of a job this worker had just moved to delayed/.test(l.msg));
  await waitFor(async () => raced().length > 0 || renewalErrors(linesA).length > 0, 5_000, 20);

  // Before: A logged `delivery worker error` "could not renew lock for job …" at error level.
  expect(renewalErrors(linesA)).toEqual([]);
  expect(renewalErrors(linesB)).toEqual([]);
  expect(raced()).toHaveLength(1);
  // The retry was sent once (by A or B), never two at once: the 503 and the 200, one webhook-id.
  expect(rx.ids).toEqual([messageId, messageId]);
  expect(rx.maxOpen()).toBe(1);
}, 20_000);

test('a lock lost while the attempt runs is still logged as an error', async () => {
  const { workerRt } = rig;
  let open!: () => void;
  const answered = new Promise<number>((r) => (open = () => r(200)));
  const rx = await rig.receiver(() => answered);
  const endpointId = await rig.endpoint('p-lost', rx.url);
  // A 150 ms lock, renewed every 38 ms or so: a renewal comes well within the attempt (400 ms).
  const linesA = deliveryWorker(false, 150);
  const { messageId } = await workerRt.outbound.emit('p-lost', 'attribution.order_attributed', { orderId: 'o1' }, 'o-1');
  await waitFor(async () => rx.ids.length >= 1, 10_000, 10);
  const jobId = deliveryJobId({ messageId: messageId!, endpointId, run: 1 });
  // The lock gone mid-attempt (as when it expired unrenewed): another worker could take the job for stalled.
  const redis = rig.svc.redis.client();
  try {
    expect(await redis.del(`${workerRt.keys.queuePrefix(DELIVERY_QUEUE)}:${DELIVERY_QUEUE}:${jobId}:lock`)).toBe(1);
  } finally {
    redis.disconnect();
  }
  await waitFor(async () => renewalErrors(linesA).length > 0, 5_000, 20);
  open();
  expect(renewalErrors(linesA)[0]!.err?.message).toBe(`could not renew lock for job ${jobId}`);
}, 20_000);
