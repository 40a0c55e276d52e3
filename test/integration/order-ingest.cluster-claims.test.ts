/**
 * On a Redis Cluster an order event's webhook-id claim (and a refund's refund-id claim) is made before
 * the order's write, in another slot (src/sources/ingest.service.ts ingestOrderEvent). A first delivery
 * whose write failed after the claim (503: a command timeout, a master down; here a key of the wrong
 * type under the order's log, which fails the write inside Redis) left the claim, kept for
 * INBOX_TTL_DAYS: the partner's resend corrected to another order under the same webhook-id got 409 for
 * 30 days (a refund's, 422 for good). Now a write Redis refused takes both claims back at once, and a
 * claim whose take-back failed too (Redis down) blocks the id only while its set of deliveries under
 * way lives (CLAIM_PROVISIONAL_SEC, short here); a refund-id claim is kept for good unless its write
 * definitely stored nothing. Exactly once still: a delivery under way keeps the id (409 for another
 * order), and one that could not send its write in time answers 503 and stores nothing; a failure after
 * the write takes no claim back, and a show event's claim is never taken over.
 *
 * The Cluster path runs on either topology (forced on a single Redis as in webhook-id.release-race).
 * Real service, real Redis.
 */
import { ReplyError } from 'ioredis';
import { PartnerEventSchema } from '../../src/domain/events.js';
import { createPartner, orderEvent, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const PROVISIONAL_SEC = 3;
const P = 'cc';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService({ env: { CLAIM_PROVISIONAL_SEC: String(PROVISIONAL_SEC) } });
  secret = await createPartner(svc, P);
  Object.defineProperty(svc.rt.orderEvents, 'singleNode', { get: () => false, configurable: true });
  Object.defineProperty(svc.rt.shows, 'singleNode', { get: () => false, configurable: true });
});
afterAll(async () => {
  if (svc) delete (svc.rt.orderEvents as unknown as Record<string, unknown>)['singleNode'];
  if (svc) delete (svc.rt.shows as unknown as Record<string, unknown>)['singleNode'];
  await svc?.close();
});

const refund = (id: string, orderId: string, amount = 500) => ({
  type: 'order.refunded',
  occurredAt: '2026-11-24T18:40:00Z',
  data: { refund: { id, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount, currency: 'USD' } } },
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test('a write Redis refused after the claims takes them back: the resend corrected to another order is stored at once', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  await redis.set(k.orderEvents(P, 'o1'), 'not a stream');
  const failed = await sendEvent(svc, P, secret, refund('r1', 'o1'), { webhookId: 'w1' });
  expect(failed.status).toBeGreaterThanOrEqual(500);
  expect(await redis.exists(k.orderInbox(P, 'o1', 'w1'))).toBe(0);
  const claimsLeft = (await redis.exists(k.partnerWebhookId(P, 'w1'))) + (await redis.exists(k.partnerRefundId(P, 'r1'))); // two slots

  // Old code: 409 (the claim for o1 stood for INBOX_TTL_DAYS).
  const corrected = await sendEvent(svc, P, secret, refund('r1', 'o2'), { webhookId: 'w1' });
  expect(corrected.status).toBe(202);
  expect(claimsLeft).toBe(0);
  const { eventId } = (await corrected.json()) as { eventId: string };
  expect(await redis.get(k.orderInbox(P, 'o2', 'w1'))).toBe(eventId);
  expect(await redis.get(k.partnerWebhookId(P, 'w1'))).toBe('order:o2');
  // The refund id is o2's, for good (claimed so from the start).
  expect(await redis.get(k.partnerRefundId(P, 'r1'))).toBe('o2');
  expect(await redis.ttl(k.partnerRefundId(P, 'r1'))).toBe(-1);
  // The answers stay: a re-delivery is the duplicate, the refund id for another order 422.
  const dup = await sendEvent(svc, P, secret, refund('r1', 'o2'), { webhookId: 'w1' });
  expect(dup.status).toBe(200);
  expect(await dup.json()).toEqual({ eventId, webhookId: 'w1', duplicate: true });
  expect((await sendEvent(svc, P, secret, refund('r1', 'o1'), { webhookId: 'w1b' })).status).toBe(422);
});

test('a webhook-id claim whose take-back failed too (Redis down) blocks the id only for the provisional time; the refund id stays its order\'s', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  await redis.set(k.orderEvents(P, 'o3'), 'not a stream');
  const webhookIds = svc.rt.webhookIds;
  const refundIds = svc.rt.refundIds;
  const releaseW = webhookIds.releaseIfHeld.bind(webhookIds);
  const releaseR = refundIds.release.bind(refundIds);
  const down = () => Promise.reject(new Error('Connection is closed.'));
  webhookIds.releaseIfHeld = down;
  refundIds.release = down;
  try {
    const failed = await sendEvent(svc, P, secret, refund('r3', 'o3'), { webhookId: 'w3' });
    expect(failed.status).toBeGreaterThanOrEqual(500);
  } finally {
    webhookIds.releaseIfHeld = releaseW;
    refundIds.release = releaseR;
  }
  expect(await redis.get(k.partnerWebhookId(P, 'w3'))).toBe('order:o3');
  expect(await redis.get(k.partnerRefundId(P, 'r3'))).toBe('o3');
  // The refund-id claim is kept for good (its take-back failed); the webhook-id claim's deliveries
  // under way expire after the provisional time.
  expect(await redis.ttl(k.partnerRefundId(P, 'r3'))).toBe(-1);
  expect(await redis.ttl(k.partnerWebhookIdHeld(P, 'w3'))).toBeLessThanOrEqual(PROVISIONAL_SEC);

  // While the failed delivery may still be under way, the webhook-id is its order's: 409, nothing
  // stored. Once that time has passed the resend corrected to another order (and refund id) is stored.
  const started = Date.now();
  let last = 0;
  let answers = 0;
  while (Date.now() - started < 4 * PROVISIONAL_SEC * 1000 + 10_000) {
    const heldBefore = await redis.exists(k.partnerWebhookIdHeld(P, 'w3'));
    const r = await sendEvent(svc, P, secret, refund('r3b', 'o4'), { webhookId: 'w3' });
    last = r.status;
    answers++;
    if (last === 202) break;
    if (answers === 1) expect(heldBefore).toBe(1);
    expect(last).toBe(409);
    expect(await redis.exists(k.orderEvents(P, 'o4'))).toBe(0);
    await sleep(250);
  }
  expect(last).toBe(202);
  expect(await redis.xlen(k.orderEvents(P, 'o4'))).toBe(1);
  expect(await redis.get(k.partnerWebhookId(P, 'w3'))).toBe('order:o4');
  expect(await redis.get(k.partnerRefundId(P, 'r3b'))).toBe('o4');
  expect(await redis.ttl(k.partnerRefundId(P, 'r3b'))).toBe(-1);
  // r3 stays o3's: its take-back failed, and a refund-id claim is never dropped by time (another order's r3: 422).
  expect(await redis.get(k.partnerRefundId(P, 'r3'))).toBe('o3');
  expect((await sendEvent(svc, P, secret, refund('r3', 'o4'), { webhookId: 'w3c' })).status).toBe(422);
  // The first order's own retry is now the duplicate of o4's event, nothing stored for o3.
  const retry = await sendEvent(svc, P, secret, refund('r3', 'o3'), { webhookId: 'w3' });
  expect(retry.status).toBe(200);
  expect(await redis.exists(k.orderInbox(P, 'o3', 'w3'))).toBe(0);
});

test('exactly once: a delivery under way keeps its id; one that cannot send its write in time answers 503, stores nothing and frees it', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const orders = svc.rt.orderEvents;
  const original = orders.ingest.bind(orders);
  const originalList = orders.markPending.bind(orders);
  let gate: Promise<void> = Promise.resolve();
  let listGate: Promise<void> = Promise.resolve();
  orders.ingest = async (...args: Parameters<typeof original>) => {
    await gate;
    return original(...args);
  };
  // The first listing goes with the claim: holding it holds the delivery between its claim and its write.
  orders.markPending = async (...args: Parameters<typeof originalList>) => {
    await listGate;
    return originalList(...args);
  };
  try {
    // A (order oa) has claimed and its write is slow: B (order ob) under the same id is 409.
    let open: () => void = () => undefined;
    gate = new Promise<void>((r) => (open = r));
    const a = sendEvent(svc, P, secret, orderEvent('oa'), { webhookId: 'w5' });
    while ((await redis.get(k.partnerWebhookId(P, 'w5'))) === null) await sleep(10);
    expect((await sendEvent(svc, P, secret, orderEvent('ob'), { webhookId: 'w5' })).status).toBe(409);
    open();
    const aDone = await a;
    expect(aDone.status).toBe(202);
    const { eventId } = (await aDone.json()) as { eventId: string };
    // Long after every delivery has ended, B is A's duplicate: the held set's expiry frees only an unstored claim.
    await sleep(PROVISIONAL_SEC * 1000 + 500);
    const b = await sendEvent(svc, P, secret, orderEvent('ob'), { webhookId: 'w5' });
    expect(b.status).toBe(200);
    expect(await b.json()).toEqual({ eventId, webhookId: 'w5', duplicate: true });
    expect(await redis.exists(k.orderEvents(P, 'ob'))).toBe(0);

    // C (order oc) is held past half the provisional time after its claim (derived from the setting):
    // it must not write any more (its claim could be taken over by then): 503, nothing stored, and
    // its claim is taken back, so D (order od) under the same id is stored.
    listGate = sleep(PROVISIONAL_SEC * 500 + 200);
    const c = await sendEvent(svc, P, secret, orderEvent('oc'), { webhookId: 'w6' });
    expect(c.status).toBe(503);
    expect(await redis.exists(k.orderEvents(P, 'oc'))).toBe(0);
    expect(await redis.exists(k.partnerWebhookId(P, 'w6'))).toBe(0);
    listGate = Promise.resolve();
    const d = await sendEvent(svc, P, secret, orderEvent('od'), { webhookId: 'w6' });
    expect(d.status).toBe(202);
    expect(await redis.xlen(k.orderEvents(P, 'od'))).toBe(1);
  } finally {
    orders.ingest = original;
    orders.markPending = originalList;
  }
});

test('a failure after the store (the listing on another master answers an error) takes no claim back: the stored refund keeps its ids', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const orders = svc.rt.orderEvents;
  const originalList = orders.markPending.bind(orders);
  // The listing fails with an error reply (OOM on the pending-orders set's master) once o7's event is stored.
  orders.markPending = async (partnerId: string, orderId: string) => {
    if (orderId === 'o7' && (await redis.exists(k.orderInbox(P, 'o7', 'w7'))) === 1) throw new ReplyError("OOM command not allowed when used memory > 'maxmemory'.");
    return originalList(partnerId, orderId);
  };
  try {
    const failed = await sendEvent(svc, P, secret, refund('r7', 'o7'), { webhookId: 'w7' });
    expect(failed.status).toBeGreaterThanOrEqual(500);
  } finally {
    orders.markPending = originalList;
  }
  const eventId = await redis.get(k.orderInbox(P, 'o7', 'w7'));
  expect(eventId).not.toBeNull();
  // Old code: both claims released although the event was stored.
  expect(await redis.get(k.partnerWebhookId(P, 'w7'))).toBe('order:o7');
  expect(await redis.get(k.partnerRefundId(P, 'r7'))).toBe('o7');
  // Another order under the webhook-id is the stored event's duplicate; its refund id is 422.
  const other = await sendEvent(svc, P, secret, refund('r7', 'o8'), { webhookId: 'w7' });
  expect(other.status).toBe(200);
  expect(await other.json()).toEqual({ eventId, webhookId: 'w7', duplicate: true });
  expect((await sendEvent(svc, P, secret, refund('r7', 'o8'), { webhookId: 'w7b' })).status).toBe(422);
  expect(await redis.exists(k.orderEvents(P, 'o8'))).toBe(0);
  // The partner's retry of o7's refund is its duplicate.
  expect((await sendEvent(svc, P, secret, refund('r7', 'o7'), { webhookId: 'w7' })).status).toBe(200);
});

test("a stored refund whose answer was lost keeps its refund id for good: it does not expire after the provisional time", async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const orders = svc.rt.orderEvents;
  const original = orders.ingest.bind(orders);
  // The store lands, its answer is lost (a command timeout: not an error reply).
  orders.ingest = async (...args: Parameters<typeof original>) => {
    await original(...args);
    throw new Error('Command timed out');
  };
  try {
    expect((await sendEvent(svc, P, secret, refund('r10', 'o10'), { webhookId: 'w10' })).status).toBeGreaterThanOrEqual(500);
  } finally {
    orders.ingest = original;
  }
  expect(await redis.exists(k.orderInbox(P, 'o10', 'w10'))).toBe(1);
  expect(await redis.get(k.partnerRefundId(P, 'r10'))).toBe('o10');
  expect(await redis.ttl(k.partnerRefundId(P, 'r10'))).toBe(-1);
  // Past the provisional time (old code: the claim expired, another order's r10 was stored: a double reversal).
  await sleep(PROVISIONAL_SEC * 1000 + 500);
  expect((await sendEvent(svc, P, secret, refund('r10', 'o11'), { webhookId: 'w10b' })).status).toBe(422);
  expect(await redis.exists(k.orderEvents(P, 'o11'))).toBe(0);
  // The same order's refund still passes its claim: its retry is the duplicate, a resend under a new id is stored.
  expect((await sendEvent(svc, P, secret, refund('r10', 'o10'), { webhookId: 'w10' })).status).toBe(200);
  expect((await sendEvent(svc, P, secret, refund('r10', 'o10'), { webhookId: 'w10c' })).status).toBe(202);
  expect(await redis.get(k.partnerRefundId(P, 'r10'))).toBe('o10');
});

test("an order delivery does not take over a show event's claim whose write is still under way", async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const shows = svc.rt.shows;
  const original = shows.ingest.bind(shows);
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  shows.ingest = async (...args: Parameters<typeof original>) => {
    await gate;
    return original(...args);
  };
  let s: Promise<Response> | undefined;
  try {
    // The show delivery has claimed w9 and its write is delayed past the claim's held set.
    s = sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s9'), '2026-11-24T17:00:00Z'), { webhookId: 'w9' });
    while ((await redis.get(k.partnerWebhookId(P, 'w9'))) === null) await sleep(10);
    while ((await redis.exists(k.partnerWebhookIdHeld(P, 'w9'))) === 1) await sleep(100);
    // Old code: the order delivery took the claim over and was stored (202), then the show event too.
    const o = await sendEvent(svc, P, secret, orderEvent('o9'), { webhookId: 'w9' });
    expect(o.status).toBe(409);
    expect(await redis.exists(k.orderEvents(P, 'o9'))).toBe(0);
  } finally {
    open();
    shows.ingest = original;
  }
  expect((await s).status).toBe(202);
  expect(await redis.get(k.partnerWebhookId(P, 'w9'))).toBe('show:s9');
  expect(await redis.exists(k.showInbox(P, 's9', 'w9'))).toBe(1);
});

test('a refund in another currency than its order the ledger holds is refused (422) before any claim; the corrected refund takes the same ids', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  // The order booked in EUR (the attribution worker's step, run here: this service has no workers).
  await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse({ ...orderEvent('o-eur', 4000), data: { order: { ...orderEvent('o-eur', 4000).data.order, total: { amount: 4000, currency: 'EUR' } } } }));
  const refused = await sendEvent(svc, P, secret, refund('r-eur', 'o-eur', 700), { webhookId: 'w-eur' });
  expect(refused.status).toBe(422);
  expect(((await refused.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(['data.refund.amount.currency']);
  // Nothing stored, nothing claimed (old code: 202, the refund kept unapplied for good).
  for (const key of [k.orderInbox(P, 'o-eur', 'w-eur'), k.partnerWebhookId(P, 'w-eur')]) expect(await redis.exists(key)).toBe(0); // two slots: one EXISTS each
  expect(await redis.exists(k.partnerRefundId(P, 'r-eur'))).toBe(0);
  const eur = { ...refund('r-eur', 'o-eur', 700), data: { refund: { ...refund('r-eur', 'o-eur', 700).data.refund, amount: { amount: 700, currency: 'EUR' } } } };
  expect((await sendEvent(svc, P, secret, eur, { webhookId: 'w-eur' })).status).toBe(202);
  // Its webhook-id repeated: the stored event's duplicate, whatever the repeat says.
  const again = await sendEvent(svc, P, secret, refund('r-eur', 'o-eur', 700), { webhookId: 'w-eur' });
  expect(again.status).toBe(200);
  expect(((await again.json()) as { duplicate: boolean }).duplicate).toBe(true);
});

test('Cluster answers a wrong-currency refund as a single Redis does: a refund id this order holds asks for a new id; another scope\'s webhook-id and another order\'s refund id come first', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const usd = (id: string, orderId: string) => refund(id, orderId, 300);
  // Before its order: stored (202), the refund id o-held's.
  expect((await sendEvent(svc, P, secret, usd('r-held', 'o-held'), { webhookId: 'wh-1' })).status).toBe(202);
  expect((await sendEvent(svc, P, secret, usd('r-else', 'o-else'), { webhookId: 'wh-2' })).status).toBe(202);
  const eurOrder = orderEvent('o-held', 4000);
  await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse({ ...eurOrder, data: { order: { ...eurOrder.data.order, total: { amount: 4000, currency: 'EUR' } } } }));
  // The same refund id again in USD: the 422 asks for a new refund id (old code: "send it in EUR", which was then taken and did nothing).
  const again = await sendEvent(svc, P, secret, usd('r-held', 'o-held'), { webhookId: 'wh-3' });
  expect(again.status).toBe(422);
  const problem = (await again.json()) as { detail: string; errors: { path: string }[] };
  expect(problem.detail).toContain('under a new refund id');
  expect(problem.errors.map((e) => e.path)).toEqual(['data.refund.id', 'data.refund.amount.currency']);
  // A webhook-id claimed for another order whose event is not stored: 409, as on a single Redis (old code: the currency 422).
  await redis.set(k.partnerWebhookId(P, 'wh-ghost'), 'order:o-ghost', 'EX', 60);
  expect((await sendEvent(svc, P, secret, usd('r-new', 'o-held'), { webhookId: 'wh-ghost' })).status).toBe(409);
  // A refund id another order holds: that 422 (old code: the currency's).
  const taken = await sendEvent(svc, P, secret, usd('r-else', 'o-held'), { webhookId: 'wh-4' });
  expect(taken.status).toBe(422);
  expect(((await taken.json()) as { detail: string }).detail).toContain('was first sent for order o-else');
  for (const key of [k.partnerWebhookId(P, 'wh-3'), k.partnerWebhookId(P, 'wh-4'), k.partnerRefundId(P, 'r-new')]) expect(await redis.exists(key)).toBe(0);
});
