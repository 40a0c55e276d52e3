/**
 * OncePerReport (src/targets/report-order.ts): a later copy of an order in other data is a repeat note
 * that carries where the FIRST copy belongs (repeatOf: its show and date), also after thousands of ids
 * (the columns that keep them grow), so reconciliation reports the note with its first copy and routes it
 * by the first copy's show on a shared account.
 */
import { OncePerReport } from '../../src/targets/report-order.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';

const T0 = Date.parse('2026-11-10T00:00:00Z');
const order = (i: number, show: string | undefined, atMs: number, amount = 100, createdAt?: string): PlatformOrder => ({
  orderId: `o${i}`, externalShowId: show, productId: undefined, clickId: undefined, createdAt: createdAt ?? new Date(atMs).toISOString(),
  total: { amount, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined,
});

test('a repeat note carries its first copy\'s show and date, for the first id read and the last of 3,000; an undated first copy gives \'\'', () => {
  const once = new OncePerReport();
  const page: PlatformOrder[] = [];
  for (let i = 0; i < 3000; i++) once.add(page, order(i, i % 3 === 0 ? undefined : `show-${i % 7}`, T0 + i * 1000, 100, i === 5 ? '' : undefined));
  const later: PlatformOrder[] = [];
  for (const i of [0, 1, 5, 2999]) expect(once.add(later, order(i, 'show-late', T0 + 86_400_000, 150))).toBe('twice');
  expect(later.map((p) => [p.orderId, p.createdAt, p.repeatOf])).toEqual([
    ['o0', new Date(T0 + 86_400_000).toISOString(), { externalShowId: undefined, createdAt: new Date(T0).toISOString() }],
    ['o1', new Date(T0 + 86_400_000).toISOString(), { externalShowId: 'show-1', createdAt: new Date(T0 + 1000).toISOString() }],
    ['o5', new Date(T0 + 86_400_000).toISOString(), { externalShowId: 'show-5', createdAt: '' }],
    ['o2999', new Date(T0 + 86_400_000).toISOString(), { externalShowId: `show-${2999 % 7}`, createdAt: new Date(T0 + 2999_000).toISOString() }],
  ]);
  // A third copy is the same invalid order: no second note.
  expect(once.add(later, order(1, 'show-x', T0, 175))).toBe('same');
});
