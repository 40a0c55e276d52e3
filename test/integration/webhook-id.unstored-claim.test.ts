/**
 * A `webhook-id` claimed for a scope (show or order) whose event was never stored (the external
 * contract §3: never a 2xx for an event that is not stored). The claim is written before the write on
 * a Redis Cluster (src/sources/ingest.service.ts; on a single Redis claim and write are one script
 * since 2026-12, for order events too: test/integration/order-ingest.one-call.test.ts); a first
 * delivery that died or got a 503 in between leaves the claim and nothing stored (here made by hand,
 * as such a delivery or an earlier version left it). Its retry with the same id but another show or order (a corrected event keeps
 * its id) used to get `200 {eventId: null, duplicate: true}` and was dropped: the partner, told it was
 * a duplicate, never sent it again. It is a 409 now, saying what to do; the first event's own retry
 * stores it, after which the other one is the ordinary duplicate. A first delivery refused before the
 * claim (400: bad JSON, an invalid event) claims nothing: its corrected resend is stored.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'uc');
});
afterAll(async () => {
  await svc?.close();
});

const order = (id: string, amount = 1000) => ({
  type: 'order.created',
  occurredAt: '2026-11-24T18:30:00Z',
  data: { order: { id, createdAt: '2026-11-24T18:30:00Z', lines: [], total: { amount, currency: 'USD' } } },
});

test('a first delivery refused with 400 claims nothing: the corrected body under the same webhook-id is stored (show and order)', async () => {
  const badJson = await sendEvent(svc, 'uc', secret, undefined, { webhookId: 'msg_400_show', body: '{"type":"show.scheduled",' });
  expect(badJson.status).toBe(400);
  const invalid = await sendEvent(svc, 'uc', secret, showEvent('show.scheduled', sampleShow('s400', { title: '' }), '2026-11-24T17:00:00Z'), { webhookId: 'msg_400_show' });
  expect(invalid.status).toBe(400);
  expect(await svc.rt.redis.exists(svc.rt.keys.partnerWebhookId('uc', 'msg_400_show'))).toBe(0);
  const fixed = await sendEvent(svc, 'uc', secret, showEvent('show.scheduled', sampleShow('s400'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_400_show' });
  expect(fixed.status).toBe(202);
  expect((await svc.rt.shows.desired('uc', 's400'))?.title).toBe('Show s400');

  const badOrder = await sendEvent(svc, 'uc', secret, { ...order('o400'), data: { order: { id: 'o400', createdAt: 'yesterday', lines: [], total: { amount: 1000, currency: 'USD' } } } }, { webhookId: 'msg_400_order' });
  expect(badOrder.status).toBe(400);
  // The corrected event names another order (the first body's id was the mistake): stored there.
  const fixedOrder = await sendEvent(svc, 'uc', secret, order('o400b'), { webhookId: 'msg_400_order' });
  expect(fixedOrder.status).toBe(202);
  expect(await svc.rt.redis.xlen(svc.rt.keys.orderEvents('uc', 'o400b'))).toBe(1);
});

test('an id claimed for an order whose event was never stored: another order or a show under it is 409, not 200 eventId null; stored once the first is', async () => {
  // The first delivery (order o1) claimed the id and then failed before its write (Redis went down:
  // 503; or the process died): the claim is there, nothing else. Made with the delivery's token, as
  // the Cluster path does: while its set of deliveries lives (CLAIM_PROVISIONAL_SEC) it may still
  // store; after that a Cluster order delivery takes an unstored claim over (order-ingest.cluster-claims).
  expect(await svc.rt.webhookIds.claim('uc', 'msg_unstored', 'order:o1', 'first-delivery')).toBe('order:o1');

  // The partner resends the event corrected to order o2 under the same id.
  const corrected = await sendEvent(svc, 'uc', secret, order('o2'), { webhookId: 'msg_unstored' });
  expect(corrected.status).toBe(409);
  expect(corrected.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await corrected.json()) as { detail: string }).detail).toMatch(/not stored/);
  // A show event under it: the same (single Redis: the show's Lua finds the claim).
  const show = await sendEvent(svc, 'uc', secret, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_unstored' });
  expect(show.status).toBe(409);
  expect(await svc.rt.shows.desired('uc', 's1')).toBeNull();
  expect(await svc.rt.redis.xlen(svc.rt.keys.orderEvents('uc', 'o2'))).toBe(0);

  // The first event's own retry stores it; the others are then its duplicates, with its event id.
  const retry = await sendEvent(svc, 'uc', secret, order('o1'), { webhookId: 'msg_unstored' });
  expect(retry.status).toBe(202);
  const { eventId } = (await retry.json()) as { eventId: string };
  expect(eventId).toEqual(expect.any(String));
  const again = await sendEvent(svc, 'uc', secret, order('o2'), { webhookId: 'msg_unstored' });
  expect(again.status).toBe(200);
  expect(await again.json()).toEqual({ eventId, webhookId: 'msg_unstored', duplicate: true });
});

test('an id claimed for a show whose event was never stored (the Cluster path claims first): another show or an order under it is 409', async () => {
  expect(await svc.rt.webhookIds.claim('uc', 'msg_unstored_show', 'show:s2', 'first-delivery')).toBe('show:s2');
  const otherShow = await sendEvent(svc, 'uc', secret, showEvent('show.scheduled', sampleShow('s3'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_unstored_show' });
  expect(otherShow.status).toBe(409);
  expect(await svc.rt.shows.desired('uc', 's3')).toBeNull();
  const ord = await sendEvent(svc, 'uc', secret, order('o3'), { webhookId: 'msg_unstored_show' });
  expect(ord.status).toBe(409);
  expect(await svc.rt.redis.xlen(svc.rt.keys.orderEvents('uc', 'o3'))).toBe(0);

  const retry = await sendEvent(svc, 'uc', secret, showEvent('show.scheduled', sampleShow('s2'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_unstored_show' });
  expect(retry.status).toBe(202);
  const { eventId } = (await retry.json()) as { eventId: string };
  const dup = await sendEvent(svc, 'uc', secret, showEvent('show.scheduled', sampleShow('s3'), '2026-11-24T17:00:00Z'), { webhookId: 'msg_unstored_show' });
  expect(dup.status).toBe(200);
  expect(await dup.json()).toEqual({ eventId, webhookId: 'msg_unstored_show', duplicate: true });
});
