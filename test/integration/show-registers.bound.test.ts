/**
 * A show's desired state is bounded. Each `product.updated` and `product.pinned`/`unpinned` of a new
 * product id added a register of its own to the show's hash (the snapshot's 1,000 products and 1,000
 * pinned ids are bounded by its schema, these were not): a partner whose catalogue sync sent every
 * product of a large catalogue to one show, or a buggy id generator, grew that hash without end (a
 * product register holds up to ≈ 5 KB), in the Redis every partner shares (noeviction), and every sync
 * of the show read and parsed all of it. A register of a new id is refused once the show holds
 * SHOW_REGISTERS_MAX of them (422, nothing stored); the show's existing registers take events as before.
 * Real service, real Redis (SYNDICAST_TEST_REDIS=cluster: the Cluster path's script).
 */
import { SHOW_REGISTERS_MAX } from '../../src/store/show.repository.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'rg');
});
afterAll(async () => {
  await svc?.close();
});

const product = (id: string, amount = 100) => ({ id, title: `Product ${id}`, price: { amount, currency: 'USD' }, url: `https://shop.example.com/${id}` });

test('a new product register is refused once the show holds SHOW_REGISTERS_MAX; existing ones still take events', async () => {
  expect((await sendEvent(svc, 'rg', secret, showEvent('show.scheduled', sampleShow('full'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const desired = svc.rt.keys.desired('rg', 'full');
  // Fill the show to the bound (the snapshot is one register): product registers as events would write them.
  const old = '000000000000001000000|seed';
  for (let i = 0; i < SHOW_REGISTERS_MAX - 1; i += 500) {
    const args: string[] = [];
    for (let j = i; j < Math.min(i + 500, SHOW_REGISTERS_MAX - 1); j++) args.push(`prod:s${j}`, JSON.stringify(product(`s${j}`)), `prod:s${j}@`, old);
    await svc.rt.redis.hset(desired, ...args);
  }
  const before = await svc.rt.redis.hlen(desired);

  const fresh = await sendEvent(svc, 'rg', secret, { type: 'product.updated', occurredAt: '2026-11-24T17:01:00Z', data: { showId: 'full', product: product('new1') } }, { webhookId: 'msg_rg_new1' });
  expect(fresh.status).toBe(422);
  expect(fresh.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await fresh.json()) as { detail: string }).detail).toContain(`${SHOW_REGISTERS_MAX}`);
  const pin = await sendEvent(svc, 'rg', secret, { type: 'product.pinned', occurredAt: '2026-11-24T17:01:01Z', data: { showId: 'full', productId: 'new2' } }, { webhookId: 'msg_rg_new2' });
  expect(pin.status).toBe(422);
  expect(await svc.rt.redis.hlen(desired)).toBe(before);
  expect(await svc.rt.redis.hexists(desired, 'prod:new1')).toBe(0);

  // The registers the show has take events as before; so does its snapshot.
  const update = { type: 'product.updated', occurredAt: '2026-11-24T17:02:00Z', data: { showId: 'full', product: product('s7', 999) } };
  expect((await sendEvent(svc, 'rg', secret, update, { webhookId: 'msg_rg_s7' })).status).toBe(202);
  expect(JSON.parse((await svc.rt.redis.hget(desired, 'prod:s7'))!)).toMatchObject({ price: { amount: 999 } });
  expect((await sendEvent(svc, 'rg', secret, update, { webhookId: 'msg_rg_s7' })).status).toBe(200); // its repeat: the duplicate
  expect((await sendEvent(svc, 'rg', secret, showEvent('show.live', sampleShow('full', { state: 'live' }), '2026-11-24T17:03:00Z'))).status).toBe(202);
  expect(await svc.rt.redis.hlen(desired)).toBe(before);

  // Another show of the partner is not affected.
  expect((await sendEvent(svc, 'rg', secret, showEvent('show.scheduled', sampleShow('other'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, 'rg', secret, { type: 'product.updated', occurredAt: '2026-11-24T17:01:00Z', data: { showId: 'other', product: product('new1') } })).status).toBe(202);
});

/**
 * A refused event leaves its webhook-id free. On a Redis Cluster the id is claimed for the show before
 * the show's script checks the bound, and the 422 left that claim: the partner, told to use another
 * show, sent the event there under the same webhook-id and got 409 'not stored, retry' until the claim
 * expired (INBOX_TTL_DAYS). The single-Redis script checks the bound before it claims.
 */
test("a refused event's webhook-id can be used for another show", async () => {
  expect((await sendEvent(svc, 'rg', secret, showEvent('show.scheduled', sampleShow('full3'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const desired = svc.rt.keys.desired('rg', 'full3');
  const old = '000000000000001000000|seed';
  for (let i = 0; i < SHOW_REGISTERS_MAX - 1; i += 500) {
    const args: string[] = [];
    for (let j = i; j < Math.min(i + 500, SHOW_REGISTERS_MAX - 1); j++) args.push(`pin:s${j}`, 'true', `pin:s${j}@`, old);
    await svc.rt.redis.hset(desired, ...args);
  }
  const pinned = (showId: string) => ({ type: 'product.pinned', occurredAt: '2026-11-24T17:01:00Z', data: { showId, productId: 'moved' } });
  expect((await sendEvent(svc, 'rg', secret, pinned('full3'), { webhookId: 'msg_rg_moved' })).status).toBe(422);
  expect((await sendEvent(svc, 'rg', secret, showEvent('show.scheduled', sampleShow('other3'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const moved = await sendEvent(svc, 'rg', secret, pinned('other3'), { webhookId: 'msg_rg_moved' });
  expect(moved.status).toBe(202);
  expect(await svc.rt.redis.hexists(svc.rt.keys.desired('rg', 'other3'), 'pin:moved')).toBe(1);
  // It is that event's id now: the same id for the full show again is its duplicate, not a second event.
  const again = await sendEvent(svc, 'rg', secret, pinned('full3'), { webhookId: 'msg_rg_moved' });
  expect(again.status).toBe(200);
  expect(((await again.json()) as { duplicate: boolean }).duplicate).toBe(true);
});
