/**
 * `npm run demo`: simulators + the whole service in this process, one scripted show end to end
 * (scheduled → live → pins → clicks → orders → refund → ended → reconciliation), driven through
 * the public HTTP API exactly as a partner and an operator would, then a per-platform account of
 * what happened and the attribution report. The partner's encoder is a real ffmpeg publishing a
 * test pattern once to the show's ingest; the relay pushes it to every platform's RTMP sink. Uses REDIS_URL (or the README "What happens with no configuration" default) with a
 * throw-away key prefix, so it never touches other data.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config/config.js';
import { applyBps, formatMoney } from '../domain/money.js';
import { signatureHeader } from '../sources/signature.js';
import { simTargetCredentials } from '../simulators/sim.accounts.js';
import { startSimulators } from '../simulators/sim.server.js';
import { supportedPlatforms } from '../targets/target.registry.js';
import type { Platform } from '../targets/target.adapter.js';
import { masters } from '../store/redis.js';
import { StartupError } from '../store/embedded-redis.js';
import { onStopSignals, startRoles } from './process.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { FfmpegNotFoundError, ffmpegPath } from '../lib/ffmpeg-path.js';
import { freePort } from '../lib/net.js';

/**
 * The simulators' seeded account a on each platform (src/simulators/sim.accounts.ts): a simulator
 * accepts a credential only for its own account, like the platform.
 */
const DEMO_CREDENTIALS: Record<Platform, Record<string, string>> = {
  youtube: simTargetCredentials('youtube'),
  tiktok: simTargetCredentials('tiktok'),
  whatnot: { ...simTargetCredentials('whatnot'), webhookSecret: 'whsec_' + Buffer.from('demo-whatnot-webhook-secret').toString('base64') },
  bambuser: { ...simTargetCredentials('bambuser'), webhookHeaderName: 'x-demo-auth', webhookHeaderValue: 'demo-header-secret' },
  facebook: simTargetCredentials('facebook'),
};
const RATE_BPS: Record<Platform, number> = { youtube: 1000, tiktok: 1500, whatnot: 1200, bambuser: 800, facebook: 500 };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const say = (msg: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

const sim = await startSimulators({ port: 0 });
const port = await freePort();
const adminKey = 'sk_admin_demo_' + randomBytes(12).toString('hex');
/**
 * The service's configuration and start, with `npm start`'s answer to what stops them: a bad setting of
 * the shell's (LOG_LEVEL=loud, REDIS_URL=redis://host:99999) or a Redis that is not there is one
 * paragraph and exit 1 (the demo died on a stack trace), the simulators closed first.
 */
const { config, service } = await (async () => {
  try {
    const c = loadConfig(undefined, undefined, {
      defaults: { LOG_LEVEL: 'error' },
      overrides: {
        PORT: String(port),
        HOST: '127.0.0.1',
        PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
        ADMIN_API_KEY: adminKey,
        SECRETS_KEY: randomBytes(32).toString('base64'),
        KEY_PREFIX: 'demo' + randomBytes(3).toString('hex'),
        DATA_DIR: mkdtempSync(join(tmpdir(), 'syndicast-demo-')),
        ALLOW_PRIVATE_DESTINATIONS: 'true',
        SWEEP_INTERVAL_MS: '1000',
        RELAY_RTMP_PORT: '0',
      },
    });
    return { config: c, service: await startRoles(['api', 'worker', 'scheduler', 'relay'], c, { logger: false }) };
  } catch (err) {
    await sim.close();
    if (err instanceof ConfigError || err instanceof StartupError || err instanceof FfmpegNotFoundError) {
      process.stderr.write(`\n${err.message}\n\n`);
      process.exit(1);
    }
    throw err;
  }
})();
const api = service.url!.replace('localhost', '127.0.0.1');

/** The demo's data lives under a throw-away key prefix: removes it; the number of keys removed. */
async function removeDemoKeys(client: typeof service.runtime.redis = service.runtime.redis): Promise<number> {
  let removed = 0;
  for (const node of masters(client)) {
    for await (const batch of node.scanStream({ match: `${config.keyPrefix}:*`, count: 500 }) as AsyncIterable<string[]>) {
      // One key per call on a cluster: a batch spans many hash slots.
      if (client instanceof Redis) removed += batch.length ? await client.unlink(...batch) : 0;
      else for (const k of batch) removed += await client.unlink(k);
    }
  }
  return removed;
}

// SIGTERM/SIGINT (Ctrl-C, or npm forwarding its own): nothing the demo started may outlive it — the
// encoder, the relay's ffmpeg processes (service.stop), a redis-server it spawned, the simulators —
// and its keys go. The same signal again within a second is that one delivered twice (npm forwards
// a signal the process group already got); any other exits at once, the encoder killed first
// (onStopSignals, as `npm start`).
const started: { encoder?: ChildProcess } = {};
onStopSignals({
  start: (signal) => {
    say(`${signal}: stopping the demo`);
    started.encoder?.kill('SIGKILL');
    setTimeout(() => {
      process.stderr.write('the demo did not stop within 15 s; exiting\n');
      process.exit(1);
    }, 15_000).unref();
    // The script's step in flight fails as the service goes (its API closes): that is the stop, not an error.
    const stepFailed = (): void => undefined;
    process.on('uncaughtException', stepFailed);
    process.on('unhandledRejection', stepFailed);
    void (async () => {
      // The keys go once the workers stopped writing them, over a connection of our own (the service's closes).
      const client = service.runtime.redis.duplicate();
      client.on('error', () => undefined);
      await service.stop({ exiting: true });
      const removed = await removeDemoKeys(client).catch(() => 0);
      client.disconnect();
      await sim.close();
      say(`stopped (removed the demo's ${removed} Redis keys)`);
    })().then(
      // A clean stop is a success, as `npm start`'s (exit 0): 143/130 made npm report "command failed"
      // and a CI job or a process manager take the demo's stop for a crash.
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  },
  exiting: () => started.encoder?.kill('SIGKILL'),
});
say(`simulators on ${sim.url}, Syndicast on ${api} (redis: ${service.runtime.redisInfo.source})`);

async function call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const r = await fetch(path.startsWith('http') ? path : api + path, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    redirect: 'manual',
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* csv or empty */
  }
  return { status: r.status, body: parsed as T };
}

const partnerId = 'talkshoplive';
const showId = 'holiday-glow-live';
const created = await call<{ webhookSecret: string }>('POST', '/v1/partners', { id: partnerId, name: 'TalkShopLive (demo)', attributionWindowHours: 168 });
const secret = created.body.webhookSecret;
say(`partner ${partnerId} onboarded`);

const platforms = supportedPlatforms();
for (const platform of platforms) {
  const r = await call('POST', `/v1/partners/${partnerId}/targets`, {
    id: `${platform}-main`,
    platform,
    name: `${platform} (simulated)`,
    credentials: DEMO_CREDENTIALS[platform],
    baseUrl: `${sim.url}/${platform}`,
    commissionRateBps: RATE_BPS[platform],
  });
  if (r.status !== 201) throw new Error(`target ${platform}: ${r.status} ${JSON.stringify(r.body)}`);
  // Platforms that push order webhooks send them to us.
  await call('PUT', `${sim.url}/_sim/${platform}/webhook`, { url: `${api}/v1/platform-webhooks/${platform}-main`, secret: DEMO_CREDENTIALS[platform]['webhookSecret'] ?? DEMO_CREDENTIALS[platform]['appSecret'] }).catch(() => undefined);
}
say(`targets: ${platforms.join(', ')}`);

let seq = 0;
async function send(type: string, data: unknown, occurredAt = new Date().toISOString()): Promise<void> {
  const body = JSON.stringify({ type, occurredAt, data });
  const id = `evt_demo_${++seq}`;
  const ts = Math.floor(Date.now() / 1000);
  const r = await fetch(`${api}/v1/partners/${partnerId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) },
    body,
  });
  if (r.status !== 202) throw new Error(`event ${type}: ${r.status} ${await r.text()}`);
  say(`partner → ${type} (202)`);
}

interface MirrorView {
  targetId: string;
  platform: Platform;
  state: string;
  externalId: string | null;
  url: string | null;
  ingest?: { url: string; streamKey: string };
  relay: { state: string; bitrateKbps: number; bytesSent: number; restarts: number; lastError: string | null };
  pins: { productId: string; state: string; linkUrl: string | null }[];
  lastError: string | null;
}
async function mirrors(): Promise<MirrorView[]> {
  return (await call<{ mirrors: MirrorView[] }>('GET', `/v1/partners/${partnerId}/shows/${showId}`)).body.mirrors;
}
async function until(what: string, ok: (m: MirrorView) => boolean, timeoutMs = 30_000): Promise<MirrorView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ms = await mirrors();
    if (ms.length > 0 && ms.every((m) => ok(m) || m.state === 'failed')) {
      say(`${what}: ${ms.map((m) => `${m.platform}=${m.state}`).join(' ')}`);
      return ms;
    }
    if (Date.now() > deadline) {
      say(`${what}: timed out: ${ms.map((m) => `${m.platform}=${m.state}${m.lastError ? ` (${m.lastError})` : ''}`).join('; ')}`);
      return ms;
    }
    await sleep(200);
  }
}

const products = [
  { id: 'glow-serum', title: 'Glow Serum', price: { amount: 3400, currency: 'USD' }, url: 'https://shop.example.com/glow-serum', sku: 'GS-30' },
  { id: 'lip-oil', title: 'Cherry Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/lip-oil', sku: 'LO-CH' },
];
const show = { id: showId, title: 'Holiday Glow — live', scheduledAt: new Date(Date.now() + 3600_000).toISOString(), state: 'scheduled', products, pinnedProductIds: [] as string[] };

await send('show.scheduled', { show });
let ms = await until('mirrors provisioned', (m) => m.state === 'ready' || m.state === 'action_required');
// Platforms whose API gives no RTMP ingest: the operator links the address the platform's app shows, so
// the relay can push there too — for the show Syndicast made (Bambuser), or for one the operator makes in
// the app where the API cannot make one (TikTok, Whatnot).
for (const m of ms.filter((x) => x.state === 'action_required' || !x.ingest)) {
  if (m.state !== 'action_required' && m.externalId) {
    const shown = await call<{ url: string; streamKey: string }>('GET', `${sim.url}/_sim/${m.platform}/shows/${encodeURIComponent(m.externalId)}/ingest`);
    await call('PUT', `/v1/partners/${partnerId}/shows/${showId}/mirrors/${m.targetId}`, { externalId: m.externalId, ingest: shown.body });
    say(`operator linked the RTMP ingest the ${m.platform} app shows for the show Syndicast made, ${m.externalId}`);
    continue;
  }
  if (m.state === 'action_required') say(`${m.platform}: action required — ${m.lastError}`);
  const hand = await call<{ externalId: string; ingest: { url: string; streamKey: string } }>('POST', `${sim.url}/_sim/${m.platform}/shows`, { title: show.title });
  await call('PUT', `/v1/partners/${partnerId}/shows/${showId}/mirrors/${m.targetId}`, { externalId: hand.body.externalId, ingest: hand.body.ingest });
  say(`operator linked the ${m.platform} show ${hand.body.externalId} by hand, with its RTMP ingest`);
}
ms = await until('ready for the encoder', (m) => m.state === 'ready' && !!m.ingest);
for (const m of ms) say(`${m.platform} ingest: ${m.ingest!.url} (stream key ${m.ingest!.streamKey.slice(0, 4)}…)`);

// The partner's encoder: one publish of a test pattern with sound (H.264 + AAC) to the show's own ingest.
const ingest = (await call<{ show: { ingest: { url: string; streamKey: string } } }>('GET', `/v1/partners/${partnerId}/shows/${showId}`)).body.show.ingest;
say(`the partner's encoder publishes once to ${ingest.url}/${ingest.streamKey.slice(0, 6)}… (ffmpeg test pattern)`);
await send('show.live', { show: { ...show, state: 'live' } });
const encoder = (started.encoder = spawn(
  ffmpegPath(config.ffmpegPath),
  ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-b:v', '1500k', '-g', '30', '-c:a', 'aac', '-b:a', '96k', '-f', 'flv', `${ingest.url}/${ingest.streamKey}`],
  { stdio: 'ignore' },
));
ms = await until('video relayed to every platform', (m) => m.relay.state === 'sending', 60_000);
await sleep(3000);
console.log('\n=== Video relay: one publish in, one supervised ffmpeg per platform out ===');
for (const m of await mirrors()) {
  const key = ms.find((x) => x.targetId === m.targetId)?.ingest?.streamKey;
  const sink = (await call<{ streamKey: string; bytes: number; videoCodec: string | null; audioCodec: string | null; publishing: boolean }[]>('GET', `${sim.url}/_sim/${m.platform}/streams`)).body.find((x) => x.streamKey === key);
  console.log(
    `  ${m.platform.padEnd(9)} relay ${m.relay.state.padEnd(8)} ${String(m.relay.bitrateKbps).padStart(5)} kbit/s  sent ${String(m.relay.bytesSent).padStart(9)} B  restarts ${m.relay.restarts}` +
      `  | sink: ${sink?.publishing ? 'receiving' : 'idle'} ${String(sink?.bytes ?? 0).padStart(9)} B ${sink?.videoCodec ?? '-'}/${sink?.audioCodec ?? '-'}`,
  );
}
console.log('');
// On Bambuser the host going live in the Bambuser app is what starts the show (no API for it).
const bambuserSim = sim.simulators.get('bambuser') as unknown as { startBroadcast?: (id: string) => void; stopBroadcast?: (id: string) => void } | undefined;
for (const m of ms.filter((x) => x.platform === 'bambuser' && x.externalId)) bambuserSim?.startBroadcast?.(m.externalId!);
await until('live', (m) => m.state === 'live');
await send('product.pinned', { showId, productId: 'glow-serum' });
await send('product.pinned', { showId, productId: 'lip-oil' });
ms = await until('pinned', (m) => m.pins.filter((p) => p.state === 'pinned').length === 2);
await send('product.unpinned', { showId, productId: 'glow-serum' });
await until('unpinned glow-serum', (m) => m.pins.some((p) => p.productId === 'glow-serum' && p.state === 'unpinned'));

// Buyers click the tracked links shown on two platforms and order on the partner's shop.
const clicks: { platform: string; clickId: string }[] = [];
for (const m of ms.slice(0, 2)) {
  const link = m.pins.find((p) => p.productId === 'lip-oil')?.linkUrl;
  if (!link) continue;
  const r = await fetch(link, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (demo buyer)' } });
  const clickId = new URL(r.headers.get('location') ?? 'http://x/').searchParams.get('sclid');
  if (clickId) clicks.push({ platform: m.platform, clickId });
  say(`buyer clicked the ${m.platform} link → 302 ${r.headers.get('location')}`);
}
const orders = clicks.map((c, i) => ({
  id: `order-${i + 1}`,
  clickId: c.clickId,
  showId,
  createdAt: new Date().toISOString(),
  lines: [{ productId: 'lip-oil', quantity: 2, amount: { amount: 3600, currency: 'USD' } }],
  total: { amount: 3600, currency: 'USD' },
}));
for (const o of orders) await send('order.created', { order: o });
await send('order.created', { order: { id: 'order-no-click', createdAt: new Date().toISOString(), lines: [], total: { amount: 5000, currency: 'USD' } } });
if (orders[0]) await send('order.refunded', { refund: { id: 'refund-1', orderId: orders[0].id, createdAt: new Date().toISOString(), amount: { amount: 1440, currency: 'USD' } } });

// A platform-native order on every platform that has an order API, naming the mirrored show.
for (const m of ms) {
  if (!m.externalId) continue;
  const r = await call<{ orderId: string }>('POST', `${sim.url}/_sim/${m.platform}/orders`, { externalId: m.externalId, productId: 'glow-serum', total: { amount: 3400, currency: 'USD' } });
  if (r.status >= 300) continue;
  const target = await service.runtime.partners.getTarget(partnerId, m.targetId);
  const caps = target ? service.runtime.syncService.adapterFor(target)?.capabilities : undefined;
  const reach = caps?.orderWebhooks ? 'its webhook reports it' : caps?.orderReport ? 'its order report will show it' : `${m.platform} has no order API, so only tracked-link sales count`;
  say(`${m.platform}: a buyer ordered Glow Serum inside the platform (order ${r.body.orderId}; ${reach})`);
}

encoder.kill('SIGTERM');
await send('show.ended', { show: { ...show, state: 'ended', pinnedProductIds: ['lip-oil'] } });
for (const m of ms.filter((x) => x.platform === 'bambuser' && x.externalId)) bambuserSim?.stopBroadcast?.(m.externalId!);
await until('ended', (m) => m.state === 'ended');
await until('relay stopped', (m) => m.relay.state === 'stopped');
await sleep(1500); // let attribution jobs drain

const recon = await call<{ id: string }>('POST', `/v1/partners/${partnerId}/reconciliations`, { from: new Date(t0 - 3600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() });
if (recon.status === 202) {
  for (let i = 0; i < 50; i++) {
    const r = await call<{ status: string; summary: unknown; discrepancies: unknown[] }>('GET', `/v1/reconciliations/${recon.body.id}`);
    if (r.body.status === 'completed' || r.body.status === 'failed') {
      say(`reconciliation ${r.body.status}: ${JSON.stringify(r.body.summary)}; ${r.body.discrepancies.length} discrepancies`);
      break;
    }
    await sleep(200);
  }
} else {
  say(`reconciliation: not available in this build (${recon.status})`);
}

console.log('\n=== What happened on each platform (simulator effects) ===');
for (const platform of platforms) {
  const effects = (await call<{ type: string; externalId: string; title?: string; productId?: string; url?: string }[]>('GET', `${sim.url}/_sim/${platform}/effects`)).body;
  console.log(`\n${platform}:`);
  for (const e of effects) console.log(`  ${e.type.padEnd(16)} ${e.externalId}${e.title ? `  "${e.title}"` : ''}${e.productId ? `  product=${e.productId}` : ''}${e.url ? `  ${e.url}` : ''}`);
}

const report = await call<{
  totals: { showId: string; targetId: string; currency: string; orders: number; grossAmount: number; refundedAmount: number; commission: number }[];
  unattributed: { currency: string; orders: number; grossAmount: number }[];
}>('GET', `/v1/partners/${partnerId}/attribution`);
console.log('\n=== Attribution report ===');
if (report.status !== 200) {
  console.log(`  not available in this build (${report.status})`);
} else {
  console.log(`  ${'show'.padEnd(20)} ${'target'.padEnd(14)} ${'orders'.padStart(6)} ${'gross'.padStart(14)} ${'refunded'.padStart(14)} ${'commission'.padStart(14)}`);
  for (const t of report.body.totals) {
    const m = (amount: number): string => formatMoney({ amount, currency: t.currency }).padStart(14);
    console.log(`  ${t.showId.padEnd(20)} ${t.targetId.padEnd(14)} ${String(t.orders).padStart(6)} ${m(t.grossAmount)} ${m(t.refundedAmount)} ${m(t.commission)}`);
  }
  for (const u of report.body.unattributed) console.log(`  ${'(unattributed)'.padEnd(35)} ${String(u.orders).padStart(6)} ${formatMoney({ amount: u.grossAmount, currency: u.currency }).padStart(14)}`);
}

// What the script should have produced: the partner orders attributed by click, and the
// platform-native orders on every platform that reports orders (webhook or report).
const expected = new Map<string, { orders: number; gross: number; refunded: number; commission: number }>();
const add = (targetId: string, gross: number, refunded: number, rateBps: number): void => {
  const e = expected.get(targetId) ?? { orders: 0, gross: 0, refunded: 0, commission: 0 };
  e.orders += 1;
  e.gross += gross;
  e.refunded += refunded;
  e.commission += applyBps(gross - refunded, rateBps);
  expected.set(targetId, e);
};
clicks.forEach((c, i) => add(`${c.platform}-main`, 3600, i === 0 ? 1440 : 0, RATE_BPS[c.platform as Platform]));
for (const m of ms) {
  const target = await service.runtime.partners.getTarget(partnerId, m.targetId);
  const caps = target ? service.runtime.syncService.adapterFor(target)?.capabilities : undefined;
  if (m.externalId && caps && (caps.orderWebhooks || caps.orderReport)) add(m.targetId, 3400, 0, RATE_BPS[m.platform]);
}
if (report.status === 200) {
  const problems: string[] = [];
  for (const [targetId, e] of expected) {
    const got = report.body.totals.find((t) => t.targetId === targetId);
    const same = got && got.orders === e.orders && got.grossAmount === e.gross && got.refundedAmount === e.refunded && got.commission === e.commission;
    if (!same) problems.push(`${targetId}: expected ${JSON.stringify(e)}, report has ${JSON.stringify(got ?? null)}`);
  }
  for (const t of report.body.totals) if (!expected.has(t.targetId)) problems.push(`${t.targetId}: not expected, report has ${JSON.stringify(t)}`);
  const un = report.body.unattributed.find((u) => u.currency === 'USD');
  if (!un || un.orders !== 1 || un.grossAmount !== 5000) problems.push(`unattributed: expected 1 order of 50.00 USD, report has ${JSON.stringify(un ?? null)}`);
  console.log(problems.length === 0 ? '\nThe attribution report matches the scripted orders.' : `\nThe attribution report does NOT match the scripted orders:\n  ${problems.join('\n  ')}`);
  if (problems.length > 0) process.exitCode = 1;
}

// The demo's data lived under a throw-away key prefix: remove it.
const removed = await removeDemoKeys();
await service.stop();
await sim.close();
say(`done (removed the demo's ${removed} Redis keys)`);
