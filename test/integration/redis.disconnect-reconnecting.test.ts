/**
 * ioredis 5.11.1 quirk (src/store/redis.ts endBetweenReconnects): disconnect() on a client waiting
 * between two reconnect attempts left it 'reconnecting' forever, and the commands queued on it never
 * settled, so closing a BullMQ worker or the sync dispatcher right after an outage hung the shutdown.
 * Our clients (createRedis) and the ones BullMQ duplicates from them end instead, their queued commands
 * rejected.
 */
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
