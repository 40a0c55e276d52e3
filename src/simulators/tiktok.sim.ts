/**
 * TikTok Shop simulator, mounted under `/tiktok`: the auth host's token endpoints
 * (`/api/v2/token/get|refresh`, unsigned) and the signed Open API endpoints a live-shopping mirror
 * uses (affiliate promotion links, affiliate order search, order detail). A target points both hosts
 * at `baseUrl = http://127.0.0.1:{port}/tiktok`, so paths below are the real ones.
 *
 * Protocol, as documented by TikTok Shop Partner Center:
 * - every Open API request carries `app_key`, `timestamp` (unix s), `shop_cipher`, `sign` and the
 *   `x-tts-access-token` header; the sign (HMAC-SHA256 keyed by app_secret over app_secret + path +
 *   sorted key/values + body + app_secret) is verified on the raw body → 106001; a timestamp more than
 *   more than `timestampToleranceSec` (300) behind or 30 s ahead → 36009004; an expired token → 105002;
 *   missing shop_cipher → 106013; a scope the authorisation lacks → 105005; messages are the ones of
 *   the common-errors page (partner.tiktokshop.com/docv2/page/common-errors);
 * - 36009004 is TikTok's catch-all, told apart only by its message: an unknown app_key, a missing
 *   signature, a refused timestamp, and an access token TikTok does not know ("Invalid credentials.
 *   The `x-tts-access-token` header is invalid."); a token that is not even token-shaped (TikTok's
 *   start with a region prefix like `ROW_`/`TTP_`) gets 101000 ("Invalid query or header…") — both
 *   codes are documented for an invalid token, which one TikTok picks when is not (our split);
 * - a request the gateway waits on longer than `gatewayTimeoutMs` (only reachable by raising
 *   `latencyMs` above it) → 36009007 "Request timeout" (HTTP 200: the status of that code is not
 *   documented; TikTok answers many codes with 200);
 * - errors are the envelope `{code, message, request_id, data}`; HTTP statuses vary (some codes come
 *   with 200) so clients must read `code`;
 * - 50 requests/s per app per shop → HTTP 429 code 36009002; injected 500 → 36009003;
 * - the affiliate order report gives a sku's unit `price`, `quantity` and the units taken back
 *   (`refunded_quantity`, `returned_quantity`), never a refunded amount: an order is `quantity` units of
 *   one price (`POST /_sim/tiktok/orders {quantity}`, 1 by default; a total that is not is a 422), a
 *   refund may be any amount and the report counts the whole units the refunds add up to, each in both fields.
 * Credentials (src/simulators/sim.accounts.ts): apps (app_key → app_secret) and shops are registered
 * in the simulator, as in Partner Center; the seeded ones, and more from `POST /_sim/tiktok/apps
 * {appKey, appSecret}` and `POST /_sim/tiktok/accounts {appKey?, limited?}` (a shop authorising an
 * app: its shop_cipher and refresh token). The token endpoints refuse a known app_key with a wrong
 * app_secret (36004002 "Invalid credentials. The `app_secret` does not match the `app_key`.": code and
 * wording assumed, no public source gives TikTok's) apart from a refresh token that is revoked or
 * issued to another app (36004005 "can not find related auth record", as observed live) and an unknown
 * authorisation code (36004004 "invalid auth code", observed live); credentials never seen
 * are accounts that exist (CONTRACT §9: any non-empty credentials): an unknown app_key is registered
 * with the app_secret given, an unknown refresh token is a new shop's authorisation of that app, with
 * the `shop_cipher` the refresh names if no shop has it (else a new one); every signed call is
 * checked against the registered app_secret; an access token works with its own app_key and its own
 * shop's shop_cipher only (another cipher: 36009004 "Invalid identifier…"); a shop authorised with
 * `limited` lacks the affiliate scopes. A room belongs to the shop it was started in, and a shop sees
 * only its own rooms' orders.
 * TikTok has no API for LIVE rooms: `POST /_sim/tiktok/shows {title, account?}` is the creator of
 * shop `account` (a shop id or shop cipher) going live in the app; without `account` the room is the
 * first shop's to pin in it (until then every shop sees its orders): the operator went live as the
 * account the target's credentials are, whatever they are (CONTRACT §9).
 * The products open to affiliate promotion can be set (`PUT /_sim/tiktok/products {productIds}`): a
 * promotion link for another id is then 36009004 naming `product_id` (our model: TikTok does not document
 * that answer); unset, every well-formed id is one.
 * The promotion-link API names no room, so its `product.pinned` effect is put on the calling shop's
 * most recently started room (counting unclaimed ones). Webhooks are signed with the app the room's shop authorised; `PUT
 * /_sim/tiktok/webhook {secret}` may name it as `<app_key>:<app_secret>` (TikTok signs with both).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { applyBps, currencyExponent, type Money } from '../domain/money.js';
import { SIM_ACCOUNTS, registerRevocations, seededAccounts, type TiktokSimShop } from './sim.accounts.js';
import { SimPlatform, SimProblem, installSimApiHooks, randomId, type PlatformSimulator, type SimOrder, type SimRefund, type SimReply, parseControlBody } from './sim.platform.js';

type TiktokExtraLimits = {
  /** Allowed distance between a request's `timestamp` and the simulator's clock. */
  timestampToleranceSec: number;
  /** Commission rate the simulated affiliate report applies (basis points). */
  commissionRateBps: number;
  /** A request waiting longer than this (its `latencyMs`) gets 36009007 instead of an answer. */
  gatewayTimeoutMs: number;
};

/** The common-errors page's messages (partner.tiktokshop.com/docv2/page/common-errors). */
const MSG = {
  tokenInvalid: 'Invalid credentials. The `x-tts-access-token` header is invalid.',
  headerInvalid: 'Invalid query or header. The `category_asset_cipher` query parameter or `x-tts-access-token` header is invalid.',
  tokenExpired: 'Expired credentials. The `access_token` or `x-tts-access-token` header has expired.',
  appKey: 'Invalid credentials. Invalid `app_key` query parameter.',
  noSign: 'Missing credentials. The request does not include a required signature in the query.',
  badSign: 'Invalid credentials. The `sign` query parameter is invalid.',
  tsNegative: 'Invalid timestamp. The value of the `timestamp` query parameter must not be lesser than 0.',
  tsPast: 'Invalid timestamp. The value of the `timestamp` query parameter must not be earlier than 5 minutes before the current time.',
  tsFuture: 'Invalid timestamp. The value of the `timestamp` query parameter must not exceed the current time by more than 30 seconds.',
  noShopCipher: 'Missing identifier. The `shop_cipher` query parameter is required to identify the target shop.',
  // Worded like the page's "Invalid identifier. The `shop_id` query parameter is invalid.".
  badShopCipher: 'Invalid identifier. The `shop_cipher` query parameter is invalid.',
  timeout: 'Request timeout. The request to the endpoint timed out.',
} as const;
/**
 * The affiliate order search's "at most 3 months" (create_time_ge … create_time_lt), read as strictly as
 * the calendar allows: the shortest three months in a row (February to April) are 89 days. It was 92
 * (the longest), which took a 90- or 91-day range that TikTok refuses when its three months are short.
 */
const SEARCH_RANGE_MAX_S = 89 * 86_400;
/** TikTok accepts a timestamp at most this far ahead of its clock. */
const FUTURE_TOLERANCE_SEC = 30;
/** TikTok access tokens start with a region prefix (`ROW_…`, `TTP_…`). */
const TOKEN_SHAPE = /^[A-Z]{3}_/;

/** `GET /authorization/202309/shops` (Get Authorized Shops): signed, without shop_cipher. */
const AUTHORIZED_SHOPS_PATH = '/authorization/202309/shops';
export const TIKTOK_SIM_SHOP_ID = SIM_ACCOUNTS.tiktok.shops[0]!.shopId;
/** The shop of a room made by hand without `account`, until a shop pins in it. */
const UNCLAIMED = '';
const TOKEN_TTL_SEC = 7 * 86_400; // access tokens live about a week
const REFRESH_TTL_SEC = 365 * 86_400;
const AUTH_PREFIX = '/api/v2/token/';
const SCOPE = {
  orderInfo: 'seller.order.info',
  affiliateRead: 'seller.affiliate_collaboration.read',
  affiliateWrite: 'seller.affiliate_collaboration.write',
} as const;
const ALL_SCOPES = ['seller.authorization.info', 'seller.shop.info', 'seller.product.basic', SCOPE.orderInfo, SCOPE.affiliateRead, SCOPE.affiliateWrite];
const LIMITED_SCOPES = ['seller.authorization.info', 'seller.shop.info', 'seller.product.basic', SCOPE.orderInfo];

export const TT_CODE = {
  INVALID_TOKEN: 105001,
  INVALID_HEADER: 101000,
  EXPIRED_TOKEN: 105002,
  SCOPE_NOT_GRANTED: 105005,
  INVALID_SIGN: 106001,
  MISSING_SHOP_CIPHER: 106013,
  INVALID_PARAM: 36009001,
  TOO_MANY_REQUESTS: 36009002,
  INTERNAL_ERROR: 36009003,
  /** The catch-all: the message says what is wrong. */
  COMMON_REFUSAL: 36009004,
  REQUEST_TIMEOUT: 36009007,
  NOT_FOUND: 36009404,
  /** Observed live for an unknown authorisation code ("invalid auth code"). */
  AUTH_CODE_INVALID: 36004004,
  /** Observed live for a refresh token TikTok does not know ("can not find related auth record"). */
  REFRESH_TOKEN_INVALID: 36004005,
  /** Assumed (TikTok's answer to a wrong app_secret is not public): distinct, and its message names the secret. */
  APP_SECRET_MISMATCH: 36004002,
} as const;

// ---------------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------------

function requestId(): string {
  const d = new Date();
  const stamp = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${stamp}${randomBytes(9).toString('hex').toUpperCase()}`;
}

function envelope(code: number, message: string, data: unknown = null): Record<string, unknown> {
  return { code, message, request_id: requestId(), data };
}

function failure(status: number, code: number, message: string): SimReply {
  return { status, body: envelope(code, message) };
}

class TtError extends Error {
  readonly reply: SimReply;
  constructor(status: number, code: number, message: string) {
    super(`${code}: ${message}`);
    this.reply = failure(status, code, message);
  }
}

function send(reply: FastifyReply, r: SimReply): FastifyReply {
  reply.code(r.status);
  if (r.headers) void reply.headers(r.headers);
  return reply.send(r.body);
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Decoded query parameters from the raw URL (last value wins), as the signer saw them. */
function queryOf(req: FastifyRequest): Record<string, string> {
  const url = req.raw.url ?? req.url;
  const qs = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  return Object.fromEntries(new URLSearchParams(qs));
}

function pathOf(req: FastifyRequest, prefix: string): string {
  const p = (req.raw.url ?? req.url).split('?')[0] ?? '';
  return p.startsWith(prefix) ? p.slice(prefix.length) || '/' : p;
}

/** TikTok's documented signature, implemented here independently of the adapter. */
function expectedSign(secret: string, path: string, query: Record<string, string>, body: string): string {
  const params = Object.keys(query)
    .filter((k) => k !== 'sign' && k !== 'access_token')
    .sort()
    .map((k) => k + (query[k] ?? ''))
    .join('');
  return createHmac('sha256', secret).update(secret + path + params + body + secret).digest('hex');
}

/** Constant-time comparison of two secrets. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

const AppBody = z.strictObject({ appKey: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), appSecret: z.string().min(1).max(200) });
const ShopBody = z.strictObject({ appKey: z.string().min(1).optional(), limited: z.boolean().optional() });
const ProductsBody = z.object({ productIds: z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/)).max(10_000) }).strict();

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase(), 'utf8');
  const y = Buffer.from(b.toLowerCase(), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function decimal(m: Money): string {
  const e = currencyExponent(m.currency);
  const s = String(Math.abs(m.amount)).padStart(e + 1, '0');
  const v = e === 0 ? s : `${s.slice(0, s.length - e)}.${s.slice(s.length - e)}`;
  return m.amount < 0 ? `-${v}` : v;
}

function unixS(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

function encodeToken(offset: number): string {
  return Buffer.from(`tt:${offset}`).toString('base64url');
}
function decodeToken(token: string | undefined): number {
  if (token === undefined || token === '') return 0;
  const m = /^tt:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m?.[1]) throw new TtError(400, TT_CODE.INVALID_PARAM, 'Invalid page_token');
  return Number(m[1]);
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

interface TtRoom {
  id: string;
  title: string;
  startedAt: string;
  /** The shop whose creator started it. */
  shopId: string;
}

class TiktokState {
  /** app_key → app_secret: the apps registered in Partner Center. */
  apps = new Map<string, string>();
  /** The shops and the app each authorised. */
  shops: TiktokSimShop[] = [];
  /** access token → the app, shop and scopes it was issued for. */
  tokenInfo = new Map<string, { appKey: string; shop: TiktokSimShop; scopes: string[] }>();
  rooms = new Map<string, TtRoom>();
  /** product id → its promotion link (TikTok hands out a stable link per product). */
  links = new Map<string, string>();
  /**
   * The products open to affiliate promotion, once set (`PUT /_sim/tiktok/products {productIds}`): a
   * promotion link for another id is 36009004 naming `product_id`. Unset, every well-formed id is one.
   */
  products: Set<string> | undefined;

  /** Refresh tokens a seller revoked (deauthorised the app): `POST /_sim/tiktok/revocations`. */
  revoked = new Set<string>();

  constructor() {
    this.clear();
  }

  clear(): void {
    const seeded = seededAccounts('tiktok');
    this.apps = new Map(seeded.apps.map((a) => [a.appKey, a.appSecret]));
    this.shops = seeded.shops;
    this.tokenInfo.clear();
    this.revoked.clear();
    this.rooms.clear();
    this.links.clear();
  }

  /** A shop that authorised app `appKey` (a new cipher and refresh token unless given). */
  newShop(appKey: string, given: Partial<Pick<TiktokSimShop, 'shopCipher' | 'refreshToken' | 'limited'>>): TiktokSimShop {
    const shopId = `749${randomBytes(8).readBigUInt64BE(0).toString().padStart(16, '0').slice(0, 16)}`;
    const shop: TiktokSimShop = { shopId, shopCipher: `ROW_${randomId(16)}`, appKey, refreshToken: `ROW_${randomId(24)}`, ...given };
    this.shops.push(shop);
    return shop;
  }

  /**
   * The room a shop's promotion link goes to: its most recently started one, counting the rooms made
   * by hand without an account (the first shop to pin in one of those claims it: the operator went live
   * as the account the target's credentials are, whatever they are, CONTRACT §9).
   */
  currentRoomOf(shopId: string): string | undefined {
    const room = [...this.rooms.values()].reverse().find((r) => r.shopId === shopId || r.shopId === UNCLAIMED);
    if (room?.shopId === UNCLAIMED) room.shopId = shopId;
    return room?.id;
  }

  shopById(shopId: string): TiktokSimShop | undefined {
    return this.shops.find((s) => s.shopId === shopId);
  }
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export function createTiktokSimulator(): PlatformSimulator {
  const sim = new SimPlatform<TiktokExtraLimits>('tiktok', {
    limits: { requestsPerWindow: 50, windowMs: 1000, tokenTtlSec: TOKEN_TTL_SEC },
    extraLimits: { timestampToleranceSec: 300, commissionRateBps: 1000, gatewayTimeoutMs: 30_000 },
  });
  const state = new TiktokState();
  sim.onReset(() => state.clear());
  const rawBodies = new WeakMap<IncomingMessage, string>();
  const scopesOf = new WeakMap<IncomingMessage, string[]>();
  const shopOf = new WeakMap<IncomingMessage, TiktokSimShop>();
  /** The orders on the calling shop's rooms (a shop sees no other shop's orders). */
  const ordersOf = (req: FastifyRequest): SimOrder[] => {
    const shopId = shopOf.get(req.raw)?.shopId;
    return [...sim.orders.values()].filter((o) => {
      const owner = state.rooms.get(o.externalId)?.shopId;
      return owner === shopId || owner === UNCLAIMED;
    });
  };

  // LIVE room ids are 19-digit numbers that grow with time: here 73, the millisecond (13 digits) and 4
  // digits of a random start, each id above the last. (The 4 digits were random alone: two rooms made
  // in one millisecond shared an id about once in 3,000, and a test linking 50 shows at once to rooms
  // made by hand found one room "already the mirror" of another show.)
  let lastRoomId = 0n;
  function newRoomId(): string {
    const fresh = 73n * 10n ** 17n + BigInt(Date.now()) * 10_000n + BigInt(randomBytes(2).readUInt16BE(0) % 10_000);
    lastRoomId = fresh > lastRoomId ? fresh : lastRoomId + 1n;
    return String(lastRoomId);
  }

  /**
   * A sku of TikTok's affiliate report has a unit `price` and a `quantity`, and counts what was taken
   * back in units (`refunded_quantity`, `returned_quantity`): no refunded amount. So an order here is
   * `quantity` units of one price (checkOrder), and the report counts the whole units the refunds add up
   * to. A refund of part of a unit's price is taken (TikTok Shop has partial refunds, and §9 of the
   * contract takes any amount) but the report cannot show it: it counts only units, so the part of a
   * unit shows nowhere in the report (the order detail's `refund_amount` has it). TikTok does not
   * document whether a returned unit counts in both fields; the simulator counts it in both (as before,
   * for a refund of the whole order), so a reader that takes either field gets it.
   */
  const unitPrice = (o: Pick<SimOrder, 'total' | 'quantity'>): number => o.total.amount / o.quantity;
  function unitsTakenBack(o: SimOrder): number {
    const unit = unitPrice(o);
    const refunded = o.refunds.reduce((s, r) => (r.amount.currency === o.total.currency ? s + r.amount.amount : s), 0);
    return unit === 0 ? 0 : Math.min(o.quantity, Math.floor(refunded / unit));
  }

  function affiliateOrder(o: SimOrder): Record<string, unknown> {
    const bps = sim.limits.commissionRateBps;
    const units = unitsTakenBack(o);
    return {
      id: o.orderId,
      status: o.status === 'refunded' ? 'CANCELLED' : 'PROCESSING',
      create_time: unixS(o.createdAt),
      skus: [
        {
          product_id: o.productId,
          quantity: o.quantity,
          price: { amount: decimal({ amount: unitPrice(o), currency: o.total.currency }), currency: o.total.currency },
          content_type: 'LIVE',
          content_id: o.externalId,
          creator_username: 'syndicast_sim_creator',
          commission_rate: String(bps),
          commission_model: 'FIXED',
          estimated_paid_commission: { amount: decimal({ amount: applyBps(o.total.amount, bps), currency: o.total.currency }), currency: o.total.currency },
          refunded_quantity: units,
          returned_quantity: units,
        },
      ],
    };
  }

  function orderDetail(o: SimOrder): Record<string, unknown> {
    const refundedAmount = o.refunds.reduce((s, r) => s + r.amount.amount, 0);
    const unit = decimal({ amount: unitPrice(o), currency: o.total.currency });
    return {
      id: o.orderId,
      status: o.status === 'refunded' ? 'CANCELLED' : 'AWAITING_SHIPMENT',
      create_time: unixS(o.createdAt),
      update_time: Math.floor(Date.now() / 1000),
      payment: {
        currency: o.total.currency,
        sub_total: decimal(o.total),
        total_amount: decimal(o.total),
        refund_amount: decimal({ amount: refundedAmount, currency: o.total.currency }),
      },
      // One line item per unit, as TikTok lists them.
      line_items: Array.from({ length: o.quantity }, (_, i) => ({ id: `${o.orderId}-${i + 1}`, product_id: o.productId, sale_price: unit, currency: o.total.currency })),
    };
  }

  /** Webhooks are signed with the key and secret of the app the order's shop authorised (or the secret set by PUT /webhook). */
  async function sendWebhook(type: number, order: SimOrder, data: Record<string, unknown>): Promise<void> {
    const dest = sim.webhook;
    if (!dest) return;
    const shop = state.shopById(state.rooms.get(order.externalId)?.shopId ?? '') ?? state.shops[0]!;
    let appKey = shop.appKey;
    let secret = state.apps.get(appKey) ?? '';
    if (dest.secret) {
      // `<app_key>:<app_secret>` names both; a bare secret belongs to the app that authorised with it.
      const colon = dest.secret.indexOf(':');
      if (colon > 0) {
        appKey = dest.secret.slice(0, colon);
        secret = dest.secret.slice(colon + 1);
      } else {
        secret = dest.secret;
        appKey = [...state.apps.entries()].find(([, s]) => s === dest.secret)?.[0] ?? appKey;
      }
    }
    const body = JSON.stringify({ type, tts_notification_id: randomBytes(8).readBigUInt64BE(0).toString(), shop_id: shop.shopId, timestamp: Math.floor(Date.now() / 1000), data });
    const signature = createHmac('sha256', secret).update(appKey + body).digest('hex');
    await sim.sendWebhook(body, { authorization: signature });
  }

  async function plugin(app: FastifyInstance): Promise<void> {
    const prefix = app.prefix;
    installSimApiHooks(app, sim, {
      isAuthEndpoint: (req) => pathOf(req, prefix).startsWith(AUTH_PREFIX),
      faultReply: (kind) => {
        if (kind === '500') return failure(500, TT_CODE.INTERNAL_ERROR, 'Internal error, please try again later');
        if (kind === 'token_expired') return failure(401, TT_CODE.EXPIRED_TOKEN, MSG.tokenExpired);
        return failure(429, TT_CODE.TOO_MANY_REQUESTS, 'Too many requests, please try again later');
      },
      rateLimitReply: () => failure(429, TT_CODE.TOO_MANY_REQUESTS, 'Too many requests: the limit is per app per shop per second'),
    });

    // The sign covers the body byte for byte: keep the raw text (the shared parser keeps it for the log only).
    app.addHook('preParsing', async (req, _reply, payload) => {
      const chunks: Buffer[] = [];
      for await (const chunk of payload) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
      const buf = Buffer.concat(chunks);
      rawBodies.set(req.raw, buf.toString('utf8'));
      const out = new PassThrough();
      (out as PassThrough & { receivedEncodedLength?: number }).receivedEncodedLength = buf.length;
      out.end(buf);
      return out;
    });

    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      if (err instanceof TtError) return send(reply, err.reply);
      if ((err.statusCode ?? 500) < 500) return send(reply, failure(400, TT_CODE.INVALID_PARAM, `Invalid request: ${err.message}`));
      return send(reply, failure(500, TT_CODE.INTERNAL_ERROR, 'Internal error, please try again later'));
    });
    app.setNotFoundHandler((req, reply) => send(reply, failure(404, TT_CODE.NOT_FOUND, `API not found: ${req.method} ${pathOf(req, prefix)}`)));

    // --- auth host (unsigned) ---------------------------------------------------------------
    const issue = (appKey: string, shop: TiktokSimShop): Record<string, unknown> => {
      const scopes = shop.limited ? LIMITED_SCOPES : ALL_SCOPES;
      const { token, expiresAt } = sim.tokens.issue(sim.limits.tokenTtlSec, 'TTP_');
      state.tokenInfo.set(token, { appKey, shop, scopes });
      return {
        access_token: token,
        access_token_expire_in: Math.floor(expiresAt / 1000),
        refresh_token: shop.refreshToken,
        refresh_token_expire_in: Math.floor(Date.now() / 1000) + REFRESH_TTL_SEC,
        open_id: `sim_${createHmac('sha256', 'open').update(shop.shopId).digest('hex').slice(0, 20)}`,
        seller_name: `Syndicast Sim Shop ${shop.shopId}`,
        seller_base_region: 'US',
        user_type: 0,
        granted_scopes: scopes,
      };
    };
    /** The app the token call names, when app_key is registered and app_secret is its secret. */
    const checkApp = (q: Record<string, string>): string => {
      const appKey = q.app_key ?? '';
      const secret = q.app_secret ?? '';
      if (!appKey || !secret) throw new TtError(400, TT_CODE.INVALID_PARAM, 'app_key and app_secret are required');
      const known = state.apps.get(appKey);
      // An app never seen is registered with the secret given (CONTRACT §9: any non-empty credentials),
      // so its signatures verify; a known app takes its own secret only.
      if (known === undefined) state.apps.set(appKey, secret);
      else if (!sameText(known, secret)) throw new TtError(200, TT_CODE.APP_SECRET_MISMATCH, 'Invalid credentials. The `app_secret` does not match the `app_key`.');
      return appKey;
    };
    const deadGrant = (): TtError => new TtError(200, TT_CODE.REFRESH_TOKEN_INVALID, 'can not find related auth record');

    app.get(`${AUTH_PREFIX}refresh`, async (req) => {
      const q = queryOf(req);
      if (q.grant_type !== 'refresh_token') throw new TtError(400, TT_CODE.INVALID_PARAM, 'grant_type must be refresh_token');
      const refreshToken = q.refresh_token ?? '';
      if (!refreshToken) throw new TtError(400, TT_CODE.INVALID_PARAM, 'refresh_token is required');
      const appKey = checkApp(q);
      // A refresh token belongs to one shop's authorisation of one app: another app's is refused. One
      // never seen is a new shop's authorisation of this app, with the shop_cipher the client names
      // when no shop has it (Syndicast sends its target's; TikTok ignores the parameter).
      const holder = state.shops.find((s) => sameText(s.refreshToken, refreshToken));
      if (state.revoked.has(refreshToken) || (holder && holder.appKey !== appKey)) throw deadGrant();
      const cipher = q.shop_cipher;
      const free = cipher !== undefined && /^[A-Za-z0-9_.:-]{1,200}$/.test(cipher) && !state.shops.some((s) => s.shopCipher === cipher);
      const shop = holder ?? state.newShop(appKey, { refreshToken, ...(free ? { shopCipher: cipher } : {}) });
      return envelope(0, 'success', issue(appKey, shop));
    });

    app.get(`${AUTH_PREFIX}get`, async (req) => {
      const q = queryOf(req);
      if (q.grant_type !== 'authorized_code') throw new TtError(400, TT_CODE.INVALID_PARAM, 'grant_type must be authorized_code');
      if (!q.auth_code) throw new TtError(400, TT_CODE.INVALID_PARAM, 'auth_code is required');
      const appKey = checkApp(q);
      // The simulator's authorisation codes: `authcode_<shop id>` for a shop that authorised this app.
      const shop = state.shops.find((s) => s.appKey === appKey && `authcode_${s.shopId}` === q.auth_code);
      if (!shop) throw new TtError(200, TT_CODE.AUTH_CODE_INVALID, 'invalid auth code');
      return envelope(0, 'success', issue(appKey, shop));
    });

    // --- Open API (signed) --------------------------------------------------------------------
    await app.register(async (api) => {
      api.addHook('preHandler', async (req) => {
        const q = queryOf(req);
        const appKey = q.app_key ?? '';
        const ts = q.timestamp ?? '';
        const nowS = Date.now() / 1000;
        if (!/^\d{1,12}$/.test(ts)) throw new TtError(200, TT_CODE.COMMON_REFUSAL, MSG.tsNegative);
        if (nowS - Number(ts) > sim.limits.timestampToleranceSec) throw new TtError(200, TT_CODE.COMMON_REFUSAL, MSG.tsPast);
        if (Number(ts) - nowS > FUTURE_TOLERANCE_SEC) throw new TtError(200, TT_CODE.COMMON_REFUSAL, MSG.tsFuture);
        const tokenHeader = req.headers['x-tts-access-token'];
        const token = Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader;
        const info = token ? state.tokenInfo.get(token) : undefined;
        const check = sim.tokens.check(token);
        const unknownToken = (): TtError =>
          token && TOKEN_SHAPE.test(token) ? new TtError(401, TT_CODE.COMMON_REFUSAL, MSG.tokenInvalid) : new TtError(401, TT_CODE.INVALID_HEADER, MSG.headerInvalid);
        const secret = state.apps.get(appKey);
        if (!secret) throw new TtError(200, TT_CODE.COMMON_REFUSAL, MSG.appKey);
        if (!q.sign) throw new TtError(401, TT_CODE.COMMON_REFUSAL, MSG.noSign);
        const expected = expectedSign(secret, pathOf(req, prefix), q, rawBodies.get(req.raw) ?? '');
        if (!sameHex(q.sign, expected)) throw new TtError(401, TT_CODE.INVALID_SIGN, MSG.badSign);
        if (check === 'unknown' || !info || info.appKey !== appKey) throw unknownToken();
        if (check === 'expired') throw new TtError(401, TT_CODE.EXPIRED_TOKEN, MSG.tokenExpired);
        // Get Authorized Shops is the one shop-independent call: it takes no shop_cipher (and refuses one).
        const shopless = pathOf(req, prefix) === AUTHORIZED_SHOPS_PATH;
        if (shopless && q.shop_cipher !== undefined) throw new TtError(200, TT_CODE.COMMON_REFUSAL, MSG.badShopCipher);
        if (!shopless && !q.shop_cipher) throw new TtError(400, TT_CODE.MISSING_SHOP_CIPHER, MSG.noShopCipher);
        // The token was issued to one shop: another shop's cipher (or a made-up one) is refused.
        if (!shopless && q.shop_cipher !== info.shop.shopCipher) throw new TtError(200, TT_CODE.COMMON_REFUSAL, MSG.badShopCipher);
        if (sim.limits.latencyMs > sim.limits.gatewayTimeoutMs) throw new TtError(200, TT_CODE.REQUEST_TIMEOUT, MSG.timeout);
        if (!sim.tryConsumeQuota(1)) throw new TtError(429, TT_CODE.TOO_MANY_REQUESTS, 'Daily API call quota of this app for this shop is used up');
        scopesOf.set(req.raw, info.scopes);
        shopOf.set(req.raw, info.shop);
      });

      const requireScope = (req: FastifyRequest, scope: string): void => {
        if (!(scopesOf.get(req.raw) ?? []).includes(scope)) {
          throw new TtError(200, TT_CODE.SCOPE_NOT_GRANTED, `Access denied: the authorisation does not include the scope ${scope}`);
        }
      };

      // Get Authorized Shops: the shops this access token may act for (with each shop's cipher).
      api.get(AUTHORIZED_SHOPS_PATH, async (req) => {
        const shop = shopOf.get(req.raw)!;
        return envelope(0, 'Success', { shops: [{ id: shop.shopId, name: `Sim shop ${shop.shopId}`, region: 'GB', seller_type: 'CROSS_BORDER', cipher: shop.shopCipher, code: `GBSIM${shop.shopId.slice(-4)}` }] });
      });

      api.post('/affiliate_seller/202405/products/:product_id/promotion_link/generate', async (req) => {
        requireScope(req, SCOPE.affiliateWrite);
        const { product_id: productId } = req.params as { product_id: string };
        if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(productId)) throw new TtError(400, TT_CODE.INVALID_PARAM, 'Invalid product_id');
        // Our model (TikTok does not document its answer for a product the shop has not listed yet).
        if (state.products !== undefined && !state.products.has(productId)) {
          throw new TtError(200, TT_CODE.COMMON_REFUSAL, `The product_id ${productId} is not a product of this shop open to affiliate promotion`);
        }
        let link = state.links.get(productId);
        if (!link) {
          link = `https://affiliate.tiktok.com/api/v1/share/${randomId(9).replace(/[-_]/g, 'A')}`;
          state.links.set(productId, link);
        }
        sim.recordEffect({ type: 'product.pinned', externalId: state.currentRoomOf(shopOf.get(req.raw)?.shopId ?? '') ?? '', productId });
        return envelope(0, 'Success', { product_promotion_link: link });
      });

      api.post('/affiliate_seller/202410/orders/search', async (req) => {
        requireScope(req, SCOPE.affiliateRead);
        const q = queryOf(req);
        const pageSize = Number(q.page_size);
        if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) throw new TtError(400, TT_CODE.INVALID_PARAM, 'page_size must be an integer from 1 to 100');
        const offset = decodeToken(q.page_token);
        const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
        const ge = body.create_time_ge;
        const lt = body.create_time_lt;
        for (const [k, v] of [['create_time_ge', ge], ['create_time_lt', lt]] as const) {
          if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v))) throw new TtError(400, TT_CODE.INVALID_PARAM, `${k} must be a unix timestamp`);
        }
        const from = typeof ge === 'number' ? ge : 0;
        const to = typeof lt === 'number' ? lt : Math.floor(Date.now() / 1000);
        if (to - from > SEARCH_RANGE_MAX_S && typeof ge === 'number') throw new TtError(400, TT_CODE.INVALID_PARAM, 'The time range cannot exceed 3 months');
        const all = ordersOf(req)
          .filter((o) => unixS(o.createdAt) >= from && unixS(o.createdAt) < to)
          .sort((a, b) => unixS(a.createdAt) - unixS(b.createdAt) || a.orderId.localeCompare(b.orderId, 'en', { numeric: true }));
        const page = all.slice(offset, offset + pageSize).map(affiliateOrder);
        const next = offset + pageSize < all.length ? encodeToken(offset + pageSize) : undefined;
        return envelope(0, 'Success', { orders: page, total_count: all.length, ...(next ? { next_page_token: next } : {}) });
      });

      api.get('/order/202309/orders', async (req) => {
        requireScope(req, SCOPE.orderInfo);
        const ids = (queryOf(req).ids ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (ids.length === 0 || ids.length > 50) throw new TtError(400, TT_CODE.INVALID_PARAM, 'ids must list 1 to 50 order ids');
        const mine = new Map(ordersOf(req).map((o) => [o.orderId, o]));
        const orders = ids.map((id) => mine.get(id)).filter((o): o is SimOrder => o !== undefined).map(orderDetail);
        return envelope(0, 'Success', { orders });
      });
    });
  }

  /** Partner Center: register an app; a shop authorises an app (its cipher and refresh token). */
  async function control(app: FastifyInstance): Promise<void> {
    registerRevocations(app, state.revoked);
    app.post('/apps', async (req, reply) => {
      const body = parseControlBody(AppBody, req.body, 'expected {appKey, appSecret}');
      state.apps.set(body.appKey, body.appSecret);
      return reply.code(201).send(body);
    });
    app.post('/accounts', async (req, reply) => {
      const body = parseControlBody(ShopBody, req.body, 'expected {appKey?, limited?}');
      const appKey = body.appKey ?? SIM_ACCOUNTS.tiktok.apps[0]!.appKey;
      const appSecret = state.apps.get(appKey);
      if (appSecret === undefined) throw new SimProblem(404, 'Unknown app', `no TikTok app ${appKey}: POST /_sim/tiktok/apps first`);
      const shop = state.newShop(appKey, body.limited ? { limited: true } : {});
      return reply.code(201).send({ ...shop, credentials: { appKey, appSecret, refreshToken: shop.refreshToken, shopCipher: shop.shopCipher } });
    });
    // The products the seller listed for affiliates (a listing made during a show: the next link lands).
    app.put('/products', async (req) => {
      const body = parseControlBody(ProductsBody, req.body, 'expected {productIds: string[]}');
      state.products = new Set(body.productIds);
      return { productIds: body.productIds };
    });
  }

  return {
    platform: 'tiktok',
    sim,
    plugin,
    control,
    createShowByHand(title: string, account?: string): string {
      // `account`: a shop id, or a shop's cipher (what a target knows of a shop registered on first use).
      const shopId = account === undefined ? UNCLAIMED : (state.shops.find((s) => s.shopCipher === account)?.shopId ?? account);
      if (shopId !== UNCLAIMED && !state.shopById(shopId)) throw new SimProblem(404, 'Unknown account', `no TikTok shop ${shopId}`);
      const room: TtRoom = { id: newRoomId(), title, startedAt: new Date().toISOString(), shopId };
      state.rooms.set(room.id, room);
      sim.recordEffect({ type: 'show.created', externalId: room.id, title });
      return room.id;
    },
    showExists: (externalId) => state.rooms.has(externalId),
    checkOrder(input) {
      const quantity = input.quantity ?? 1;
      if (input.total.amount % quantity !== 0) throw new SimProblem(422, 'Invalid order', `a TikTok sku has one unit price: a total of ${input.total.amount} is not ${quantity} units of one price`);
    },
    async onOrderCreated(order: SimOrder) {
      await sendWebhook(1, order, { order_id: order.orderId, order_status: 'AWAITING_SHIPMENT', is_on_hold_order: false, update_time: Math.floor(Date.now() / 1000) });
    },
    async onOrderRefunded(order: SimOrder, refund: SimRefund) {
      await sendWebhook(12, order, {
        order_id: order.orderId,
        return_id: refund.refundId,
        return_status: 'RETURN_OR_REFUND_REQUEST_COMPLETE',
        return_type: 'REFUND',
        update_time: Math.floor(Date.now() / 1000),
      });
    },
  };
}
