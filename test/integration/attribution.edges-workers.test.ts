/**
 * Money and cursors at the edges of what the schemas accept, with the attribution workers running:
 * stream-id cursors and time bounds Redis refuses, totals past 2^53, amounts JSON.parse would round, and
 * an order's event log bounded while attribution handles it. Once three files (api-edges,
 * events.money-edges, order-event-log.bound), each of which started its own redis-server and service
 * with workers for three to fifteen cases (CI time: docs/testing.md). One service for all (the api role
 * and the worker roles in the process, `workers: true`); each former file is a `describe` of its own,
 * with its own partner (edges, evmoney, ol) and reads only what it made: its attribution totals, its
 * orders' logs (the audit cursors api-edges reads past the first entry or before 1970 are empty whatever
 * else is in the stream). Real redis-server, real HTTP.
 */
import { ORDER_EVENT_LOG_MAX_LEN } from '../../src/store/show.repository.js';
import { createPartner, orderEvent, sendEvent, serviceForFile, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started), { workers: true });

describe('api-edges', () => {
  /**
   * Queries and events at the edges of what the schemas accept, which the API answered with a 5xx or with
   * a wrong number while Redis is up: stream-id cursors and time bounds that Redis refuses (0-0, before
   * 1970, past its unsigned 64-bit range) and attribution totals past 2^53. Real redis-server, real HTTP.
   */
  let secret: string;
  const P = 'edges';

  beforeAll(async () => {
    secret = await createPartner(svc, P);
    // One audit entry in the partner's stream, so the audit stream exists.
    const k = await svc.api('/v1/api-keys', { json: { role: 'viewer', name: 'edge' } });
    expect(k.status).toBe(201);
  }, 60_000);

  const notServerError = async (path: string): Promise<void> => {
    const r = await svc.api(path);
    const body = await r.text();
    expect({ path, status: r.status, body: r.status >= 500 ? body : '' }).toEqual({ path, status: expect.any(Number), body: '' });
    expect(r.status).toBeLessThan(500);
  };

  test.each([
    '/v1/audit?cursor=0-0',
    '/v1/audit?to=1970-01-01T00:00:00Z',
    '/v1/audit?to=1969-12-31T00:00:00Z',
    '/v1/audit?from=1969-01-01T00:00:00Z',
  ])('GET %s is not a 5xx (schema-valid query)', async (path) => {
    await notServerError(path);
  });

  test('endpoint attempts: cursor 0-0 and a cursor past the stream id range are not a 5xx', async () => {
    const r = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } });
    expect(r.status).toBe(201);
    const { id } = (await r.json()) as { id: string };
    await notServerError(`/v1/partners/${P}/endpoints/${id}/attempts?cursor=0-0`);
    await notServerError(`/v1/partners/${P}/endpoints/${id}/attempts?cursor=18446744073709551616-0`);
  });

  test('a cursor with nothing below it is an empty page; one past the stream id range is a 400 problem', async () => {
    const r = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook2', events: ['mirror.updated'] } });
    const { id } = (await r.json()) as { id: string };
    for (const path of ['/v1/audit?cursor=0-0', '/v1/audit?to=1970-01-01T00:00:00Z', `/v1/partners/${P}/endpoints/${id}/attempts?cursor=0-0`]) {
      const page = await svc.api(path);
      expect({ path, status: page.status }).toEqual({ path, status: 200 });
      const body = (await page.json()) as { entries?: unknown[]; attempts?: unknown[]; nextCursor: unknown };
      expect(body.entries ?? body.attempts).toEqual([]);
      expect(body.nextCursor).toBeNull();
    }
    // Entries exist (the key created above): a bound before 1970 reads them all.
    const all = (await (await svc.api('/v1/audit?from=1969-01-01T00:00:00Z')).json()) as { entries: unknown[] };
    expect(all.entries.length).toBeGreaterThan(0);
    for (const path of ['/v1/audit?cursor=18446744073709551616-0', '/v1/audit?cursor=1-18446744073709551616', `/v1/partners/${P}/endpoints/${id}/attempts?cursor=18446744073709551616-0`]) {
      const bad = await svc.api(path);
      expect({ path, status: bad.status, type: bad.headers.get('content-type') }).toEqual({ path, status: 400, type: expect.stringContaining('application/problem+json') });
    }
    // The largest id Redis has is still a cursor.
    expect((await svc.api('/v1/audit?cursor=18446744073709551615-18446744073709551615')).status).toBe(200);
  });

  test('a bad cursor is reported once, with the one reason that applies (audit and delivery attempts)', async () => {
    const r = await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook3', events: ['mirror.updated'] } });
    const { id } = (await r.json()) as { id: string };
    const errorsOf = async (path: string): Promise<unknown> => {
      const res = await svc.api(path);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      return ((await res.json()) as { errors?: unknown }).errors;
    };
    const shape = [{ path: 'querystring.cursor', message: 'a nextCursor from a previous page expected (<ms>-<seq>)' }];
    const range = [{ path: 'querystring.cursor', message: 'each part of a cursor is at most 18446744073709551615 (a Redis stream id)' }];
    for (const base of ['/v1/audit?', `/v1/partners/${P}/endpoints/${id}/attempts?`]) {
      expect(await errorsOf(`${base}cursor=abc`)).toEqual(shape);
      expect(await errorsOf(`${base}cursor=1-2-3`)).toEqual(shape);
      expect(await errorsOf(`${base}cursor=18446744073709551616-0`)).toEqual(range);
    }
  });

  test('a bad timestamp in a query is reported in the same words as in an event (audit and attribution)', async () => {
    for (const path of ['/v1/audit?from=yesterday', `/v1/partners/${P}/attribution?from=yesterday`]) {
      const res = await svc.api(path);
      expect({ path, status: res.status, errors: ((await res.json()) as { errors?: unknown }).errors }).toEqual({ path, status: 400, errors: [{ path: 'querystring.from', message: 'ISO-8601 timestamp expected' }] });
    }
  });

  test('attribution totals are exact (or the order is refused) when a currency total passes 2^53', async () => {
    const MAX = Number.MAX_SAFE_INTEGER;
    const accepted: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const ev = { type: 'order.created', occurredAt: '2026-11-24T18:00:00Z', data: { order: { id: `big${i}`, createdAt: '2026-11-24T18:00:00Z', lines: [], total: { amount: MAX, currency: 'USD' } } } };
      const r = await sendEvent(svc, P, secret, ev);
      if (r.status === 202) accepted.push(i);
      else expect(r.status).toBeLessThan(500);
    }
    const expected = BigInt(MAX) * BigInt(accepted.length);
    const raw = await waitFor(async () => {
      const r = await svc.api(`/v1/partners/${P}/attribution?from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z`);
      const text = await r.text();
      const orders = /"orders":(\d+)/.exec(text);
      return orders && Number(orders[1]) === accepted.length ? text : null;
    }, 20_000);
    // Read the digits as JSON carries them (JSON.parse would round them the same way).
    const gross = /"grossAmount":(\d+)/.exec(raw)![1]!;
    expect(BigInt(gross)).toBe(expected);
    // The same sums from single orders (a period covering the day in part) and in the CSV.
    const part = await (await svc.api(`/v1/partners/${P}/attribution?from=2026-11-24T12:00:00Z&to=2026-11-25T00:00:00Z`)).text();
    expect(BigInt(/"grossAmount":(\d+)/.exec(part)![1]!)).toBe(expected);
    const csv = await (await svc.api(`/v1/partners/${P}/attribution?format=csv&from=2026-11-24T00:00:00Z&to=2026-11-25T00:00:00Z`)).text();
    expect(csv).toContain(`false,,,USD,${accepted.length},${expected},,`);
  }, 60_000);

  test('a lone surrogate escape in an operator body is a 400 naming the field, and nothing is stored (a linked mirror record holding one failed every sync of the show in Redis Lua)', async () => {
    const show = { id: 'surr', title: 'Surrogates', scheduledAt: '2026-11-24T18:00:00Z', state: 'scheduled', products: [], pinnedProductIds: [] };
    expect((await sendEvent(svc, P, secret, { type: 'show.scheduled', occurredAt: '2026-11-24T17:00:00Z', data: { show } })).status).toBe(202);
    const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'wn-surr', platform: 'whatnot', name: 'wn', credentials: { accessToken: 'x' }, commissionRateBps: 100, enabled: false } });
    expect(t.status).toBe(201);
    const refused = async (path: string, method: string, body: string, field: string): Promise<void> => {
      const r = await svc.api(path, { method, headers: { 'content-type': 'application/json' }, body });
      expect({ path, status: r.status, type: r.headers.get('content-type') }).toEqual({ path, status: 400, type: expect.stringContaining('application/problem+json') });
      const p = (await r.json()) as { errors?: { path: string }[] };
      expect(p.errors?.map((e) => e.path)).toEqual([field]);
    };
    // (Written as JSON text: the escape is what arrives on the wire.)
    await refused(`/v1/partners/${P}/shows/surr/mirrors/wn-surr`, 'PUT', '{"externalId":"wn-\\ud800"}', 'body.externalId');
    expect(await svc.rt.shows.getMirror(P, 'surr', 'wn-surr')).toBeNull();
    await refused('/v1/partners', 'POST', '{"id":"surr-p","name":"x\\udc00"}', 'body.name');
    expect((await svc.api('/v1/partners/surr-p')).status).toBe(404);
    await refused(`/v1/partners/${P}/endpoints`, 'POST', '{"url":"http://127.0.0.1:9/h","events":["mirror.updated"],"description":"\\ud800"}', 'body.description');
    // A well-formed pair is text: not refused as a surrogate, but as no Whatnot show id (a UUID) either.
    const ok = await svc.api(`/v1/partners/${P}/shows/surr/mirrors/wn-surr`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"externalId":"wn-\\ud83d\\ude00"}' });
    expect(ok.status).toBe(422);
    expect(((await ok.json()) as { errors?: { path: string }[] }).errors?.map((e) => e.path)).toEqual(['body.externalId']);
  });
});

describe('events.money-edges', () => {
  /**
   * Money in partner events (order.created / order.refunded) at and past 2^53: nothing is stored rounded
   * and nothing answers 5xx. JSON.parse rounds every number literal to a double, so a literal that reads
   * as a safe integer it is not (`1.0000000000000001` → 1, `9007199254740990.6` → 9007199254740991) was
   * accepted as that integer and stored: now a 400 naming it. Literals past 2^53 − 1 (the documented
   * maximum per amount) and fractions are refused by the schema; `1e3` is exactly 1000 and `-0` exactly 0.
   * Real redis-server, real HTTP, signed bodies written by hand (JSON.stringify cannot write these).
   */
  const P = 'evmoney';
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, P);
  }, 60_000);


  let seq = 0;
  const created = (id: string, amount: string): string =>
    `{"type":"order.created","occurredAt":"2026-11-24T18:00:00Z","data":{"order":{"id":"${id}","createdAt":"2026-11-24T18:00:00Z","lines":[{"productId":"p1","quantity":1,"amount":{"amount":${amount},"currency":"USD"}}],"total":{"amount":${amount},"currency":"USD"}}}}`;
  const refunded = (id: string, orderId: string, amount: string): string =>
    `{"type":"order.refunded","occurredAt":"2026-11-24T18:10:00Z","data":{"refund":{"id":"${id}","orderId":"${orderId}","createdAt":"2026-11-24T18:10:00Z","amount":{"amount":${amount},"currency":"USD"}}}}`;

  async function post(body: string): Promise<Response> {
    return sendEvent(svc, P, secret, undefined, { body, webhookId: `msg_money_${++seq}` });
  }

  const orderView = async (id: string): Promise<Response> => svc.api(`/v1/partners/${P}/attribution/orders/${id}`);

  test.each([
    ['9007199254740993 (2^53 + 1, reads as 2^53)', '9007199254740993'],
    ['9007199254740992 (2^53)', '9007199254740992'],
    ['1e300', '1e300'],
    ['1.0000000000000001 (reads as 1)', '1.0000000000000001'],
    ['9007199254740990.6 (reads as 9007199254740991)', '9007199254740990.6'],
    ['4503599627370495.5 (reads as 4503599627370496)', '4503599627370495.5'],
    ['12.5', '12.5'],
    ['"1e3" (a string)', '"1e3"'],
    ['-1 (negative)', '-1'],
  ])('order.created with amount %s → 400 problem+json, nothing stored', async (_name, amount) => {
    const id = `o-bad-${++seq}`;
    const r = await post(created(id, amount));
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { status: number }).status).toBe(400);
    expect((await orderView(id)).status).toBe(404);
  });

  test.each([
    ['1e3 is exactly 1000', '1e3', 1000],
    ['100.0 is exactly 100', '100.0', 100],
    ['-0 is exactly 0', '-0', 0],
    ['2^53 − 1 is the maximum', '9007199254740991', Number.MAX_SAFE_INTEGER],
  ])('order.created with amount %s → 202, stored exactly', async (_name, amount, exact) => {
    const id = `o-ok-${++seq}`;
    const r = await post(created(id, amount));
    expect(r.status).toBe(202);
    const text = await waitFor(async () => {
      const v = await orderView(id);
      return v.status === 200 ? v.text() : undefined;
    }, 20_000);
    expect(text).toMatch(new RegExp(`"amount":${exact}[,}]`));
  });

  test('order.refunded: an amount JSON.parse would round is refused; past the order total it never goes below zero', async () => {
    const id = `o-ref-${++seq}`;
    expect((await post(created(id, '1000'))).status).toBe(202);
    for (const amount of ['1.0000000000000001', '9007199254740993', '1e300', '-0', '-5', '"5"']) {
      const r = await post(refunded(`rf-${++seq}`, id, amount));
      expect({ amount, status: r.status }).toEqual({ amount, status: 400 });
    }
    expect((await post(refunded(`rf-${++seq}`, id, '9007199254740991'))).status).toBeLessThan(500);
  });
});

describe('order-event-log.bound', () => {
  /**
   * An order's event log is bounded. It holds each order event whole (up to 1 MiB), and had neither a
   * length cap nor an expiry: a partner sending ever more events for one order (order.created again and
   * again under new webhook-ids, refunds under new ids) grew one key without end, and every order's log
   * was kept for good, in the Redis every partner shares. Its only reader is the order-event sweep, which
   * reads back events attribution has not handled yet; so handled entries past ORDER_EVENT_LOG_MAX_LEN
   * go (oldest first), a log with nothing pending expires after INBOX_TTL_DAYS, and an entry still
   * pending is never dropped. Real service, real Redis (SYNDICAST_TEST_REDIS=cluster: the order's slot).
   */
  let secret: string;

  beforeAll(async () => {
    // Attribution workers run (they handle what the API stores; the tests below that store events directly leave them pending).
    secret = await createPartner(svc, 'ol');
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
});
