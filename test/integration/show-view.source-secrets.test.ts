/**
 * A show's pull source (`sourceUrl`, §10) carries the partner's stream credentials (the RTMP key in the
 * path, an HLS/SRT token or passphrase in the query, user:password). The show view hides the show's own
 * stream key from viewer keys; it showed the source's key to them in plain text (found against
 * `npm start`). A viewer now sees the source masked as the relay masks it in `lastError`; the partner
 * and operators, who set it, see it whole.
 */
import { ADMIN_KEY, sampleShow, sendEvent, showEvent, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

servicePerFile('pv', (started) => ({ svc, secret } = started));

const keyFor = async (json: Record<string, unknown>): Promise<string> => {
  const r = await svc.api('/v1/api-keys', { json, key: ADMIN_KEY });
  expect(r.status).toBe(201);
  return ((await r.json()) as { key: string }).key;
};
const sourceSeenBy = async (key: string, showId: string): Promise<string | undefined> => {
  const r = await svc.api(`/v1/partners/pv/shows/${showId}`, { key });
  expect(r.status).toBe(200);
  return ((await r.json()) as { show: { sourceUrl?: string } }).show.sourceUrl;
};

test.each([
  ['rtmp', 'rtmp://media.example.com/live/RTMPKEY0123456789', 'RTMPKEY0123456789'],
  ['hls', 'https://cdn.example.com/hls/index.m3u8?token=HLSTOKEN0123456789', 'HLSTOKEN0123456789'],
  ['srt', 'srt://media.example.com:9000?streamid=publish/SRTKEY0123456789&passphrase=SRTPASS0123456789', 'SRTPASS0123456789'],
  ['userinfo', 'https://enc:USERPASS0123456789@cdn.example.com/hls/index.m3u8', 'USERPASS0123456789'],
])('%s source: a viewer sees it without its credential; partner, operator and admin see it whole', async (name, sourceUrl, credential) => {
  const showId = `src-${name}`;
  expect((await sendEvent(svc, 'pv', secret, showEvent('show.scheduled', sampleShow(showId, { sourceUrl }), new Date().toISOString()))).status).toBe(202);
  const viewer = await sourceSeenBy(await keyFor({ role: 'viewer' }), showId);
  expect(viewer).toBeDefined();
  expect(viewer).not.toContain(credential);
  expect(viewer).toContain('example.com');
  for (const key of [ADMIN_KEY, await keyFor({ role: 'operator' }), await keyFor({ role: 'partner', partnerId: 'pv' })]) expect(await sourceSeenBy(key, showId)).toBe(sourceUrl);
});
