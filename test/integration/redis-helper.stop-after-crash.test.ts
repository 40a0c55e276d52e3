/**
 * The test helper's redis-server can be destroyed after it died of a signal on its own (the OOM
 * killer on a loaded CI, a test's SIGKILL by pid): stop() took only a non-null exit code for "exited"
 * and waited for an 'exit' event that had come already, so the afterAll that destroyed it hung until
 * jest's hook timeout.
 */
import { startRedis } from '../helpers/redis-server.js';

test('destroy() of a redis-server that was killed by a signal ends at once', async () => {
  const redis = await startRedis();
  const c = redis.client();
  const pid = Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
  c.disconnect();
  process.kill(pid, 'SIGKILL');
  // Until the helper's child process has seen its exit.
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([redis.destroy().then(() => 'destroyed'), new Promise<string>((r) => (timer = setTimeout(() => r('still waiting'), 5_000)))]);
  clearTimeout(timer);
  expect(ended).toBe('destroyed');
}, 30_000);
