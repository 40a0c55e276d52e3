/**
 * A partner order event on a single Redis is stored by one Lua call (INGEST_ORDER_ONE_LUA,
 * src/store/show.repository.ts): webhook-id claim, refund-id claim (an `order.refunded`), the
 * pending-orders listing and inbox + event log + pending mark together, as a show event's claim and
 * write are (INGEST_SHOW_ONE_LUA). They were separate round trips — claim, refund claim, listing, store,
 * listing again, then the queue add: six for a refund, each under the command timeout, so a slow
 * Redis gave refunds 503s — and a first delivery that failed between the claim and the store left the
 * claim with nothing stored: the partner's resend corrected to another order under the same
 * webhook-id got 409 for INBOX_TTL_DAYS. Now a call that fails writes nothing.
 *
 * Round trips are counted with MONITOR on the test's own redis-server (the commands clients send, not
 * those a script runs). Real service, real Redis; the one-call path exists on a single Redis only (a
 * Cluster's keys span slots), so on SYNDICAST_TEST_REDIS=cluster these cases are skipped (the
 * Cluster path's answers are covered by refund-id.partner-wide and webhook-id.unstored-claim).
 */
import type { Redis } from 'ioredis';
import { testTopology } from '../helpers/redis-cluster.js';
import { createPartner, orderEvent, sendEvent, startService, type TestService } from '../helpers/service.js';

const single = testTopology() === 'single';
const maybe = single ? test : test.skip;

let svc: TestService;
let secret: string;
let client: Redis;
const P = 'oc';

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, P);
  client = svc.redis.client() as Redis;
});
afterAll(async () => {
  client?.disconnect();
  await svc?.close();
});

const refund = (id: string, orderId: string, amount = 500) => ({
  type: 'order.refunded',
  occurredAt: '2026-11-24T18:40:00Z',
  data: { refund: { id, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount, currency: 'USD' } } },
});

/**
 * The commands clients sent Redis while `act` ran that name one of `needles` (MONITOR, not a script's
 * own commands). A marker sent after `act` and seen by the monitor means every earlier command was seen.
 */
async function sentDuring(needles: string[], act: () => Promise<void>): Promise<string[][]> {
  const mon = await client.monitor();
  // Lines the server had already sent when disconnect() ends monitoring reach a connection no longer
  // "monitoring": ioredis emits them as "Command queue state error" errors, which with no listener
  // would throw (a loaded CI machine hit it). They are after the marker, so not ours to count.
  mon.on('error', () => undefined);
  const seen: string[][] = [];
  const marker = `marker-${Math.random().toString(36).slice(2)}`;
  let markerSeen: () => void = () => undefined;
  const markerArrived = new Promise<void>((r) => (markerSeen = r));
  mon.on('monitor', (_t: string, args: string[], source: string) => {
    if (args.includes(marker)) markerSeen();
    else if (source !== 'lua' && args.some((a) => needles.some((n) => a.includes(n)))) seen.push(args);
  });
  try {
    await act();
    await client.echo(marker);
    await markerArrived;
  } finally {
    mon.disconnect();
  }
  return seen;
}

/** The keys of ours an order event touches: the order's slot, its webhook-id claim, its refund claim, the pending-orders set. */
function ourKeys(orderId: string, webhookId: string, refundId?: string): string[] {
  const k = svc.rt.keys;
  return [k.orderTag(P, orderId), k.partnerWebhookId(P, webhookId), k.pendingOrders(), ...(refundId ? [k.partnerRefundId(P, refundId)] : [])];
}

maybe('an order.created and an order.refunded each take one call of ours, then the queue add: two round trips', async () => {
  // Warm-up: scripts loaded (a first EVALSHA may be answered NOSCRIPT and sent again as EVAL).
  expect((await sendEvent(svc, P, secret, orderEvent('o-warm'), { webhookId: 'w-warm' })).status).toBe(202);
  expect((await sendEvent(svc, P, secret, refund('r-warm', 'o-warm'), { webhookId: 'w-warm-r' })).status).toBe(202);

  let status = 0;
  const created = await sentDuring(['o-rt-1', 'w-rt-1'], async () => {
    status = (await sendEvent(svc, P, secret, orderEvent('o-rt-1'), { webhookId: 'w-rt-1' })).status;
  });
  expect(status).toBe(202);
  const keysCreated = ourKeys('o-rt-1', 'w-rt-1');
  expect(created.filter((c) => c.some((a) => keysCreated.some((k) => a.includes(k))))).toHaveLength(1);
  // Everything sent about this event: the store and the attribution queue's add.
  expect(created.length).toBeLessThanOrEqual(2);

  const refunded = await sentDuring(['o-rt-1', 'w-rt-2', 'r-rt-1'], async () => {
    status = (await sendEvent(svc, P, secret, refund('r-rt-1', 'o-rt-1'), { webhookId: 'w-rt-2' })).status;
  });
  expect(status).toBe(202);
  const keysRefund = ourKeys('o-rt-1', 'w-rt-2', 'r-rt-1');
  expect(refunded.filter((c) => c.some((a) => keysRefund.some((k) => a.includes(k))))).toHaveLength(1);
  expect(refunded.length).toBeLessThanOrEqual(2);

  // The refund id taken by another order: one call, 422, nothing stored.
  const refused = await sentDuring(['o-rt-2', 'w-rt-3', 'r-rt-1'], async () => {
    status = (await sendEvent(svc, P, secret, refund('r-rt-1', 'o-rt-2'), { webhookId: 'w-rt-3' })).status;
  });
  expect(status).toBe(422);
  expect(refused).toHaveLength(1);
  expect(await client.exists(svc.rt.keys.orderEvents(P, 'o-rt-2'), svc.rt.keys.partnerWebhookId(P, 'w-rt-3'))).toBe(0);

  // What was stored is what the answers said: the order's log holds the order and its refund, each
  // pending for attribution, the order listed for the sweep, both ids claimed.
  expect(await client.xlen(svc.rt.keys.orderEvents(P, 'o-rt-1'))).toBe(2);
  expect(await client.hlen(svc.rt.keys.orderPending(P, 'o-rt-1'))).toBe(2);
  expect(await client.zscore(svc.rt.keys.pendingOrders(), JSON.stringify([P, 'o-rt-1']))).not.toBeNull();
  expect(await client.get(svc.rt.keys.partnerWebhookId(P, 'w-rt-2'))).toBe('order:o-rt-1');
  expect(await client.get(svc.rt.keys.partnerRefundId(P, 'r-rt-1'))).toBe('o-rt-1');
  // And a re-delivery is the duplicate with the stored event id, in one call of ours too.
  const eventId = (await client.xrange(svc.rt.keys.orderEvents(P, 'o-rt-1'), '-', '+'))[1]?.[0];
  expect(eventId).toEqual(expect.any(String));
  const dup = await sendEvent(svc, P, secret, refund('r-rt-1', 'o-rt-1'), { webhookId: 'w-rt-2' });
  expect(dup.status).toBe(200);
  expect(await dup.json()).toEqual({ eventId, webhookId: 'w-rt-2', duplicate: true });
});

maybe.each([
  ['the event log', (o: string) => svc.rt.keys.orderEvents(P, o)],
  ['the pending marks', (o: string) => svc.rt.keys.orderPending(P, o)],
])('a store that fails at %s writes nothing: no claim stands without its event, and the resend corrected to another order is stored', async (where, broken) => {
  const o = `o-fail-${where.length}`;
  const wid = `w-fail-${where.length}`;
  const rid = `r-fail-${where.length}`;
  // A key of another type under the name: the order's write fails inside Redis (WRONGTYPE).
  await client.set(broken(o), 'not a stream or hash');
  const failed = await sendEvent(svc, P, secret, refund(rid, o), { webhookId: wid });
  expect(failed.status).toBeGreaterThanOrEqual(500);
  const k = svc.rt.keys;
  expect(await client.exists(k.partnerWebhookId(P, wid), k.partnerRefundId(P, rid), k.orderInbox(P, o, wid))).toBe(0);
  expect(await client.type(k.orderEvents(P, o))).toBe(broken(o) === k.orderEvents(P, o) ? 'string' : 'none');
  expect(await client.exists(k.orderPending(P, o))).toBe(broken(o) === k.orderPending(P, o) ? 1 : 0);
  expect(await client.zscore(k.pendingOrders(), JSON.stringify([P, o]))).toBeNull();

  // The partner corrects the refund's order and resends it under the same webhook-id: stored (it got
  // 409 while the failed first delivery's claim stood), and the refund id is now that order's.
  const corrected = await sendEvent(svc, P, secret, refund(rid, `${o}-b`), { webhookId: wid });
  expect(corrected.status).toBe(202);
  expect(await client.get(k.partnerWebhookId(P, wid))).toBe(`order:${o}-b`);
  expect(await client.get(k.partnerRefundId(P, rid))).toBe(`${o}-b`);
  expect(await client.xlen(k.orderEvents(P, `${o}-b`))).toBe(1);
  expect((await sendEvent(svc, P, secret, refund(rid, o), { webhookId: `${wid}-again` })).status).toBe(422);
});
