/**
 * The external edge's callbacks (src/api/routes/relay-edge.routes.ts) answer 404 when no external
 * edge is configured; the problem's detail names the setting that is missing. With RELAY_EDGE=none
 * and RELAY_EDGE_INTERNAL_URL unset it said "RELAY_EDGE is not none" (2a13ad4), which contradicts the
 * setting given: it now names RELAY_EDGE_INTERNAL_URL. (The RELAY_EDGE=embedded case: openapi.test.ts.)
 */
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService({ env: { RELAY_EDGE: 'none' } });
});
afterAll(async () => {
  await svc?.close();
});

test('RELAY_EDGE=none without RELAY_EDGE_INTERNAL_URL: the callbacks 404 naming RELAY_EDGE_INTERNAL_URL', async () => {
  expect(svc.config.relayEdgeInternalUrl).toBeUndefined();
  for (const what of ['on-publish', 'on-publish-done']) {
    const r = await svc.api(`/v1/relay/edge/${what}`, { key: null, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'app=live&name=k' });
    expect(r.status).toBe(404);
    const { detail } = (await r.json()) as { detail: string };
    expect(detail).toMatch(/RELAY_EDGE_INTERNAL_URL is not set/);
    expect(detail).not.toMatch(/RELAY_EDGE is not none/);
  }
});
