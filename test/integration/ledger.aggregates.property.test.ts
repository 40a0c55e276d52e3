/**
 * Property: the ledger's pre-aggregated counters (per day and per show, moved in the same Lua step as
 * each append) always equal the sum over the stored orders, for any sequence of orders, refunds
 * (before their order, duplicated, in another currency), platform cumulative refunds and voids,
 * duplicate orders with other content, and late re-attribution — applied shuffled and concurrently
 * on a real Redis. And the reports, which read the aggregates for whole days and single orders for
 * the rest, equal the reports computed from every order, for any period.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { aggregate, orderAgg, showBreakdown } from '../../src/attribution/attribution.report.js';
import { AttributionService } from '../../src/attribution/attribution.service.js';
import { applyBps, plus, type Amount } from '../../src/domain/money.js';
import type { Attribution, NormalizedOrder } from '../../src/domain/order.js';
import { AttributionRepository, DAY_MS, type StoredOrder } from '../../src/store/attribution.repository.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { runsFor, testRedisClientPerFile } from '../helpers/redis-cluster.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const HOLD_DAYS = 1;
// "now": day 2, 12:00 — orders of days 0 and 1 before 12:00 are approved, the rest pending: day 1 is
// split, so the show report must read that day's single orders.
const NOW = T0 + 2 * DAY_MS + 12 * 3_600_000;

let client: RedisClient;
testRedisClientPerFile((started) => ({ client } = started));

const orderArb = fc.record({
  platform: fc.boolean(),
  atMs: fc.oneof(fc.integer({ min: 0, max: 4 * DAY_MS - 1 }), fc.constantFrom(0, DAY_MS - 1, DAY_MS, 2 * DAY_MS, 3 * DAY_MS - 1)),
  currency: fc.constantFrom('USD', 'JPY'),
  gross: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 2 ** 45 })),
  attributed: fc.boolean(),
  show: fc.constantFrom('s1', 's2'),
  target: fc.constantFrom('t1', 't2'),
  product: fc.constantFrom('p1', 'p2', undefined),
  rate: fc.integer({ min: 0, max: 10_000 }),
});
const eventArb = fc.oneof(
  fc.record({ kind: fc.constant('order' as const), i: fc.nat(7), other: fc.boolean() }),
  fc.record({ kind: fc.constant('refund' as const), i: fc.nat(7), id: fc.constantFrom('r1', 'r2', 'r3'), shareBps: fc.integer({ min: 1, max: 8000 }), wrongCurrency: fc.boolean() }),
  fc.record({ kind: fc.constant('floor' as const), i: fc.nat(7), shareBps: fc.integer({ min: 1, max: 12_000 }), void: fc.boolean() }),
  fc.record({ kind: fc.constant('reattribute' as const), i: fc.nat(7), show: fc.constantFrom('s1', 's2'), rate: fc.integer({ min: 0, max: 10_000 }) }),
);
const scenario = fc.record({
  orders: fc.array(orderArb, { minLength: 1, maxLength: 8 }),
  events: fc.array(eventArb, { minLength: 1, maxLength: 30 }),
  batch: fc.integer({ min: 1, max: 6 }),
  periods: fc.array(fc.tuple(fc.integer({ min: -DAY_MS, max: 5 * DAY_MS }), fc.integer({ min: 0, max: 5 * DAY_MS }), fc.boolean()), { minLength: 1, maxLength: 4 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

let run = 0;
async function check(s: Scenario): Promise<void> {
  const partnerId = `lp${run++}`;
  const keys = new Keys('ptest');
  const repo = new AttributionRepository(client, keys);
  const opts = { nowMs: NOW, holdMs: HOLD_DAYS * DAY_MS };
  const orderOf = (i: number, other = false): { order: NormalizedOrder; a: Attribution } => {
    const o = s.orders[i % s.orders.length]!;
    const id = `o${i % s.orders.length}`;
    const gross = other ? o.gross + 1 : o.gross;
    const order: NormalizedOrder = {
      ref: o.platform ? `@${o.target}:${id}` : id,
      orderId: id,
      source: o.platform ? 'platform_report' : 'partner',
      targetId: o.platform ? o.target : undefined,
      clickId: o.attributed && !o.platform ? `c${i}` : undefined,
      showId: undefined,
      externalShowId: o.platform ? `ext-${o.show}` : undefined,
      productId: o.product,
      createdAt: new Date(T0 + o.atMs).toISOString(),
      total: { amount: gross, currency: o.currency },
      lines: [],
    };
    const a: Attribution = o.attributed
      ? { attributed: true, via: o.platform ? 'platform_show' : 'click', showId: o.show, targetId: o.target, productId: o.product, clickId: order.clickId, rateBps: o.rate }
      : { attributed: false, reason: o.platform ? 'unknown_show' : 'no_click', clickId: undefined };
    return { order, a };
  };
  const steps = s.events.map((e) => async (): Promise<void> => {
    const { order, a } = orderOf(e.i, e.kind === 'order' && e.other);
    if (e.kind === 'order') await repo.applyOrder(partnerId, order, a, opts);
    else if (e.kind === 'refund') {
      const currency = e.wrongCurrency ? (order.total.currency === 'USD' ? 'JPY' : 'USD') : order.total.currency;
      await repo.applyRefund(partnerId, order.ref, { id: e.id, amount: Math.max(1, Math.floor((order.total.amount * e.shareBps) / 10_000)), currency, createdAt: new Date(T0).toISOString() }, opts);
    } else if (e.kind === 'floor') {
      const amount = e.void ? order.total.amount : Math.max(1, Math.floor((order.total.amount * e.shareBps) / 10_000));
      await repo.applyOrder(partnerId, order, a, { ...opts, refundedFloor: { amount, currency: order.total.currency, occurredAt: new Date(NOW).toISOString() } });
    } else {
      await repo.reattribute(partnerId, order.ref, { attributed: true, via: 'platform_show', showId: e.show, targetId: 't1', productId: undefined, clickId: undefined, rateBps: e.rate }, opts);
    }
  });
  for (let i = 0; i < steps.length; i += s.batch) await Promise.all(steps.slice(i, i + s.batch).map((f) => f()));

  const stored: StoredOrder[] = [];
  for await (const page of repo.scan(partnerId)) stored.push(...page);

  // Money: every stored order's commission is round-half-up(net × rate), its entries sum to it.
  for (const o of stored) {
    const net = o.attributed ? applyBps(Math.max(o.gross - o.refunded, 0), o.rateBps) : 0;
    expect(o.accrued - o.reversed).toBe(net);
    const sum = o.entries.reduce((t, e) => t + (e.kind === 'accrual' ? e.amount : -e.amount), 0);
    expect(sum).toBe(net);
  }

  // The raw aggregates equal the sum over the orders (per day × dims and per show × day × dims).
  const days = await repo.days(partnerId, { fromMs: -Infinity, toMs: Infinity });
  const aggTotal = (rows: { orders: number; gross: Amount; refunded: Amount; commission: Amount }[]): Amount[] =>
    rows.reduce<Amount[]>((t, r) => [plus(t[0]!, r.orders), plus(t[1]!, r.gross), plus(t[2]!, r.refunded), plus(t[3]!, r.commission)], [0, 0, 0, 0]);
  const sumOrders = (os: StoredOrder[]): number[] =>
    os.reduce((t, o) => [t[0]! + 1, t[1]! + o.gross, t[2]! + Math.min(o.refunded, o.gross), t[3]! + (o.attributed ? applyBps(Math.max(o.gross - o.refunded, 0), o.rateBps) : 0)], [0, 0, 0, 0]);
  for (const day of days) {
    const rows = await repo.dayAggregates(partnerId, [day]);
    const mine = stored.filter((o) => Math.floor(o.createdAtMs / DAY_MS) === day);
    for (const r of rows) {
      const group = mine.filter((o) => o.attributed === r.attributed && o.showId === r.showId && o.targetId === r.targetId && o.productId === r.productId && o.currency === r.currency);
      expect(aggTotal([r])).toEqual(sumOrders(group));
    }
    expect(aggTotal(rows)).toEqual(sumOrders(mine));
  }
  for (const show of ['s1', 's2']) {
    const byDay = await repo.showAggregates(partnerId, show);
    const all = [...byDay.values()].flat();
    expect(aggTotal(all)).toEqual(sumOrders(stored.filter((o) => o.attributed && o.showId === show)));
  }

  // Reports for any period (and show / target filters) equal the same report over every order.
  const svc = new AttributionService({ repo, partners: null as never, links: null as never, externalShows: null as never, log: pino({ level: 'silent' }), holdDays: HOLD_DAYS, now: () => NOW });
  for (const [a, len, open] of s.periods) {
    const fromMs = open ? -Infinity : T0 + a;
    const toMs = open ? Infinity : T0 + a + len;
    const inRange = stored.filter((o) => o.createdAtMs >= fromMs && o.createdAtMs < toMs).map((o) => orderAgg(o, NOW, HOLD_DAYS * DAY_MS));
    const range = open ? {} : { fromMs, toMs };
    expect(await svc.report(partnerId, range)).toEqual(aggregate(inRange, {}));
    expect(await svc.report(partnerId, { ...range, targetId: 't1' })).toEqual(aggregate(inRange, { targetId: 't1' }));
    expect(await svc.report(partnerId, { ...range, showId: 's1' })).toEqual(aggregate(inRange, { showId: 's1' }));
    expect(await svc.showReport(partnerId, 's2', range)).toEqual(showBreakdown('s2', inRange));
  }
}

let inflight: Promise<void> | undefined;
test('aggregates equal the sum over the orders; reports from aggregates equal reports over every order', async () => {
  await fc.assert(
    fc.asyncProperty(scenario, (s) => (inflight = check(s))),
    // 60 runs take ~3 s on one Redis; running out of time before all runs passed is a failure, not a pass.
    { numRuns: runsFor(60), interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
  );
}, 90_000);
afterAll(async () => {
  await inflight?.catch(() => undefined);
});
