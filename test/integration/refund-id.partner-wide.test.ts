/**
 * A refund id is claimed partner-wide (the external contract §5: refunds are idempotent by id). The
 * ledger keeps an order's refunds in the order's record, so the same refund id sent for a second order
 * was a new refund there: it reversed commission on both orders. The second use is refused now (422
 * problem+json, nothing stored, its webhook-id left free); the same refund for its own order goes on as
 * before (a re-delivery is the duplicate, the refund under a new webhook-id is booked once by the
 * ledger). Real service and workers, real Redis (SYNDICAST_TEST_REDIS=cluster: the claim and the order
 * are in different slots there).
 */
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { partnerOrderRef } from '../../src/domain/order.js';
import { RefundIdClaims } from '../../src/store/refund-id.repository.js';
import { createPartner, orderEvent, sendEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
let repo: AttributionRepository;

beforeAll(async () => {
  svc = await startService({ workers: true });
  secret = await createPartner(svc, 'rf');
  repo = new AttributionRepository(svc.rt.redis, svc.rt.keys);
});
afterAll(async () => {
  await svc?.close();
});

const order = (id: string) => orderEvent(id, 10_000);
const refund = (id: string, orderId: string, amount = 2_500) => ({
  type: 'order.refunded',
  occurredAt: '2026-11-24T18:40:00Z',
  data: { refund: { id, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount, currency: 'USD' } } },
});
const jobsLeft = async () => Object.values(await svc.rt.attributionProducer.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).reduce((a, b) => a + b, 0);
const refundsOf = async (orderId: string) => (await repo.get('rf', partnerOrderRef(orderId)))?.refunds.map((r) => r.id) ?? [];

test('a refund id sent for a second order is refused (422, nothing stored); for its own order it goes on', async () => {
  for (const id of ['oa', 'ob']) expect((await sendEvent(svc, 'rf', secret, order(id))).status).toBe(202);
  expect((await sendEvent(svc, 'rf', secret, refund('re-1', 'oa'), { webhookId: 'msg_re1_a' })).status).toBe(202);

  const other = await sendEvent(svc, 'rf', secret, refund('re-1', 'ob'), { webhookId: 'msg_re1_b' });
  expect(other.status).toBe(422);
  expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await other.json()) as { detail: string }).detail).toContain('order oa');
  // Nothing of it is stored: not in the order's log, not in the ledger (after the workers are done).
  expect(await svc.rt.redis.xlen(svc.rt.keys.orderEvents('rf', 'ob'))).toBe(1); // its order.created only
  await waitFor(async () => (await refundsOf('oa')).includes('re-1'));
  await waitFor(async () => (await jobsLeft()) === 0);
  expect(await refundsOf('ob')).toEqual([]);
  // Sending it again changes nothing.
  expect((await sendEvent(svc, 'rf', secret, refund('re-1', 'ob'), { webhookId: 'msg_re1_b' })).status).toBe(422);

  // Its webhook-id stays free: the partner's corrected refund (an id of its own) goes out under it.
  const fixed = await sendEvent(svc, 'rf', secret, refund('re-2', 'ob'), { webhookId: 'msg_re1_b' });
  expect(fixed.status).toBe(202);
  await waitFor(async () => (await refundsOf('ob')).includes('re-2'));

  // The refund for its own order: a re-delivery is the duplicate; under a new webhook-id it is taken and
  // booked once (the ledger is idempotent by refund id within the order).
  expect((await sendEvent(svc, 'rf', secret, refund('re-1', 'oa'), { webhookId: 'msg_re1_a' })).status).toBe(200);
  expect((await sendEvent(svc, 'rf', secret, refund('re-1', 'oa'), { webhookId: 'msg_re1_a_again' })).status).toBe(202);
  await waitFor(async () => (await jobsLeft()) === 0);
  expect(await refundsOf('oa')).toEqual(['re-1']);
  expect(await refundsOf('ob')).toEqual(['re-2']);
});

test('a refund that arrives before its order claims its id too; another partner has its own refund ids', async () => {
  expect((await sendEvent(svc, 'rf', secret, refund('re-early', 'oc'))).status).toBe(202);
  expect((await sendEvent(svc, 'rf', secret, refund('re-early', 'od'))).status).toBe(422);
  expect(await svc.rt.redis.exists(svc.rt.keys.orderEvents('rf', 'od'))).toBe(0);

  const otherSecret = await createPartner(svc, 'rg');
  expect((await sendEvent(svc, 'rg', otherSecret, refund('re-early', 'od'))).status).toBe(202);
});

test('the same refund id for two orders sent at once: one is stored, the other refused', async () => {
  const [a, b] = await Promise.all([sendEvent(svc, 'rf', secret, refund('re-race', 'oe')), sendEvent(svc, 'rf', secret, refund('re-race', 'of'))]);
  expect([a.status, b.status].sort()).toEqual([202, 422]);
  const stored = await Promise.all(['oe', 'of'].map((o) => svc.rt.redis.exists(svc.rt.keys.orderEvents('rf', o))));
  expect(stored.sort()).toEqual([0, 1]);
});

test("the Cluster path's own claim step keeps the first order's claim (on a single Redis the claim is made inside the order's store call)", async () => {
  // RefundIdClaims is what IngestService uses on a Redis Cluster; called directly here so that its rule
  // is checked on either topology.
  const claims = new RefundIdClaims(svc.rt.redis, svc.rt.keys);
  expect(await claims.claim('rf', 're-direct', 'og')).toBe('og');
  expect(await claims.claim('rf', 're-direct', 'oh')).toBe('og');
  expect(await claims.claim('rf', 're-direct', 'og')).toBe('og');
  expect(await svc.rt.redis.get(svc.rt.keys.partnerRefundId('rf', 're-direct'))).toBe('og');
});

test("the Cluster path's steps (forced on a single Redis): another order's refund id is 422 and the event's webhook-id stays free", async () => {
  const orders = svc.rt.orderEvents;
  Object.defineProperty(orders, 'singleNode', { get: () => false, configurable: true });
  try {
    expect((await sendEvent(svc, 'rf', secret, refund('re-cp', 'oi'), { webhookId: 'msg_re_cp_i' })).status).toBe(202);
    const other = await sendEvent(svc, 'rf', secret, refund('re-cp', 'oj'), { webhookId: 'msg_re_cp_j' });
    expect(other.status).toBe(422);
    expect(await svc.rt.redis.exists(svc.rt.keys.orderEvents('rf', 'oj'))).toBe(0);
    expect(await svc.rt.redis.exists(svc.rt.keys.partnerWebhookId('rf', 'msg_re_cp_j'))).toBe(0);
    expect(await svc.rt.redis.get(svc.rt.keys.partnerRefundId('rf', 're-cp'))).toBe('oi');
    // A webhook-id that names an event the order stored is that event's duplicate (200), even when the
    // re-delivery carries a refund id another order holds: not a 422 for a message already taken.
    expect((await sendEvent(svc, 'rf', secret, refund('re-cp-k', 'oj'), { webhookId: 'msg_re_cp_k' })).status).toBe(202);
    expect((await sendEvent(svc, 'rf', secret, refund('re-cp', 'oj'), { webhookId: 'msg_re_cp_k' })).status).toBe(200);
  } finally {
    delete (orders as unknown as Record<string, unknown>)['singleNode'];
  }
});
