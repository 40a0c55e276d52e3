/**
 * Actions that take no body (a partner's webhook secret rotation, an endpoint's secret rotation, a
 * show's ingest key rotation, a mirror's resync) refuse one with fields, as every other route refuses
 * an unknown field: a 400 problem, nothing done. Found against npm start (2026-12-05): these routes had
 * no body schema and took any body with their 2xx, so `{"graceHours": 0}` on a rotation answered 200
 * and the old secret kept verifying for 24 h, as if the field had been read. No body, an empty one and
 * `{}` (clients that label every request JSON) still work. Real redis-server, real HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let endpointId: string;

beforeAll(async () => {
  svc = await startService({ workers: false });
  const secret = await createPartner(svc, 'nb');
  const t = await svc.api('/v1/partners/nb/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
  expect(t.status).toBe(201);
  const e = await svc.api('/v1/partners/nb/endpoints', { json: { url: 'http://127.0.0.1:9/hooks', events: ['mirror.updated'] } });
  expect(e.status).toBe(201);
  endpointId = ((await e.json()) as { id: string }).id;
  expect((await sendEvent(svc, 'nb', secret, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
});
afterAll(async () => {
  await svc?.close();
});

const actions = (): [string, string, string][] => [
  ['partner secret rotation', '/v1/partners/nb/webhook-secret/rotate', 'webhook_secret.rotated'],
  ['endpoint secret rotation', `/v1/partners/nb/endpoints/${endpointId}/rotate-secret`, 'endpoint.secret_rotated'],
  ['ingest key rotation', '/v1/partners/nb/shows/s1/ingest/rotate', 'ingest.rotated'],
  ['resync', '/v1/partners/nb/shows/s1/mirrors/wn/resync', 'mirror.resync'],
];

async function auditCount(): Promise<number> {
  const r = await svc.api('/v1/audit?partnerId=nb&limit=200');
  return ((await r.json()) as { entries: unknown[] }).entries.length;
}

test('a field, or a body that is no object: 400 problem naming it, and nothing done', async () => {
  for (const [name, path] of actions()) {
    for (const body of ['{"graceHours":0}', '[]', '"now"', '1']) {
      const before = await auditCount();
      const r = await svc.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect({ name, body, status: r.status, type: r.headers.get('content-type') }).toEqual({ name, body, status: 400, type: expect.stringMatching(/^application\/problem\+json/) });
      if (body.startsWith('{')) expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path: 'body.graceHours', message: 'unknown field (this operation does not take it)' }]);
      expect({ name, body, audit: await auditCount() }).toEqual({ name, body, audit: before });
    }
  }
});

test('no body, an empty one labelled JSON, and {} still do the action', async () => {
  for (const [name, path, action] of actions()) {
    for (const init of [{}, { headers: { 'content-type': 'application/json' }, body: '' }, { json: {} }]) {
      const r = await svc.api(path, { method: 'POST', ...init });
      expect({ name, init, status: r.status }).toEqual({ name, init, status: action === 'mirror.resync' ? 202 : 200 });
    }
  }
});
