/**
 * A request is authenticated before its input is read: without a valid key it is a 401, and with a key
 * whose role may not do it a 403, whatever its body, query or path parameters hold. The key check ran
 * after validation (a route's preHandler), so a request with no key and an invalid body got a 400
 * listing the fields the route wants (the OpenAPI document's answer to it is 401), a viewer or
 * partner key got 400s from the routes it may not use at all instead of 403. Real redis-server,
 * real HTTP.
 */
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let viewerKey: string;

beforeAll(async () => {
  svc = await startService();
  expect((await svc.api('/v1/partners', { json: { id: 'pa', name: 'A' } })).status).toBe(201);
  const r = await svc.api('/v1/api-keys', { json: { role: 'viewer' } });
  viewerKey = ((await r.json()) as { key: string }).key;
});
afterAll(async () => {
  await svc.close();
});

const status = async (path: string, init: Parameters<TestService['api']>[1]): Promise<number> => {
  const r = await svc.api(path, init);
  await r.body?.cancel();
  return r.status;
};

test('no key, or an unknown one: 401 whatever the input', async () => {
  for (const key of [null, 'sk_viewer_not-a-key-at-all']) {
    expect([key, await status('/v1/partners', { key, json: {} })]).toEqual([key, 401]);
    expect([key, await status('/v1/api-keys', { key, json: { role: 'nobody' } })]).toEqual([key, 401]);
    expect([key, await status('/v1/partners/pa/shows?limit=100000', { key })]).toEqual([key, 401]);
    expect([key, await status('/v1/audit?cursor=not-a-cursor', { key })]).toEqual([key, 401]);
    expect([key, await status('/v1/partners/pa/targets', { key, json: { platform: 'myspace' } })]).toEqual([key, 401]);
  }
});

test("a viewer key on a route its role may not use: 403 whatever the input", async () => {
  expect(await status('/v1/partners', { key: viewerKey, json: {} })).toBe(403);
  expect(await status('/v1/api-keys', { key: viewerKey, json: { role: 'nobody' } })).toBe(403);
  expect(await status('/v1/partners/pa/targets', { key: viewerKey, json: { platform: 'myspace' } })).toBe(403);
  expect(await status('/v1/partners/pa/reconciliations', { key: viewerKey, json: { from: 'yesterday' } })).toBe(403);
});

test('with a key that may, invalid input is still a 400 with its field errors', async () => {
  const r = await svc.api('/v1/partners', { json: {} });
  expect(r.status).toBe(400);
  expect(((await r.json()) as { errors: { path: string }[] }).errors.map((e) => e.path).sort()).toEqual(['body.id', 'body.name']);
  expect(await status('/v1/partners/pa/shows?limit=100000', { key: viewerKey })).toBe(400);
});
