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
import { createAttributionProcessor } from '../../src/attribution/attribution.worker.js';
import { attributionJobId } from '../../src/queues/attribution.queue.js';
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

/** The order's recorded currency expires INBOX_TTL_DAYS from now (within a few seconds). */
async function expiresInInboxTtl(key: string): Promise<void> {
  const ttl = await svc.rt.redis.ttl(key);
  const inboxTtlSec = svc.config.inboxTtlDays * 86_400;
  expect(ttl).toBeGreaterThan(inboxTtlSec - 60);
  expect(ttl).toBeLessThanOrEqual(inboxTtlSec);
}

test("the recorded currency always has an expiry: INBOX_TTL_DAYS from the order's last stored event, then the log's once all are handled", async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const cur = k.orderCurrency(P, 'o-life');
  expect((await sendEvent(svc, P, secret, eurOrder('o-life'))).status).toBe(202);
  expect(await redis.get(cur)).toBe('EUR');
  // Old code: no expiry (-1) until the new handled script set one; a worker of the version before
  // (its 2-key handled script) never did, so the key was kept for good.
  await expiresInInboxTtl(cur);
  // Handled: the log's expiry (set again, not left as it was).
  await redis.expire(cur, 600);
  for (const { eventId } of await svc.rt.orderEvents.pendingEvents(P, 'o-life')) await svc.rt.orderEvents.handled(P, 'o-life', eventId);
  const ttl = await redis.ttl(cur);
  expect(Math.abs(ttl - (await redis.ttl(k.orderEvents(P, 'o-life'))))).toBeLessThanOrEqual(1);
  await expiresInInboxTtl(cur);
  // A later event of the order refreshes the expiry (it was persisted); the currency stays the first order.created's.
  await redis.expire(cur, 600);
  expect((await sendEvent(svc, P, secret, orderEvent('o-life', 4000))).status).toBe(202);
  await expiresInInboxTtl(cur);
  expect(await redis.get(cur)).toBe('EUR');
  // The same on the Cluster path (INGEST_PLAIN_LUA).
  await onClusterPath(async () => {
    const clCur = k.orderCurrency(P, 'o-life-cl');
    expect((await sendEvent(svc, P, secret, eurOrder('o-life-cl'))).status).toBe(202);
    await expiresInInboxTtl(clCur);
    await redis.expire(clCur, 600);
    expect((await sendEvent(svc, P, secret, refund('o-life-cl-r', 'o-life-cl', 'EUR'))).status).toBe(202);
    await expiresInInboxTtl(clCur);
  });
});

test('two order.created of one order in two currencies, both stored, the later booked first: the ledger books the recorded (first stored) one, so refunds get one answer before and after booking', async () => {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const ledger = new AttributionRepository(redis, k);
  const eur = eurOrder('o-two');
  const usd = orderEvent('o-two', 4000);
  expect((await sendEvent(svc, P, secret, eur)).status).toBe(202);
  expect((await sendEvent(svc, P, secret, usd)).status).toBe(202);
  expect(await redis.get(k.orderCurrency(P, 'o-two'))).toBe('EUR');
  expect((await sendEvent(svc, P, secret, refund('o-two-r1', 'o-two', 'USD'))).status).toBe(422);
  // The USD order.created's job runs first (the worker's entry): old code booked the order in USD.
  await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse(usd));
  expect(await ledger.orderCurrency(P, partnerOrderRef('o-two'))).toBeUndefined();
  expect((await sendEvent(svc, P, secret, refund('o-two-r2', 'o-two', 'USD'))).status).toBe(422);
  await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse(eur));
  expect(await ledger.orderCurrency(P, partnerOrderRef('o-two'))).toBe('EUR');
  expect((await sendEvent(svc, P, secret, refund('o-two-r3', 'o-two', 'USD'))).status).toBe(422);
  expect((await sendEvent(svc, P, secret, refund('o-two-r4', 'o-two', 'EUR'))).status).toBe(202);
});

/**
 * The worker books an order.created by its store's mark (AttributionJob.otherCurrency), not by a read of
 * the recorded currency per order (one Redis command per order, 2.5-22 % of the attribution row's
 * throughput): the store script, which reads the recorded currency anyway, marks the order.created in
 * another currency, and the job carries the mark. Here the recorded currency is gone (expired) before the
 * jobs run: the marks still decide (old code: no mark on the jobs, and the worker's read found nothing,
 * so the USD order.created was booked).
 */
async function bookedByMark(orderId: string): Promise<void> {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  const ledger = new AttributionRepository(redis, k);
  expect((await sendEvent(svc, P, secret, eurOrder(orderId))).status).toBe(202);
  expect((await sendEvent(svc, P, secret, orderEvent(orderId, 4000))).status).toBe(202);
  const jobs = await Promise.all((await svc.rt.orderEvents.pendingEvents(P, orderId)).map(({ eventId }) => svc.rt.attributionProducer.queue.getJob(attributionJobId(P, orderId, eventId))));
  expect(jobs.map((j) => [j?.data.event.type === 'order.created' && j.data.event.data.order.total.currency, j?.data.otherCurrency])).toEqual([
    ['EUR', false],
    ['USD', true],
  ]);
  await redis.del(k.orderCurrency(P, orderId));
  const processor = createAttributionProcessor(svc.rt.attribution, svc.rt.orderEvents);
  expect(await processor(jobs[1]!)).toBe('duplicate'); // the USD one's job first: not booked
  expect(await ledger.orderCurrency(P, partnerOrderRef(orderId))).toBeUndefined();
  await processor(jobs[0]!);
  expect(await ledger.orderCurrency(P, partnerOrderRef(orderId))).toBe('EUR');
}

test("the worker books an order.created by its store's mark, with no read of the recorded currency (one Redis's one-call script, and the Cluster path)", async () => {
  await bookedByMark('o-mark');
  await onClusterPath(() => bookedByMark('o-mark-cl'));
});

/** The attribution jobs of `orderId`'s pending events, in stored order. */
async function jobsOf(orderId: string) {
  return Promise.all((await svc.rt.orderEvents.pendingEvents(P, orderId)).map(({ eventId }) => svc.rt.attributionProducer.queue.getJob(attributionJobId(P, orderId, eventId))));
}

/**
 * A duplicate delivery (the same webhook-id again) carries its stored order.created's mark too: its
 * job is added again (a no-op while the first is queued; the job the first delivery's add lost, here
 * removed by hand, is added by the re-delivery), and the worker books it by that mark.
 */
async function duplicateKeepsMark(orderId: string): Promise<void> {
  const ledger = new AttributionRepository(svc.rt.redis, svc.rt.keys);
  const sends = [eurOrder(orderId), orderEvent(orderId, 4000)].map((e, i) => () => sendEvent(svc, P, secret, e, { webhookId: `${orderId}-w${i}` }));
  for (const send of sends) expect((await send()).status).toBe(202);
  for (const job of await jobsOf(orderId)) await job!.remove();
  for (const send of sends) expect((await send()).status).toBe(200);
  const jobs = await jobsOf(orderId);
  expect(jobs.map((j) => j?.data.otherCurrency)).toEqual([false, true]);
  await svc.rt.redis.del(svc.rt.keys.orderCurrency(P, orderId)); // the marks decide, not a read
  const processor = createAttributionProcessor(svc.rt.attribution, svc.rt.orderEvents);
  expect(await processor(jobs[1]!)).toBe('duplicate'); // the USD one: not booked
  await processor(jobs[0]!);
  expect(await ledger.orderCurrency(P, partnerOrderRef(orderId))).toBe('EUR');
}

test("a duplicate delivery's job carries its order.created's mark (one Redis's one-call script, and the Cluster path)", async () => {
  await duplicateKeepsMark('o-dup');
  await onClusterPath(() => duplicateKeepsMark('o-dup-cl'));
});

/**
 * A job of an older version (no mark): the worker reads the order's recorded currency instead, and
 * does not book an order.created in another currency.
 */
test('an unmarked job (an older version\'s) is booked by the recorded currency the worker reads', async () => {
  const ledger = new AttributionRepository(svc.rt.redis, svc.rt.keys);
  expect((await sendEvent(svc, P, secret, eurOrder('o-old'))).status).toBe(202);
  expect((await sendEvent(svc, P, secret, orderEvent('o-old', 4000))).status).toBe(202);
  for (const job of await jobsOf('o-old')) {
    const { otherCurrency, ...old } = job!.data;
    expect(otherCurrency).toBeDefined();
    await job!.updateData(old);
  }
  const jobs = await jobsOf('o-old');
  expect(jobs.map((j) => j && 'otherCurrency' in j.data)).toEqual([false, false]);
  const processor = createAttributionProcessor(svc.rt.attribution, svc.rt.orderEvents);
  expect(await processor(jobs[1]!)).toBe('duplicate'); // the USD one first: the read finds EUR, not booked
  expect(await ledger.orderCurrency(P, partnerOrderRef('o-old'))).toBeUndefined();
  await processor(jobs[0]!);
  expect(await ledger.orderCurrency(P, partnerOrderRef('o-old'))).toBe('EUR');
});

/**
 * Cluster path: a refund-id claim the order holds with no refund under it stored (a delivery refused
 * for its currency that died before it took its claim back, or whose release failed: the claim then
 * has no tracked delivery). The 422 asked for a new refund id; the same id in the order's currency is
 * stored. A refund that is stored under the id (pending, or handled into the ledger) is still named.
 */
async function leftoverClaim(orderId: string, booked: boolean): Promise<void> {
  const k = svc.rt.keys;
  const redis = svc.rt.redis;
  expect((await sendEvent(svc, P, secret, eurOrder(orderId))).status).toBe(202);
  if (booked) await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse(eurOrder(orderId)));
  await redis.set(k.partnerRefundId(P, `${orderId}-left`), orderId); // the claim a dead delivery left
  const first = await sendEvent(svc, P, secret, refund(`${orderId}-left`, orderId, 'USD'));
  expect(first.status).toBe(422);
  expect(await problemPaths(first)).toEqual(['data.refund.amount.currency']); // old code: data.refund.id too ("a new refund id")
  expect((await sendEvent(svc, P, secret, refund(`${orderId}-left`, orderId, 'EUR'))).status).toBe(202);
  // Now one is stored under it: the same id in USD asks for a new id (pending, then booked by the worker).
  const again = await sendEvent(svc, P, secret, refund(`${orderId}-left`, orderId, 'USD'));
  expect(await problemPaths(again)).toEqual(['data.refund.id', 'data.refund.amount.currency']);
  for (const { eventId } of await svc.rt.orderEvents.pendingEvents(P, orderId)) {
    const raw = await svc.rt.orderEvents.event(P, orderId, eventId);
    await svc.rt.attribution.handlePartnerEvent(P, PartnerEventSchema.parse(JSON.parse(raw!)));
    await svc.rt.orderEvents.handled(P, orderId, eventId);
  }
  const afterBooking = await sendEvent(svc, P, secret, refund(`${orderId}-left`, orderId, 'USD'));
  expect(await problemPaths(afterBooking)).toEqual(['data.refund.id', 'data.refund.amount.currency']);
}

test("Cluster path: a refund-id claim left with nothing stored under it does not make the 422 ask for a new refund id (store's check and the ledger's)", async () => {
  await onClusterPath(async () => {
    await leftoverClaim('o-left', false);
    await leftoverClaim('o-left-led', true);
  });
});

test('Cluster path: with more pending events of the order than the check reads, a held refund id is named (the safe side)', async () => {
  const k = svc.rt.keys;
  await onClusterPath(async () => {
    expect((await sendEvent(svc, P, secret, eurOrder('o-many'))).status).toBe(202);
    for (const i of [1, 2, 3, 4]) expect((await sendEvent(svc, P, secret, refund(`o-many-r${i}`, 'o-many', 'EUR'))).status).toBe(202);
    await svc.rt.redis.set(k.partnerRefundId(P, 'o-many-left'), 'o-many');
    const r = await sendEvent(svc, P, secret, refund('o-many-left', 'o-many', 'USD'));
    expect(await problemPaths(r)).toEqual(['data.refund.id', 'data.refund.amount.currency']);
  });
});

test('Cluster path: two concurrent deliveries of one refused refund get the same answer', async () => {
  await onClusterPath(async () => {
    expect((await sendEvent(svc, P, secret, eurOrder('o-twice'))).status).toBe(202);
    const [a, b] = await Promise.all([0, 1].map(() => sendEvent(svc, P, secret, refund('o-twice-r', 'o-twice', 'USD'))));
    expect([a!.status, b!.status]).toEqual([422, 422]);
    expect(await problemPaths(a!)).toEqual(await problemPaths(b!));
  });
});
