/**
 * A TikTok Shop affiliate order's total is price × quantity summed over its skus: exact, or the order
 * is refused (PermanentError `malformed_response`, the report names it). Before: a product or sum past
 * 2^53 minor units was a rounded double stored as the order's total, and a sku whose price was not a
 * plain decimal ("1e3", "12.345" USD) was silently left out of the total.
 * What TikTok took back is reported in units only (refunded_quantity / returned_quantity): the refunded
 * amount is their share of the sku line, exact, cumulative (a later report adds only the difference).
 * A sku line below zero is no sale: the order is refused (its total that line), never summed with the
 * others into an amount TikTok never had (attack on npm start, 2026-12-07).
 */
import fc from 'fast-check';
import { checkPlatformOrder } from '../../src/attribution/platform-order-check.js';
import { PermanentError } from '../../src/targets/target.errors.js';
import { lineShare, toPlatformOrder } from '../../src/targets/tiktok/tiktok.adapter.js';
import type { AffiliateOrder } from '../../src/targets/tiktok/tiktok.schemas.js';

const log = { warn: (): void => undefined };
const order = (skus: AffiliateOrder['skus']): AffiliateOrder => ({ id: 'tt-1', status: 'COMPLETED', create_time: 1764000000, skus });
const sku = (amount: string, quantity = 1, refunded = 0): AffiliateOrder['skus'][number] => ({ product_id: 'p1', quantity, price: { amount, currency: 'USD' }, refunded_quantity: refunded });

test('total and refunded are exact sums of price × quantity', () => {
  const o = toPlatformOrder(order([sku('12.34', 3, 1), sku('0.01', 2)]), log)!;
  expect(o.total).toEqual({ amount: 3704, currency: 'USD' });
  expect(o.refunded).toEqual({ amount: 1234, currency: 'USD' });
  expect(o.createdAt).toBe('2025-11-24T16:00:00.000Z');
});

test('a total past 2^53 − 1 minor units is refused, not rounded (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 1n, max: BigInt(Number.MAX_SAFE_INTEGER) }), fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 3 }), (unit, qty, lines) => {
      const exact = unit * BigInt(qty) * BigInt(lines);
      const cents = unit.toString().padStart(3, '0');
      const amount = `${cents.slice(0, -2)}.${cents.slice(-2)}`;
      const o = order(Array.from({ length: lines }, () => sku(amount, qty)));
      if (exact <= BigInt(Number.MAX_SAFE_INTEGER)) expect(BigInt(toPlatformOrder(o, log)!.total.amount)).toBe(exact);
      else expect(() => toPlatformOrder(o, log)).toThrow(PermanentError);
    }),
  );
});

test.each(['1e3', '12.345', ' 12.34', '', 'abc', '90071992547409.92'])('a sku price "%s" fails the order instead of leaving the sku out', (amount) => {
  expect(() => toPlatformOrder(order([sku('10.00'), sku(amount)]), log)).toThrow(PermanentError);
});

test.each([
  ['10.00', '-3.00'],
  ['-3.00', '10.00'],
  ['-3.00', '-0.01'],
])('skus of %s and %s USD: the order is the negative line, which the ledger refuses (an invalid_order), not their sum (10.00 and −3.00 healed as 7.00)', (a, b) => {
  const o = toPlatformOrder(order([sku(a), sku(b, 1, 1)]), log)!;
  expect(o.total).toEqual({ amount: -300, currency: 'USD' });
  expect(o.refunded).toEqual({ amount: 0, currency: 'USD' });
  expect(checkPlatformOrder(o, Date.parse('2026-01-01T00:00:00Z'))).toBe('total');
});

test('a sku line below zero past 2^53 − 1 minor units is refused as a positive one is, not a rounded total', () => {
  expect(() => toPlatformOrder(order([sku('-90071992547.41', 1_000_000)]), log)).toThrow(PermanentError);
});

test('skus in two currencies fail the order, instead of an order of the first currency\'s skus alone (10.00 USD and 5.00 EUR healed as 10.00 USD)', () => {
  const eur = { ...sku('5.00'), price: { amount: '5.00', currency: 'EUR' } };
  expect(() => toPlatformOrder(order([sku('10.00'), eur]), log)).toThrow(new PermanentError('malformed response from TikTok Shop: order "tt-1" has skus in USD and in EUR', 'malformed_response'));
});

test.each([9007199254740991, 253402300800, -1])('create_time %d (not unix seconds of 1970–9999) fails the order with a PermanentError, not a RangeError', (t) => {
  expect(() => toPlatformOrder({ ...order([sku('1.00')]), create_time: t }, log)).toThrow(PermanentError);
});

// --- units taken back → refunded amount (the report carries quantities, no refunded amount) ---------

const returned = (amount: string, quantity: number, units: number): AffiliateOrder['skus'][number] => ({ product_id: 'p1', quantity, price: { amount, currency: 'USD' }, returned_quantity: units });

test('a return TikTok counts in returned_quantity only is refunded (it was read as nothing refunded)', () => {
  const o = toPlatformOrder(order([returned('33.33', 3, 1)]), log)!;
  expect(o.total).toEqual({ amount: 9999, currency: 'USD' });
  expect(o.refunded).toEqual({ amount: 3333, currency: 'USD' });
});

test('one sku of a multi-sku order returned: only that sku line is refunded; a unit in both counts is taken back once', () => {
  const both = { ...sku('12.34', 3, 2), returned_quantity: 2 };
  const o = toPlatformOrder(order([both, sku('5.00', 2)]), log)!;
  expect(o.total.amount).toBe(3702 + 1000);
  expect(o.refunded.amount).toBe(2468);
  // more units than the sku had: capped at its line
  expect(toPlatformOrder(order([returned('5.00', 2, 7), sku('1.00')]), log)!.refunded.amount).toBe(1000);
});

test('lineShare: exact round-half-up of line × units / quantity, and price × units for a line of price × quantity', () => {
  expect(lineShare(10, 3, 1)).toBe(3); // 3.33…
  expect(lineShare(10, 3, 2)).toBe(7); // 6.67
  expect(lineShare(5, 2, 1)).toBe(3); // 2.5 → 3
  expect(lineShare(10, 3, 3)).toBe(10);
  expect(lineShare(9999, 3, 1)).toBe(3333);
  expect(lineShare(Number.MAX_SAFE_INTEGER, 1000, 999)).toBe(Number((2n * BigInt(Number.MAX_SAFE_INTEGER) * 999n + 1000n) / 2000n));
  expect(lineShare(100, 0, 1)).toBe(0);
  expect(lineShare(100, 4, 0)).toBe(0);
});

test('property: returns reported cumulatively — the share never shrinks as units grow, never passes the line, is exactly round-half-up(line × units / quantity), and is the line once every unit is back', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 1, max: 1000 }),
      fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 8 }),
      (line, quantity, steps) => {
        let units = 0;
        for (const step of steps) {
          const before = lineShare(line, quantity, units);
          units += step; // the report's count only grows; past the quantity it is capped
          const after = lineShare(line, quantity, units);
          expect(after - before).toBeGreaterThanOrEqual(0);
          expect(after).toBeLessThanOrEqual(line);
        }
        const share = lineShare(line, quantity, units);
        // exactly round-half-up(line × u / quantity): 2·(share·q − line·u) ∈ (−q, q] (a half, d = q, rounds up)
        const u = BigInt(Math.min(units, quantity));
        const q = BigInt(quantity);
        const d = 2n * (BigInt(share) * q - BigInt(line) * u);
        expect(d > -q && d <= q).toBe(true);
        if (units >= quantity) expect(share).toBe(line);
      },
    ),
  );
}, 30_000); // (a loaded machine: jest's 5 s would be the property's time, not its result)

test('property: for a line of price × quantity the share is price × units exactly, through toPlatformOrder', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 99_999_999 }), fc.integer({ min: 1, max: 50 }), fc.nat({ max: 60 }), fc.nat({ max: 60 }), (cents, quantity, refundedUnits, returnedUnits) => {
      const amount = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
      const o = toPlatformOrder(order([{ ...sku(amount, quantity, refundedUnits), returned_quantity: returnedUnits }]), log)!;
      expect(o.total.amount).toBe(cents * quantity);
      expect(o.refunded.amount).toBe(cents * Math.min(quantity, Math.max(refundedUnits, returnedUnits)));
    }),
  );
}, 30_000);
