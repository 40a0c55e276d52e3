/**
 * `npm start` (src/main/all.ts: API, workers, scheduler, relay) in a child process against its own
 * redis-server and the platform simulators, attacked the way a hostile or sloppy partner would: fast-check
 * draws partner events of every type of the contract (§3) with adversarial values that are mostly still
 * well-formed (ids that are Object.prototype names, 128 characters, ':' or '...'; money at 0 and 2^53 − 1,
 * every currency exponent; timestamps at the Unix epoch, with ±14:00 offsets and nanoseconds; titles of
 * emoji, RTL text, NUL and bidi overrides; skus) and some that are not (ids with '/', '%2F', NUL, emoji
 * or 129 characters; negative, fractional and unsafe amounts; metals and lower-case currencies;
 * impossible dates), signs each one and sends it, sometimes wrapped the wrong way (gzip and deflate
 * bodies, odd or unparsable Content-Types, an empty body, duplicate JSON keys, 20 000 levels of nesting,
 * a `__proto__` key, a signature over another body).
 *
 * Every answer is a 2xx or a 4xx problem; then the workers process what was accepted: no mirror ends
 * `failed` over a value we accepted, every pin a live mirror should have is pinned, or failed with the
 * platform's refusal of a product id it cannot take (a sku with a space, '/', an emoji) (TikTok and
 * Whatnot linked by hand, as an operator does), no BullMQ job has failed, every accepted order is in the ledger,
 * and the process is still ready. The partner's own key then reads every list, the ops console's JSON
 * and /metrics; hostile path parameters and query strings on the operator API get 4xx problems, never a 5xx.
 *
 * Show ids '.' and '..' are asked as '%252E' (README "Edges of the API"), as the ops console does.
 * Skus are drawn as the contract allows them (any text up to 128 characters: '', ' ', 'a/b', '..', an
 * emoji): TikTok and Whatnot take the product id in the URL path and refuse such a sku (or it is
 * refused before it is sent: '', '.', '..'), which fails that pin only (seed 1: a sku ' ' on both);
 * Bambuser refuses a sku '' as the show product's productReference, that pin's alone too.
 * Product ids '.' and '..' are left out of the draws (their pins are refused the same way:
 * test/e2e/pin-refused.test.ts).
 */
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { deflateSync, gzipSync } from 'node:zlib';
import { signatureHeader } from '../../src/sources/signature.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { ALL_PLATFORMS, CREDENTIALS } from '../helpers/platforms.js';
import { failedJobs, startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, waitFor } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

const PARTNERS = ['__proto__', 'fz'];
const PREFIX = 'fz' + Date.now().toString(36);
const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);

let redis: TestRedis;
let sim: TestSim;
let child: WorkerProcess;
let url: string;
const secrets = new Map<string, string>();
const partnerKeys = new Map<string, string>();

/** A path segment for an id: '.' and '..' written '%252E' (README), everything else percent-encoded. */
const seg = (id: string): string => (/^\.{1,2}$/.test(id) ? id.replaceAll('.', '%252E') : encodeURIComponent(id));
const targetId = (partner: string, platform: string): string => `${partner === '__proto__' ? 'proto' : partner}-${platform}`;

async function api(path: string, init: { method?: string; json?: unknown; key?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.key ?? ADMIN_KEY}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  return fetch(url + path, { method: init.method ?? (init.json !== undefined ? 'POST' : 'GET'), headers, ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}) });
}

/** A 2xx, or a 4xx problem+json; never a 5xx. */
async function answered(r: Response, what: string): Promise<string> {
  const text = await r.text();
  if (r.status >= 500 || (r.status >= 400 && !(r.headers.get('content-type') ?? '').startsWith('application/problem+json'))) {
    throw new Error(`${what}: ${r.status} ${r.headers.get('content-type')} ${text.slice(0, 500)}`);
  }
  return text;
}

beforeAll(async () => {
  redis = await startRedis();
  // Redis records what took 0.5 s or more (LATENCY LATEST: an `aof-fsync-always` of a stalled disk,
  // a slow `command`), printed with an event that kept its 503 (send, below).
  const c = new Redis(redis.url);
  await c.config('SET', 'latency-monitor-threshold', '500').finally(() => c.disconnect());
  sim = await startSim();
  for (const p of ALL_PLATFORMS) await sim.control('PUT', `/_sim/${p}/limits`, { requestsPerWindow: null, quotaPerDay: null });
  // no video is pushed here: a simulated encoder makes YouTube's bound stream active (docs/testing.md)
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  ({ child, url } = await startAllProcess(redis.env, { ALLOW_PRIVATE_DESTINATIONS: 'true', KEY_PREFIX: PREFIX, PLATFORM_TIMEOUT_MS: '3000', SWEEP_INTERVAL_MS: '1000' }));
  for (const p of PARTNERS) {
    const r = await api('/v1/partners', { json: { id: p, name: `Partner ${p}` } });
    expect(r.status).toBe(201);
    secrets.set(p, ((await r.json()) as { webhookSecret: string }).webhookSecret);
    for (const platform of ALL_PLATFORMS) {
      const t = await api(`/v1/partners/${seg(p)}/targets`, {
        json: { id: targetId(p, platform), platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: sim.base(platform), commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } },
      });
      expect(t.status).toBe(201);
    }
    const k = await api('/v1/api-keys', { json: { role: 'partner', partnerId: p } });
    expect(k.status).toBe(201);
    partnerKeys.set(p, ((await k.json()) as { key: string }).key);
  }
}, 60_000);

afterAll(async () => {
  await child?.kill('SIGKILL');
  await sim?.close();
  await redis?.destroy();
});

// --- what a hostile partner sends ---------------------------------------------------------------

const PROTO = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'prototype'];
const GOOD_IDS = [...PROTO, 'a'.repeat(128), ':', 'a:b', '...', '-', '_', '0', 'x.y', 'A-1'];
const BAD_IDS = ['/', '%2F', 'a/b', '..%2F', 'a\u0000b', '\u{1F389}', '\u202eabc', '', 'a'.repeat(129), 'a b', '{x}', 'ä'];
const productId = fc.oneof({ weight: 20, arbitrary: fc.constantFrom(...GOOD_IDS) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_IDS) });
/** A few shows per partner, so that events meet on the same show in any order. */
const showId = fc.oneof({ weight: 20, arbitrary: fc.constantFrom('__proto__', 'constructor', '.', '..', 'a:b', 's1') }, { weight: 1, arbitrary: fc.constantFrom(...BAD_IDS) });
const anyId = fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...GOOD_IDS) }, { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_IDS) });
const amount = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(0, 1, 99, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1) },
  { weight: 4, arbitrary: fc.maxSafeNat() },
  { weight: 1, arbitrary: fc.constantFrom(-1, Number.MIN_SAFE_INTEGER, 2 ** 53, 1.5, 1e21) },
);
const currency = fc.constantFrom('USD', 'USD', 'USD', 'JPY', 'KWD', 'BHD', 'CLF', 'XCG', 'EUR', 'usd', 'XAU', 'ZZZ');
const money = fc.record({ amount, currency });
const recent = fc.date({ min: new Date(Date.now() - 30 * 86_400_000), max: new Date(Date.now() + 3_600_000), noInvalidDate: true }).map((d) => d.toISOString());
const time = fc.oneof(
  { weight: 6, arbitrary: recent },
  {
    weight: 2,
    arbitrary: fc.constantFrom('1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000000001Z', '2026-11-24T18:00:00+14:00', '2026-11-24T18:00:00-23:59', '2026-11-24T18:00:00.123456789Z', '9999-12-31T23:59:59Z'),
  },
  { weight: 1, arbitrary: fc.constantFrom('1969-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-12-31T23:59:60Z', '2026-11-24 18:00:00Z', '+275760-09-13T00:00:00Z') },
);
const text = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.constantFrom('\u{1F389}'.repeat(250), 'x'.repeat(500), '\u202eRTL\u202c', 'a\u0000b', '\n\t', ' ', '<script>alert(1)</script>', '\uFEFF', '\u0645\u0631\u062D\u0628\u0627', '%s%n', ''),
);
const link = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('https://shop.example.com/p', 'http://x', 'https://例え.jp/パス?q=1', 'https://shop.example.com/?q=%00#f') }, { weight: 1, arbitrary: fc.constantFrom('javascript:alert(1)', 'ftp://x/y', 'https://a.b/' + 'x'.repeat(3000)) });
/** Skus: the contract gives them no format (any text up to 128 characters is accepted), so some no platform takes as a product id. */
const sku = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...GOOD_IDS) }, { weight: 1, arbitrary: fc.constantFrom('', ' ', 'a/b', '..', '\u{1F389}') });
const product = fc.record({ id: productId, title: text, price: money, url: link, imageUrl: fc.option(link, { nil: undefined }), sku: fc.option(sku, { nil: undefined }) }, { requiredKeys: ['id', 'title', 'price', 'url'] });
const show = fc
  .record({ id: showId, title: text, description: fc.option(text, { nil: undefined }), scheduledAt: time, state: fc.constantFrom('scheduled', 'live', 'ended', 'cancelled'), products: fc.array(product, { maxLength: 4 }) })
  .chain((s) => fc.subarray(s.products.map((p) => p.id)).map((pinned) => ({ ...s, pinnedProductIds: pinned })));
const line = fc.record({ productId, quantity: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 10 }) }, { weight: 2, arbitrary: fc.constantFrom(Number.MAX_SAFE_INTEGER, 0, -1, 1.5) }), amount: money });
const SHOW_TYPES = ['show.scheduled', 'show.updated', 'show.live', 'show.ended', 'show.cancelled'] as const;
const event = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constantFrom(...SHOW_TYPES), occurredAt: time, data: fc.record({ show }) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constantFrom('product.pinned', 'product.unpinned'), occurredAt: time, data: fc.record({ showId, productId }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('product.updated'), occurredAt: time, data: fc.record({ showId, product }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('order.created'),
      occurredAt: time,
      data: fc.record({ order: fc.record({ id: anyId, clickId: fc.option(anyId, { nil: undefined }), showId: fc.option(showId, { nil: undefined }), createdAt: time, lines: fc.array(line, { maxLength: 3 }), total: money }, { requiredKeys: ['id', 'createdAt', 'lines', 'total'] }) }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('order.refunded'), occurredAt: time, data: fc.record({ refund: fc.record({ id: anyId, orderId: anyId, createdAt: time, amount: money }) }) }) },
);
type Wrap = 'none' | 'gzip' | 'deflate' | 'text/plain' | 'invalid-ctype' | 'multipart' | 'empty' | 'other-body-signed' | 'duplicate-keys' | 'deep' | 'proto-key' | 'bom';
const wrap = fc.oneof({ weight: 12, arbitrary: fc.constant<Wrap>('none') }, { weight: 1, arbitrary: fc.constantFrom<Wrap>('gzip', 'deflate', 'text/plain', 'invalid-ctype', 'multipart', 'empty', 'other-body-signed', 'duplicate-keys', 'deep', 'proto-key', 'bom') });

interface Accepted {
  partner: string;
  event: { type: string; data: Record<string, unknown> };
}
const accepted: Accepted[] = [];
/** Events still answered 503 after five retries (send, below). */
const unavailable: string[] = [];
let seq = 0;

async function send(partner: string, ev: Accepted['event'], how: Wrap): Promise<void> {
  let body: string | Buffer = JSON.stringify(ev);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (how === 'duplicate-keys') body = body.replace('{"type":', '{"type":"order.created","type":');
  if (how === 'deep') body = body.slice(0, -1) + ',"x":' + '['.repeat(20_000) + ']'.repeat(20_000) + '}';
  if (how === 'proto-key') body = body.replace('{"type":', '{"__proto__":{"type":"x","admin":true},"constructor":{"prototype":{"polluted":1}},"type":');
  if (how === 'bom') body = '\uFEFF' + body;
  if (how === 'empty') body = '';
  if (how === 'text/plain') headers['content-type'] = 'text/plain';
  if (how === 'invalid-ctype') headers['content-type'] = 'invalid';
  if (how === 'multipart') headers['content-type'] = 'multipart/form-data; boundary=x';
  if (how === 'gzip' || how === 'deflate') {
    body = how === 'gzip' ? gzipSync(body) : deflateSync(body);
    headers['content-encoding'] = how;
  }
  const id = `fz_${++seq}`;
  const ts = Math.floor(Date.now() / 1000);
  headers['webhook-id'] = id;
  headers['webhook-timestamp'] = String(ts);
  headers['webhook-signature'] = signatureHeader(secrets.get(partner)!, id, ts, how === 'other-body-signed' ? `${body.toString()} ` : body);
  // A 503 (storage slow to answer on a loaded machine: nothing stored, retry) is retried as a partner
  // does: the same delivery, after the Retry-After the service sends (5 s; 0.5 s apart was too little
  // once in a loaded fresh-clone CI of de25972, seed 520359); one that stays 503 over five retries, or
  // any other 5xx, fails the test.
  const logFrom = child.output().length;
  const requestIds: string[] = [];
  let r = await fetch(`${url}/v1/partners/${seg(partner)}/events`, { method: 'POST', headers, body });
  for (let i = 0; i < 5 && r.status === 503; i++) {
    requestIds.push(r.headers.get('x-request-id') ?? '?');
    await r.text();
    const after = Number(r.headers.get('retry-after'));
    await new Promise((res) => setTimeout(res, Number.isFinite(after) && after > 0 ? Math.min(after, 5) * 1000 : 1000));
    r = await fetch(`${url}/v1/partners/${seg(partner)}/events`, { method: 'POST', headers, body });
  }
  if (r.status === 503) {
    // Still "nothing stored, retry later" after five retries: twice in loaded fresh-clone CIs (of de25972
    // and f42a546, both an order.refunded, seeds 520359 and 408885), never reproduced alone or under CPU
    // or disk load. A legal answer for an event that is not stored: not counted as accepted, printed,
    // and bounded below (a refusal that repeats is a defect, not a slow dependency). Reproduced only with
    // a Redis frozen in 0.5-2.7 s episodes (SIGSTOP/SIGCONT, as an fsync-always disk stall freezes it):
    // 12 of 16 order.refunded attempts 503 and two kept it, against 4 of 25 for show events, none kept.
    // An order.refunded makes six Redis round trips one after another (webhook-id claim, refund-id
    // claim, ZADD, store, ZADD, BullMQ add), each under the API's 2 s command timeout; a show event one.
    requestIds.push(r.headers.get('x-request-id') ?? '?');
    unavailable.push(`${how} ${JSON.stringify(ev).slice(0, 300)}: ${(await r.text()).slice(0, 300)}`);
    // What the service logged (warn and above: LOG_LEVEL warn) from the first delivery to the last
    // answer, so that a CI run that meets this explains itself: the error behind each 503 (its
    // 'redis unavailable' line carries the request id and the error's message) and what else went
    // wrong around it (workers' Redis errors, slow scripts).
    console.log(`a 503 kept after five retries: ${unavailable.at(-1)}\nrequest ids: ${requestIds.join(' ')}\nthe service's log meanwhile:\n${warnings(child.output().slice(logFrom))}\n${await stalls()}`);
    return;
  }
  await answered(r, `event ${how} ${JSON.stringify(ev).slice(0, 300)}`);
  if (how === 'gzip' || how === 'deflate') expect(r.status).toBe(415);
  if (how === 'other-body-signed') expect(r.status).toBe(401);
  if (how === 'empty' || how === 'bom') expect(r.status).toBe(400);
  if (r.status === 202) accepted.push({ partner, event: how === 'duplicate-keys' ? (JSON.parse(body.toString()) as Accepted['event']) : ev });
}

/** The log lines of level warn and above in `out` (pino JSON; other lines as they are), at most 60 of them. */
function warnings(out: string): string {
  const lines = out.split('\n').filter((l) => {
    if (l.trim() === '') return false;
    try {
      return ((JSON.parse(l) as { level?: number }).level ?? 40) >= 40;
    } catch {
      return true;
    }
  });
  return (lines.length > 60 ? [...lines.slice(0, 30), `… ${lines.length - 60} lines …`, ...lines.slice(-30)] : lines).join('\n') || '(nothing)';
}

/**
 * What stalled, as far as Redis and the service can tell: Redis's latency events of 0.5 s or more
 * (`aof-fsync-always`: the disk; `command`: a slow command or script) with the slowest commands it
 * logged, and the service's longest event-loop delay (a loop blocked past the API's 2 s command
 * timeout times commands out whose replies have arrived: timers run before I/O).
 */
async function stalls(): Promise<string> {
  const c = new Redis(redis.url);
  try {
    const latency = JSON.stringify(await c.call('LATENCY', 'LATEST'));
    const logged = (await c.call('SLOWLOG', 'GET', '128')) as [number, number, number, string[]][];
    const slow = logged
      .sort((a, b) => b[2] - a[2])
      .slice(0, 5)
      .map(([, at, us, cmd]) => `${new Date(at * 1000).toISOString()} ${Math.round(us / 1000)} ms ${cmd.slice(0, 3).join(' ').slice(0, 120)}`);
    const persistence = ((await c.info('persistence')).match(/^aof_(?:last_write_status|delayed_fsync|last_bgrewrite_status):.*$/gm) ?? []).join(' ');
    const metrics = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const lag = metrics.match(/^nodejs_eventloop_lag_max_seconds \S+$/m)?.[0] ?? 'no event-loop lag metric';
    return `redis LATENCY LATEST (event, at, latest ms, max ms): ${latency}\nredis SLOWLOG (the slowest 5 of its last 128, over 10 ms each): ${slow.join('; ') || '(empty)'}\nredis ${persistence}\nservice ${lag} (since its start or the last such report)`;
  } catch (err) {
    return `(could not read the stall diagnostics: ${(err as Error).message})`;
  } finally {
    c.disconnect();
  }
}

interface MirrorView {
  targetId: string;
  state: string;
  lastError: string | null;
  pins: { productId: string; state: string; reason?: string }[];
}
interface ShowView {
  show: { id: string; state: string; products: { id: string; sku?: string }[]; pinnedProductIds: string[] };
  mirrors: MirrorView[];
}

const showsOf = (partner: string): string[] => [...new Set(accepted.filter((a) => a.partner === partner && a.event.type.startsWith('show.')).map((a) => (a.event.data['show'] as { id: string }).id))];

test(`hostile partner events (fast-check seed ${SEED}): every answer 2xx/4xx, every accepted event processed, the service ready`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...PARTNERS), event, wrap, async (partner, ev, how) => send(partner, ev as Accepted['event'], how)),
    { seed: SEED, numRuns: 220, endOnFailure: true },
  );
  expect(unavailable.length).toBeLessThanOrEqual(2);
  expect(accepted.length).toBeGreaterThan(40);
  // One well-formed event of every type, whatever the seed drew: most drawn events carry a hostile field
  // and are refused, so a seed could leave a type with none accepted (seed 728976: all 16 show.ended
  // drawn were 400s) and the check below failed a correct service. Each must be accepted.
  const before = accepted.length;
  const at = (k: number): string => new Date(Date.now() - 60_000 + k * 1000).toISOString();
  const product = { id: 'tp1', title: 'Top-up', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/tp1' };
  const snapshot = (id: string, state: string): Record<string, unknown> => ({ id, title: `Top-up ${id}`, scheduledAt: at(120), state, products: [product], pinnedProductIds: [] });
  const lifecycle: Accepted['event'][] = [
    { type: 'show.scheduled', data: { show: snapshot('top-up', 'scheduled') } },
    { type: 'show.updated', data: { show: { ...snapshot('top-up', 'scheduled'), title: 'Top-up, renamed' } } },
    { type: 'product.updated', data: { showId: 'top-up', product: { ...product, title: 'Top-up product, renamed' } } },
    { type: 'show.live', data: { show: snapshot('top-up', 'live') } },
    { type: 'product.pinned', data: { showId: 'top-up', productId: 'tp1' } },
    { type: 'product.unpinned', data: { showId: 'top-up', productId: 'tp1' } },
    { type: 'order.created', data: { order: { id: 'top-up-o1', showId: 'top-up', createdAt: at(7), lines: [], total: { amount: 1800, currency: 'USD' } } } },
    { type: 'order.refunded', data: { refund: { id: 'top-up-r1', orderId: 'top-up-o1', createdAt: at(8), amount: { amount: 800, currency: 'USD' } } } },
    { type: 'show.ended', data: { show: snapshot('top-up', 'ended') } },
    { type: 'show.scheduled', data: { show: snapshot('top-up-c', 'scheduled') } },
    { type: 'show.cancelled', data: { show: snapshot('top-up-c', 'cancelled') } },
  ];
  const wellFormed = lifecycle.map((e, k) => ({ ...e, occurredAt: at(k) }));
  for (const e of wellFormed) await send('fz', e, 'none');
  expect(accepted.slice(before).map((a) => a.event.type)).toEqual(wellFormed.map((e) => e.type));
  expect([...new Set(accepted.map((a) => a.event.type))].sort()).toEqual([...SHOW_TYPES, 'product.pinned', 'product.unpinned', 'product.updated', 'order.created', 'order.refunded'].sort()); // every event type of the contract got through

  // TikTok and Whatnot cannot create a show by API: link one made by hand, as an operator does.
  for (const p of PARTNERS) {
    for (const s of showsOf(p)) {
      for (const platform of ['tiktok', 'whatnot']) {
        const { externalId } = (await sim.control('POST', `/_sim/${platform}/shows`, { title: `${s} on ${platform}` })) as { externalId: string };
        await answered(await api(`/v1/partners/${seg(p)}/shows/${seg(s)}/mirrors/${seg(targetId(p, platform))}`, { method: 'PUT', json: { externalId } }), `link ${platform}`);
      }
    }
  }

  // Each show's mirrors settle: none failed, none left pending, and a live one has every pin it should.
  for (const p of PARTNERS) {
    for (const s of showsOf(p)) {
      await waitFor(async () => {
        const r = await api(`/v1/partners/${seg(p)}/shows/${seg(s)}`);
        expect(r.status).toBe(200);
        const v = (await r.json()) as ShowView;
        expect(v.mirrors).toHaveLength(ALL_PLATFORMS.length);
        const wanted = v.show.pinnedProductIds.filter((id) => v.show.products.some((x) => x.id === id));
        for (const m of v.mirrors) {
          if (m.state === 'failed') expect({ show: `${p}/${s}`, mirror: m.targetId, lastError: m.lastError }).toBeUndefined(); // fails at once
          if (m.state === 'pending') return false;
          // Every pin is pinned, or failed with the platform's refusal of the product id it was sent as
          // (a sku or id that is no platform product id: TikTok and Whatnot take it in the URL path).
          // A show live again after it was over fails its pins on a platform that cannot start it again
          // (the mirror is action_required and says so, src/mirror/sync.service.ts): not a refusal (seed 113).
          if (m.state === 'action_required') {
            expect({ mirror: m.targetId, lastError: m.lastError }).toEqual({ mirror: m.targetId, lastError: expect.stringMatching(/again after it (ended|was cancelled)/) });
            continue;
          }
          for (const x of m.pins.filter((y) => y.state === 'failed' && wanted.includes(y.productId))) {
            const sent = v.show.products.find((y) => y.id === x.productId);
            const as = sent?.sku ?? x.productId;
            expect({ show: `${p}/${s}`, mirror: m.targetId, pin: x.productId, as, reason: x.reason }).toEqual({ show: `${p}/${s}`, mirror: m.targetId, pin: x.productId, as, reason: expect.stringMatching(/^(tiktok|whatnot|bambuser): .*(refused to|cannot be sent the product id)/) });
            expect({ mirror: m.targetId, as, anId: /^[A-Za-z0-9_.:-]{1,128}$/.test(as) && as !== '.' && as !== '..' }).toEqual({ mirror: m.targetId, as, anId: false });
          }
          // Pins are mirrored while the show is live. A mirror can be live while the show is not: a
          // later snapshot said 'scheduled' after the platform's show had gone live, which it cannot undo
          // (seed 408816), and then no pin is owed.
          if (m.state === 'live' && v.show.state === 'live' && !wanted.every((id) => ['pinned', 'failed'].includes(m.pins.find((x) => x.productId === id)?.state ?? ''))) return false;
        }
        return true;
      }, 30_000, 200);
    }
  }

  // Every accepted order is in the ledger.
  for (const a of accepted.filter((x) => x.event.type === 'order.created')) {
    const o = a.event.data['order'] as { id: string };
    await waitFor(async () => (await api(`/v1/partners/${seg(a.partner)}/attribution/orders/${seg(o.id)}`)).status === 200, 20_000, 100);
  }

  // No job failed (sync, attribution, delivery, scheduler, sweep).
  expect(await failedJobs(redis.url, PREFIX)).toEqual([]);

  expect((await fetch(`${url}/health/ready`)).status).toBe(200);
  expect(child.proc.exitCode).toBeNull();
}, 180_000); // a few 503s waited out after their Retry-After (5 s each) fit

test("the partner that sent the junk reads every list, the ops console's JSON and /metrics with its own key", async () => {
  for (const p of PARTNERS) {
    const key = partnerKeys.get(p)!;
    const paths = [
      `/v1/partners/${seg(p)}`,
      `/v1/partners/${seg(p)}/shows`,
      `/v1/partners/${seg(p)}/shows?state=live&limit=1`,
      `/v1/partners/${seg(p)}/attribution`,
      `/v1/partners/${seg(p)}/attribution?format=csv`,
      `/v1/partners/${seg(p)}/targets`,
      `/v1/partners/${seg(p)}/endpoints`,
      `/v1/partners/${seg(p)}/reconciliations`,
      `/v1/ops/board`,
      `/v1/ops/reconciliations`,
      `/v1/ops/endpoints`,
      `/v1/audit?partnerId=${seg(p)}`,
      ...showsOf(p).flatMap((s) => [`/v1/partners/${seg(p)}/shows/${seg(s)}`, `/v1/ops/partners/${seg(p)}/shows/${seg(s)}`, `/v1/partners/${seg(p)}/shows/${seg(s)}/attribution`]),
    ];
    for (const path of paths) {
      const r = await api(path, { key });
      expect([path, r.status]).toEqual([path, 200]);
      await r.text();
    }
  }
  const m = await fetch(`${url}/metrics`);
  expect(m.status).toBe(200);
  expect(await m.text()).toContain('syndicast_events_total');
});

test('hostile path parameters and query strings on the operator API: 2xx or 4xx problems, never a 5xx', async () => {
  const segs = ['__proto__', 'constructor', '%2E%2E', '%252E', '%2F', 'a%00b', '%F0%9F%8E%89', '%E2%80%AE', 'a'.repeat(129), '%25', '%ZZ', '%C0%AF', '%ED%A0%80', 'a;b=c', '*', 'x:y', '%7B%7D', 'fz', 'fz-youtube', '-1'];
  const values = ['', '-1', '0', '1e309', '0x10', '1.5', 'NaN', '%00', '__proto__', '9'.repeat(30), 'a'.repeat(3000), '%ED%A0%80', 'live', 'csv', '2026-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59', 'mirror.', 'eyJ9', '0-0', '18446744073709551616-0', '%5B%5D'];
  const keys = ['limit', 'cursor', 'state', 'from', 'to', 'showId', 'targetId', 'format', 'partnerId', 'status', 'action', 'force', 'verify', '__proto__', 'constructor[prototype][x]', 'limit[]'];
  const routes = [
    'GET /v1/partners/{a}/shows', 'GET /v1/partners/{a}/shows/{b}', 'GET /v1/partners/{a}/shows/{b}/attribution', 'GET /v1/partners/{a}/attribution', 'GET /v1/partners/{a}/attribution/orders/{b}',
    'GET /v1/partners/{a}/endpoints/{b}/attempts', 'GET /v1/partners/{a}/messages/{b}', 'GET /v1/partners/{a}/reconciliations', 'GET /v1/reconciliations/{a}', 'GET /v1/ops/partners/{a}/shows/{b}',
    'GET /v1/ops/board', 'GET /v1/ops/reconciliations', 'GET /v1/audit', 'GET /v1/api-keys', 'GET /l/{a}',
    'POST /v1/partners/{a}/shows/{b}/mirrors/{c}/resync', 'PUT /v1/partners/{a}/shows/{b}/mirrors/{c}', 'POST /v1/partners/{a}/shows/{b}/ingest/rotate', 'PATCH /v1/partners/{a}/targets/{b}', 'DELETE /v1/partners/{a}/targets/{b}',
    'POST /v1/partners/{a}/reconciliations', 'POST /v1/partners/{a}/messages/{b}/redeliver', 'DELETE /v1/api-keys/{a}', 'POST /v1/platform-webhooks/{a}',
  ];
  const bodies = [undefined, '', 'null', '[]', '{"__proto__":{"x":1}}', '{"externalId":"' + 'a'.repeat(300) + '"}', '{"from":"9999-12-30T00:00:00Z","to":"9999-12-31T23:59:59Z"}', '{"from":"2026-01-01T00:00:00Z","to":"2025-01-01T00:00:00Z"}', '{"name":"\\ud800"}', '"x"'];
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...routes),
      fc.tuple(fc.constantFrom(...segs), fc.constantFrom(...segs), fc.constantFrom(...segs)),
      fc.array(fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...values)), { maxLength: 3 }),
      fc.constantFrom(...bodies),
      fc.constantFrom('application/json', 'text/plain', 'invalid'),
      async (route, [a, b, c], query, body, contentType) => {
        const [method, template] = route.split(' ') as [string, string];
        const path = template.replace('{a}', a).replace('{b}', b).replace('{c}', c);
        const q = query.map(([k, v]) => `${k}=${v}`).join('&');
        const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` };
        if (method !== 'GET' && body !== undefined) headers['content-type'] = contentType;
        const r = await fetch(`${url}${path}${q ? `?${q}` : ''}`, { method, headers, ...(method !== 'GET' && body !== undefined ? { body } : {}) });
        await answered(r, `${method} ${path}?${q.slice(0, 200)} ${body?.slice(0, 80) ?? ''}`);
      },
    ),
    { seed: SEED, numRuns: 400, endOnFailure: true },
  );
  expect((await fetch(`${url}/health/ready`)).status).toBe(200);
});
