/**
 * A TikTok Shop affiliate order's total is price × quantity summed over its skus: exact, or the order
 * is refused (PermanentError `malformed_response`, the report names it). Before: a product or sum past
 * 2^53 minor units was a rounded double stored as the order's total, and a sku whose price was not a
 * plain decimal ("1e3", "12.345" USD) was silently left out of the total.
 */
import fc from 'fast-check';
import { PermanentError } from '../../src/targets/target.errors.js';
import { toPlatformOrder } from '../../src/targets/tiktok/tiktok.adapter.js';
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

test.each([9007199254740991, 253402300800, -1])('create_time %d (not unix seconds of 1970–9999) fails the order with a PermanentError, not a RangeError', (t) => {
  expect(() => toPlatformOrder({ ...order([sku('1.00')]), create_time: t }, log)).toThrow(PermanentError);
});
