/** Whatnot order statuses → sale or not (pure). */
import { judgeOrder } from '../../src/targets/whatnot/whatnot.orders.js';
import type { WhatnotOrder } from '../../src/targets/whatnot/whatnot.schemas.js';

const order = (status: string, refunded?: string): WhatnotOrder => ({
  id: 'o1',
  status,
  created_at: '2026-11-24T18:00:00Z',
  amounts: { total: { amount: '10.50', currency: 'USD' }, ...(refunded ? { refunded: { amount: refunded, currency: 'USD' } } : {}) },
});

test('paid orders are sales, a cancelled one is refunded in full, pending/failed/undocumented are not sales', () => {
  expect(judgeOrder(order('pending_fulfillment', '2.00'), 'data')).toMatchObject({ kind: 'sale', order: { total: { amount: 1050 }, refunded: { amount: 200 } } });
  expect(judgeOrder(order('completed'), 'data')).toMatchObject({ kind: 'sale', order: { refunded: { amount: 0 } } });
  expect(judgeOrder(order('cancelled'), 'data')).toMatchObject({ kind: 'sale', order: { refunded: { amount: 1050 }, status: 'cancelled' } });
  expect(judgeOrder(order('pending'), 'data')).toEqual({ kind: 'no_sale', status: 'pending', documented: true });
  expect(judgeOrder(order('failed'), 'data')).toEqual({ kind: 'no_sale', status: 'failed', documented: true });
  expect(judgeOrder(order('refunded_partially'), 'data')).toEqual({ kind: 'no_sale', status: 'refunded_partially', documented: false });
});

test('a refund figure larger than the order is capped at the total', () => {
  expect(judgeOrder(order('completed', '99.00'), 'data')).toMatchObject({ kind: 'sale', order: { refunded: { amount: 1050 } } });
});

test('a refund figure in another currency than the total keeps its currency (never counted as the total\'s)', () => {
  const o = (status: string): WhatnotOrder => ({ ...order(status), amounts: { total: { amount: '10.50', currency: 'USD' }, refunded: { amount: '500', currency: 'JPY' } } });
  expect(judgeOrder(o('completed'), 'data')).toMatchObject({ kind: 'sale', order: { total: { amount: 1050, currency: 'USD' }, refunded: { amount: 500, currency: 'JPY' } } });
  // taken back: refunded in full in the order's own currency
  expect(judgeOrder(o('cancelled'), 'data')).toMatchObject({ kind: 'sale', order: { refunded: { amount: 1050, currency: 'USD' } } });
});
