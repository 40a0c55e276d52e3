/**
 * A platform (or a wrong baseUrl) that answers 200 and then sends its body a byte at a time, or sends
 * far too much of it. The request timeout used to be the socket's idle time (axios' `timeout`,
 * `ClientRequest.setTimeout`), which a trickle of bytes never lets fire: an operator's
 * `POST .../targets` (credential check) hung for as long as the server kept sending, and so would a
 * worker's sync. Now the whole exchange ends at the timeout, and an answer past MAX_RESPONSE_BYTES is
 * refused instead of being read into memory. And a baseUrl that answers `200 ok` to everything (a
 * web server, not the platform's API) no longer passes the Whatnot and Bambuser credential checks,
 * and is a 503 'malformed response' for every platform (TikTok said 422 "re-authorise").
 * Real HTTP on loopback, a real redis-server for the API part.
 */
import { createServer, type Server } from 'node:http';
import pino from 'pino';
import { destinationGuard } from '../../src/lib/destination-guard.js';
import { createPlatformHttp, createPlatformJson, MAX_RESPONSE_BYTES } from '../../src/targets/platform-http.js';
import type { AdapterContext } from '../../src/targets/target.adapter.js';
import { CREDENTIALS, ALL_PLATFORMS } from '../helpers/platforms.js';
import { createPartner, startService, type TestService } from '../helpers/service.js';

let server: Server;
let base: string;
const timers = new Set<NodeJS.Timeout>();

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/ok/')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (req.url?.includes('/huge')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const more = (): void => {
        while (sent <= MAX_RESPONSE_BYTES + chunk.length) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end('{}');
      };
      res.on('error', () => undefined);
      more();
      return;
    }
    // 200 at once, then one byte every 100 ms, for ever (until the client goes away)
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{');
    const t = setInterval(() => res.write(' '), 100);
    timers.add(t);
    res.on('close', () => {
      clearInterval(t);
      timers.delete(t);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const ctx = {
  target: { id: 't', partnerId: 'p', platform: 'youtube', baseUrl: undefined, credentials: {} },
  destinations: destinationGuard({ allowPrivate: true }),
  log: pino({ level: 'silent' }),
  timeoutMs: 500,
} as unknown as AdapterContext;

async function settle(p: Promise<unknown>): Promise<{ ms: number; err: { code?: string } | undefined }> {
  const t0 = Date.now();
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as { code?: string },
  );
  return { ms: Date.now() - t0, err };
}

test('platformJson: an answer trickling in ends at the timeout (ECONNABORTED), not when the server stops', async () => {
  const { ms, err } = await settle(createPlatformJson(ctx, 500)({ method: 'GET', url: `${base}/drip`, headers: {} }));
  expect(err?.code).toBe('ECONNABORTED');
  expect(ms).toBeLessThan(2500);
}, 10_000);

test('axios platform client: an answer trickling in ends at the timeout (ECONNABORTED)', async () => {
  const http = createPlatformHttp(ctx, { timeout: 500, validateStatus: () => true, maxRedirects: 0 });
  const { ms, err } = await settle(http.get(`${base}/drip`));
  expect(err?.code).toBe('ECONNABORTED');
  expect(ms).toBeLessThan(2500);
}, 10_000);

test('an answer larger than MAX_RESPONSE_BYTES is refused, not read into memory', async () => {
  const json = await settle(createPlatformJson(ctx, 20_000)({ method: 'GET', url: `${base}/huge`, headers: {} }));
  expect(json.err?.code).toBe('ERR_BAD_RESPONSE');
  const http = createPlatformHttp(ctx, { timeout: 20_000, validateStatus: () => true, maxRedirects: 0 });
  const viaAxios = await settle(http.get(`${base}/huge`));
  expect(viaAxios.err?.code).toBe('ERR_BAD_RESPONSE');
});

describe('API', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '1000' } });
    await createPartner(svc, 'drip');
  });
  afterAll(async () => {
    await svc.close();
  });

  test.each(ALL_PLATFORMS)("%s: creating a target whose baseUrl trickles its answer gets a 503 within the platform timeout, not a hang", async (platform) => {
    const t0 = Date.now();
    const r = await svc.api('/v1/partners/drip/targets', {
      json: { id: `drip-${platform}`, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${base}/drip/${platform}`, commissionRateBps: 100 },
      signal: AbortSignal.timeout(20_000),
    });
    expect(r.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 30_000);

  // TikTok answered 422 "re-authorise the app" (its token refresh took a 200 that is no envelope for a refused refresh token).
  test.each(['whatnot', 'bambuser', 'tiktok', 'youtube', 'facebook'] as const)('%s: a baseUrl that answers 200 "ok" (not the API) does not pass the credential check: 503 malformed response', async (platform) => {
    const r = await svc.api('/v1/partners/drip/targets', {
      json: { id: `ok-${platform}`, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${base}/ok/${platform}`, commissionRateBps: 100 },
    });
    expect(r.status).toBe(503);
    expect(((await r.json()) as { detail: string }).detail).toMatch(/malformed response/);
    expect((await svc.api('/v1/partners/drip/targets')).status).toBe(200);
    const list = (await (await svc.api('/v1/partners/drip/targets')).json()) as { targets: { id: string }[] };
    expect(list.targets.map((t) => t.id)).not.toContain(`ok-${platform}`);
  });
});

/**
 * PLATFORM_TIMEOUTS_MS: a platform's own, shorter timeout. YouTube's calls end after its 500 ms, in the
 * credential check and in the workers' adapters, while the other platforms' keep PLATFORM_TIMEOUT_MS
 * (20 s here). test/e2e/isolation sets it so that YouTube's hanging calls are not waited out for 20 s.
 */
describe('PLATFORM_TIMEOUTS_MS', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '20000', PLATFORM_TIMEOUTS_MS: 'youtube=500' } });
    await createPartner(svc, 'own');
  });
  afterAll(async () => {
    await svc.close();
  });

  test("YouTube's calls end at its own timeout: the credential check and the sync's adapter", async () => {
    const t0 = Date.now();
    const r = await svc.api('/v1/partners/own/targets', {
      json: { id: 'own-youtube', platform: 'youtube', name: 'youtube', credentials: CREDENTIALS.youtube, baseUrl: `${base}/drip/youtube`, commissionRateBps: 100 },
      signal: AbortSignal.timeout(30_000),
    });
    expect(r.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(8_000); // 20 s with PLATFORM_TIMEOUT_MS
    const saved = await svc.api('/v1/partners/own/targets?verify=false', {
      json: { id: 'own-youtube', platform: 'youtube', name: 'youtube', credentials: CREDENTIALS.youtube, baseUrl: `${base}/drip/youtube`, commissionRateBps: 100 },
    });
    expect(saved.status).toBe(201);
    const adapter = svc.rt.syncService.adapterFor((await svc.rt.partners.getTarget('own', 'own-youtube'))!)!;
    const { ms, err } = await settle(adapter.verifyCredentials!());
    expect(err).toBeDefined();
    expect(ms).toBeLessThan(8_000);
  }, 60_000);
});
