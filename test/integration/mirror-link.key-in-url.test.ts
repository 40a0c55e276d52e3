/**
 * An operator links a show made by hand with the RTMP address the platform's app shows, and copies
 * the address with its key (`rtmp://host/app/<key>`, the key also in `streamKey`). It was stored
 * (200): the relay would publish to `{url}/{key}` (the key twice, refused by the platform), and the
 * url is what a viewer key or the partner's key is shown of the mirror's ingest, so they read the
 * stream key the contract shows to operator and admin keys only (§2). Found by an attack round
 * against `npm start` (h-edge, 2026-12-07). Now a 400 naming `body.ingest.url`, nothing linked; the
 * address without the key links as before, and a key that is only part of a segment is no match.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let viewerKey: string;
const KEY = 'live_7f3a9c2e1b0d4e5f';
const WHATNOT_SHOW = '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f';

beforeAll(async () => {
  svc = await startService();
  const secret = await createPartner(svc, 'kiu');
  const t = await svc.api('/v1/partners/kiu/targets?verify=false', { json: { id: 'wn-kiu', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
  expect(t.status).toBe(201);
  expect((await sendEvent(svc, 'kiu', secret, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const k = await svc.api('/v1/api-keys', { json: { role: 'viewer' } });
  viewerKey = ((await k.json()) as { key: string }).key;
});
afterAll(async () => {
  await svc?.close();
});

async function link(url: string): Promise<Response> {
  return svc.api('/v1/partners/kiu/shows/s1/mirrors/wn-kiu', { method: 'PUT', json: { externalId: WHATNOT_SHOW, ingest: { url, streamKey: KEY } } });
}

async function viewerSees(): Promise<string> {
  const r = await svc.api('/v1/partners/kiu/shows/s1', { key: viewerKey });
  expect(r.status).toBe(200);
  return r.text();
}

test('an ingest url with the stream key as a path segment is a 400 on body.ingest.url, nothing linked; without it the link is made and a viewer never reads the key', async () => {
  for (const url of [`rtmp://live.example.com/app/${KEY}`, `rtmps://live.example.com:443/${KEY}`, `rtmp://live.example.com/${KEY}/`]) {
    const r = await link(url);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await r.json()) as { errors: { path: string; message: string }[] };
    expect(body.errors.map((e) => e.path)).toEqual(['body.ingest.url']);
    expect(JSON.stringify(body)).not.toContain(`"url":"${url}"`);
  }
  expect(await viewerSees()).not.toContain(WHATNOT_SHOW);

  // A key that is part of a segment only, or another segment, is no match.
  expect((await link(`rtmp://live.example.com/${KEY}-app`)).status).toBe(200);
  expect((await link('rtmp://live.example.com/app')).status).toBe(200);
  const seen = await viewerSees();
  expect(seen).toContain(WHATNOT_SHOW);
  expect(seen).toContain('rtmp://live.example.com/app');
  expect(seen).not.toContain(KEY);
});
