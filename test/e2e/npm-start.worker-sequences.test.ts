/**
 * `npm start` (src/main/all.ts) in a child process with its own redis-server and the simulators, fed
 * sequences of partner events and operator actions that each pass validation and are sensible alone,
 * but hurt the workers together (fast-check, fixed seed: FUZZ_SEED overrides it): one show scheduled,
 * updated, taken live, ended, cancelled and revived in quick succession, some events dated back in
 * time; products pinned, dropped from the show's snapshot and added back; the same product and show
 * ids under two partners; targets disabled, enabled, deleted and added again mid-show; clicks of one
 * partner's links used in the other partner's orders; orders for shows and products that do not exist
 * and refunds of the other partner's orders; titles at and past the platforms' limits in emoji, RTL,
 * combining marks; ids that are Object.prototype names, with ':' or 128 characters long.
 *
 * After each sequence the workers drain and: the process runs and logged no bug-class error (no
 * TypeError, RangeError, … and no uncaught exception); no BullMQ job failed; every show's view holds
 * the snapshot of its latest occurredAt; every mirror on an enabled target settled (none failed or
 * pending) and its platform agrees (the simulator's last lifecycle effect on its externalId is the
 * mirror's state, each lifecycle effect at most once, no pin effect twice without an unpin between);
 * a partner's attribution names only its own shows and targets, and its refunds only its own orders.
 */
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { signatureHeader } from '../../src/sources/signature.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { ALL_PLATFORMS, CREDENTIALS } from '../helpers/platforms.js';
import { failedJobs, startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, waitFor } from '../helpers/service.js';
import { startSim, type SimEffectView, type TestSim } from '../helpers/sim.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261206);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 8);
const FAULTS = Number(process.env['FUZZ_FAULTS'] ?? 0);
/** FUZZ_LOG=<file>: the service's log (at FUZZ_LOG_LEVEL, default warn) written there at the end, and `<file>.youtube.json` YouTube's request log, to trace a mirror. */
const LOG_FILE = process.env['FUZZ_LOG'];
const PLATFORM_TIMEOUT_MS = 3000;
/**
 * A create step the platform answered 500 (YouTube's broadcast and stream inserts, Facebook's live video)
 * may still have been made: the next run waits until it cannot be acted on any more (the attempt's
 * `until`, 2 × PLATFORM_TIMEOUT_MS, + PLATFORM_SETTLE_MS, its 30 s default) before it looks it up, and a
 * look that finds nothing (the 500 made nothing) is trusted only one PLATFORM_SETTLE_MS later still
 * (until + 2 × PLATFORM_SETTLE_MS: a platform's list lags behind an insert; IntentRepository.lookedTooSoon),
 * when it looks again: 2 × PLATFORM_TIMEOUT_MS + 2 × PLATFORM_SETTLE_MS + 10 % jitter, about 73 s per 500
 * (was about 40 s before that second window). With FUZZ_FAULTS=0.2, four 500s on one mirror's two YouTube
 * inserts (0.7 % of mirrors: about one fuzz in five, with its few dozen YouTube mirrors) passed the old
 * 150 s bound; six or more are 0.04 %: the bound is 45 s + six such waits, about 481 s. FUZZ_SETTLE_BOUND_MS
 * overrides the bound. Without faults it stays 45 s.
 */
const SETTLE_WINDOW_MS = ((2 * PLATFORM_TIMEOUT_MS + 2 * 30_000) * 11) / 10;
const SETTLE_BOUND_MS = Number(process.env['FUZZ_SETTLE_BOUND_MS'] ?? (FAULTS > 0 ? 45_000 + 6 * SETTLE_WINDOW_MS : 45_000));
const PARTNERS = ['__proto__', 'a:b'] as const;
const SHOWS = ['constructor', 'x:y', 'a'.repeat(128)];
const PRODUCTS = ['__proto__', 'toString', 'hasOwnProperty', 'p:1', 'b'.repeat(128)];
const PLATFORMS = ALL_PLATFORMS;
const PREFIX = 'ws' + Date.now().toString(36);

let redis: TestRedis;
let sim: TestSim;
let child: WorkerProcess;
let url: string;
const secrets = new Map<string, string>();

const enc = encodeURIComponent;
/** Target ids: Object.prototype names and ':' too, unique across partners. */
const targetId = (partner: string, platform: string): string => `${partner === '__proto__' ? 'hasOwnProperty' : 'a:b'}:${platform}`;

async function api(path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  return fetch(url + path, { method: init.method ?? (init.json !== undefined ? 'POST' : 'GET'), headers, ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}) });
}

async function ok(r: Response, what: string): Promise<unknown> {
  const text = await r.text();
  if (r.status >= 500) throw new Error(`${what}: ${r.status} ${text.slice(0, 400)}`);
  return text ? JSON.parse(text) : null;
}

let seq = 0;
async function send(partner: string, ev: { type: string; occurredAt: string; data: unknown }): Promise<number> {
  const body = JSON.stringify(ev);
  const id = `ws_${++seq}`;
  const ts = Math.floor(Date.now() / 1000);
  const r = await fetch(`${url}/v1/partners/${enc(partner)}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secrets.get(partner)!, id, ts, body) },
    body,
  });
  const text = await r.text();
  if (r.status !== 202) throw new Error(`event ${body.slice(0, 300)}: ${r.status} ${text.slice(0, 400)}`);
  return r.status;
}

async function addTarget(partner: string, platform: string): Promise<void> {
  const r = await api(`/v1/partners/${enc(partner)}/targets?verify=false`, {
    json: { id: targetId(partner, platform), platform, name: platform, credentials: CREDENTIALS[platform as keyof typeof CREDENTIALS], baseUrl: sim.base(platform), commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } },
  });
  if (r.status !== 201) throw new Error(`target ${platform}: ${r.status} ${await r.text()}`);
}

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSim();
  for (const p of PLATFORMS) await sim.control('PUT', `/_sim/${p}/limits`, { requestsPerWindow: null, quotaPerDay: null });
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  // FUZZ_FAULTS=0.2: that share of platform calls answered 500 (retried: the same end state, each effect once;
  // a 429 holds a target for up to a minute, Facebook's throttle, longer than the wait below)
  if (FAULTS > 0) for (const p of PLATFORMS) await sim.control('PUT', `/_sim/${p}/faults`, { rate: FAULTS, kinds: ['500'] });
  ({ child, url } = await startAllProcess(redis.env, { ALLOW_PRIVATE_DESTINATIONS: 'true', KEY_PREFIX: PREFIX, PLATFORM_TIMEOUT_MS: String(PLATFORM_TIMEOUT_MS), SWEEP_INTERVAL_MS: '1000', ...(process.env['FUZZ_LOG_LEVEL'] ? { LOG_LEVEL: process.env['FUZZ_LOG_LEVEL'] } : {}) }));
  for (const p of PARTNERS) {
    const r = await api('/v1/partners', { json: { id: p, name: `Partner ${p}` } });
    expect(r.status).toBe(201);
    secrets.set(p, ((await r.json()) as { webhookSecret: string }).webhookSecret);
    for (const platform of PLATFORMS) await addTarget(p, platform);
  }
}, 120_000); // (was 60 s, no more than startAllProcess alone waits for readiness: a slow start ended the hook, not the helper)

afterAll(async () => {
  if (LOG_FILE && child) writeFileSync(LOG_FILE, child.output());
  if (LOG_FILE && sim) writeFileSync(`${LOG_FILE}.youtube.json`, JSON.stringify(await sim.control('GET', '/_sim/youtube/requests')));
  await child?.kill('SIGKILL');
  await sim?.close();
  await redis?.destroy();
});

// --- the sequences --------------------------------------------------------------------------------

/** Titles at and past the platforms' limits (YouTube 100, no '<' '>'), with surrogate pairs across the cut. */
const TITLES = [
  'Plain',
  '\u{1F389}'.repeat(60),
  'x'.repeat(99) + '\u{1F389}',
  'e\u0301'.repeat(80),
  '\u0645\u0631\u062D\u0628\u0627 \u202Eabc\u202C',
  '<b>bold</b> & "q"',
  'a\u0001b\u200Bc\uFEFF',
  'Z\u0351\u0352\u0353'.repeat(40),
  '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'.repeat(30),
  ' '.repeat(3) + 'padded' + ' '.repeat(3),
];
type State = 'scheduled' | 'live' | 'ended' | 'cancelled';
type Cmd =
  | { k: 'show'; partner: number; show: number; state: State; title: number; products: number[]; pinned: number[]; back: number }
  | { k: 'pin' | 'unpin'; partner: number; show: number; product: number; back: number }
  | { k: 'product'; partner: number; show: number; product: number; title: number; price: number; back: number }
  | { k: 'target'; partner: number; platform: number; op: 'disable' | 'enable' | 'delete' }
  | { k: 'click'; partner: number; show: number }
  | { k: 'order'; partner: number; order: number; show: number | null; product: number; click: number | null; amount: number }
  | { k: 'refund'; partner: number; refund: number; order: number; amount: number }
  | { k: 'wait'; ms: number };

const pIdx = fc.integer({ min: 0, max: PARTNERS.length - 1 });
const sIdx = fc.integer({ min: 0, max: SHOWS.length - 1 });
const prIdx = fc.integer({ min: 0, max: PRODUCTS.length - 1 });
const back = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }) });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('show' as const), partner: pIdx, show: sIdx, state: fc.constantFrom<State>('scheduled', 'scheduled', 'live', 'live', 'ended', 'cancelled'), title: fc.nat(TITLES.length - 1), products: fc.subarray([0, 1, 2, 3, 4]), pinned: fc.subarray([0, 1, 2, 3, 4]), back }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constantFrom('pin' as const, 'unpin' as const), partner: pIdx, show: sIdx, product: prIdx, back }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('product' as const), partner: pIdx, show: sIdx, product: prIdx, title: fc.nat(TITLES.length - 1), price: fc.integer({ min: 0, max: 1_000_000 }), back }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('target' as const), partner: pIdx, platform: fc.nat(PLATFORMS.length - 1), op: fc.constantFrom('disable' as const, 'enable' as const, 'delete' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('click' as const), partner: pIdx, show: sIdx }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('order' as const), partner: pIdx, order: fc.nat(3), show: fc.option(sIdx, { nil: null }), product: prIdx, click: fc.option(fc.nat(20), { nil: null }), amount: fc.integer({ min: 1, max: 100_000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('refund' as const), partner: pIdx, refund: fc.nat(3), order: fc.nat(3), amount: fc.integer({ min: 1, max: 100_000 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('wait' as const), ms: fc.constantFrom(0, 50, 300, 1000) }) },
);

interface Run {
  base: number;
  step: number;
  /** Per partner/show: the show snapshot of the latest occurredAt sent. */
  latest: Map<string, { at: number; state: State; title: string }>;
  linked: Set<string>;
  deleted: Set<string>;
  clicks: { partner: string; clickId: string }[];
  orders: Map<string, { partner: string; id: string; total: number }>;
  refunds: { partner: string; id: string; orderId: string; amount: number }[];
}

const SHOW_TYPE: Record<State, string> = { scheduled: 'show.scheduled', live: 'show.live', ended: 'show.ended', cancelled: 'show.cancelled' };
const product = (i: number, title = TITLES[i % TITLES.length]!, price = 1000 + i): Record<string, unknown> => ({
  id: PRODUCTS[i]!,
  title,
  price: { amount: price, currency: 'USD' },
  url: `https://shop.example.com/p/${enc(PRODUCTS[i]!)}`,
});

/** Run-scoped ids: each run has shows, orders and refunds of its own (the targets are shared). */
const runId = (run: number, id: string): string => (id.length > 120 ? id.slice(0, 120) + run.toString().padStart(8, '0') : `${id}.${run}`);

async function exec(c: Cmd, r: Run, run: number): Promise<void> {
  r.step++;
  const at = (b: number): string => new Date(r.base + (r.step - b) * 1000 + r.step).toISOString();
  if (c.k === 'wait') {
    if (c.ms) await new Promise((res) => setTimeout(res, c.ms));
    return;
  }
  const partner = PARTNERS[c.partner]!;
  if (c.k === 'show') {
    const showId = runId(run, SHOWS[c.show]!);
    const occurredAt = at(c.back);
    const title = TITLES[c.title]!;
    await send(partner, { type: SHOW_TYPE[c.state], occurredAt, data: { show: { id: showId, title, description: TITLES[(c.title + 3) % TITLES.length], scheduledAt: new Date(r.base + 3_600_000).toISOString(), state: c.state, products: c.products.map((i) => product(i)), pinnedProductIds: c.pinned.map((i) => PRODUCTS[i]!) } } });
    const key = `${partner}/${showId}`;
    const prev = r.latest.get(key);
    const t = Date.parse(occurredAt);
    if (!prev || prev.at < t) r.latest.set(key, { at: t, state: c.state, title });
    if (!r.linked.has(key)) {
      r.linked.add(key);
      await link(partner, showId);
    }
    return;
  }
  if (c.k === 'pin' || c.k === 'unpin') {
    await send(partner, { type: c.k === 'pin' ? 'product.pinned' : 'product.unpinned', occurredAt: at(c.back), data: { showId: runId(run, SHOWS[c.show]!), productId: PRODUCTS[c.product]! } });
    return;
  }
  if (c.k === 'product') {
    await send(partner, { type: 'product.updated', occurredAt: at(c.back), data: { showId: runId(run, SHOWS[c.show]!), product: product(c.product, TITLES[c.title]!, c.price) } });
    return;
  }
  if (c.k === 'target') {
    const platform = PLATFORMS[c.platform]!;
    const id = targetId(partner, platform);
    const tk = `${partner}/${platform}`;
    if (r.deleted.has(tk)) {
      if (c.op !== 'delete') {
        await addTarget(partner, platform);
        r.deleted.delete(tk);
      }
      return;
    }
    if (c.op === 'delete') {
      const d = await api(`/v1/partners/${enc(partner)}/targets/${enc(id)}`, { method: 'DELETE' });
      await ok(d, `delete ${id}`);
      expect([204, 409]).toContain(d.status);
      if (d.status === 204) r.deleted.add(tk);
      return;
    }
    const p = await api(`/v1/partners/${enc(partner)}/targets/${enc(id)}`, { method: 'PATCH', json: { enabled: c.op === 'enable' } });
    await ok(p, `patch ${id}`);
    expect(p.status).toBe(200);
    return;
  }
  if (c.k === 'click') {
    const v = await api(`/v1/partners/${enc(partner)}/shows/${enc(runId(run, SHOWS[c.show]!))}`);
    if (v.status !== 200) return void (await v.text());
    const view = (await v.json()) as ShowView;
    const links = view.mirrors.flatMap((m) => m.pins.map((p) => p.linkUrl).filter((x): x is string => !!x));
    if (!links.length) return;
    const l = new URL(links[r.step % links.length]!);
    const res = await fetch(url + l.pathname, { redirect: 'manual' });
    await res.text();
    expect(res.status).toBe(302);
    const clickId = new URL(res.headers.get('location')!).searchParams.get('sclid');
    if (clickId) r.clicks.push({ partner, clickId });
    return;
  }
  if (c.k === 'order') {
    const id = `o${c.order}.${run}`;
    const key = `${partner}/${id}`;
    if (r.orders.has(key)) return; // orders are idempotent by id: a second one with other lines is the partner's mistake
    const click = c.click !== null && r.clicks.length ? r.clicks[c.click % r.clicks.length]!.clickId : c.click !== null ? `nosuchclick${c.click}` : undefined;
    await send(partner, {
      type: 'order.created',
      occurredAt: at(0),
      data: { order: { id, ...(click ? { clickId: click } : {}), ...(c.show !== null ? { showId: runId(run, SHOWS[c.show]!) } : {}), createdAt: at(0), lines: [{ productId: PRODUCTS[c.product]!, quantity: 1, amount: { amount: c.amount, currency: 'USD' } }], total: { amount: c.amount, currency: 'USD' } } },
    });
    r.orders.set(key, { partner, id, total: c.amount });
    return;
  }
  if (c.k !== 'refund') return;
  const orderId = `o${c.order}.${run}`;
  const id = `r${c.refund}.${run}`;
  if (r.refunds.some((x) => x.partner === partner && x.id === id)) return; // refunds are idempotent by id
  await send(partner, { type: 'order.refunded', occurredAt: at(0), data: { refund: { id, orderId, createdAt: at(0), amount: { amount: c.amount, currency: 'USD' } } } });
  r.refunds.push({ partner, id, orderId, amount: c.amount });
}

/** TikTok and Whatnot cannot create a show by API: link one made by hand, as an operator does. */
async function link(partner: string, showId: string): Promise<void> {
  for (const platform of ['tiktok', 'whatnot']) {
    const { externalId } = (await sim.control('POST', `/_sim/${platform}/shows`, { title: `${showId} on ${platform}` })) as { externalId: string };
    const r = await api(`/v1/partners/${enc(partner)}/shows/${enc(showId)}/mirrors/${enc(targetId(partner, platform))}`, { method: 'PUT', json: { externalId } });
    await ok(r, `link ${platform}`);
  }
}

interface ShowView {
  show: { id: string; state: string; title: string };
  mirrors: { targetId: string; platform: string; state: string; externalId: string | null; lastError: string | null; pins: { productId: string; state: string; linkUrl: string | null }[] }[];
}

const LIFECYCLE: Record<string, string> = { 'show.created': 'ready', 'show.updated': 'ready', 'show.started': 'live', 'show.ended': 'ended', 'show.cancelled': 'cancelled' };
const LIFECYCLE_BY_API = new Set(['youtube', 'facebook']);
/** Bug-class errors in the service's log: a programming error, not a platform's or a partner's. */
const BUG = /\b(TypeError|RangeError|ReferenceError|SyntaxError|EvalError|AggregateError|uncaught|unhandled)\b/i;

async function check(r: Run, run: number): Promise<void> {
  // Everything enabled again and every deleted target back, so that every show has every mirror to converge.
  for (const p of PARTNERS) {
    for (const platform of PLATFORMS) {
      if (r.deleted.has(`${p}/${platform}`)) await addTarget(p, platform);
      else expect((await api(`/v1/partners/${enc(p)}/targets/${enc(targetId(p, platform))}`, { method: 'PATCH', json: { enabled: true } })).status).toBe(200);
    }
  }
  r.deleted.clear();
  const effects = new Map<string, SimEffectView[]>();
  for (const [key, want] of r.latest) {
    const [partner, showId] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
    let last: ShowView | undefined;
    let why = '';
    try {
      await waitFor(async () => {
        const res = await api(`/v1/partners/${enc(partner)}/shows/${enc(showId)}`);
        expect(res.status).toBe(200);
        const v = (last = (await res.json()) as ShowView);
        expect({ key, state: v.show.state, title: v.show.title }).toEqual({ key, state: want.state, title: want.title });
        expect(v.mirrors).toHaveLength(PLATFORMS.length);
        for (const p of PLATFORMS) effects.set(p, await sim.effects(p));
        for (const m of v.mirrors) {
          if (m.state === 'failed') throw new Error(`run ${run}: ${key} mirror ${m.targetId} failed: ${m.lastError}`);
          if (['pending', 'provisioning'].includes(m.state)) return !(why = `${m.targetId} ${m.state}`);
          if (m.state === 'action_required' || !m.externalId) continue;
          const mine = effects.get(m.platform)!.filter((e) => e.externalId === m.externalId);
          const life = mine.filter((e) => e.type in LIFECYCLE && e.type !== 'show.updated');
          // each lifecycle effect at most once
          const counts = new Map<string, number>();
          for (const e of life) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
          for (const [t, n] of counts) if (n > 1) throw new Error(`run ${run}: ${key} ${m.targetId} ${m.externalId}: ${t} ${n} times`);
          // the platform's state is the mirror's
          const platformState = life.length ? LIFECYCLE[life.at(-1)!.type]! : 'ready';
          // a show ended before it aired is withdrawn from the platform (its mirror says ended)
          const withdrawn = m.state === 'ended' && platformState === 'cancelled' && !counts.has('show.started');
          // (TikTok, Whatnot and Bambuser are started and ended in their own apps: lifecycle by hand)
          if (LIFECYCLE_BY_API.has(m.platform) && platformState !== m.state && !withdrawn) return !(why = `${m.targetId} is ${m.state}, the platform ${platformState}: ${JSON.stringify(mine.map((e) => e.type))}`);
          // the show's end state reaches the platform: an ended or cancelled show leaves nothing live or scheduled there
          if (['ended', 'cancelled'].includes(v.show.state) && !['ended', 'cancelled'].includes(m.state)) return !(why = `${m.targetId} ${m.state} for a show ${v.show.state}`);
          // npm start runs the relay: YouTube and Facebook go live once video reaches them (none is published here)
          if (v.show.state === 'live' && m.state === 'ready' && !/waiting for video/.test(m.lastError ?? '')) return !(why = `${m.targetId} ready for a live show: ${m.lastError}`);
          // no pin effect twice without an unpin between (TikTok's promotion link names no room: the
          // simulator books it on the shop's latest room, whichever show asked, so it is left out)
          const pinned = new Set<string>();
          for (const e of m.platform === 'tiktok' ? [] : mine) {
            if (e.type === 'product.pinned') {
              if (pinned.has(e.productId!)) throw new Error(`run ${run}: ${key} ${m.targetId}: ${e.productId} pinned twice: ${JSON.stringify(mine)}`);
              pinned.add(e.productId!);
            }
            if (e.type === 'product.unpinned') pinned.delete(e.productId!);
          }
        }
        return true;
      }, SETTLE_BOUND_MS, 250); // a create the platform answered 500 is looked up after a settle time, not retried blind
    } catch (err) {
      const mirrors = last?.mirrors.map((m) => ({ t: m.targetId, s: m.state, x: m.externalId, e: m.lastError, pins: m.pins.map((p) => `${p.productId.slice(0, 20)}=${p.state}`) }));
      throw new Error(`run ${run}: ${key} did not settle: ${(err as Error).message}: ${why}\nshow ${last?.show.state} ${JSON.stringify(mirrors, null, 1)}`);
    }
  }

  // Orders: every one in its own partner's ledger; attribution names only the partner's own shows and targets.
  for (const o of r.orders.values()) {
    await waitFor(async () => (await api(`/v1/partners/${enc(o.partner)}/attribution/orders/${enc(o.id)}`)).status === 200, 20_000, 100);
  }
  for (const p of PARTNERS) {
    const a = (await ok(await api(`/v1/partners/${enc(p)}/attribution`), 'attribution')) as { totals: { showId: string; targetId: string; refundedAmount: number; grossAmount: number }[] };
    const ownShows = new Set([...r.latest.keys()].filter((k) => k.startsWith(`${p}/`)).map((k) => k.slice(p.length + 1)));
    for (const t of a.totals.filter((x) => x.showId.endsWith(`.${run}`) || x.showId.endsWith(run.toString().padStart(8, '0')))) {
      expect({ p, show: t.showId, own: ownShows.has(t.showId) }).toEqual({ p, show: t.showId, own: true });
      expect({ p, target: t.targetId }).toEqual({ p, target: expect.stringMatching(p === '__proto__' ? /^hasOwnProperty:/ : /^a:b:/) });
    }
    // refunds reach only the partner's own orders: never more refunded than it refunded of its own orders
    const own = new Map([...r.orders.values()].filter((o) => o.partner === p).map((o) => [o.id, o.total]));
    const mayRefund = [...own].reduce((sum, [id, total]) => sum + Math.min(total, r.refunds.filter((x) => x.partner === p && x.orderId === id).reduce((s2, x) => s2 + x.amount, 0)), 0);
    const refunded = a.totals.filter((x) => x.showId.endsWith(`.${run}`) || x.showId.endsWith(run.toString().padStart(8, '0'))).reduce((sum, x) => sum + x.refundedAmount, 0);
    expect({ p, refunded: refunded <= mayRefund }).toEqual({ p, refunded: true });
  }

  // No job failed; nothing bug-class in the log; still running and ready.
  expect(await failedJobs(redis.url, PREFIX)).toEqual([]);
  const bugs = child.output().split('\n').filter((l) => BUG.test(l));
  expect(bugs.slice(0, 5)).toEqual([]);
  expect(child.proc.exitCode).toBeNull();
  expect((await fetch(`${url}/health/ready`)).status).toBe(200);
}

let runs = 0;
test(`sequences of sensible events and operator actions leave every worker consistent (fast-check seed ${SEED}, ${RUNS} runs)`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 10, maxLength: 30 }), async (cmds) => {
      const run = ++runs;
      const r: Run = { base: Date.now() - 600_000, step: 0, latest: new Map(), linked: new Set(), deleted: new Set(), clicks: [], orders: new Map(), refunds: [] };
      for (const c of cmds) await exec(c, r, run);
      await check(r, run);
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
}, FAULTS > 0 ? 1_800_000 : 300_000); // (with faults: run it under `timeout 1900`; seed 99 took 460 s with 40 s settle waits, each is now ≈ 73 s)
// Without faults: 9 s on a quiet machine, 14–18 s beside three busy loops and 11 other test files, ≈ 30 s
// on the graded CI; 120 s ran out once at load 14–26 (ci1 of 2026-12-06). Nothing here times the workers:
// each show has its own settle bound (SETTLE_BOUND_MS), so this bound only ends a hang.
