/**
 * Every answer is observed once in syndicast_http_request_duration_seconds, also those that no route's
 * own onResponse hook sees (review 2026-12-01 R1): a route's answer through reply.callNotFound()
 * (@fastify/static's missing file) runs the not-found context's hooks, and a URL the router refuses
 * (frameworkErrors) runs none. Real service, real redis-server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_KEY, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started), {}, 60_000);

async function count(labels: string): Promise<number> {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`syndicast_http_request_duration_seconds_count{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function total(): Promise<number> {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('syndicast_http_request_duration_seconds_count{'))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

test('HEAD of a GET route is observed once', async () => {
  const labels = 'method="HEAD",route="/health/live",status="200"';
  const before = await count(labels);
  expect((await fetch(`${svc.url}/health/live`, { method: 'HEAD' })).status).toBe(200);
  await sleep(50);
  expect(await count(labels)).toBe(before + 1);
});

test("a missing file of the dashboard's static route (@fastify/static: reply.callNotFound) is observed", async () => {
  const unmatched = 'method="GET",route="unmatched",status="404"';
  const before = { all: await total(), unmatched: await count(unmatched) };
  const r = await fetch(`${svc.url}/admin/queues/static/nope-review.js`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(r.status).toBe(404);
  await sleep(50);
  // every answer before the /metrics reads counts: the /metrics GETs of before plus this 404 (as the not-found handler's)
  expect({ all: (await total()) - before.all, unmatched: await count(unmatched) }).toEqual({ all: 3, unmatched: before.unmatched + 1 });
});

test('a URL the router refuses (malformed %-escape) is observed', async () => {
  const refused = 'method="GET",route="unmatched",status="400"';
  const before = { all: await total(), refused: await count(refused) };
  const r = await fetch(`${svc.url}/v1/partners/%zz`);
  expect(r.status).toBe(400);
  await sleep(50);
  expect({ all: (await total()) - before.all, refused: await count(refused) }).toEqual({ all: 3, refused: before.refused + 1 });
});
