/**
 * A PATCH that changes nothing is a 400 on every resource, as on a partner ("give at least one field
 * to change"). On a target and an outbound endpoint an empty body (or, for an endpoint, only fields it
 * does not have, e.g. `secret`) was a 200 that moved `updatedAt` and wrote an audit entry of no change
 * (found against npm start, 2026-12-02). Real redis-server, real HTTP.
 */
import { createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let endpointId: string;

beforeAll(async () => {
  svc = await startService();
  await createPartner(svc, 'pe');
  const t = await svc.api('/v1/partners/pe/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
  expect(t.status).toBe(201);
  const e = await svc.api('/v1/partners/pe/endpoints', { json: { url: 'http://127.0.0.1:9/hooks', events: ['mirror.updated'] } });
  expect(e.status).toBe(201);
  endpointId = ((await e.json()) as { id: string }).id;
});
afterAll(async () => {
  await svc?.close();
});

async function auditActions(): Promise<string[]> {
  const r = await svc.api('/v1/audit?partnerId=pe&limit=100');
  return ((await r.json()) as { entries: { action: string }[] }).entries.map((e) => e.action);
}

test.each([
  ['target, {}', '/v1/partners/pe/targets/wn', {}],
  ['endpoint, {}', () => `/v1/partners/pe/endpoints/${endpointId}`, {}],
  ['endpoint, only a field it does not have', () => `/v1/partners/pe/endpoints/${endpointId}`, { secret: 'whsec_AAAA' }],
  ['partner, {}', '/v1/partners/pe', {}],
])('PATCH %s → 400 problem, nothing written', async (_name, path, body) => {
  const url = typeof path === 'function' ? path() : path;
  const before = await svc.api(url.startsWith('/v1/partners/pe/targets') ? '/v1/partners/pe/targets' : url);
  const beforeBody = await before.text();
  const audit = await auditActions();
  const r = await svc.api(url, { method: 'PATCH', json: body });
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await r.json()) as { errors: { message: string }[] }).errors.map((e) => e.message)).toContain('give at least one field to change');
  const after = await svc.api(url.startsWith('/v1/partners/pe/targets') ? '/v1/partners/pe/targets' : url);
  expect(await after.text()).toBe(beforeBody);
  expect(await auditActions()).toEqual(audit);
});

test('a PATCH with a field still works', async () => {
  expect((await svc.api('/v1/partners/pe/targets/wn', { method: 'PATCH', json: { name: 'Whatnot 2' } })).status).toBe(200);
  expect((await svc.api(`/v1/partners/pe/endpoints/${endpointId}`, { method: 'PATCH', json: { description: null } })).status).toBe(200);
});
