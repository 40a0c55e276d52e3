/**
 * The show's ingest address with RELAY_PUBLIC_URL unset (contract §10: `rtmp://{HOST}:{RELAY_RTMP_PORT}/live`)
 * on an API bound to an IPv6 HOST: it said `rtmp://::1:19350/live`, which no encoder parses (the port
 * reads as part of the address). Real Redis, real HTTP on ::1.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService({ env: { HOST: '::1', RELAY_RTMP_PORT: '19350' } });
});
afterAll(async () => {
  await svc?.close();
});

test('an IPv6 HOST is bracketed in the default ingest url', async () => {
  const secret = await createPartner(svc, 'v6');
  expect((await sendEvent(svc, 'v6', secret, showEvent('show.scheduled', sampleShow('s6'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const view = (await (await svc.api('/v1/partners/v6/shows/s6')).json()) as { show: { ingest: { url: string; streamKey: string } } };
  expect(view.show.ingest.url).toBe('rtmp://[::1]:19350/live');
  expect(new URL(view.show.ingest.url).hostname).toBe('[::1]');
});
