/**
 * The ledger's packed record read back (src/store/attribution.repository.ts: `unpackOrder`,
 * `unpackAttribution`, `toRow`, `toStored`, the refund list and the entries, and the aggregate
 * readers `dayAggregates` / `showAggregates`), through the real Lua steps on a real redis-server:
 * for generated orders — odd strings in every id (separators, quotes, JSON text, unicode,
 * `__proto__`), platform and partner refs, canonical and other creation times, lines, attributed or
 * not, refunds before and after their order, in another currency, repeated, a platform's cumulative
 * refund — what the repository gives back is the order and attribution that went in and the totals,
 * entries and aggregates a model computes. Exact-encoding examples are in
 * test/unit/ledger.codec.test.ts. Written for the `ledger-codec` mutation module (docs/testing.md).
 */
import fc from 'fast-check';
import { applyBps, plus } from '../../src/domain/money.js';
import type { Attribution, LedgerEntry, NormalizedOrder, OrderLine, UnattributedReason } from '../../src/domain/order.js';
import { AttributionRepository, DAY_MS, dayOf, ledgerBucket, type AggRow, type OrderRow, type StoredOrder } from '../../src/store/attribution.repository.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { runsFor, startTestRedis } from '../helpers/redis-cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';

const NOW = Date.parse('2026-11-10T12:00:00.000Z');
const HOLD = DAY_MS;
const OPTS = { nowMs: NOW, holdMs: HOLD };
const NOW_ISO = new Date(NOW).toISOString();

let redis: TestRedis;
let client: RedisClient;
let repo: AttributionRepository;
beforeAll(async () => {
  redis = await startTestRedis();
  client = redis.client();
  repo = new AttributionRepository(client, new Keys('codec'));
});
afterAll(async () => {
  client?.disconnect();
  await redis?.destroy();
});

let partnerSeq = 0;
const nextPartner = (): string => `cp${partnerSeq++}`;

const odd = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', '', ':', '@', '@x:y', '"', '\\', '{"s":"w"}', ',"n":"1"}', 'é', '🙂🙂', 'a b', '\n', '\u0000', 'null', '1'),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);
const someOdd = odd.filter((s) => s !== '');

const lineArb: fc.Arbitrary<OrderLine> = fc.record({
  productId: odd,
  quantity: fc.integer({ min: 1, max: 5 }),
  amount: fc.record({ amount: fc.integer({ min: 0, max: 100_000 }), currency: fc.constantFrom('USD', 'JPY', 'EUR') }),
});

const orderArb = fc.record({
  refKind: fc.constantFrom('own' as const, 'platform' as const, 'foreign' as const),
  id: odd,
  target: odd,
  source: fc.constantFrom('platform_webhook' as const, 'platform_report' as const),
  otherTarget: fc.option(odd, { nil: undefined }),
  clickId: fc.option(odd, { nil: undefined }),
  showId: fc.option(odd, { nil: undefined }),
  externalShowId: fc.option(odd, { nil: undefined }),
  productId: fc.option(odd, { nil: undefined }),
  atMs: fc.integer({ min: -3 * DAY_MS, max: 2 * DAY_MS }),
  timeForm: fc.constantFrom('canonical' as const, 'seconds' as const, 'offset' as const),
  amount: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 2 ** 45 })),
  currency: fc.constantFrom('USD', 'JPY', 'EUR'),
  lines: fc.oneof(fc.constant('trivial' as const), fc.array(lineArb, { maxLength: 3 })),
  attribution: fc.oneof(
    fc.record({
      attributed: fc.constant(true as const),
      via: fc.constantFrom('click' as const, 'platform_show' as const),
      showId: odd,
      targetId: odd,
      productId: fc.option(someOdd, { nil: undefined }),
      rateBps: fc.integer({ min: 0, max: 10_000 }),
      note: fc.option(odd, { nil: undefined }),
    }),
    fc.record({ attributed: fc.constant(false as const), reason: fc.constantFrom<UnattributedReason>('no_click', 'unknown_click', 'outside_window', 'unknown_show') }),
  ),
  refunds: fc.uniqueArray(
    fc.record({ id: someOdd.filter((s) => !s.startsWith('pf:')), shareBps: fc.integer({ min: 1, max: 12_000 }), otherCurrency: fc.boolean(), minute: fc.integer({ min: 0, max: 20_000 }), beforeOrder: fc.boolean() }),
    { selector: (r) => r.id, maxLength: 4 },
  ),
  repeatRefund: fc.boolean(),
  floorBps: fc.option(fc.integer({ min: 1, max: 12_000 }), { nil: undefined }),
});
type OrderSpec = typeof orderArb extends fc.Arbitrary<infer T> ? T : never;

interface Built {
  order: NormalizedOrder;
  a: Attribution;
  refunds: { id: string; amount: number; currency: string; createdAt: string; beforeOrder: boolean }[];
  floor: number | undefined;
}

function build(s: OrderSpec): Built {
  const ms = NOW + s.atMs;
  const createdAt =
    s.timeForm === 'canonical'
      ? new Date(ms).toISOString()
      : s.timeForm === 'seconds'
        ? new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
        : new Date(ms + 2 * 3_600_000).toISOString().replace(/Z$/, '+02:00');
  const platform = s.refKind === 'platform';
  const ref = platform ? `@${s.target}:${s.id}` : s.refKind === 'own' ? s.id : `#${s.id}`;
  const total = { amount: s.amount, currency: s.currency };
  const lines: OrderLine[] = s.lines === 'trivial' ? [{ productId: s.productId ?? 'p', quantity: 1, amount: total }] : s.lines;
  const order: NormalizedOrder = {
    ref,
    orderId: s.id,
    source: platform ? s.source : 'partner',
    targetId: platform ? s.target : s.otherTarget,
    clickId: s.clickId,
    showId: s.showId,
    externalShowId: s.externalShowId,
    productId: s.productId,
    createdAt,
    total,
    lines,
  };
  const a: Attribution = s.attribution.attributed
    ? { ...s.attribution, clickId: s.clickId }
    : { attributed: false, reason: s.attribution.reason, clickId: s.clickId };
  const other = s.currency === 'USD' ? 'EUR' : 'USD';
  const refunds = s.refunds.map((r, i) => ({
    id: r.id,
    amount: Math.max(1, Math.floor((s.amount * r.shareBps) / 10_000)),
    currency: r.otherCurrency ? other : s.currency,
    createdAt: new Date(NOW - 5 * DAY_MS + r.minute * 60_000 + i).toISOString(),
    beforeOrder: r.beforeOrder,
  }));
  const floor = s.floorBps === undefined ? undefined : Math.max(1, Math.floor((s.amount * s.floorBps) / 10_000));
  return { order, a, refunds, floor };
}

const FLOOR_AT = '2026-11-10T11:00:00+00:00';

/** Applies the order, its refunds and its cumulative refund in the spec's order. */
async function apply(partnerId: string, b: Built, s: OrderSpec): Promise<void> {
  const asInput = (r: Built['refunds'][number]): { id: string; amount: number; currency: string; createdAt: string } => ({ id: r.id, amount: r.amount, currency: r.currency, createdAt: r.createdAt });
  const early = b.refunds.filter((r) => r.beforeOrder);
  for (const r of early) await repo.applyRefund(partnerId, b.order.ref, asInput(r), OPTS);
  if (early.length > 0) {
    // only refunds are stored: no order to read yet
    expect(await repo.get(partnerId, b.order.ref)).toBeNull();
    expect((await repo.getMany(partnerId, [b.order.ref])).size).toBe(0);
  }
  await repo.applyOrder(partnerId, b.order, b.a, OPTS);
  for (const r of b.refunds.filter((x) => !x.beforeOrder)) await repo.applyRefund(partnerId, b.order.ref, asInput(r), OPTS);
  const first = b.refunds[0];
  if (s.repeatRefund && first) await repo.applyRefund(partnerId, b.order.ref, { ...asInput(first), amount: first.amount + 1 }, OPTS);
  if (b.floor !== undefined) {
    // the platform reports the order again (other content: first write wins) with its cumulative refund
    const again = { ...b.order, total: { ...b.order.total, amount: b.order.total.amount + 1 } };
    await repo.applyOrder(partnerId, again, b.a, { ...OPTS, refundedFloor: { amount: b.floor, currency: b.order.total.currency, occurredAt: FLOOR_AT } });
  }
}

/** What the repository must give back for the order: a model of the ledger's steps. */
function model(b: Built): StoredOrder {
  const { order, a } = b;
  const gross = order.total.amount;
  const currency = order.total.currency;
  const createdAtMs = Date.parse(order.createdAt);
  const against = NOW >= createdAtMs + HOLD ? 'approved' : 'pending';
  const rate = a.attributed ? a.rateBps : 0;
  const entries: LedgerEntry[] = [];
  let refunded = 0;
  let accrued = 0;
  let reversed = 0;
  let mismatched = 0;
  if (a.attributed) {
    accrued = applyBps(gross, rate);
    entries.push({ seq: 1, key: `accrual:${order.ref}`, kind: 'accrual', amount: accrued, currency, base: gross, against, occurredAt: order.createdAt, recordedAt: NOW_ISO });
  }
  const listed: (StoredOrder['refunds'][number] & { ms: number })[] = [];
  const applyOne = (id: string, amount: number, cur: string, occurredAt: string, ms: number): void => {
    listed.push({ id, amount, currency: cur, createdAt: occurredAt, applied: cur === currency, ms });
    if (cur !== currency) {
      mismatched++;
      return;
    }
    const before = refunded;
    refunded += amount;
    if (!a.attributed) return;
    const rev = applyBps(Math.max(gross - before, 0), rate) - applyBps(Math.max(gross - refunded, 0), rate);
    if (rev > 0) {
      entries.push({ seq: entries.length + 1, key: `reversal:${id}`, kind: 'reversal', amount: rev, currency, base: amount, refundId: id, against, occurredAt, recordedAt: NOW_ISO });
      reversed += rev;
    }
  };
  const early = b.refunds.filter((r) => r.beforeOrder).sort((x, y) => Date.parse(x.createdAt) - Date.parse(y.createdAt));
  for (const r of [...early, ...b.refunds.filter((r) => !r.beforeOrder)]) applyOne(r.id, r.amount, r.currency, r.createdAt, Date.parse(r.createdAt));
  if (b.floor !== undefined && b.floor > refunded) applyOne(`pf:${b.floor}`, b.floor - refunded, currency, FLOOR_AT, 0);
  const row: OrderRow = {
    ref: order.ref,
    attributed: a.attributed,
    showId: a.attributed ? a.showId : '',
    targetId: a.attributed ? a.targetId : (order.targetId ?? ''),
    productId: (a.attributed ? a.productId : order.productId) ?? '',
    currency,
    gross,
    refunded,
    accrued,
    reversed,
    createdAtMs,
  };
  return {
    ...row,
    order,
    attribution: a,
    rateBps: rate,
    source: order.source,
    recordedAt: NOW_ISO,
    mismatched,
    notified: false,
    refunds: listed.sort((x, y) => x.ms - y.ms).map(({ ms: _ms, ...r }) => r),
    entries,
  };
}

const rowOf = (s: StoredOrder): OrderRow => ({
  ref: s.ref,
  attributed: s.attributed,
  showId: s.showId,
  targetId: s.targetId,
  productId: s.productId,
  currency: s.currency,
  gross: s.gross,
  refunded: s.refunded,
  accrued: s.accrued,
  reversed: s.reversed,
  createdAtMs: s.createdAtMs,
});

/** The aggregate rows the model's orders give, summed per group. */
function groups(orders: StoredOrder[], dims: (o: StoredOrder) => unknown[], showOnly?: string): AggRow[] {
  const map = new Map<string, AggRow>();
  for (const o of orders) {
    if (showOnly !== undefined && !(o.attributed && o.showId === showOnly)) continue;
    const k = JSON.stringify(dims(o));
    const r = map.get(k) ?? { attributed: o.attributed, showId: o.showId, targetId: o.targetId, productId: o.productId, currency: o.currency, orders: 0, gross: 0, refunded: 0, commission: 0, pending: 0, approved: 0 };
    r.orders += 1;
    r.gross = plus(r.gross, o.gross);
    r.refunded = plus(r.refunded, Math.min(o.refunded, o.gross));
    r.commission = plus(r.commission, o.accrued - o.reversed);
    map.set(k, r);
  }
  return [...map.values()];
}
const byKey = (rows: AggRow[]): AggRow[] => [...rows].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));

describe('the packed record read back', () => {
  it('gives back the order, its attribution, totals, refunds and entries, and the aggregates, for any orders', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(orderArb, { minLength: 1, maxLength: 3, selector: (s) => build(s).order.ref }), async (specs) => {
        const partnerId = nextPartner();
        const built = specs.map(build);
        for (let i = 0; i < specs.length; i++) await apply(partnerId, built[i]!, specs[i]!);
        const expected = built.map(model);
        // strictly: the order and attribution read back carry no key the stored one did not have (an
        // `undefined`-valued key would still override a default when spread)
        for (const e of expected) expect(await repo.get(partnerId, e.ref)).toStrictEqual(JSON.parse(JSON.stringify(e)));
        const many = await repo.getMany(partnerId, [...expected.map((e) => e.ref), '#missing']);
        expect([...many.keys()].sort()).toEqual(expected.map((e) => e.ref).sort());
        const marked = await repo.lookupAndMark(partnerId, expected.map((e) => e.ref), 'm');
        expect(marked.sort((x, y) => (x.row.ref < y.row.ref ? -1 : 1))).toEqual(expected.map((e) => ({ row: rowOf(e), named: false })).sort((x, y) => (x.row.ref < y.row.ref ? -1 : 1)));

        // aggregates: per day over every order, per show over its attributed orders
        const days = [...new Set(expected.map((e) => dayOf(e.createdAtMs)))];
        for (const day of days) {
          const mine = expected.filter((e) => dayOf(e.createdAtMs) === day);
          expect(byKey(await repo.dayAggregates(partnerId, [day]))).toEqual(byKey(groups(mine, (o) => [o.attributed, o.showId, o.targetId, o.productId, o.currency])));
        }
        expect(byKey(await repo.dayAggregates(partnerId, days))).toEqual(byKey(groups(expected, (o) => [o.attributed, o.showId, o.targetId, o.productId, o.currency])));
        for (const show of new Set(expected.filter((e) => e.attributed).map((e) => e.showId))) {
          const got = await repo.showAggregates(partnerId, show);
          const want = new Map<number, AggRow[]>();
          for (const day of days) {
            const rows = groups(
              expected.filter((e) => dayOf(e.createdAtMs) === day),
              (o) => [o.targetId, o.productId, o.currency],
              show,
            );
            if (rows.length > 0) want.set(day, byKey(rows));
          }
          expect(new Map([...got].map(([d, rows]) => [d, byKey(rows)]))).toEqual(want);
        }
      }),
      { numRuns: runsFor(40) },
    );
  });
});

describe('examples', () => {
  const base = (ref: string, over: Partial<NormalizedOrder> = {}): NormalizedOrder => ({
    ref,
    orderId: ref,
    source: 'partner',
    targetId: undefined,
    clickId: 'k',
    showId: undefined,
    externalShowId: undefined,
    productId: 'p1',
    createdAt: '2026-11-09T08:00:00.000Z',
    total: { amount: 10_000, currency: 'USD' },
    lines: [],
    ...over,
  });
  const attributed = (show = 's1', rateBps = 1000): Extract<Attribution, { attributed: true }> => ({ attributed: true, via: 'click', showId: show, targetId: 't1', productId: 'p1', clickId: 'k', rateBps });

  it('gives back an order id that only looks like a platform ref of the order’s own target', async () => {
    const P = nextPartner();
    // a partner order whose id starts with `@<its target>:`: the ref is the id, which the record must keep
    const o = base('@t1:9', { targetId: 't1' });
    await repo.applyOrder(P, o, attributed(), OPTS);
    expect((await repo.get(P, '@t1:9'))?.order).toEqual(o);
    const p = base('@t1:@t1:9', { orderId: '@t1:9', targetId: 't1', source: 'platform_webhook' });
    await repo.applyOrder(P, p, attributed(), OPTS);
    expect((await repo.get(P, '@t1:@t1:9'))?.order).toEqual(p);
  });

  it('lists refunds of the same time by id, and those of no time (a platform’s cumulative refund) first', async () => {
    const P = nextPartner();
    const at = '2026-11-09T09:00:00.000Z';
    for (const id of ['b', 'c', 'a']) await repo.applyRefund(P, 'o1', { id, amount: 100, currency: 'USD', createdAt: at }, OPTS);
    await repo.applyOrder(P, base('o1'), attributed(), { ...OPTS, refundedFloor: { amount: 500, currency: 'USD', occurredAt: FLOOR_AT } });
    const s = await repo.get(P, 'o1');
    expect(s?.refunds.map((r) => [r.id, r.amount])).toEqual([
      ['pf:500', 200],
      ['a', 100],
      ['b', 100],
      ['c', 100],
    ]);
    expect(s?.refunded).toBe(500);
    expect(s?.entries.map((e) => [e.seq, e.key, e.amount, e.refundId ?? null])).toEqual([
      [1, 'accrual:o1', 1000, null],
      [2, 'reversal:a', 10, 'a'],
      [3, 'reversal:b', 10, 'b'],
      [4, 'reversal:c', 10, 'c'],
      [5, 'reversal:pf:500', 20, 'pf:500'],
    ]);
  });

  it('sums aggregates of one group over the buckets, and leaves out a group whose orders moved away', async () => {
    const P = nextPartner();
    // 'o1' and 'a' are in different buckets (29, 12); 'o1' and '__proto__' share bucket 29
    for (const ref of ['o1', 'a', '__proto__']) await repo.applyOrder(P, base(ref), attributed(), OPTS);
    // stored unattributed, then attributed after all: its unattributed group drops to 0 orders
    await repo.applyOrder(P, base('late'), { attributed: false, reason: 'unknown_show', clickId: 'k' }, OPTS);
    await repo.applyRefund(P, 'a', { id: 'r1', amount: 2500, currency: 'USD', createdAt: '2026-11-09T09:00:00.000Z' }, OPTS);
    const day = dayOf(Date.parse('2026-11-09T08:00:00.000Z'));
    const before = await repo.dayAggregates(P, [day]);
    expect(byKey(before)).toEqual(
      byKey([
        { attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', orders: 3, gross: 30_000, refunded: 2500, commission: 2750, pending: 0, approved: 0 },
        { attributed: false, showId: '', targetId: '', productId: 'p1', currency: 'USD', orders: 1, gross: 10_000, refunded: 0, commission: 0, pending: 0, approved: 0 },
      ]),
    );
    expect(await repo.reattribute(P, 'late', attributed('s2', 500), OPTS)).toEqual({ accrued: 500 });
    expect(byKey(await repo.dayAggregates(P, [day]))).toEqual(
      byKey([
        { attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', orders: 3, gross: 30_000, refunded: 2500, commission: 2750, pending: 0, approved: 0 },
        { attributed: true, showId: 's2', targetId: 't1', productId: 'p1', currency: 'USD', orders: 1, gross: 10_000, refunded: 0, commission: 500, pending: 0, approved: 0 },
      ]),
    );
    // two days of one show; the other show's orders are not in it
    await repo.applyOrder(P, base('next', { createdAt: '2026-11-10T01:00:00.000Z' }), attributed(), OPTS);
    const show = await repo.showAggregates(P, 's1');
    expect([...show.keys()].sort()).toEqual([day, day + 1]);
    expect(show.get(day)).toEqual([{ attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', orders: 3, gross: 30_000, refunded: 2500, commission: 2750, pending: 0, approved: 0 }]);
    expect(show.get(day + 1)).toEqual([{ attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', orders: 1, gross: 10_000, refunded: 0, commission: 1000, pending: 0, approved: 0 }]);
    expect([...(await repo.showAggregates(P, 's2')).entries()]).toEqual([[day, [{ attributed: true, showId: 's2', targetId: 't1', productId: 'p1', currency: 'USD', orders: 1, gross: 10_000, refunded: 0, commission: 500, pending: 0, approved: 0 }]]]);
    expect((await repo.showAggregates(P, 'none')).size).toBe(0);
    expect(await repo.dayAggregates(P, [])).toEqual([]);
  });

  it('runs the steps sent at one moment as each would run alone (one Redis: one batch call), and a failing step fails alone', async () => {
    const P = nextPartner();
    const Q = nextPartner();
    const refs = Array.from({ length: 40 }, (_, i) => `b${i}`);
    // the same orders and refunds, one at a time under Q and all at once under P
    const steps = (p: string): (() => Promise<unknown>)[] => [
      ...refs.map((ref, i) => () => repo.applyOrder(p, base(ref), i % 2 ? attributed() : { attributed: false, reason: 'no_click', clickId: undefined }, OPTS)),
      ...refs.slice(0, 10).map((ref) => () => repo.applyRefund(p, ref, { id: 'r', amount: 3000, currency: 'USD', createdAt: '2026-11-09T09:00:00.000Z' }, OPTS)),
      () => repo.applyOrder(p, base('b1'), attributed('s2'), OPTS), // repeated: first write wins
    ];
    const alone: unknown[] = [];
    for (const s of steps(Q)) alone.push(await s());
    expect(await Promise.all(steps(P).map((s) => s()))).toEqual(alone);
    const view = async (p: string): Promise<StoredOrder[]> => [...(await repo.getMany(p, refs))].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, o]) => o);
    expect((await view(P)).length).toBe(refs.length);
    expect(await view(P)).toEqual(await view(Q));
    const day = dayOf(Date.parse('2026-11-09T08:00:00.000Z'));
    expect(byKey(await repo.dayAggregates(P, [day]))).toEqual(byKey(await repo.dayAggregates(Q, [day])));

    // one bucket's order hash is not a hash: its steps answer errors of their own, the others are stored
    const R = nextPartner();
    const badRef = refs[0]!;
    await client.set(new Keys('codec').ledgerOrders(R, ledgerBucket(badRef)), 'not a hash');
    const others = refs.filter((r) => ledgerBucket(r) !== ledgerBucket(badRef));
    const results = await Promise.allSettled(refs.map((ref) => repo.applyOrder(R, base(ref), attributed(), OPTS)));
    results.forEach((r, i) => expect(r.status).toBe(ledgerBucket(refs[i]!) === ledgerBucket(badRef) ? 'rejected' : 'fulfilled'));
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect([...(await repo.getMany(R, others)).keys()].sort()).toEqual([...others].sort());
  });
});
