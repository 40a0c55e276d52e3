/**
 * Desired state as LWW registers (src/domain/desired-state.ts; the external contract §3 "events may arrive
 * duplicated and out of order: the end state must equal that of in-order delivery, later occurredAt
 * wins per show and per pin").
 *
 * The registers are applied through an in-test model of the ingest Lua script in
 * src/store/show.repository.ts (inbox dedupe by webhook id; a register is replaced only when the new
 * order key is strictly greater; `v` counts changes). Properties:
 *  1. any permutation of the events, with duplicates, derives the same desired show as in-order delivery;
 *  2. that show equals an independent in-order "apply each event to a show document" reference, i.e.
 *     the latest occurredAt (webhook id breaking ties) wins per show, per pin and per product.
 */
import fc from 'fast-check';
import { deriveDesired, orderKey, productFields, productOf, registerFor, type DesiredShow } from '../../src/domain/desired-state.js';
import { PartnerEventSchema, type PartnerEvent, type Product, type Show } from '../../src/domain/events.js';

const SHOW_ID = 'show-1';
const PRODUCT_IDS = ['a', 'b', 'c', 'd'] as const;
const BASE = Date.parse('2026-11-24T18:00:00Z');

interface Delivery {
  webhookId: string;
  event: PartnerEvent;
}

/** The ingest Lua script, in memory: HGETALL-shaped hash + inbox. */
class RegisterModel {
  readonly hash: Record<string, string> = {};
  private readonly inbox = new Set<string>();

  deliver(d: Delivery): void {
    if (this.inbox.has(d.webhookId)) return;
    this.inbox.add(d.webhookId);
    const reg = registerFor(d.event);
    if (!reg) return;
    expect(reg.showId).toBe(SHOW_ID);
    const key = orderKey(d.event.occurredAt, d.webhookId);
    const cur = this.hash[`${reg.write.field}@`];
    if (cur === undefined || cur < key) {
      this.hash[reg.write.field] = reg.write.value;
      this.hash[`${reg.write.field}@`] = key;
      this.hash['v'] = String(Number(this.hash['v'] ?? '0') + 1);
    }
  }
}

/** Comparable form (version counts applied changes, which legitimately depends on arrival order). */
function normalize(d: DesiredShow | null): unknown {
  if (!d) return null;
  return {
    showId: d.showId,
    title: d.title,
    description: d.description,
    scheduledAt: d.scheduledAt,
    state: d.state,
    sourceUrl: d.sourceUrl,
    products: [...d.products.entries()].sort(([a], [b]) => a.localeCompare(b)),
    pinned: [...d.pinned].sort(),
    pinUniverse: [...d.pinUniverse].sort(),
  };
}

/** Independent reference: apply each event, in (occurredAt, webhookId) order, to a show document. */
function inOrderReference(deliveries: Delivery[]): unknown {
  const ordered = [...new Map(deliveries.map((d) => [d.webhookId, d])).values()].sort((x, y) => {
    const tx = exactInstant(x.event.occurredAt);
    const ty = exactInstant(y.event.occurredAt);
    return tx < ty ? -1 : tx > ty ? 1 : x.webhookId < y.webhookId ? -1 : x.webhookId > y.webhookId ? 1 : 0;
  });
  let show: Show | null = null;
  let products = new Map<string, Product>();
  let pinned = new Set<string>();
  for (const { event } of ordered) {
    switch (event.type) {
      case 'show.scheduled':
      case 'show.updated':
      case 'show.live':
      case 'show.ended':
      case 'show.cancelled': {
        const implied = { 'show.live': 'live', 'show.ended': 'ended', 'show.cancelled': 'cancelled' } as const;
        show = { ...event.data.show, state: event.type in implied ? implied[event.type as keyof typeof implied] : event.data.show.state };
        products = new Map(event.data.show.products.map((p) => [p.id, p]));
        pinned = new Set(event.data.show.pinnedProductIds);
        break;
      }
      case 'product.pinned':
        pinned.add(event.data.productId);
        break;
      case 'product.unpinned':
        pinned.delete(event.data.productId);
        break;
      case 'product.updated':
        products.set(event.data.product.id, event.data.product);
        break;
      default:
        break;
    }
  }
  if (!show) return null;
  return {
    title: show.title,
    description: show.description,
    scheduledAt: show.scheduledAt,
    state: show.state,
    sourceUrl: show.sourceUrl,
    products: [...products.entries()].sort(([a], [b]) => a.localeCompare(b)),
    pinned: [...pinned].sort(),
  };
}

// ---- generators -------------------------------------------------------------------------------

/**
 * An occurredAt as the exact instant it names, in nanoseconds (a `Z` time with up to 9 fraction digits,
 * as the generator makes them): Date.parse keeps milliseconds only, and a partner's clock may say more.
 */
function exactInstant(occurredAt: string): bigint {
  const m = /^(.{19})(?:\.(\d{1,9}))?Z$/.exec(occurredAt);
  if (!m) throw new Error(`unexpected occurredAt ${occurredAt}`);
  return BigInt(Date.parse(`${m[1]!}Z`)) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * Few distinct instants, so that ties in occurredAt are frequent; some differ below the millisecond
 * only (microsecond or nanosecond clocks: Python's isoformat, Java's Instant, Go's RFC3339Nano), some
 * are the same instant written with more digits ('.0004' and '.000400').
 */
const occurredAtArb = fc
  .tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom('', '.000', '.0001', '.0004', '.000400', '.0009', '.000000001', '.001'))
  .map(([s, fraction]) => `${new Date(BASE + s * 1000).toISOString().slice(0, 19)}${fraction}Z`);
const productIdArb = fc.constantFrom(...PRODUCT_IDS);
const productArb = (id: string) =>
  fc.record({
    id: fc.constant(id),
    title: fc.constantFrom('Lip Oil', 'Blush', 'Serum', 'Mascara'),
    price: fc.record({ amount: fc.integer({ min: 0, max: 10_000 }), currency: fc.constant('USD') }),
    url: fc.constant(`https://shop.example.com/${id}`),
  });
const showArb = fc.record({
  id: fc.constant(SHOW_ID),
  title: fc.constantFrom('Holiday drop', 'Glow hour', 'Live at 6', 'Last call'),
  scheduledAt: fc.constantFrom('2026-11-24T18:00:00Z', '2026-11-25T18:00:00Z'),
  state: fc.constantFrom('scheduled', 'live', 'ended', 'cancelled'),
  products: fc.subarray([...PRODUCT_IDS]).chain((ids) => fc.tuple(...ids.map((id) => productArb(id)))),
  pinnedProductIds: fc.subarray([...PRODUCT_IDS]),
});

const eventArb: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.record({ type: fc.constantFrom('show.scheduled', 'show.updated', 'show.live', 'show.ended', 'show.cancelled'), occurredAt: occurredAtArb, data: fc.record({ show: showArb }) }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constantFrom('product.pinned', 'product.unpinned'), occurredAt: occurredAtArb, data: fc.record({ showId: fc.constant(SHOW_ID), productId: productIdArb }) }), weight: 4 },
  { arbitrary: fc.record({ type: fc.constant('product.updated'), occurredAt: occurredAtArb, data: productIdArb.chain((id) => fc.record({ showId: fc.constant(SHOW_ID), product: productArb(id) })) }), weight: 2 },
);

/** Distinct deliveries (unique webhook ids; the events go through the real schema). */
const deliveriesArb = fc.array(eventArb, { minLength: 1, maxLength: 14 }).map((events) =>
  events.map((e, i): Delivery => ({ webhookId: `w${String(i).padStart(2, '0')}${'xyz'[i % 3]}`, event: PartnerEventSchema.parse(e) })),
);

/** The deliveries plus duplicates, in an arbitrary arrival order. */
const scenarioArb = deliveriesArb.chain((deliveries) =>
  fc
    .array(fc.nat({ max: deliveries.length - 1 }), { maxLength: deliveries.length })
    .chain((dups) => {
      const all = [...deliveries.keys(), ...dups];
      return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
    })
    .map((order) => ({ deliveries, arrival: order.map((i) => deliveries[i]!) })),
);

function derive(deliveries: Delivery[]): { model: RegisterModel; desired: DesiredShow | null } {
  const model = new RegisterModel();
  for (const d of deliveries) model.deliver(d);
  return { model, desired: deriveDesired(SHOW_ID, model.hash) };
}

function inOrder(deliveries: Delivery[]): Delivery[] {
  return [...deliveries].sort((x, y) => (orderKey(x.event.occurredAt, x.webhookId) < orderKey(y.event.occurredAt, y.webhookId) ? -1 : 1));
}

// ---- properties --------------------------------------------------------------------------------

describe('desired state under duplicates and reordering', () => {
  test('any permutation with duplicates derives the same desired show as in-order delivery', () => {
    fc.assert(
      fc.property(scenarioArb, ({ deliveries, arrival }) => {
        const expected = derive(inOrder(deliveries));
        const got = derive(arrival);
        expect(normalize(got.desired)).toEqual(normalize(expected.desired));
        // The registers themselves agree (apart from the change counter).
        const strip = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'v'));
        expect(strip(got.model.hash)).toEqual(strip(expected.model.hash));
      }),
      { numRuns: 400 },
    );
  });

  test('the result is what in-order application of each event gives: the last occurredAt wins per show, pin and product', () => {
    fc.assert(
      fc.property(scenarioArb, ({ deliveries, arrival }) => {
        const got = normalize(derive(arrival).desired) as Record<string, unknown> | null;
        const ref = inOrderReference(deliveries);
        if (ref === null) {
          expect(got).toBeNull();
          return;
        }
        const { showId: _s, pinUniverse: _u, ...comparable } = got ?? {};
        expect(comparable).toEqual(ref);
      }),
      { numRuns: 400 },
    );
  });

  test('productOf (the tracked-link redirect) reads each product exactly as deriveDesired does', () => {
    fc.assert(
      fc.property(scenarioArb, ({ arrival }) => {
        const { model, desired } = derive(arrival);
        for (const id of PRODUCT_IDS) {
          const values = productFields(id).map((f) => model.hash[f] ?? null);
          expect(productOf(id, values)).toEqual(desired?.products.get(id));
        }
      }),
      { numRuns: 400 },
    );
  });

  test('a duplicate delivery never moves the version', () => {
    fc.assert(
      fc.property(deliveriesArb, fc.nat(), (deliveries, pick) => {
        const model = new RegisterModel();
        for (const d of deliveries) model.deliver(d);
        const v = model.hash['v'];
        model.deliver(deliveries[pick % deliveries.length]!);
        expect(model.hash['v']).toBe(v);
      }),
    );
  });
});

describe('worked examples', () => {
  const ev = (e: unknown): PartnerEvent => PartnerEventSchema.parse(e);
  const snap = (at: number, over: Partial<Show> = {}) =>
    ev({
      type: 'show.updated',
      occurredAt: new Date(BASE + at * 1000).toISOString(),
      data: {
        show: {
          id: SHOW_ID,
          title: `t${at}`,
          scheduledAt: '2026-11-24T18:00:00Z',
          state: 'scheduled',
          products: [{ id: 'a', title: 'A', price: { amount: 100, currency: 'USD' }, url: 'https://shop.example.com/a' }],
          pinnedProductIds: [],
          ...over,
        },
      },
    });
  const pin = (at: number, productId: string, on = true) => ev({ type: on ? 'product.pinned' : 'product.unpinned', occurredAt: new Date(BASE + at * 1000).toISOString(), data: { showId: SHOW_ID, productId } });

  test('a late, older snapshot does not roll the show back', () => {
    const { desired } = derive([
      { webhookId: 'w2', event: snap(2, { state: 'live' }) },
      { webhookId: 'w1', event: snap(1) },
    ]);
    expect(desired).toMatchObject({ title: 't2', state: 'live', version: 1 });
  });

  test('a pin newer than the snapshot wins; an older one loses to it', () => {
    const newer = derive([
      { webhookId: 'w1', event: snap(1) },
      { webhookId: 'w2', event: pin(2, 'a') },
    ]).desired;
    expect([...newer!.pinned]).toEqual(['a']);
    const older = derive([
      { webhookId: 'w2', event: snap(2) },
      { webhookId: 'w1', event: pin(1, 'a') },
    ]).desired;
    expect([...older!.pinned]).toEqual([]);
  });

  test('ties in occurredAt are broken by webhook id, whatever the arrival order', () => {
    const s = { webhookId: 'w0', event: snap(1) };
    const a = { webhookId: 'wa', event: pin(3, 'a', true) };
    const b = { webhookId: 'wb', event: pin(3, 'a', false) };
    expect([...derive([s, a, b]).desired!.pinned]).toEqual([]);
    expect([...derive([b, a, s]).desired!.pinned]).toEqual([]);
    // ...and the same tie against a snapshot: 'wz' > 'wb' > 'wa', so the snapshot with the greater id wins over both pin events.
    const s2 = { webhookId: 'wz', event: snap(3, { pinnedProductIds: ['a'] }) };
    expect([...derive([s, a, b, s2]).desired!.pinned]).toEqual(['a']);
    expect([...derive([s2, b, s, a]).desired!.pinned]).toEqual(['a']);
  });

  test('occurredAt below the millisecond counts: the later event wins even when its webhook id sorts first', () => {
    // One millisecond, two events 800 µs apart (a partner clock with microseconds): in-order delivery
    // ends the show. The order key kept milliseconds only, so the webhook id decided and 'wz' kept it live.
    const at = (fraction: string) => `${new Date(BASE + 2000).toISOString().slice(0, 19)}.123${fraction}Z`;
    const live = { webhookId: 'wz', event: ev({ ...snap(2, { state: 'live' }), type: 'show.live', occurredAt: at('1') }) };
    const ended = { webhookId: 'wa', event: ev({ ...snap(2, { state: 'ended' }), type: 'show.ended', occurredAt: at('9') }) };
    expect(derive([live, ended]).desired!.state).toBe('ended');
    expect(derive([ended, live]).desired!.state).toBe('ended');
    // A pin and an unpin of one product 1 µs apart, and a snapshot after both, the same way.
    const pinAt = (fraction: string, on: boolean, webhookId: string) => ({ webhookId, event: ev({ ...pin(3, 'a', on), occurredAt: `${new Date(BASE + 3000).toISOString().slice(0, 19)}.000${fraction}Z` }) });
    expect([...derive([{ webhookId: 'w0', event: snap(1) }, pinAt('001', true, 'wz'), pinAt('002', false, 'wa')]).desired!.pinned]).toEqual([]);
    expect([...derive([{ webhookId: 'w0', event: snap(1) }, pinAt('002', true, 'wa'), pinAt('001', false, 'wz')]).desired!.pinned]).toEqual(['a']);
  });

  test('a product update older than a snapshot that dropped the product does not bring it back', () => {
    const upd = ev({ type: 'product.updated', occurredAt: new Date(BASE + 1000).toISOString(), data: { showId: SHOW_ID, product: { id: 'z', title: 'Z', price: { amount: 5, currency: 'USD' }, url: 'https://shop.example.com/z' } } });
    for (const order of [
      [
        { webhookId: 'w1', event: upd },
        { webhookId: 'w2', event: snap(2) },
      ],
      [
        { webhookId: 'w2', event: snap(2) },
        { webhookId: 'w1', event: upd },
      ],
    ]) {
      expect([...derive(order).desired!.products.keys()]).toEqual(['a']);
    }
  });
});
