/**
 * The delivery fairness rules (DeliveryService, "Fairness") one attempt at a time, on a DeliveryService
 * whose sends wait until the test answers them: which job is deferred, and what a deferred job costs.
 *
 * - A job deferred for fairness is deferred before the delivery's attempt claim: before, it took the
 *   claim (SET NX), read the message and the endpoint, then found the partner over its share and
 *   released the claim again — about six Redis calls for a job that waits, and while a partner's
 *   endpoints hang most of its jobs are such jobs. It reads the delivery's state and the endpoint's
 *   `enabled` and `events` (two HMGETs, no message body) to tell whether it needs a slot at all.
 * - A job that needs no slot (its message gone, its delivery finished or superseded, its endpoint
 *   disabled, deleted or no longer subscribed to the message's type) is settled at once while its
 *   partner is over its share. Before, the deferral came first: it was deferred every second until a
 *   slot was free, to end without a send (and then, for an unsubscribed type, parked for a slot again
 *   and again: the hold-back knew only the delivery and `enabled`).
 * - The slow-partner reserve, at its edges: slow by an attempt in flight for `slowMs`, still slow for
 *   `slowForMs` after such an attempt ended, and a partner that is not slow takes the reserve slot.
 *
 * Real Redis (the messages and endpoints the service stores); the repository instance counts its own
 * claim and read calls.
 */
import type { DeliveryDeps } from '../../src/outbound/delivery.service.js';
import { DeliveryService } from '../../src/outbound/delivery.service.js';
import type { WebhookSender } from '../../src/outbound/webhook.sender.js';
import type { DeliveryJob } from '../../src/queues/delivery.queue.js';
import { EndpointRepository } from '../../src/store/endpoint.repository.js';
import { OutboundMessageRepository } from '../../src/store/outbound-message.repository.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
const PARTNERS = ['fa', 'fb', 'sa', 'sb', 'sc', 'ga', 'gb', 'gc'];

beforeAll(async () => {
  svc = await startService(); // no delivery worker: the test runs each attempt itself
  for (const p of PARTNERS) {
    await createPartner(svc, p);
    const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: `http://127.0.0.1:9/${p}`, events: ['attribution.order_attributed'] } });
    expect(r.status).toBe(201);
  }
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

let seq = 0;
async function job(partnerId: string): Promise<DeliveryJob> {
  const key = `k${++seq}`;
  const { messageId, endpointIds } = await svc.rt.outbound.emit(partnerId, 'attribution.order_attributed', { orderId: key }, key);
  if (!messageId || endpointIds.length !== 1) throw new Error('no message stored');
  return { partnerId, messageId, endpointId: endpointIds[0]!, run: 1 };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A DeliveryService on the service's Redis whose sends wait for `answer`, counting its claims and message reads. */
function rig(fairness: DeliveryDeps['fairness']) {
  const messages = new OutboundMessageRepository(svc.rt.redis, svc.rt.keys);
  const counts = { claims: 0, reads: 0, stateReads: 0 };
  const claim = messages.claimAttempt.bind(messages);
  messages.claimAttempt = async (...args: Parameters<typeof claim>) => {
    counts.claims += 1;
    return claim(...args);
  };
  const get = messages.get.bind(messages);
  messages.get = async (...args: Parameters<typeof get>) => {
    counts.reads += 1;
    return get(...args);
  };
  const state = messages.deliveryState.bind(messages);
  messages.deliveryState = async (...args: Parameters<typeof state>) => {
    counts.stateReads += 1;
    return state(...args);
  };
  const waiting = new Map<string, () => void>();
  const answer = (j: DeliveryJob): void => {
    waiting.get(j.messageId)!();
    waiting.delete(j.messageId);
  };
  const send: WebhookSender = async (_url, _body, headers) =>
    new Promise((resolve) => waiting.set(headers['webhook-id']!, () => resolve({ statusCode: 200, retryAfter: undefined, location: undefined, error: null, durationMs: 1 })));
  const service = new DeliveryService({ endpoints: new EndpointRepository(svc.rt.redis, svc.rt.keys), messages, box: svc.rt.box, log: svc.rt.log, timeoutMs: 10_000, messageTtlSec: 86_400, allowPrivateDestinations: true, send, fairness });
  return {
    service,
    counts,
    /** Starts the job's attempt and waits until its request is out (in flight); `outcome` settles once answered. */
    async start(j: DeliveryJob): Promise<{ outcome: Promise<unknown> }> {
      const outcome = service.deliver(j);
      await waitFor(async () => waiting.has(j.messageId), 5_000, 5);
      return { outcome };
    },
    answer,
    /** The job's outcome when it does not go out; when its request goes out (not what the test expects) it is answered at once. */
    async held(j: DeliveryJob): Promise<unknown> {
      let done: unknown;
      const outcome = service.deliver(j).then((o) => (done = o));
      while (done === undefined && !waiting.has(j.messageId)) await sleep(5);
      if (done !== undefined) return done;
      answer(j);
      await outcome;
      return { kind: 'sent' };
    },
  };
}

test("a job deferred for fairness takes no attempt claim and reads only the delivery's state, not the message", async () => {
  // 2 slots, a share of 1: a partner holding its share waits once no more than a share of the slots
  // is free (here as soon as it has one attempt in flight).
  const r = rig({ slots: 2, share: 1 });
  const [a1, a2, b1] = [await job('fa'), await job('fa'), await job('fb')];
  const { outcome: first } = await r.start(a1);
  expect(r.counts).toEqual({ claims: 1, reads: 1, stateReads: 0 });
  const deferred = await r.held(a2);
  expect(deferred).toMatchObject({ kind: 'deferred', park: true, reason: expect.stringContaining('deliveries of partner fa in flight') });
  // Before: 2 claims and 2 reads (the claim taken, the message read, then the deferral). Now the
  // delivery's state alone (without the body), to know it needs a slot.
  expect(r.counts).toEqual({ claims: 1, reads: 1, stateReads: 1 });
  expect(await svc.rt.redis.exists(svc.rt.keys.outboundAttempt('fa', a2.messageId, a2.endpointId))).toBe(0);
  // Another partner's job goes out meanwhile.
  const { outcome: other } = await r.start(b1);
  expect(r.counts).toEqual({ claims: 2, reads: 2, stateReads: 1 });
  r.answer(a1);
  r.answer(b1);
  expect(await first).toMatchObject({ kind: 'delivered' });
  expect(await other).toMatchObject({ kind: 'delivered' });
  // With its slot free again, the deferred job goes out.
  const { outcome: again } = await r.start(a2);
  r.answer(a2);
  expect(await again).toMatchObject({ kind: 'delivered' });
  expect(r.counts).toEqual({ claims: 3, reads: 3, stateReads: 1 });
}, 30_000);

test('while its partner is over its share, a job that needs no slot is settled at once (message gone, delivery superseded, endpoint disabled or deleted)', async () => {
  const r = rig({ slots: 2, share: 1 });
  const msgs = new OutboundMessageRepository(svc.rt.redis, svc.rt.keys);
  // ga: its attempt a1 in flight holds its share; a2's message is gone, a3's delivery was superseded by a
  // redelivery (run 2), a4's is already delivered, a5 is due in a minute.
  const [a1, a2, a3, a4, a5, a6] = [await job('ga'), await job('ga'), await job('ga'), await job('ga'), await job('ga'), await job('ga')];
  const { outcome: first } = await r.start(a1);
  await svc.rt.redis.del(svc.rt.keys.outboundMessage('ga', a2.messageId));
  for (const [j, patch] of [
    [a3, { run: 2 }],
    [a4, { state: 'delivered' }],
    [a5, { nextAttemptAt: new Date(Date.now() + 60_000).toISOString() }],
  ] as const) {
    const d = (await msgs.get('ga', j.messageId))!.deliveries[j.endpointId]!;
    await msgs.saveDelivery('ga', j.messageId, { ...d, ...patch });
  }
  // Before: each of these was deferred (about a second, again and again) until ga had a slot.
  expect(await r.held(a2)).toEqual({ kind: 'skipped', reason: 'message no longer stored' });
  expect(await r.held(a3)).toEqual({ kind: 'skipped', reason: 'delivery finished or superseded by a redelivery' });
  expect(await r.held(a4)).toEqual({ kind: 'skipped', reason: 'delivery finished or superseded by a redelivery' });
  // A retry not yet due waits for its time, not for a slot.
  expect(await r.held(a5)).toMatchObject({ kind: 'deferred', delayMs: expect.any(Number), reason: expect.stringContaining('next attempt not due') });
  expect(((await r.held(a5)) as { park?: boolean }).park).toBeUndefined();
  // A pending delivery that needs a send waits for a slot.
  expect(await r.held(a6)).toMatchObject({ kind: 'deferred', park: true });

  // gb: endpoint disabled; gc: endpoint deleted (their attempts in flight still end normally).
  const [b1, c1] = [await job('gb'), await job('gc')];
  const { outcome: bFirst } = await r.start(b1);
  const { outcome: cFirst } = await r.start(c1);
  const [b2, c2] = [await job('gb'), await job('gc')];
  expect((await svc.api(`/v1/partners/gb/endpoints/${b1.endpointId}`, { method: 'PATCH', json: { enabled: false } })).status).toBe(200);
  expect((await svc.api(`/v1/partners/gc/endpoints/${c1.endpointId}`, { method: 'DELETE' })).status).toBe(204);
  expect(await r.held(b2)).toMatchObject({ kind: 'failed', reason: expect.stringContaining('endpoint disabled'), endpointDisabled: false });
  expect(await r.held(c2)).toMatchObject({ kind: 'failed', reason: 'endpoint deleted', endpointDisabled: false });
  expect((await msgs.get('gc', c2.messageId))!.deliveries[c2.endpointId]).toMatchObject({ state: 'failed', lastError: 'endpoint deleted' });

  for (const j of [a1, b1, c1]) r.answer(j);
  for (const o of [first, bFirst, cFirst]) expect(await o).toMatchObject({ kind: 'delivered' });
}, 30_000);

test("a partner with an attempt in flight for slowMs is slow: its next attempt does not take the reserve slot, another partner's does", async () => {
  // A share of 2 (no share deferral here); the last of the 2 slots is kept from slow partners.
  const r = rig({ slots: 2, share: 2, reserve: 1, slowMs: 400, slowForMs: 60_000 });
  const [s1, s2, s3, o1] = [await job('sa'), await job('sa'), await job('sa'), await job('sb')];
  const { outcome: first } = await r.start(s1);
  // Not slow yet (its attempt is younger than slowMs): it may take the reserve slot.
  const { outcome: second } = await r.start(s2);
  r.answer(s2);
  expect(await second).toMatchObject({ kind: 'delivered' });
  await sleep(600);
  // Now its attempt has been in flight for slowMs: slow, and slow partners hold 1 of the 2 - 1 slots.
  expect(await r.held(s3)).toMatchObject({ kind: 'deferred', reason: expect.stringContaining('partner sa is slow') });
  // A partner that is not slow takes the reserve slot.
  const { outcome: other } = await r.start(o1);
  r.answer(o1);
  expect(await other).toMatchObject({ kind: 'delivered' });
  r.answer(s1);
  expect(await first).toMatchObject({ kind: 'delivered' });
}, 30_000);

test('a partner stays slow for slowForMs after an attempt of its took slowMs: a new attempt of its does not take the reserve slot', async () => {
  const r = rig({ slots: 2, share: 2, reserve: 1, slowMs: 400, slowForMs: 60_000 });
  const [s1, s2, s3] = [await job('sc'), await job('sc'), await job('sc')];
  const { outcome: slow } = await r.start(s1);
  await sleep(600);
  r.answer(s1);
  expect(await slow).toMatchObject({ kind: 'delivered' });
  // Nothing in flight: a slow partner's attempt takes a free slot (not the reserve).
  const { outcome: next } = await r.start(s2);
  // Its attempt in flight is young, but the partner is still slow: the reserve slot stays free.
  expect(await r.held(s3)).toMatchObject({ kind: 'deferred', reason: expect.stringContaining('partner sc is slow') });
  r.answer(s2);
  expect(await next).toMatchObject({ kind: 'delivered' });
}, 30_000);

test('while its partner is over its share, a job of a type its endpoint no longer subscribes to needs no slot either (settled at once, as for a disabled endpoint)', async () => {
  await createPartner(svc, 'gd');
  const ep = await svc.api(`/v1/partners/gd/endpoints`, { json: { url: 'http://127.0.0.1:9/gd', events: ['attribution.order_attributed', 'reconciliation.completed'] } });
  expect(ep.status).toBe(201);
  const r = rig({ slots: 2, share: 1 });
  const [d1, d2] = [await job('gd'), await job('gd')];
  const { outcome: first } = await r.start(d1);
  expect((await svc.api(`/v1/partners/gd/endpoints/${d2.endpointId}`, { method: 'PATCH', json: { events: ['reconciliation.completed'] } })).status).toBe(200);
  // deliverClaimed settles it without a send; heldBack() parks it for a slot it will never use (again and again while gd is busy).
  expect(await r.held(d2)).toMatchObject({ kind: 'failed', reason: expect.stringContaining('no longer subscribes'), endpointDisabled: false });
  r.answer(d1);
  expect(await first).toMatchObject({ kind: 'delivered' });
}, 30_000);
