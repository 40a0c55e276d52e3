/**
 * Relay review: a pull source's user:password (`https://user:pass@host/…`) are the partner's stream
 * credentials; the show view masks them in `show.sourceUrl` for viewer keys
 * (test/integration/partner-reads.edges.test.ts › show-view.source-secrets). The relay put the source, masked by
 * maskSecrets, into every destination's `lastError` ("source refused: …"), and maskSecrets masked RTMP
 * key paths and queries but not user:password: a viewer read them there (and so did mirror.updated and
 * the relay's log lines quoting ffmpeg). Now masked like the rest.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { ADMIN_KEY, createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { goLive, viewOf } from '../helpers/relay.js';

const P = 'srccred-p';
const PASSWORD = 'USERPASS0123456789';
let svc: TestService;

beforeAll(async () => {
  // Private addresses refused: the loopback source is refused before any ffmpeg starts.
  svc = await startService({ relay: true, env: { ALLOW_PRIVATE_DESTINATIONS: 'false' } });
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

test("a refused pull source's user:password are not in any destination's lastError", async () => {
  const secret = await createPartner(svc, P);
  const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'tiktok', platform: 'tiktok', name: 't', credentials: CREDENTIALS.tiktok, commissionRateBps: 100 } });
  expect(t.status).toBe(201);
  const source = { sourceUrl: `http://enc:${PASSWORD}@127.0.0.1:9/hls/index.m3u8` };
  await goLive(svc, P, secret, 'cred1', 'live', source);
  // The mirror as a sync would leave it (no worker here), with the operator's ingest.
  await svc.rt.shows.updateMirror(P, 'cred1', 'tiktok', () => newMirror('tiktok', 'tiktok'), (m) => {
    m.state = 'ready';
    m.remote = { externalId: 'room-1', url: undefined, ingest: undefined, data: {} };
    m.operatorIngest = { url: 'rtmp://203.0.113.7/live', streamKeySealed: svc.rt.box.encrypt('tt-key-1') };
    return true;
  });
  const r = await svc.api('/v1/api-keys', { json: { role: 'viewer' }, key: ADMIN_KEY });
  expect(r.status).toBe(201);
  const viewer = ((await r.json()) as { key: string }).key;
  const m = await waitFor(async () => {
    const x = (await viewOf(svc, P, 'cred1', viewer)).mirrors[0];
    return x && /^source refused: /.test(x.relay.lastError ?? '') ? x : undefined;
  }, 20_000);
  expect(m.relay.lastError).toContain('127.0.0.1');
  expect(m.relay.lastError).not.toContain(PASSWORD);
  // The operator's view and the stored status (what mirror.updated carries) are the same text.
  expect((await viewOf(svc, P, 'cred1')).mirrors[0]?.relay.lastError).not.toContain(PASSWORD);
  expect(JSON.stringify(await svc.rt.relay.statusesAsRelayed(P, 'cred1', ['tiktok']))).not.toContain(PASSWORD);
}, 60_000);
