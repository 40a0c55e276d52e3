/**
 * A refund in another currency than its order's is refused (422, nothing stored, its claims free) from
 * the moment the order is accepted, not only once the attribution worker has booked the order in the
 * ledger. The check read the ledger alone, which the worker fills after the fact: an other-currency
 * refund sent right after its order was a 202 (stored, never applied) while a second later it was a
 * 422 — an end state that depended on delivery timing (contract §3). The order's currency is now
 * recorded with its order.created in the order's own slot (Keys.orderCurrency) and checked by the
 * order event's store script: INGEST_ORDER_ONE_LUA on one Redis, INGEST_PLAIN_LUA on the Cluster path
 * (after its claims, which are taken back).
 *
 * This service runs no workers: nothing is ever booked in the ledger here. The Cluster path runs on
 * either topology (forced on a single Redis as in order-ingest.cluster-claims; on
 * SYNDICAST_TEST_REDIS=cluster both cases take it). Real service, real Redis.
 */
import { PartnerEventSchema } from '../../src/domain/events.js';
import { partnerOrderRef } from '../../src/domain/order.js';
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { createPartner, orderEvent, sendEvent, startService, type TestService } from '../helpers/service.js';

const P = 'rc';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, P);
});
afterAll(async () => {
  await svc?.close();
});

/** Runs `act` on the Cluster path (IngestService.ingestOrderEvent) whatever the topology. */
async function onClusterPath(act: () => Promise<void>): Promise<void> {
  Object.defineProperty(svc.rt.orderEvents, 'singleNode', { get: () => false, configurable: true });
  try {
    await act();
  } finally {
    delete (svc.rt.orderEvents as unknown as Record<string, unknown>)['singleNode'];
  }
}

const eurOrder = (id: string) => {
  const o = orderEvent(id, 4000);
  return { ...o, data: { order: { ...o.data.order, total: { amount: 4000, currency: 'EUR' } } } };
};
const refund = (id: string, orderId: string, currency: string) => ({
  type: 'order.refunded',
  occurredAt: '2026-11-24T18:40:00Z',
  data: { refund: { id, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount: 700, currency } } },
});

async function problemPaths(r: Response): Promise<string[]> {
  return ((await r.json()) as { errors: { path: string }[] }).errors.map((e) => e.path);
}

/** The order's EUR; then at once (nothing booked) a USD refund: 422, nothing stored, no claim; the corrected refund under the same ids: 202. */
async function refusedBeforeBooking(orderId: string): Promise<void> {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const w = `${orderId}-w`;
  expect((await sendEvent(svc, P, secret, eurOrder(orderId))).status).toBe(202);
  expect(await new AttributionRepository(redis, k).orderCurrency(P, partnerOrderRef(orderId))).toBeUndefined(); // the ledger does not hold it yet
  // Old code: 202 (stored, never applied); the same refund after the worker's booking was a 422.
  const refused = await sendEvent(svc, P, secret, refund(`${orderId}-r`, orderId, 'USD'), { webhookId: w });
  expect(refused.status).toBe(422);
  expect(await problemPaths(refused)).toEqual(['data.refund.amount.currency']);
  for (const key of [k.orderInbox(P, orderId, w), k.partnerWebhookId(P, w), k.partnerRefundId(P, `${orderId}-r`)]) expect(await redis.exists(key)).toBe(0); // slots apart: one EXISTS each
  expect(await redis.xlen(k.orderEvents(P, orderId))).toBe(1);
  expect((await sendEvent(svc, P, secret, refund(`${orderId}-r`, orderId, 'EUR'), { webhookId: w })).status).toBe(202);
}

test('an order, then at once a refund in another currency: 422 (one Redis: the one-call script; a Cluster: its path)', async () => {
  await refusedBeforeBooking('o-one');
});

test('Cluster path: the same 422 before the ledger holds the order, its claims taken back; a refund id stored before the order asks for a new id', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  await onClusterPath(async () => {
    await refusedBeforeBooking('o-cl');
    // A refund before its order stays stored (202); the order then comes in EUR and is stored too (the
    // refund is kept unapplied); the same refund id again in USD asks for a new id, and is not stored.
    expect((await sendEvent(svc, P, secret, refund('r-early', 'o-late', 'USD'), { webhookId: 'w-early' })).status).toBe(202);
    expect((await sendEvent(svc, P, secret, eurOrder('o-late'))).status).toBe(202);
    const again = await sendEvent(svc, P, secret, refund('r-early', 'o-late', 'USD'), { webhookId: 'w-again' });
    expect(again.status).toBe(422);
    expect(await problemPaths(again)).toEqual(['data.refund.id', 'data.refund.amount.currency']);
    expect(await redis.get(k.partnerRefundId(P, 'r-early'))).toBe('o-late'); // still the stored refund's
    expect(await redis.exists(k.partnerWebhookId(P, 'w-again'))).toBe(0);
    // Answers keep their order: a repeated webhook-id is its stored event's duplicate, another order's refund id that 422.
    expect((await sendEvent(svc, P, secret, refund('r-x', 'o-late', 'USD'), { webhookId: 'w-early' })).status).toBe(200);
    const taken = await sendEvent(svc, P, secret, refund('o-cl-r', 'o-late', 'USD'), { webhookId: 'w-taken' });
    expect(taken.status).toBe(422);
    expect(((await taken.json()) as { detail: string }).detail).toContain('was first sent for order o-cl');
  });
});

/**
 * The ledger decides once it holds the order: an order stored before the currency was recorded (here
 * booked by the worker's step alone, nothing recorded), and one whose recorded currency is not the
 * one the ledger booked (a re-reported order.created the worker took first; here the recorded key set
 * so by hand).
 */
async function ledgerDecides(orderId: string): Promise<void> {
  const k = svc.rt.keys;
  await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse(eurOrder(orderId)));
  // Old code (one Redis): the ledger read; mutated to skip it, nothing recorded: 202.
  const legacy = await sendEvent(svc, P, secret, refund(`${orderId}-r1`, orderId, 'USD'));
  expect(legacy.status).toBe(422);
  expect(await problemPaths(legacy)).toEqual(['data.refund.amount.currency']);
  await svc.rt.redis.set(k.orderCurrency(P, orderId), 'USD');
  expect((await sendEvent(svc, P, secret, refund(`${orderId}-r2`, orderId, 'USD'))).status).toBe(422);
  expect((await sendEvent(svc, P, secret, refund(`${orderId}-r3`, orderId, 'EUR'))).status).toBe(202);
}

test('the ledger decides once it holds the order (an order stored before the currency was recorded; a recorded currency the ledger did not book)', async () => {
  await ledgerDecides('o-led');
  await onClusterPath(() => ledgerDecides('o-led-cl'));
});

test("the recorded currency lives as long as the order's event log: kept while an event is pending, expiring with the log once all are handled", async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  expect((await sendEvent(svc, P, secret, eurOrder('o-life'))).status).toBe(202);
  expect(await redis.get(k.orderCurrency(P, 'o-life'))).toBe('EUR');
  expect(await redis.ttl(k.orderCurrency(P, 'o-life'))).toBe(-1);
  for (const { eventId } of await svc.rt.orderEvents.pendingEvents(P, 'o-life')) await svc.rt.orderEvents.handled(P, 'o-life', eventId);
  const ttl = await redis.ttl(k.orderCurrency(P, 'o-life'));
  expect(ttl).toBeGreaterThan(0);
  expect(Math.abs(ttl - (await redis.ttl(k.orderEvents(P, 'o-life'))))).toBeLessThanOrEqual(1);
  // A later event of the order keeps both again; the currency stays the first order.created's.
  const usdAgain = orderEvent('o-life', 4000);
  expect((await sendEvent(svc, P, secret, usdAgain)).status).toBe(202);
  expect(await redis.ttl(k.orderCurrency(P, 'o-life'))).toBe(-1);
  expect(await redis.get(k.orderCurrency(P, 'o-life'))).toBe('EUR');
});
