/**
 * The service as `npm start` runs it, at the default LOG_LEVEL (info): a tracked-link redirect writes no
 * access-log lines ("incoming request", "request completed" — two lines per click were most of the
 * log's volume and a real part of a click's CPU; clicks are counted in Redis and the HTTP metrics),
 * while every other route still logs its requests. A real src/main/all.ts child process.
 */
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

let redis: TestRedis;
let svc: { child: WorkerProcess; url: string };

beforeAll(async () => {
  redis = await startRedis();
  svc = await startAllProcess(redis.env, { LOG_LEVEL: 'info' });
}, 90_000);
afterAll(async () => {
  await svc?.child.kill('SIGTERM');
  await redis?.destroy();
});

const logLines = (): { msg?: string; req?: { url?: string } }[] =>
  svc.child
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; req?: { url?: string } });

test('at LOG_LEVEL=info a redirect logs no access lines; other routes still do', async () => {
  const miss = await fetch(`${svc.url}/l/no-such-code-1`, { redirect: 'manual' });
  expect(miss.status).toBe(404);
  const other = await fetch(`${svc.url}/v1/nowhere-logged`);
  expect(other.status).toBe(404);
  // The other route's lines show the log is being written (and flushed) at all.
  await waitFor(async () => logLines().some((l) => l.msg === 'incoming request' && l.req?.url === '/v1/nowhere-logged'), 10_000, 50);
  expect(logLines().filter((l) => JSON.stringify(l).includes('no-such-code-1'))).toEqual([]);
}, 60_000);
