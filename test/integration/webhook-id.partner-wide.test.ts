/**
 * A repeated `webhook-id` is a duplicate partner-wide (issue 8 item 5, the external contract §3): the same id, correctly
 * signed, for another show, for a pin on another show or for an order answers `200 duplicate:true` and
 * has no effect there; another partner's id space is its own. The claim that makes it partner-wide is
 * a fence, not the record: a delivery that died between claim and write is stored by its retry.
 */
import { createPartner, orderEvent, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
let otherSecret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'wp');
  otherSecret = await createPartner(svc, 'wq');
  const t = await svc.api('/v1/partners/wp/targets?verify=false', { json: { id: 'wp-yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
  expect(t.status).toBe(201);
});
afterAll(async () => {
  await svc?.close();
});

const order = (id: string) => orderEvent(id);

async function orderEventCount(partnerId: string, orderId: string): Promise<number> {
  return svc.rt.redis.xlen(svc.rt.keys.orderEvents(partnerId, orderId));
}

/** Show `first` stored under `webhookId`, then show `second` under it: 200 duplicate of the first, nothing of `second` stored. Returns the first's event id. */
async function secondShowIsDuplicate(first: string, second: string, webhookId: string): Promise<string> {
  const stored = await sendEvent(svc, 'wp', secret, showEvent('show.scheduled', sampleShow(first), '2026-11-24T17:00:00Z'), { webhookId });
  expect(stored.status).toBe(202);
  const { eventId } = (await stored.json()) as { eventId: string };
  const other = await sendEvent(svc, 'wp', secret, showEvent('show.scheduled', sampleShow(second), '2026-11-24T17:00:00Z'), { webhookId });
  expect(other.status).toBe(200);
  expect(await other.json()).toEqual({ eventId, duplicate: true, webhookId });
  expect(await svc.rt.shows.desired('wp', second)).toBeNull();
  expect(await svc.rt.redis.exists(svc.rt.keys.showEvents('wp', second))).toBe(0);
  return eventId;
}

test('the same webhook-id for another show, a pin elsewhere or an order is 200 duplicate:true with no second effect', async () => {
  // Another show.
  const eventId = await secondShowIsDuplicate('a', 'b', 'msg_same');
  expect(await svc.rt.redis.zscore(svc.rt.keys.partnerShows('wp'), 'b')).toBeNull();

  // A pin on another show.
  const pin = await sendEvent(svc, 'wp', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:00:00Z', data: { showId: 'c', productId: 'p1' } }, { webhookId: 'msg_same' });
  expect(pin.status).toBe(200);
  expect(await pin.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_same' });
  expect(await svc.rt.redis.exists(svc.rt.keys.desired('wp', 'c'))).toBe(0);

  // An order.
  const ord = await sendEvent(svc, 'wp', secret, order('o1'), { webhookId: 'msg_same' });
  expect(ord.status).toBe(200);
  expect(await ord.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_same' });
  expect(await orderEventCount('wp', 'o1')).toBe(0);
  expect(await svc.rt.attributionProducer.queue.getJobCounts('waiting')).toMatchObject({ waiting: 0 });

  // The same show again is the ordinary duplicate; the first show's state is untouched.
  const again = await sendEvent(svc, 'wp', secret, showEvent('show.updated', sampleShow('a', { title: 'changed' }), '2026-11-24T17:30:00Z'), { webhookId: 'msg_same' });
  expect(again.status).toBe(200);
  expect(await again.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_same' });
  expect((await svc.rt.shows.desired('wp', 'a'))?.title).toBe('Show a');
  expect(await svc.rt.redis.xlen(svc.rt.keys.showEvents('wp', 'a'))).toBe(1);
});

test('an order id first, then the same webhook-id for a show: duplicate; another partner has its own ids', async () => {
  const first = await sendEvent(svc, 'wp', secret, order('o2'), { webhookId: 'msg_order_first' });
  expect(first.status).toBe(202);
  const { eventId } = (await first.json()) as { eventId: string };
  const refundElsewhere = await sendEvent(
    svc,
    'wp',
    secret,
    { type: 'order.refunded', occurredAt: '2026-11-24T18:40:00Z', data: { refund: { id: 'r1', orderId: 'o3', createdAt: '2026-11-24T18:40:00Z', amount: { amount: 100, currency: 'USD' } } } },
    { webhookId: 'msg_order_first' },
  );
  expect(refundElsewhere.status).toBe(200);
  expect(await refundElsewhere.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_order_first' });
  expect(await orderEventCount('wp', 'o3')).toBe(0);
  const show = await sendEvent(svc, 'wp', secret, showEvent('show.scheduled', sampleShow('d'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_order_first' });
  expect(show.status).toBe(200);
  expect(await svc.rt.shows.desired('wp', 'd')).toBeNull();
  expect(await orderEventCount('wp', 'o2')).toBe(1);

  // Another partner's event with the same id is its own.
  const theirs = await sendEvent(svc, 'wq', otherSecret, showEvent('show.scheduled', sampleShow('d'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_order_first' });
  expect(theirs.status).toBe(202);
  expect((await svc.rt.shows.desired('wq', 'd'))?.title).toBe('Show d');
});

test('a delivery that died between its claim and its write is stored by its retry; the claim lasts as long as the inbox', async () => {
  // The process died right after claiming: the claim is there, nothing else.
  const claims = svc.rt.webhookIds;
  expect(await claims.claim('wp', 'msg_crashed', 'show:e')).toBe('show:e');
  expect(await svc.rt.shows.desired('wp', 'e')).toBeNull();

  const retry = await sendEvent(svc, 'wp', secret, showEvent('show.scheduled', sampleShow('e'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_crashed' });
  expect(retry.status).toBe(202);
  expect(await retry.json()).toMatchObject({ duplicate: false });
  expect((await svc.rt.shows.desired('wp', 'e'))?.title).toBe('Show e');

  // Same for an order.
  expect(await claims.claim('wp', 'msg_crashed_order', 'order:o9')).toBe('order:o9');
  const orderRetry = await sendEvent(svc, 'wp', secret, order('o9'), { webhookId: 'msg_crashed_order' });
  expect(orderRetry.status).toBe(202);
  expect(await orderEventCount('wp', 'o9')).toBe(1);

  const ttl = await svc.rt.redis.ttl(svc.rt.keys.partnerWebhookId('wp', 'msg_crashed'));
  expect(ttl).toBeGreaterThan(svc.config.inboxTtlDays * 86_400 - 60);
});

test("the Cluster path's steps (forced on a single Redis): an order event under another order's webhook-id is its duplicate", async () => {
  // On a single Redis an order event is one Lua call; the Cluster path (claim, then the order's write)
  // is forced here so that its rule is checked on either topology.
  const orders = svc.rt.orderEvents;
  Object.defineProperty(orders, 'singleNode', { get: () => false, configurable: true });
  try {
    const first = await sendEvent(svc, 'wp', secret, order('o-cp1'), { webhookId: 'msg_cluster_path' });
    expect(first.status).toBe(202);
    const { eventId } = (await first.json()) as { eventId: string };
    const other = await sendEvent(svc, 'wp', secret, order('o-cp2'), { webhookId: 'msg_cluster_path' });
    expect(other.status).toBe(200);
    expect(await other.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_cluster_path' });
    expect(await orderEventCount('wp', 'o-cp2')).toBe(0);
  } finally {
    delete (orders as unknown as Record<string, unknown>)['singleNode'];
  }
  expect(orders.singleNode).toBe(svc.rt.redis.isCluster !== true);
});

test("the Cluster path's steps (forced on a single Redis): a show event under another show's or an order's webhook-id is its duplicate", async () => {
  // A show event's Cluster path claims the id, then writes (src/sources/ingest.service.ts); since the
  // order events have a Cluster path of their own, the case above no longer goes through the show's.
  const shows = svc.rt.shows;
  Object.defineProperty(shows, 'singleNode', { get: () => false, configurable: true });
  try {
    await secondShowIsDuplicate('cp-a', 'cp-b', 'msg_cluster_show');

    // An order's id first: a show under it is its duplicate too.
    const ord = await sendEvent(svc, 'wp', secret, order('o-cp3'), { webhookId: 'msg_cluster_order_show' });
    expect(ord.status).toBe(202);
    const show = await sendEvent(svc, 'wp', secret, showEvent('show.scheduled', sampleShow('cp-c'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_cluster_order_show' });
    expect(show.status).toBe(200);
    expect(await shows.desired('wp', 'cp-c')).toBeNull();
  } finally {
    delete (shows as unknown as Record<string, unknown>)['singleNode'];
  }
  expect(shows.singleNode).toBe(svc.rt.redis.isCluster !== true);
});
