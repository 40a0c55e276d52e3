/**
 * the external contract §5 attribution rules, end to end: real redis-server, real HTTP, signed partner events through
 * the attribution queue and worker, reports over the API.
 */
import { AttributionService, type OrderAttributedPayload } from '../../src/attribution/attribution.service.js';
import { applyBps } from '../../src/domain/money.js';
import { netCommission, type LedgerEntry } from '../../src/domain/order.js';
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import type { Platform } from '../../src/targets/target.adapter.js';
import { dumpRedis } from '../helpers/redis-dump.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

const P = 'tsl';
const WINDOW_H = 24;
const H = 3_600_000;
const T0 = Date.parse('2026-11-24T18:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

let svc: TestService;
let secret: string;

interface OrderViewJson {
  orderId: string;
  status: string;
  attribution: { attributed: boolean; showId?: string; targetId?: string; productId?: string; reason?: string; via?: string };
  commission: { amount: number; currency: string };
  accrued: number;
  reversed: number;
  refundedAmount: number;
  refunds: { id: string }[];
  entries: LedgerEntry[];
}

async function addTarget(id: string, platform: Platform, commissionRateBps: number): Promise<void> {
  // Disabled: no mirroring (no platform calls in this file); clicks and orders still attribute with its rate.
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id, platform, name: id, credentials: { token: 'x' }, commissionRateBps, enabled: false } });
  expect(r.status).toBe(201);
}

/** A click on the tracked link of (show, target, product) at a chosen time. */
async function click(showId: string, targetId: string, atMs: number, productId = 'p1', platform: Platform = 'youtube'): Promise<string> {
  const url = await svc.rt.links.ensure({ partnerId: P, showId, targetId, platform, productId, url: `https://shop.example.com/${productId}` });
  const link = await svc.rt.links.find(url.split('/l/')[1]!);
  const c = await svc.rt.links.recordClick(link!, '203.0.113.7', atMs);
  return c.id;
}

let n = 0;
async function order(o: { id: string; clickId?: string; createdAt: number; amount: number; currency?: string }, webhookId?: string): Promise<void> {
  const ev = {
    type: 'order.created',
    occurredAt: iso(o.createdAt),
    data: { order: { id: o.id, ...(o.clickId ? { clickId: o.clickId } : {}), createdAt: iso(o.createdAt), lines: [{ productId: 'p1', quantity: 1, amount: { amount: o.amount, currency: o.currency ?? 'USD' } }], total: { amount: o.amount, currency: o.currency ?? 'USD' } } },
  };
  const r = await sendEvent(svc, P, secret, ev, { webhookId: webhookId ?? `wo_${o.id}_${++n}` });
  expect([200, 202]).toContain(r.status);
}

async function refund(orderId: string, id: string, amount: number, atMs: number, currency = 'USD', status = 202, webhookId = `wr_${id}_${++n}`): Promise<Response> {
  const ev = { type: 'order.refunded', occurredAt: iso(atMs), data: { refund: { id, orderId, createdAt: iso(atMs), amount: { amount, currency } } } };
  const r = await sendEvent(svc, P, secret, ev, { webhookId });
  expect(r.status).toBe(status);
  return r;
}

async function view(orderId: string, query = ''): Promise<OrderViewJson | null> {
  const r = await svc.api(`/v1/partners/${P}/attribution/orders/${orderId}${query}`);
  if (r.status === 404) return null;
  expect(r.status).toBe(200);
  return (await r.json()) as OrderViewJson;
}

const waitOrder = (orderId: string, ok: (v: OrderViewJson) => boolean = () => true): Promise<OrderViewJson> =>
  waitFor(async () => {
    const v = await view(orderId);
    return v && ok(v) ? v : null;
  }, 10_000);

/** Until the attribution queue has nothing waiting, delayed or running. */
async function drain(): Promise<void> {
  await waitFor(async () => {
    const c = await svc.rt.attributionProducer.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
    return Object.values(c).every((v) => v === 0);
  }, 10_000);
}

beforeAll(async () => {
  // The scenario's clock is fixed (T0, 2026-11-24) and its orders run up to ~9 days past it: events
  // that far ahead of the real clock are refused by default (EVENT_FUTURE_SLACK_SEC, 24 h).
  svc = await startService({ workers: true, env: { EVENT_FUTURE_SLACK_SEC: String(400 * 86_400) } });
  secret = await createPartner(svc, P, { attributionWindowHours: WINDOW_H });
  await addTarget('yt1', 'youtube', 1000); // 10 %
  await addTarget('tt1', 'tiktok', 1250); // 12.5 %
  const ev = showEvent('show.scheduled', sampleShow('s1'), '2026-11-20T00:00:00Z');
  expect((await sendEvent(svc, P, secret, ev)).status).toBe(202);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s2'), '2026-11-20T00:00:00Z'))).status).toBe(202);
});

afterAll(async () => {
  await svc?.close();
});

describe('attribution window (rule 1), measured from the click, both edges inclusive', () => {
  test('given a click at T, when orders arrive at T+window, T+window+1s and T−1s, then only the first is attributed', async () => {
    const c = await click('s1', 'yt1', T0);
    await order({ id: 'w-edge', clickId: c, createdAt: T0 + WINDOW_H * H, amount: 10_000 });
    await order({ id: 'w-late', clickId: c, createdAt: T0 + WINDOW_H * H + 1000, amount: 10_000 });
    await order({ id: 'w-early', clickId: c, createdAt: T0 - 1000, amount: 10_000 });
    await order({ id: 'w-zero', clickId: c, createdAt: T0, amount: 10_000 });
    const edge = await waitOrder('w-edge');
    expect(edge.attribution).toMatchObject({ attributed: true, via: 'click', showId: 's1', targetId: 'yt1', productId: 'p1' });
    expect(edge.commission).toEqual({ amount: 1000, currency: 'USD' });
    expect((await waitOrder('w-zero')).attribution.attributed).toBe(true);
    const late = await waitOrder('w-late');
    expect(late.attribution).toMatchObject({ attributed: false, reason: 'outside_window' });
    expect(late.entries).toEqual([]);
    expect((await waitOrder('w-early')).attribution).toMatchObject({ attributed: false, reason: 'outside_window' });
  });

  test('a click recorded through GET /l/{code} carries its sclid to the order', async () => {
    const url = await svc.rt.links.ensure({ partnerId: P, showId: 's2', targetId: 'yt1', platform: 'youtube', productId: 'p2', url: 'https://shop.example.com/p2' });
    const r = await fetch(url, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (test)' } });
    expect(r.status).toBe(302);
    const sclid = new URL(r.headers.get('location')!).searchParams.get('sclid')!;
    expect(sclid).toMatch(/^clk_/);
    await order({ id: 'via-redirect', clickId: sclid, createdAt: Date.now() + 1000, amount: 2500 });
    expect((await waitOrder('via-redirect')).attribution).toMatchObject({ attributed: true, showId: 's2', targetId: 'yt1', productId: 'p2' });
  });
});

test('given clicks on two mirrors, when the order carries the later click id (last click wins), then it attributes to that mirror', async () => {
  const first = await click('s1', 'yt1', T0 + 10 * H);
  const later = await click('s1', 'tt1', T0 + 11 * H, 'p2', 'tiktok');
  expect(first).not.toBe(later);
  await order({ id: 'two-clicks', clickId: later, createdAt: T0 + 12 * H, amount: 8000 });
  const v = await waitOrder('two-clicks');
  expect(v.attribution).toMatchObject({ attributed: true, showId: 's1', targetId: 'tt1', productId: 'p2' });
  expect(v.commission.amount).toBe(1000); // 8000 × 12.5 %
});

test('given an attributed order, when 40 % is refunded, then 40 % of the commission is reversed by a new entry', async () => {
  const c = await click('s1', 'yt1', T0 + 20 * H);
  await order({ id: 'partial', clickId: c, createdAt: T0 + 21 * H, amount: 10_000 });
  const before = await waitOrder('partial');
  expect(before.entries).toHaveLength(1);
  await refund('partial', 'partial-r1', 4000, T0 + 22 * H);
  const v = await waitOrder('partial', (x) => x.refunds.length === 1);
  expect(v.entries.map((e) => [e.kind, e.amount])).toEqual([
    ['accrual', 1000],
    ['reversal', 400],
  ]);
  expect(v.entries[0]).toEqual(before.entries[0]); // never edited
  expect(v.entries[1]).toMatchObject({ key: 'reversal:partial-r1', base: 4000, currency: 'USD', occurredAt: iso(T0 + 22 * H) });
  expect(v.commission.amount).toBe(600);
  expect(v.refundedAmount).toBe(4000);
});

test('given an approved commission (hold period over), when a refund arrives, then a reversal entry is appended and the approved accrual stays as it was', async () => {
  const orderAt = Date.now() - 40 * 24 * H; // default hold: 30 days
  const c = await click('s1', 'yt1', orderAt - H);
  await order({ id: 'approved', clickId: c, createdAt: orderAt, amount: 20_000 });
  const before = await waitOrder('approved');
  expect(before.status).toBe('approved');
  expect(before.entries[0]).toMatchObject({ kind: 'accrual', amount: 2000, against: 'approved' });
  await refund('approved', 'approved-r1', 5000, Date.now());
  const v = await waitOrder('approved', (x) => x.entries.length === 2);
  expect(v.entries[0]).toEqual(before.entries[0]);
  expect(v.entries[1]).toMatchObject({ kind: 'reversal', amount: 500, against: 'approved' });
  expect(v.status).toBe('approved');
  expect(v.commission.amount).toBe(1500);
  // full refund → reversed
  await refund('approved', 'approved-r2', 15_000, Date.now());
  const full = await waitOrder('approved', (x) => x.entries.length === 3);
  expect(full.status).toBe('reversed');
  expect(full.commission.amount).toBe(0);
});

test('a fresh attributed order is pending', async () => {
  const c = await click('s2', 'yt1', Date.now() - H);
  await order({ id: 'fresh', clickId: c, createdAt: Date.now(), amount: 1234 });
  const v = await waitOrder('fresh');
  expect(v.status).toBe('pending');
  expect(v.entries[0]).toMatchObject({ against: 'pending', amount: applyBps(1234, 1000) });
});

test('given a refund that arrives before its order, when the order arrives, then the refund is applied', async () => {
  const c = await click('s1', 'yt1', T0 + 30 * H);
  await refund('early-refund', 'er-1', 3000, T0 + 32 * H);
  await drain();
  expect(await view('early-refund')).toBeNull();
  await order({ id: 'early-refund', clickId: c, createdAt: T0 + 31 * H, amount: 10_000 });
  const v = await waitOrder('early-refund');
  expect(v.entries.map((e) => [e.kind, e.amount, e.key])).toEqual([
    ['accrual', 1000, 'accrual:early-refund'],
    ['reversal', 300, 'reversal:er-1'],
  ]);
  expect(v.commission.amount).toBe(700);
});

test('given the same order sent three times under three webhook ids, then there is one order and one accrual', async () => {
  const c = await click('s2', 'tt1', T0 + 40 * H, 'p1', 'tiktok');
  await Promise.all([1, 2, 3].map((i) => order({ id: 'dup', clickId: c, createdAt: T0 + 41 * H, amount: 4000 }, `dup-hook-${i}`)));
  // and a refund delivered twice under two webhook ids, plus a re-delivery of the same webhook id
  await refund('dup', 'dup-r', 1000, T0 + 42 * H);
  await refund('dup', 'dup-r', 1000, T0 + 42 * H);
  await order({ id: 'dup', clickId: c, createdAt: T0 + 41 * H, amount: 4000 }, 'dup-hook-1');
  await drain();
  const v = (await view('dup'))!;
  expect(v.entries.map((e) => e.kind)).toEqual(['accrual', 'reversal']);
  expect(v.accrued).toBe(500);
  expect(v.reversed).toBe(125);
  const rep = (await (await svc.api(`/v1/partners/${P}/attribution?showId=s2&targetId=tt1`)).json()) as { totals: { orders: number }[] };
  expect(rep.totals).toEqual([{ showId: 's2', targetId: 'tt1', currency: 'USD', orders: 1, grossAmount: 4000, refundedAmount: 1000, commission: 375 }]);
});

test('currencies keep their own minor units (JPY 0 decimals, KWD 3) and are never mixed', async () => {
  const c1 = await click('s2', 'yt1', T0 + 50 * H);
  const c2 = await click('s2', 'tt1', T0 + 50 * H, 'p1', 'tiktok');
  await order({ id: 'jpy', clickId: c1, createdAt: T0 + 51 * H, amount: 1999, currency: 'JPY' }); // ¥1,999
  await order({ id: 'kwd', clickId: c2, createdAt: T0 + 51 * H, amount: 12_345, currency: 'KWD' }); // 12.345 KWD
  const jpy = await waitOrder('jpy');
  const kwd = await waitOrder('kwd');
  expect(jpy.commission).toEqual({ amount: 200, currency: 'JPY' }); // 199.9 → 200
  expect(kwd.commission).toEqual({ amount: 1543, currency: 'KWD' }); // 1543.125 → 1543
  await refund('kwd', 'kwd-r', 5, T0 + 52 * H, 'USD', 422); // not the order's currency: refused, nothing stored
  await drain();
  expect((await view('kwd'))!.commission.amount).toBe(1543);
  const from = iso(T0 + 51 * H);
  const to = iso(T0 + 51 * H + 1);
  const rep = (await (await svc.api(`/v1/partners/${P}/attribution?from=${from}&to=${to}`)).json()) as unknown;
  expect(rep).toEqual({
    totals: [
      { showId: 's2', targetId: 'tt1', currency: 'KWD', orders: 1, grossAmount: 12_345, refundedAmount: 0, commission: 1543 },
      { showId: 's2', targetId: 'yt1', currency: 'JPY', orders: 1, grossAmount: 1999, refundedAmount: 0, commission: 200 },
    ],
    unattributed: [],
  });
  // [from, to): an order exactly at `to` is outside
  const empty = (await (await svc.api(`/v1/partners/${P}/attribution?from=${iso(T0 + 51 * H + 1)}&to=${iso(T0 + 52 * H)}`)).json()) as unknown;
  expect(empty).toEqual({ totals: [], unattributed: [] });
});

test('a refund in another currency than a stored order is refused (422, nothing stored); one that arrived before its order is kept unapplied and visible, never counted', async () => {
  const c = await click('s2', 'yt1', T0 + 70 * H);
  // Before the order: one in the wrong currency, one in the right one (applied when the order arrives, rule 3).
  await refund('eur-o', 'eur-r-usd', 400, T0 + 71 * H, 'USD');
  await refund('eur-o', 'eur-r-eur', 300, T0 + 71 * H, 'EUR');
  await drain();
  await order({ id: 'eur-o', clickId: c, createdAt: T0 + 70 * H + 60_000, amount: 5000, currency: 'EUR' });
  const v = await waitOrder('eur-o', (x) => x.refundedAmount === 300);
  // After the order: a wrong-currency refund is refused at the edge, with the field and the order's
  // currency (it was a 202 and stayed unapplied for good: the partner never learnt it).
  const refused = await refund('eur-o', 'eur-r-gbp', 100, T0 + 72 * H, 'GBP', 422, 'wr-eur-r-gbp');
  expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = (await refused.json()) as { status: number; detail: string; errors: { path: string; message: string }[] };
  expect(problem.status).toBe(422);
  expect(problem.detail).toContain('EUR');
  expect(problem.errors).toEqual([{ path: 'data.refund.amount.currency', message: "must be the order's currency, EUR" }]);
  // Nothing was claimed: the same webhook-id and refund id go through once the amount is in EUR.
  await refund('eur-o', 'eur-r-gbp', 100, T0 + 72 * H, 'EUR', 202, 'wr-eur-r-gbp');
  // A repeated webhook-id is its stored event's duplicate (200), whatever the repeat says.
  const again = await refund('eur-o', 'eur-r-gbp', 100, T0 + 72 * H, 'GBP', 200, 'wr-eur-r-gbp');
  expect(((await again.json()) as { duplicate: boolean }).duplicate).toBe(true);
  await drain();
  const after = (await view('eur-o'))!;
  expect(v.refundedAmount).toBe(300);
  expect(after.refundedAmount).toBe(400);
  expect(after.commission).toEqual({ amount: 500 - 40, currency: 'EUR' }); // 10 % of 5000, less 10 % of 400: EUR only
  expect(after.reversed).toBe(v.reversed + 10);
  const refunds = (after.refunds as unknown as { id: string; currency: string; applied: boolean }[]).map((r) => [r.id, r.currency, r.applied]).sort();
  expect(refunds).toEqual([
    ['eur-r-eur', 'EUR', true],
    ['eur-r-gbp', 'EUR', true],
    ['eur-r-usd', 'USD', false],
  ]);
  // The ledger has no entry for them, and no report row in USD or GBP comes from them.
  expect(after.entries.filter((e) => e.currency !== 'EUR')).toEqual([]);
  const rep = (await (await svc.api(`/v1/partners/${P}/attribution?from=${iso(T0 + 70 * H)}&to=${iso(T0 + 71 * H)}`)).json()) as unknown;
  expect(rep).toEqual({ totals: [{ showId: 's2', targetId: 'yt1', currency: 'EUR', orders: 1, grossAmount: 5000, refundedAmount: 400, commission: 460 }], unattributed: [] });
});

test("an order's and a refund's createdAt sent with an offset are stored, shown and reported as the same instant in UTC (contract: timestamps are ISO-8601 UTC)", async () => {
  // T0 + 80 h is 2026-11-28T02:00:00Z; the partner writes it in its own zone (+02:00, and -05:30).
  const c = await click('s2', 'yt1', T0 + 79 * H);
  const created = '2026-11-28T04:00:00.250+02:00';
  const ev = { type: 'order.created', occurredAt: created, data: { order: { id: 'utc-o', clickId: c, createdAt: created, lines: [], total: { amount: 2000, currency: 'USD' } } } };
  expect((await sendEvent(svc, P, secret, ev)).status).toBe(202);
  await waitOrder('utc-o');
  const refundAt = '2026-11-27T22:30:00-05:30'; // 2026-11-28T04:00:00Z
  const rf = { type: 'order.refunded', occurredAt: refundAt, data: { refund: { id: 'utc-r', orderId: 'utc-o', createdAt: refundAt, amount: { amount: 500, currency: 'USD' } } } };
  expect((await sendEvent(svc, P, secret, rf)).status).toBe(202);
  const v = await waitOrder('utc-o', (x) => x.refunds.length === 1);
  const times = v as unknown as { createdAt: string; refunds: { createdAt: string }[] };
  expect(times.createdAt).toBe('2026-11-28T02:00:00.250Z');
  expect(times.refunds.map((r) => r.createdAt)).toEqual(['2026-11-28T04:00:00Z']);
  expect(v.entries.map((e) => [e.kind, e.occurredAt])).toEqual([
    ['accrual', '2026-11-28T02:00:00.250Z'],
    ['reversal', '2026-11-28T04:00:00Z'],
  ]);
  // The same instant counts for the period: [02:00:00.250Z, +1 ms) holds it.
  const rep = (await (await svc.api(`/v1/partners/${P}/attribution?from=2026-11-28T02:00:00.250Z&to=2026-11-28T02:00:00.251Z`)).json()) as { totals: { orders: number }[] };
  expect(rep.totals.map((t) => t.orders)).toEqual([1]);
});

test("a refund id stored before its order in another currency, sent again so: the 422 asks for a new refund id (the same id in the order's currency is taken and changes nothing)", async () => {
  const c = await click('s2', 'yt1', T0 + 95 * H);
  await refund('held-o', 'held-r', 200, T0 + 96 * H, 'USD'); // before its order: stored (202), held-o holds the id
  await drain();
  await order({ id: 'held-o', clickId: c, createdAt: T0 + 95 * H + 60_000, amount: 3000, currency: 'EUR' });
  await waitOrder('held-o', (x) => x.refunds.length === 1);
  // Old code: "send the refund's amount in EUR" only, and that fix (below) was taken and did nothing.
  const again = await refund('held-o', 'held-r', 200, T0 + 96 * H, 'USD', 422);
  const problem = (await again.json()) as { detail: string; errors: { path: string; message: string }[] };
  expect(problem.detail).toContain('refund held-r is already stored');
  expect(problem.detail).toContain('under a new refund id');
  expect(problem.errors.map((e) => e.path)).toEqual(['data.refund.id', 'data.refund.amount.currency']);
  await refund('held-o', 'held-r', 200, T0 + 96 * H, 'EUR', 202); // booked once: nothing applied
  await refund('held-o', 'held-r2', 200, T0 + 96 * H, 'EUR', 202); // the new id: applied
  await drain();
  const v = await waitOrder('held-o', (x) => x.refundedAmount === 200);
  const refunds = (v.refunds as unknown as { id: string; currency: string; applied: boolean }[]).map((r) => [r.id, r.currency, r.applied]).sort();
  expect(refunds).toEqual([
    ['held-r', 'USD', false],
    ['held-r2', 'EUR', true],
  ]);
});

test('given an order with an unknown click id, then it is unattributed and reported as such', async () => {
  await order({ id: 'unknown-click', clickId: 'clk_DOESNOTEXIST', createdAt: T0 + 60 * H, amount: 777, currency: 'EUR' });
  await order({ id: 'no-click', createdAt: T0 + 60 * H, amount: 223, currency: 'EUR' });
  expect((await waitOrder('unknown-click')).attribution).toMatchObject({ attributed: false, reason: 'unknown_click' });
  expect((await waitOrder('no-click')).attribution).toMatchObject({ attributed: false, reason: 'no_click' });
  const rep = (await (await svc.api(`/v1/partners/${P}/attribution?from=${iso(T0 + 60 * H)}&to=${iso(T0 + 61 * H)}`)).json()) as unknown;
  expect(rep).toEqual({ totals: [], unattributed: [{ currency: 'EUR', orders: 2, grossAmount: 1000 }] });
});

test('several partial refunds: reversals follow the cumulative refund, so rounding never drifts', async () => {
  // 15 × 10 % = 1.5 → 2. Per-refund rounding of three refunds of 5 (0.5 → 1 each) would reverse 3 (> 2).
  const c = await click('s1', 'yt1', T0 + 70 * H);
  await order({ id: 'drift', clickId: c, createdAt: T0 + 71 * H, amount: 15 });
  await waitOrder('drift');
  // Net commission after each refund: net 10 → 1.0 → 1; net 5 → 0.5 → 1; net 0 → 0 (reversals 1, 0 (no entry), 1).
  const expected = [1, 1, 0];
  for (const [i, at] of [1, 2, 3].entries()) {
    await refund('drift', `drift-r${at}`, 5, T0 + (72 + i) * H);
    const v = await waitOrder('drift', (x) => x.refunds.length === at);
    expect(v.accrued - v.reversed).toBe(netCommission(15, 5 * at, 1000));
    expect(v.commission.amount).toBe(expected[i]);
  }
});

test('the per-show breakdown groups by target and by product; CSV export has the same rows', async () => {
  // Its own show, clicks and orders in its own period: the test needs nothing from the others.
  const at = T0 + 100 * H;
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s-csv'), '2026-11-20T00:00:00Z'))).status).toBe(202);
  const c1 = await click('s-csv', 'yt1', at, 'p1');
  const c2 = await click('s-csv', 'tt1', at, 'p2', 'tiktok');
  await order({ id: 'csv-1', clickId: c1, createdAt: at + 1000, amount: 1000 });
  await order({ id: 'csv-2', clickId: c2, createdAt: at + 2000, amount: 3000 });
  await order({ id: 'csv-3', clickId: c2, createdAt: at + 3000, amount: 500, currency: 'EUR' });
  await order({ id: 'csv-nc', createdAt: at + 4000, amount: 700, currency: 'EUR' });
  for (const id of ['csv-1', 'csv-2', 'csv-3', 'csv-nc']) await waitOrder(id);

  const r = await svc.api(`/v1/partners/${P}/shows/s-csv/attribution`);
  expect(r.status).toBe(200);
  const body = (await r.json()) as { showId: string; byTarget: { targetId: string; currency: string; orders: number; grossAmount: number }[]; byProduct: { productId: string; currency: string; orders: number }[] };
  expect(body.showId).toBe('s-csv');
  expect(body.byTarget.map((t) => [t.targetId, t.currency, t.orders, t.grossAmount])).toEqual([
    ['tt1', 'EUR', 1, 500],
    ['tt1', 'USD', 1, 3000],
    ['yt1', 'USD', 1, 1000],
  ]);
  expect(body.byProduct.map((p) => [p.productId, p.currency, p.orders])).toEqual([
    ['p1', 'USD', 1],
    ['p2', 'EUR', 1],
    ['p2', 'USD', 1],
  ]);
  expect((await svc.api(`/v1/partners/${P}/shows/nope/attribution`)).status).toBe(404);

  const period = `from=${iso(at)}&to=${iso(at + H)}`;
  const json = (await (await svc.api(`/v1/partners/${P}/attribution?${period}`)).json()) as {
    totals: { showId: string; targetId: string; currency: string; orders: number; grossAmount: number; refundedAmount: number; commission: number }[];
    unattributed: { currency: string; orders: number; grossAmount: number }[];
  };
  expect(json.totals).toHaveLength(3);
  expect(json.unattributed).toEqual([{ currency: 'EUR', orders: 1, grossAmount: 700 }]);
  const csv = await svc.api(`/v1/partners/${P}/attribution?${period}`, { headers: { accept: 'text/csv' } });
  expect(csv.status).toBe(200);
  expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
  const lines = (await csv.text()).trim().split('\r\n');
  expect(lines).toEqual([
    'attributed,showId,targetId,currency,orders,grossAmount,refundedAmount,commission',
    ...json.totals.map((t) => ['true', t.showId, t.targetId, t.currency, t.orders, t.grossAmount, t.refundedAmount, t.commission].join(',')),
    ...json.unattributed.map((u) => ['false', '', '', u.currency, u.orders, u.grossAmount, '', ''].join(',')),
  ]);
  expect(lines).toContain('false,,,EUR,1,700,,');
});

test('report auth: viewer and own-partner keys read, another partner key is refused, unknown partner is 404', async () => {
  await createPartner(svc, 'other');
  const mk = async (role: string, partnerId?: string): Promise<string> => {
    const r = await svc.api('/v1/api-keys', { json: { role, ...(partnerId ? { partnerId } : {}) } });
    return ((await r.json()) as { key: string }).key;
  };
  const viewer = await mk('viewer');
  const own = await mk('partner', P);
  const foreign = await mk('partner', 'other');
  expect((await svc.api(`/v1/partners/${P}/attribution`, { key: viewer })).status).toBe(200);
  expect((await svc.api(`/v1/partners/${P}/attribution`, { key: own })).status).toBe(200);
  expect((await svc.api(`/v1/partners/${P}/attribution`, { key: foreign })).status).toBe(403);
  expect((await svc.api(`/v1/partners/${P}/attribution`, { key: null })).status).toBe(401);
  expect((await svc.api(`/v1/partners/ghost/attribution`)).status).toBe(404);
  expect((await svc.api(`/v1/partners/${P}/attribution?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`)).status).toBe(400);
  expect((await svc.api(`/v1/partners/${P}/attribution?from=yesterday`)).status).toBe(400);
});

describe('platform-native orders (rule 2) through ingestPlatformOrders', () => {
  test('an order naming the mirrored broadcast attributes to (show, target); cumulative refunds and re-reports are idempotent; the hook fires once', async () => {
    await new ExternalShowIndex(svc.rt.redis, svc.rt.keys).set('yt1', 'yt-broadcast-1', 's2');
    const calls: [string, OrderAttributedPayload, string][] = [];
    const service = new AttributionService({
      repo: new AttributionRepository(svc.rt.redis, svc.rt.keys),
      partners: svc.rt.partners,
      links: svc.rt.links,
      externalShows: new ExternalShowIndex(svc.rt.redis, svc.rt.keys),
      log: svc.rt.log,
      holdDays: 30,
      onOrderAttributed: async (p, payload, key) => {
        calls.push([p, payload, key]);
      },
    });
    const base = { orderId: 'YT-1', externalShowId: 'yt-broadcast-1', productId: 'p1', clickId: undefined, createdAt: iso(T0 + 80 * H), total: { amount: 9999, currency: 'USD' }, status: 'COMPLETED', commission: undefined };
    const [first] = await service.ingestPlatformOrders(P, 'yt1', [{ ...base, refunded: { amount: 0, currency: 'USD' } }], 'webhook');
    expect(first).toMatchObject({ isNew: true, attributed: true });
    await service.ingestPlatformOrders(P, 'yt1', [{ ...base, refunded: { amount: 3333, currency: 'USD' } }], 'report');
    await service.ingestPlatformOrders(P, 'yt1', [{ ...base, refunded: { amount: 3333, currency: 'USD' } }], 'report');
    const v = (await view('YT-1', '?targetId=yt1'))!;
    expect(v.attribution).toMatchObject({ attributed: true, via: 'platform_show', showId: 's2', targetId: 'yt1' });
    expect(v.entries.map((e) => [e.kind, e.amount])).toEqual([
      ['accrual', 1000],
      ['reversal', 333],
    ]);
    expect(v.accrued - v.reversed).toBe(netCommission(9999, 3333, 1000));
    // a cancelled order is fully reversed
    await service.ingestPlatformOrders(P, 'yt1', [{ ...base, status: 'CANCELLED', refunded: { amount: 3333, currency: 'USD' } }], 'report');
    const cancelled = (await view('YT-1', '?targetId=yt1'))!;
    expect(cancelled.status).toBe('reversed');
    expect(cancelled.commission.amount).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toBe(P);
    expect(calls[0]![2]).toBe('order_attributed:@yt1:YT-1');
    expect(calls[0]![1]).toMatchObject({ orderId: 'YT-1', via: 'platform_show', showId: 's2', targetId: 'yt1', commission: { amount: 1000, currency: 'USD' } });
    // unknown broadcast and no click: unattributed
    const [u] = await service.ingestPlatformOrders(P, 'yt1', [{ ...base, orderId: 'YT-2', externalShowId: 'nope', refunded: { amount: 0, currency: 'USD' } }], 'webhook');
    expect(u).toMatchObject({ attributed: false });
    expect((await view('YT-2', '?targetId=yt1'))!.attribution).toMatchObject({ reason: 'unknown_show' });
  });

  test('amounts near 2^53 are exact in the atomic step (split round-half-up in Lua)', async () => {
    await new ExternalShowIndex(svc.rt.redis, svc.rt.keys).set('tt1', 'tt-room-big', 's2');
    const big = 9_007_199_254_740_991; // 2^53 − 1
    const partRefund = 3_002_399_751_580_327;
    await svc.rt.attribution.ingestPlatformOrders(P, 'tt1', [{ orderId: 'BIG', externalShowId: 'tt-room-big', productId: undefined, clickId: undefined, createdAt: iso(T0 + 90 * H), total: { amount: big, currency: 'IDR' }, refunded: { amount: partRefund, currency: 'IDR' }, status: undefined, commission: undefined }], 'report');
    const v = (await view('BIG', '?targetId=tt1'))!;
    expect(v.accrued).toBe(applyBps(big, 1250));
    expect(v.accrued - v.reversed).toBe(applyBps(big - partRefund, 1250));
  });
});

test('platform orders: an over-long order id is refused, over-long attribution hints are dropped (the order is kept, the hint stored nowhere)', async () => {
  const long = (c: string) => c.repeat(5000);
  const base = { createdAt: iso(T0 + 91 * H), total: { amount: 1000, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined };
  const out = await svc.rt.attribution.ingestPlatformOrders(
    P,
    'tt1',
    [
      { ...base, orderId: long('o'), externalShowId: undefined, productId: undefined, clickId: undefined },
      { ...base, orderId: 'HINTS-LONG', externalShowId: long('e'), productId: long('q'), clickId: long('c') },
    ],
    'report',
  );
  expect(out.map((o) => o.isNew)).toEqual([true]);
  expect(await view('HINTS-LONG', '?targetId=tt1')).not.toBeNull();
  const stored = await dumpRedis(svc.rt.redis);
  for (const c of ['o', 'e', 'q', 'c']) expect(stored.includes(c.repeat(300))).toBe(false);
});

/**
 * A hint with a control or format character (a bidi override, a zero-width character) can name nothing of
 * ours (our click, show and product ids are plain tokens) and read reversed or invisibly in the order's
 * record: dropped as an over-long one is, by the rule the order id is checked with (isPlatformIdText).
 * Only the length was checked. White space stays: a SKU may hold a space.
 */
test('platform orders: attribution hints with control or format characters are dropped (stored nowhere), one with a space is kept', async () => {
  const base = { createdAt: iso(T0 + 91 * H), total: { amount: 1000, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined };
  const out = await svc.rt.attribution.ingestPlatformOrders(
    P,
    'tt1',
    [
      { ...base, orderId: 'HINTS-UNSAFE', externalShowId: 'ext\u202Ehint', productId: 'sku\u200Bhint', clickId: 'clk\u2066hint' },
      { ...base, orderId: 'HINTS-SPACE', externalShowId: undefined, productId: 'SKU 1207', clickId: undefined },
    ],
    'report',
  );
  expect(out.map((o) => o.isNew)).toEqual([true, true]);
  const stored = await dumpRedis(svc.rt.redis);
  for (const hint of ['ext\u202Ehint', 'sku\u200Bhint', 'clk\u2066hint']) expect(stored.includes(hint)).toBe(false);
  expect(stored.includes('SKU 1207')).toBe(true);
});

describe('POST /v1/platform-webhooks/{targetId}', () => {
  // The happy path (a verified webhook whose orders land in the ledger) needs a platform's signing
  // scheme: the platform engineers test it with their simulators. Here: the routing and refusals.
  test('unknown target → 404; an adapter without webhooks (YouTube) → 404; a bad platform signature → 401; nothing stored', async () => {
    const post = (targetId: string, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${svc.url}/v1/platform-webhooks/${targetId}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"type":1,"data":{}}' });
    const unknown = await post('nope');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await post('bad id!')).status).toBe(404);
    expect((await post('yt1')).status).toBe(404); // YouTube sends no order webhooks
    const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, {
      json: { id: 'tt-hooks', platform: 'tiktok', name: 'tt', credentials: { appKey: 'k', appSecret: 's', refreshToken: 'r', shopCipher: 'c' }, commissionRateBps: 500, enabled: false },
    });
    expect(r.status).toBe(201);
    const before = (await svc.rt.attribution.orders(P)).length;
    expect((await post('tt-hooks')).status).toBe(401);
    expect((await post('tt-hooks', { authorization: 'forged' })).status).toBe(401);
    expect((await svc.rt.attribution.orders(P)).length).toBe(before);
  });
});

test('invariant: for every order, accrued − reversed = round-half-up(max(total − refunded, 0) × rate); entries sum to it', async () => {
  // Its own mix of orders (so it does not depend on the tests above), then every order of the partner.
  const at = T0 + 200 * H;
  const c = await click('s1', 'tt1', at, 'p1', 'tiktok');
  const mine = ['inv-plain', 'inv-partial', 'inv-over', 'inv-early', 'inv-odd', 'inv-none', 'inv-wrongcur'];
  await order({ id: 'inv-plain', clickId: c, createdAt: at + 1, amount: 9999 });
  await order({ id: 'inv-partial', clickId: c, createdAt: at + 2, amount: 10_001 });
  await refund('inv-partial', 'inv-partial-r', 3333, at + H);
  await order({ id: 'inv-over', clickId: c, createdAt: at + 3, amount: 800 });
  await refund('inv-over', 'inv-over-r1', 500, at + H);
  await refund('inv-over', 'inv-over-r2', 500, at + 2 * H);
  await refund('inv-early', 'inv-early-r', 150, at + H);
  await order({ id: 'inv-early', clickId: c, createdAt: at + 4, amount: 333 });
  await order({ id: 'inv-odd', clickId: c, createdAt: at + 5, amount: 7 });
  for (const [i, amount] of [1, 1, 1, 2].entries()) await refund('inv-odd', `inv-odd-r${i}`, amount, at + (i + 1) * H);
  await order({ id: 'inv-none', createdAt: at + 6, amount: 4242 });
  // Before its order (after it, a refund in another currency is refused): stored, never applied.
  await refund('inv-wrongcur', 'inv-wrongcur-r', 100, at + H, 'EUR');
  await order({ id: 'inv-wrongcur', clickId: c, createdAt: at + 7, amount: 1000 });
  await drain();

  const orders = await svc.rt.attribution.orders(P);
  const ids = new Set(orders.map((o) => o.order.orderId));
  expect(mine.filter((id) => !ids.has(id))).toEqual([]);
  const byId = new Map(orders.map((o) => [o.order.orderId, o]));
  expect(byId.get('inv-over')).toMatchObject({ refunded: 1000, accrued: 100, reversed: 100 });
  expect(byId.get('inv-odd')).toMatchObject({ refunded: 5, attributed: true });
  expect(byId.get('inv-none')).toMatchObject({ attributed: false, accrued: 0 });
  for (const o of orders) {
    const entries = o.entries.reduce((s, e) => s + (e.kind === 'accrual' ? e.amount : -e.amount), 0);
    expect(entries).toBe(o.accrued - o.reversed);
    expect(new Set(o.entries.map((e) => e.key)).size).toBe(o.entries.length);
    if (o.attributed) expect(o.accrued - o.reversed).toBe(netCommission(o.gross, o.refunded, o.rateBps));
    else expect(o.entries).toEqual([]);
  }
});

test('an order.created with clickId: null and showId: null is accepted (202) and attributed exactly as one that omits them (null is read as absent, contract note)', async () => {
  // Jackson, Newtonsoft, Go's pointers and Python's dataclasses write null for an absent value: it was a 400, the order lost.
  const at = T0 - 300 * H; // before T0, so no test's orders made at Date.now() can ever fall in its report period (T0 + 300 h was 2026-12-07 06:00–07:00 UTC: two such orders did)
  const send = async (id: string, extra: Record<string, unknown>): Promise<void> => {
    const ev = { type: 'order.created', occurredAt: iso(at), data: { order: { id, ...extra, createdAt: iso(at), lines: [{ productId: 'p1', quantity: 1, amount: { amount: 500, currency: 'GBP' } }], total: { amount: 500, currency: 'GBP' } } } };
    expect((await sendEvent(svc, P, secret, ev, { webhookId: `wn_${id}` })).status).toBe(202);
  };
  await send('null-ids', { clickId: null, showId: null });
  await send('absent-ids', {});
  const c = await click('s1', 'yt1', at - H);
  await send('click-null-show', { clickId: c, showId: null });
  const [nulls, absent, clicked] = await Promise.all([waitOrder('null-ids'), waitOrder('absent-ids'), waitOrder('click-null-show')]);
  expect(nulls.attribution).toEqual({ attributed: false, reason: 'no_click' });
  expect({ ...nulls, orderId: 'x', ref: 'x' }).toEqual({ ...absent, orderId: 'x', ref: 'x' });
  expect(clicked.attribution).toMatchObject({ attributed: true, showId: 's1', targetId: 'yt1' });
  const rep = (await (await svc.api(`/v1/partners/${P}/attribution?from=${iso(at)}&to=${iso(at + H)}`)).json()) as unknown;
  expect(rep).toEqual({ totals: [{ showId: 's1', targetId: 'yt1', currency: 'GBP', orders: 1, grossAmount: 500, refundedAmount: 0, commission: 50 }], unattributed: [{ currency: 'GBP', orders: 2, grossAmount: 1000 }] });
});
