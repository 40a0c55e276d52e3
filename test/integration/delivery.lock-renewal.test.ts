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
import { createServer, type Server } from 'node:http';
import type { Worker } from 'bullmq';
import { createRuntime, type Runtime } from '../../src/main/runtime.js';
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { DELIVERY_QUEUE, deliveryJobId, type DeliveryJob } from '../../src/queues/delivery.queue.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { logSink } from '../helpers/log-sink.js';
import { startRedisHoldProxy, type RedisHoldProxy } from '../helpers/redis-hold-proxy.js';

interface Line {
  level: number;
  msg: string;
  jobId?: string;
  err?: { message?: string };
}

let svc: TestService;
let workerRt: Runtime;
let proxy: RedisHoldProxy;
const servers: Server[] = [];
const workers: Worker[] = [];

beforeAll(async () => {
  // Attempts of 400 ms: the delivery lock is 3 × that (1.2 s), renewed every 300 ms; retries after 300 ms.
  svc = await startService({ env: { OUTBOUND_TIMEOUT_MS: '400', OUTBOUND_RETRY_SCHEDULE_MS: '300' } });
  workerRt = await createRuntime(svc.config, 'worker', { log: svc.rt.log, redisInfo: svc.rt.redisInfo });
  proxy = await startRedisHoldProxy(svc.redis.port);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.close(true)));
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await proxy?.close();
  await workerRt?.close();
  await svc?.close();
});

/** A receiver answering each request with the next of `statuses` (the last one from then on) after `delayMs`. */
async function receiver(statuses: number[], delayMs: number, gate?: Promise<void>): Promise<{ url: string; ids: string[]; maxOpen: () => number }> {
  let open = 0;
  let maxOpen = 0;
  const ids: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = statuses[Math.min(ids.length, statuses.length - 1)]!;
      ids.push(String(req.headers['webhook-id']));
      open += 1;
      maxOpen = Math.max(maxOpen, open);
      void Promise.all([new Promise((r) => setTimeout(r, delayMs)), gate]).then(() => {
        open -= 1;
        res.writeHead(status).end('ok');
      });
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks`, ids, maxOpen: () => maxOpen };
}

async function endpointFor(partnerId: string, url: string): Promise<string> {
  await createPartner(svc, partnerId);
  const r = await svc.api(`/v1/partners/${partnerId}/endpoints`, { json: { url, events: ['attribution.order_attributed'] } });
  expect(r.status).toBe(201);
  return ((await r.json()) as { id: string }).id;
}

/**
 * A delivery worker as the service starts it; `viaProxy`: its Redis connection goes through the hold
 * proxy; `lockMs`: its lock when shorter than the one the attempt timeout makes (1.2 s).
 */
function deliveryWorker(viaProxy: boolean, lockMs?: number): Line[] {
  const { log, lines } = logSink<Line>('debug');
  const connection = viaProxy ? { host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: null } : workerRt.bullConnection('worker');
  const lock = lockMs === undefined ? { lockDurationMs: 400, attemptTimeoutMs: svc.config.outboundTimeoutMs } : { lockDurationMs: lockMs, attemptTimeoutMs: 0 };
  workers.push(startDeliveryWorker(workerRt.delivery, { connection, keys: workerRt.keys, concurrency: 1, ...lock, log }));
  return lines;
}

const renewalErrors = (lines: Line[]): Line[] => lines.filter((l) => l.level >= 50 && /could not renew lock/.test(l.err?.message ?? ''));

afterEach(async () => {
  for (const w of workers.splice(0)) await w.close(true);
});

test('a retry whose lock renewal comes after its own move to delayed is not logged as an error, and is delivered once', async () => {
  const rx = await receiver([503, 200], 100);
  const endpointId = await endpointFor('p-race', rx.url);
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
  let open!: () => void;
  const rx = await receiver([200], 0, new Promise<void>((r) => (open = r)));
  const endpointId = await endpointFor('p-lost', rx.url);
  // A 150 ms lock, renewed every 38 ms or so: a renewal comes well within the attempt (400 ms).
  const linesA = deliveryWorker(false, 150);
  const { messageId } = await workerRt.outbound.emit('p-lost', 'attribution.order_attributed', { orderId: 'o1' }, 'o-1');
  await waitFor(async () => rx.ids.length >= 1, 10_000, 10);
  const jobId = deliveryJobId({ messageId: messageId!, endpointId, run: 1 } satisfies Pick<DeliveryJob, 'messageId' | 'endpointId' | 'run'>);
  // The lock gone mid-attempt (as when it expired unrenewed): another worker could take the job for stalled.
  const redis = svc.redis.client();
  try {
    expect(await redis.del(`${workerRt.keys.queuePrefix(DELIVERY_QUEUE)}:${DELIVERY_QUEUE}:${jobId}:lock`)).toBe(1);
  } finally {
    redis.disconnect();
  }
  await waitFor(async () => renewalErrors(linesA).length > 0, 5_000, 20);
  open();
  expect(renewalErrors(linesA)[0]!.err?.message).toBe(`could not renew lock for job ${jobId}`);
}, 20_000);
