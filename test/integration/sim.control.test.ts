/**
 * The simulators' control plane (contract §9) from a client that labels every request
 * application/json, body or not: `POST /_sim/reset` without a body was a 400 "Body cannot be empty
 * when content-type is set to 'application/json'". Real HTTP on loopback.
 */
import { startSim, type TestSim } from '../helpers/sim.js';

let sim: TestSim;
beforeAll(async () => {
  sim = await startSim();
});
afterAll(async () => {
  await sim.close();
});

const call = (method: string, path: string, body?: string): Promise<Response> =>
  fetch(`${sim.url}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body } : {}) });

test('POST /_sim/reset and /_sim/{platform}/reset labelled JSON without a body reset', async () => {
  const made = await call('POST', '/_sim/whatnot/shows', JSON.stringify({ title: 'by hand' }));
  expect(made.status).toBe(201);
  expect(await sim.effects('whatnot')).toHaveLength(1);
  const r = await call('POST', '/_sim/reset');
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ reset: ['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook'] });
  expect(await sim.effects('whatnot')).toEqual([]);
  expect((await call('POST', '/_sim/whatnot/reset')).status).toBe(200);
});

test('a control route that needs a body still refuses a missing or malformed one with a problem', async () => {
  for (const body of [undefined, '{bad']) {
    const r = await call('POST', '/_sim/whatnot/shows', body);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
});

test("GET /_sim/{platform}/shows/{id}/ingest: the RTMP address the platform's app shows for a show that exists (the demo links the Bambuser show Syndicast made with it); 404 for no show", async () => {
  const made = (await (await call('POST', '/_sim/bambuser/shows', JSON.stringify({ title: 'made by the API, say' }))).json()) as { externalId: string; ingest: { url: string; streamKey: string } };
  const r = await fetch(`${sim.url}/_sim/bambuser/shows/${made.externalId}/ingest`);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual(made.ingest); // one show, one address
  const none = await fetch(`${sim.url}/_sim/bambuser/shows/no-such-show/ingest`);
  expect(none.status).toBe(404);
  expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
});

test('POST /_sim/{platform}/orders and refunds refuse an amount no platform reports (negative, 2^53, a fraction) with a problem', async () => {
  const show = (await (await call('POST', '/_sim/whatnot/shows', JSON.stringify({ title: 'amounts' }))).json()) as { externalId: string };
  const order = (amount: unknown): Promise<Response> => call('POST', '/_sim/whatnot/orders', JSON.stringify({ externalId: show.externalId, productId: 'p1', total: { amount, currency: 'USD' } }));
  for (const amount of [-1, 9007199254740992, 12.5, '100']) {
    const r = await order(amount);
    expect({ amount, status: r.status }).toEqual({ amount, status: 400 });
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
  const made = await order(0);
  expect(made.status).toBe(201);
  const { orderId } = (await made.json()) as { orderId: string };
  for (const amount of [-1, 0]) {
    const r = await call('POST', `/_sim/whatnot/orders/${orderId}/refunds`, JSON.stringify({ amount: { amount, currency: 'USD' } }));
    expect({ amount, status: r.status }).toEqual({ amount, status: 400 });
  }
});

test("PUT /_sim/{platform}/limits refuses a wait past a timer's longest (2^31 − 1 ms): Node would run it after 1 ms, a latency meant to hang answering at once", async () => {
  for (const [platform, body] of [
    ['whatnot', { latencyMs: 2 ** 31 }],
    ['tiktok', { tokenTtlSec: 9007199254740991 }],
  ] as const) {
    const r = await call('PUT', `/_sim/${platform}/limits`, JSON.stringify(body));
    expect({ platform, body, status: r.status }).toEqual({ platform, body, status: 400 });
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
  expect((await call('PUT', '/_sim/whatnot/limits', JSON.stringify({ latencyMs: 2 ** 31 - 1 }))).status).toBe(200);
  await call('PUT', '/_sim/whatnot/limits', JSON.stringify({ latencyMs: 0 }));
  // A platform's own knobs are counts: the waits among them run through SimPlatform.schedule, which
  // waits out any length (test/unit/sim.platform-schedule), and the others are dates or tolerances.
  for (const [platform, body] of [
    ['youtube', { transitionMs: 1e12 }],
    ['facebook', { maxLiveSec: 30 * 86_400, graphClockMs: Date.UTC(2027, 0, 1) }],
  ] as const) {
    expect({ platform, status: (await call('PUT', `/_sim/${platform}/limits`, JSON.stringify(body))).status }).toEqual({ platform, status: 200 });
  }
  await call('POST', '/_sim/reset');
});

/**
 * The control bodies are strict, as a strict platform is: `POST /_sim/youtube/accounts
 * {"highlights": false}` (a Bambuser switch) was a 201 with the field ignored, so a test that asked for
 * a YouTube account without something got one with everything. A field a control route does not take
 * is a 400 problem naming it, nothing made or changed; the same body without it works.
 */
test.each([
  ['POST', '/_sim/youtube/accounts', { highlights: false }, 'highlights', {}],
  ['POST', '/_sim/bambuser/accounts', { highlights: false, scope: 'x' }, 'scope', { highlights: false }],
  ['POST', '/_sim/tiktok/accounts', { limited: true, scopes: [] }, 'scopes', { limited: true }],
  ['POST', '/_sim/whatnot/accounts', { scopes: ['read:orders'] }, 'scopes', {}],
  ['POST', '/_sim/facebook/accounts', { pageToken: 'x' }, 'pageToken', {}],
  ['POST', '/_sim/whatnot/revocations', { token: 'wn_x', reason: 'lost' }, 'reason', { token: 'wn_x' }],
  ['POST', '/_sim/whatnot/shows', { title: 't', state: 'live' }, 'state', { title: 't' }],
  ['PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [], kind: '500' }, 'kind', { rate: 0, kinds: [] }],
  ['PUT', '/_sim/whatnot/webhook', { url: 'http://127.0.0.1:9/h', secret: 's', events: ['x'] }, 'events', { url: 'http://127.0.0.1:9/h', secret: 's' }],
] as const)('%s %s with an unknown field is a 400 problem naming it; without it, taken', async (method, path, body, field, good) => {
  const r = await call(method, path, JSON.stringify(body));
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  // Named in `detail` in quotes (`unknown field "scope"`): a bare `scope` was found in Bambuser's
  // expected-shape text (`scopes`) even when no field was named; and in `errors` by its path.
  const p = (await r.json()) as { detail: string; errors: { path: string }[] };
  expect(p.detail).toContain(`unknown field "${field}"`);
  expect(p.errors.map((e) => e.path)).toContain(field);
  const ok = await call(method, path, JSON.stringify(good));
  expect(ok.status).toBeLessThan(300);
});

test('POST /_sim/{platform}/orders with a field it does not take (or one inside total) is a 400 problem naming it, no order made', async () => {
  const show = (await (await call('POST', '/_sim/whatnot/shows', JSON.stringify({ title: 'strict orders' }))).json()) as { externalId: string };
  const before = ((await (await fetch(`${sim.url}/_sim/whatnot/orders`)).json()) as unknown[]).length;
  const base = { externalId: show.externalId, productId: 'p1', total: { amount: 100, currency: 'USD' } };
  for (const [body, field] of [[{ ...base, status: 'completed' }, 'status'], [{ ...base, total: { ...base.total, tax: 5 } }, 'tax']] as const) {
    const r = await call('POST', '/_sim/whatnot/orders', JSON.stringify(body));
    expect(r.status).toBe(400);
    expect(JSON.stringify(await r.json())).toContain(field);
  }
  expect(((await (await fetch(`${sim.url}/_sim/whatnot/orders`)).json()) as unknown[]).length).toBe(before);
  expect((await call('POST', '/_sim/whatnot/orders', JSON.stringify(base))).status).toBe(201);
});

test('POST /_sim/{platform}/orders/{id}/copies lists an order again (Whatnot, Bambuser): a field it does not take, an order or show that does not exist, or a platform whose simulated report lists no copy is refused', async () => {
  const show = (await (await call('POST', '/_sim/whatnot/shows', JSON.stringify({ title: 'copied orders' }))).json()) as { externalId: string };
  const made = (await (await call('POST', '/_sim/whatnot/orders', JSON.stringify({ externalId: show.externalId, productId: 'p1', total: { amount: 100, currency: 'USD' } }))).json()) as { orderId: string };
  const copy = (platform: string, orderId: string, body: unknown): Promise<Response> => call('POST', `/_sim/${platform}/orders/${orderId}/copies`, JSON.stringify(body));
  const statuses = [
    (await copy('whatnot', made.orderId, { productId: 'p2' })).status,
    (await copy('whatnot', made.orderId, { total: { amount: -1, currency: 'USD' } })).status,
    (await copy('whatnot', 'no-such-order', {})).status,
    (await copy('whatnot', made.orderId, { externalId: 'no-such-show' })).status,
    (await copy('tiktok', made.orderId, {})).status,
    (await copy('whatnot', made.orderId, { total: { amount: 250, currency: 'USD' } })).status,
  ];
  expect(statuses).toEqual([400, 400, 404, 404, 404, 201]);
  // Bambuser: under another show of the organisation, not under another organisation's show.
  const bShow = async (account?: string): Promise<string> => ((await (await call('POST', '/_sim/bambuser/shows', JSON.stringify({ title: 'copied', ...(account ? { account } : {}) }))).json()) as { externalId: string }).externalId;
  const [own, sibling] = [await bShow(), await bShow()];
  const org = ((await (await call('POST', '/_sim/bambuser/accounts', JSON.stringify({}))).json()) as { orgId: string }).orgId;
  const other = await bShow(org);
  const bOrder = (await (await call('POST', '/_sim/bambuser/orders', JSON.stringify({ externalId: own, productId: 'p1', total: { amount: 100, currency: 'USD' } }))).json()) as { orderId: string };
  expect([(await copy('bambuser', bOrder.orderId, { externalId: other })).status, (await copy('bambuser', bOrder.orderId, { externalId: sibling })).status]).toEqual([404, 201]);
});

test('POST /_sim/whatnot/orders/{id}/copies lists an order again only under a show of its own seller (not another seller\'s, nor a show no seller has reached); a copy below what the refunds took, or in another currency, is refused as a refund is', async () => {
  const post = async <T>(path: string, body: unknown): Promise<T> => (await (await call('POST', path, JSON.stringify(body))).json()) as T;
  const copy = async (orderId: string, body: unknown): Promise<number> => (await call('POST', `/_sim/whatnot/orders/${orderId}/copies`, JSON.stringify(body))).status;
  const [a, b] = [await post<{ sellerId: string }>('/_sim/whatnot/accounts', {}), await post<{ sellerId: string }>('/_sim/whatnot/accounts', {})];
  const show = async (account?: string): Promise<string> => (await post<{ externalId: string }>('/_sim/whatnot/shows', { title: 'copies', ...(account ? { account } : {}) })).externalId;
  const order = async (externalId: string, amount = 100): Promise<string> => (await post<{ orderId: string }>('/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount, currency: 'USD' } })).orderId;
  const [a1, a2, b1, loose1, loose2] = [await show(a.sellerId), await show(a.sellerId), await show(b.sellerId), await show(), await show()];
  const ofA = await order(a1);
  const ofNoOne = await order(loose1);
  expect([await copy(ofA, { externalId: b1 }), await copy(ofNoOne, { externalId: loose2 }), await copy(ofA, { externalId: a2 })]).toEqual([404, 404, 201]);
  // Refunded 60 of 100: a copy of 50, or in EUR, is refused (409, 422: refundOrder's); 60 USD is listed.
  const refunded = await order(a1);
  expect((await call('POST', `/_sim/whatnot/orders/${refunded}/refunds`, JSON.stringify({ amount: { amount: 60, currency: 'USD' } }))).status).toBe(201);
  const statuses = [await copy(refunded, { total: { amount: 50, currency: 'USD' } }), await copy(refunded, { total: { amount: 100, currency: 'EUR' } }), await copy(refunded, { total: { amount: 60, currency: 'USD' } })];
  expect(statuses).toEqual([409, 422, 201]);
});

/**
 * One 400 shape for a control body that does not parse, whichever code parses it: the server's own
 * routes (orders, limits, faults, webhook…: sim.server.ts) and each simulator's (accounts, products,
 * revocations…: invalidControlBody in sim.platform.ts). They differed: the server's `detail` named no
 * field ("the request body does not match the expected shape", the fields only in `errors`), the
 * simulators' had no `errors`. Contract: problem+json, `errors` for validation; here `detail` names the
 * offending fields and the expected shape too.
 */
test.each([
  ['the server', 'PUT', '/_sim/whatnot/faults', { rate: 2, kinds: [], kind: '500' }, 'rate', 'kind'],
  ['the server', 'POST', '/_sim/whatnot/orders', { externalId: 'x', productId: 'p', total: { amount: -1, currency: 'USD', tax: 1 } }, 'total.amount', 'total.tax'],
  ['a simulator', 'POST', '/_sim/youtube/accounts', { scope: 5, highlights: false }, 'scope', 'highlights'],
  ['a simulator', 'PUT', '/_sim/whatnot/products', { productIds: 'p1', account: 'a', extra: true }, 'productIds', 'extra'],
] as const)('a bad control body on a route of %s (%s %s) is the one 400 problem shape: detail names the fields and the expected shape, errors lists them', async (_who, method, path, body, invalid, unknown) => {
  const r = await call(method, path, JSON.stringify(body));
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await r.json()) as Record<string, unknown> & { detail: string; errors: { path: string; message: string }[] };
  expect(Object.keys(p).sort()).toEqual(['detail', 'errors', 'status', 'title', 'type']);
  expect(p).toMatchObject({ type: 'about:blank', title: 'Invalid request body', status: 400 });
  expect(p.detail).toContain(`unknown field "${unknown}"`);
  expect(p.detail).toMatch(new RegExp(`invalid: .*"${invalid.replace('.', '\\.')}" \\(`));
  expect(p.detail).toMatch(/; expected |; status must be /);
  expect(p.errors).toEqual(expect.arrayContaining([{ path: unknown, message: expect.stringMatching(/^unknown field/) }, { path: invalid, message: expect.any(String) }]));
  expect(p.errors.every((e) => typeof e.path === 'string' && typeof e.message === 'string' && e.message !== '')).toBe(true);
});
