/**
 * unlessStopped() (src/lib/startup-stop.ts): each wait of the start-up (Redis above all) ends with
 * StartupStopped once a stop signal came. The e2e test (npm-start.startup-signal) sends the signal
 * while the start waits; a signal that came before a wait began, and the stop winning over a wait
 * that ends just after, were not checked. No Redis: AbortController only.
 */
import { StartupStopped, unlessStopped } from '../../src/lib/startup-stop.js';

test('a wait that begins after the stop signal throws at once (the abort event has fired already)', () => {
  const ac = new AbortController();
  ac.abort('SIGINT');
  expect(() => unlessStopped(Promise.resolve('ready'), ac.signal)).toThrow(new StartupStopped('SIGINT'));
});

test('a stop signal during the wait ends it with StartupStopped, though what it waits for ends just after', async () => {
  const ac = new AbortController();
  let ready!: (v: string) => void;
  const waited = unlessStopped(new Promise<string>((r) => (ready = r)), ac.signal);
  ac.abort('SIGTERM');
  ready('ready');
  await expect(waited).rejects.toThrow('SIGTERM during start-up');
});

test('without a stop signal the wait is what it waits for', async () => {
  const ac = new AbortController();
  await expect(unlessStopped(Promise.resolve('ready'), ac.signal)).resolves.toBe('ready');
  await expect(unlessStopped(Promise.resolve('ready'), undefined)).resolves.toBe('ready');
});

test('a wait given up before it began leaves what it waits for handled: its later failure (a Redis wait timing out) is no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const ac = new AbortController();
    ac.abort('SIGTERM');
    const waitForRedis = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('Redis not ready after 15000 ms')), 20));
    expect(() => unlessStopped(waitForRedis, ac.signal)).toThrow(new StartupStopped('SIGTERM'));
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
