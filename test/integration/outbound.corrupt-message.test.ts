/**
 * Outbound messages and queue jobs that do not read (a hand edit with redis-cli, a half-migrated key, a
 * job added by hand or by another version), against a real Redis, real BullMQ workers and a receiver
 * on loopback:
 * - a message whose record is not JSON, of another shape or a key of another type: its delivery job
 *   fails for good at once (one error line naming the key; it was retried 5 times, 30 s, reading the
 *   same bytes), counted in syndicast_stored_records_unreadable_total{family="message"}; the worker
 *   goes on and the partner's other message is delivered. GET …/messages/{id} and its redelivery
 *   answer the typed 500 naming the message (a SyntaxError's generic problem, or a TypeError's, before);
 * - a delivery failed for good at once so (its message's meta or its endpoint record does not read) is
 *   marked failed, its lastError naming the key (it stayed pending for ever: marked on the last attempt
 *   only); restored, a redelivery sends it;
 * - a delivery whose own state does not read: its job fails so too, and the field is replaced by a failed
 *   state built from the job (it was left as it was, the message's view a typed 500 for good), a field not
 *   valid UTF-8 too (compared as bytes); a field written in between is left alone, a field not replaced
 *   said in a warn line; rebuilt at an older run than a failed job's, a redelivery takes a run past it;
 * - a delivery attempt entry that does not read is left out of the attempt lists (the ops endpoints list
 *   too: one failed it for everyone); an order naming a click that does not read (a key of another type
 *   too) is not booked, its job failed for good at once, the order left pending for the sweep, which
 *   books it once the key is repaired or deleted;
 * - any other error a delivery or attribution run throws (a bug's, a dropped connection's) is retried as
 *   before, never failed for good;
 * - a delivery or attribution job whose data is not of its shape fails for good at once with one
 *   line (the delivery job was retried to its last attempt), and the worker goes on.
 */
import { createServer, type Server } from 'node:http';
import { jest } from '@jest/globals';
import type { Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { OrderEventSweep } from '../../src/attribution/order-event.sweep.js';
import { startAttributionWorker } from '../../src/attribution/attribution.worker.js';
import { storedRecordsUnreadable } from '../../src/lib/metrics.js';
import { DeliveryService } from '../../src/outbound/delivery.service.js';
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { DeliveryProducer, deliveryJobId } from '../../src/queues/delivery.queue.js';
import { EndpointRepository } from '../../src/store/endpoint.repository.js';
import { OutboundMessageRepository } from '../../src/store/outbound-message.repository.js';
import { logSink } from '../helpers/log-sink.js';
import { createPartner, orderEvent, sendEvent, serviceForFile, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let producer: DeliveryProducer;
let server: Server;
let url: string;
const received: string[] = [];

serviceForFile(
  async (started) => {
    svc = started;
    producer = new DeliveryProducer(svc.rt.bullConnection('api'), svc.rt.keys);
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(String(req.headers['webhook-id']));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks`;
  },
  { dispatch: false },
);
afterAll(async () => {
  await producer?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

const TYPE = 'https://syndicast.dev/problems/stored-record-unreadable';
const counted = async (family: string): Promise<number> => (await storedRecordsUnreadable.get()).values.find((v) => v.labels['family'] === family)?.value ?? 0;
type Line = { msg: string; err?: { message?: string }; jobId?: string };

/** A delivery worker as the service starts it, its lines in `lines`. */
function deliveryWorker(): { worker: Worker; lines: Line[] } {
  const { log, lines } = logSink<Line>('info');
  return { worker: startDeliveryWorker(svc.rt.delivery, { connection: svc.rt.bullConnection('worker'), keys: svc.rt.keys, concurrency: 2, log }), lines };
}

/** `job` failed for good on its first run (never retried), with one `msg` line of its own: that line. */
async function failedForGoodOnce(job: Job, lines: Line[], msg: string): Promise<Line> {
  expect(await job.getState()).toBe('failed');
  expect(job.attemptsMade).toBe(1);
  const failed = lines.filter((l) => l.msg === msg && l.jobId === job.id);
  expect(failed).toHaveLength(1);
  return failed[0]!;
}

async function partnerWithEndpoint(p: string): Promise<string> {
  await createPartner(svc, p);
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url, events: ['mirror.updated'] } });
  expect(r.status).toBe(201);
  return ((await r.json()) as { id: string }).id;
}

/** Partner `p` with an endpoint and one message emitted to it (its run-1 job waiting): their ids and the message's key. */
async function messageToEndpoint(p: string): Promise<{ endpointId: string; messageId: string; key: string }> {
  const endpointId = await partnerWithEndpoint(p);
  const messageId = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 1 }, `${p}-m`)).messageId!;
  return { endpointId, messageId, key: svc.rt.keys.outboundMessage(p, messageId) };
}

const CORRUPTIONS: [string, (key: string) => Promise<unknown>][] = [
  ['meta not JSON', (key) => svc.rt.redis.hset(key, 'meta', '{"id":"msg_secret rec')],
  ['meta JSON null', (key) => svc.rt.redis.hset(key, 'meta', 'null')],
  ['a string where the hash is', async (key) => {
    await svc.rt.redis.del(key);
    await svc.rt.redis.set(key, 'secret rec');
  }],
];

test.each(CORRUPTIONS.map(([what, corrupt], i) => [what, `mc${i}`, corrupt] as const))(
  'a message whose record is %s: its delivery job fails for good at once, logged once with the key; the other message is delivered; its view and redelivery are a typed 500',
  async (_what, p, corrupt) => {
    const endpointId = await partnerWithEndpoint(p);
    const bad = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 1 }, `${p}-bad`)).messageId!;
    const good = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 2 }, `${p}-good`)).messageId!;
    const key = svc.rt.keys.outboundMessage(p, bad);
    await corrupt(key);
    const before = await counted('message');

    const { worker, lines } = deliveryWorker();
    let job: Job;
    try {
      await waitFor(async () => received.includes(good));
      job = await waitFor(async () => {
        const j = await producer.find({ messageId: bad, endpointId, run: 1 });
        return j && j.attemptsMade >= 1 ? j : undefined;
      });
    } finally {
      await worker.close();
    }
    expect(received).not.toContain(bad);
    // Failed for good (before: delayed for BullMQ's next attempt, 4 more over 30 s).
    expect(job.id).toBe(deliveryJobId({ messageId: bad, endpointId, run: 1 }));
    expect((await failedForGoodOnce(job, lines, 'delivery job failed')).err?.message).toContain(key);
    expect(JSON.stringify(lines)).not.toContain('secret rec');
    expect(await counted('message')).toBeGreaterThan(before);

    for (const r of [await svc.api(`/v1/partners/${p}/messages/${bad}`), await svc.api(`/v1/partners/${p}/messages/${bad}/redeliver`, { json: {} })]) {
      expect(r.status).toBe(500);
      const problem = (await r.json()) as { type: string; detail: string };
      expect(problem.type).toBe(TYPE);
      expect(problem.detail).toContain(`message record ${bad}`);
      expect(problem.detail).not.toContain('secret rec');
    }
    expect((await svc.api(`/v1/partners/${p}/messages/${good}`)).status).toBe(200);
  },
  60_000,
);

test('a message whose body is not JSON: its view is a typed 500 naming the message, never the body', async () => {
  const p = 'mb';
  await partnerWithEndpoint(p);
  const bad = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 1 }, `${p}-bad`)).messageId!;
  await svc.rt.redis.hset(svc.rt.keys.outboundMessage(p, bad), 'body', '{"type":"secret rec');
  const r = await svc.api(`/v1/partners/${p}/messages/${bad}`);
  expect(r.status).toBe(500);
  const problem = (await r.json()) as { type: string; detail: string };
  expect(problem.type).toBe(TYPE);
  expect(problem.detail).toContain(`message record ${bad}`);
}, 30_000);

test('a delivery job whose data is not a delivery job fails for good at once with one line; the worker delivers the next', async () => {
  const p = 'jd';
  await partnerWithEndpoint(p);
  const junk = await producer.queue.add('deliver', { partnerId: p, messageId: 42 } as never, { attempts: 5, backoff: { type: 'exponential', delay: 2_000 }, jobId: 'junk-delivery' });
  const { worker, lines } = deliveryWorker();
  try {
    await waitFor(async () => ((await producer.queue.getJob(junk.id!))?.attemptsMade ?? 0) >= 1);
    const good = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 1 }, `${p}-good`)).messageId!;
    await waitFor(async () => received.includes(good));
  } finally {
    await worker.close();
  }
  // Before: a ZodError, retried to its 5th attempt (delayed here).
  const failed = await failedForGoodOnce((await producer.queue.getJob(junk.id!))!, lines, 'delivery job failed');
  expect(failed.err?.message).toContain('not a delivery job');
}, 30_000);

test('an attribution job whose data is not an order event fails for good at once with one line; the worker handles the next', async () => {
  const p = 'ja';
  const secret = await createPartner(svc, p);
  const queue = svc.rt.attributionProducer.queue;
  const junk = await queue.add('order.created', { partnerId: p, eventId: '1-1', event: { type: 'order.created', data: null } } as never, { attempts: 12, backoff: { type: 'exponential', delay: 1_000 }, jobId: 'junk-attribution' });
  const { log, lines } = logSink<Line>('info');
  const worker = startAttributionWorker(svc.rt.attribution, { connection: svc.rt.bullConnection('worker'), keys: svc.rt.keys, concurrency: 1, log, orderEvents: svc.rt.orderEvents });
  try {
    await waitFor(async () => ((await queue.getJob(junk.id!))?.attemptsMade ?? 0) >= 1);
    expect((await sendEvent(svc, p, secret, orderEvent('after-junk'))).status).toBe(202);
    await waitFor(async () => (await svc.api(`/v1/partners/${p}/attribution/orders/after-junk`)).status === 200);
  } finally {
    await worker.close();
  }
  const failed = await failedForGoodOnce((await queue.getJob(junk.id!))!, lines, 'attribution job failed');
  expect(failed.err?.message).toContain('invalid attribution job');
}, 30_000);

const setClick = (raw: string) => (key: string) => svc.rt.redis.set(key, raw);
test.each([
  ['truncated JSON', setClick('{"partnerId":"'), 'repair'],
  ['JSON null', setClick('null'), 'del'],
  ['an object without its fields', setClick('{"code":"x"}'), 'del'],
  // One Redis's MGET answered nil for it: no click, the order booked unknown_click for good; a Cluster's GET a raw WRONGTYPE, retried 12 times.
  ['a key of another type', (key: string) => svc.rt.redis.hset(key, 'partnerId', 'secret rec'), 'del'],
] as const)("an order naming a click whose record is %s: its attribution job fails for good at once with one line naming the click's key, the order is not booked (never as an unknown click) and stays pending; the next order is; once the key is repaired or deleted the sweep books it", async (what, corrupt, then) => {
  const p = `ck${what.length}`;
  const secret = await createPartner(svc, p);
  const clickId = `clk_bad${what.length}`;
  const key = svc.rt.keys.click(clickId);
  await corrupt(key);
  const before = await counted('click');
  const bad = orderEvent('clicked');
  bad.data.order['clickId'] = clickId;
  expect((await sendEvent(svc, p, secret, bad)).status).toBe(202);
  const queue = svc.rt.attributionProducer.queue;
  const { log, lines } = logSink<Line>('info');
  const worker = startAttributionWorker(svc.rt.attribution, { connection: svc.rt.bullConnection('worker'), keys: svc.rt.keys, concurrency: 1, log, orderEvents: svc.rt.orderEvents });
  try {
    await waitFor(async () => lines.some((l) => l.msg === 'attribution job failed'));
    expect((await sendEvent(svc, p, secret, orderEvent('next'))).status).toBe(202);
    await waitFor(async () => (await svc.api(`/v1/partners/${p}/attribution/orders/next`)).status === 200);
  } finally {
    await worker.close();
  }
  const failedJobs = (await queue.getFailed()).filter((j) => (j.data as { partnerId?: string }).partnerId === p);
  // Before: a SyntaxError (or a TypeError on null) retried to its 12th attempt; an object without its fields was an unknown_click for good.
  expect(failedJobs).toHaveLength(1);
  expect((await failedForGoodOnce(failedJobs[0]!, lines, 'attribution job failed')).err?.message).toContain(key);
  expect(JSON.stringify(lines)).not.toContain('secret rec');
  expect((await svc.api(`/v1/partners/${p}/attribution/orders/clicked`)).status).toBe(404);
  expect(await counted('click')).toBeGreaterThan(before);
  // Still pending: the sweep is what books it once the key reads.
  expect((await svc.rt.orderEvents.pendingEvents(p, 'clicked')).map((e) => e.eventId)).toHaveLength(1);

  // The sweep passes it over while the key does not read, its one line naming the click's key (not "a key of another type" for every record).
  const sweepLog = { error: jest.fn(), info: jest.fn(), warn: jest.fn(), debug: jest.fn() };
  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, sweepLog as unknown as Logger, { graceMs: 0, pageSize: 100 });
  await sweep.sweep();
  const passedOver = sweepLog.error.mock.calls.filter((c) => (c[0] as { orderId?: string; partnerId?: string }).partnerId === p && (c[0] as { orderId?: string }).orderId === 'clicked');
  expect(passedOver).toHaveLength(1);
  expect(passedOver[0]![0]).toMatchObject({ family: 'click', key });
  expect((await svc.api(`/v1/partners/${p}/attribution/orders/clicked`)).status).toBe(404);

  if (then === 'repair') {
    // Restored: a click record as the redirect stores it.
    const click = await svc.rt.links.recordClick({ code: 'c1', partnerId: p, showId: 's1', targetId: 't1', platform: 'youtube', productId: 'p1', url: 'https://shop.example.com/p1' }, '203.0.113.9');
    await svc.rt.redis.set(key, (await svc.rt.redis.get(svc.rt.keys.click(click.id)))!);
  } else {
    await svc.rt.redis.del(key);
  }
  await sweep.sweep();
  const booked = await svc.api(`/v1/partners/${p}/attribution/orders/clicked`);
  expect(booked.status).toBe(200);
  const attribution = ((await booked.json()) as { attribution: { attributed: boolean; reason?: string } }).attribution;
  if (then === 'repair') expect(attribution.reason).not.toBe('unknown_click');
  else expect(attribution).toMatchObject({ attributed: false, reason: 'unknown_click' });
  expect(await svc.rt.orderEvents.pendingEvents(p, 'clicked')).toEqual([]);
}, 30_000);

test("a delivery attempt entry that does not read is left out of the endpoint's attempts and GET /v1/ops/endpoints (logged, counted); a log of another type leaves that endpoint's failures empty on the ops list, its own list a typed 500", async () => {
  const p = 'at';
  const ep = await partnerWithEndpoint(p);
  const other = await partnerWithEndpoint(`${p}2`);
  const attempt = (messageId: string) => ({ messageId, eventType: 'mirror.updated' as const, attempt: 1, run: 1, trigger: 'event' as const, at: new Date().toISOString(), success: false, statusCode: 500, error: 'HTTP 500', durationMs: 3 });
  await svc.rt.outbound.endpoints.addAttempt(p, ep, attempt('msg_old'));
  const key = svc.rt.keys.endpointAttempts(p, ep);
  await svc.rt.redis.xadd(key, '*', 'a', '{"messageId":"secret rec');
  await svc.rt.redis.xadd(key, '*', 'a', 'null');
  await svc.rt.outbound.endpoints.addAttempt(p, ep, attempt('msg_new'));
  const before = await counted('attempt');

  const r = await svc.api(`/v1/partners/${p}/endpoints/${ep}/attempts?limit=3`);
  expect(r.status).toBe(200);
  const page = (await r.json()) as { attempts: { messageId: string }[]; nextCursor: string | null };
  // The page is the 3 newest entries (2 of them unreadable), its cursor after them: the next page has the oldest.
  expect(page.attempts.map((a) => a.messageId)).toEqual(['msg_new']);
  expect(page.nextCursor).not.toBeNull();
  const next = (await (await svc.api(`/v1/partners/${p}/endpoints/${ep}/attempts?limit=3&cursor=${page.nextCursor!}`)).json()) as { attempts: { messageId: string }[] };
  expect(next.attempts.map((a) => a.messageId)).toEqual(['msg_old']);
  const ops = await svc.api('/v1/ops/endpoints?limit=100');
  expect(ops.status).toBe(200);
  const listed = (await ops.json()) as { endpoints: { id: string; recentFailures: { messageId: string }[] }[] };
  expect(listed.endpoints.find((e) => e.id === ep)?.recentFailures.map((f) => f.messageId)).toEqual(['msg_new', 'msg_old']);
  expect(await counted('attempt')).toBeGreaterThanOrEqual(before + 4);

  // The other endpoint's log a key of another type: the ops list still answers, that endpoint without failures.
  const otherKey = svc.rt.keys.endpointAttempts(`${p}2`, other);
  await svc.rt.redis.set(otherKey, 'hand edit');
  const again = await svc.api('/v1/ops/endpoints?limit=100');
  expect(again.status).toBe(200);
  const both = (await again.json()) as { endpoints: { id: string; recentFailures: unknown[] }[] };
  expect(both.endpoints.find((e) => e.id === other)?.recentFailures).toEqual([]);
  expect(both.endpoints.find((e) => e.id === ep)?.recentFailures).toHaveLength(2);
  const own = await svc.api(`/v1/partners/${p}2/endpoints/${other}/attempts`);
  expect(own.status).toBe(500);
  expect(((await own.json()) as { type: string; detail: string }).detail).toContain(`attempt record ${other}`);
}, 30_000);

/** Delivery `d:<endpointId>` of a message as stored (read around the message's meta). */
async function storedDelivery(p: string, messageId: string, endpointId: string): Promise<{ state: string; run: number; lastError: string | null } | undefined> {
  const raw = await svc.rt.redis.hget(svc.rt.keys.outboundMessage(p, messageId), `d:${endpointId}`);
  return raw ? (JSON.parse(raw) as { state: string; run: number; lastError: string | null }) : undefined;
}

/**
 * The message's delivery job (run 1) failed for good on its first run, with one line, and its delivery
 * then marked failed without a 'could not mark delivery failed' line: that stored delivery, and the line.
 */
async function markedFailedOnce(p: string, messageId: string, endpointId: string, lines: Line[]): Promise<{ d: { state: string; lastError: string | null }; failed: Line }> {
  const job = await waitFor(async () => {
    const j = await producer.find({ messageId, endpointId, run: 1 });
    return j && j.attemptsMade >= 1 ? j : undefined;
  });
  const failed = await failedForGoodOnce(job, lines, 'delivery job failed');
  const d = await waitFor(async () => {
    const v = await storedDelivery(p, messageId, endpointId);
    return v?.state === 'failed' ? v : undefined;
  });
  expect(lines.filter((l) => l.msg === 'could not mark delivery failed')).toEqual([]);
  return { d, failed };
}

/** The message's view shows its one delivery failed, naming `key`; a redelivery of it delivers it. */
async function shownFailedThenRedelivered(p: string, messageId: string, endpointId: string, key: string): Promise<void> {
  const view = await svc.api(`/v1/partners/${p}/messages/${messageId}`);
  expect(view.status).toBe(200);
  const [shown] = ((await view.json()) as { deliveries: { state: string; lastError: string | null }[] }).deliveries;
  expect(shown).toMatchObject({ state: 'failed', lastError: expect.stringContaining(key) });
  expect(JSON.stringify(shown)).not.toContain('secret rec');
  expect((await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { json: {} })).status).toBe(202);
  await waitFor(async () => received.includes(messageId));
  await waitFor(async () => (await storedDelivery(p, messageId, endpointId))?.state === 'delivered');
}

test.each([
  ['its endpoint record (its events not JSON)', 'endpoint'],
  ["the message's meta (not JSON)", 'meta'],
] as const)('a delivery failed for good at once because %s does not read is marked failed, its lastError naming the key; once the key is restored a redelivery delivers it', async (_what, which) => {
  const p = `mf${which.length}`;
  const endpointId = await partnerWithEndpoint(p);
  const messageId = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 1 }, `${p}-m`)).messageId!;
  const [key, field] = which === 'endpoint' ? [svc.rt.keys.endpoint(p, endpointId), 'events'] : [svc.rt.keys.outboundMessage(p, messageId), 'meta'];
  const good = (await svc.rt.redis.hget(key, field))!;
  await svc.rt.redis.hset(key, field, '["secret rec');

  const { worker, lines } = deliveryWorker();
  try {
    // Before: left `pending` (lastError null) for ever, nothing queued: it was marked only on its 5th attempt.
    const { d } = await markedFailedOnce(p, messageId, endpointId, lines);
    expect(d.lastError).toContain(key);
    await svc.rt.redis.hset(key, field, good);
    await shownFailedThenRedelivered(p, messageId, endpointId, key);
  } finally {
    await worker.close();
  }
}, 60_000);

test.each<[string, string | Buffer]>([
  ['not JSON', '{"state":"pending","secret rec'],
  ['of another shape', '[1,2]'],
  // Cut mid-character (the euro sign's 3 bytes, 2 kept): read as a string it came back with U+FFFD, never
  // equal to the bytes Redis holds, so the compare-and-set step never replaced it (nothing logged).
  ['not valid UTF-8', Buffer.concat([Buffer.from('{"state":"pending","secret rec '), Buffer.from('\u20ac').subarray(0, 2)])],
])("a delivery whose own stored state is %s: its job fails for good at once; the field is replaced by a failed state built from the job (lastError naming it), so the message's view shows it failed, not the typed 500; a redelivery sends it", async (what, raw) => {
  const p = `ds${what.length}`;
  const { endpointId, messageId, key } = await messageToEndpoint(p);
  await svc.rt.redis.hset(key, `d:${endpointId}`, raw);

  const { worker, lines } = deliveryWorker();
  try {
    // Before: left as it was ('could not mark delivery failed'), the view a typed 500 for good.
    const { d, failed } = await markedFailedOnce(p, messageId, endpointId, lines);
    expect(failed.err?.message).toContain(key);
    expect(d).toMatchObject({ endpointId, run: 1, trigger: 'event', attempts: 0, nextAttemptAt: null });
    expect(d.lastError).toContain(`field d:${endpointId} of Redis key ${key}`);
    expect(JSON.stringify(lines)).not.toContain('secret rec');
    await shownFailedThenRedelivered(p, messageId, endpointId, key);
  } finally {
    await worker.close();
  }
}, 60_000);

test("replacing a delivery's unreadable state leaves a field written in between alone (a redelivery's state, a repair), and a message that is gone", async () => {
  const p = 'dr';
  const { endpointId, messageId, key } = await messageToEndpoint(p);
  const messages = (): OutboundMessageRepository => new OutboundMessageRepository(svc.rt.redis, svc.rt.keys);
  const failed = { endpointId, state: 'failed' as const, run: 1, trigger: 'event' as const, attempts: 0, runAttempts: 0, runStartedAt: null, lastAttemptAt: null, lastStatusCode: null, lastError: 'x', nextAttemptAt: null, deliveredAt: null };
  // It reads: nothing replaced.
  const before = await svc.rt.redis.hget(key, `d:${endpointId}`);
  expect(await messages().replaceUnreadableDelivery(p, messageId, failed)).toBe(false);
  expect(await svc.rt.redis.hget(key, `d:${endpointId}`)).toBe(before);
  // Unreadable: replaced.
  await svc.rt.redis.hset(key, `d:${endpointId}`, 'null');
  expect(await messages().replaceUnreadableDelivery(p, messageId, failed)).toBe(true);
  expect(await storedDelivery(p, messageId, endpointId)).toMatchObject({ state: 'failed', lastError: 'x' });
  // The step compares what was read: a field written since (a redelivery's state) stays as it is.
  await svc.rt.redis.hset(key, `d:${endpointId}`, 'written since');
  expect(await svc.rt.redis.scObHsetIfSame(key, 'meta', `d:${endpointId}`, 'null', JSON.stringify(failed))).toBe(0);
  expect(await svc.rt.redis.hget(key, `d:${endpointId}`)).toBe('written since');
  // Gone: nothing written (never a message of one field).
  await svc.rt.redis.del(key);
  expect(await messages().replaceUnreadableDelivery(p, messageId, failed)).toBe(false);
  expect(await svc.rt.redis.exists(key)).toBe(0);
}, 30_000);

test('a delivery whose unreadable state is not replaced (its message gone between the read and the replace) is said in a warn line naming the key, never its text', async () => {
  const p = 'dw';
  const { endpointId, messageId, key } = await messageToEndpoint(p);
  await svc.rt.redis.hset(key, `d:${endpointId}`, '{"secret rec');
  const messages = new (class extends OutboundMessageRepository {
    override async delivery(...args: Parameters<OutboundMessageRepository['delivery']>): ReturnType<OutboundMessageRepository['delivery']> {
      return super.delivery(...args).catch(async (err: unknown) => {
        await svc.rt.redis.del(key); // its retention ends right after the read
        throw err;
      });
    }
  })(svc.rt.redis, svc.rt.keys);
  const { log, lines } = logSink<Line & { key?: string; field?: string }>('info');
  const service = new DeliveryService({ endpoints: new EndpointRepository(svc.rt.redis, svc.rt.keys), messages, box: svc.rt.box, log, timeoutMs: 10_000, messageTtlSec: 86_400, allowPrivateDestinations: true });
  await service.markFailed({ partnerId: p, messageId, endpointId, run: 1 }, new Error('x'));
  // Before: nothing said (the view of a message still there stays a typed 500 for good, unexplained).
  expect(lines.filter((l) => l.msg.startsWith('unreadable delivery state not replaced'))).toEqual([expect.objectContaining({ key, field: `d:${endpointId}` })]);
  expect(JSON.stringify(lines)).not.toContain('secret rec');
  expect(await svc.rt.redis.exists(key)).toBe(0);
  await (await producer.find({ messageId, endpointId, run: 1 }))?.remove();
}, 30_000);

test("a delivery rebuilt at an older run than a failed job's (a stalled older job failing late) is redelivered past that job: sent, not a 202 that sends nothing", async () => {
  const p = 'dl';
  const { endpointId, messageId, key } = await messageToEndpoint(p);
  // Run 2 (a redelivery) finds its state unreadable: its job fails for good, the state rebuilt as run 2's.
  await (await producer.find({ messageId, endpointId, run: 1 }))!.remove();
  await svc.rt.redis.hset(key, `d:${endpointId}`, 'null');
  await producer.enqueue({ partnerId: p, messageId, endpointId, run: 2 });
  const { worker } = deliveryWorker();
  try {
    await waitFor(async () => (await producer.find({ messageId, endpointId, run: 2 }))?.getState().then((s) => s === 'failed'));
    await waitFor(async () => (await storedDelivery(p, messageId, endpointId))?.state === 'failed');
    // Run 1's job, stalled meanwhile, fails for good late on the state unreadable again: rebuilt as run 1's.
    await svc.rt.redis.hset(key, `d:${endpointId}`, 'null');
    await svc.rt.delivery.markFailed({ partnerId: p, messageId, endpointId, run: 1 }, new Error('job stalled more than allowable limit'));
    expect(await storedDelivery(p, messageId, endpointId)).toMatchObject({ state: 'failed', run: 1 });
    // Before: run 2, whose failed job is kept, so the add did nothing: 202 and nothing sent.
    expect((await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { json: {} })).status).toBe(202);
    await waitFor(async () => received.includes(messageId));
    expect(await waitFor(async () => {
      const d = await storedDelivery(p, messageId, endpointId);
      return d?.state === 'delivered' ? d : undefined;
    })).toMatchObject({ run: 3, trigger: 'manual' });
  } finally {
    await worker.close();
  }
}, 30_000);

// What the two workers' catches turn into a failure for good is a StoredRecordCorruptError only: any
// other error is retried as before (BullMQ's attempts), a Redis that does not answer handed back.
const OTHER_ERRORS = [
  ['a plain Error', 1, () => new Error('a bug of ours')],
  ['a dropped Redis connection', 0, () => new Error('Connection is closed.')],
] as const;

test.each(OTHER_ERRORS)('a delivery run that throws %s is not failed for good: the job waits delayed (attemptsMade %i), its delivery still pending', async (what, attemptsMade, make) => {
  const p = `do${what.length}`;
  const endpointId = await partnerWithEndpoint(p);
  const messageId = (await svc.rt.outbound.emit(p, 'mirror.updated', { n: 1 }, `${p}-m`)).messageId!;
  const failing = Object.assign(Object.create(svc.rt.delivery) as typeof svc.rt.delivery, { deliver: () => Promise.reject(make()) });
  const { log, lines } = logSink<Line>('info');
  const worker = startDeliveryWorker(failing, { connection: svc.rt.bullConnection('worker'), keys: svc.rt.keys, concurrency: 1, log, refusedRetryMs: 60_000 });
  let job: Job;
  try {
    job = await waitFor(async () => {
      const j = await producer.find({ messageId, endpointId, run: 1 });
      return j && (await j.getState()) === 'delayed' ? j : undefined;
    });
  } finally {
    await worker.close();
  }
  try {
    expect(job.attemptsMade).toBe(attemptsMade);
    expect(await producer.queue.getJob(job.id!).then((j) => j?.finishedOn)).toBeUndefined();
    expect(await storedDelivery(p, messageId, endpointId)).toMatchObject({ state: 'pending', lastError: null });
    expect(lines.filter((l) => l.msg === 'delivery job failed').map((l) => l.err?.message)).not.toContainEqual(expect.stringContaining('never retried'));
  } finally {
    await job.remove();
  }
}, 30_000);

test.each(OTHER_ERRORS)('an attribution run that throws %s is not failed for good: the job waits delayed (attemptsMade %i)', async (what, attemptsMade, make) => {
  const p = `ao${what.length}`;
  const secret = await createPartner(svc, p);
  expect((await sendEvent(svc, p, secret, orderEvent('retried'))).status).toBe(202);
  const failing = Object.assign(Object.create(svc.rt.attribution) as typeof svc.rt.attribution, { handlePartnerEvent: () => Promise.reject(make()) });
  const queue = svc.rt.attributionProducer.queue;
  const { log } = logSink<Line>('info');
  const worker = startAttributionWorker(failing, { connection: svc.rt.bullConnection('worker'), keys: svc.rt.keys, concurrency: 1, log, orderEvents: svc.rt.orderEvents, refusedRetryMs: 60_000 });
  let job: Job;
  try {
    job = await waitFor(async () => (await queue.getDelayed()).find((j) => (j.data as { partnerId?: string }).partnerId === p));
  } finally {
    await worker.close();
  }
  try {
    expect(job.attemptsMade).toBe(attemptsMade);
    expect(await job.getState()).toBe('delayed');
    expect((await queue.getFailed()).filter((j) => (j.data as { partnerId?: string }).partnerId === p)).toEqual([]);
  } finally {
    await job.remove();
  }
}, 30_000);
