/**
 * An order's event log is bounded. It holds each order event whole (up to 1 MiB), and had neither a
 * length cap nor an expiry: a partner sending ever more events for one order (order.created again and
 * again under new webhook-ids, refunds under new ids) grew one key without end, and every order's log
 * was kept for good, in the Redis every partner shares. Its only reader is the order-event sweep, which
 * reads back events attribution has not handled yet; so handled entries past ORDER_EVENT_LOG_MAX_LEN
 * go (oldest first), a log with nothing pending expires after INBOX_TTL_DAYS, and an entry still
 * pending is never dropped. Real service, real Redis (SYNDICAST_TEST_REDIS=cluster: the order's slot).
 */
import { ORDER_EVENT_LOG_MAX_LEN } from '../../src/store/show.repository.js';
import { createPartner, orderEvent, sendEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  // Attribution workers run (they handle what the API stores; the tests below that store events directly leave them pending).
  svc = await startService({ workers: true });
  secret = await createPartner(svc, 'ol');
});
afterAll(async () => {
  await svc?.close();
});

const order = (id: string) => orderEvent(id);
const orderJson = (id: string) => JSON.stringify(order(id));
const log = (orderId: string) => svc.rt.keys.orderEvents('ol', orderId);

/** Stores `n` events of one order (each under its own webhook-id) as the ingest does; their event ids, oldest first. */
async function store(orderId: string, n: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + n; i++) ids.push((await svc.rt.orderEvents.ingest('ol', orderId, `msg_${orderId}_${i}`, orderJson(orderId))).eventId);
  return ids;
}

test('handled entries past the cap go, oldest first; a handled log expires; a new event keeps it', async () => {
  const n = ORDER_EVENT_LOG_MAX_LEN + 50;
  const ids = await store('o1', n);
  // All pending (attribution has not handled them): all kept, none expires.
  expect(await svc.rt.redis.xlen(log('o1'))).toBe(n);
  for (const id of ids.slice(0, -1)) await svc.rt.orderEvents.handled('ol', 'o1', id);
  expect(await svc.rt.redis.xlen(log('o1'))).toBe(n);
  expect(await svc.rt.redis.pttl(log('o1'))).toBe(-1);
  // The last one handled: the newest ORDER_EVENT_LOG_MAX_LEN stay, for INBOX_TTL_DAYS.
  await svc.rt.orderEvents.handled('ol', 'o1', ids.at(-1)!);
  expect(await svc.rt.redis.xlen(log('o1'))).toBe(ORDER_EVENT_LOG_MAX_LEN);
  expect(await svc.rt.orderEvents.event('ol', 'o1', ids.at(-ORDER_EVENT_LOG_MAX_LEN)!)).not.toBeNull();
  expect(await svc.rt.orderEvents.event('ol', 'o1', ids.at(-ORDER_EVENT_LOG_MAX_LEN - 1)!)).toBeNull();
  const ttl = await svc.rt.redis.ttl(log('o1'));
  expect(ttl).toBeGreaterThan(svc.config.inboxTtlDays * 86_400 - 60);
  expect(ttl).toBeLessThanOrEqual(svc.config.inboxTtlDays * 86_400);

  // A new event of the order: pending, so the log no longer expires; the cap holds.
  const [late] = await store('o1', 1, n);
  expect(await svc.rt.redis.pttl(log('o1'))).toBe(-1);
  expect(await svc.rt.redis.xlen(log('o1'))).toBe(ORDER_EVENT_LOG_MAX_LEN);
  expect(await svc.rt.orderEvents.event('ol', 'o1', late!)).toBe(orderJson('o1'));
});

test('an old entry still pending is never trimmed: the sweep can read it back', async () => {
  const ids = await store('o2', ORDER_EVENT_LOG_MAX_LEN);
  const stuck = ids[4]!; // its job failed: still pending
  for (const id of ids) if (id !== stuck) await svc.rt.orderEvents.handled('ol', 'o2', id);
  await store('o2', 20, ORDER_EVENT_LOG_MAX_LEN);
  expect(await svc.rt.orderEvents.event('ol', 'o2', stuck)).toBe(orderJson('o2'));
  expect((await svc.rt.orderEvents.pendingEvents('ol', 'o2')).map((e) => e.eventId)).toContain(stuck);
  expect(await svc.rt.redis.pttl(log('o2'))).toBe(-1);
  // What is older than it (handled) is gone; it and everything since are there.
  expect(await svc.rt.redis.xlen(log('o2'))).toBe(ORDER_EVENT_LOG_MAX_LEN - 4 + 20);
  expect(await svc.rt.orderEvents.event('ol', 'o2', ids[3]!)).toBeNull();
});

test('a partner flooding one order through the API, with attribution running: the log stays capped', async () => {
  const n = ORDER_EVENT_LOG_MAX_LEN + 30;
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, j) => sendEvent(svc, 'ol', secret, order('o3'), { webhookId: `msg_flood_${i + j}` }));
    for (const r of await Promise.all(batch)) expect(r.status).toBe(202);
  }
  await waitFor(async () => (await svc.rt.orderEvents.pendingEvents('ol', 'o3')).length === 0);
  expect(await svc.rt.redis.xlen(log('o3'))).toBeLessThanOrEqual(ORDER_EVENT_LOG_MAX_LEN);
  expect(await svc.rt.redis.ttl(log('o3'))).toBeGreaterThan(0);
});
