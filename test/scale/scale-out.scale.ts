/**
 * Issue 12 §2, `npm run test:scale` (not part of `npm test`): Syndicast scaled out on a 3-master +
 * 3-replica Redis Cluster — 2 API + 3 worker + 2 scheduler processes, each its own OS process started
 * the way production starts it (src/main/api.ts, workers/mirror.ts, workers/scheduler.ts).
 * 1,000 shows (SCALE_SHOWS to change) go live on YouTube, Facebook and Bambuser with two pins each, then
 * every show gets an order through a click on its tracked link (every fifth partly refunded). One
 * worker and one API process are SIGKILLed mid-run; the load generator retries like a partner (same
 * webhook-id, the other API process, on a connection error or a 5xx).
 * Then: every show converges on every platform, each platform effect happened once, the attribution
 * totals equal the in-order expectation, and the two schedulers produced exactly one reconciliation
 * run per period.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netCommission } from '../../src/domain/order.js';
import { testPort } from '../helpers/ports.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import { PartnerRepository } from '../../src/store/partner.repository.js';
import { ShowRepository } from '../../src/store/show.repository.js';
import type { RedisClient } from '../../src/store/redis.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { startCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { sampleShow, showEvent, waitFor } from '../helpers/service.js';
import { startSim, type SimEffectView } from '../helpers/sim.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

const SHOWS = Number(process.env['SCALE_SHOWS'] ?? 1000);
const PLATFORMS = ['youtube', 'facebook', 'bambuser'] as const;
const ADMIN = 'sk_admin_test_0123456789abcdef';
const PARTNER = 'scale';
const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

let cluster: TestRedisCluster;
let sim: SimProcess;
let receiver: Server;
const hooks: { id: string; body: { type: string; data: { id: string; from: string; to: string; trigger: string; status: string } } }[] = [];
const procs: { role: string; p: WorkerProcess }[] = [];
const apiUrls: string[] = [];
const dead = new Set<string>();
let redis: RedisClient;
let shows: ShowRepository;
let secret = '';

async function api(url: string, path: string, json?: unknown, method = json === undefined ? 'GET' : 'POST'): Promise<Response> {
  return fetch(url + path, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
}

/** Delivers a partner event like a partner does: retried (same webhook-id) on another API until accepted. */
let rr = 0;
async function deliver(body: unknown, webhookId: string): Promise<void> {
  const raw = JSON.stringify(body);
  let last = '';
  for (let attempt = 0; attempt < 150; attempt++) {
    const alive = apiUrls.filter((u) => !dead.has(u));
    const url = alive[rr++ % alive.length]!;
    const ts = Math.floor(Date.now() / 1000);
    try {
      const r = await fetch(`${url}/v1/partners/${PARTNER}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'webhook-id': webhookId, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, webhookId, ts, raw) },
        body: raw,
        signal: AbortSignal.timeout(20_000),
      });
      const text = await r.text();
      if (r.status === 200 || r.status === 202) return;
      last = `${r.status} ${text.slice(0, 300)}`;
      if (r.status < 500) throw new Error(`event ${webhookId}: ${last}`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('event ')) throw err;
      last = String(err);
      // connection refused / reset (a killed API process) or a timeout: retry elsewhere
    }
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
  }
  throw new Error(`event ${webhookId} never accepted; last answer: ${last}`);
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

function start(role: string, entry: string, env: Record<string, string>): WorkerProcess {
  const p = spawnWorker(env, entry);
  procs.push({ role, p });
  return p;
}

/**
 * The platform simulators in their own OS process (`npm run sim`'s entry), like a real platform: the
 * load generator's event loop (and jest's) must not be the platform's. In the test process they lagged
 * seconds behind under 1,000 shows and acted on requests long after the workers had cut them off.
 */
interface SimProcess {
  url: string;
  base(platform: string): string;
  effects(platform: string): Promise<SimEffectView[]>;
  control(method: string, path: string, body?: unknown): Promise<unknown>;
  close(): Promise<void>;
}
async function startSimProcess(): Promise<SimProcess> {
  const port = await testPort();
  const rtmp = await testPort(); // never the same as port (testPort gives a port once per file)
  const p = spawnWorker({ SIM_PORT: String(port), SIM_RTMP_PORT: String(rtmp), SIM_HOST: '127.0.0.1' }, 'src/main/sim.ts');
  procs.push({ role: 'simulators', p });
  const url = `http://127.0.0.1:${port}`;
  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await fetch(`${url}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    const text = await r.text();
    return text ? JSON.parse(text) : null;
  };
  await waitFor(async () => p.output().includes('Platform simulators listening') || (p.proc.exitCode !== null ? Promise.reject(new Error(p.output())) : false), 60_000, 100);
  return {
    url,
    base: (platform) => `${url}/${platform}`,
    effects: async (platform) => (await control('GET', `/_sim/${platform}/effects`)) as SimEffectView[],
    control,
    close: () => p.kill('SIGTERM'),
  };
}

type SimRequest = { seq: number; method: string; path: string; query: Record<string, string>; body: string; status: number; at: string; answeredAt?: string; clientGone?: boolean };
/** SCALE_DIAG: every platform request (the simulators keep only their last 10,000), read as the run goes. */
const requestLog = new Map<string, SimRequest[]>();
async function pollRequests(platform: string): Promise<SimRequest[]> {
  const log = requestLog.get(platform) ?? [];
  requestLog.set(platform, log);
  // answered ones only, so that an entry is read once it is complete (an unanswered one is read again, for 30 s)
  const since = log.at(-1)?.seq ?? 0;
  const fresh = (await sim.control('GET', `/_sim/${platform}/requests?since=${since}`)) as SimRequest[];
  const firstOpen = fresh.findIndex((r) => r.status === 0 && Date.now() - Date.parse(r.at) < 30_000);
  log.push(...(firstOpen < 0 ? fresh : fresh.slice(0, firstOpen)));
  return log;
}
let polling: Promise<void> | undefined;
let stopPolling = false;

/** SCALE_DIAG: when this process (the load generator) was stalled, and for how long. */
const lags: [number, number][] = [];
let lagTimer: NodeJS.Timeout | undefined;

beforeAll(async () => {
  if (process.env['SCALE_DIAG']) {
    let last = Date.now();
    lagTimer = setInterval(() => {
      const now = Date.now();
      if (now - last > 300) lags.push([last, now - last - 100]);
      last = now;
    }, 100);
    lagTimer.unref();
  }
  cluster = await startCluster();
  // SCALE_SIM=inprocess: the simulators in this process, as before (to reproduce their lag)
  sim = process.env['SCALE_SIM'] === 'inprocess' ? await startSim() : await startSimProcess();
  if (process.env['SCALE_DIAG']) {
    polling = (async () => {
      while (!stopPolling) {
        for (const p of PLATFORMS) await pollRequests(p);
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
  }
  // no video is pushed here: a simulated encoder makes YouTube's bound stream active (docs/testing.md)
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  for (const p of PLATFORMS) await sim.control('PUT', `/_sim/${p}/limits`, { latencyMs: 5, requestsPerWindow: null, quotaPerDay: null });
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      hooks.push({ id: String(req.headers['webhook-id']), body: JSON.parse(body) as (typeof hooks)[number]['body'] });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
}, 60_000);

afterAll(async () => {
  clearInterval(lagTimer);
  stopPolling = true;
  await polling?.catch(() => undefined);
  // A process that died on its own (not one this test killed) says why.
  for (const { role, p } of procs) if (p.proc.exitCode !== null) process.stderr.write(`${role} exited ${p.proc.exitCode}:\n${p.output().slice(-2000)}\n`);
  if (process.env['SCALE_DIAG']) {
    writeFileSync(`${process.env['SCALE_DIAG']}-procs.txt`, procs.map(({ role, p }) => `== ${role} pid ${p.proc.pid}\n${p.output()}`).join('\n'));
  }
  await Promise.all(procs.map(({ p }) => p.kill('SIGKILL')));
  redis?.disconnect();
  await cluster?.destroy();
  await sim?.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

test(`2 API + 3 worker + 2 scheduler processes, ${SHOWS} shows × 3 platforms, a worker and an API SIGKILLed`, async () => {
  const prefix = 'sc' + randomBytes(2).toString('hex');
  const ports = [await testPort(), await testPort()]; // two ports (testPort gives a port once per file)
  apiUrls.push(...ports.map((p) => `http://127.0.0.1:${p}`));
  const env: Record<string, string> = {
    ...cluster.env,
    KEY_PREFIX: prefix,
    SECRETS_KEY: randomBytes(32).toString('base64'),
    ADMIN_API_KEY: ADMIN,
    LOG_LEVEL: process.env['SCALE_LOG_LEVEL'] ?? 'warn',
    ALLOW_PRIVATE_DESTINATIONS: 'true',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'syndicast-scale-')),
    PUBLIC_BASE_URL: apiUrls[0]!,
    HOST: '127.0.0.1',
    // A killed worker's jobs are taken over after the lock expires; the lock (and the mirror lease,
    // which follows it) must outlast the longest platform call, as the defaults (30 s / 10 s) do.
    WORKER_LOCK_MS: '8000',
    SWEEP_INTERVAL_MS: '3000',
    PLATFORM_TIMEOUT_MS: '3000',
    // SCALE_SETTLE_MS: how late a platform may act on a request (the product's default, 30 s, unless set)
    ...(process.env['SCALE_SETTLE_MS'] ? { PLATFORM_SETTLE_MS: process.env['SCALE_SETTLE_MS'] } : {}),
  };
  redis = cluster.client();
  shows = new ShowRepository(redis, new Keys(prefix), 86_400, new SecretBox(env.SECRETS_KEY!));

  // The first API process, the partner (reconciliation every 10 s) and its targets, before the rest starts.
  start('api', 'src/main/api.ts', { ...env, PORT: String(ports[0]) });
  await waitFor(async () => (await fetch(`${apiUrls[0]}/health/ready`)).ok, 60_000, 200);
  const pr = await api(apiUrls[0]!, '/v1/partners', { id: PARTNER, name: 'Scale', reconcileLookbackDays: 1 });
  expect(pr.status).toBe(201);
  // Every 10 s: more often than the API accepts (every 5 minutes at most), so stored directly.
  await new PartnerRepository(redis, new Keys(prefix), new SecretBox(env.SECRETS_KEY!)).update(PARTNER, { reconcileCron: '*/10 * * * * *' });
  secret = ((await pr.json()) as { webhookSecret: string }).webhookSecret;
  const rport = (receiver.address() as { port: number }).port;
  expect((await api(apiUrls[0]!, `/v1/partners/${PARTNER}/endpoints`, { url: `http://127.0.0.1:${rport}/hooks`, events: ['reconciliation.completed'] })).status).toBe(201);
  for (const platform of PLATFORMS) {
    const r = await api(apiUrls[0]!, `/v1/partners/${PARTNER}/targets`, {
      id: platform,
      platform,
      name: platform,
      credentials: CREDENTIALS[platform],
      baseUrl: sim.base(platform),
      commissionRateBps: 1000,
      rateLimit: { requests: 10_000, windowMs: 1000 },
    });
    expect(r.status).toBe(201);
  }
  start('api', 'src/main/api.ts', { ...env, PORT: String(ports[1]) });
  for (let i = 0; i < 3; i++) start('worker', 'workers/mirror.ts', env);
  for (let i = 0; i < 2; i++) start('scheduler', 'workers/scheduler.ts', env);
  await waitFor(async () => (await fetch(`${apiUrls[1]}/health/ready`)).ok, 120_000, 200);

  // Shows go live with two pins each; a worker and an API process die a third of the way through.
  const ids = Array.from({ length: SHOWS }, (_, i) => `show${i}`);
  let sent = 0;
  let killed = false;
  await pool(ids, 32, async (id) => {
    const show = sampleShow(id, { state: 'live' });
    await deliver(showEvent('show.live', show, '2026-11-24T18:00:00Z'), `${id}-live`);
    await deliver({ type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: id, productId: 'p1' } }, `${id}-pin1`);
    await deliver({ type: 'product.pinned', occurredAt: '2026-11-24T18:02:00Z', data: { showId: id, productId: 'p2' } }, `${id}-pin2`);
    if (++sent === Math.floor(SHOWS / 3) && !killed) {
      killed = true;
      dead.add(apiUrls[1]!);
      await Promise.all([procs.find((x) => x.role === 'worker')!.p.kill('SIGKILL'), procs.filter((x) => x.role === 'api')[1]!.p.kill('SIGKILL')]);
    }
  });
  expect(killed).toBe(true);

  // Every show converges on every platform.
  await waitFor(
    async () => {
      for (const id of ids)
        for (const p of PLATFORMS) {
          const m = await shows.getMirror(PARTNER, id, p);
          if (!(m?.state === 'live' && m.pins['p1']?.state === 'pinned' && m.pins['p2']?.state === 'pinned')) return false;
        }
      return true;
    },
    600_000,
    2000,
  );

  // Each platform effect once: per platform and broadcast, no effect (type + product/link) twice,
  // and both pins there for every show.
  for (const platform of PLATFORMS) {
    const effects = await sim.effects(platform);
    const seen = new Map<string, number>();
    for (const e of effects) {
      const k = `${e.externalId}|${e.type}|${e.productId ?? e.url ?? ''}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    const twice = [...seen].filter(([, n]) => n > 1);
    if (twice.length > 0 && process.env['SCALE_DIAG']) {
      // SCALE_DIAG: the platform's writes that carry a doubled effect's link (pins), with when they were read.
      // Per request: arrived, answered, whether the client had already given up; lists of the same chat too.
      const reqs = await pollRequests(platform);
      const lines = [`platform ${platform}: effects twice ${JSON.stringify(twice.map(([k]) => k))}`];
      const line = (r: (typeof reqs)[number]): string => `${r.seq} ${r.at} → ${r.answeredAt ?? '-'} ${r.clientGone ? 'CLIENT-GONE ' : ''}${r.method} ${r.path} ${r.status}`;
      for (const [k] of twice) {
        const url = k.split('|')[2] ?? '';
        const writes = reqs.filter((r) => url !== '' && (r.body.includes(url) || r.body.includes(encodeURIComponent(url))));
        const chats = new Set(writes.map((r) => { try { return String((JSON.parse(r.body) as { snippet?: { liveChatId?: string } }).snippet?.liveChatId ?? ''); } catch { return ''; } }).filter((c) => c !== ''));
        lines.push(`== ${k}`, ...effects.filter((e) => `${e.externalId}|${e.type}|${e.productId ?? e.url ?? ''}` === k).map((e) => `effect ${e.seq} ${e.at}`));
        lines.push(...writes.map(line), ...reqs.filter((r) => r.method === 'GET' && chats.has(String(r.query['liveChatId'] ?? ''))).map((r) => `list ${line(r)}`));
      }
      lines.push('== test-process event-loop stalls (ms, at)', ...lags.map(([at, ms]) => `${new Date(at).toISOString()} ${ms}`));
      writeFileSync(`${process.env['SCALE_DIAG']}-${platform}-effects.txt`, lines.join('\n'));
    }
    expect(twice).toEqual([]);
    const byExternal = new Map<string, string[]>();
    for (const e of effects) byExternal.set(e.externalId, [...(byExternal.get(e.externalId) ?? []), e.type]);
    for (const id of ids) {
      const m = (await shows.getMirror(PARTNER, id, platform))!;
      expect(byExternal.has(m.remote!.externalId)).toBe(true);
    }
    // One broadcast per show: no orphan created by a retry after a kill.
    const created = effects.filter((e) => e.type === 'show.created').map((e) => `${e.title ?? ''}`);
    const dups = created.filter((t, i) => created.indexOf(t) !== i);
    if (dups.length > 0 && process.env['SCALE_DIAG']) {
      // SCALE_DIAG=<path prefix>: what the platform saw, to tell a late request from a double call.
      const reqs = await pollRequests(platform);
      const lines = [`platform ${platform} duplicated ${JSON.stringify(dups)}`];
      for (const t of new Set(dups)) {
        const forms = [t, encodeURIComponent(t), encodeURIComponent(t).replace(/%20/g, '+')];
        lines.push(`== ${t}: effects`, ...effects.filter((e) => e.title === t).map((e) => JSON.stringify(e)));
        lines.push('== requests naming it', ...reqs.filter((r) => forms.some((f) => r.body.includes(f))).map((r) => `${r.seq} ${r.at} ${r.method} ${r.path} ${r.status} ${r.body.slice(0, 200)}`));
      }
      lines.push('== every write and list', ...reqs.filter((r) => r.method !== 'GET' || /live_?[vV]ideos|liveBroadcasts|shows$/.test(r.path)).map((r) => `${r.seq} ${r.at} ${r.method} ${r.path} ${r.status}`));
      writeFileSync(`${process.env['SCALE_DIAG']}-${platform}.txt`, lines.join('\n'));
    }
    expect({ platform, duplicated: created.filter((t, i) => created.indexOf(t) !== i) }).toEqual({ platform, duplicated: [] });
    expect(new Set(created).size).toBe(SHOWS);
  }

  // Orders: a click on the show's p1 link on one of the platforms, then the order (every fifth refunded).
  const expected = new Map<string, { orders: number; gross: number; refunded: number; commission: number }>();
  await pool(ids, 16, async (id, i) => {
    const platform = PLATFORMS[i % 3]!;
    const m = (await shows.getMirror(PARTNER, id, platform))!;
    const click = await fetch(m.pins['p1']!.linkUrl!, { redirect: 'manual', headers: { 'user-agent': BROWSER_UA } });
    expect(click.status).toBe(302);
    const sclid = new URL(click.headers.get('location')!).searchParams.get('sclid')!;
    const total = 1000 + i;
    const refunded = i % 5 === 0 ? 300 : 0;
    const now = new Date().toISOString();
    await deliver({ type: 'order.created', occurredAt: now, data: { order: { id: `o${i}`, clickId: sclid, createdAt: now, lines: [], total: { amount: total, currency: 'USD' } } } }, `o${i}`);
    if (refunded) await deliver({ type: 'order.refunded', occurredAt: now, data: { refund: { id: `r${i}`, orderId: `o${i}`, createdAt: now, amount: { amount: refunded, currency: 'USD' } } } }, `r${i}`);
    expected.set(`${id}|${platform}`, { orders: 1, gross: total, refunded, commission: netCommission(total, refunded, 1000) });
  });
  type Total = { showId: string; targetId: string; currency: string; orders: number; grossAmount: number; refundedAmount: number; commission: number };
  const report = await waitFor(
    async () => {
      const r = (await (await api(apiUrls[0]!, `/v1/partners/${PARTNER}/attribution`)).json()) as { totals: Total[] };
      const orders = r.totals.reduce((s, t) => s + t.orders, 0);
      const refunded = r.totals.reduce((s, t) => s + t.refundedAmount, 0);
      return orders === SHOWS && refunded === [...expected.values()].reduce((s, e) => s + e.refunded, 0) ? r : undefined;
    },
    300_000,
    1000,
  );
  const got = new Map(report.totals.map((t) => [`${t.showId}|${t.targetId}`, { orders: t.orders, gross: t.grossAmount, refunded: t.refundedAmount, commission: t.commission }]));
  expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));

  // Reconciliation: two schedulers, one run per period (a period is the [from, to) of a cron tick).
  await waitFor(async () => new Set(hooks.filter((h) => h.body.type === 'reconciliation.completed').map((h) => h.body.data.to)).size >= 2, 60_000, 500);
  const runsByPeriod = new Map<string, Set<string>>();
  for (const h of hooks) {
    if (h.body.type !== 'reconciliation.completed' || h.body.data.trigger !== 'scheduled') continue;
    const k = `${h.body.data.from}/${h.body.data.to}`;
    runsByPeriod.set(k, new Set([...(runsByPeriod.get(k) ?? []), h.body.data.id]));
  }
  expect([...runsByPeriod.values()].map((s) => s.size).every((n) => n === 1)).toBe(true);
}, 1_200_000);
