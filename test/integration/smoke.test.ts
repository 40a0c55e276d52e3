import { createPartner, sendEvent, sampleShow, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

test('a signed show event is accepted once and a repeat is a duplicate', async () => {
  const secret = await createPartner(svc, 'tsl');
  const ev = showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T17:00:00Z');
  const r1 = await sendEvent(svc, 'tsl', secret, ev, { webhookId: 'w1' });
  expect(r1.status).toBe(202);
  const r2 = await sendEvent(svc, 'tsl', secret, ev, { webhookId: 'w1' });
  expect(r2.status).toBe(200);
  expect(await r2.json()).toMatchObject({ duplicate: true });
  const show = await svc.api('/v1/partners/tsl/shows/s1');
  expect(show.status).toBe(200);
  expect(await show.json()).toMatchObject({ show: { id: 's1', state: 'scheduled' }, mirrors: [] });
});

test('the OpenAPI document is generated and lists the contract endpoints', async () => {
  const r = await fetch(`${svc.url}/docs/json`);
  expect(r.status).toBe(200);
  const doc = (await r.json()) as { openapi: string; paths: Record<string, unknown> };
  expect(doc.openapi).toBe('3.1.0');
  for (const path of ['/v1/partners', '/v1/partners/{partnerId}/events', '/v1/partners/{partnerId}/targets', '/v1/partners/{partnerId}/shows/{showId}', '/v1/api-keys', '/health/ready']) {
    expect(Object.keys(doc.paths)).toContain(path);
  }
});

test('health and metrics', async () => {
  expect((await fetch(`${svc.url}/health/live`)).status).toBe(200);
  expect((await fetch(`${svc.url}/health/ready`)).status).toBe(200);
  const m = await fetch(`${svc.url}/metrics`);
  expect(m.status).toBe(200);
  expect(await m.text()).toContain('syndicast_events_total');
});
