/**
 * A platform reports an order's cumulative refund; the ledger keeps each new figure as a refund with
 * the synthetic id `pf:<cumulative amount>`. When the order was re-reported once in another currency
 * (a Whatnot webhook whose total and refunded are EUR for an order stored in USD), that refund is kept,
 * not applied (no FX) — but it took the id `pf:400`, so the same cumulative refund reported next in the
 * order's own currency was skipped as already there: the ledger said 0 refunded while the platform said
 * 4.00, until a larger refund came. Real redis-server, real HTTP, webhooks signed the Whatnot way.
 */
import { platformOrderRef } from '../../src/domain/order.js';
import { ledgerBucket } from '../../src/store/attribution.repository.js';
import { CREDENTIALS, postWhatnotWebhook, webhookTargetPerFile } from '../helpers/platforms.js';
import type { TestService } from '../helpers/service.js';

const P = 'pcurflip';
const SECRET = 'whsec_' + Buffer.from('platform-refund-currency-flip!!').toString('base64');
let svc: TestService;

webhookTargetPerFile(
  P,
  (s) => ({ id: 'wn', platform: 'whatnot', name: 'wn', credentials: { accessToken: CREDENTIALS.whatnot.accessToken!, webhookSecret: SECRET }, baseUrl: s.base('whatnot') }),
  (started) => ({ svc } = started),
);

const CREATED = new Date(Date.now() - 60_000).toISOString();

async function report(orderId: string, currency: string, refunded: string): Promise<void> {
  const money = (amount: string): { amount: string; currency: string } => ({ amount, currency });
  const data = { id: orderId, show_id: 'wn-show-1', status: 'completed', created_at: CREATED, amounts: { total: money('10.00'), refunded: money(refunded) } };
  const body = JSON.stringify({ type: 'orders.updated', timestamp: new Date().toISOString(), data });
  const r = await postWhatnotWebhook(svc, 'wn', SECRET, body);
  expect(r.status).toBe(200);
}

interface OrderView {
  total: { amount: number; currency: string };
  refundedAmount: number;
  refunds: { id: string; amount: number; currency: string; applied: boolean }[];
}

async function view(orderId: string): Promise<OrderView> {
  const r = await svc.api(`/v1/partners/${P}/attribution/orders/${orderId}?targetId=wn`);
  expect(r.status).toBe(200);
  return (await r.json()) as OrderView;
}

test('a refund in the order’s currency is applied after the same figure came in another currency', async () => {
  await report('flip-1', 'USD', '0.00');
  await report('flip-1', 'EUR', '4.00'); // kept, not applied
  await report('flip-1', 'USD', '4.00'); // the order's own currency: applied
  const v = await view('flip-1');
  expect(v.total).toEqual({ amount: 1000, currency: 'USD' });
  expect(v.refundedAmount).toBe(400);
  expect(v.refunds.map((r) => [r.amount, r.currency, r.applied]).sort()).toEqual([
    [400, 'EUR', false],
    [400, 'USD', true],
  ]);
  // Delivered again (platforms retry): nothing more.
  await report('flip-1', 'EUR', '4.00');
  await report('flip-1', 'USD', '4.00');
  const again = await view('flip-1');
  expect(again.refundedAmount).toBe(400);
  expect(again.refunds).toHaveLength(2);
});

test('the refund grows on from there in the order’s currency', async () => {
  await report('flip-2', 'USD', '2.00');
  await report('flip-2', 'EUR', '3.00');
  await report('flip-2', 'USD', '3.00');
  const v = await view('flip-2');
  expect(v.refundedAmount).toBe(300);
  expect(v.refunds.filter((r) => r.applied).reduce((s, r) => s + r.amount, 0)).toBe(300);
});

test('a record stored before, whose other-currency refund took pf:<amount>, gets the same figure in its own currency applied', async () => {
  await report('flip-3', 'USD', '0.00');
  // What the old step stored for an EUR report of 4.00: the refund under 'pf:400', not applied.
  const ref = platformOrderRef('wn', 'flip-3');
  const key = svc.rt.keys.ledgerOrders(P, ledgerBucket(ref));
  const rec = JSON.parse((await svc.rt.redis.hget(key, ref))!) as Record<string, unknown>;
  await svc.rt.redis.hset(key, ref, JSON.stringify({ ...rec, rf: { 'pf:400': ['400', 'EUR', new Date().toISOString(), '0'] }, m: '1' }));
  await report('flip-3', 'EUR', '4.00'); // the same EUR figure again: not kept twice
  await report('flip-3', 'USD', '4.00');
  const v = await view('flip-3');
  expect(v.refundedAmount).toBe(400);
  expect(v.refunds.map((r) => [r.id, r.currency, r.applied]).sort()).toEqual([
    ['pf:400', 'EUR', false],
    ['pf:400:USD', 'USD', true],
  ]);
});
