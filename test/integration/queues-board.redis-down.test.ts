/**
 * /admin/queues while Redis is down: the dashboard's API answers 503 problem+json (a dependency is
 * down), as every other route does, not bull-board's own 500 `{"error":…,"message":"Command timed out"}`
 * (found against `npm start` with its Redis stopped). Real redis-server, stopped and started again.
 */
import { ADMIN_KEY, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

const board = (path: string): Promise<Response> => fetch(`${svc.url}/admin/queues${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });

test('Redis down: the dashboard API is a 503 problem with Retry-After, and back to 200 once Redis is', async () => {
  expect((await board('/api/queues')).status).toBe(200);
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
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await board('/api/queues')).status;
    if (status !== 200) await new Promise((res) => setTimeout(res, 200));
  }
  expect(status).toBe(200);
}, 60_000);
