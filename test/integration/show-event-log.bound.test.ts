/**
 * A show's event log is bounded in bytes, not just in entries. It kept every accepted event's whole
 * JSON (up to the route's 1 MiB body limit) under `XADD MAXLEN ~ 10000`: one partner could make one
 * show hold ≈ 10 GiB in Redis, the system of record every other partner shares (noeviction: writes
 * refused for all). Its only reader is the ops console's show timeline (the newest 200 entries: type,
 * occurredAt, a pin's productId); the event's content is in the show's registers. The log now keeps
 * that summary (a few hundred bytes at most) and about SHOW_EVENT_LOG_MAX_LEN entries.
 */
import { SHOW_EVENT_LOG_MAX_LEN } from '../../src/store/show.repository.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'lb');
});
afterAll(async () => {
  await svc?.close();
});

/** The bytes of the log's entries (ids, field names and values). */
async function logBytes(showId: string): Promise<number> {
  const rows = await svc.rt.redis.xrangeBuffer(svc.rt.keys.showEvents('lb', showId), '-', '+');
  let n = 0;
  for (const [id, fields] of rows) n += id.length + fields.reduce((s, f) => s + f.length, 0);
  return n;
}

test('a snapshot of almost 1 MiB is stored in the show (registers) but adds well under 1 KiB to its event log', async () => {
  // 900 products with ~1 KB URLs: a body just under the 1 MiB limit.
  const products = Array.from({ length: 900 }, (_, i) => ({ id: `p${i}`, title: `Product ${i}`, price: { amount: 100, currency: 'USD' }, url: `https://shop.example.com/${'x'.repeat(1000)}/${i}` }));
  const big = showEvent('show.scheduled', sampleShow('big', { products }), '2026-11-24T17:00:00Z');
  expect(JSON.stringify(big).length).toBeGreaterThan(900 * 1024);
  expect(JSON.stringify(big).length).toBeLessThan(1024 * 1024);
  for (let i = 0; i < 3; i++) {
    const r = await sendEvent(svc, 'lb', secret, { ...(big as object), occurredAt: `2026-11-24T17:0${i}:00Z` }, { webhookId: `msg_big_${i}` });
    expect(r.status).toBe(202);
  }
  const d = await svc.rt.shows.desired('lb', 'big');
  expect(d?.products.size).toBe(900);
  expect(await svc.rt.redis.xlen(svc.rt.keys.showEvents('lb', 'big'))).toBe(3);
  // Old code: ≈ 3 × 940 KB.
  expect(await logBytes('big')).toBeLessThan(3 * 1024);

  // The console's timeline still says what happened.
  const pin = await sendEvent(svc, 'lb', secret, { type: 'product.pinned', occurredAt: '2026-11-24T17:10:00Z', data: { showId: 'big', productId: 'p7' } }, { webhookId: 'msg_big_pin' });
  expect(pin.status).toBe(202);
  const view = (await (await svc.api('/v1/ops/partners/lb/shows/big')).json()) as { timeline: { kind: string; summary: string; detail: string | null }[] };
  const events = view.timeline.filter((t) => t.kind === 'event');
  expect(events.map((e) => e.summary)).toEqual(['partner sent product.pinned (p7)', 'partner sent show.scheduled', 'partner sent show.scheduled', 'partner sent show.scheduled']);
  expect(events[0]!.detail).toBe('occurred at 2026-11-24T17:10:00Z');
});

test(`the log keeps about ${SHOW_EVENT_LOG_MAX_LEN} entries (approximate trimming: at most one stream node more)`, async () => {
  const n = SHOW_EVENT_LOG_MAX_LEN + 250;
  for (let i = 0; i < n; i += 25) {
    const batch = Array.from({ length: Math.min(25, n - i) }, (_, j) =>
      sendEvent(svc, 'lb', secret, { type: i + j === 0 ? 'product.pinned' : 'product.unpinned', occurredAt: '2026-11-24T17:10:00Z', data: { showId: 'many', productId: 'p1' } }, { webhookId: `msg_many_${i + j}` }),
    );
    expect((await Promise.all(batch)).map((r) => r.status)).toEqual(batch.map(() => 202));
  }
  const len = await svc.rt.redis.xlen(svc.rt.keys.showEvents('lb', 'many'));
  expect(len).toBeGreaterThanOrEqual(SHOW_EVENT_LOG_MAX_LEN);
  expect(len).toBeLessThanOrEqual(SHOW_EVENT_LOG_MAX_LEN + 100);
}, 60_000);
