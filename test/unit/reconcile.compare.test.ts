import { compareTarget } from '../../src/reconcile/reconcile.compare.js';
import { VOIDED } from '../../src/attribution/attribution.service.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';

const order = (orderId: string, amount: number, refunded = 0, status?: string): PlatformOrder => ({
  orderId,
  externalShowId: 'show-x',
  productId: 'p1',
  clickId: undefined,
  createdAt: '2026-11-24T18:00:00Z',
  total: { amount, currency: 'USD' },
  refunded: { amount: refunded, currency: 'USD' },
  status,
  commission: undefined,
});

test('each kind of discrepancy, and what is healed', () => {
  const report = [order('a', 1000), order('b', 2000), order('c', 3000, 1000), order('d', 4000, 0, 'CANCELLED'), order('e', 5000), order('f', 500)];
  const ledger = [
    { orderId: 'b', currency: 'USD', gross: 2500, refunded: 0 },
    { orderId: 'c', currency: 'USD', gross: 3000, refunded: 0 },
    { orderId: 'd', currency: 'USD', gross: 4000, refunded: 0 },
    { orderId: 'e', currency: 'USD', gross: 5000, refunded: 0 },
    { orderId: 'f', currency: 'USD', gross: 500, refunded: 200 },
    { orderId: 'g', currency: 'USD', gross: 700, refunded: 0 },
  ];
  const { discrepancies, heal } = compareTarget('t1', report, ledger, VOIDED);
  const byOrder = Object.fromEntries(discrepancies.map((d) => [d.orderId, [d.kind, d.healed]]));
  expect(byOrder).toEqual({
    a: ['missing_in_ledger', true],
    b: ['amount_mismatch', false],
    c: ['amount_mismatch', true],
    d: ['status_mismatch', true],
    f: ['amount_mismatch', false],
    g: ['missing_in_platform', false],
  });
  expect(heal.map((h) => h.orderId).sort()).toEqual(['a', 'c', 'd']);
});

test('a report equal to the ledger has no discrepancies', () => {
  const report = [order('a', 1000, 300)];
  expect(compareTarget('t1', report, [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 300 }], VOIDED)).toEqual({ discrepancies: [], heal: [] });
});
