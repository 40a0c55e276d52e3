/**
 * The operator API's create and update bodies refuse a field they do not take: a 400 problem whose
 * `errors` name it (`body.<field>`), and nothing written. They used to drop it (zod's default strip)
 * and answer 2xx: `{"role": "viewer", "expiresat": …}` made a key that never expires, a target's
 * misspelt `pinDelayMS` was saved as no delay. The partner event ingest stays forward-compatible: an
 * event (or a show in it) with a field this version does not know is taken (202). Real
 * redis-server, real HTTP.
 */
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

type Problem = { status: number; errors?: { path: string; message: string }[] };
interface Doc {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>>;
}

let svc: TestService;
let secret: string;
let endpointId: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'uf');
  const t = await svc.api('/v1/partners/uf/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
  expect(t.status).toBe(201);
  const e = await svc.api('/v1/partners/uf/endpoints', { json: { url: 'http://127.0.0.1:9/hooks', events: ['mirror.updated'] } });
  expect(e.status).toBe(201);
  endpointId = ((await e.json()) as { id: string }).id;
});
afterAll(async () => {
  await svc?.close();
});

const TARGET = { platform: 'whatnot', name: 'Whatnot 2', credentials: { accessToken: 'wn_y' }, commissionRateBps: 100 };

/** [what, method, path, body, the field paths the 400 must name] */
const CASES: [string, string, () => string, unknown, string[]][] = [
  ['api key, misspelt expiresAt', 'POST', () => '/v1/api-keys', { role: 'viewer', expiresat: '2030-01-01T00:00:00Z' }, ['body.expiresat']],
  ['api key, two unknown fields', 'POST', () => '/v1/api-keys', { role: 'viewer', nmae: 'ci', scope: 'all' }, ['body.nmae', 'body.scope']],
  ['partner', 'POST', () => '/v1/partners', { id: 'uf2', name: 'P', attributionWindowHour: 24 }, ['body.attributionWindowHour']],
  ['partner PATCH', 'PATCH', () => '/v1/partners/uf', { name: 'P', webhookSecret: 'whsec_AAAA' }, ['body.webhookSecret']],
  ['target', 'POST', () => '/v1/partners/uf/targets?verify=false', { ...TARGET, id: 'wn2', pinDelayMS: 5000 }, ['body.pinDelayMS']],
  ['target, inside rateLimit', 'POST', () => '/v1/partners/uf/targets?verify=false', { ...TARGET, id: 'wn3', rateLimit: { requests: 5, windowMs: 1000, burst: 2 } }, ['body.rateLimit.burst']],
  ['target PATCH', 'PATCH', () => '/v1/partners/uf/targets/wn?verify=false', { name: 'x', platform: 'tiktok' }, ['body.platform']],
  ['endpoint', 'POST', () => '/v1/partners/uf/endpoints', { url: 'http://127.0.0.1:9/h2', events: ['mirror.updated'], secret: 'whsec_AAAA' }, ['body.secret']],
  ['endpoint PATCH', 'PATCH', () => `/v1/partners/uf/endpoints/${endpointId}`, { enabled: false, event: ['mirror.updated'] }, ['body.event']],
  ['reconciliation', 'POST', () => '/v1/partners/uf/reconciliations', { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z', targetId: 'wn' }, ['body.targetId']],
  ['mirror link, inside ingest', 'PUT', () => '/v1/partners/uf/shows/s1/mirrors/wn', { externalId: 'x1', ingest: { url: 'rtmp://live.example.com/app', streamKey: 'k', key: 'k' } }, ['body.ingest.key']],
  ['redeliver', 'POST', () => '/v1/partners/uf/messages/m1/redeliver', { endpointID: 'ep1' }, ['body.endpointID']],
];

async function state(): Promise<string> {
  const reads = ['/v1/api-keys', '/v1/partners', '/v1/partners/uf/targets', '/v1/partners/uf/endpoints', '/v1/partners/uf/reconciliations', '/v1/audit?limit=100'];
  return JSON.stringify(await Promise.all(reads.map(async (p) => (await svc.api(p)).text())));
}

test.each(CASES)('%s: an unknown field → 400 problem naming it, nothing written', async (_what, method, path, json, named) => {
  const before = await state();
  const r = await svc.api(path(), { method, json });
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await r.json()) as Problem;
  expect(p.errors?.filter((e) => /^unknown field/.test(e.message)).map((e) => e.path)).toEqual(named);
  expect(await state()).toBe(before);
});

test('the console sign-in body too', async () => {
  const r = await svc.api('/v1/ops/session', { key: null, json: { key: ADMIN_KEY, remember: true } });
  expect([r.status, ((await r.json()) as Problem).errors?.map((e) => e.path)]).toEqual([400, ['body.remember']]);
});

test('the same bodies without the unknown field are taken', async () => {
  expect((await svc.api('/v1/api-keys', { json: { role: 'viewer', expiresAt: '2030-01-01T00:00:00Z' } })).status).toBe(201);
  expect((await svc.api('/v1/partners/uf/targets/wn?verify=false', { method: 'PATCH', json: { name: 'x' } })).status).toBe(200);
});

test('a partner event, and a show in it, with fields this version does not know are taken (forward-compatible)', async () => {
  const product = { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', color: 'red' };
  const event = { ...(showEvent('show.scheduled', sampleShow('fw', { channel: 'tv', products: [product] }), '2026-11-24T17:00:00Z') as object), schemaVersion: 2 };
  const r = await sendEvent(svc, 'uf', secret, event);
  expect(r.status).toBe(202);
});

test('the OpenAPI document says so: additionalProperties false on the operator bodies, not on the partner events', async () => {
  const doc = (await (await fetch(`${svc.url}/docs/json`)).json()) as Doc;
  const body = (path: string, method: string) => doc.paths[path]?.[method]?.requestBody?.content['application/json']?.schema;
  for (const [path, method] of [
    ['/v1/api-keys', 'post'],
    ['/v1/partners', 'post'],
    ['/v1/partners/{partnerId}', 'patch'],
    ['/v1/partners/{partnerId}/targets', 'post'],
    ['/v1/partners/{partnerId}/targets/{targetId}', 'patch'],
    ['/v1/partners/{partnerId}/endpoints', 'post'],
    ['/v1/partners/{partnerId}/endpoints/{endpointId}', 'patch'],
    ['/v1/partners/{partnerId}/reconciliations', 'post'],
    ['/v1/partners/{partnerId}/shows/{showId}/mirrors/{targetId}', 'put'],
  ]) {
    expect([path, method, body(path!, method!)?.['additionalProperties']]).toEqual([path, method, false]);
  }
  expect(body('/v1/partners/{partnerId}/events', 'post')?.['additionalProperties']).toBeUndefined();
});
