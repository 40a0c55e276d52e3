/**
 * The connect-time SSRF guard on credential-carrying connections (src/lib/destination-guard.ts,
 * installed in every platform client by src/targets/platform-http.ts). A target base URL that was
 * public when it was checked and now resolves to loopback (played here with `localhost`, with a
 * resolver that maps a made-up name to 127.0.0.1, and with an IP literal stored behind the API's
 * back) is refused when the connection is made: no request — no token refresh, no bearer token —
 * reaches the server, and the mirror's lastError says why without a secret. Loopback only.
 */
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { lookup, type LookupAddress } from 'node:dns';
import { pino } from 'pino';
import { destinationGuard } from '../../src/lib/destination-guard.js';
import type { Resolver } from '../../src/lib/ssrf.js';
import { createPlatformHttp } from '../../src/targets/platform-http.js';
import { PermanentError } from '../../src/targets/target.errors.js';
import type { AdapterContext } from '../../src/targets/target.adapter.js';
import type { TargetRecord } from '../../src/store/partner.repository.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

/** Maps `*.platform.test` to 127.0.0.1, like a DNS record that was changed to point at loopback; the rest as usual. */
const rebound: Resolver = (hostname, options, callback) => {
  if (hostname.endsWith('.platform.test')) return callback(null, [{ address: '127.0.0.1', family: 4 } satisfies LookupAddress]);
  return lookup(hostname, options, callback);
};

describe('the guard itself, against a counting loopback server', () => {
  let server: Server;
  let port = 0;
  let hits = 0;
  let connections = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits += 1;
      res.end('{"secret":"metadata"}');
    });
    server.on('connection', () => (connections += 1));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const ctxWith = (allowPrivate: boolean): AdapterContext =>
    ({
      target: { id: 't', partnerId: 'p', platform: 'youtube', baseUrl: undefined, credentials: {} },
      destinations: destinationGuard({ allowPrivate, resolver: rebound }),
      log: pino({ level: 'silent' }),
      timeoutMs: 2000,
    }) as unknown as AdapterContext;

  test.each([`http://api.platform.test:PORT/token`, `http://localhost:PORT/token`, `http://127.0.0.1:PORT/token`, `http://[::ffff:127.0.0.1]:PORT/token`, `https://api.platform.test:PORT/token`])(
    '%s is refused at connect time; nothing reaches the server',
    async (raw) => {
      const url = raw.replace('PORT', String(port));
      const http = createPlatformHttp(ctxWith(false), { timeout: 2000, validateStatus: () => true, maxRedirects: 0 });
      const err = await http.post(url, 'client_secret=s3cr3t', { headers: { authorization: 'Bearer tok3n' } }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).message).toMatch(/^destination refused: .*(private, loopback or link-local).*/);
      expect((err as PermanentError).message).not.toMatch(/s3cr3t|tok3n/);
      expect(hits).toBe(0);
      expect(connections).toBe(0);
    },
  );

  test('raw sockets (the relay) use the same guard: lookup and resolve refuse, a public-only check passes nothing', async () => {
    const guard = destinationGuard({ allowPrivate: false, resolver: rebound });
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const s = connect({ host: 'rtmp.platform.test', port, lookup: guard.lookup });
      s.on('error', resolve);
      s.on('connect', () => resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' })));
    });
    expect(err.code).toBe('EDESTREFUSED');
    await expect(guard.resolve('rtmp.platform.test')).rejects.toMatchObject({ code: 'EDESTREFUSED' });
    await expect(guard.resolve('[::1]')).rejects.toMatchObject({ code: 'EDESTREFUSED' });
    expect(() => guard.checkHost('169.254.169.254')).toThrow(/link-local/);
    expect(connections).toBe(0);
  });

  test('with ALLOW_PRIVATE_DESTINATIONS the same call goes through (the server is really there)', async () => {
    const http = createPlatformHttp(ctxWith(true), { timeout: 2000, validateStatus: () => true, maxRedirects: 0 });
    const res = await http.get(`http://localhost:${port}/token`);
    expect(res.status).toBe(200);
    expect(hits).toBe(1);
    const guard = destinationGuard({ allowPrivate: true });
    expect(await guard.resolve('127.0.0.1')).toEqual({ address: '127.0.0.1', family: 4 });
  });
});

describe('a strict service (ALLOW_PRIVATE_DESTINATIONS=false): targets whose base URL now points at loopback', () => {
  let svc: TestService;
  let sim: TestSim;
  let secret: string;
  const CREDS = { clientId: 'cid-PLAINTEXT', clientSecret: 'client-secret-PLAINTEXT', refreshToken: 'refresh-PLAINTEXT' };

  beforeAll(async () => {
    sim = await startSim();
    svc = await startService({ workers: true, env: { ALLOW_PRIVATE_DESTINATIONS: 'false', SYNC_MAX_RETRIES: '1' } });
    secret = await createPartner(svc, 'sg');
  });
  afterAll(async () => {
    await svc?.close();
    await sim?.close();
  });

  /** Stored behind the API's back: the API refuses such a baseUrl, but DNS can change after the check. */
  async function storeTarget(id: string, platform: TargetRecord['platform'], baseUrl: string, credentials: Record<string, string>): Promise<void> {
    const now = new Date().toISOString();
    const ok = await svc.rt.partners.createTarget({
      id,
      partnerId: 'sg',
      platform,
      name: id,
      baseUrl,
      commissionRateBps: 100,
      enabled: true,
      pinDelayMs: 0,
      credentialsSealed: svc.rt.partners.sealCredentials(credentials),
      createdAt: now,
      updatedAt: now,
    });
    expect(ok).toBe(true);
  }

  test('the mirror fails with a clear, secret-free lastError; the platform (simulator) saw no request at all', async () => {
    const simPort = new URL(sim.url).port;
    await storeTarget('yt-dns', 'youtube', `http://localhost:${simPort}/youtube`, CREDS);
    await storeTarget('bmb-ip', 'bambuser', `http://127.0.0.1:${simPort}/bambuser`, { apiKey: 'bmb-key-PLAINTEXT' });
    expect((await sendEvent(svc, 'sg', secret, showEvent('show.scheduled', sampleShow('sg1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    const doc = await waitFor(async () => {
      const d = (await (await svc.api('/v1/partners/sg/shows/sg1')).json()) as { mirrors: { targetId: string; state: string; lastError: string | null }[] };
      return d.mirrors.length === 2 && d.mirrors.every((m) => m.state === 'failed') ? d : undefined;
    });
    const yt = doc.mirrors.find((m) => m.targetId === 'yt-dns')!;
    expect(yt.lastError).toMatch(/^youtube: destination refused: localhost resolves to a private, loopback or link-local address \(127\.0\.0\.1\)/);
    const bmb = doc.mirrors.find((m) => m.targetId === 'bmb-ip')!;
    expect(bmb.lastError).toMatch(/^bambuser: destination refused: 127\.0\.0\.1 is a private, loopback or link-local address/);
    for (const m of doc.mirrors) expect(m.lastError).not.toMatch(/PLAINTEXT/);
    expect(await sim.control('GET', '/_sim/youtube/requests')).toEqual([]);
    expect(await sim.control('GET', '/_sim/bambuser/requests')).toEqual([]);
  });

  test('reconciliation reads no order report from such a target (the report call carries the token too)', async () => {
    const simPort = new URL(sim.url).port;
    await storeTarget('wn-dns', 'whatnot', `http://localhost:${simPort}/whatnot`, { accessToken: 'wn-token-PLAINTEXT' });
    const r = await svc.api('/v1/partners/sg/reconciliations', { json: { from: '2026-11-20T00:00:00Z', to: '2026-11-25T00:00:00Z' } });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    const rec = await waitFor(async () => {
      const b = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as { status: string; summary: { targets: { targetId: string; error?: string }[] } | null };
      return b.status === 'completed' || b.status === 'failed' ? b : undefined;
    });
    const wn = rec.summary!.targets.find((t) => t.targetId === 'wn-dns')!;
    expect(wn.error).toMatch(/^whatnot: destination refused: localhost resolves to a private, loopback or link-local address/);
    expect(wn.error).not.toMatch(/PLAINTEXT/);
    expect(await sim.control('GET', '/_sim/whatnot/requests')).toEqual([]);
  });
});
