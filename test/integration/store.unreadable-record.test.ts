/**
 * isUnreadableRecord: what the sweep, the readiness tick and the partner list skip one item on (its
 * record does not read), against what must fail the whole operation (Redis unavailable: a partial
 * partner list answered 200, or every show of a sweep logged "skipped" during an outage, would hide it).
 * The errors are the real ones: a WRONGTYPE reply of a real Redis, JSON.parse's SyntaxError, ioredis'
 * errors for a Redis that is gone.
 */
import { Redis } from 'ioredis';
import { isUnreadableRecord } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

test('a key of another type and JSON that does not parse are unreadable records', async () => {
  const c = new Redis(redis.url);
  try {
    await c.set('k', 'a string');
    const wrongType = await c.hgetall('k').then(() => undefined, (err: unknown) => err);
    const script = await c.eval("return redis.call('HGETALL', KEYS[1])", 1, 'k').then(() => undefined, (err: unknown) => err);
    const syntax = (() => {
      try {
        JSON.parse('{"id":"p1","na');
      } catch (err) {
        return err;
      }
    })();
    expect([wrongType, script, syntax].map(isUnreadableRecord)).toEqual([true, true, true]);
  } finally {
    c.disconnect();
  }
});

test('Redis gone, a refusal or any other error is not an unreadable record (the whole operation fails)', async () => {
  // A client of a Redis that is gone (its server stopped: nothing listens on the port any more).
  const gone = await startRedis();
  const port = Number(new URL(gone.url).port);
  await gone.stop();
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  const closed = await c.smembers('x').then(() => undefined, (err: unknown) => err);
  c.disconnect();
  expect(closed).toBeInstanceOf(Error);
  const others = [closed, new Error('MISCONF Errors writing to the AOF file: No space left on device'), new Error('LOADING Redis is loading the dataset in memory'), new Error('Command timed out'), new TypeError('x is undefined'), 'a string'];
  expect(others.map(isUnreadableRecord)).toEqual(others.map(() => false));
});
