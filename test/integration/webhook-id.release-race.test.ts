/**
 * A refused event's webhook-id claim is taken back only when no other delivery may have stored under
 * it. On a Redis Cluster the id is claimed before the show's script checks the register bound, and a
 * refused event (422, show full) releases its claim so it can go to another show under the same id.
 * Two different events under one id to one full show at once both pass the claim (it names their
 * show): one for a new register, refused; one for a register the show has, stored. The release
 * compared only the scope, so the refused one deleted the claim the stored one relies on, and a third
 * event under the id for another show was stored as new: two events under one webhook-id (contract
 * §3). The interleaving is made here for real: the stored event's whole delivery runs between the
 * refused one's write and its release. Real service, real Redis (SYNDICAST_TEST_REDIS=cluster: the
 * Cluster path, where the race is; on a single Redis the one-step script checks the bound before it
 * claims, and the same sequence is answered the same way). The order path has the same release: a
 * refund refused because another order holds its refund id (422) takes its claim back, while another
 * event under the id for the same order may be stored under it (that case runs the Cluster order path on
 * either topology).
 */
import { SHOW_REGISTERS_MAX } from '../../src/store/show.repository.js';
import { createPartner, orderEvent, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'rr');
});
afterAll(async () => {
  await svc?.close();
});

const pinned = (showId: string, productId: string, at = '2026-11-24T17:01:00Z') => ({ type: 'product.pinned', occurredAt: at, data: { showId, productId } });

test("a refused event's release does not free a webhook-id another event was stored under meanwhile", async () => {
  expect((await sendEvent(svc, 'rr', secret, showEvent('show.scheduled', sampleShow('full'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const desired = svc.rt.keys.desired('rr', 'full');
  const old = '000000000000001000000|seed';
  for (let i = 0; i < SHOW_REGISTERS_MAX - 1; i += 500) {
    const args: string[] = [];
    for (let j = i; j < Math.min(i + 500, SHOW_REGISTERS_MAX - 1); j++) args.push(`pin:s${j}`, 'true', `pin:s${j}@`, old);
    await svc.rt.redis.hset(desired, ...args);
  }
  expect((await sendEvent(svc, 'rr', secret, showEvent('show.scheduled', sampleShow('other'), '2026-11-24T17:00:00Z'))).status).toBe(202);

  // Event B (a new product: refused) and event A (a product the show has: stored), one webhook-id.
  // A's whole delivery runs after B's write was refused and before B's release (Cluster path).
  const shows = svc.rt.shows;
  const original = shows.ingest.bind(shows);
  let stored: Response | undefined;
  let raced = false;
  shows.ingest = async (...args: Parameters<typeof original>) => {
    const r = await original(...args);
    if (r.full && !raced) {
      raced = true;
      stored = await sendEvent(svc, 'rr', secret, pinned('full', 's7', '2026-11-24T17:01:30Z'), { webhookId: 'msg_rr' });
    }
    return r;
  };
  let refused: Response;
  try {
    refused = await sendEvent(svc, 'rr', secret, pinned('full', 'new'), { webhookId: 'msg_rr' });
  } finally {
    shows.ingest = original;
  }
  expect(refused.status).toBe(422);
  expect(raced).toBe(!shows.singleNode);
  // A single Redis refuses B before it claims: A comes after it.
  stored ??= await sendEvent(svc, 'rr', secret, pinned('full', 's7', '2026-11-24T17:01:30Z'), { webhookId: 'msg_rr' });
  expect(stored.status).toBe(202);
  const { eventId } = (await stored.json()) as { eventId: string };
  expect(await svc.rt.redis.get(svc.rt.keys.showInbox('rr', 'full', 'msg_rr'))).toBe(eventId);

  // The id is A's: another show under it is A's duplicate, nothing stored there.
  const elsewhere = await sendEvent(svc, 'rr', secret, pinned('other', 'new'), { webhookId: 'msg_rr' });
  expect(elsewhere.status).toBe(200);
  expect(await elsewhere.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_rr' });
  expect(await svc.rt.redis.hexists(svc.rt.keys.desired('rr', 'other'), 'pin:new')).toBe(0);
  expect(await svc.rt.redis.exists(svc.rt.keys.showInbox('rr', 'other', 'msg_rr'))).toBe(0);
});

const refund = (id: string, orderId: string) => ({
  type: 'order.refunded',
  occurredAt: '2026-11-24T18:40:00Z',
  data: { refund: { id, orderId, createdAt: '2026-11-24T18:40:00Z', amount: { amount: 500, currency: 'USD' } } },
});

test("a refused refund's release does not free a webhook-id another event of its order was stored under meanwhile", async () => {
  // The Cluster order path (claim, refund-id claim, store: separate steps) on either topology; on a
  // single Redis an order event is otherwise one Lua call, which refuses before it claims.
  const orders = svc.rt.orderEvents;
  Object.defineProperty(orders, 'singleNode', { get: () => false, configurable: true });
  const claims = svc.rt.webhookIds;
  const original = claims.releaseIfHeld.bind(claims);
  try {
    expect((await sendEvent(svc, 'rr', secret, refund('re-1', 'oa'))).status).toBe(202);
    // Event B (a refund whose id order oa holds: refused) and event A (the order's order.created, which
    // no refund id can refuse: stored), one webhook-id. A's whole delivery runs after B was refused and
    // before B's release; A passes the claim B made, so A must be tracked by it too.
    let stored: Response | undefined;
    claims.releaseIfHeld = async (...args: Parameters<typeof original>) => {
      stored ??= await sendEvent(svc, 'rr', secret, orderEvent('ob'), { webhookId: 'msg_rr_o' });
      return original(...args);
    };
    const refused = await sendEvent(svc, 'rr', secret, refund('re-1', 'ob'), { webhookId: 'msg_rr_o' });
    claims.releaseIfHeld = original;
    expect(refused.status).toBe(422);
    expect(stored?.status).toBe(202);
    const { eventId } = (await stored!.json()) as { eventId: string };
    expect(await svc.rt.redis.get(svc.rt.keys.orderInbox('rr', 'ob', 'msg_rr_o'))).toBe(eventId);

    // The id is A's: another order under it is A's duplicate, nothing stored there.
    const elsewhere = await sendEvent(svc, 'rr', secret, refund('re-3', 'oc'), { webhookId: 'msg_rr_o' });
    expect(elsewhere.status).toBe(200);
    expect(await elsewhere.json()).toEqual({ eventId, duplicate: true, webhookId: 'msg_rr_o' });
    expect(await svc.rt.redis.exists(svc.rt.keys.orderEvents('rr', 'oc'))).toBe(0);
    expect(await svc.rt.redis.exists(svc.rt.keys.partnerRefundId('rr', 're-3'))).toBe(0);
  } finally {
    claims.releaseIfHeld = original;
    delete (orders as unknown as Record<string, unknown>)['singleNode'];
  }
});
