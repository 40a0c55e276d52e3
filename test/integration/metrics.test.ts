/**
 * /metrics (issue 11 item 3): the exposition passes `promtool check metrics` (Debian's `prometheus`
 * package; .ci/run installs it), carries the families an operator needs with real values after real
 * work (mirrors on the simulators, a rate-limit wait, attributed orders, a reconciliation with
 * discrepancies, outbound deliveries), and no label value is an id or a secret. The shipped alert
 * rules pass `promtool check rules` and the Grafana dashboard only queries families that exist.
 * Real redis-server, real HTTP, real promtool.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { startRoles } from '../../src/main/process.js';

/** promtool must exist: a missing tool is a failure, not a skip (.ci/run installs `prometheus`). */
function promtool(): string {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error('promtool not found: install Debian\'s `prometheus` package (apt-get install prometheus); .ci/run does this when it is missing');
  return 'promtool';
}

let svc: TestService;
let sim: TestSim;
let receiver: Server;
let receiverUrl: string;
let secret: string;
const WN_SECRET = CREDENTIALS.whatnot['webhookSecret']!;

beforeAll(async () => {
  promtool();
  sim = await startSim();
  // no video is pushed here: a simulated encoder makes YouTube's bound stream active (docs/testing.md)
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
  svc = await startService({ workers: true, scheduler: true });
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await sim?.close();
  await new Promise((r) => receiver?.close(r));
});

async function scrape(): Promise<string> {
  const r = await fetch(`${svc.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
  return r.text();
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}
function sum(all: Sample[], name: string, where: Record<string, string> = {}): number {
  return all.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

const PARTNER = 'metrics-partner-7f3a';
const SHOW = 'metrics-show-91c2';

test('real work shows up in the metrics: mirrors, pins, platform calls, a rate-limit wait, deliveries, commission, discrepancies, queues, Redis', async () => {
  secret = await createPartner(svc, PARTNER);
  expect((await svc.api(`/v1/partners/${PARTNER}/endpoints`, { json: { url: receiverUrl, events: ['mirror.updated'] } })).status).toBe(201);
  // YouTube with a two-requests-per-second account limit: its run has to wait for the limit at least once.
  for (const [id, platform, extra] of [
    ['yt-metrics-target', 'youtube', { rateLimit: { requests: 2, windowMs: 1000 } }],
    ['wn-metrics-target', 'whatnot', {}],
  ] as const) {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets`, { json: { id, platform, name: id, credentials: CREDENTIALS[platform], baseUrl: sim.base(platform), commissionRateBps: 1000, ...extra } });
    expect(r.status).toBe(201);
  }
  const show = sampleShow(SHOW, { title: 'Metrics show title-xyz' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror(PARTNER, SHOW, 'wn-metrics-target'))?.state === 'action_required', 30_000);
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'by hand' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/${SHOW}/mirrors/wn-metrics-target`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: SHOW, productId: 'p1' } })).status).toBe(202);
  await waitFor(async () => {
    const [yt, wn] = await Promise.all([svc.rt.shows.getMirror(PARTNER, SHOW, 'yt-metrics-target'), svc.rt.shows.getMirror(PARTNER, SHOW, 'wn-metrics-target')]);
    return yt?.state === 'live' && wn?.state === 'live' && yt.pins['p1']?.state === 'pinned' && wn.pins['p1']?.state === 'pinned';
  }, 60_000, 250);

  // An order the platform reports by webhook (attributed to the show: commission booked), one only
  // the platform knows (reconciliation heals it) — two discrepancy kinds with the ghost below.
  await sim.control('PUT', '/_sim/whatnot/webhook', { url: `${svc.url}/v1/platform-webhooks/wn-metrics-target`, secret: WN_SECRET });
  await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 2000, currency: 'USD' } });
  await waitFor(async () => (await svc.rt.attribution.orders(PARTNER)).length === 1);
  await sim.control('PUT', '/_sim/whatnot/webhook', { url: 'http://127.0.0.1:1/unreachable' });
  await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p2', total: { amount: 5000, currency: 'EUR' } });
  await svc.rt.attribution.ingestPlatformOrders(PARTNER, 'wn-metrics-target', [
    { orderId: 'ghost-order-55', externalShowId: externalId, productId: 'p1', clickId: undefined, createdAt: new Date().toISOString(), total: { amount: 700, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined },
  ], 'webhook');
  const rec = await svc.api(`/v1/partners/${PARTNER}/reconciliations`, { json: { from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() } });
  expect(rec.status).toBe(202);
  const recId = ((await rec.json()) as { id: string }).id;
  await waitFor(async () => ((await (await svc.api(`/v1/reconciliations/${recId}`)).json()) as { status: string }).status === 'completed', 30_000);
  await waitFor(async () => (await svc.rt.outbound.endpoints.list(PARTNER))[0]?.lastSuccessAt, 30_000);

  const text = await scrape();
  const all = samples(text);
  // Mirrors by platform and state; pins by state (active shows).
  expect(sum(all, 'syndicast_mirrors', { platform: 'youtube', state: 'live' })).toBe(1);
  expect(sum(all, 'syndicast_mirrors', { platform: 'whatnot', state: 'live' })).toBe(1);
  expect(sum(all, 'syndicast_mirrors', { platform: 'tiktok', state: 'failed' })).toBe(0);
  expect(all.some((s) => s.name === 'syndicast_mirrors' && s.labels['platform'] === 'tiktok' && s.labels['state'] === 'failed')).toBe(true);
  expect(sum(all, 'syndicast_pins', { state: 'pinned' })).toBe(2);
  // Platform calls by platform / operation / outcome, and their latency.
  expect(sum(all, 'syndicast_platform_calls_total', { platform: 'youtube', operation: 'createShow', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_platform_calls_total', { platform: 'whatnot', operation: 'attachShow', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_platform_calls_total', { platform: 'youtube', outcome: 'rate_limited' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_platform_call_duration_seconds_count', { platform: 'youtube', operation: 'createShow' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_platform_calls_total', { platform: 'whatnot', operation: 'listOrders', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  // Rate-limit waits, sync job durations.
  expect(sum(all, 'syndicast_rate_limit_waits_total', { platform: 'youtube' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_rate_limit_wait_seconds_total', { platform: 'youtube' })).toBeGreaterThan(0);
  expect(sum(all, 'syndicast_sync_job_duration_seconds_count', { platform: 'youtube', result: 'delayed' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_sync_job_duration_seconds_count', { platform: 'whatnot', result: 'done' })).toBeGreaterThanOrEqual(1);
  // Queues: every queue, sync shards, attribution, delivery, reconcile, scheduler.
  const queues = new Set(all.filter((s) => s.name === 'syndicast_queue_jobs').map((s) => s.labels['queue']));
  for (const q of ['sync-youtube-0', 'attribution', 'delivery', 'reconcile', 'scheduler']) expect(queues).toContain(q);
  expect(new Set(all.filter((s) => s.name === 'syndicast_queue_jobs').map((s) => s.labels['state']))).toEqual(new Set(['waiting', 'active', 'delayed', 'failed']));
  // Deliveries, commission by currency, discrepancies by kind, reconciliation runs, Redis, endpoints.
  expect(sum(all, 'syndicast_outbound_delivery_attempts_total', { outcome: 'delivered' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_ledger_commission_booked_minor_total', { currency: 'USD' })).toBeGreaterThanOrEqual(270);
  expect(sum(all, 'syndicast_ledger_commission_booked_minor_total', { currency: 'EUR' })).toBeGreaterThanOrEqual(500);
  expect(sum(all, 'syndicast_reconciliation_discrepancies_total', { kind: 'missing_in_ledger', healed: 'true' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_reconciliation_discrepancies_total', { kind: 'missing_in_platform', healed: 'false' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_reconciliation_runs_total', { status: 'completed' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_redis_up')).toBe(1);
  expect(sum(all, 'syndicast_outbound_endpoints', { state: 'enabled' })).toBeGreaterThanOrEqual(1);
  expect(sum(all, 'syndicast_http_request_duration_seconds_count', { route: '/v1/partners/:partnerId/events' })).toBeGreaterThanOrEqual(3);

  // promtool accepts the whole exposition (it exits 0 and prints nothing).
  const check = spawnSync(promtool(), ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect({ status: check.status, out: `${check.stdout}${check.stderr}`.trim() }).toEqual({ status: 0, out: '' });
}, 180_000);

test('bounded cardinality: no label value is an id, a title, a URL or a secret; labels come from fixed sets', async () => {
  const text = await scrape();
  const all = samples(text);
  // What the first test used: partner, show and target ids, the remote show id, order ids, keys, secrets.
  const key = (await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { id: string; key: string };
  await fetch(`${svc.url}/v1/partners/${PARTNER}/shows/${SHOW}`, { headers: { authorization: `Bearer ${key.key}` } });
  const after = samples(await scrape());
  const forbidden = [PARTNER, SHOW, 'yt-metrics-target', 'wn-metrics-target', 'ghost-order-55', 'title-xyz', key.id, key.key, secret, WN_SECRET, '127.0.0.1', 'http'];
  const values = [...all, ...after].flatMap((s) => Object.values(s.labels));
  for (const f of forbidden) expect(values.filter((v) => v.includes(f))).toEqual([]);
  // Each label takes values from a fixed vocabulary (route templates are the router's own patterns).
  const vocab: Record<string, RegExp> = {
    platform: /^(youtube|tiktok|whatnot|bambuser|facebook|other)$/,
    state: /^[a-z_]+$/,
    outcome: /^(ok|retryable|rate_limited|auth_expired|permanent|action_required|error|delivered|retry|failed|skipped)$/,
    operation: /^[a-zA-Z]+$/,
    result: /^[a-z_]+$/,
    queue: /^(sync-(youtube|tiktok|whatnot|bambuser|facebook)-\d+|attribution|delivery|reconcile|scheduler)$/,
    currency: /^[A-Z]{3}$/,
    kind: /^[a-z_]+$/,
    healed: /^(true|false)$/,
    status: /^(\d{3}|completed|failed)$/,
    method: /^[A-Z]+$/,
    route: /^(unmatched|\/[A-Za-z0-9_/:*.-]*)$/,
    le: /^([0-9.e+-]+|\+Inf)$/,
    quantile: /^[0-9.]+$/,
    type: /^[a-zA-Z_]+$/,
    space: /^[a-z_]+$/,
    version: /^v?[0-9.]+$/,
    major: /^\d+$/,
    minor: /^\d+$/,
    patch: /^\d+$/,
    kindGC: /^[a-z]+$/,
  };
  const unknown: string[] = [];
  for (const s of after) {
    for (const [k, v] of Object.entries(s.labels)) {
      const re = vocab[k];
      if (!re) unknown.push(`${s.name}{${k}}`);
      else if (!re.test(v)) unknown.push(`${s.name}{${k}="${v}"}`);
    }
  }
  expect([...new Set(unknown)]).toEqual([]);
  // Series count stays small whatever the traffic (a few hundred on this setup).
  expect(after.length).toBeLessThan(2000);
});

test('the shipped Prometheus rules pass `promtool check rules` and alert on the five conditions', () => {
  const out = execFileSync(promtool(), ['check', 'rules', 'ops/prometheus-rules.yml'], { encoding: 'utf8' });
  expect(out).toMatch(/SUCCESS/);
  const rules = readFileSync('ops/prometheus-rules.yml', 'utf8');
  for (const alert of ['SyndicastMirrorFailed', 'SyndicastPlatformErrorRate', 'SyndicastQueueBacklog', 'SyndicastOutboundEndpointDisabled', 'SyndicastRedisDown']) expect(rules).toContain(`alert: ${alert}`);
});

test('the alert rules fire on the right series (promtool test rules)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-test-'));
  // Annotations are prose for people; the test is about which series fire (promtool compares annotations too).
  const lines = readFileSync('ops/prometheus-rules.yml', 'utf8').split('\n');
  const kept: string[] = [];
  let skipping = -1;
  for (const line of lines) {
    const indent = line.length - line.trimStart().length;
    if (skipping >= 0 && (line.trim() === '' || indent > skipping)) continue;
    skipping = -1;
    if (line.trim() === 'annotations:') {
      skipping = indent;
      continue;
    }
    kept.push(line);
  }
  writeFileSync(join(dir, 'rules.yml'), kept.join('\n'));
  writeFileSync(
    join(dir, 'test.yml'),
    `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'syndicast_mirrors{platform="youtube",state="failed"}'
        values: '0 1 1 1 1 1 1'
      - series: 'syndicast_redis_up{instance="a"}'
        values: '1 0 0 0 0 0 0'
      - series: 'syndicast_outbound_endpoints{state="disabled"}'
        values: '0 1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 6m
        alertname: SyndicastMirrorFailed
        exp_alerts:
          - exp_labels: { severity: warning, platform: youtube }
      - eval_time: 6m
        alertname: SyndicastRedisDown
        exp_alerts:
          - exp_labels: { severity: critical, instance: a }
      - eval_time: 6m
        alertname: SyndicastOutboundEndpointDisabled
        exp_alerts:
          - exp_labels: { severity: warning }
`,
  );
  const r = spawnSync(promtool(), ['test', 'rules', 'test.yml'], { cwd: dir, encoding: 'utf8' });
  expect({ status: r.status, out: r.status === 0 ? '' : `${r.stdout}${r.stderr}` }).toEqual({ status: 0, out: '' });
});

test('the Grafana dashboard is valid JSON whose panels query only families /metrics exposes', async () => {
  const dash = JSON.parse(readFileSync('ops/grafana-dashboard.json', 'utf8')) as { title: string; panels: { title: string; targets?: { expr: string }[] }[] };
  expect(dash.title).toMatch(/Syndicast/);
  const names = new Set(samples(await scrape()).map((s) => s.name.replace(/_(bucket|count|sum)$/, '')));
  const text = await scrape();
  for (const line of text.split('\n')) if (line.startsWith('# TYPE ')) names.add(line.split(' ')[2]!);
  const used = dash.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/\b(syndicast_[a-z0-9_]+|nodejs_[a-z0-9_]+|process_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ''))));
  expect(used.length).toBeGreaterThan(8);
  expect([...new Set(used)].filter((n) => !names.has(n))).toEqual([]);
});

test('a worker process without the API serves its own /metrics on METRICS_PORT (promtool-clean)', async () => {
  // No role but the metrics server (a worker role's BullMQ connections, stopped while they still
  // open, error out in the test process; the wiring under test is the same for every non-API role).
  const worker = await startRoles([], { ...svc.config, metricsPort: 0 }, { logger: false });
  try {
    expect(worker.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = await fetch(worker.metricsUrl!);
    expect(r.status).toBe(200);
    const text = await r.text();
    for (const family of ['syndicast_platform_calls_total', 'syndicast_sync_job_duration_seconds', 'syndicast_outbound_delivery_attempts_total', 'process_cpu_seconds_total']) expect(text).toContain(`# TYPE ${family} `);
    const check = spawnSync(promtool(), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: check.status, out: `${check.stdout}${check.stderr}`.trim() }).toEqual({ status: 0, out: '' });
  } finally {
    await worker.stop();
  }
});
