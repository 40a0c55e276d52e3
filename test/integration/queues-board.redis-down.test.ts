/**
 * /admin/queues while Redis is down: the dashboard's API answers 503 problem+json (a dependency is
 * down), as every other route does, not bull-board's own 500 `{"error":…,"message":"Command timed out"}`
 * (found against `npm start` with its Redis stopped). Real redis-server, stopped and started again.
 */
import { ADMIN_KEY, serviceForFile, type TestService } from '../helpers/service.js';
import { waitForOwnTime } from '../helpers/loop-stalls.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

const board = (path: string): Promise<Response> => fetch(`${svc.url}/admin/queues${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

/**
 * The board's API answers 200 within the API client's timings: a reconnect attempt at most 2 s after
 * the last (src/store/redis.ts retryStrategy) and a command timeout of 2 s, with a margin, counted in
 * this process's own time. On a loaded machine one answer can be a 503 while Redis is up (a command
 * over the 2 s timeout, as the dashboard promises), so a single request is no proof either way.
 */
const answers200 = (): Promise<boolean> => waitForOwnTime(async () => (await board('/api/queues')).status === 200, 2_000 + 2_000 + 6_000, { stepMs: 200 });

test('Redis down: the dashboard API is a 503 problem with Retry-After, and back to 200 once Redis is', async () => {
  await answers200();
  await svc.redis.stop();
  try {
    const r = await board('/api/queues');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(await r.json()).toMatchObject({ status: 503, title: 'Service Unavailable' });
  } finally {
    await svc.redis.start();
  }
  await answers200();
}, 120_000);
