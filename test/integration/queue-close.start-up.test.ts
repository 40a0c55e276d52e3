/**
 * A BullMQ queue closed while its start-up still waits on Redis, then its shared connection ended (a
 * process stopped right after its start: runtime.close() closes the producers, then disconnects the
 * connections it owns). Seen once in CI (links.test.ts on the Cluster): BullMQ's close() on a shared
 * connection removed the connection's error forwarding without waiting for its start-up, which then
 * failed ("Cluster isn't ready and enableOfflineQueue options is false"; on one Redis "Connection is
 * closed.") and was emitted as 'error' with no listener: an unhandled rejection, which ends a process
 * (src/queues/close-queue.ts).
 *
 * Deterministic: the shared connection reaches Redis through a proxy that holds its commands from the
 * first INFO (BullMQ's start-up asks each queue's Redis version) on, as a Redis that does not answer
 * would, so each queue's start-up is still waiting when it is closed and when the connection ends.
 * Real Redis, the real producers, no mocks.
 */
import { Queue } from 'bullmq';
import { AttributionProducer } from '../../src/queues/attribution.queue.js';
import { closeQueue } from '../../src/queues/close-queue.js';
import { DeliveryProducer } from '../../src/queues/delivery.queue.js';
import { SyncProducer } from '../../src/queues/queues.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis, waitForRedis, type RedisClient } from '../../src/store/redis.js';
import { startRedisHoldProxy, type RedisHoldProxy } from '../helpers/redis-hold-proxy.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testTopology } from '../helpers/redis-cluster.js';

const single = testTopology() === 'single' ? test : test.skip;

let redis: TestRedis | undefined;
let proxy: RedisHoldProxy | undefined;
const unhandled: unknown[] = [];
const record = (err: unknown): void => void unhandled.push(err);

beforeAll(async () => {
  if (testTopology() !== 'single') return; // one proxy in front of one redis-server
  redis = await startRedis();
  proxy = await startRedisHoldProxy(redis.port);
});
afterAll(async () => {
  await proxy?.close();
  await redis?.destroy();
});
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
});
afterEach(() => {
  process.off('unhandledRejection', record);
  process.off('uncaughtException', record);
});

/** The API role's producer connection (runtime.ts bullConnection), through the proxy; its commands held from its next INFO on. */
async function heldConnection(): Promise<{ client: RedisClient; held: Promise<void> }> {
  const client = createRedis({ url: `redis://127.0.0.1:${proxy!.port}` }, 'api', 'syndicast-bull');
  client.on('error', () => undefined);
  await waitForRedis(client, 5000);
  const { held } = proxy!.holdNext((chunk) => /\r\ninfo\r\n/i.test(chunk), () => false, 10_000);
  return { client, held };
}

/** Ends the connection as runtime.close() does, then lets its commands' failures run their course. */
async function endConnection(client: RedisClient): Promise<void> {
  const ended = new Promise((resolve) => client.once('end', resolve));
  client.disconnect();
  await ended;
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

const keys = new Keys('qclose');

single("the producers' queues closed while their start-up waits on Redis: no unhandled 'error' once the connection ends", async () => {
  const { client, held } = await heldConnection();
  const sync = new SyncProducer(client, keys, 1);
  const queues = sync.allQueues();
  const attribution = new AttributionProducer(client, keys);
  const delivery = new DeliveryProducer(client, keys);
  await held;
  const t0 = Date.now();
  await Promise.all([sync.close(), attribution.close(), delivery.close()]);
  // Bounded: a start-up that does not end does not hold the shutdown (CLOSE_WAIT_MS).
  expect(Date.now() - t0).toBeLessThan(3000);
  expect(queues.length).toBeGreaterThan(1);
  await endConnection(client);
  expect(unhandled).toEqual([]);
});

single("closeQueue: a start-up failing while the close waits for it reaches the queue's own listener", async () => {
  const { client, held } = await heldConnection();
  const q = new Queue('qclose-direct', { connection: client, prefix: keys.queuePrefix('qclose-direct') });
  // The dashboard's and the scheduler's queues log their connection errors this way (app.ts, scheduler.ts).
  const seen: string[] = [];
  q.on('error', (err) => seen.push(err.message));
  await held;
  const closing = closeQueue(q, 5000);
  // The connection ends while the close still waits for the start-up (within its bound).
  await endConnection(client);
  await closing;
  expect(seen).toContain('Connection is closed.');
  expect(unhandled).toEqual([]);
});
