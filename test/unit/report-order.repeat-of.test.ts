/**
 * OncePerReport (src/targets/report-order.ts): a later copy of an order in other data is a repeat note
 * that carries where the FIRST copy belongs (repeatOf: its show and date), also after thousands of ids
 * (the columns that keep them grow), so reconciliation reports the note with its first copy and routes it
 * by the first copy's show on a shared account.
 */
import { noteIn, OncePerReport } from '../../src/targets/report-order.js';
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

test('a first copy whose date the ledger refuses (a day that does not exist, no offset) gives \'\' in repeatOf, and its note is in every run that reads it; a note whose own date the ledger refuses is its first copy\'s period\'s', () => {
  const once = new OncePerReport();
  const page: PlatformOrder[] = [];
  // Date.parse reads both: 2026-02-30 as March 2nd, the one without an offset as local time.
  for (const [i, at] of [[1, '2026-02-30T10:00:00Z'], [2, '2026-11-10T12:00:00']] as const) once.add(page, order(i, 'show-1', 0, 100, at));
  const later: PlatformOrder[] = [];
  for (const i of [1, 2]) expect(once.add(later, order(i, 'show-1', T0 + 86_400_000, 150))).toBe('twice');
  expect(later.map((p) => p.repeatOf)).toEqual([
    { externalShowId: 'show-1', createdAt: '' },
    { externalShowId: 'show-1', createdAt: '' },
  ]);
  const DAY = 86_400_000;
  const skew = 60_000;
  const march = Date.parse('2026-03-02T00:00:00Z');
  const nov10 = Date.parse('2026-11-10T00:00:00Z');
  // A note carrying such a date (a report handed on by another adapter): no period is the first copy's.
  const note = (first: string, own: string): PlatformOrder => ({ ...order(9, 'show-1', 0, 150, own), repeat: 'order "o9" twice, with different data', repeatOf: { externalShowId: 'show-1', createdAt: first } });
  for (const first of ['2026-02-30T10:00:00Z', '2026-11-10T12:00:00']) {
    const n = note(first, new Date(T0 + 5 * DAY).toISOString());
    // Every run that reads it reports it: the days Date.parse made up, and the note's own.
    expect([noteIn(n, march, march + DAY, skew), noteIn(n, nov10, nov10 + DAY, skew), noteIn(n, T0 + 5 * DAY, T0 + 6 * DAY, skew)]).toEqual([true, true, true]);
  }
  // The note's own date refused: its first copy's period's alone (not the day Date.parse made of it).
  const own = note(new Date(T0).toISOString(), '2026-11-31T10:00:00Z');
  expect([noteIn(own, T0, T0 + DAY, skew), noteIn(own, Date.parse('2026-12-01T00:00:00Z'), Date.parse('2026-12-02T00:00:00Z'), skew)]).toEqual([true, false]);
});
