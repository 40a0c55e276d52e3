/**
 * The ledger's packed-order encoding and bucket hash (src/store/attribution.repository.ts), without
 * Redis: what `packOrder` leaves out of the record (what the ref, the total and the creation time
 * already say) and what it must keep, and the FNV-1a bucket of a ref (changing it moves orders to
 * other buckets: a migration). The round trip through the Lua scripts is in
 * test/integration/ledger.codec.test.ts. Written for the `ledger-codec` mutation module
 * (docs/testing.md "Mutation testing").
 */
import fc from 'fast-check';
import type { NormalizedOrder, OrderLine } from '../../src/domain/order.js';
import { DAY_MS, LEDGER_BUCKETS, dayOf, ledgerBucket, packOrder } from '../../src/store/attribution.repository.js';

const AT = '2026-11-01T10:00:00.000Z';

function order(over: Partial<NormalizedOrder> = {}): NormalizedOrder {
  return {
    ref: 'o1',
    orderId: 'o1',
    source: 'partner',
    targetId: undefined,
    clickId: undefined,
    showId: undefined,
    externalShowId: undefined,
    productId: undefined,
    createdAt: AT,
    total: { amount: 1000, currency: 'USD' },
    lines: [],
    ...over,
  };
}
const line = (over: Partial<OrderLine> = {}): OrderLine => ({ productId: 'p1', quantity: 1, amount: { amount: 1000, currency: 'USD' }, ...over });
const packed = (o: NormalizedOrder): Record<string, unknown> => JSON.parse(packOrder(o)) as Record<string, unknown>;

describe('packOrder: what the record keeps of an order', () => {
  it('a partner order whose ref is its id and whose time is canonical keeps only its source', () => {
    expect(packOrder(order())).toBe('{"s":"p"}');
  });

  it('each source has its one-letter code', () => {
    expect(packed(order({ source: 'partner' }))).toEqual({ s: 'p' });
    expect(packed(order({ source: 'platform_webhook' }))).toEqual({ s: 'w' });
    expect(packed(order({ source: 'platform_report' }))).toEqual({ s: 'r' });
  });

  it('the order id is left out only when the ref says it', () => {
    // platform ref `@target:id`
    expect(packed(order({ ref: '@yt:42', orderId: '42', targetId: 'yt', source: 'platform_report' }))).toEqual({ s: 'r', t: 'yt' });
    // a platform-looking ref of another target, or of another id, keeps the id
    expect(packed(order({ ref: '@yt:42', orderId: '42', targetId: 'fb', source: 'platform_report' }))).toEqual({ s: 'r', i: '42', t: 'fb' });
    expect(packed(order({ ref: '@yt:42', orderId: '43', targetId: 'yt', source: 'platform_report' }))).toEqual({ s: 'r', i: '43', t: 'yt' });
    // a partner order: the ref is the id, or the id is kept
    expect(packed(order({ ref: 'o1', orderId: 'o1' }))).toEqual({ s: 'p' });
    expect(packed(order({ ref: 'o1', orderId: 'o2' }))).toEqual({ s: 'p', i: 'o2' });
    // a target whose platform ref is not the ref, but whose id is: still derived
    expect(packed(order({ ref: 'o1', orderId: 'o1', targetId: 'yt' }))).toEqual({ s: 'p', t: 'yt' });
    // no target: `@undefined:id` is not a derivation
    expect(packed(order({ ref: '@undefined:o1', orderId: 'o1' }))).toEqual({ s: 'p', i: 'o1' });
  });

  it('optional fields are kept under their own letters, also when empty', () => {
    expect(packed(order({ targetId: 't', clickId: 'k', showId: 'h', externalShowId: 'x', productId: 'p' }))).toEqual({ s: 'p', t: 't', k: 'k', h: 'h', x: 'x', p: 'p' });
    expect(packed(order({ ref: '@:o1', targetId: '', clickId: '', showId: '', externalShowId: '', productId: '' }))).toEqual({ s: 'p', t: '', k: '', h: '', x: '', p: '' });
  });

  it('the creation time is left out only when the record’s milliseconds give it back exactly', () => {
    expect(packed(order({ createdAt: AT }))).toEqual({ s: 'p' });
    expect(packed(order({ createdAt: '2026-11-01T10:00:00Z' }))).toEqual({ s: 'p', c: '2026-11-01T10:00:00Z' });
    expect(packed(order({ createdAt: '2026-11-01T12:00:00.000+02:00' }))).toEqual({ s: 'p', c: '2026-11-01T12:00:00.000+02:00' });
    expect(packed(order({ createdAt: 'not a time' }))).toEqual({ s: 'p', c: 'not a time' });
  });

  it('one line that is the whole order is a 1; any other lines are kept as they are', () => {
    const o = (lines: OrderLine[]): Record<string, unknown> => packed(order({ productId: 'p1', lines }));
    expect(o([line()])).toEqual({ s: 'p', p: 'p1', l: 1 });
    expect(o([])).toEqual({ s: 'p', p: 'p1' });
    for (const l of [
      [line(), line()],
      [line({ productId: 'p2' })],
      [line({ quantity: 2 })],
      [line({ amount: { amount: 999, currency: 'USD' } })],
      [line({ amount: { amount: 1000, currency: 'EUR' } })],
    ]) {
      expect(o(l)).toEqual({ s: 'p', p: 'p1', l });
    }
    // no product on the order: a line with a product is not the whole order
    expect(packed(order({ lines: [line()] }))).toEqual({ s: 'p', l: [line()] });
  });
});

describe('ledgerBucket: FNV-1a (32 bit) of the UTF-8 bytes, modulo the bucket count', () => {
  it('gives the published FNV-1a values modulo 32', () => {
    expect(LEDGER_BUCKETS).toBe(32);
    // fnv1a32('') = 0x811c9dc5, ('a') = 0xe40c292c, ('foobar') = 0xbf9cf968
    expect(ledgerBucket('')).toBe(0x811c9dc5 % 32);
    expect(ledgerBucket('a')).toBe(0xe40c292c % 32);
    expect(ledgerBucket('foobar')).toBe(0xbf9cf968 % 32);
    expect(ledgerBucket('o1')).toBe(29);
    expect(ledgerBucket('@yt:42')).toBe(2);
    expect(ledgerBucket('__proto__')).toBe(29);
    // UTF-8, not UTF-16 code units: 'é' is c3 a9, '🙂' four bytes
    expect(ledgerBucket('é')).toBe(0x1e9de8c1 % 32);
    expect(ledgerBucket('🙂')).toBe(0x57a37a4b % 32);
  });

  it('is an integer bucket in range for any ref', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (ref) => {
        const b = ledgerBucket(ref);
        expect(Number.isInteger(b) && b >= 0 && b < LEDGER_BUCKETS).toBe(true);
      }),
    );
  });
});

describe('dayOf', () => {
  it('is the UTC day since the epoch, rounding down (also before 1970)', () => {
    expect(DAY_MS).toBe(86_400_000);
    expect(dayOf(0)).toBe(0);
    expect(dayOf(DAY_MS - 1)).toBe(0);
    expect(dayOf(DAY_MS)).toBe(1);
    expect(dayOf(-1)).toBe(-1);
    expect(dayOf(Date.parse(AT))).toBe(20_758);
  });
});
