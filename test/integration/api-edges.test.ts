/**
 * Queries and events at the edges of what the schemas accept, which the API answered with a 5xx or with
 * a wrong number while Redis is up: stream-id cursors and time bounds that Redis refuses (0-0, before
 * 1970, past its unsigned 64-bit range) and attribution totals past 2^53. Real redis-server, real HTTP.
 */
import { createPartner, sendEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const P = 'edges';

beforeAll(async () => {
  svc = await startService({ workers: true });
  secret = await createPartner(svc, P);
  // One audit entry in the partner's stream, so the audit stream exists.
  const k = await svc.api('/v1/api-keys', { json: { role: 'viewer', name: 'edge' } });
  expect(k.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

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
