/**
 * Whatnot Seller API v2 simulator, mounted under `/whatnot` (a target's baseUrl
 * `http://127.0.0.1:{port}/whatnot` stands for `https://api.whatnot.com/seller-api/rest/v2`).
 *
 * What it models, after developers.whatnot.com:
 * - Bearer seller tokens: a token works for its own seller only (src/simulators/sim.accounts.ts: the
 *   seeded sellers, more from `POST /_sim/whatnot/accounts`); an unknown one → 401. A show belongs
 *   to the seller who made it (`POST /_sim/whatnot/shows {title, account?}`, account = seller id):
 *   another seller's show, its orders and lineup answer 404 as if they did not exist; product lineups
 *   are per seller (a product id is one of the calling seller's listings);
 * - 10 requests/s per seller per app: `RateLimit-Limit: 10, 10;w=1`, `RateLimit-Remaining`,
 *   `RateLimit-Reset` (seconds) on every response, 429 with `Retry-After` and problem+json
 *   `{"type": "rate-limited"}` when the window is full;
 * - RFC 9457 problem+json errors `{type, title, status, detail}` (+ `param`, `required_scopes`);
 * - shows are read-only (`GET /shows`, `GET /shows/{id}`); a seller creates them in the app, here
 *   `POST /_sim/whatnot/shows`, and runs them there: `PUT /_sim/whatnot/shows/{id}/status {status}`
 *   moves one through scheduled → live → stopped (stream stopped, show not over) → ended, or
 *   cancelled; the lineup of an ended or cancelled show no longer changes;
 * - merchandising: `POST /merchandising/products/{product_id}` with `shows: {show_ids, strategy:
 *   ADD|REMOVE|REPLACE}` changes a product's show lineup (→ effects `product.pinned` /
 *   `product.unpinned` on the show), `GET` reads it back; the product catalogue itself is not
 *   simulated: every product id is taken to be one of the seller's listings;
 * - orders (`GET /orders`, `GET /orders/{id}`, cursor pagination) and Standard Webhooks
 *   `orders.created` / `orders.updated` signed with the secret set by `PUT /_sim/whatnot/webhook`.
 *   Order statuses are Whatnot's: pending / pending_fulfillment / completed / cancelled / failed. A
 *   created order is `pending_fulfillment` (paid), a fully refunded one `cancelled`;
 *   `PUT /_sim/whatnot/orders/{id}/status {status}` sets any of them (payment pending or failed,
 *   shipped…) and sends `orders.updated`. The `GET /orders` parameters and envelope are our model
 *   (not in any public source we could read), like the merchandising answer.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { currencyExponent, type Money } from '../domain/money.js';
import { SIM_ACCOUNTS, seededAccounts, type WhatnotSimAccount } from './sim.accounts.js';
import { SimPlatform, SimProblem, installSimApiHooks, randomId, type PlatformSimulator, type SimOrder, type SimReply } from './sim.platform.js';

export const WHATNOT_SIM_SELLER_ID = SIM_ACCOUNTS.whatnot[0]!.sellerId;
/** Used when PUT /_sim/whatnot/webhook gave no secret (Standard Webhooks always signs). */
export const WHATNOT_SIM_DEFAULT_WEBHOOK_SECRET = `whsec_${Buffer.from('syndicast-whatnot-simulator-key!').toString('base64')}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PRODUCT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_SHOW_IDS = 25;

const SHOW_STATUSES = ['scheduled', 'live', 'stopped', 'ended', 'cancelled'] as const;
type ShowStatus = (typeof SHOW_STATUSES)[number];
const ORDER_STATUSES = ['pending', 'pending_fulfillment', 'completed', 'cancelled', 'failed'] as const;
type OrderStatus = (typeof ORDER_STATUSES)[number];
const ShowStatusBody = z.object({ status: z.enum(SHOW_STATUSES) });
const OrderStatusBody = z.object({ status: z.enum(ORDER_STATUSES) });
interface WnShow {
  id: string;
  title: string;
  description: string | null;
  status: ShowStatus;
  scheduled_start_at: string;
  created_at: string;
  updated_at: string;
  visibility: 'public';
}
interface WnMerch {
  transaction_type: 'buy_it_now' | 'auction';
  reserved_for_live: boolean;
  shows: Set<string>;
}

// ---------------------------------------------------------------------------------------------
// problem+json
// ---------------------------------------------------------------------------------------------

function problem(status: number, type: string, title: string, detail: string, extra: Record<string, unknown> = {}): SimReply {
  return { status, headers: { 'content-type': 'application/problem+json' }, body: { type, title, status, detail, ...extra } };
}

class WnError extends Error {
  readonly reply: SimReply;
  constructor(status: number, type: string, title: string, detail: string, extra: Record<string, unknown> = {}) {
    super(detail);
    this.reply = problem(status, type, title, detail, extra);
  }
}

const invalid = (param: string, detail: string): WnError => new WnError(422, 'validation-error', 'Validation error', detail, { param });
const notFound = (what: string): WnError => new WnError(404, 'not-found', 'Not found', `${what} not found`);

function send(reply: FastifyReply, r: SimReply): FastifyReply {
  reply.code(r.status);
  if (r.headers) void reply.headers(r.headers);
  return reply.send(r.body);
}

function decimal(m: Money): { amount: string; currency: string } {
  const e = currencyExponent(m.currency);
  const s = String(Math.abs(m.amount)).padStart(e + 1, '0');
  const v = e === 0 ? s : `${s.slice(0, s.length - e)}.${s.slice(s.length - e)}`;
  return { amount: m.amount < 0 ? `-${v}` : v, currency: m.currency };
}

function qp(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

function limitParam(req: FastifyRequest): number {
  const raw = qp(req, 'limit');
  if (raw === undefined) return 25;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw invalid('limit', 'limit must be an integer from 1 to 100');
  return n;
}

function encodeCursor(offset: number): string {
  return Buffer.from(`wn:${offset}`).toString('base64url');
}
function decodeCursor(req: FastifyRequest): number {
  const c = qp(req, 'cursor');
  if (c === undefined || c === '') return 0;
  const m = /^wn:(\d+)$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m?.[1]) throw invalid('cursor', 'cursor is not one this API returned');
  return Number(m[1]);
}

function timeParam(req: FastifyRequest, name: string): number | undefined {
  const raw = qp(req, name);
  if (raw === undefined) return undefined;
  const t = Date.parse(raw);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(raw) || Number.isNaN(t)) throw invalid(name, `${name} must be an ISO 8601 date-time`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export function createWhatnotSimulator(): PlatformSimulator {
  const sim = new SimPlatform('whatnot', { limits: { requestsPerWindow: 10, windowMs: 1000 } });
  const shows = new Map<string, WnShow>();
  const merch = new Map<string, WnMerch>();
  /** Statuses set by hand (PUT /_sim/whatnot/orders/{id}/status); otherwise derived from payment/refunds. */
  const orderStatus = new Map<string, OrderStatus>();
  /** The sellers and their tokens; which seller made each show. */
  let sellers: WhatnotSimAccount[] = seededAccounts('whatnot');
  const showSeller = new Map<string, string>();
  const sellerOf = new WeakMap<IncomingMessage, string>();
  const merchKey = (seller: string, productId: string): string => `${seller}\u0000${productId}`;
  sim.onReset(() => {
    shows.clear();
    merch.clear();
    orderStatus.clear();
    sellers = seededAccounts('whatnot');
    showSeller.clear();
  });

  function renderShow(s: WnShow): WnShow {
    return { ...s };
  }

  function renderMerch(productId: string, m: WnMerch | undefined): Record<string, unknown> {
    return {
      product_id: productId,
      transaction_type: m?.transaction_type ?? 'buy_it_now',
      reserved_for_live: m?.reserved_for_live ?? false,
      show_ids: m ? [...m.shows] : [],
    };
  }

  function renderOrder(o: SimOrder): Record<string, unknown> {
    const refunded = o.refunds.reduce((s, r) => s + r.amount.amount, 0);
    const zero = { amount: 0, currency: o.total.currency };
    const last = o.refunds.at(-1)?.createdAt;
    return {
      id: o.orderId,
      show_id: o.externalId,
      status: orderStatus.get(o.orderId) ?? (o.status === 'refunded' ? 'cancelled' : 'pending_fulfillment'),
      transaction_type: 'buy_it_now',
      created_at: o.createdAt,
      updated_at: last ?? o.createdAt,
      cancelled_at: o.status === 'refunded' ? (last ?? null) : null,
      buyer: null,
      amounts: {
        subtotal: decimal(o.total),
        shipping: decimal(zero),
        tax: decimal(zero),
        total: decimal(o.total),
        refunded: decimal({ amount: refunded, currency: o.total.currency }),
      },
      line_items: [{ product_id: o.productId, quantity: 1, price: decimal(o.total) }],
    };
  }

  /** Standard Webhooks: `v1,<base64 HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")>`. */
  async function sendWebhook(type: string, data: unknown): Promise<void> {
    const dest = sim.webhook;
    if (!dest) return;
    const secret = dest.secret ?? WHATNOT_SIM_DEFAULT_WEBHOOK_SECRET;
    const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
    const id = randomUUID();
    const ts = Math.floor(Date.now() / 1000);
    const showId = (data as { show_id?: string }).show_id ?? '';
    const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data, version: 'v2', seller_id: showSeller.get(showId) ?? WHATNOT_SIM_SELLER_ID });
    const signature = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    await sim.sendWebhook(body, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` });
  }

  async function plugin(app: FastifyInstance): Promise<void> {
    installSimApiHooks(app, sim, {
      faultReply: (kind) => {
        if (kind === '500') return problem(500, 'internal-error', 'Internal server error', 'Something went wrong on our side; retry later');
        if (kind === 'token_expired') return problem(401, 'unauthorized', 'Unauthorized', 'The access token has expired or was revoked');
        return { ...problem(429, 'rate-limited', 'Too many requests', 'Rate limit exceeded: 10 requests per second per seller'), headers: { 'content-type': 'application/problem+json', 'retry-after': '1' } };
      },
      rateLimitReply: (w) => ({
        ...problem(429, 'rate-limited', 'Too many requests', `Rate limit exceeded: ${w.limit} requests per ${w.windowMs / 1000} s per seller`),
        headers: { 'content-type': 'application/problem+json', 'retry-after': String(Math.max(1, Math.ceil(w.resetMs / 1000))) },
      }),
    });

    // RateLimit-* on every response, the state after this request (draft-ietf-httpapi-ratelimit-headers).
    app.addHook('onSend', async (_req, reply, payload) => {
      const limit = sim.limits.requestsPerWindow;
      if (limit !== null) {
        const w = sim.windowState();
        const windowS = Math.max(1, Math.round(w.windowMs / 1000));
        void reply.header('ratelimit-limit', `${limit}, ${limit};w=${windowS}`);
        void reply.header('ratelimit-remaining', String(w.remaining));
        void reply.header('ratelimit-reset', String(Math.ceil(w.resetMs / 1000)));
      }
      return payload;
    });

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      if (err instanceof WnError) return send(reply, err.reply);
      if ((err.statusCode ?? 500) < 500) {
        const detail = err.code === 'SIM_BODY_PARSE_ERROR' ? 'The request body is not valid JSON' : err.message;
        return send(reply, problem(400, 'bad-request', 'Bad request', detail));
      }
      return send(reply, problem(500, 'internal-error', 'Internal server error', 'Something went wrong on our side; retry later'));
    });
    app.setNotFoundHandler((req, reply) => send(reply, problem(404, 'not-found', 'Not found', `No route ${req.method} ${(req.raw.url ?? '').split('?')[0] ?? ''}`)));

    app.addHook('preHandler', async (req) => {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m?.[1]) throw new WnError(401, 'unauthorized', 'Unauthorized', 'Missing or malformed Authorization: Bearer <token> header');
      const seller = sellers.find((a) => a.accessToken === m[1]);
      if (!seller) throw new WnError(401, 'unauthorized', 'Unauthorized', 'The access token is invalid, expired or was revoked');
      sellerOf.set(req.raw, seller.sellerId);
      // Whatnot has no daily quota; this only bites when a test sets one through PUT /_sim/whatnot/limits.
      if (!sim.tryConsumeQuota(1)) throw new WnError(429, 'quota-exceeded', 'Too many requests', 'The daily request quota set on the simulator is used up');
    });

    const me = (req: FastifyRequest): string => sellerOf.get(req.raw) ?? '';
    /** The calling seller's show; another seller's is as unknown as one that does not exist. */
    const getShow = (req: FastifyRequest, id: string): WnShow => {
      if (!UUID.test(id)) throw invalid('show_id', 'show_id must be a UUID');
      const s = shows.get(id);
      if (!s || showSeller.get(id) !== me(req)) throw notFound(`Show ${id}`);
      return s;
    };
    const myOrders = (req: FastifyRequest): SimOrder[] => [...sim.orders.values()].filter((o) => showSeller.get(o.externalId) === me(req));

    app.get('/shows', async (req) => {
      const status = qp(req, 'status');
      const limit = limitParam(req);
      const offset = decodeCursor(req);
      const all = [...shows.values()].filter((s) => showSeller.get(s.id) === me(req) && (!status || s.status === status));
      const next = offset + limit < all.length ? encodeCursor(offset + limit) : null;
      return { data: all.slice(offset, offset + limit).map(renderShow), next_cursor: next };
    });

    app.get('/shows/:show_id', async (req) => renderShow(getShow(req, (req.params as { show_id: string }).show_id)));

    app.get('/merchandising/products/:product_id', async (req) => {
      const { product_id: productId } = req.params as { product_id: string };
      if (!PRODUCT_ID.test(productId)) throw invalid('product_id', 'invalid product_id');
      return renderMerch(productId, merch.get(merchKey(me(req), productId)));
    });

    app.get('/merchandising/products/:product_id/shows', async (req) => {
      const { product_id: productId } = req.params as { product_id: string };
      const ids = [...(merch.get(merchKey(me(req), productId))?.shows ?? [])];
      return { data: ids.map((id) => shows.get(id)).filter((s): s is WnShow => s !== undefined).map(renderShow), next_cursor: null };
    });

    app.post('/merchandising/products/:product_id', async (req) => {
      const { product_id: productId } = req.params as { product_id: string };
      if (!PRODUCT_ID.test(productId)) throw invalid('product_id', 'invalid product_id');
      if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) throw invalid('body', 'the body must be a JSON object');
      const body = req.body as Record<string, unknown>;
      const current = merch.get(merchKey(me(req), productId)) ?? { transaction_type: 'buy_it_now' as const, reserved_for_live: false, shows: new Set<string>() };
      const next: WnMerch = { ...current, shows: new Set(current.shows) };

      if (body.transaction_type !== undefined && body.transaction_type !== null) {
        if (body.transaction_type !== 'buy_it_now' && body.transaction_type !== 'auction') throw invalid('transaction_type', 'transaction_type must be buy_it_now or auction');
        next.transaction_type = body.transaction_type;
        if (next.transaction_type === 'auction') next.reserved_for_live = true;
      }
      if (body.reserved_for_live !== undefined && body.reserved_for_live !== null) {
        if (typeof body.reserved_for_live !== 'boolean') throw invalid('reserved_for_live', 'reserved_for_live must be a boolean');
        if (!body.reserved_for_live && next.transaction_type === 'auction') throw invalid('reserved_for_live', 'auctions are always reserved for live');
        next.reserved_for_live = body.reserved_for_live;
      }
      let added: string[] = [];
      let removed: string[] = [];
      if (body.shows !== undefined && body.shows !== null) {
        const s = body.shows as Record<string, unknown>;
        const ids = s.show_ids;
        const strategy = s.strategy;
        if (strategy !== 'ADD' && strategy !== 'REMOVE' && strategy !== 'REPLACE') throw invalid('shows.strategy', 'strategy must be ADD, REMOVE or REPLACE');
        if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string')) throw invalid('shows.show_ids', 'show_ids must be an array of show IDs');
        if (ids.length > MAX_SHOW_IDS) throw invalid('shows.show_ids', `at most ${MAX_SHOW_IDS} show IDs per call`);
        if (ids.length === 0 && strategy !== 'REPLACE') throw invalid('shows.show_ids', 'show_ids must not be empty');
        const wanted = (ids as string[]).map((id) => getShow(req, id));
        if (strategy !== 'REMOVE') {
          const closed = wanted.find((w) => w.status === 'ended' || w.status === 'cancelled');
          if (closed) throw new WnError(409, 'show-not-editable', 'Show not editable', `Show ${closed.id} has ${closed.status}; its lineup can no longer change`);
        }
        const target = new Set(strategy === 'REPLACE' ? wanted.map((w) => w.id) : next.shows);
        if (strategy === 'ADD') for (const w of wanted) target.add(w.id);
        if (strategy === 'REMOVE') for (const w of wanted) target.delete(w.id);
        added = [...target].filter((id) => !next.shows.has(id));
        removed = [...next.shows].filter((id) => !target.has(id));
        next.shows = target;
      }
      merch.set(merchKey(me(req), productId), next);
      for (const id of added) sim.recordEffect({ type: 'product.pinned', externalId: id, productId });
      for (const id of removed) sim.recordEffect({ type: 'product.unpinned', externalId: id, productId });
      return renderMerch(productId, next);
    });

    app.get('/orders', async (req) => {
      const limit = limitParam(req);
      const offset = decodeCursor(req);
      const gte = timeParam(req, 'created_at_gte') ?? Number.NEGATIVE_INFINITY;
      const lt = timeParam(req, 'created_at_lt') ?? Number.POSITIVE_INFINITY;
      const all = myOrders(req)
        .filter((o) => Date.parse(o.createdAt) >= gte && Date.parse(o.createdAt) < lt)
        .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.orderId.localeCompare(b.orderId, 'en', { numeric: true }));
      const next = offset + limit < all.length ? encodeCursor(offset + limit) : null;
      return { data: all.slice(offset, offset + limit).map(renderOrder), next_cursor: next };
    });

    app.get('/orders/:order_id', async (req) => {
      const { order_id: orderId } = req.params as { order_id: string };
      const o = sim.orders.get(orderId);
      if (!o || showSeller.get(o.externalId) !== me(req)) throw notFound(`Order ${orderId}`);
      return renderOrder(o);
    });
  }

  /** What the seller and buyers do in the Whatnot app: run a show, pay (or fail to pay) an order. */
  async function control(app: FastifyInstance): Promise<void> {
    // A new seller account and its API token (what a seller gets when it connects an app).
    app.post('/accounts', async (_req, reply) => {
      const account: WhatnotSimAccount = { sellerId: `sim-seller-${randomId(8)}`, accessToken: `wn_sim_${randomId(32)}` };
      sellers.push(account);
      return reply.code(201).send({ ...account, credentials: { accessToken: account.accessToken } });
    });
    app.put('/shows/:showId/status', async (req) => {
      const s = shows.get((req.params as { showId: string }).showId);
      if (!s) throw new SimProblem(404, 'Show not found');
      const b = ShowStatusBody.safeParse(req.body);
      if (!b.success) throw new SimProblem(400, 'Invalid request body', `status must be one of ${SHOW_STATUSES.join(', ')}`);
      if (s.status !== b.data.status) {
        s.status = b.data.status;
        s.updated_at = new Date().toISOString();
        const st = b.data.status;
        const effect = st === 'live' ? 'show.started' : st === 'ended' ? 'show.ended' : st === 'cancelled' ? 'show.cancelled' : undefined; // stopped: no viewer-facing change yet
        if (effect) sim.recordEffect({ type: effect, externalId: s.id, title: s.title });
      }
      return renderShow(s);
    });
    app.put('/orders/:orderId/status', async (req) => {
      const o = sim.orders.get((req.params as { orderId: string }).orderId);
      if (!o) throw new SimProblem(404, 'Order not found');
      const b = OrderStatusBody.safeParse(req.body);
      if (!b.success) throw new SimProblem(400, 'Invalid request body', `status must be one of ${ORDER_STATUSES.join(', ')}`);
      orderStatus.set(o.orderId, b.data.status);
      await sendWebhook('orders.updated', renderOrder(o));
      return renderOrder(o);
    });
  }

  return {
    platform: 'whatnot',
    sim,
    plugin,
    control,
    createShowByHand(title: string, account?: string): string {
      const seller = account ?? sellers[0]!.sellerId;
      if (!sellers.some((a) => a.sellerId === seller)) throw new SimProblem(404, 'Unknown account', `no Whatnot seller ${seller}`);
      const now = new Date().toISOString();
      const s: WnShow = {
        id: randomUUID(),
        title,
        description: null,
        status: 'scheduled',
        scheduled_start_at: new Date(Date.now() + 3600_000).toISOString(),
        created_at: now,
        updated_at: now,
        visibility: 'public',
      };
      shows.set(s.id, s);
      showSeller.set(s.id, seller);
      sim.recordEffect({ type: 'show.created', externalId: s.id, title });
      return s.id;
    },
    showExists: (externalId) => shows.has(externalId),
    async onOrderCreated(order) {
      await sendWebhook('orders.created', renderOrder(order));
    },
    async onOrderRefunded(order) {
      await sendWebhook('orders.updated', renderOrder(order));
    },
  };
}

