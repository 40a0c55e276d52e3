/**
 * Outbound messages and queue jobs that do not read (a hand edit with redis-cli, a half-migrated key, a
 * job added by hand or by another version), against a real Redis, real BullMQ workers and a receiver
 * on loopback:
 * - a message whose record is not JSON, of another shape or a key of another type: its delivery job
 *   fails for good at once (one error line naming the key; it was retried 5 times, 30 s, reading the
 *   same bytes), counted in syndicast_stored_records_unreadable_total{family="message"}; the worker
 *   goes on and the partner's other message is delivered. GET …/messages/{id} and its redelivery
 *   answer the typed 500 naming the message (a SyntaxError's generic problem, or a TypeError's, before);
 * - a delivery attempt entry that does not read is left out of the attempt lists (the ops endpoints list
 *   too: one failed it for everyone); an order naming a click that does not read is not booked, its job
 *   failed for good at once;
 * - a delivery or attribution job whose data is not of its shape fails for good at once with one
 *   line (the delivery job was retried to its last attempt), and the worker goes on.
 */
import { createServer, type Server } from 'node:http';
import type { Job, Worker } from 'bullmq';
import { startAttributionWorker } from '../../src/attribution/attribution.worker.js';
import { storedRecordsUnreadable } from '../../src/lib/metrics.js';
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { DeliveryProducer, deliveryJobId } from '../../src/queues/delivery.queue.js';
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

const CORRUPTIONS: [string, (key: string) => Promise<unknown>][] = [
  ['meta not JSON', (key) => svc.rt.redis.hset(key, 'meta', '{"id":"msg_secret rec')],
  ['meta JSON null', (key) => svc.rt.redis.hset(key, 'meta', 'null')],
  ['a delivery of another shape', async (key) => {
    const fields = (await svc.rt.redis.hkeys(key)).filter((f) => f.startsWith('d:'));
    await svc.rt.redis.hset(key, fields[0]!, '[1,2]');
  }],
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

test.each([
  ['truncated JSON', '{"partnerId":"'],
  ['JSON null', 'null'],
  ['an object without its fields', '{"code":"x"}'],
])("an order naming a click whose record is %s: its attribution job fails for good at once with one line naming the click's key, the order is not booked (never as an unknown click); the next order is", async (what, raw) => {
  const p = `ck${what.length}`;
  const secret = await createPartner(svc, p);
  const clickId = `clk_bad${what.length}`;
  const key = svc.rt.keys.click(clickId);
  await svc.rt.redis.set(key, raw);
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
  expect((await svc.api(`/v1/partners/${p}/attribution/orders/clicked`)).status).toBe(404);
  expect(await counted('click')).toBeGreaterThan(before);
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
