/**
 * What the partner event ingest stores and claims at its bounds: a show's event log and registers
 * bounded, snapshots with repeated ids or blank titles accepted, order below the millisecond, and
 * webhook-id claims (released only when no other delivery relies on them; a claim whose event was never
 * stored). Once six files (show-event-log.bound, show-registers.bound, events.snapshot-issues,
 * events.sub-ms-order, webhook-id.release-race, webhook-id.unstored-claim), each of which started its
 * own redis-server and service for two to five cases (CI time: docs/testing.md). One service for all,
 * with startService's defaults (the api role and the sync dispatcher); each former file is a `describe`
 * of its own, with its own partner (lb, rg, snapi, subms, rr, uc) and reads only its own keys; what a
 * block replaces on the service's objects (webhook-id.release-race's ingest, releaseIfHeld and
 * singleNode) it puts back before its case ends. Real redis-server, real HTTP.
 */
import { SHOW_EVENT_LOG_MAX_LEN, SHOW_REGISTERS_MAX } from '../../src/store/show.repository.js';
import { createPartner, orderEvent, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('show-event-log.bound', () => {
  /**
   * A show's event log is bounded in bytes, not just in entries. It kept every accepted event's whole
   * JSON (up to the route's 1 MiB body limit) under `XADD MAXLEN ~ 10000`: one partner could make one
   * show hold ≈ 10 GiB in Redis, the system of record every other partner shares (noeviction: writes
   * refused for all). Its only reader is the ops console's show timeline (the newest 200 entries: type,
   * occurredAt, a pin's productId); the event's content is in the show's registers. The log now keeps
   * that summary (a few hundred bytes at most) and about SHOW_EVENT_LOG_MAX_LEN entries.
   */
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'lb');
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
});

describe('show-registers.bound', () => {
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
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'rg');
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

  // The snapshot is the show's own register, never a new id's: a show whose product events came first
  // and filled it to the bound still takes its first snapshot (refused, the show never had one).
  test('a show filled to SHOW_REGISTERS_MAX by product events before any snapshot still takes its first snapshot', async () => {
    const desired = svc.rt.keys.desired('rg', 'full4');
    const old = '000000000000001000000|seed';
    for (let i = 0; i < SHOW_REGISTERS_MAX; i += 500) {
      const args: string[] = [];
      for (let j = i; j < Math.min(i + 500, SHOW_REGISTERS_MAX); j++) args.push(`prod:s${j}`, JSON.stringify(product(`s${j}`)), `prod:s${j}@`, old);
      await svc.rt.redis.hset(desired, ...args);
    }
    await svc.rt.redis.hset(desired, 'v', String(SHOW_REGISTERS_MAX)); // the version, as the events would have left it
    const fresh = await sendEvent(svc, 'rg', secret, { type: 'product.updated', occurredAt: '2026-11-24T17:01:00Z', data: { showId: 'full4', product: product('new4') } });
    expect(fresh.status).toBe(422); // full: a new id's register is refused
    expect((await sendEvent(svc, 'rg', secret, showEvent('show.scheduled', sampleShow('full4'), '2026-11-24T17:02:00Z'))).status).toBe(202);
    expect(await svc.rt.redis.hexists(desired, 'snap')).toBe(1);
  });
});

describe('events.snapshot-issues', () => {
  /**
   * Show snapshots the event schema allows but no platform takes as they are: a product id listed twice,
   * and a show or product title that is blank once control and bidi characters are removed. Both are
   * ACCEPTED (202, stored, the show view has them): the contract's Show has no uniqueness or visible-text
   * rule, and a partner's show must not be refused over a label. What makes them safe happens later:
   *  - a repeated id: the last one listed counts for the mirror (deriveDesired) and for the tracked link
   *    (productOf) alike (test/unit/desired-state.duplicate-product.test.ts; the attack on npm start of
   *    2026-12-02 saw Bambuser pin the last while the link went to the first one's page);
   *  - a blank title goes out as `Live show` / `Product` (test/integration/platform-text.adapters.test.ts).
   * Real redis-server, real HTTP.
   */
  let secret: string;
  const PARTNER = 'snapi';
  let seq = 0;

  beforeAll(async () => {
    secret = await createPartner(svc, PARTNER);
  });

  const product = (id: string, title: string, amount = 100): Record<string, unknown> => ({
    id,
    title,
    price: { amount, currency: 'USD' },
    url: `https://shop.example.com/${id}-${amount}`,
  });
  const AT = '2026-11-24T17:00:00Z';

  async function accepted(event: unknown): Promise<void> {
    const r = await sendEvent(svc, PARTNER, secret, event, { webhookId: `msg_snapi_${++seq}` });
    expect({ status: r.status, body: (await r.json()) as unknown }).toMatchObject({ status: 202, body: { duplicate: false } });
  }

  interface ShowView {
    title: string;
    products: { id: string; title: string; price: { amount: number } }[];
  }
  async function view(showId: string): Promise<ShowView> {
    const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}`);
    expect(r.status).toBe(200);
    return ((await r.json()) as { show: ShowView }).show;
  }

  test('a product id twice in one snapshot is accepted; the last one listed is the product', async () => {
    const show = sampleShow('dup1', { products: [product('a', 'A'), product('b', 'B'), product('a', 'A2', 200)], pinnedProductIds: ['a'] });
    await accepted(showEvent('show.scheduled', show, AT));
    expect((await view('dup1')).products.map((p) => [p.id, p.title, p.price.amount])).toEqual([
      ['a', 'A2', 200],
      ['b', 'B', 100],
    ]);
  });

  test.each([
    ['spaces', '   '],
    ['a tab and a line feed', '\t\n'],
    ['no-break and ideographic spaces', '\u00a0\u3000'],
    ['a NUL and a right-to-left override', '\u0000\u202e'],
  ])('a show title of %s is accepted and kept as the partner sent it', async (_name, title) => {
    const id = `blank${++seq}`;
    await accepted(showEvent('show.scheduled', sampleShow(id, { title, products: [product('a', ' \u0007 ')] }), AT));
    const v = await view(id);
    expect([v.title, v.products[0]?.title]).toEqual([title, ' \u0007 ']);
  });

  test('a blank product title in product.updated is accepted', async () => {
    await accepted(showEvent('show.scheduled', sampleShow('blankp', { products: [product('a', 'A')] }), AT));
    await accepted({ type: 'product.updated', occurredAt: '2026-11-24T17:05:00Z', data: { showId: 'blankp', product: product('a', '  ') } });
  });
});

describe('events.sub-ms-order', () => {
  /**
   * "Later occurredAt wins per show and per pin" (contract §3) below the millisecond: occurredAt is
   * ISO-8601 and partners' clocks often say microseconds or nanoseconds (Python's isoformat, Java's
   * Instant, Go's RFC3339Nano). The register order key kept milliseconds only, so two events of one show
   * in the same millisecond were ordered by their webhook ids instead: a show.ended 800 µs after its
   * show.live left the show live whenever the live event's webhook id sorted last. Through the API and
   * the ingest's Lua on a real redis-server, in both arrival orders.
   */
  let secret: string;
  const PARTNER = 'subms';

  beforeAll(async () => {
    secret = await createPartner(svc, PARTNER);
  });

  async function accepted(event: unknown, webhookId: string): Promise<void> {
    const r = await sendEvent(svc, PARTNER, secret, event, { webhookId });
    expect(r.status).toBe(202);
  }

  async function view(showId: string): Promise<{ state: string; pinned: string[] }> {
    const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}`);
    expect(r.status).toBe(200);
    const show = ((await r.json()) as { show: { state: string; pinnedProductIds: string[] } }).show;
    return { state: show.state, pinned: show.pinnedProductIds };
  }

  test.each([
    ['live first', false],
    ['ended first', true],
  ])('a show.ended 800 µs after show.live ends the show whatever the webhook ids (%s)', async (_name, endedFirst) => {
    const showId = `subms-${endedFirst ? 'e' : 'l'}`;
    const live = (): Promise<void> => accepted(showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00.123100Z'), `z-live-${showId}`);
    const ended = (): Promise<void> => accepted(showEvent('show.ended', sampleShow(showId, { state: 'ended' }), '2026-11-24T18:00:00.123900Z'), `a-ended-${showId}`);
    if (endedFirst) await ended().then(live);
    else await live().then(ended);
    expect((await view(showId)).state).toBe('ended');
  });

  test('an unpin 1 µs after its pin, in the same millisecond, leaves the product unpinned', async () => {
    const showId = 'subms-pin';
    await accepted(showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'), 'subms-pin-live');
    await accepted({ type: 'product.unpinned', occurredAt: '2026-11-24T18:01:00.000002Z', data: { showId, productId: 'p1' } }, 'a-unpin');
    await accepted({ type: 'product.pinned', occurredAt: '2026-11-24T18:01:00.000001Z', data: { showId, productId: 'p1' } }, 'z-pin');
    expect((await view(showId)).pinned).toEqual([]);
  });
});

describe('webhook-id.release-race', () => {
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
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'rr');
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
});

describe('webhook-id.unstored-claim', () => {
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
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'uc');
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
});
