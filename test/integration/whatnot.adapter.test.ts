/**
 * The Whatnot adapter against the Whatnot simulator over real HTTP: the operator-link path with
 * lineup add/remove as pin/unpin, the exact requests, RateLimit-* headers read proactively, 429 /
 * 500 / timeout / token faults, Standard Webhooks verification, and order list pagination.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { SIM_ACCOUNTS, simWhatnotAppCredentials } from '../../src/simulators/sim.accounts.js';
import type { PinSpec, PlatformOrder, RemoteShow } from '../../src/targets/target.adapter.js';
import { ActionRequiredError, AuthExpiredError, PermanentError, PinRefusedError, RateLimitedError, RetryableError, ShowOverError, WebhookAuthError } from '../../src/targets/target.errors.js';
import { buildWhatnotAdapter, type WhatnotAdapterOptions } from '../../src/targets/whatnot/whatnot.adapter.js';
import { buildOpContext, caught } from '../helpers/adapter-context.js';
import { adapterHarness, useSimulators, type AdapterHarness as Harness } from '../helpers/adapter-harness.js';
import { platformSim, line, useReceiver } from '../helpers/adapter-sim.js';

const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
/** Seller a and seller b of the simulator (src/simulators/sim.accounts.ts). */
const CREDENTIALS = { accessToken: SIM_ACCOUNTS.whatnot[0]!.accessToken, webhookSecret: WEBHOOK_SECRET };
const SELLER_B = { accessToken: SIM_ACCOUNTS.whatnot[1]!.accessToken, webhookSecret: WEBHOOK_SECRET };
const PIN: PinSpec = {
  productId: 'p-blush',
  title: 'Blush',
  price: { amount: 2500, currency: 'USD' },
  linkUrl: 'http://127.0.0.1:3000/l/XyZ123',
  platformProductId: 'UHJvZHVjdE5vZGU6MTIzNDU2',
};
const MERCH_PATH = `/merchandising/products/${PIN.platformProductId}`;

const sim = useSimulators();
const receiver = useReceiver();

// --- helpers ------------------------------------------------------------------------------------

function harness(opts: { credentials?: Record<string, string>; timeoutMs?: number; adapter?: WhatnotAdapterOptions } = {}): Harness {
  return adapterHarness((ctx) => buildWhatnotAdapter(ctx, opts.adapter), { platform: 'whatnot', baseUrl: `${sim.url}/whatnot`, credentials: opts.credentials ?? CREDENTIALS, timeoutMs: opts.timeoutMs ?? 3_000 });
}

const { control, effects, requests, lastSeq } = platformSim(() => sim.url, 'whatnot');
/** A show made by hand: `account` a seller id (without one, the first seller to reach it claims it). */
const newShow = async (title = 'Sunday breaks', account?: string): Promise<string> => ((await control('POST', '/shows', { title, ...(account ? { account } : {}) })) as { externalId: string }).externalId;
const SELLER_A_ID = SIM_ACCOUNTS.whatnot[0]!.sellerId;
const newOrder = async (externalId: string, amount: number, createdAt?: string): Promise<string> =>
  ((await control('POST', '/orders', { externalId, productId: PIN.platformProductId, total: { amount, currency: 'USD' }, ...(createdAt ? { createdAt } : {}) })) as { orderId: string }).orderId;

/** Standard Webhooks signature, computed here from the spec (not with src/sources/signature.ts). */
function standardSignature(secret: string, id: string, ts: string, body: Buffer): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest('base64')}`;
}

// --- tests --------------------------------------------------------------------------------------

describe('Whatnot adapter ↔ Whatnot simulator', () => {
  it('operator-link path: attach reads the show, pin adds the product to the lineup, unpin removes it, each once', async () => {
    const h = harness();
    expect(h.adapter.capabilities).toEqual({ createShow: 'operator_link', pin: 'show_product', unpin: true, lifecycle: false, ingest: false, orderWebhooks: true, orderReport: true });
    await expect(h.adapter.createShow({ title: 't', description: undefined, scheduledAt: '2030-01-01T00:00:00Z' }, buildOpContext('mk'))).rejects.toBeInstanceOf(ActionRequiredError);

    const showId = await newShow('Sunday breaks');
    const remote = await h.adapter.attachShow(showId);
    expect(remote).toEqual({ externalId: showId, url: `https://www.whatnot.com/live/${showId}`, ingest: undefined, data: { status: 'scheduled' } });

    const pinned = await h.adapter.pin(remote, PIN, buildOpContext('mk-pin'));
    expect(pinned.ref).toBe(PIN.platformProductId);
    await h.adapter.pin(remote, PIN, buildOpContext('mk-pin')); // a retry: ADD is a set operation
    await h.adapter.unpin(remote, PIN, pinned.ref, buildOpContext('mk-unpin'));
    await h.adapter.unpin(remote, PIN, pinned.ref, buildOpContext('mk-unpin'));

    const fx = await effects();
    expect(fx.map((e) => [e.type, e.externalId, e.productId ?? null])).toEqual([
      ['show.created', showId, null],
      ['product.pinned', showId, PIN.platformProductId],
      ['product.unpinned', showId, PIN.platformProductId],
    ]);
    expect(h.logs.join('\n')).not.toContain(CREDENTIALS.accessToken);

    const missing = await caught(h.adapter.attachShow('0b6f3c1e-8a52-4d2e-9f7a-3c5d1e2f4a6b'));
    expect(missing).toBeInstanceOf(PermanentError);
    expect((missing as PermanentError).reason).toBe('not-found');
    expect((missing as PermanentError).message).toMatch(/check the id linked/);
    const malformedId = await caught(h.adapter.attachShow('not-a-uuid'));
    expect((malformedId as PermanentError).reason).toBe('validation-error');
  });

  it('sends exactly the documented requests', async () => {
    const h = harness();
    const showId = await newShow();
    const remote = await h.adapter.attachShow(showId);
    await h.adapter.pin(remote, PIN, buildOpContext('mk-r'));
    await h.adapter.unpin(remote, PIN, undefined, buildOpContext('mk-u'));
    const from = new Date('2030-01-01T00:00:00.000Z');
    const to = new Date('2030-01-02T00:00:00.000Z');
    await h.adapter.listOrders!(from, to);

    const reqs = await requests();
    expect(reqs.map(line)).toEqual([`GET /shows/${showId} 200`, `POST ${MERCH_PATH} 200`, `POST ${MERCH_PATH} 200`, 'GET /orders 200']);
    for (const r of reqs) expect(r.headers.authorization).toBe(`Bearer ${CREDENTIALS.accessToken}`);
    expect(reqs[1]?.headers['content-type']).toContain('application/json');
    expect(JSON.parse(reqs[1]!.body)).toEqual({ shows: { show_ids: [showId], strategy: 'ADD' } });
    expect(JSON.parse(reqs[2]!.body)).toEqual({ shows: { show_ids: [showId], strategy: 'REMOVE' } });
    expect(reqs[3]?.query).toEqual({ created_at_gte: from.toISOString(), created_at_lt: to.toISOString(), limit: '50' });
    expect(reqs[0]?.body).toBe('');
  });

  it('reads RateLimit-* on every answer: Remaining 0 blocks the limiter before a 429; a 429 honours Retry-After', async () => {
    await control('PUT', '/limits', { requestsPerWindow: 3, windowMs: 5000 }); // a long window: no slot frees up mid-test
    const showId = await newShow();
    const direct = await axios.get(`${sim.url}/whatnot/shows/${showId}`, { headers: { authorization: `Bearer ${CREDENTIALS.accessToken}` } });
    expect(direct.headers['ratelimit-limit']).toBe('3, 3;w=5');
    expect(direct.headers['ratelimit-remaining']).toBe('2');
    expect(direct.headers['ratelimit-reset']).toMatch(/^[1-5]$/);

    const h = harness();
    await h.adapter.attachShow(showId); // remaining 1
    expect(h.limiter.blocks).toEqual([]);
    const t0 = Date.now();
    await h.adapter.attachShow(showId); // remaining 0: block proactively
    expect(h.limiter.blocks).toHaveLength(1);
    expect(h.limiter.blocks[0]?.reason).toBe('whatnot rate limit window used up');
    expect(h.limiter.blocks[0]?.untilMs).toBeGreaterThanOrEqual(t0 + 1000);
    expect(h.limiter.blocks[0]?.untilMs).toBeLessThanOrEqual(Date.now() + 5000);

    // The in-memory limiter does not enforce blocks: the next call reaches Whatnot and gets its 429.
    const err = await caught(h.adapter.attachShow(showId));
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).reason).toBe('rate-limited');
    expect((err as RateLimitedError).delayMs).toBeGreaterThanOrEqual(1000); // Retry-After: when the oldest slot frees
    expect((err as RateLimitedError).delayMs).toBeLessThanOrEqual(5000);
    expect(h.limiter.blocks).toHaveLength(2);
    expect(h.limiter.blocks[1]?.reason).toBe('whatnot rate limit');
    expect((await requests()).map((r) => r.status)).toEqual([200, 200, 200, 429]);
  });

  it("the 10 requests/s are each seller's and app's: another seller's calls, or the seller's app, neither use the window nor see it", async () => {
    await control('PUT', '/limits', { requestsPerWindow: 3, windowMs: 5000 }); // a long window: no slot frees up mid-test
    const get = (token: string) => axios.get(`${sim.url}/whatnot/shows`, { headers: { authorization: `Bearer ${token}` }, validateStatus: () => true });
    const a = await Promise.all([0, 1, 2].map(() => get(CREDENTIALS.accessToken)));
    expect(a.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(a.map((r) => r.headers['ratelimit-remaining']).sort()).toEqual(['0', '1', '2']);

    // seller b: its own window, untouched by seller a's three calls
    const b = await get(SELLER_B.accessToken);
    expect([b.status, b.headers['ratelimit-remaining']]).toEqual([200, '2']);
    const hb = harness({ credentials: SELLER_B });
    await hb.adapter.attachShow(await newShow('B breaks', SIM_ACCOUNTS.whatnot[1]!.sellerId));
    expect(hb.limiter.blocks).toEqual([]); // remaining 1: seller a's full window blocks nothing of b's

    // seller a's app (OAuth): another app, another window
    const app = harness({ credentials: { ...simWhatnotAppCredentials('a'), webhookSecret: WEBHOOK_SECRET } });
    await expect(app.adapter.verifyCredentials!()).resolves.toMatchObject({ accountId: SELLER_A_ID });
    expect(app.limiter.blocks).toEqual([]);

    // seller a's personal token: its window is full
    const over = await get(CREDENTIALS.accessToken);
    expect([over.status, (over.data as { type: string }).type, over.headers['ratelimit-remaining']]).toEqual([429, 'rate-limited', '0']);
    expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('refused requests (401, 403) take a slot of the window they name and answer its RateLimit-*: a token lacking a scope, a revoked one, none at all', async () => {
    // The window was picked after the 401 and 403 checks: refused requests took no slot and answered
    // the Remaining of an empty window (403 with Remaining 3, Reset 0 after the budget was spent).
    await control('PUT', '/limits', { requestsPerWindow: 3, windowMs: 5000 }); // a long window: no slot frees up mid-test
    const get = (token?: string) => axios.get(`${sim.url}/whatnot/shows`, { headers: token ? { authorization: `Bearer ${token}` } : {}, validateStatus: () => true });
    const seen = async (token?: string): Promise<Array<[number, unknown]>> => {
      const out: Array<[number, unknown]> = [];
      for (let i = 0; i < 4; i++) {
        const r = await get(token);
        out.push([r.status, r.headers['ratelimit-remaining']]);
        if (r.status !== 429) expect(Number(r.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
      }
      return out;
    };
    // seller a's personal token, without read:shows: three 403s spend its window, the fourth is the 429
    await control('PUT', '/scopes', { token: CREDENTIALS.accessToken, scopes: ['read:orders'] });
    expect(await seen(CREDENTIALS.accessToken)).toEqual([[403, '2'], [403, '1'], [403, '0'], [429, '0']]);
    // seller b's token revoked: its 401s count against seller b's window (a made-up one too: a new seller)
    await control('POST', '/revocations', { token: SELLER_B.accessToken });
    expect(await seen(SELLER_B.accessToken)).toEqual([[401, '2'], [401, '1'], [401, '0'], [429, '0']]);
    // no token (nor a revoked one no seller holds): the client address's window, not any seller's
    expect(await seen()).toEqual([[401, '2'], [401, '1'], [401, '0'], [429, '0']]);
    await control('POST', '/revocations', { token: 'wn_nobody_revoked' });
    expect((await get('wn_nobody_revoked')).status).toBe(429);
    const app = harness({ credentials: { ...simWhatnotAppCredentials('a'), webhookSecret: WEBHOOK_SECRET } });
    await expect(app.adapter.verifyCredentials!()).resolves.toMatchObject({ accountId: SELLER_A_ID }); // seller a's app: another window
  });

  it('faults: 429 → RateLimitedError + block, 500 → RetryableError, timeout → RetryableError, token_expired/revoked → PermanentError', async () => {
    const h = harness({ timeoutMs: 500 });
    const showId = await newShow();

    await control('PUT', '/faults', { rate: 1, kinds: ['429'] });
    const e429 = await caught(h.adapter.attachShow(showId));
    expect(e429).toBeInstanceOf(RateLimitedError);
    expect((e429 as RateLimitedError).delayMs).toBe(1000);
    expect(h.limiter.blocks.map((b) => b.reason)).toEqual(['whatnot rate limit']);

    await control('PUT', '/faults', { rate: 1, kinds: ['500'] });
    const e500 = await caught(h.adapter.attachShow(showId));
    expect(e500).toBeInstanceOf(RetryableError);
    expect((e500 as RetryableError).reason).toBe('internal-error');

    await control('PUT', '/faults', { rate: 1, kinds: ['timeout'], hangMs: 5_000 });
    const eTimeout = await caught(h.adapter.attachShow(showId));
    expect(eTimeout).toBeInstanceOf(RetryableError);
    expect((eTimeout as RetryableError).reason).toBe('timeout');

    await control('PUT', '/faults', { rate: 1, kinds: ['token_expired'] });
    const eToken = await caught(h.adapter.attachShow(showId));
    expect(eToken).toBeInstanceOf(PermanentError);
    expect((eToken as PermanentError).reason).toBe('unauthorized');
    expect((eToken as PermanentError).message).toMatch(/issue a new Seller API token/);
    expect((eToken as PermanentError).message).toContain('PATCH /v1/partners/ptn_test/targets/tgt_test');

    await control('PUT', '/faults', { rate: 0, kinds: [] });
    const revoked = harness({ credentials: { accessToken: 'revoked-token' } });
    expect(await caught(revoked.adapter.attachShow(showId))).toBeInstanceOf(PermanentError);
    await expect(h.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  });

  it('verifies Standard Webhooks and maps orders.created / orders.updated; refuses forged or unverifiable ones', async () => {
    const h = harness();
    const showId = await newShow();
    await control('PUT', '/webhook', { url: receiver.url, secret: WEBHOOK_SECRET });
    const orderId = await newOrder(showId, 2599);
    const hook = receiver.got[0]!;
    const headers = {
      'webhook-id': hook.headers['webhook-id'] as string,
      'webhook-timestamp': hook.headers['webhook-timestamp'] as string,
      'webhook-signature': hook.headers['webhook-signature'] as string,
    };
    expect(headers['webhook-signature']).toBe(standardSignature(WEBHOOK_SECRET, headers['webhook-id'], headers['webhook-timestamp'], hook.body));
    expect((JSON.parse(hook.body.toString('utf8')) as { type: string }).type).toBe('orders.created');

    const before = await lastSeq();
    expect(await h.adapter.handleWebhook!(headers, hook.body)).toEqual([
      {
        orderId,
        externalShowId: showId,
        productId: PIN.platformProductId,
        clickId: undefined,
        createdAt: expect.any(String),
        total: { amount: 2599, currency: 'USD' },
        refunded: { amount: 0, currency: 'USD' },
        status: 'pending_fulfillment',
        commission: undefined,
      },
    ]);
    // The webhook's order has no line items (the Order model has none): its product is one call.
    expect((await requests(before)).map(line)).toEqual([`GET /orders/${orderId}/items 200`]);

    await control('POST', `/orders/${orderId}/refunds`, { amount: { amount: 599, currency: 'USD' } });
    const update = receiver.got[1]!;
    const [refunded] = await h.adapter.handleWebhook!(
      { 'webhook-id': update.headers['webhook-id'] as string, 'webhook-timestamp': update.headers['webhook-timestamp'] as string, 'webhook-signature': update.headers['webhook-signature'] as string },
      update.body,
    );
    expect(refunded?.refunded).toEqual({ amount: 599, currency: 'USD' });

    const tampered = Buffer.from(hook.body.toString('utf8').replace('25.99', '2.59'));
    await expect(h.adapter.handleWebhook!(headers, tampered)).rejects.toBeInstanceOf(WebhookAuthError);
    const otherSecret = `whsec_${randomBytes(24).toString('base64')}`;
    await expect(h.adapter.handleWebhook!({ ...headers, 'webhook-signature': standardSignature(otherSecret, headers['webhook-id'], headers['webhook-timestamp'], hook.body) }, hook.body)).rejects.toBeInstanceOf(WebhookAuthError);
    const stale = String(Math.floor(Date.now() / 1000) - 3600);
    await expect(h.adapter.handleWebhook!({ ...headers, 'webhook-timestamp': stale, 'webhook-signature': standardSignature(WEBHOOK_SECRET, headers['webhook-id'], stale, hook.body) }, hook.body)).rejects.toBeInstanceOf(WebhookAuthError);
    await expect(h.adapter.handleWebhook!({}, hook.body)).rejects.toBeInstanceOf(WebhookAuthError);
    const noSecret = harness({ credentials: { accessToken: CREDENTIALS.accessToken } });
    // The 401's detail names no credential field (the caller is not authenticated); the fix, for ops, is the whole PATCH.
    const unverifiable = await noSecret.adapter.handleWebhook!(headers, hook.body).catch((e: unknown) => e);
    expect(unverifiable).toBeInstanceOf(WebhookAuthError);
    expect((unverifiable as WebhookAuthError).message).toBe('Whatnot webhooks cannot be verified for this target');
    expect((unverifiable as WebhookAuthError).advice).toMatch(/PATCH \/v1\/partners\/[^/]+\/targets\/[^ ]+ \{"credentials": \{"accessToken": "…", "webhookSecret": "<new>"\}\}/);

    // a valid delivery of another topic: acknowledged, no orders
    const body = Buffer.from(JSON.stringify({ type: 'shows.started', timestamp: new Date().toISOString(), data: { show_id: showId }, version: 'v2', seller_id: '1' }));
    const ts = String(Math.floor(Date.now() / 1000));
    await expect(h.adapter.handleWebhook!({ 'webhook-id': 'msg_1', 'webhook-timestamp': ts, 'webhook-signature': standardSignature(WEBHOOK_SECRET, 'msg_1', ts, body) }, body)).resolves.toEqual([]);
  });

  // --- the Order model has no line items: they are GET /orders/{id}/items ----------------------

  it('the simulator, as Whatnot: orders and their webhooks carry no line items; GET /orders/{id}/items serves them, with the same auth, 404 and rate limit', async () => {
    const showId = await newShow('Items', SELLER_A_ID);
    await control('PUT', '/webhook', { url: receiver.url, secret: WEBHOOK_SECRET });
    const orderId = await newOrder(showId, 2599);
    const as = (token?: string) => ({ headers: token ? { authorization: `Bearer ${token}` } : {}, validateStatus: () => true });
    const items = `${sim.url}/whatnot/orders/${encodeURIComponent(orderId)}/items`;

    const list = await axios.get(`${sim.url}/whatnot/orders`, as(CREDENTIALS.accessToken));
    expect((list.data as { data: { id: string }[] }).data.map((o) => o.id)).toEqual([orderId]);
    expect((list.data as { data: unknown[] }).data[0]).not.toHaveProperty('line_items');
    expect((await axios.get(`${sim.url}/whatnot/orders/${orderId}`, as(CREDENTIALS.accessToken))).data).not.toHaveProperty('line_items');
    const created = JSON.parse(receiver.got[0]!.body.toString('utf8')) as { type: string; data: Record<string, unknown> };
    expect(created.type).toBe('orders.created');
    expect(created.data.id).toBe(orderId);
    expect(created.data).not.toHaveProperty('line_items');

    const got = await axios.get(items, as(CREDENTIALS.accessToken));
    expect(got.status).toBe(200);
    expect(got.headers['ratelimit-limit']).toBe('10, 10;w=1');
    expect(got.data).toEqual({ data: [{ id: `${orderId}-1`, order_id: orderId, product_id: PIN.platformProductId, quantity: 1, price: { amount: '25.99', currency: 'USD' } }], next_cursor: null });

    // no token: 401; another seller's order, an order that does not exist: 404 — problem+json each
    for (const [res, status, type] of [
      [await axios.get(items, as()), 401, 'unauthorized'],
      [await axios.get(items, as(SELLER_B.accessToken)), 404, 'not-found'],
      [await axios.get(`${sim.url}/whatnot/orders/no-such-order/items`, as(CREDENTIALS.accessToken)), 404, 'not-found'],
    ] as const) {
      expect([res.status, res.headers['content-type']]).toEqual([status, expect.stringContaining('application/problem+json')]);
      expect(res.data).toMatchObject({ type, status });
    }

    // the items call counts against the seller's window like every other call: a full one answers 429
    await control('PUT', '/limits', { requestsPerWindow: 2, windowMs: 5000 });
    let refused;
    for (let i = 0; i < 4 && !refused; i++) {
      const r = await axios.get(items, as(CREDENTIALS.accessToken));
      if (r.status !== 200) refused = r;
    }
    expect(refused?.status).toBe(429);
    expect(refused?.headers['content-type']).toContain('application/problem+json');
    expect(refused?.headers['retry-after']).toMatch(/^[1-5]$/);
    expect(refused?.data).toMatchObject({ type: 'rate-limited', status: 429 });
  });

  it('the report carries no products; orderDetails reads each one from GET /orders/{id}/items, waits out a full window, and throws what a failed call is', async () => {
    const h = harness();
    const showId = await newShow();
    const a = await newOrder(showId, 1000);
    const b = await newOrder(showId, 2000);
    const unpaid = await newOrder(showId, 3000);
    await control('PUT', `/orders/${unpaid}/status`, { status: 'pending' });
    const from = new Date(Date.now() - 60_000);
    const to = new Date(Date.now() + 60_000);

    const seq = await lastSeq();
    const orders = await h.adapter.listOrders!(from, to);
    expect(orders.map((o) => [o.orderId, o.productId])).toEqual([[a, undefined], [b, undefined]]);
    expect((await requests(seq)).map(line)).toEqual(['GET /orders 200']);

    const seq2 = await lastSeq();
    const detailed = await h.adapter.orderDetails!(orders);
    expect(detailed).toEqual(orders.map((o) => ({ ...o, productId: PIN.platformProductId })));
    // one call per order it is given (the pending one is no sale: never asked about)
    expect((await requests(seq2)).map(line)).toEqual([`GET /orders/${a}/items 200`, `GET /orders/${b}/items 200`]);

    // a failed items call throws the typed error: the caller stores nothing and tries again later
    await control('PUT', '/faults', { rate: 1, kinds: ['500'] });
    expect(await caught(h.adapter.orderDetails!(orders))).toBeInstanceOf(RetryableError);
    await control('PUT', '/faults', { rate: 0, kinds: [] });

    // Whatnot's 429 on it is waited out (Retry-After), as for a report page
    await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 1000 });
    const seq3 = await lastSeq();
    await expect(h.adapter.orderDetails!(orders)).resolves.toEqual(detailed);
    const after = (await requests(seq3)).map((r) => r.status);
    expect(after).toContain(429);
    expect(after.filter((st) => st === 200)).toHaveLength(2);
  });

  it("a sale webhook whose order's items cannot be read is stored without its product (not refused); a full window is waited out; a pending order's asks nothing", async () => {
    const h = harness();
    const showId = await newShow();
    await control('PUT', '/webhook', { url: receiver.url, secret: WEBHOOK_SECRET });
    const orderId = await newOrder(showId, 1200);
    await control('PUT', `/orders/${orderId}/status`, { status: 'pending' });
    const hdr = (i: number) => ({ 'webhook-id': receiver.got[i]!.headers['webhook-id'] as string, 'webhook-timestamp': receiver.got[i]!.headers['webhook-timestamp'] as string, 'webhook-signature': receiver.got[i]!.headers['webhook-signature'] as string });
    const seq = await lastSeq();
    expect(await h.adapter.handleWebhook!(hdr(1), receiver.got[1]!.body)).toEqual([]); // orders.updated: pending
    expect(await requests(seq)).toEqual([]);

    await control('PUT', '/faults', { rate: 1, kinds: ['500'] });
    await expect(h.adapter.handleWebhook!(hdr(0), receiver.got[0]!.body)).resolves.toEqual([expect.objectContaining({ orderId, productId: undefined, total: { amount: 1200, currency: 'USD' } })]);
    await control('PUT', '/faults', { rate: 0, kinds: [] });
    await expect(h.adapter.handleWebhook!(hdr(0), receiver.got[0]!.body)).resolves.toEqual([expect.objectContaining({ orderId, productId: PIN.platformProductId })]);
    // a full window (Whatnot's 429) is waited out: the product still comes
    await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 1000 });
    const seqW = await lastSeq();
    await expect(h.adapter.handleWebhook!(hdr(0), receiver.got[0]!.body)).resolves.toEqual([expect.objectContaining({ orderId, productId: PIN.platformProductId })]);
    await expect(h.adapter.handleWebhook!(hdr(0), receiver.got[0]!.body)).resolves.toEqual([expect.objectContaining({ orderId, productId: PIN.platformProductId })]);
    expect((await requests(seqW)).map((r) => r.status)).toContain(200);
    await control('PUT', '/limits', { requestsPerWindow: 10, windowMs: 1000 });

    // items Whatnot cannot find (404) for an order it reported: the sale is kept, without a product
    // (refusing it would fail every redelivery and every reconciliation of the period alike)
    const created = JSON.parse(receiver.got[0]!.body.toString('utf8')) as { data: Record<string, unknown> };
    const ghost = Buffer.from(JSON.stringify({ type: 'orders.created', timestamp: new Date().toISOString(), data: { ...created.data, id: 'wn-no-such-order' } }));
    const ts = String(Math.floor(Date.now() / 1000));
    const seq2 = await lastSeq();
    await expect(h.adapter.handleWebhook!({ 'webhook-id': 'msg_g', 'webhook-timestamp': ts, 'webhook-signature': standardSignature(WEBHOOK_SECRET, 'msg_g', ts, ghost) }, ghost)).resolves.toEqual([
      expect.objectContaining({ orderId: 'wn-no-such-order', productId: undefined, total: { amount: 1200, currency: 'USD' } }),
    ]);
    expect((await requests(seq2)).map(line)).toEqual(['GET /orders/wn-no-such-order/items 404']);
  });

  // --- issue 13: a token works for its own seller only ------------------------------------------

  it("another seller's token cannot read, pin to or see the orders of a show it did not make (404, as if it did not exist)", async () => {
    const showId = await newShow('Seller a breaks', SELLER_A_ID);
    const orderId = await newOrder(showId, 1500);
    const b = harness({ credentials: SELLER_B });
    const attach = await caught(b.adapter.attachShow(showId));
    expect(attach).toBeInstanceOf(PermanentError);
    const a = harness();
    const remote = await a.adapter.attachShow(showId);
    const pin = await caught(b.adapter.pin(remote, PIN, buildOpContext('mk-b-pin')));
    expect(pin).toBeInstanceOf(PermanentError);
    expect(pin).not.toBeInstanceOf(PinRefusedError); // the show, not the product: the pin's 404 reads the show, which is not B's
    expect((await effects()).filter((e) => e.type === 'product.pinned')).toEqual([]);
    expect((await requests()).filter((r) => r.headers.authorization === `Bearer ${SELLER_B.accessToken}`).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`)).toEqual([
      `GET /shows/${showId} 404`,
      `POST ${MERCH_PATH} 404`,
      `GET /shows/${showId} 404`,
    ]);
    const from = new Date(Date.now() - 60_000);
    const to = new Date(Date.now() + 60_000);
    expect(await b.adapter.listOrders!(from, to)).toEqual([]);
    expect((await a.adapter.listOrders!(from, to)).map((o) => o.orderId)).toEqual([orderId]);
    const direct = await axios.get(`${sim.url}/whatnot/orders/${orderId}`, { headers: { authorization: `Bearer ${SELLER_B.accessToken}` }, validateStatus: () => true });
    expect(direct.status).toBe(404);
    // seller b's own show works with seller b's token
    const showB = ((await control('POST', '/shows', { title: 'Seller b', account: SIM_ACCOUNTS.whatnot[1]!.sellerId })) as { externalId: string }).externalId;
    await expect(b.adapter.pin(await b.adapter.attachShow(showB), PIN, buildOpContext('mk-b-own'))).resolves.toBeDefined();
    expect((await effects()).filter((e) => e.type === 'product.pinned').map((e) => e.externalId)).toEqual([showB]);
  });

  it("a token never seen is a new seller's (CONTRACT §9: any non-empty credentials): it works, and reaches no other seller's show", async () => {
    const showId = await newShow('Seller a breaks', SELLER_A_ID);
    const made = harness({ credentials: { accessToken: 'wn_any_token_at_all' } });
    // seller a's show is no show of the new seller: Whatnot's 404
    expect(await caught(made.adapter.attachShow(showId))).toBeInstanceOf(PermanentError);
    expect((await requests()).map(line)).toEqual([`GET /shows/${showId} 404`]);
    // a token the seller revoked is refused (401), and stays so
    await control('POST', '/revocations', { token: 'wn_revoked_token' });
    const revoked = harness({ credentials: { accessToken: 'wn_revoked_token' } });
    const seq = await lastSeq();
    expect(await caught(revoked.adapter.attachShow(showId))).toBeInstanceOf(PermanentError);
    expect((await requests(seq)).map(line)).toEqual([`GET /shows/${showId} 401`]);
  });

  it('pages through GET /orders with the cursor and keeps exactly [from, to)', async () => {
    const h = harness({ adapter: { pageSize: 3 } });
    const showId = await newShow();
    const base = Date.parse('2030-05-01T10:00:00Z');
    const at = (s: number): string => new Date(base + s * 1000).toISOString();
    const ids: string[] = [];
    ids.push(await newOrder(showId, 500, at(-1)));
    for (let i = 0; i < 7; i++) ids.push(await newOrder(showId, 1000 + i, at(i * 30)));
    ids.push(await newOrder(showId, 500, at(7 * 30)));
    await control('POST', `/orders/${ids[3]}/refunds`, { amount: { amount: 1002, currency: 'USD' } });

    const orders = await h.adapter.listOrders!(new Date(base), new Date(base + 7 * 30_000));
    expect(orders.map((o) => o.orderId)).toEqual(ids.slice(1, 8));
    expect(orders.every((o) => o.externalShowId === showId)).toBe(true);
    expect(orders[2]).toMatchObject({ total: { amount: 1002, currency: 'USD' }, refunded: { amount: 1002, currency: 'USD' }, status: 'cancelled' });

    const lists = (await requests()).filter((r) => r.path === '/orders');
    expect(lists).toHaveLength(3);
    expect(lists.map((r) => r.query.cursor ?? null)).toEqual([null, expect.any(String), expect.any(String)]);
    expect(lists.every((r) => r.query.limit === '3')).toBe(true);
  });

  it('orderPages hands the report over page by page: the next page is asked for only when the last one was taken', async () => {
    const h = harness({ adapter: { pageSize: 3 } });
    const showId = await newShow();
    const base = Date.parse('2030-06-01T10:00:00Z');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await newOrder(showId, 1000 + i, new Date(base + i * 1000).toISOString()));
    const listed = async (): Promise<number> => (await requests()).filter((r) => r.path === '/orders').length;

    const pages = h.adapter.orderPages!(new Date(base), new Date(base + 7_000))[Symbol.asyncIterator]();
    const first = await pages.next();
    expect(first.done).toBe(false);
    expect((first.value as PlatformOrder[]).map((o) => o.orderId)).toEqual(ids.slice(0, 3));
    expect(await listed()).toBe(1);
    const rest: string[] = [];
    for (let next = await pages.next(); !next.done; next = await pages.next()) rest.push(...(next.value as PlatformOrder[]).map((o) => o.orderId));
    expect(rest).toEqual(ids.slice(3));
    expect(await listed()).toBe(3);
    // the same report whole
    expect((await h.adapter.listOrders!(new Date(base), new Date(base + 7_000))).map((o) => o.orderId)).toEqual(ids);
  });

  // --- issue 9: only paid orders are sales; defensive parsing ----------------------------------

  it('a sale counts when Whatnot says it happened: pending and failed orders are not reported, cancelled is refunded in full', async () => {
    const h = harness();
    const showId = await newShow();
    await control('PUT', '/webhook', { url: receiver.url, secret: WEBHOOK_SECRET });
    const paid = await newOrder(showId, 1000);
    const shipped = await newOrder(showId, 2000);
    const unpaid = await newOrder(showId, 3000);
    const declined = await newOrder(showId, 4000);
    const cancelled = await newOrder(showId, 5000);
    await control('PUT', `/orders/${shipped}/status`, { status: 'completed' });
    await control('PUT', `/orders/${unpaid}/status`, { status: 'pending' });
    await control('PUT', `/orders/${declined}/status`, { status: 'failed' });
    await control('PUT', `/orders/${cancelled}/status`, { status: 'cancelled' });

    const orders = await h.adapter.listOrders!(new Date(Date.now() - 60_000), new Date(Date.now() + 60_000));
    expect(orders.map((o) => [o.orderId, o.status, o.total.amount, o.refunded.amount])).toEqual([
      [paid, 'pending_fulfillment', 1000, 0],
      [shipped, 'completed', 2000, 0],
      [cancelled, 'cancelled', 5000, 5000],
    ]);

    // orders.updated for the failed payment carries no sale either
    const hooks = receiver.got.map((r) => ({ r, body: JSON.parse(r.body.toString('utf8')) as { type: string; data: { id: string; status: string } } }));
    const failedHook = hooks.find((x) => x.body.type === 'orders.updated' && x.body.data.id === declined && x.body.data.status === 'failed');
    expect(failedHook).toBeDefined();
    const hh = failedHook!.r.headers;
    const h3 = { 'webhook-id': hh['webhook-id'] as string, 'webhook-timestamp': hh['webhook-timestamp'] as string, 'webhook-signature': hh['webhook-signature'] as string };
    await expect(h.adapter.handleWebhook!(h3, failedHook!.r.body)).resolves.toEqual([]);
  });

  it('a stopped show (stream stopped, show not over) can still be linked and its lineup changed', async () => {
    const h = harness();
    const showId = await newShow();
    await control('PUT', `/shows/${showId}/status`, { status: 'live' });
    await control('PUT', `/shows/${showId}/status`, { status: 'stopped' });
    const remote = await h.adapter.attachShow(showId);
    expect(remote.data).toEqual({ status: 'stopped' });
    await h.adapter.pin(remote, PIN, buildOpContext('mk-stopped'));
    await control('PUT', `/shows/${showId}/status`, { status: 'ended' });
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.started', 'product.pinned', 'show.ended']);
  });

  it('merchandising speaks the documented models: the request flag is reserve_for_live, the answer ProductMerchandising (no show ids)', async () => {
    // developers.whatnot.com/api-reference/models: MerchandiseProductRequest {transaction_type,
    // reserve_for_live, shows}, ShowsInput {show_ids, strategy}, ProductMerchandising {transaction_type,
    // reserved_for_live, active_in_shows}. The simulator took `reserved_for_live` (the answer's name) in
    // the request and answered {product_id, …, show_ids}, which Whatnot's answer does not carry.
    const showId = await newShow();
    const auth = { headers: { authorization: `Bearer ${CREDENTIALS.accessToken}` }, validateStatus: () => true };
    const post = (product: string, body: unknown) => axios.post(`${sim.url}/whatnot/merchandising/products/${product}`, body, auth);
    const get = async (product: string) => (await axios.get(`${sim.url}/whatnot/merchandising/products/${product}`, auth)).data as unknown;

    const added = await post('p-one', { shows: { show_ids: [showId], strategy: 'ADD' } });
    expect(added.status).toBe(200);
    expect(added.data).toEqual({ transaction_type: 'buy_it_now', reserved_for_live: false, active_in_shows: true });
    expect(await get('p-one')).toEqual(added.data);

    const reserved = await post('p-one', { reserve_for_live: true });
    expect(reserved.data).toEqual({ transaction_type: 'buy_it_now', reserved_for_live: true, active_in_shows: true });

    // false is refused when the same request makes it an auction, and nothing changes
    const refused = await post('p-two', { transaction_type: 'auction', reserve_for_live: false, shows: { show_ids: [showId], strategy: 'ADD' } });
    expect(refused.status).toBe(422);
    expect(refused.data).toMatchObject({ type: 'validation-error', param: 'reserve_for_live' });
    expect(await get('p-two')).toEqual({ transaction_type: 'buy_it_now', reserved_for_live: false, active_in_shows: false });
    // … and ignored for a product that already is one
    expect((await post('p-two', { transaction_type: 'auction' })).data).toEqual({ transaction_type: 'auction', reserved_for_live: true, active_in_shows: false });
    const ignored = await post('p-two', { reserve_for_live: false });
    expect(ignored.status).toBe(200);
    expect(ignored.data).toEqual({ transaction_type: 'auction', reserved_for_live: true, active_in_shows: false });

    // in a show that is over, the product is in no upcoming or live show
    await control('PUT', `/shows/${showId}/status`, { status: 'ended' });
    expect(await get('p-one')).toEqual({ transaction_type: 'buy_it_now', reserved_for_live: true, active_in_shows: false });
  });

  describe('unconfirmed shapes are parsed defensively', () => {
    let server: Server;
    let url: string;
    let answer: (path: string) => unknown = () => ({});
    beforeAll(async () => {
      server = createServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer((req.url ?? '').split('?')[0] ?? '')));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));
    const raw = (): Harness => adapterHarness((ctx) => buildWhatnotAdapter(ctx), { platform: 'whatnot', baseUrl: url, credentials: CREDENTIALS });
    const order = (extra: Record<string, unknown> = {}, amounts: Record<string, unknown> = {}): Record<string, unknown> => ({
      id: 'ord-1',
      status: 'completed',
      created_at: new Date().toISOString(),
      amounts: { total: { amount: '25.99', currency: 'USD' }, ...amounts },
      ...extra,
    });

    it('unknown fields and nulls in unconfirmed fields are fine', async () => {
      answer = () => ({
        data: [order({ show_id: null, buyer: { id: 'b' }, something_new: [1, 2] }, { refunded: null, fees: { amount: '1.00', currency: 'USD' } })],
        next_cursor: null,
        page_info: { has_next_page: false },
      });
      const orders = await raw().adapter.listOrders!(new Date(Date.now() - 60_000), new Date(Date.now() + 60_000));
      expect(orders).toEqual([expect.objectContaining({ orderId: 'ord-1', externalShowId: undefined, productId: undefined, total: { amount: 2599, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' } })]);
    });

    it('a shape we rely on that is not there is a malformed_response naming the field, never a silently skipped order', async () => {
      // An order's own field that cannot be read (a total of "25,99", a created_at of "yesterday") is that
      // order's invalid_order, the rest compared (whatnot-bambuser.report-odd-orders.test.ts); it failed the
      // whole report. An order without an id, or another envelope, still fails it.
      for (const [body, field] of [
        [{ data: [order({ id: '' })] }, 'data.0.id'],
        [{ data: [order(), 'ord-2'] }, 'data.1'],
        [{ orders: [order()] }, 'data'],
      ] as const) {
        answer = () => body;
        const err = await caught(raw().adapter.listOrders!(new Date(Date.now() - 60_000), new Date(Date.now() + 60_000)));
        expect(err).toBeInstanceOf(PermanentError);
        expect((err as PermanentError).reason).toBe('malformed_response');
        expect((err as PermanentError).message).toContain(`GET /orders: ${field}:`);
      }
    });

    it('the merchandising answer is not relied on: any 2xx body is the platform accepting the lineup change', async () => {
      for (const body of [{}, { product: { id: PIN.platformProductId } }, { data: { show_ids: 'not-a-list' } }]) {
        answer = (path) => (path.startsWith('/shows/') ? { id: '8a3b1f2e-0000-4000-8000-000000000001', title: null, status: 'live' } : body);
        const h = raw();
        const remote = await h.adapter.attachShow('8a3b1f2e-0000-4000-8000-000000000001');
        await expect(h.adapter.pin(remote, PIN, buildOpContext('mk-raw'))).resolves.toEqual({ ref: PIN.platformProductId });
      }
    });
  });

  it('the simulator refuses an order period that is no RFC 3339 date-time with an offset (a day that does not exist, no offset)', async () => {
    const auth = { headers: { authorization: `Bearer ${CREDENTIALS.accessToken}` }, validateStatus: () => true };
    for (const created_at_gte of ['2026-02-30T00:00:00Z', '2026-12-01T10:00', '2026-12-01T10:00:00']) {
      const r = await axios.get(`${sim.url}/whatnot/orders`, { ...auth, params: { created_at_gte } });
      expect([created_at_gte, r.status, (r.data as { param?: string }).param]).toEqual([created_at_gte, 422, 'created_at_gte']);
    }
    const ok = await axios.get(`${sim.url}/whatnot/orders`, { ...auth, params: { created_at_gte: '2026-12-01T10:00:00+02:00', created_at_lt: new Date().toISOString() } });
    expect(ok.status).toBe(200);
  });
});

describe('an app the seller connected through OAuth (access tokens expire)', () => {
  const APP = { ...simWhatnotAppCredentials('a'), webhookSecret: WEBHOOK_SECRET };

  it('the token endpoint takes the grant form-urlencoded only (RFC 6749 §4.1.3, §6): the same grant as JSON is refused', async () => {
    const grant = { grant_type: 'refresh_token', client_id: APP.clientId, client_secret: APP.clientSecret, refresh_token: APP.refreshToken };
    const json = await axios.post(`${sim.url}/whatnot/oauth/token`, grant, { validateStatus: () => true });
    expect([json.status, (json.data as { error?: string }).error]).toEqual([400, 'invalid_request']);
    const form = await axios.post(`${sim.url}/whatnot/oauth/token`, new URLSearchParams(grant).toString(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      validateStatus: () => true,
    });
    expect(form.status).toBe(200);
  });

  it('gets an access token with the refresh token, refreshes it once when Whatnot says it expired, retries the call, and keeps the token for the workers', async () => {
    const h = harness({ credentials: APP });
    const showId = await newShow('App breaks', SELLER_A_ID);
    await expect(h.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
    const [token, read] = await requests();
    expect([token, read].map((r) => r && line(r))).toEqual(['POST /oauth/token 200', `GET /shows/${showId} 200`]);
    // RFC 6749 §6, form-urlencoded, as the OAuth client for Whatnot sends it
    expect(token?.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(Object.fromEntries(new URLSearchParams(token?.body ?? ''))).toEqual({ grant_type: 'refresh_token', client_id: APP.clientId, client_secret: APP.clientSecret, refresh_token: APP.refreshToken });
    const first = h.tokens.token?.accessToken;
    expect(first).toMatch(/^wn_access_tk_/);
    expect(read?.headers.authorization).toBe(`Bearer ${first}`);

    // The token's hour is over (Whatnot answers 401): one refresh, the same call again, once.
    await control('POST', '/tokens/expire', { token: first });
    const seq = await lastSeq();
    await expect(h.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
    expect((await requests(seq)).map(line)).toEqual([`GET /shows/${showId} 401`, 'POST /oauth/token 200', `GET /shows/${showId} 200`]);
    expect(h.tokens.token?.accessToken).not.toBe(first);
    for (const secret of [APP.clientSecret, APP.refreshToken, first ?? 'none', h.tokens.token?.accessToken ?? 'none']) expect(h.logs.join('\n')).not.toContain(secret);
  });

  it("a grant without a scope the call needs (403 required_scopes): the mirror's error names the scope and the credential to renew (the app's grant, or a personal token), sent once", async () => {
    const showId = await newShow('Scoped breaks', SELLER_A_ID);
    // a personal access token granted reads only: the check and the link pass, the first pin is refused
    await control('PUT', '/scopes', { token: CREDENTIALS.accessToken, scopes: ['read:shows', 'read:orders'] });
    const pat = harness();
    await expect(pat.adapter.verifyCredentials!()).resolves.toBeDefined();
    const remote = await pat.adapter.attachShow(showId);
    let seq = await lastSeq();
    const ePat = await caught(pat.adapter.pin(remote, PIN, buildOpContext('mk-scope-pat')));
    expect(ePat).toBeInstanceOf(PermanentError);
    expect(ePat).not.toBeInstanceOf(PinRefusedError); // the token's, not this product's
    expect((ePat as PermanentError).message).toMatch(/the API token lacks the scope write:merchandising, needed to .*generate a new personal access token/);
    // A PATCH's credentials replace the target's whole set: the advice names webhookSecret too (without
    // it, following the advice removed the secret and every order webhook was refused after).
    expect((ePat as PermanentError).message).toContain('{"credentials": {"accessToken": "<new>", "webhookSecret": "…"}}');
    expect((await requests(seq)).map(line)).toEqual([`POST ${MERCH_PATH} 403`]);

    // an app's grant: a fresh access token changes nothing (no refresh, no second try); the fix is the grant
    await control('PUT', '/scopes', { token: APP.refreshToken, scopes: ['read:shows'] });
    const h = harness({ credentials: APP });
    const appRemote = await h.adapter.attachShow(showId);
    seq = await lastSeq();
    const eApp = await caught(h.adapter.pin(appRemote, PIN, buildOpContext('mk-scope-app')));
    expect(eApp).toBeInstanceOf(PermanentError);
    expect((eApp as PermanentError).message).toMatch(/the app's authorisation lacks the scope write:merchandising, .*connect the app again/);
    expect((eApp as PermanentError).message).toContain('{"credentials": {"clientId": "…", "clientSecret": "…", "refreshToken": "<new>", "webhookSecret": "…"}}');
    expect((eApp as PermanentError).message).not.toContain('"accessToken"');
    expect((await requests(seq)).map(line)).toEqual([`POST ${MERCH_PATH} 403`]);
    expect(await effects()).toEqual(expect.not.arrayContaining([expect.objectContaining({ type: 'product.pinned' })]));
  });

  it('a revoked refresh token is authorisation lost (re-connect the app), a wrong client secret too; a 401 even after a refresh is authExpired', async () => {
    const showId = await newShow('App breaks', SELLER_A_ID);
    const wrongSecret = harness({ credentials: { ...APP, clientSecret: 'not-the-secret' } });
    const eClient = await caught(wrongSecret.adapter.attachShow(showId));
    expect(eClient).toBeInstanceOf(PermanentError);
    expect((eClient as PermanentError).reason).toBe('invalid_client');

    await control('POST', '/revocations', { token: APP.refreshToken });
    const h = harness({ credentials: APP });
    const eGrant = await caught(h.adapter.attachShow(showId));
    expect(eGrant).toBeInstanceOf(PermanentError);
    expect((eGrant as PermanentError).reason).toBe('invalid_grant');
    expect((eGrant as PermanentError).message).toMatch(/Whatnot authorisation lost: .*connect the app again/);
    expect((eGrant as PermanentError).message).toContain('PATCH /v1/partners/ptn_test/targets/tgt_test {"credentials": {"clientId": "…", "clientSecret": "…", "refreshToken": "<new>", "webhookSecret": "…"}}');

    // A fresh token refused at once (every call 401): refreshed once, then authExpired, not a loop.
    const other = harness({ credentials: { ...simWhatnotAppCredentials('b'), webhookSecret: WEBHOOK_SECRET } });
    await control('PUT', '/faults', { rate: 1, kinds: ['token_expired'] });
    const seq = await lastSeq();
    const eAuth = await caught(other.adapter.attachShow(showId));
    expect(eAuth).toBeInstanceOf(AuthExpiredError);
    expect((await requests(seq)).map(line)).toEqual(['POST /oauth/token 200', `GET /shows/${showId} 401`, 'POST /oauth/token 200', `GET /shows/${showId} 401`]);
  });

  it('a refresh token Whatnot rotated is kept when a 401 drops the access token: the next refresh uses it (the old one is invalid_grant)', async () => {
    // A 401 cleared the whole cached record, the rotated refresh token with it: the next refresh sent
    // the credentials' (dead) one and the target lost its authorisation.
    await control('PUT', '/limits', { rotateRefreshTokens: 1 });
    const h = harness({ credentials: APP });
    const showId = await newShow('App breaks', SELLER_A_ID);
    await h.adapter.attachShow(showId);
    const rotated = h.tokens.token?.refreshToken;
    expect(rotated).toMatch(/^wn_sim_refresh_/);
    await control('POST', '/tokens/expire', { token: h.tokens.token?.accessToken });
    const seq = await lastSeq();
    await expect(h.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
    const [, refresh] = await requests(seq);
    expect((await requests(seq)).map(line)).toEqual([`GET /shows/${showId} 401`, 'POST /oauth/token 200', `GET /shows/${showId} 200`]);
    expect(new URLSearchParams(refresh?.body ?? '').get('refresh_token')).toBe(rotated);
  });

  it('an access token given with the credentials is used until the first refresh, not again after; concurrent callers share one refresh', async () => {
    // When the cached record went (its TTL was the access token's), the long-dead given token was
    // tried again: one 401 and a refresh per process per hour.
    const showId = await newShow('App breaks', SELLER_A_ID);
    const earlier = harness({ credentials: APP });
    await earlier.adapter.attachShow(showId);
    const dead = earlier.tokens.token?.accessToken;
    await control('POST', '/tokens/expire', { token: dead });
    const h = harness({ credentials: { ...APP, accessToken: dead ?? '' } });
    let seq = await lastSeq();
    await h.adapter.attachShow(showId);
    expect((await requests(seq)).map(line)).toEqual([`GET /shows/${showId} 401`, 'POST /oauth/token 200', `GET /shows/${showId} 200`]);
    h.tokens.token = null; // the cached record is gone (expired, or another process cleared it)
    seq = await lastSeq();
    await Promise.all([h.adapter.attachShow(showId), h.adapter.attachShow(showId), h.adapter.attachShow(showId)]);
    expect((await requests(seq)).map(line).sort()).toEqual(['POST /oauth/token 200', ...Array(3).fill(`GET /shows/${showId} 200`)].sort());
  });

  it('the simulator expires app tokens after tokenTtlSec; a personal access token does not expire', async () => {
    await control('PUT', '/limits', { tokenTtlSec: 1 });
    const h = harness({ credentials: APP });
    const pat = harness();
    const showId = await newShow('App breaks', SELLER_A_ID);
    await h.adapter.attachShow(showId);
    const token = h.tokens.token?.accessToken ?? '';
    await new Promise((r) => setTimeout(r, 1_100));
    const direct = await axios.get(`${sim.url}/whatnot/shows/${showId}`, { headers: { authorization: `Bearer ${token}` }, validateStatus: () => true });
    expect(direct.status).toBe(401);
    expect(direct.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(direct.data).toMatchObject({ type: 'unauthorized', status: 401 });
    await expect(pat.adapter.attachShow(showId)).resolves.toMatchObject({ externalId: showId });
  });
});

describe('long product ids', () => {
  it('a product id of 101-128 characters (a contract id, sent when the product has no sku) is added to the lineup: the simulator answered 414 over 100, and the mirror failed', async () => {
    const h = harness();
    const remote = await h.adapter.attachShow(await newShow('Long ids'));
    const pin = { ...PIN, platformProductId: 'x'.repeat(128) };
    expect((await h.adapter.pin(remote, pin, buildOpContext('mk-long'))).ref).toBe(pin.platformProductId);
    expect((await effects()).filter((e) => e.type === 'product.pinned').map((e) => e.productId)).toEqual([pin.platformProductId]);
  });
});

describe('product ids Whatnot cannot take', () => {
  it("a product id (a partner's sku) with a space, '/', '?', '#', '%' or an emoji is sent percent-encoded in the path, and Whatnot's 422 (product_id) is a PinRefusedError; '', '.' and '..' are refused before anything is sent", async () => {
    const h = harness();
    const remote = await h.adapter.attachShow(await newShow('Refused ids'));
    for (const [i, id] of ['LIP OIL 01', 'a/b', '?x=1', '#h', '%2F', '\u{1F389}'].entries()) {
      const since = await lastSeq();
      const err = await caught(h.adapter.pin(remote, { ...PIN, platformProductId: id }, buildOpContext(`refused-${i}`)));
      expect(err).toBeInstanceOf(PinRefusedError);
      expect((await requests(since)).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`)).toEqual([`POST /merchandising/products/${encodeURIComponent(id)} 422`]);
    }
    for (const id of ['', '.', '..']) {
      const since = await lastSeq();
      const err = await caught(h.adapter.pin(remote, { ...PIN, platformProductId: id }, buildOpContext(`dot-${id.length}`)));
      expect(err).toBeInstanceOf(PinRefusedError);
      expect((err as PinRefusedError).reason).toBe('product_id_unsendable');
      expect(await requests(since)).toEqual([]);
    }
    const tried = ['LIP OIL 01', 'a/b', '?x=1', '#h', '%2F', '\u{1F389}', '', '.', '..'];
    expect((await effects()).filter((e) => e.type === 'product.pinned' && tried.includes(String(e.productId)))).toEqual([]);
  });
});

describe('a product id that is none of the seller\'s listings', () => {
  it("Whatnot's 404 for the product (a partner's sku that is no Whatnot product id) fails that pin only (PinRefusedError), after one read of the show; the show takes the next pin", async () => {
    const h = harness();
    const showId = await newShow('Unknown product');
    const remote = await h.adapter.attachShow(showId);
    await control('PUT', '/products', { account: SELLER_A_ID, productIds: [PIN.platformProductId] });
    const since = await lastSeq();
    const err = await caught(h.adapter.pin(remote, { ...PIN, productId: 'p-linen', platformProductId: 'LINEN-SHIRT-M' }, buildOpContext('unknown-product')));
    expect(err).toBeInstanceOf(PinRefusedError);
    expect((err as PinRefusedError).reason).toBe('not-found');
    expect((err as PinRefusedError).message).toMatch(/^Whatnot has no product LINEN-SHIRT-M among the seller's listings/);
    expect((await requests(since)).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`)).toEqual(['POST /merchandising/products/LINEN-SHIRT-M 404', `GET /shows/${showId} 200`]);
    // A listing of the seller's is added; a show that is gone is still the show's error, not the pin's.
    expect((await h.adapter.pin(remote, PIN, buildOpContext('known-product'))).ref).toBe(PIN.platformProductId);
    expect((await effects()).filter((e) => e.type === 'product.pinned').map((e) => e.productId)).toEqual([PIN.platformProductId]);
    const gone = await caught(h.adapter.pin({ ...remote, externalId: '00000000-0000-4000-8000-000000000000' }, PIN, buildOpContext('gone-show')));
    expect(gone).not.toBeInstanceOf(PinRefusedError);
    expect(gone).toBeInstanceOf(PermanentError);
  });

  it("the show read after the 404 says why (the product is not among the seller's listings, or the show is gone), not the 409's 'would not change its lineup'", async () => {
    const h = harness();
    const gone = await caught(h.adapter.pin({ externalId: '00000000-0000-4000-8000-000000000000', url: undefined, ingest: undefined, data: {} }, PIN, buildOpContext('gone-show-why')));
    expect(gone).toBeInstanceOf(PermanentError);
    expect((gone as PermanentError).message).toContain(`Whatnot answered 404 for product ${PIN.platformProductId}: it is not among the seller's listings, or the show is gone`);
    expect((gone as PermanentError).message).not.toContain('would not change its lineup');
  });

  it('a bare 404 on the lineup (no problem body: a gateway, a wrong base URL) is the mirror\'s error, ADD and REMOVE alike: no show read, no pin refused one by one', async () => {
    const showId = '0b6f3c1e-8a52-4d2e-9f7a-3c5d1e2f4a6b';
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
      if (req.method === 'GET') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ id: showId, title: 'Behind a gateway', status: 'live' }));
        return;
      }
      res.statusCode = 404;
      res.setHeader('content-type', 'text/html');
      res.end('<html><body>404 Not Found</body></html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const h = adapterHarness((ctx) => buildWhatnotAdapter(ctx), { platform: 'whatnot', baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, credentials: CREDENTIALS });
      const remote = { externalId: showId, url: undefined, ingest: undefined, data: {} };
      for (const err of [await caught(h.adapter.pin(remote, PIN, buildOpContext('bare-add'))), await caught(h.adapter.unpin!(remote, PIN, PIN.platformProductId, buildOpContext('bare-remove')))]) {
        expect(err).toBeInstanceOf(PermanentError);
        expect(err).not.toBeInstanceOf(PinRefusedError);
        expect((err as PermanentError).reason).toBe('http_404');
      }
      expect(seen).toEqual([`POST ${MERCH_PATH}`, `POST ${MERCH_PATH}`]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('the seller behind the credentials (reconciliation\'s account)', () => {
  it('the credential check and accountId() name the seller (GET /users/me): its personal token and an app\'s grant of it name the same one, another seller another', async () => {
    await expect(harness().adapter.verifyCredentials!()).resolves.toEqual({ accountId: SELLER_A_ID });
    await expect(harness({ credentials: simWhatnotAppCredentials('a') }).adapter.accountId!()).resolves.toBe(SELLER_A_ID);
    await expect(harness({ credentials: simWhatnotAppCredentials('b') }).adapter.accountId!()).resolves.toBe(SIM_ACCOUNTS.whatnot[1]!.sellerId);
  });
});

describe('a show the seller ended in the Whatnot app', () => {
  it.each(['ended', 'cancelled'] as const)("a pin on a show %s on Whatnot (409 show-not-editable) is a ShowOverError saying so, after one read of the show; its lineup is unchanged", async (status) => {
    const h = harness();
    const showId = await newShow(`Over: ${status}`);
    const remote = await h.adapter.attachShow(showId);
    await control('PUT', `/shows/${showId}/status`, { status: 'live' });
    await h.adapter.pin(remote, PIN, buildOpContext('before-end'));
    await control('PUT', `/shows/${showId}/status`, { status }); // the seller, in the app
    const since = await lastSeq();
    const err = await caught(h.adapter.pin(remote, { ...PIN, platformProductId: 'sku-after-end' }, buildOpContext('after-end')));
    expect(err).toBeInstanceOf(ShowOverError);
    expect(err).not.toBeInstanceOf(PinRefusedError);
    expect((err as ShowOverError).over).toBe(status);
    expect((err as ShowOverError).reason).toBe('show-not-editable');
    expect((err as ShowOverError).message).toBe(`the Whatnot show ${showId} ("Over: ${status}") was ${status} on Whatnot (by its seller, in the app), and Whatnot no longer changes its lineup`);
    expect((await requests(since)).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`)).toEqual([`POST /merchandising/products/sku-after-end 409`, `GET /shows/${showId} 200`]);
    expect((await effects()).filter((e) => e.type === 'product.pinned').map((e) => e.productId)).toEqual([PIN.platformProductId]);
  });
});

describe('the take-back of a product Whatnot does not (or no longer) know', () => {
  /** A show of seller a's, whose listings are PIN's product alone, and a pin of a product that is none of them. */
  async function showWithListings(title: string): Promise<{ h: Harness; showId: string; remote: RemoteShow; unknown: PinSpec }> {
    const h = harness();
    const showId = await newShow(title);
    const remote = await h.adapter.attachShow(showId);
    await control('PUT', '/products', { account: SELLER_A_ID, productIds: [PIN.platformProductId] });
    return { h, showId, remote, unknown: { ...PIN, productId: 'p-linen', platformProductId: 'LINEN-SHIRT-M' } };
  }

  it('unpinning a product that is none of the seller\'s listings takes nothing back and does not fail the mirror (PermanentError fails it: no more pins, no show end)', async () => {
    const { h, remote, unknown } = await showWithListings('Unknown product take-back');
    // (a) sync.service takeBack() of a `pending` + `tried` pin (ADD timed out, or its show read after the 404 was throttled / the run died): no ref.
    await expect(h.adapter.unpin!(remote, unknown, undefined, buildOpContext('unknown-takeback'))).resolves.toBeUndefined();
    // (b) a pinned listing the seller deleted in the app since; the partner unpins it.
    const { ref } = await h.adapter.pin(remote, PIN, buildOpContext('known'));
    await control('PUT', '/products', { account: SELLER_A_ID, productIds: [] });
    await expect(h.adapter.unpin!(remote, PIN, ref, buildOpContext('deleted-listing'))).resolves.toBeUndefined();
  });

  it('after the same 404 the show is read: over on Whatnot, the take-back is a ShowOverError (the mirror is over); a show gone is still the mirror\'s error', async () => {
    const { h, showId, remote, unknown } = await showWithListings('Unknown product take-back, show over');
    const gone = await caught(h.adapter.unpin!({ ...remote, externalId: '00000000-0000-4000-8000-000000000000' }, unknown, undefined, buildOpContext('gone-show-takeback')));
    expect(gone).toBeInstanceOf(PermanentError);
    expect(gone).not.toBeInstanceOf(ShowOverError);
    await control('PUT', `/shows/${showId}/status`, { status: 'live' });
    await control('PUT', `/shows/${showId}/status`, { status: 'ended' });
    const since = await lastSeq();
    const over = await caught(h.adapter.unpin!(remote, unknown, undefined, buildOpContext('over-takeback')));
    expect(over).toBeInstanceOf(ShowOverError);
    expect((over as ShowOverError).over).toBe('ended');
    expect((await requests(since)).map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`)).toEqual(['POST /merchandising/products/LINEN-SHIRT-M 404', `GET /shows/${showId} 200`]);
  });
});
