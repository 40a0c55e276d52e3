/**
 * ioredis 5.11.1 quirk (src/store/redis.ts endBetweenReconnects): disconnect() on a client waiting
 * between two reconnect attempts left it 'reconnecting' forever, and the commands queued on it never
 * settled, so closing a BullMQ worker or the sync dispatcher right after an outage hung the shutdown.
 * Our clients (createRedis) and the ones BullMQ duplicates from them end instead, their queued commands
 * rejected; and a BullMQ worker closed in that state closes once Redis answers again.
 *
 * The second test is what guards the shutdown: npm-start.redis-down's SIGTERM-after-outage test no longer
 * reaches this state, since its process drains the API first (SHUTDOWN_DRAIN_MS + REFUSE_MS +
 * CLOSE_SETTLE_MS, 1.7 s by default) and every connection has reconnected before the workers close. A
 * process without the API (npm run start:worker, or SHUTDOWN_DRAIN_MS=0) closes its workers at once.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.destroy();
});

test('a client disconnected between reconnect attempts ends, and what was queued on it is rejected (its duplicate too)', async () => {
  const client = createRedis({ url: redis.url }, 'worker', 'test-reconnecting') as Redis;
  client.on('error', () => undefined);
  const dup = client.duplicate(); // what BullMQ does for a worker's blocking connection
  dup.on('error', () => undefined);
  await client.ping();
  await dup.ping();
  await redis.stop('SIGKILL');
  try {
    // Waiting for the next attempt (retryStrategy >= 200 ms): the window the shutdown hit.
    await waitFor(async () => client.status === 'reconnecting' && dup.status === 'reconnecting', 10_000, 5);
    const queued = [client.get('k'), dup.get('k')].map((p) => p.then(() => 'resolved', (err: Error) => err.message));
    client.disconnect();
    dup.disconnect();
    const settled = await Promise.race([Promise.all(queued), new Promise<'never settled'>((r) => setTimeout(() => r('never settled'), 3000))]);
    expect({ settled, status: [client.status, dup.status] }).toEqual({ settled: ['Connection is closed.', 'Connection is closed.'], status: ['end', 'end'] });
  } finally {
    await redis.start();
  }
});

test('a BullMQ worker closed while its blocking connection waits between reconnect attempts closes once Redis is back (no hung shutdown)', async () => {
  // As the worker role makes them: the connection a createRedis 'worker' client, the blocking one BullMQ's duplicate of it.
  const connection = createRedis({ url: redis.url }, 'worker', 'test-reconnecting-worker') as Redis;
  connection.on('error', () => undefined);
  const worker = new Worker('reconnecting', async () => undefined, { connection, prefix: 't' + randomBytes(3).toString('hex') });
  worker.on('error', () => undefined);
  try {
    await worker.waitUntilReady();
    const blocking = await (worker as unknown as { blockingConnection: { client: Promise<Redis> } }).blockingConnection.client;
    await waitFor(async () => blocking.status === 'ready', 10_000, 5);
    await redis.stop('SIGKILL');
    let statusAtClose: string;
    let closed: Promise<string>;
    try {
      await waitFor(async () => blocking.status === 'reconnecting', 10_000, 5);
      // Worker.close() disconnects the blocking connection and waits for its 'end' (whenCurrentJobsFinished).
      statusAtClose = blocking.status;
      closed = worker.close().then(() => 'closed');
    } finally {
      await redis.start();
    }
    const outcome = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('hung'), 3000))]);
    expect({ statusAtClose, outcome, blocking: blocking.status }).toEqual({ statusAtClose: 'reconnecting', outcome: 'closed', blocking: 'end' });
  } finally {
    connection.disconnect();
  }
});
