/**
 * The API's Redis client (createRedis 'api': commandTimeout 2 s) does not reject a command that Redis
 * answered while the process's event loop was stalled past the timeout. ioredis' timer rejected it in
 * the timers phase, before the poll phase read the reply waiting in the socket: the API answered 503
 * to an event it had stored (two order.created on one Redis in a loaded fresh-clone CI). A Redis that
 * does not answer is still a timeout.
 */
import { createRedis, type RedisClient, waitForRedis } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;
let client: RedisClient;

beforeAll(async () => {
  redis = await startRedis();
  client = createRedis({ url: redis.url }, 'api', 'stall-test');
  await waitForRedis(client);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.destroy();
});

/** Blocks this process's event loop, as a long GC pause or a starved machine does. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: no timer, no I/O runs
  }
}

test('a command answered during a 2.5 s stall of the event loop resolves: it is not "Command timed out"', async () => {
  const set = client.set('stall:k', 'v').then(
    (r) => ({ ok: r }),
    (err: Error) => ({ err: err.message }),
  );
  stall(2_500);
  expect(await set).toEqual({ ok: 'OK' });
  expect(await client.get('stall:k')).toBe('v');
});

test('a Redis that does not answer is still a timeout', async () => {
  const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))![1]);
  process.kill(pid, 'SIGSTOP');
  try {
    const started = Date.now();
    await expect(client.get('stall:k')).rejects.toThrow('Command timed out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitForRedis(client);
});
