/**
 * Outbound webhooks (the external contract §8) against real HTTP receivers on loopback and a real Redis: retries
 * with a stable webhook-id, Standard Webhooks signatures checked with the `standardwebhooks` library,
 * Retry-After, 410, redirects, the disable rule, SSRF refusals, attempts over REST, redelivery and
 * producer idempotency. The retry schedule is shrunk to 50 ms steps (OUTBOUND_RETRY_SCHEDULE_MS).
 */
import { createServer, type Server } from 'node:http';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { Webhook } from 'standardwebhooks';
import { postWebhook } from '../../src/outbound/webhook.sender.js';
import type { OutboundEventType } from '../../src/outbound/outbound.types.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { settled } from '../helpers/settle.js';

interface Received {
  id: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}
type Responder = (r: Received, nthForThisId: number) => { status: number; headers?: Record<string, string> };

interface Receiver {
  url: string;
  requests: Received[];
  forId(id: string): Received[];
  close(): Promise<void>;
}

const receivers: Receiver[] = [];

async function startReceiver(respond: Responder): Promise<Receiver> {
  const requests: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const r: Received = { id: headers['webhook-id'] ?? '', headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      requests.push(r);
      const out = respond(r, requests.filter((x) => x.id === r.id).length);
      res.writeHead(out.status, out.headers ?? {});
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const rcv: Receiver = {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    forId: (id) => requests.filter((r) => r.id === id),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  receivers.push(rcv);
  return rcv;
}

let svc: TestService;
let seq = 0;

beforeAll(async () => {
  svc = await startService({ workers: true, env: { OUTBOUND_RETRY_SCHEDULE_MS: '50,50,50,50,50,50,50', OUTBOUND_TIMEOUT_MS: '1500' } });
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await svc?.close();
});

interface EndpointView {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  secret?: string;
}
interface AttemptView {
  id: string;
  messageId: string;
  attempt: number;
  run: number;
  trigger: string;
  at: string;
  success: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}
interface MessageView {
  id: string;
  type: string;
  timestamp: string;
  data: unknown;
  deliveries: { endpointId: string; state: string; attempts: number; run: number; lastStatusCode: number | null; lastError: string | null }[];
}

async function newPartner(): Promise<string> {
  const id = `p${++seq}`;
  await createPartner(svc, id);
  return id;
}

async function addEndpoint(partnerId: string, url: string, events: OutboundEventType[] = ['attribution.order_attributed']): Promise<{ id: string; secret: string }> {
  const r = await svc.api(`/v1/partners/${partnerId}/endpoints`, { json: { url, events, description: 'test' } });
  expect(r.status).toBe(201);
  const body = (await r.json()) as EndpointView;
  expect(body).toMatchObject({ url, events, enabled: true });
  expect(body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/);
  return { id: body.id, secret: body.secret! };
}

async function getJson<T>(path: string): Promise<T> {
  const r = await svc.api(path);
  expect(r.status).toBe(200);
  return (await r.json()) as T;
}

const endpointView = (p: string, e: string) => getJson<EndpointView>(`/v1/partners/${p}/endpoints/${e}`);
const attempts = async (p: string, e: string, q = '') => (await getJson<{ attempts: AttemptView[]; nextCursor: string | null }>(`/v1/partners/${p}/endpoints/${e}/attempts${q}`));
const messageView = (p: string, m: string) => getJson<MessageView>(`/v1/partners/${p}/messages/${m}`);

async function deliveryState(p: string, m: string, e: string, state: string): Promise<MessageView> {
  return waitFor(async () => {
    const v = await messageView(p, m);
    return v.deliveries.find((d) => d.endpointId === e)?.state === state ? v : undefined;
  }, 15_000);
}

/** A new partner with one endpoint, on a receiver that answers with `respond`. */
async function partnerWithReceiver(respond: Responder): Promise<{ p: string; rcv: Receiver; ep: string }> {
  const p = await newPartner();
  const rcv = await startReceiver(respond);
  return { p, rcv, ep: (await addEndpoint(p, rcv.url)).id };
}

function emit(partnerId: string, data: object, key = `k-${++seq}`, type: OutboundEventType = 'attribution.order_attributed') {
  return svc.rt.outbound.emit(partnerId, type, data, key);
}

test('500 ×3 then 200: exactly one accepted delivery per event, same webhook-id, signature verifies with standardwebhooks', async () => {
  const p = await newPartner();
  const rcv = await startReceiver((_r, n) => ({ status: n <= 3 ? 500 : 200 }));
  const { id: ep, secret } = await addEndpoint(p, rcv.url);

  const a = await emit(p, { orderId: 'o1', amount: { amount: 1800, currency: 'USD' } });
  const b = await emit(p, { orderId: 'o2', amount: { amount: 2500, currency: 'USD' } });
  expect(a).toMatchObject({ duplicate: false, endpointIds: [ep] });
  const ids = [a.messageId!, b.messageId!];
  expect(ids[0]).toMatch(/^msg_[0-9A-Z]{26}$/);

  for (const id of ids) await deliveryState(p, id, ep, 'delivered');
  await settled([svc.rt.outbound.queue]); // no delivery left to run: nothing more arrives after the 2xx
  const wh = new Webhook(secret);
  for (const [i, id] of ids.entries()) {
    const got = rcv.forId(id);
    expect(got).toHaveLength(4);
    const bodies = new Set(got.map((r) => r.body));
    expect(bodies.size).toBe(1); // the same bytes every attempt
    for (const r of got) {
      expect(r.headers['webhook-id']).toBe(id);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toBe('Syndicast-Webhooks/1');
      expect(r.headers['webhook-timestamp']).toMatch(/^\d{10}$/);
      const payload = wh.verify(r.body, r.headers) as { type: string; timestamp: string; data: { orderId: string } };
      expect(payload).toMatchObject({ type: 'attribution.order_attributed', data: { orderId: `o${i + 1}` } });
      expect(Object.keys(payload).sort()).toEqual(['data', 'timestamp', 'type']);
    }
    // a tampered body or another secret does not verify
    expect(() => wh.verify(got[0]!.body.replace('o', 'x'), got[0]!.headers)).toThrow();
    expect(() => new Webhook('whsec_' + Buffer.alloc(24, 7).toString('base64')).verify(got[0]!.body, got[0]!.headers)).toThrow();
  }

  const view = await messageView(p, ids[0]!);
  expect(view).toMatchObject({ id: ids[0], type: 'attribution.order_attributed', data: { orderId: 'o1' }, deliveries: [{ endpointId: ep, state: 'delivered', attempts: 4, lastStatusCode: 200, lastError: null }] });

  // attempts over REST: newest first, paged
  const all = await attempts(p, ep, '?limit=200');
  expect(all.attempts).toHaveLength(8);
  expect(all.nextCursor).toBeNull();
  const times = all.attempts.map((x) => Date.parse(x.at));
  expect([...times].sort((x, y) => y - x)).toEqual(times);
  const forA = all.attempts.filter((x) => x.messageId === ids[0]).reverse();
  expect(forA.map((x) => [x.attempt, x.statusCode, x.success])).toEqual([
    [1, 500, false],
    [2, 500, false],
    [3, 500, false],
    [4, 200, true],
  ]);
  expect(forA[0]).toMatchObject({ run: 1, trigger: 'event', error: 'HTTP 500' });
  expect(typeof forA[0]!.durationMs).toBe('number');
  const page1 = await attempts(p, ep, '?limit=3');
  expect(page1.attempts.map((x) => x.id)).toEqual(all.attempts.slice(0, 3).map((x) => x.id));
  const page2 = await attempts(p, ep, `?limit=3&cursor=${page1.nextCursor}`);
  expect(page2.attempts.map((x) => x.id)).toEqual(all.attempts.slice(3, 6).map((x) => x.id));

  // endpoint healthy: still enabled, no failure clock
  expect(await endpointView(p, ep)).toMatchObject({ enabled: true, failingSince: null });

  // manual redelivery: a new attempt, same webhook-id, run 2
  const rd = await svc.api(`/v1/partners/${p}/messages/${ids[0]}/redeliver`, { json: { endpointId: ep } });
  expect(rd.status).toBe(202);
  expect(await rd.json()).toEqual({ messageId: ids[0], endpointIds: [ep] });
  await waitFor(async () => rcv.forId(ids[0]!).length === 5);
  const again = rcv.forId(ids[0]!)[4]!;
  expect(wh.verify(again.body, again.headers)).toMatchObject({ data: { orderId: 'o1' } });
  const latest = await waitFor(async () => {
    const x = (await attempts(p, ep, '?limit=1')).attempts[0];
    return x?.messageId === ids[0] ? x : undefined;
  });
  expect(latest).toMatchObject({ attempt: 5, run: 2, trigger: 'manual', statusCode: 200, success: true });
  expect((await deliveryState(p, ids[0]!, ep, 'delivered')).deliveries[0]).toMatchObject({ run: 2, attempts: 5 });
});

test('a redelivery of a delivery that failed its whole schedule starts a fresh schedule: 8 more attempts, not 1', async () => {
  const { p, rcv, ep } = await partnerWithReceiver(() => ({ status: 500 }));
  const { messageId } = await emit(p, { orderId: 'o-dead' });
  await deliveryState(p, messageId!, ep, 'failed');
  expect(rcv.forId(messageId!)).toHaveLength(8);
  // The exhausted run disabled the endpoint (no 2xx since its first attempt): the operator enables it again.
  expect((await svc.api(`/v1/partners/${p}/endpoints/${ep}`, { method: 'PATCH', json: { enabled: true } })).status).toBe(200);
  const rd = await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { json: { endpointId: ep } });
  expect(rd.status).toBe(202);
  const view = await waitFor(async () => {
    const v = await messageView(p, messageId!);
    return v.deliveries[0]?.run === 2 && v.deliveries[0].state === 'failed' ? v : undefined;
  }, 15_000);
  expect(view.deliveries[0]).toMatchObject({ run: 2, attempts: 16 });
  expect(rcv.forId(messageId!)).toHaveLength(16);
});

test('the same idempotency key twice → one message, one delivery', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 204 }));
  const { id: ep } = await addEndpoint(p, rcv.url);
  const first = await emit(p, { orderId: 'o9' }, 'attributed:o9');
  const second = await emit(p, { orderId: 'o9' }, 'attributed:o9');
  expect(first.duplicate).toBe(false);
  expect(second).toEqual({ messageId: first.messageId, duplicate: true, endpointIds: [ep] });
  await deliveryState(p, first.messageId!, ep, 'delivered');
  const third = await emit(p, { orderId: 'o9' }, 'attributed:o9');
  expect(third.messageId).toBe(first.messageId);
  await settled([svc.rt.outbound.queue]); // no delivery left to run
  expect(rcv.requests).toHaveLength(1);
  // an explicit redelivery (no body: every endpoint of the message) does send it again
  const rd = await svc.api(`/v1/partners/${p}/messages/${first.messageId}/redeliver`, { method: 'POST' });
  expect(rd.status).toBe(202);
  expect(await rd.json()).toEqual({ messageId: first.messageId, endpointIds: [ep] });
  await waitFor(async () => rcv.requests.length === 2);
  expect(rcv.requests[1]!.id).toBe(first.messageId);
  expect((await svc.api(`/v1/partners/${p}/messages/msg_nope/redeliver`, { method: 'POST' })).status).toBe(404);
  expect((await svc.api(`/v1/partners/${p}/messages/msg_nope`)).status).toBe(404);
  // no endpoint subscribed → nothing stored or sent
  expect(await emit(p, { x: 1 }, 'k-none', 'reconciliation.completed')).toEqual({ messageId: null, duplicate: false, endpointIds: [] });
});

/**
 * A redelivery to every endpoint of a message whose endpoints are all gone (deleted, disabled) queued
 * nothing and answered 202 `endpointIds: []`, audited as a redelivery (attack on npm start,
 * 2026-12-07). Now a 409 saying which endpoint refused and why, nothing queued or audited.
 */
test('redelivery with no endpoint left to take the message (deleted, disabled) is a 409 naming them, nothing queued or audited', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 204 }));
  const { id: gone } = await addEndpoint(p, rcv.url);
  const { id: off } = await addEndpoint(p, rcv.url);
  const { messageId } = await emit(p, { orderId: 'o-none' }, 'attributed:o-none');
  await deliveryState(p, messageId!, gone, 'delivered');
  await deliveryState(p, messageId!, off, 'delivered');
  expect((await svc.api(`/v1/partners/${p}/endpoints/${gone}`, { method: 'DELETE' })).status).toBe(204);
  expect((await svc.api(`/v1/partners/${p}/endpoints/${off}`, { method: 'PATCH', json: { enabled: false } })).status).toBe(200);
  const audited = async (): Promise<number> => ((await (await svc.api(`/v1/audit?partnerId=${p}&action=message.redelivered`)).json()) as { entries: unknown[] }).entries.length;
  const rd = await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { method: 'POST' });
  expect(rd.status).toBe(409);
  expect(rd.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const { detail } = (await rd.json()) as { detail: string };
  expect(detail).toContain(`message ${messageId} has no endpoint to deliver it to now`);
  expect(detail).toContain(`endpoint ${gone} not found`);
  expect(detail).toContain(`endpoint ${off} is disabled`);
  expect(await audited()).toBe(0);
  await settled([svc.rt.outbound.queue]);
  expect(rcv.requests).toHaveLength(2);
  // Enabled again, the same request queues it to that endpoint.
  expect((await svc.api(`/v1/partners/${p}/endpoints/${off}`, { method: 'PATCH', json: { enabled: true } })).status).toBe(200);
  const again = await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { method: 'POST' });
  expect(again.status).toBe(202);
  expect(await again.json()).toEqual({ messageId, endpointIds: [off] });
  await waitFor(async () => rcv.requests.length === 3);
});

test('Retry-After is honoured when longer than the schedule', async () => {
  const p = await newPartner();
  const rcv = await startReceiver((_r, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
  const { id: ep } = await addEndpoint(p, rcv.url);
  const { messageId } = await emit(p, { orderId: 'o3' });
  await deliveryState(p, messageId!, ep, 'delivered');
  const [r1, r2] = rcv.forId(messageId!);
  expect(r2!.at - r1!.at).toBeGreaterThanOrEqual(900); // the schedule alone would wait ~50 ms
  const last = (await attempts(p, ep)).attempts;
  expect(last.map((x) => x.statusCode)).toEqual([200, 503]);
});

test('2xx is 200 to 299: a 299 is delivered at once, a 300 (Multiple Choices, not followed) is a failure and retried', async () => {
  const p = await newPartner();
  const rcv = await startReceiver((r, n) => (r.body.includes('"orderId":"o299"') ? { status: 299 } : n === 1 ? { status: 300 } : { status: 200 }));
  const { id: ep } = await addEndpoint(p, rcv.url);
  const first = (await emit(p, { orderId: 'o299' })).messageId!;
  expect((await deliveryState(p, first, ep, 'delivered')).deliveries[0]).toMatchObject({ attempts: 1, lastStatusCode: 299 });
  const second = (await emit(p, { orderId: 'o300' })).messageId!;
  expect((await deliveryState(p, second, ep, 'delivered')).deliveries[0]).toMatchObject({ attempts: 2, lastStatusCode: 200 });
  const list = (await attempts(p, ep)).attempts.filter((a) => a.messageId === second);
  expect(list.map((a) => [a.statusCode, a.success])).toEqual([
    [200, true],
    [300, false],
  ]);
  expect(list[1]!.error).toMatch(/HTTP 300: redirect not followed/);
});

test('410 Gone disables the endpoint at once: no retries, no further deliveries', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 410 }));
  const { id: ep } = await addEndpoint(p, rcv.url);
  const { messageId } = await emit(p, { orderId: 'o4' });
  await deliveryState(p, messageId!, ep, 'failed');
  await settled([svc.rt.outbound.queue]); // no delivery left to run
  expect(rcv.requests).toHaveLength(1);
  const view = await endpointView(p, ep);
  expect(view).toMatchObject({ enabled: false });
  expect(view.disabledReason).toMatch(/410/);
  expect(await emit(p, { orderId: 'o5' })).toMatchObject({ messageId: null, endpointIds: [] });
  const list = await getJson<{ endpoints: EndpointView[] }>(`/v1/partners/${p}/endpoints`);
  expect(list.endpoints.map((e) => [e.id, e.enabled])).toEqual([[ep, false]]);
  // redelivery to a disabled endpoint is refused until an operator re-enables it
  const rd = await svc.api(`/v1/partners/${p}/messages/${messageId}/redeliver`, { json: { endpointId: ep } });
  expect(rd.status).toBe(409);
  expect(rd.headers.get('content-type')).toMatch(/application\/problem\+json/);
  // PATCH re-enables; new events flow again
  const patched = await svc.api(`/v1/partners/${p}/endpoints/${ep}`, { method: 'PATCH', json: { enabled: true } });
  expect(await patched.json()).toMatchObject({ enabled: true, disabledReason: null });
  expect((await emit(p, { orderId: 'o6' })).endpointIds).toEqual([ep]);
});

test('a pending retry to an endpoint that no longer subscribes to its type is settled, not sent (as for a disabled one)', async () => {
  // The partner narrowed the endpoint's events (its handler for the type is gone): the retries of a
  // message of that type went on for the whole schedule (≈ 27.5 h), while a redelivery is refused (409).
  let answer = 503;
  const p = await newPartner();
  const rcv = await startReceiver(() => (answer === 503 ? { status: 503, headers: { 'retry-after': '2' } } : { status: answer }));
  const { id: ep } = await addEndpoint(p, rcv.url, ['attribution.order_attributed', 'reconciliation.completed']);
  const { messageId } = await emit(p, { orderId: 'unsub-1' });
  await waitFor(async () => rcv.requests.length === 1 || undefined, 10_000);
  const patched = await svc.api(`/v1/partners/${p}/endpoints/${ep}`, { method: 'PATCH', json: { events: ['reconciliation.completed'] } });
  expect(patched.status).toBe(200);
  answer = 200;
  const settledView = await waitFor(async () => {
    const v = await messageView(p, messageId!);
    const d = v.deliveries.find((x) => x.endpointId === ep);
    return d && d.state !== 'pending' ? d : undefined;
  }, 15_000);
  expect(settledView).toMatchObject({ state: 'failed', attempts: 1 });
  expect(settledView.lastError).toMatch(/no longer subscribes to attribution\.order_attributed/);
  expect(rcv.requests).toHaveLength(1);
  // the endpoint itself is untouched, and the types it still subscribes to are delivered
  expect(await endpointView(p, ep)).toMatchObject({ enabled: true, events: ['reconciliation.completed'] });
  const { messageId: other } = await emit(p, { id: 'rec-1' }, undefined, 'reconciliation.completed');
  await deliveryState(p, other!, ep, 'delivered');
});

test('an event name given twice in an endpoint\'s events is kept once, on create and on PATCH (stored, answered, listed)', async () => {
  const p = await newPartner();
  const r = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: 'http://127.0.0.1:9/dup', events: ['mirror.updated', 'mirror.updated', 'reconciliation.completed'] } });
  expect(r.status).toBe(201);
  const { id, events } = (await r.json()) as EndpointView;
  expect(events).toEqual(['mirror.updated', 'reconciliation.completed']);
  const patched = await svc.api(`/v1/partners/${p}/endpoints/${id}`, { method: 'PATCH', json: { events: ['reconciliation.completed', 'reconciliation.completed'] } });
  expect(patched.status).toBe(200);
  expect(((await patched.json()) as EndpointView).events).toEqual(['reconciliation.completed']);
  const listed = (await (await svc.api(`/v1/partners/${p}/endpoints`)).json()) as { endpoints: EndpointView[] };
  expect(listed.endpoints.find((e) => e.id === id)?.events).toEqual(['reconciliation.completed']);
});

test('a 302 is not followed: the target gets nothing, the attempt is a failure; after the whole schedule the endpoint is disabled', async () => {
  const p = await newPartner();
  const target = await startReceiver(() => ({ status: 200 }));
  const redirector = await startReceiver(() => ({ status: 302, headers: { location: `${target.url}?token=secret` } }));
  const { id: ep } = await addEndpoint(p, redirector.url);
  const { messageId } = await emit(p, { orderId: 'o7' });
  const view = await deliveryState(p, messageId!, ep, 'failed');
  expect(view.deliveries[0]).toMatchObject({ attempts: 8, lastStatusCode: 302 });
  expect(target.requests).toHaveLength(0);
  expect(redirector.requests).toHaveLength(8); // 1 + 7 retries
  const list = (await attempts(p, ep)).attempts;
  expect(list).toHaveLength(8);
  for (const a of list) {
    expect(a).toMatchObject({ success: false, statusCode: 302 });
    expect(a.error).toMatch(/redirect not followed/);
    expect(a.error).not.toMatch(/token=secret/);
  }
  const e = await endpointView(p, ep);
  expect(e.enabled).toBe(false);
  expect(e.disabledReason).toMatch(/no 2xx since/);
});

test('an endpoint that still accepts other messages stays enabled when one message exhausts its schedule', async () => {
  const p = await newPartner();
  const rcv = await startReceiver((r) => ({ status: r.body.includes('"orderId":"bad"') ? 500 : 200 }));
  const { id: ep } = await addEndpoint(p, rcv.url);
  // the poison message fails every time; other messages succeed meanwhile and stop the failure clock
  const poison = (await emit(p, { orderId: 'bad' })).messageId!;
  await waitFor(async () => rcv.forId(poison).length >= 1);
  const good = await emit(p, { orderId: 'good' });
  await deliveryState(p, good.messageId!, ep, 'delivered');
  await deliveryState(p, poison, ep, 'failed');
  expect(rcv.forId(poison)).toHaveLength(8);
  expect(await endpointView(p, ep)).toMatchObject({ enabled: true });
});

test('timeouts and refused connections are retried failures', async () => {
  const p = await newPartner();
  const slow = createServer(() => undefined); // never answers
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const port = (slow.address() as { port: number }).port;
  try {
    const res = await postWebhook(`http://127.0.0.1:${port}/`, '{}', {}, { timeoutMs: 200, allowPrivate: true });
    expect(res).toMatchObject({ statusCode: null, error: 'timed out after 200 ms' });
    expect(res.durationMs).toBeGreaterThanOrEqual(190);
  } finally {
    slow.closeAllConnections();
    slow.close();
  }
  const { id: ep } = await addEndpoint(p, `http://127.0.0.1:${port}/gone`);
  const { messageId } = await emit(p, { orderId: 'o8' });
  await deliveryState(p, messageId!, ep, 'failed');
  const list = (await attempts(p, ep)).attempts;
  expect(list).toHaveLength(8);
  expect(list[0]!.error).toMatch(/ECONNREFUSED/);
});

test('rotate-secret: the new secret verifies, and so does the old one during the grace period; secrets are never listed', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 200 }));
  const { id: ep, secret: old } = await addEndpoint(p, rcv.url);
  const r = await svc.api(`/v1/partners/${p}/endpoints/${ep}/rotate-secret`, { method: 'POST' });
  expect(r.status).toBe(200);
  const { secret } = (await r.json()) as { secret: string };
  expect(secret).not.toBe(old);
  const { messageId } = await emit(p, { orderId: 'r1' });
  await deliveryState(p, messageId!, ep, 'delivered');
  const got = rcv.forId(messageId!)[0]!;
  expect(new Webhook(secret).verify(got.body, got.headers)).toBeTruthy();
  expect(new Webhook(old).verify(got.body, got.headers)).toBeTruthy();
  for (const path of [`/v1/partners/${p}/endpoints`, `/v1/partners/${p}/endpoints/${ep}`]) {
    const text = await (await svc.api(path)).text();
    expect(text).not.toMatch(/whsec_|secretSealed|v1\./);
  }
});

test('concurrent rotate-secret calls chain: both secrets handed out and the original one keep signing', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 200 }));
  const { id: ep, secret: original } = await addEndpoint(p, rcv.url);
  const rs = await Promise.all([0, 1].map(() => svc.api(`/v1/partners/${p}/endpoints/${ep}/rotate-secret`, { method: 'POST' })));
  expect(rs.map((r) => r.status)).toEqual([200, 200]);
  const handedOut = await Promise.all(rs.map(async (r) => ((await r.json()) as { secret: string }).secret));
  // Whichever ran second demoted the first one's secret to the newest previous one; the original is older.
  const h = await svc.rt.redis.hgetall(svc.rt.keys.endpoint(p, ep));
  const stored = [h['secretSealed']!, h['previousSecretSealed']!].map((x) => svc.rt.box.decrypt(x));
  expect(new Set(stored)).toEqual(new Set(handedOut));
  expect(olderPrevious(h)).toEqual([original]);
  const { messageId } = await emit(p, { orderId: 'rc1' });
  await deliveryState(p, messageId!, ep, 'delivered');
  const got = rcv.forId(messageId!)[0]!;
  for (const s of [...handedOut, original]) expect(new Webhook(s).verify(got.body, got.headers)).toBeTruthy();
});

/** The plain secrets in an endpoint hash's olderPreviousSecrets, newest first. */
function olderPrevious(h: Record<string, string>): string[] {
  const raw = h['olderPreviousSecrets'];
  return raw ? (JSON.parse(raw) as { sealed: string }[]).map((s) => svc.rt.box.decrypt(s.sealed)) : [];
}

async function rotate(p: string, ep: string): Promise<string> {
  const r = await svc.api(`/v1/partners/${p}/endpoints/${ep}/rotate-secret`, { method: 'POST' });
  expect(r.status).toBe(200);
  return ((await r.json()) as { secret: string }).secret;
}

async function deliveredTo(rcv: Receiver, p: string, ep: string, orderId: string): Promise<Received> {
  const { messageId } = await emit(p, { orderId });
  await deliveryState(p, messageId!, ep, 'delivered');
  return rcv.forId(messageId!)[0]!;
}

const verifies = (secret: string, got: Received): boolean => {
  try {
    new Webhook(secret).verify(got.body, got.headers);
    return true;
  } catch {
    return false;
  }
};

test('two rotations within the grace period (a retried rotate whose response was lost): deliveries still verify with the original secret', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 200 }));
  const { id: ep, secret: original } = await addEndpoint(p, rcv.url);
  const lost = await rotate(p, ep); // the client never saw this response
  const latest = await rotate(p, ep);
  const got = await deliveredTo(rcv, p, ep, 'rr1');
  expect(got.headers['webhook-signature']!.split(' ')).toHaveLength(3);
  for (const s of [original, lost, latest]) expect(verifies(s, got)).toBe(true);
  // the record stays readable by code that knows one previous secret: the newest one is there
  const h = await svc.rt.redis.hgetall(svc.rt.keys.endpoint(p, ep));
  expect(svc.rt.box.decrypt(h['previousSecretSealed']!)).toBe(lost);
  expect(olderPrevious(h)).toEqual([original]);
});

test('rotation drops previous secrets whose grace ended, keeps at most the newest five, and reads records with one previous secret only', async () => {
  const p = await newPartner();
  const rcv = await startReceiver(() => ({ status: 200 }));
  const { id: ep, secret: original } = await addEndpoint(p, rcv.url);
  const key = svc.rt.keys.endpoint(p, ep);
  const first = await rotate(p, ep);
  // a record as the old code wrote it: one previous secret, no olderPreviousSecrets field
  await svc.rt.redis.hdel(key, 'olderPreviousSecrets');
  expect(svc.rt.box.decrypt((await svc.rt.redis.hget(key, 'previousSecretSealed'))!)).toBe(original);
  const second = await rotate(p, ep);
  expect(olderPrevious(await svc.rt.redis.hgetall(key))).toEqual([original]);
  // the original's grace ends: it no longer signs, and the next rotation drops it
  const past = new Date(Date.now() - 1000).toISOString();
  const stale = JSON.parse((await svc.rt.redis.hget(key, 'olderPreviousSecrets'))!) as { sealed: string; expiresAt: string }[];
  await svc.rt.redis.hset(key, 'olderPreviousSecrets', JSON.stringify(stale.map((s) => ({ ...s, expiresAt: past }))));
  const got = await deliveredTo(rcv, p, ep, 'rx1');
  expect(verifies(original, got)).toBe(false);
  for (const s of [first, second]) expect(verifies(s, got)).toBe(true);
  const third = await rotate(p, ep);
  let h = await svc.rt.redis.hgetall(key);
  expect(svc.rt.box.decrypt(h['previousSecretSealed']!)).toBe(second);
  expect(olderPrevious(h)).toEqual([first]);
  // an expired newest previous one goes too
  await svc.rt.redis.hset(key, 'previousSecretExpiresAt', past);
  const fourth = await rotate(p, ep);
  h = await svc.rt.redis.hgetall(key);
  expect(olderPrevious(h)).toEqual([first]);
  expect(svc.rt.box.decrypt(h['previousSecretSealed']!)).toBe(third);
  // bounded: five previous secrets at most, the newest
  const more: string[] = [];
  for (let i = 0; i < 5; i++) more.push(await rotate(p, ep));
  h = await svc.rt.redis.hgetall(key);
  expect(svc.rt.box.decrypt(h['secretSealed']!)).toBe(more[4]);
  expect([svc.rt.box.decrypt(h['previousSecretSealed']!), ...olderPrevious(h)]).toEqual([more[3], more[2], more[1], more[0], fourth]);
  const last = await deliveredTo(rcv, p, ep, 'rx2');
  expect(last.headers['webhook-signature']!.split(' ')).toHaveLength(6);
  for (const s of [...more, fourth]) expect(verifies(s, last)).toBe(true);
  expect(verifies(third, last)).toBe(false);
});

test('roles: operator writes; viewer and the own partner read; other partners and viewers cannot write', async () => {
  const p = await newPartner();
  const other = await newPartner();
  const rcv = await startReceiver(() => ({ status: 200 }));
  const { id: ep } = await addEndpoint(p, rcv.url);
  const key = async (role: string, partnerId?: string) => ((await (await svc.api('/v1/api-keys', { json: { role, partnerId } })).json()) as { key: string }).key;
  const viewer = await key('viewer');
  const own = await key('partner', p);
  const foreign = await key('partner', other);
  const operator = await key('operator');
  expect((await svc.api(`/v1/partners/${p}/endpoints`, { key: viewer })).status).toBe(200);
  expect((await svc.api(`/v1/partners/${p}/endpoints/${ep}/attempts`, { key: own })).status).toBe(200);
  expect((await svc.api(`/v1/partners/${p}/endpoints`, { key: foreign })).status).toBe(403);
  expect((await svc.api(`/v1/partners/${p}/endpoints`, { key: viewer, json: { url: rcv.url, events: ['mirror.updated'] } })).status).toBe(403);
  expect((await svc.api(`/v1/partners/${p}/endpoints/${ep}`, { key: own, method: 'DELETE' })).status).toBe(403);
  expect((await svc.api(`/v1/partners/${p}/endpoints`, { key: null })).status).toBe(401);
  expect((await svc.api(`/v1/partners/${p}/endpoints`, { key: operator, json: { url: rcv.url, events: ['bogus'] } })).status).toBe(400);
  expect((await svc.api(`/v1/partners/${p}/endpoints/${ep}`, { key: operator, method: 'DELETE' })).status).toBe(204);
  expect((await svc.api(`/v1/partners/${p}/endpoints/${ep}`)).status).toBe(404);
});

describe('with ALLOW_PRIVATE_DESTINATIONS=false', () => {
  let strict: TestService;
  beforeAll(async () => {
    strict = await startService({ redis: svc.redis, workers: true, env: { ALLOW_PRIVATE_DESTINATIONS: 'false', OUTBOUND_RETRY_SCHEDULE_MS: '50', OUTBOUND_TIMEOUT_MS: '1500' } });
    await createPartner(strict, 'strict');
  });
  afterAll(async () => {
    await strict?.close();
  });

  test('private, loopback and link-local destinations are refused at creation', async () => {
    const refused = [
      'http://127.0.0.1/hook',
      'http://127.1:8080/hook',
      'http://2130706433/hook',
      'http://localhost/hook',
      'http://api.localhost/hook',
      'http://10.0.0.1/hook',
      'http://172.16.0.1/hook',
      'http://192.168.1.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://100.64.0.1/hook',
      'http://0.0.0.0/hook',
      'http://[::1]/hook',
      'http://[::]/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://[::ffff:10.0.0.1]/hook',
      'http://[fe80::1]/hook',
      'http://[fc00::1]/hook',
      // Teredo and the 6to4 relay anycast (a relay forwards them on), 6to4 and NAT64 embedding a private IPv4
      'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook',
      'http://192.88.99.1/hook',
      'http://[2002:c058:6301::1]/hook',
      'http://[2002:a00:1::1]/hook',
      'http://[64:ff9b::10.0.0.1]/hook',
      'http://[::ffff:0:a9fe:a9fe]/hook',
      'http://user:pw@93.184.215.14/hook',
      'ftp://93.184.215.14/hook',
    ];
    // A DNS name that resolves to loopback: localtest.me when this machine can resolve it, else this
    // host's own name when /etc/hosts maps it to loopback.
    for (const name of ['localtest.me', hostname()]) {
      const addrs = await lookup(name, { all: true }).catch(() => []);
      if (addrs.length > 0 && addrs.every((a) => a.address.startsWith('127.') || a.address === '::1')) refused.push(`http://${name}:8080/hook`);
    }
    for (const url of refused) {
      const r = await strict.api('/v1/partners/strict/endpoints', { json: { url, events: ['mirror.updated'] } });
      expect([url, r.status]).toEqual([url, 400]);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    // a public address literal is fine (no DNS needed offline)
    const ok = await strict.api('/v1/partners/strict/endpoints', { json: { url: 'https://93.184.215.14/hook', events: ['mirror.updated'] } });
    expect(ok.status).toBe(201);
    // and so is a PATCH to a private one refused
    const { id } = (await ok.json()) as { id: string };
    const patch = await strict.api(`/v1/partners/strict/endpoints/${id}`, { method: 'PATCH', json: { url: 'http://10.1.2.3/' } });
    expect(patch.status).toBe(400);
    await strict.api(`/v1/partners/strict/endpoints/${id}`, { method: 'DELETE' });
  });

  test('the guard runs again at delivery time: an endpoint that now points at loopback gets nothing', async () => {
    const rcv = await startReceiver(() => ({ status: 200 }));
    // As if the endpoint's DNS name had changed to loopback after creation: stored without the API.
    const { endpoint } = await strict.rt.outbound.createEndpoint('strict', { url: rcv.url, events: ['reconciliation.completed'] });
    const { messageId } = await strict.rt.outbound.emit('strict', 'reconciliation.completed', { id: 'rec1' }, 'rec1');
    const r = await waitFor(async () => {
      const v = (await (await strict.api(`/v1/partners/strict/messages/${messageId}`)).json()) as MessageView;
      return v.deliveries[0]?.state === 'failed' ? v : undefined;
    });
    expect(r.deliveries[0]!.lastError).toMatch(/destination refused/);
    expect(rcv.requests).toHaveLength(0);
    const list = (await (await strict.api(`/v1/partners/strict/endpoints/${endpoint.id}/attempts`)).json()) as { attempts: AttemptView[] };
    expect(list.attempts).toHaveLength(2);
    expect(list.attempts[0]).toMatchObject({ success: false, statusCode: null });
  });

  test('the connect-time lookup refuses a name that resolves to loopback (DNS rebinding)', async () => {
    const rcv = await startReceiver(() => ({ status: 200 }));
    const port = new URL(rcv.url).port;
    const res = await postWebhook(`http://localhost:${port}/hooks`, '{}', {}, { timeoutMs: 1000, allowPrivate: false });
    expect(res.statusCode).toBeNull();
    expect(res.error).toMatch(/destination refused: localhost resolves to a private, loopback or link-local address/);
    expect(rcv.requests).toHaveLength(0);
  });
});
