/**
 * TikTok Shop. What the public Open API can and cannot do for a live-shopping mirror:
 * - LIVE rooms cannot be created, edited, started or ended by API: the creator goes live in the TikTok
 *   app with an RTMP key. The mirror is `action_required` until an operator links the room id
 *   (capabilities.createShow = 'operator_link', lifecycle = false, ingest = false).
 * - No API tells whether a LIVE room exists, so attachShow() only checks that the id looks like a room
 *   id (or a live URL carrying `room_id`) and builds the watch URL when the creator's @username is known.
 * - Nothing puts a product on screen in someone else's LIVE either. The nearest thing is the affiliate
 *   promotion link (`POST /affiliate_seller/202405/products/{id}/promotion_link/generate`): it makes sure
 *   the product is promotable and that TikTok tracks commission for it; its URL is the PinResult.ref.
 *   Viewers on TikTok buy in the app, so attribution comes from the affiliate order report naming the
 *   LIVE room (content_type LIVE, content_id = room id), not from our tracked link; the tracked link
 *   (`{PUBLIC_BASE_URL}/l/...`) stays what we hand out elsewhere and it redirects to the product page.
 *   There is nothing to take back, so unpin is a no-op (capabilities.unpin = false).
 * - Orders: webhooks say only "order X changed" (no amounts, no room), so handleWebhook looks the
 *   order up (Get Order Detail for its creation time, then the affiliate order search around it); the
 *   affiliate order search is the report listOrders() pages through for reconciliation.
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import { UNIX_SECONDS_MESSAGE, unixSecondsMs } from '../../lib/timestamp.js';
import { PLATFORM_ORDER_ID_MAX_LENGTH } from '../../lib/ids.js';
import type { Money } from '../../domain/money.js';
import { decimalToMinor } from '../decimal-amount.js';
import { patiently, reportWaitBudget, REPORT_PAGE_WAIT_BUDGET_MS } from '../report-wait.js';
import { collectPages, pagedOrderReport, type AdapterContext, type AdapterFactory, type Capabilities, type PlatformOrder, type RemoteShow, type TargetAdapter } from '../target.adapter.js';
import { ActionRequiredError, PermanentError, productPathSegment, WebhookAuthError } from '../target.errors.js';
import { adviceTarget, credentialsPatch } from '../credentials-advice.js';
import { orderDigest, OncePerReport, quotedId } from '../report-order.js';
import { CursorTrail } from '../cursor-trail.js';
import { createTiktokClient, CREDENTIAL_FIELDS } from './tiktok.client.js';
import { AffiliateOrderPageSchema, OrderDetailSchema, PromotionLinkSchema, WebhookBodySchema, type AffiliateOrder, type AffiliateSku, type Price } from './tiktok.schemas.js';
import { verifyWebhookSignature } from './tiktok.sign.js';

export const TIKTOK_CAPABILITIES: Capabilities = {
  createShow: 'operator_link',
  pin: 'affiliate_link',
  unpin: false,
  lifecycle: false,
  ingest: false,
  orderWebhooks: true,
  orderReport: true,
};

export const TIKTOK_PATHS = {
  promotionLink: (productId: string): string => `/affiliate_seller/202405/products/${productPathSegment(productId, 'TikTok Shop')}/promotion_link/generate`,
  affiliateOrders: '/affiliate_seller/202410/orders/search',
  orderDetail: '/order/202309/orders',
  authorizedShops: '/authorization/202309/shops',
} as const;

/** Scopes as Partner Center names them (quoted back to the operator on 105005). */
export const TIKTOK_SCOPES = {
  affiliateWrite: 'seller.affiliate_collaboration.write',
  affiliateRead: 'seller.affiliate_collaboration.read',
  orderInfo: 'seller.order.info',
} as const;

/** What a mirror calls: promotion links (pins), the affiliate order report, order detail (webhooks). */
const REQUIRED_SCOPES: readonly string[] = [TIKTOK_SCOPES.affiliateWrite, TIKTOK_SCOPES.affiliateRead, TIKTOK_SCOPES.orderInfo];

/** Webhook topics that change an order: ORDER_STATUS_CHANGE, CANCELLATION_STATUS_CHANGE, RETURN_STATUS_CHANGE. */
export const ORDER_WEBHOOK_TYPES: ReadonlySet<number> = new Set([1, 11, 12]);

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGES = 1000;
/** The affiliate order search accepts at most 3 months per query. */
const MAX_WINDOW_S = 89 * 86_400;
const ROOM_ID = /^\d{6,32}$/;

/** A numeric room id, or a TikTok live URL carrying `room_id`; undefined otherwise. */
export function parseRoomId(input: string): string | undefined {
  const t = input.trim();
  if (ROOM_ID.test(t)) return t;
  try {
    const room = new URL(t).searchParams.get('room_id');
    if (room && ROOM_ID.test(room)) return room;
  } catch {
    // not a URL
  }
  return undefined;
}

/**
 * A price in minor units; undefined when there is none. A price that is there but is not an exact
 * decimal in its currency's minor unit ("1e3", "1.235" USD, past 2^53) fails the order loudly: leaving
 * its line out (as before) reported a smaller total than TikTok's, and rounding it another amount.
 */
function toMinor(price: Price | undefined, orderId: string, field: 'price' | 'commission'): Money | undefined {
  if (!price) return undefined;
  const amount = decimalToMinor(price.amount, price.currency);
  // The field is named: a commission of "1e3" made the order invalid with a detail that read as its price.
  if (amount === undefined) throw new PermanentError(`malformed response from TikTok Shop: order ${quotedId(orderId)} has a sku ${field} of "${price.amount.slice(0, 64)}", not a decimal in ${price.currency.slice(0, 8)} minor units`, 'malformed_response');
  return { amount, currency: price.currency };
}

/** a + b when both and the sum are safe integers; a PermanentError (malformed answer) otherwise. */
function exactSum(orderId: string, what: string, a: number, b: number): number {
  const s = a + b;
  if (Number.isSafeInteger(a) && Number.isSafeInteger(b) && Number.isSafeInteger(s)) return s;
  throw new PermanentError(`malformed response from TikTok Shop: the ${what} of order ${quotedId(orderId)} passes ${Number.MAX_SAFE_INTEGER} minor units`, 'malformed_response');
}

/**
 * Units of a sku TikTok took back. The affiliate report counts them twice over, `refunded_quantity`
 * and `returned_quantity`, and does not say whether a unit returned and refunded is in both: the
 * larger one is taken (a unit is never taken back twice), capped by lineShare at the sku's quantity.
 * Before, `returned_quantity` was not read: a return TikTok counted there only reversed nothing.
 */
export function unitsTakenBack(s: Pick<AffiliateSku, 'refunded_quantity' | 'returned_quantity'>): number {
  return Math.max(s.refunded_quantity ?? 0, s.returned_quantity ?? 0);
}

/**
 * The amount of `units` of a sku line of `quantity` units worth `line` minor units in all:
 * round-half-up(line × units / quantity), in exact integers (no double is rounded on the way), units
 * capped at the quantity. Never negative, never above the line, and growing with units, so the
 * increments of a cumulative count add up to the amount of the last count. For TikTok's lines
 * (price × quantity) it is price × units exactly; the rounding is for a line that does not divide by
 * its quantity.
 */
export function lineShare(line: number, quantity: number, units: number): number {
  if (line <= 0 || quantity <= 0 || units <= 0) return 0;
  const q = BigInt(quantity);
  const u = BigInt(Math.min(units, quantity));
  return Number((2n * BigInt(line) * u + q) / (2n * q));
}

/**
 * One affiliate order → our normalised order; undefined (and a warning) when it carries no prices.
 * Amounts are exact or the order is refused (PermanentError `malformed_response`). Pure but for the log.
 * A sku line of quantity 0 sold nothing: it is no line of the order (neither its amount, its currency
 * nor its product), and an order of such lines alone is no sale, skipped as one without prices is (the
 * way Whatnot's unpaid orders are not reported): it was healed into the ledger as an order of 0.00,
 * counted among the show's orders.
 */
export function toPlatformOrder(o: AffiliateOrder, log: Pick<Logger, 'warn'>): PlatformOrder | undefined {
  const priced = o.skus.filter((s) => s.quantity !== 0 && toMinor(s.price, o.id, 'price') !== undefined);
  const currency = priced[0]?.price?.currency;
  if (!currency) {
    log.warn({ orderId: o.id }, 'tiktok affiliate order without a priced sku line of one unit or more; skipped');
    return undefined;
  }
  const live = o.skus.find((s) => s.content_type === 'LIVE' && s.content_id);
  // Checked by the schema too (UnixSecondsSchema): past year 9999 toISOString threw a RangeError, a 500.
  const createdMs = unixSecondsMs(o.create_time);
  if (createdMs === undefined) throw new PermanentError(`malformed response from TikTok Shop: order ${quotedId(o.id)} has create_time ${String(o.create_time).slice(0, 32)}, not ${UNIX_SECONDS_MESSAGE}`, 'malformed_response');
  const order = {
    orderId: o.id,
    externalShowId: live?.content_id,
    productId: priced[0]?.product_id,
    clickId: undefined, // TikTok checkout carries no click id of ours
    createdAt: new Date(createdMs).toISOString(),
    status: o.status,
  };
  let total = 0;
  let refunded = 0;
  let commission: number | undefined;
  for (const s of priced) {
    const unit = toMinor(s.price, o.id, 'price');
    // One order is in one currency: a sku in another is no line to leave out (as a price that is no
    // decimal is not): the sum of the others was healed into the ledger as the order (10.00 USD for
    // skus of 10.00 USD and 5.00 EUR), an amount TikTok never had. The order fails, as such a price does.
    if (!unit || unit.currency !== currency) {
      throw new PermanentError(`malformed response from TikTok Shop: order ${quotedId(o.id)} has skus in ${currency.slice(0, 8)} and in ${String(unit?.currency).slice(0, 8)}`, 'malformed_response');
    }
    const qty = s.quantity ?? 1;
    const line = unit.amount * qty;
    // No sku line costs less than nothing: the order is not summed past one (10.00 and −3.00 were
    // healed into the ledger as an order of 7.00, an amount TikTok never had), its total is that line,
    // which the ledger refuses (an invalid_order discrepancy, a webhook's 400), as an order of it alone.
    // Exact as a positive line is: price × quantity past 2^53 was a rounded number in the detail.
    if (line < 0) return { ...order, total: { amount: exactSum(o.id, 'total', 0, line), currency }, refunded: { amount: 0, currency }, commission: undefined };
    // Exact or refused: a product or sum past 2^53 minor units would be rounded by a double.
    total = exactSum(o.id, 'total', total, line);
    // The report has no refunded amount, only units: their share of the line (a cumulative figure:
    // the ledger applies only its growth, so a re-read adds nothing and more units add the difference).
    refunded = exactSum(o.id, 'refunded', refunded, lineShare(line, qty, unitsTakenBack(s)));
    const c = toMinor(s.actual_paid_commission ?? s.estimated_paid_commission, o.id, 'commission');
    if (c && c.currency === currency) commission = exactSum(o.id, 'commission', commission ?? 0, c.amount);
  }
  return { ...order, total: { amount: total, currency }, refunded: { amount: refunded, currency }, commission: commission === undefined ? undefined : { amount: commission, currency } };
}

/**
 * One order of the affiliate order report: toPlatformOrder's order, or, when TikTok names it in a form
 * that cannot be read (sku lines in two currencies, a price that is no decimal in its currency, a sum
 * past 2^53 minor units), that order marked `unreadable`: reconciliation reports it (invalid_order)
 * and never heals it. It failed the target's whole report (`malformed_response`) before, and one odd
 * order stopped the reconciliation of every other order of the shop. A webhook's order still fails
 * (400: nothing stored), as it did.
 */
export function reportOrder(o: AffiliateOrder, log: Pick<Logger, 'warn'>): PlatformOrder | undefined {
  try {
    return toPlatformOrder(o, log);
  } catch (err) {
    if (!(err instanceof PermanentError) || err.reason !== 'malformed_response') throw err;
    const createdMs = unixSecondsMs(o.create_time);
    const currency = o.skus.find((s) => s.price)?.price?.currency ?? 'XXX';
    log.warn({ orderId: o.id, err: err.message }, 'tiktok affiliate order cannot be read; reported as an invalid order');
    return {
      orderId: o.id,
      externalShowId: o.skus.find((s) => s.content_type === 'LIVE' && s.content_id)?.content_id,
      productId: undefined,
      clickId: undefined,
      createdAt: createdMs === undefined ? '' : new Date(createdMs).toISOString(),
      total: { amount: 0, currency },
      refunded: { amount: 0, currency },
      status: o.status,
      commission: undefined,
      unreadable: err.message.replace(/^malformed response from TikTok Shop: /, ''),
    };
  }
}

export interface TiktokAdapterOptions {
  now?: () => number;
  pageSize?: number;
}

export function buildTiktokAdapter(ctx: AdapterContext, opts: TiktokAdapterOptions = {}): TargetAdapter {
  const now = opts.now ?? Date.now;
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  const client = createTiktokClient(ctx, now);
  const log = ctx.log.child({ module: 'tiktok.adapter', targetId: ctx.target.id });


  /** Every affiliate order created in [geS, ltS) (unix seconds, ≤ 3 months), all pages. */
  async function searchAffiliateOrders(geS: number, ltS: number): Promise<AffiliateOrder[]> {
    return collectPages(affiliatePages(geS, ltS));
  }

  /**
   * The affiliate order search of [geS, ltS), page by page as TikTok returns them. `patient` (the order
   * report): a full window is waited out per page; a webhook's lookup throws it as any other call.
   */
  async function* affiliatePages(geS: number, ltS: number, patient = false, signal?: AbortSignal, budget = reportWaitBudget()): AsyncGenerator<AffiliateOrder[]> {
    const trail = new CursorTrail('TikTok Shop affiliate order search');
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const at = token;
      const call = (): Promise<z.infer<typeof AffiliateOrderPageSchema>> =>
        client.call({
          method: 'POST',
          path: TIKTOK_PATHS.affiliateOrders,
          query: { page_size: pageSize, page_token: at },
          body: { create_time_ge: geS, create_time_lt: ltS },
          scope: TIKTOK_SCOPES.affiliateRead,
          what: 'read the affiliate order report',
          schema: AffiliateOrderPageSchema,
        });
      // A full window (ours or TikTok's 429) is waited out, not a failed report (report-wait.ts).
      const data = patient ? await patiently(Date.now() + REPORT_PAGE_WAIT_BUDGET_MS, call, signal, budget) : await call();
      yield data.orders;
      token = trail.next(token, data.next_page_token);
      if (token === undefined) return;
    }
    throw new PermanentError(`TikTok Shop affiliate order search did not end after ${MAX_PAGES} pages`, 'too_many_pages');
  }

  /**
   * Lookups by order id: deliveries of one order that arrive together (TikTok's duplicates, a replayed
   * webhook — its signature carries no time) share lookups. Each made its own two calls: a burst of 100
   * spent the shop's whole window (50 calls/s) on the first call of each, and every one of them then
   * found the window full for its second: 100 × 503, nothing stored, the window gone.
   * A delivery shares only a lookup that starts after it arrived: one that joined the lookup already
   * running got the order as it was before that delivery (a cancellation arriving during the lookup of
   * the order's status change was stored as not cancelled, and answered 200: TikTok does not resend).
   * So `running` is the lookup under way, and `queued` the next one, shared by every delivery that
   * arrived while `running` ran and started once it settled (whatever its outcome): at most two
   * lookups per burst. The entry goes when a lookup settles with none queued.
   */
  interface OrderLookups {
    running: Promise<void>;
    queued?: Promise<PlatformOrder | undefined> | undefined;
  }
  const lookups = new Map<string, OrderLookups>();
  const ignore = (): void => undefined;
  function lookUpOrder(orderId: string): Promise<PlatformOrder | undefined> {
    const entry = lookups.get(orderId);
    if (!entry) {
      const fresh: OrderLookups = { running: Promise.resolve() };
      lookups.set(orderId, fresh);
      return startLookup(orderId, fresh);
    }
    entry.queued ??= entry.running.then(() => startLookup(orderId, entry));
    return entry.queued;
  }
  function startLookup(orderId: string, entry: OrderLookups): Promise<PlatformOrder | undefined> {
    entry.queued = undefined; // a delivery arriving from now on waits for the lookup after this one
    const p = readOrder(orderId);
    entry.running = p.then(ignore, ignore).then(() => {
      if (entry.queued === undefined && lookups.get(orderId) === entry) lookups.delete(orderId);
    });
    return p;
  }

  /** The webhook names an order only: find when it was created, then its affiliate record. */
  async function readOrder(orderId: string): Promise<PlatformOrder | undefined> {
    const detail = await client.call({
      method: 'GET',
      path: TIKTOK_PATHS.orderDetail,
      query: { ids: orderId },
      scope: TIKTOK_SCOPES.orderInfo,
      what: `read order ${orderId}`,
      schema: OrderDetailSchema,
    });
    const order = detail.orders.find((o) => o.id === orderId);
    if (!order) {
      log.info({ orderId }, 'tiktok order from a webhook not found by Get Order Detail; skipped');
      return undefined;
    }
    const named = (await searchAffiliateOrders(order.create_time, order.create_time + 1)).filter((o) => o.id === orderId);
    const affiliate = named[0];
    if (!affiliate) {
      // Not an affiliate (LIVE/video) order, or TikTok has not reported it yet: reconciliation
      // (listOrders) picks it up once the affiliate report has it.
      log.info({ orderId }, 'tiktok order has no affiliate record (yet); left to reconciliation');
      return undefined;
    }
    // Named twice with different data (as orderPages judges it): neither is known to be TikTok's, so
    // nothing is stored (400); the first was stored silently. Reconciliation reports it (invalid_order).
    // A copy without a priced sku line of one unit or more is no order, as the report skips it: beside a
    // priced one, that one is the order (it was a 400 here while reconciliation healed it).
    const reads = named.map((o) => toPlatformOrder(o, log)).filter((p): p is PlatformOrder => p !== undefined);
    if (new Set(reads.map(orderDigest)).size > 1) throw new PermanentError(`malformed response from TikTok Shop: order ${quotedId(orderId)} twice, with different data`, 'malformed_response');
    return reads[0];
  }

  /**
   * Get Authorized Shops (signed with the app secret): the shop of the credentials' shop cipher among
   * the shops this authorisation covers, with its id (the shop's own id: two apps, or two grants, of one
   * shop name the same one).
   */
  async function authorizedShop(what: string): Promise<{ id?: string | undefined; cipher: string }> {
    const data = await client.call({
      method: 'GET',
      path: TIKTOK_PATHS.authorizedShops,
      shopless: true,
      scope: 'seller.authorization.info',
      what,
      // An id that is not a non-empty string reads as unknown, for that shop only: one odd entry failed
      // the whole check (which did not read ids before the account id was learned from it).
      schema: z.object({ shops: z.array(z.object({ id: z.string().min(1).optional().catch(undefined), cipher: z.string() }).passthrough()).default([]) }),
    });
    const cipher = client.credentials.shopCipher;
    const shop = data.shops.find((s) => s.cipher === cipher);
    if (!shop) {
      throw new PermanentError(
        `this authorisation does not cover the shop with shopCipher ${cipher} (it covers ${data.shops.length} other shop(s)): check shopCipher and store the right one with ${credentialsPatch(adviceTarget(ctx.target, CREDENTIAL_FIELDS), ['shopCipher'])}`,
        'shop_not_authorized',
      );
    }
    return shop;
  }

  const adapter: TargetAdapter = {
    platform: 'tiktok',
    capabilities: TIKTOK_CAPABILITIES,

    async createShow() {
      throw new ActionRequiredError(
        'TikTok LIVE rooms are started in the TikTok app, not by API: go live from the shop\'s creator account, then link the room id with PUT /v1/partners/{partnerId}/shows/{showId}/mirrors/{targetId} {"externalId": "<room id>"}',
        'operator_link',
      );
    },

    async accountId() {
      const shop = await authorizedShop('read the shop the credentials act for (list the authorised shops)');
      if (shop.id === undefined) throw new PermanentError('Get Authorized Shops named no id for the shop', 'malformed_response');
      return shop.id;
    },

    async verifyCredentials() {
      // The refresh token first, even when an access token was given: that one works for a week, and a
      // dead refresh token behind it used to pass the check and stop the target when it expired.
      await client.refreshNow();
      // Get Authorized Shops: signed with the app secret, with the token just refreshed; the shop
      // cipher must be one of the shops this authorisation covers.
      const shop = await authorizedShop('check the credentials (list the authorised shops)');
      // Get Authorized Shops needs none of the scopes a mirror uses: a shop that authorised the app
      // without them passed this check and failed with 105005 at the first pin or report. The token
      // refresh names the granted scopes; when it does not (or no refresh happened), no verdict.
      const granted = client.grantedScopes();
      const missing = granted ? REQUIRED_SCOPES.filter((s) => !granted.includes(s)) : [];
      if (missing.length > 0) {
        throw new PermanentError(
          `the shop authorised the app without ${missing.join(', ')} (needed for promotion links, the affiliate order report and order lookups): ` +
            `enable the scopes for the app in Partner Center, have the seller re-authorise it and store the new refresh token with ` +
            credentialsPatch(adviceTarget(ctx.target, CREDENTIAL_FIELDS), ['refreshToken'], ['accessToken']),
          'missing_scopes',
        );
      }
      return { accountId: shop.id };
    },

    async attachShow(externalId): Promise<RemoteShow> {
      const c = client.credentials;
      const roomId = parseRoomId(externalId);
      if (!roomId) {
        throw new PermanentError(
          `"${externalId.slice(0, 100)}" is not a TikTok LIVE room id: link the numeric room id (or a live URL with ?room_id=...)`,
          'invalid_room_id',
        );
      }
      // No public API can confirm that the room exists or is live: the operator's link is trusted.
      const user = c.creatorUsername?.replace(/^@/, '');
      return { externalId: roomId, url: user ? `https://www.tiktok.com/@${user}/live` : undefined, ingest: undefined, data: {} };
    },

    async updateShow() {
      // A LIVE room's title is set in the app when going live; no API edits it.
    },
    async startShow() {
      // lifecycle = false: the creator goes live in the TikTok app.
    },
    async endShow() {
      // lifecycle = false: the creator ends the LIVE in the app.
    },
    async cancelShow() {
      // Nothing was created on TikTok by us.
    },

    async pin(_remote, pin, op) {
      // One request (a try TikTok refused for its token, then the retry after a refresh, is one): a step
      // refused (429, our limiter, 401) or never sent (the token refresh before it failed) is forgotten,
      // so the next attempt sends it at once instead of waiting out the settle time first. A product id
      // that is no path segment ('', '.', '..') is refused before the step (PinRefusedError: nothing sent).
      const path = TIKTOK_PATHS.promotionLink(pin.platformProductId);
      const result = await op.once(
        'promotion_link',
        async () => {
          const data = await client.call({
            method: 'POST',
            path,
            scope: TIKTOK_SCOPES.affiliateWrite,
            what: `generate a promotion link for product ${pin.platformProductId}`,
            // A refusal of the product id (36009001, or a 36009004 naming it) is the pin's alone: the
            // partner's sku need not be a TikTok product id.
            item: 'product_id',
            schema: PromotionLinkSchema,
          });
          return { link: data.product_promotion_link };
        },
        undefined,
        { singleRequest: true },
      );
      return { ref: result.link };
    },

    async unpin() {
      // A promotion link cannot be withdrawn and nothing was put on screen: nothing to undo.
    },

    async handleWebhook(headers, raw) {
      const c = client.credentials;
      if (!verifyWebhookSignature(headers['authorization'], c.appKey, c.appSecret, raw)) {
        throw new WebhookAuthError('TikTok Shop webhook: the Authorization signature does not verify for this target');
      }
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new PermanentError('TikTok Shop webhook body is not JSON', 'malformed_webhook');
      }
      const body = WebhookBodySchema.safeParse(json);
      if (!body.success) throw new PermanentError('TikTok Shop webhook body does not have the documented shape', 'malformed_webhook');
      const orderId = body.data.data?.order_id;
      if (!ORDER_WEBHOOK_TYPES.has(body.data.type) || !orderId) {
        log.debug({ type: body.data.type }, 'tiktok webhook without an order change; ignored');
        return [];
      }
      // No order the ledger stores has such an id: refused (400) before it is sent to TikTok in a query
      // (and logged), a URL as long as the webhook body; the route refuses it the same way once read.
      if (orderId.length > PLATFORM_ORDER_ID_MAX_LENGTH) throw new PermanentError(`TikTok Shop webhook names an order id of ${orderId.length} characters (at most ${PLATFORM_ORDER_ID_MAX_LENGTH})`, 'malformed_webhook');
      const order = await lookUpOrder(orderId);
      return order ? [order] : [];
    },

    ...pagedOrderReport(orderPages),
  };

  /**
   * The affiliate order report of [from, to), page by page, each order once (OncePerReport, as Whatnot's
   * and Bambuser's: an id TikTok names twice with the same data is one order, with other data an
   * invalid order, or a `repeat` note on a later page, never healed): windows of at most MAX_WINDOW_S,
   * each searched page by page.
   */
  async function* orderPages(from: Date, to: Date, signal?: AbortSignal): AsyncGenerator<PlatformOrder[]> {
    const fromMs = from.getTime();
    const toMs = to.getTime();
    // [from, to) in whole seconds: TikTok's create_time is a unix second.
    let ge = Math.ceil(fromMs / 1000);
    const lt = Math.ceil(toMs / 1000);
    const once = new OncePerReport();
    const budget = reportWaitBudget(); // one for the whole report, all its windows
    while (ge < lt) {
      const end = Math.min(lt, ge + MAX_WINDOW_S);
      for await (const page of affiliatePages(ge, end, true, signal, budget)) {
        const out: PlatformOrder[] = [];
        for (const o of page) {
          const at = o.create_time * 1000;
          if (at < fromMs || at >= toMs) continue;
          const mapped = reportOrder(o, log);
          if (!mapped) continue;
          if (once.add(out, mapped) === 'twice') log.warn({ orderId: o.id }, 'tiktok affiliate order reported twice with different data; reported as an invalid order');
        }
        if (out.length > 0) yield out;
      }
      ge = end;
    }
  }
  return adapter;
}

export const createTiktokAdapter: AdapterFactory = (ctx) => buildTiktokAdapter(ctx);
