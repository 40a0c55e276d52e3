/**
 * The shutdown's check that Redis is gone (untilRedisGone, src/main/process.ts) must not take a healthy
 * Redis for a gone one when the connection the API serves on is busy: ReplicaAck sends `WAIT` on it
 * (up to REDIS_WAIT_TIMEOUT_MS, 1500 ms at most), a request may run a slow command. A PING queued
 * behind those went unanswered for over REDIS_GONE_MS, and the shutdown killed the relay's children
 * hard and stopped waiting for its workers while Redis was fine. A frozen Redis is still gone
 * (test/e2e/npm-start.redis-frozen.test.ts). Real redis-server.
 */
import { untilRedisGone, REDIS_GONE_MS } from '../../src/main/process.js';
import { createRedis, waitForRedis, type RedisClient } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
let shared: RedisClient;

beforeAll(async () => {
  redis = await startRedis();
  shared = createRedis({ url: redis.url }, 'api'); // the API's fail-fast client, as the runtime makes it
  await waitForRedis(shared);
});

afterAll(async () => {
  shared?.disconnect();
  await redis?.destroy();
});

test('a shared connection busy with WAIT (no replica: it waits its whole timeout) is not a gone Redis', async () => {
  const gone = untilRedisGone(shared);
  let goneAt: number | undefined;
  const t0 = Date.now();
  void gone.promise.then(() => (goneAt = Date.now() - t0));
  try {
    // Two WAITs of 1500 ms each (REDIS_WAIT_TIMEOUT_MS at its largest): the shared connection answers
    // nothing else for 3 s.
    for (let i = 0; i < 2; i++) expect(await shared.call('WAIT', '1', '1500')).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(goneAt).toBeUndefined();
  } finally {
    gone.cancel();
  }
  expect(Date.now() - t0).toBeGreaterThan(REDIS_GONE_MS * 2);
});

test('a Redis that stops answering (frozen) is gone after REDIS_GONE_MS', async () => {
  const info = String(await shared.info('server'));
  const serverPid = Number(/process_id:(\d+)/.exec(info)![1]);
  const gone = untilRedisGone(shared);
  await new Promise((r) => setTimeout(r, 300));
  process.kill(serverPid, 'SIGSTOP');
  const t0 = Date.now();
  try {
    await gone.promise;
    expect(Date.now() - t0).toBeLessThan(REDIS_GONE_MS * 3);
  } finally {
    gone.cancel();
    process.kill(serverPid, 'SIGCONT');
  }
});
