/**
 * The test helpers' one-off Redis probes leave no timer behind. waitReady() called disconnect() on a
 * probe Redis had refused: ioredis then arms a 2 s "stream still open" timer on the closed socket,
 * which nothing clears, so a test file that started its redis-server again near its end
 * (queues-board.redis-down) kept jest waiting ("did not exit one second after the test run").
 * Timers are watched by wrapping the context's setTimeout/clearTimeout before the helpers load.
 */
const pending = new Map<NodeJS.Timeout, string>();
const realSet = globalThis.setTimeout;
const realClear = globalThis.clearTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const where = (new Error().stack ?? '').split('\n').slice(2, 5).join(' | ');
  const t = realSet((...a: unknown[]) => {
    pending.delete(t);
    fn(...a);
  }, ms, ...args);
  pending.set(t, `${ms ?? 0} ms ${where}`);
  return t;
}) as typeof setTimeout;
globalThis.clearTimeout = ((t: NodeJS.Timeout | undefined) => {
  if (t) pending.delete(t);
  realClear(t);
}) as typeof clearTimeout;

const { testPort } = await import('../helpers/ports.js');
const { startRedis, waitReady } = await import('../helpers/redis-server.js');

/** Timers that would keep the process alive, armed by ioredis' connector. */
const leftByIoredis = (): string[] => [...pending].filter(([t, where]) => t.hasRef() && where.includes('ioredis')).map(([, where]) => where);
const tick = (ms: number): Promise<void> => new Promise((r) => realSet(r, ms));

afterAll(() => {
  globalThis.setTimeout = realSet;
  globalThis.clearTimeout = realClear;
});

test('waitReady on a port nobody listens on: the refused probes leave no ioredis timer', async () => {
  const port = await testPort();
  await expect(waitReady(port, 300)).rejects.toThrow(/did not start/);
  await tick(50);
  expect(leftByIoredis()).toEqual([]);
});

test('a redis-server stopped and started again (waitReady probes while it comes up): no ioredis timer left', async () => {
  const redis = await startRedis();
  try {
    await redis.stop('SIGKILL');
    await redis.start();
    await tick(100);
    expect(leftByIoredis()).toEqual([]);
  } finally {
    await redis.destroy();
  }
});
