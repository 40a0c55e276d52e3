/**
 * Whatnot Seller API v2 simulator, mounted under `/whatnot` (a target's baseUrl
 * `http://127.0.0.1:{port}/whatnot` stands for `https://api.whatnot.com/seller-api/rest/v2`).
 *
 * What it models, after developers.whatnot.com:
 * - Bearer seller tokens: a token works for its own seller only (src/simulators/sim.accounts.ts: the
 *   seeded sellers, more from `POST /_sim/whatnot/accounts`); a token never seen is a new seller's
 *   (CONTRACT §9: any non-empty credentials). A show belongs to the seller who made it (`POST
 *   /_sim/whatnot/shows {title, account?}`, account = seller id or the seller's token; without one,
 *   the first seller that reaches the show by id):
 *   another seller's show, its orders and lineup answer 404 as if they did not exist; product lineups
 *   are per seller (a product id is one of the calling seller's listings);
 * - apps a seller connected through OAuth (developers.whatnot.com, getting-started/authentication;
 *   token URL as the PHP League provider for Whatnot has it): `POST /oauth/token` (form-urlencoded,
 *   grant_type=refresh_token, client_id, client_secret, refresh_token; `…/seller-api/rest/oauth/token`
 *   on Whatnot) answers `{access_token: "wn_access_tk_…", token_type, expires_in, refresh_token}`. Such
 *   access tokens expire after `tokenTtlSec` (3600 s: our assumption — the docs we could read give the
 *   refresh token's lifetime, a year, not the access token's; set it with PUT /_sim/whatnot/limits),
 *   and then answer 401 problem+json; `POST /_sim/whatnot/tokens/expire {token?}` expires one (or
 *   every) issued access token now. The refresh token is not rotated (the docs say to store it for
 *   later refreshes) unless `PUT /_sim/whatnot/limits {rotateRefreshTokens: 1}`: then each refresh
 *   answers a new one and the one used is `invalid_grant` from then on. A known client id with another secret → 401 `invalid_client`; a revoked refresh
 *   token or one of another app → 400 `invalid_grant` (RFC 6749 §5.2 bodies: Whatnot's are not
 *   documented); a client id never seen is an app registered with the secret given, a refresh token
 *   never seen a new seller's authorisation (CONTRACT §9). A seller's personal access token never expires;
 * - 10 requests/s per seller per app (one window per seller and app: each app's access tokens share
 *   it, the seller's personal access tokens another): `RateLimit-Limit: 10, 10;w=1`, `RateLimit-Remaining`,
 *   `RateLimit-Reset` (seconds) on every response, of the caller's window, 429 with `Retry-After` and
 *   problem+json `{"type": "rate-limited"}` when it is full;
 * - RFC 9457 problem+json errors `{type, title, status, detail}` (+ `param`, `required_scopes`);
 * - scopes: a token's grant (a personal access token, or an app's refresh token and the access tokens
 *   issued from it) has every scope unless `PUT /_sim/whatnot/scopes {token, scopes}` names fewer; a
 *   call needing another answers 403 problem+json `{type: "forbidden", …, required_scopes: [scope]}`.
 *   The scope of each call (ROUTE_SCOPES) is our model: the names are not in any source we read;
 * - `GET /users/me` → `{id}`: the seller the token acts for (the Seller API's Users section "look up
 *   the seller behind the current token"; path and body are our model): every credential of one seller
 *   (its personal token, each app grant's access token) answers the same id;
 * - shows are read-only (`GET /shows`, `GET /shows/{id}`); a seller creates them in the app, here
 *   `POST /_sim/whatnot/shows`, and runs them there: `PUT /_sim/whatnot/shows/{id}/status {status}`
 *   moves one through scheduled → live → stopped (stream stopped, show not over) → ended, or
 *   cancelled; the lineup of an ended or cancelled show no longer changes;
 * - merchandising (API reference models MerchandiseProductRequest, ShowsInput, ProductMerchandising):
 *   `POST /merchandising/products/{product_id}` with `shows: {show_ids (≤ 25 show UUIDs), strategy:
 *   ADD|REMOVE|REPLACE}`, `transaction_type`, `reserve_for_live` changes a product's show lineup (→
 *   effects `product.pinned` / `product.unpinned` on the show) and answers, as `GET` does, the
 *   product's merchandising `{transaction_type, reserved_for_live, active_in_shows}` (no show ids:
 *   `GET …/{product_id}/shows` lists them); the product catalogue itself is not simulated: every
 *   product id is taken to be one of the seller's buy-it-now listings, unless the seller's listings
 *   are set (`PUT /_sim/whatnot/products {account?, productIds}`): then another id is a 404
 *   `not-found` problem naming no parameter (our model of Whatnot's answer for a path's unknown
 *   resource; a partner's sku is no Whatnot product id);
 * - orders (`GET /orders`, `GET /orders/{id}`, cursor pagination) and Standard Webhooks
 *   `orders.created` / `orders.updated` signed with the secret set by `PUT /_sim/whatnot/webhook`.
 *   As in the published Order model, an order carries no line items: they are a separate call,
 *   `GET /orders/{id}/items` → `{data: [{id, order_id, product_id, quantity, price}], next_cursor}`
 *   (404 for an order that is not the seller's; same auth and rate limit as every call; the envelope
 *   and item fields are our model, like the `GET /orders` envelope).
 *   Order statuses are Whatnot's: pending / pending_fulfillment / completed / cancelled / failed. A
 *   created order is `pending_fulfillment` (paid), a fully refunded one `cancelled`;
 *   `PUT /_sim/whatnot/orders/{id}/status {status}` sets any of them (payment pending or failed,
 *   shipped…) and sends `orders.updated`. The `GET /orders` parameters and envelope are our model
 *   (not in any public source we could read).
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { currencyExponent, type Money } from '../domain/money.js';
import { SIM_ACCOUNTS, registerRevocations, seededAccounts, type WhatnotSimAccount } from './sim.accounts.js';
import { SimPlatform, SimProblem, installSimApiHooks, randomId, type PlatformSimulator, type SimOrder, type SimReply, type SimWindowState, invalidControlBody, parseControlBody } from './sim.platform.js';

export const WHATNOT_SIM_SELLER_ID = SIM_ACCOUNTS.whatnot[0]!.sellerId;
/** Used when PUT /_sim/whatnot/webhook gave no secret (Standard Webhooks always signs). */
export const WHATNOT_SIM_DEFAULT_WEBHOOK_SECRET = `whsec_${Buffer.from('syndicast-whatnot-simulator-key!').toString('base64')}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PRODUCT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_SHOW_IDS = 25;
/** The OAuth token endpoint, beside the API version on Whatnot (`/seller-api/rest/oauth/token`). */
const TOKEN_PATH = '/oauth/token';
/** Access tokens issued to apps: an hour (our assumption, see above). */
const TOKEN_TTL_SEC = 3600;
const ExpireBody = z.object({ token: z.string().min(1).optional() }).strict();

const SHOW_STATUSES = ['scheduled', 'live', 'stopped', 'ended', 'cancelled'] as const;
type ShowStatus = (typeof SHOW_STATUSES)[number];
const ORDER_STATUSES = ['pending', 'pending_fulfillment', 'completed', 'cancelled', 'failed'] as const;
type OrderStatus = (typeof ORDER_STATUSES)[number];
const ShowStatusBody = z.strictObject({ status: z.enum(SHOW_STATUSES) });
const ProductsBody = z.object({ account: z.string().min(1).optional(), productIds: z.array(z.string().regex(PRODUCT_ID)).max(10_000) }).strict();
/** POST /_sim/whatnot/accounts: a new seller takes no options. */
const NewSellerBody = z.strictObject({});
const OrderStatusBody = z.strictObject({ status: z.enum(ORDER_STATUSES) });
/**
 * The scope each Seller API call needs (the answer's `required_scopes`). Our model: Whatnot names its
 * scopes `read:orders`, `write:inventory`… (a PAT grants them), but no source we read maps calls to
 * them. `GET /users/me` needs none.
 */
export const WHATNOT_SIM_SCOPES = ['read:shows', 'read:merchandising', 'write:merchandising', 'read:orders'] as const;
type WhatnotScope = (typeof WHATNOT_SIM_SCOPES)[number];
const ROUTE_SCOPES: Record<string, WhatnotScope> = {
  'GET /shows': 'read:shows',
  'GET /shows/:show_id': 'read:shows',
  'GET /merchandising/products/:product_id': 'read:merchandising',
  'GET /merchandising/products/:product_id/shows': 'read:merchandising',
  'POST /merchandising/products/:product_id': 'write:merchandising',
  'GET /orders': 'read:orders',
  'GET /orders/:order_id': 'read:orders',
  'GET /orders/:order_id/items': 'read:orders',
};
const ScopesBody = z.object({ token: z.string().min(1), scopes: z.array(z.enum(WHATNOT_SIM_SCOPES)).max(WHATNOT_SIM_SCOPES.length) }).strict();
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

/** 429 for a full window: problem+json `rate-limited` and Retry-After (seconds until a slot frees up, at least 1). */
function rateLimited(w: SimWindowState): SimReply {
  return {
    ...problem(429, 'rate-limited', 'Too many requests', `Rate limit exceeded: ${w.limit} requests per ${w.windowMs / 1000} s per seller`),
    headers: { 'content-type': 'application/problem+json', 'retry-after': String(Math.max(1, Math.ceil(w.resetMs / 1000))) },
  };
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

/**
 * A date-time with seconds and an offset, on a real calendar date (the strictest reading: the
 * parameters are our model). Date.parse behind a `YYYY-MM-DDT` prefix took `2026-02-30T00:00:00Z`
 * as March 2nd and a time without an offset in the simulator's local time.
 */
const ISO_DATE_TIME = z.iso.datetime({ offset: true });
function timeParam(req: FastifyRequest, name: string): number | undefined {
  const raw = qp(req, name);
  if (raw === undefined) return undefined;
  if (!ISO_DATE_TIME.safeParse(raw).success) throw invalid(name, `${name} must be an ISO 8601 date-time with seconds and an offset`);
  return Date.parse(raw);
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export function createWhatnotSimulator(): PlatformSimulator {
  // 10 requests/s per seller per app: the auth hook takes the window's slot by seller and app.
  const sim = new SimPlatform('whatnot', {
    limits: { requestsPerWindow: 10, windowMs: 1000, tokenTtlSec: TOKEN_TTL_SEC },
    extraLimits: { rotateRefreshTokens: 0 },
    windowPerCaller: true,
  });
  const shows = new Map<string, WnShow>();
  const merch = new Map<string, WnMerch>();
  /** Statuses set by hand (PUT /_sim/whatnot/orders/{id}/status); otherwise derived from payment/refunds. */
  const orderStatus = new Map<string, OrderStatus>();
  /** The sellers and their tokens; which seller made each show. */
  let sellers: WhatnotSimAccount[] = seededAccounts('whatnot');
  /** client id → client secret: the apps Whatnot registered. */
  let apps = new Map(seededAccounts('whatnotApps').map((a) => [a.clientId, a.clientSecret]));
  /** access token issued by POST /oauth/token → its seller. */
  const tokenSeller = new Map<string, string>();
  /** Tokens a seller revoked (`POST /_sim/whatnot/revocations`). */
  const revoked = new Set<string>();
  const showSeller = new Map<string, string>();
  /** The seller of a show made by hand without `account`, until a seller reaches it by id. */
  const UNCLAIMED = '';
  const sellerOf = new WeakMap<IncomingMessage, string>();
  /** Grants given fewer scopes (`PUT /_sim/whatnot/scopes`): a personal access token or an app's refresh token → its scopes. */
  const grantScopes = new Map<string, Set<string>>();
  /** access token issued by POST /oauth/token → the refresh token (the grant) it came from. */
  const tokenGrant = new Map<string, string>();
  /** access token issued by POST /oauth/token → the app (client id) it was issued to. */
  const tokenApp = new Map<string, string>();
  /** The request's rate-limit window: its seller and app (a personal access token is the seller's own). */
  const windowOf = new WeakMap<IncomingMessage, string>();
  const merchKey = (seller: string, productId: string): string => `${seller}\u0000${productId}`;
  /**
   * A seller's product listings, once set (`PUT /_sim/whatnot/products`): merchandising a product id
   * that is none of them is Whatnot's 404 (the path names a product the seller does not have). A seller
   * without a list set takes every id for one of its listings (as before: the catalogue is not modelled).
   */
  const listings = new Map<string, Set<string>>();
  sim.onReset(() => {
    shows.clear();
    merch.clear();
    orderStatus.clear();
    sellers = seededAccounts('whatnot');
    apps = new Map(seededAccounts('whatnotApps').map((a) => [a.clientId, a.clientSecret]));
    tokenSeller.clear();
    revoked.clear();
    showSeller.clear();
    listings.clear();
    grantScopes.clear();
    tokenGrant.clear();
    tokenApp.clear();
  });

  function renderShow(s: WnShow): WnShow {
    return { ...s };
  }

  /**
   * ProductMerchandising (API reference, models): the sale format, whether the product is reserved for
   * live, and whether it is in at least one upcoming or live show. The shows themselves are not in it:
   * they are listed by `GET /merchandising/products/{product_id}/shows`.
   */
  function renderMerch(m: WnMerch | undefined): Record<string, unknown> {
    const inShow = [...(m?.shows ?? [])].some((id) => {
      const status = shows.get(id)?.status;
      return status !== undefined && status !== 'ended' && status !== 'cancelled';
    });
    return {
      transaction_type: m?.transaction_type ?? 'buy_it_now',
      reserved_for_live: m?.reserved_for_live ?? false,
      active_in_shows: inShow,
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
    };
  }

  /**
   * The order's line items (`GET /orders/{id}/items`): the published Order model has none, so neither
   * `GET /orders`, `GET /orders/{id}` nor the order webhooks carry them. One item per order here (the
   * control API's order is one product); its shape is our model (docs/platforms.md).
   */
  function renderItems(o: SimOrder): Record<string, unknown>[] {
    return [{ id: `${o.orderId}-1`, order_id: o.orderId, product_id: o.productId, quantity: 1, price: decimal(o.total) }];
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
    const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data, version: 'v2', seller_id: showSeller.get(showId) || WHATNOT_SIM_SELLER_ID });
    const signature = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    await sim.sendWebhook(body, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` });
  }

  async function plugin(app: FastifyInstance): Promise<void> {
    const isTokenPath = (req: FastifyRequest): boolean => (req.raw.url ?? '').split('?')[0] === `${app.prefix}${TOKEN_PATH}`;
    installSimApiHooks(app, sim, {
      isAuthEndpoint: isTokenPath,
      faultReply: (kind) => {
        if (kind === '500') return problem(500, 'internal-error', 'Internal server error', 'Something went wrong on our side; retry later');
        if (kind === 'token_expired') return problem(401, 'unauthorized', 'Unauthorized', 'The access token has expired or was revoked');
        return { ...problem(429, 'rate-limited', 'Too many requests', 'Rate limit exceeded: 10 requests per second per seller'), headers: { 'content-type': 'application/problem+json', 'retry-after': sim.faults.retryAfter ?? '1' } };
      },
      rateLimitReply: rateLimited,
    });

    // RateLimit-* on every response, the state of the caller's window after this request (draft-ietf-httpapi-ratelimit-headers).
    app.addHook('onSend', async (req, reply, payload) => {
      const limit = sim.limits.requestsPerWindow;
      if (limit !== null) {
        const w = sim.windowState(Date.now(), windowOf.get(req.raw) ?? '');
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

    app.addHook('preHandler', async (req, reply) => {
      if (isTokenPath(req)) return undefined;
      const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const issued = sim.tokens.check(token);
      // The seller the token names: an app's access token its grant's seller (also once expired); a
      // personal token its seller's; a token never seen and not revoked is a new seller's personal access
      // token (CONTRACT §9: any non-empty credentials); none for a revoked token no seller holds, or none.
      let seller: string | undefined;
      if (token !== undefined && issued !== 'unknown') seller = tokenSeller.get(token) ?? '';
      else if (token !== undefined) {
        seller = sellers.find((a) => a.accessToken === token)?.sellerId;
        if (seller === undefined && !revoked.has(token)) {
          seller = `sim-seller-${randomId(8)}`;
          sellers.push({ sellerId: seller, accessToken: token });
        }
      }
      // 10 requests/s per seller per app, every request counted, the refused ones (401, 403) too, and the
      // RateLimit-* of that window on the answer: an app's access tokens share their app's window with the
      // seller, a personal token is its own. A request naming no seller counts against its client address's.
      const caller = seller === undefined ? `\u0000address ${req.ip}` : `${seller}\u0000${(token !== undefined ? tokenApp.get(token) : undefined) ?? 'personal'}`;
      windowOf.set(req.raw, caller);
      const full = sim.takeWindowSlot(Date.now(), caller);
      if (full) return send(reply, rateLimited(full));
      if (!token) throw new WnError(401, 'unauthorized', 'Unauthorized', 'Missing or malformed Authorization: Bearer <token> header');
      if (revoked.has(token)) throw new WnError(401, 'unauthorized', 'Unauthorized', 'The access token is invalid, expired or was revoked');
      if (issued === 'expired') throw new WnError(401, 'unauthorized', 'Unauthorized', 'The access token has expired');
      // The grant the token acts under: an app's access token is its refresh token's; a personal token is its own.
      const grant = issued === 'valid' ? (tokenGrant.get(token) ?? token) : token;
      const needed = ROUTE_SCOPES[`${req.method} ${(req.routeOptions.url ?? '').slice(app.prefix.length)}`];
      const scopes = grantScopes.get(grant);
      if (needed !== undefined && scopes !== undefined && !scopes.has(needed)) {
        throw new WnError(403, 'forbidden', 'Forbidden', `This token is not authorised for this operation: it needs the scope ${needed}`, { required_scopes: [needed] });
      }
      sellerOf.set(req.raw, seller ?? '');
      // Whatnot has no daily quota; this only bites when a test sets one through PUT /_sim/whatnot/limits.
      if (!sim.tryConsumeQuota(1)) throw new WnError(429, 'quota-exceeded', 'Too many requests', 'The daily request quota set on the simulator is used up');
      return undefined;
    });

    // --- OAuth token endpoint (refresh_token grant) -----------------------------------------
    app.post(TOKEN_PATH, async (req, reply) => {
      const oauthError = (status: number, error: string, description: string): FastifyReply => reply.code(status).send({ error, error_description: description });
      void reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' });
      // RFC 6749 §4.1.3 / §6: the parameters come form-urlencoded in the body.
      if (!(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded') || typeof req.body !== 'object' || req.body === null) {
        return oauthError(400, 'invalid_request', 'The request body must be application/x-www-form-urlencoded');
      }
      const body = req.body as Record<string, unknown>;
      const p = (k: string): string => (typeof body[k] === 'string' ? body[k] : '');
      if (!p('grant_type')) return oauthError(400, 'invalid_request', 'grant_type is required');
      if (p('grant_type') === 'authorization_code') return oauthError(400, 'invalid_grant', 'The authorization code is invalid or expired');
      if (p('grant_type') !== 'refresh_token') return oauthError(400, 'unsupported_grant_type', `grant_type ${p('grant_type')} is not supported`);
      if (!p('client_id') || !p('client_secret')) return oauthError(401, 'invalid_client', 'Client authentication failed');
      if (!p('refresh_token')) return oauthError(400, 'invalid_request', 'refresh_token is required');
      const secret = apps.get(p('client_id'));
      if (secret !== undefined && secret !== p('client_secret')) return oauthError(401, 'invalid_client', 'Client authentication failed');
      const holder = sellers.find((a) => a.refreshToken === p('refresh_token'));
      if (revoked.has(p('refresh_token')) || (holder && holder.clientId !== p('client_id'))) return oauthError(400, 'invalid_grant', 'The refresh token is invalid, expired or revoked');
      // Never seen: an app Whatnot registered with this secret, a seller that connected it (CONTRACT §9).
      if (secret === undefined) apps.set(p('client_id'), p('client_secret'));
      let seller = holder;
      if (!seller) {
        seller = { sellerId: `sim-seller-${randomId(8)}`, accessToken: `wn_sim_${randomId(32)}`, clientId: p('client_id'), refreshToken: p('refresh_token') };
        sellers.push(seller);
      }
      const ttl = sim.limits.tokenTtlSec;
      const { token } = sim.tokens.issue(ttl, 'wn_access_tk_');
      tokenSeller.set(token, seller.sellerId);
      tokenGrant.set(token, p('refresh_token'));
      tokenApp.set(token, p('client_id'));
      // PUT /_sim/whatnot/limits {rotateRefreshTokens: 1}: each refresh hands back a new refresh token
      // and the one used is dead from then on (invalid_grant), as with platforms that rotate them.
      if (sim.limits.rotateRefreshTokens) {
        revoked.add(p('refresh_token'));
        seller.refreshToken = `wn_sim_refresh_${randomId(24)}`;
        const scopes = grantScopes.get(p('refresh_token'));
        if (scopes) grantScopes.set(seller.refreshToken, scopes); // the grant keeps its scopes across rotation
        tokenGrant.set(token, seller.refreshToken);
        return { access_token: token, token_type: 'Bearer', expires_in: ttl, refresh_token: seller.refreshToken };
      }
      return { access_token: token, token_type: 'Bearer', expires_in: ttl, refresh_token: p('refresh_token') };
    });

    const me = (req: FastifyRequest): string => sellerOf.get(req.raw) ?? '';
    /** The calling seller's show; another seller's is as unknown as one that does not exist. */
    const getShow = (req: FastifyRequest, id: string): WnShow => {
      if (!UUID.test(id)) throw invalid('show_id', 'show_id must be a UUID');
      const s = shows.get(id);
      // A show made by hand without an account is the first seller's that reaches it (the operator
      // made it with the account the target's token is, whatever that token: CONTRACT §9).
      if (s && showSeller.get(id) === UNCLAIMED) showSeller.set(id, me(req));
      if (!s || showSeller.get(id) !== me(req)) throw notFound(`Show ${id}`);
      return s;
    };
    /** Orders on the calling seller's shows, and on shows made by hand that no seller reached yet. */
    const mine = (req: FastifyRequest, showId: string): boolean => [me(req), UNCLAIMED].includes(showSeller.get(showId) ?? '-');
    /** A product id the calling seller has no listing of (its list set): 404, as for any resource the path names. */
    const ownProduct = (req: FastifyRequest, productId: string): void => {
      const listed = listings.get(me(req));
      if (listed && !listed.has(productId)) throw notFound(`Product ${productId}`);
    };
    /** The calling seller's orders as its order list names them: with the copies it lists again (SimPlatform.copyOrder). */
    const myOrders = (req: FastifyRequest): SimOrder[] => sim.reportedOrders().filter((o) => mine(req, o.externalId));

    // The seller behind the token (the Seller API's Users section): an app's token (any grant of the
    // seller, a refresh token or another) and the seller's personal token name the same seller. Path and
    // body are our model (docs/platforms.md).
    app.get('/users/me', async (req) => ({ id: me(req) }));

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
      ownProduct(req, productId);
      return renderMerch(merch.get(merchKey(me(req), productId)));
    });

    app.get('/merchandising/products/:product_id/shows', async (req) => {
      const { product_id: productId } = req.params as { product_id: string };
      const ids = [...(merch.get(merchKey(me(req), productId))?.shows ?? [])];
      return { data: ids.map((id) => shows.get(id)).filter((s): s is WnShow => s !== undefined).map(renderShow), next_cursor: null };
    });

    app.post('/merchandising/products/:product_id', async (req) => {
      const { product_id: productId } = req.params as { product_id: string };
      if (!PRODUCT_ID.test(productId)) throw invalid('product_id', 'invalid product_id');
      ownProduct(req, productId);
      if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) throw invalid('body', 'the body must be a JSON object');
      const body = req.body as Record<string, unknown>;
      const current = merch.get(merchKey(me(req), productId)) ?? { transaction_type: 'buy_it_now' as const, reserved_for_live: false, shows: new Set<string>() };
      const next: WnMerch = { ...current, shows: new Set(current.shows) };

      // MerchandiseProductRequest: every field optional, applied together (sale format first, then the
      // shows). The request names the flag `reserve_for_live` (the answer `reserved_for_live`): it is
      // refused as false when the same request makes the product an auction, and ignored for a product
      // that already is one (auctions are always reserved for live).
      if (body.transaction_type !== undefined && body.transaction_type !== null) {
        if (body.transaction_type !== 'buy_it_now' && body.transaction_type !== 'auction') throw invalid('transaction_type', 'transaction_type must be buy_it_now or auction');
        next.transaction_type = body.transaction_type;
        if (next.transaction_type === 'auction') next.reserved_for_live = true;
      }
      if (body.reserve_for_live !== undefined && body.reserve_for_live !== null) {
        if (typeof body.reserve_for_live !== 'boolean') throw invalid('reserve_for_live', 'reserve_for_live must be a boolean');
        if (!body.reserve_for_live && body.transaction_type === 'auction') throw invalid('reserve_for_live', 'auctions are always reserved for live');
        if (next.transaction_type !== 'auction') next.reserved_for_live = body.reserve_for_live;
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
      return renderMerch(next);
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
      if (!o || !mine(req, o.externalId)) throw notFound(`Order ${orderId}`);
      return renderOrder(o);
    });

    // The order's line items: a separate call (the Order model has none), paged like every list here.
    app.get('/orders/:order_id/items', async (req) => {
      const { order_id: orderId } = req.params as { order_id: string };
      const o = sim.orders.get(orderId);
      if (!o || !mine(req, o.externalId)) throw notFound(`Order ${orderId}`);
      const limit = limitParam(req);
      const offset = decodeCursor(req);
      const all = renderItems(o);
      const next = offset + limit < all.length ? encodeCursor(offset + limit) : null;
      return { data: all.slice(offset, offset + limit), next_cursor: next };
    });
  }

  /** What the seller and buyers do in the Whatnot app: run a show, pay (or fail to pay) an order. */
  async function control(app: FastifyInstance): Promise<void> {
    registerRevocations(app, revoked);
    // A new seller account: its personal access token, and its authorisation of the seeded app.
    app.post('/accounts', async (req, reply) => {
      parseControlBody(NewSellerBody, req.body, 'expected no fields (or {})');
      const appId = SIM_ACCOUNTS.whatnotApps[0]!;
      const account: WhatnotSimAccount = { sellerId: `sim-seller-${randomId(8)}`, accessToken: `wn_sim_${randomId(32)}`, clientId: appId.clientId, refreshToken: `wn_sim_refresh_${randomId(24)}` };
      sellers.push(account);
      return reply.code(201).send({
        ...account,
        credentials: { accessToken: account.accessToken },
        appCredentials: { clientId: appId.clientId, clientSecret: appId.clientSecret, refreshToken: account.refreshToken },
      });
    });
    // The app's access tokens expire: this one (or every one issued) now, as if its hour were over.
    app.post('/tokens/expire', async (req, reply) => {
      const body = parseControlBody(ExpireBody, req.body, 'expected {token?: string}');
      if (body.token === undefined) sim.tokens.expireAll();
      else if (!sim.tokens.expire(body.token)) throw new SimProblem(404, 'Unknown token', 'no access token issued by POST /whatnot/oauth/token is this one');
      return reply.code(204).send();
    });
    // What the seller granted a token (a personal access token, or an app's refresh token): these scopes only.
    app.put('/scopes', async (req) => {
      const b = ScopesBody.safeParse(req.body);
      if (!b.success) throw invalidControlBody(`expected {token: personal access token or refresh token, scopes: [${WHATNOT_SIM_SCOPES.join(', ')}]}`, b.error);
      grantScopes.set(b.data.token, new Set(b.data.scopes));
      return { token: b.data.token, scopes: b.data.scopes };
    });
    // The seller's listings (products made in the app or by the Products API): merchandising takes only these.
    app.put('/products', async (req) => {
      const b = ProductsBody.safeParse(req.body);
      if (!b.success) throw invalidControlBody('expected {account?: seller id, productIds: string[]}', b.error);
      const seller = b.data.account ?? WHATNOT_SIM_SELLER_ID;
      if (!sellers.some((a) => a.sellerId === seller)) throw new SimProblem(404, 'Unknown account', `no Whatnot seller ${seller}`);
      listings.set(seller, new Set(b.data.productIds));
      return { account: seller, productIds: [...b.data.productIds] };
    });
    app.put('/shows/:showId/status', async (req) => {
      const s = shows.get((req.params as { showId: string }).showId);
      if (!s) throw new SimProblem(404, 'Show not found');
      const b = ShowStatusBody.safeParse(req.body);
      if (!b.success) throw invalidControlBody(`status must be one of ${SHOW_STATUSES.join(', ')}`, b.error);
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
      if (!b.success) throw invalidControlBody(`status must be one of ${ORDER_STATUSES.join(', ')}`, b.error);
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
      // `account`: a seller id, or a seller's token (what a target knows of a seller registered on first use).
      const seller = account === undefined ? UNCLAIMED : (sellers.find((a) => a.accessToken === account)?.sellerId ?? account);
      if (seller !== UNCLAIMED && !sellers.some((a) => a.sellerId === seller)) throw new SimProblem(404, 'Unknown account', `no Whatnot seller ${seller}`);
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
    // The same seller's list: a show made by hand that no seller has reached yet (UNCLAIMED) is no seller's,
    // so two such shows are not one seller's either.
    listsOrderCopies: (orderShow, copyShow) => {
      const seller = showSeller.get(orderShow);
      return seller !== undefined && seller !== UNCLAIMED && seller === showSeller.get(copyShow);
    },
    async onOrderCreated(order) {
      await sendWebhook('orders.created', renderOrder(order));
    },
    async onOrderRefunded(order) {
      await sendWebhook('orders.updated', renderOrder(order));
    },
  };
}

