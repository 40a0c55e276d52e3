/**
 * A platform that quotes the credential it was sent in its error text: the text reaches the mirror's
 * `lastError` (the show view, the mirror.updated webhook) and a credential check's 422 without the
 * credential (src/targets/instrumented.ts openAdapter, src/lib/redact.ts). Real Graph answers a token
 * it cannot parse with "Malformed access token <token>" (code 190); the Facebook simulator answers
 * "Invalid OAuth access token - Cannot parse access token" (PLATFORMS.md does not say Graph echoes
 * it), so a hostile Graph server of this test's own gives that answer. Real HTTP, real Redis.
 */
import { createServer, type Server } from 'node:http';
import { HOUR_MS, isoFromNow } from '../helpers/clock.js';
import { startEndpoint, type TestEndpoint } from '../helpers/endpoint.js';
import { waitForMirror } from '../helpers/mirrors.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

const TOKEN = 'EAAGm0PX4ZCpsBAKZC7malformedQx9vLZBw2ZD8hYtRkUq';
const PAGE_ID = '104857600123456';

interface Msg {
  type: string;
  data: { showId: string; state: string; lastError: string | null };
}

let graph: Server;
let graphUrl: string;
let svc: TestService;
let secret: string;
let endpoint: TestEndpoint | undefined;
const received: Msg[] = [];

beforeAll(async () => {
  // Every request: Graph's answer to a malformed token, quoting the token the request carried.
  graph = createServer((req, res) => {
    req.resume();
    const token = (req.headers.authorization ?? '').replace(/^(Bearer|OAuth) /, '') || new URL(req.url ?? '/', 'http://x').searchParams.get('access_token') || '';
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `Malformed access token ${token}`, type: 'OAuthException', code: 190, fbtrace_id: 'AbCdEfGh' } }));
  });
  await new Promise<void>((r) => graph.listen(0, '127.0.0.1', r));
  graphUrl = `http://127.0.0.1:${(graph.address() as { port: number }).port}`;
  svc = await startService({ workers: true, env: { PLATFORM_TIMEOUT_MS: '2000' } });
  secret = await createPartner(svc, 'rd');
  endpoint = await startEndpoint(svc, 'rd', ['mirror.updated'], (m) => received.push(m as Msg));
}, 60_000);

afterAll(async () => {
  endpoint?.close();
  await svc?.close();
  graph?.closeAllConnections();
  await new Promise((r) => graph?.close(r));
});

const target = (id: string): Record<string, unknown> => ({ id, platform: 'facebook', name: id, baseUrl: graphUrl, commissionRateBps: 100, credentials: { pageId: PAGE_ID, pageAccessToken: TOKEN } });

test('a credential check the platform refuses quoting the token: the 422 says why, without the token', async () => {
  const r = await svc.api('/v1/partners/rd/targets', { json: target('fb-check') });
  expect(r.status).toBe(422);
  const text = await r.text();
  expect(text).toContain('Malformed access token [redacted]');
  expect(text).not.toContain(TOKEN);
});

test("a mirror failing on the platform's answer that quotes the token: lastError and mirror.updated say why, without the token", async () => {
  expect((await svc.api('/v1/partners/rd/targets?verify=false', { json: target('fb-run') })).status).toBe(201);
  const show = sampleShow('rd1', { scheduledAt: isoFromNow(HOUR_MS) });
  expect((await sendEvent(svc, 'rd', secret, showEvent('show.scheduled', show, isoFromNow(-60_000)))).status).toBe(202);
  const m = await waitForMirror(svc, 'rd', 'rd1', (x) => x.state === 'failed');
  expect(m.lastError).toContain('Malformed access token [redacted]');
  expect(m.lastError).not.toContain(TOKEN);
  const told = await waitFor(async () => received.find((x) => x.data.showId === 'rd1' && x.data.state === 'failed'));
  expect(told.data.lastError).toContain('Malformed access token [redacted]');
  expect(JSON.stringify(received)).not.toContain(TOKEN);
  // The ops views read the same stored text.
  expect(await (await svc.api('/v1/partners/rd/shows/rd1')).text()).not.toContain(TOKEN);
}, 30_000);
