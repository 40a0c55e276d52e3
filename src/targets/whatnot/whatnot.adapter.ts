/**
 * Whatnot (Seller API v2). Shows are read-only by API (scheduled, live, past, analytics): the seller
 * schedules and runs them in the Whatnot app, so the mirror is `action_required` until an operator
 * links the show id, and attachShow() reads the show to check it exists and is not over.
 * The nearest pin equivalent is merchandising: `POST /merchandising/products/{product_id}` with
 * `{"shows": {"show_ids": [showId], "strategy": "ADD"}}` puts the product in the show's lineup, and
 * `"REMOVE"` takes it out again (unpin). Both are idempotent set operations (adding a product that is
 * already in the lineup changes nothing), so a retry can never duplicate a pin: no intent is needed.
 * Nothing in the API puts an item on screen during the live show; the host does that in the app.
 * Orders: `orders.created|updated` webhooks (Standard Webhooks, verified with the target's
 * webhookSecret) carry the order including `show_id`; `GET /orders` is the report for reconciliation.
 * Neither carries line items (the published Order model has none): an order's product is one more
 * call, `GET /orders/{id}/items`, made only for a sale (not for pending or failed orders) — for each
 * sale webhook before it is stored (a webhook whose items cannot be read stores the sale without its
 * product), and in reconciliation only for the orders it adds to the ledger (orderDetails; the report
 * itself is read without it).
 * Only orders Whatnot says were paid count as sales; pending and failed ones are not reported
 * (whatnot.orders.ts). Responses are parsed defensively (whatnot.schemas.ts): the order list's
 * parameters and envelope are not in any public source we could read; the merchandising answer
 * (ProductMerchandising) is only read for a log line.
 */
import { z } from 'zod';
import { PLATFORM_ORDER_ID_MAX_LENGTH } from '../../lib/ids.js';
import { verifyWebhook, SignatureError } from '../../sources/signature.js';
import { patiently, reportWaitBudget, REPORT_PAGE_WAIT_BUDGET_MS, type WaitBudget } from '../report-wait.js';
import { pagedOrderReport, type AdapterContext, type AdapterFactory, type Capabilities, type PlatformOrder, type RemoteShow, type TargetAdapter } from '../target.adapter.js';
import { ActionRequiredError, isTargetError, PermanentError, PinRefusedError, productPathSegment, sendableSegment, ShowOverError, WebhookAuthError } from '../target.errors.js';
import { CursorTrail } from '../cursor-trail.js';
import { OncePerReport, refuseAllUnreadable, reportedIn } from '../report-order.js';
import { adviceTarget, credentialsPatch } from '../credentials-advice.js';
import { createWhatnotClient, CREDENTIAL_FIELDS, CREDENTIAL_KINDS } from './whatnot.client.js';
import { UnknownResourceError } from './whatnot.errors.js';
import { judgeOrder, judgeReportOrder, type OrderVerdict } from './whatnot.orders.js';
import { MerchandisingSchema, OrderItemsPageSchema, OrderPageSchema, OrderSchema, ShowSchema, WebhookBodySchema } from './whatnot.schemas.js';

export const WHATNOT_CAPABILITIES: Capabilities = {
  createShow: 'operator_link',
  pin: 'show_product',
  unpin: true,
  lifecycle: false,
  ingest: false,
  orderWebhooks: true,
  orderReport: true,
};

/** Standard Webhooks' recommended tolerance for webhook-timestamp. */
const WEBHOOK_TOLERANCE_S = 300;
const ORDER_TOPICS: ReadonlySet<string> = new Set(['orders.created', 'orders.updated']);
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGES = 1000;
/** How long an order webhook waits out a full rate-limit window for the order's items (then: no product). */
const WEBHOOK_ITEMS_WAIT_MS = 5_000;
/** Pages of an order's items read looking for a product id (an order has a few items: one page). */
const MAX_ITEM_PAGES = 10;

function showUrl(id: string): string {
  return `https://www.whatnot.com/live/${encodeURIComponent(id)}`;
}

export interface WhatnotAdapterOptions {
  now?: () => number;
  pageSize?: number;
}

export function buildWhatnotAdapter(ctx: AdapterContext, opts: WhatnotAdapterOptions = {}): TargetAdapter {
  const now = opts.now ?? Date.now;
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  const client = createWhatnotClient(ctx, now);
  const log = ctx.log.child({ module: 'whatnot.adapter', targetId: ctx.target.id });
  const redact = ctx.redact ?? ((text: string): string => text);

  /** The order of a verdict (judgeOrder) as a sale, or undefined when Whatnot does not say it was paid. */
  function saleOf(orderId: string, verdict: OrderVerdict): PlatformOrder | undefined {
    if (verdict.kind === 'sale') {
      if (verdict.order.unreadable !== undefined) log.warn({ orderId, problem: verdict.order.unreadable }, 'whatnot order cannot be read; reported as an invalid order');
      return verdict.order;
    }
    if (verdict.documented) log.debug({ orderId, status: verdict.status }, 'whatnot order is not a sale (yet)');
    else log.warn({ orderId, status: verdict.status }, 'whatnot order with an undocumented status; not counted as a sale');
    return undefined;
  }

  /**
   * The order's product: the first of its line items that names one (`GET /orders/{id}/items`; the
   * Order model has none), undefined when none does (or Whatnot answers 404 for them). `patient`: a full window (ours or Whatnot's 429)
   * is waited out as for a report page (report-wait.ts); without it a RateLimitedError is thrown.
   */
  async function productOf(orderId: string, patient?: { signal: AbortSignal | undefined; budget: WaitBudget }): Promise<string | undefined> {
    // '.' and '..' are no path segment: the URL resolves them away, and GET /orders/../items asked
    // Whatnot for another resource (/items) with the seller's token. Such an order has no product we can ask for.
    if (!sendableSegment(orderId)) {
      log.warn({ orderId }, 'whatnot order id cannot be sent as a URL path segment; its items are not read (stored without a product)');
      return undefined;
    }
    // An id longer than any the ledger stores is refused (400, invalid_order) once read: asking Whatnot for
    // its items first sent (and logged) a URL as long as the webhook body, up to 1 MiB, for an order never stored.
    if (orderId.length > PLATFORM_ORDER_ID_MAX_LENGTH) {
      log.warn({ orderIdLength: orderId.length }, 'whatnot order id is longer than any the ledger stores; its items are not read');
      return undefined;
    }
    let cursor: string | undefined;
    for (let page = 0; page < MAX_ITEM_PAGES; page++) {
      const at = cursor;
      const read = (): Promise<z.infer<typeof OrderItemsPageSchema>> =>
        client.call({
          method: 'GET',
          path: `/orders/${encodeURIComponent(orderId)}/items`,
          query: { cursor: at },
          what: `read the items of order ${orderId}`,
          schema: OrderItemsPageSchema,
          // Items Whatnot cannot find, of an order it reported: a sale without a product (kept, not
          // refused: a delivery or a report failing on it every time would never store the sale).
          notFound: { data: [], next_cursor: null },
        });
      const res = patient ? await patiently(Date.now() + REPORT_PAGE_WAIT_BUDGET_MS, read, patient.signal, patient.budget) : await read();
      const named = res.data.find((l) => l.product_id)?.product_id;
      if (named) return named;
      if (!res.next_cursor || res.next_cursor === cursor) return undefined;
      cursor = res.next_cursor;
    }
    return undefined;
  }

  /** Whether the product is in an upcoming or live show after the change, when Whatnot's answer says. */
  async function merchandise(productId: string, showId: string, strategy: 'ADD' | 'REMOVE'): Promise<boolean | undefined> {
    const res = await client.call({
      method: 'POST',
      path: `/merchandising/products/${productPathSegment(productId, 'Whatnot')}`,
      body: { shows: { show_ids: [showId], strategy } },
      what: strategy === 'ADD' ? `add product ${productId} to show ${showId}` : `remove product ${productId} from show ${showId}`,
      // Adding: a refusal of the product id is the pin's alone (the partner's sku is no Whatnot product id).
      ...(strategy === 'ADD' ? { item: 'product_id' } : {}),
      schema: MerchandisingSchema,
    });
    return res.active_in_shows;
  }

  /**
   * The show of a lineup call Whatnot refused (`why`: what it answered, for the read's errors), read:
   * over there (the seller ended or cancelled it in the app), a ShowOverError; else undefined.
   */
  async function overOnWhatnot(showId: string, why: string): Promise<ShowOverError | undefined> {
    const show = await client.call({ method: 'GET', path: `/shows/${encodeURIComponent(showId)}`, what: `read show ${showId} (${why})`, schema: ShowSchema });
    if (show.status !== 'ended' && show.status !== 'cancelled') return undefined;
    return new ShowOverError(
      `the Whatnot show ${show.id}${show.title ? ` ("${show.title}")` : ''} was ${show.status} on Whatnot (by its seller, in the app), and Whatnot no longer changes its lineup`,
      'show-not-editable',
      show.status,
    );
  }

  /** The read's reason after a lineup call's 404 naming no parameter (UnknownResourceError). */
  const unknownProduct = (productId: string): string => `Whatnot answered 404 for product ${productId}: it is not among the seller's listings, or the show is gone`;

  /**
   * The seller behind the token (the Users section of the Seller API: "look up the seller behind the
   * current token"). Path and fields are our assumption (docs/platforms.md): `GET /users/me`, the
   * seller's `id` at the top or in a `data` envelope.
   */
  async function sellerId(): Promise<string> {
    const me = await client.call({
      method: 'GET',
      path: '/users/me',
      what: 'read the seller the credentials act for',
      schema: z.looseObject({ id: z.string().min(1).optional(), data: z.looseObject({ id: z.string().min(1).optional() }).optional() }),
    });
    const id = me.id ?? me.data?.id;
    if (id === undefined) throw new PermanentError('Whatnot named no seller id for the token', 'malformed_response');
    return id;
  }

  const adapter: TargetAdapter = {
    platform: 'whatnot',
    capabilities: WHATNOT_CAPABILITIES,

    async createShow() {
      throw new ActionRequiredError(
        'Whatnot shows are scheduled in the Whatnot app, not by API: schedule the show there, then link its id with PUT /v1/partners/{partnerId}/shows/{showId}/mirrors/{targetId} {"externalId": "<show id>"}',
        'operator_link',
      );
    },

    async verifyCredentials() {
      // The seller's own shows, one of them: the cheapest call the token must be valid for.
      // A JSON object (the page): a 200 of anything else (an HTML page, `ok`: a wrong baseUrl) proves nothing about the token.
      await client.call({ method: 'GET', path: '/shows', query: { limit: 1 }, what: 'check the API token (list one of its shows)', schema: z.looseObject({}) });
      // The seller, for reconciliation's account (two grants of one seller are one account). Best effort:
      // a seller Whatnot does not name here is learned at the next reconciliation, the check stands.
      try {
        return { accountId: await sellerId() };
      } catch {
        return {};
      }
    },

    accountId: sellerId,

    async attachShow(externalId): Promise<RemoteShow> {
      const show = await client.call({
        method: 'GET',
        path: `/shows/${encodeURIComponent(externalId)}`,
        what: `read show ${externalId} (check the id linked to this mirror)`,
        schema: ShowSchema,
      });
      if (show.status === 'cancelled') {
        throw new PermanentError(`the Whatnot show ${show.id}${show.title ? ` ("${show.title}")` : ''} was cancelled on Whatnot: link another show`, 'show_cancelled');
      }
      return { externalId: show.id, url: showUrl(show.id), ingest: undefined, data: { status: show.status } };
    },

    async updateShow() {
      // Shows are read-only in the Seller API: title and schedule are edited in the Whatnot app.
    },
    async startShow() {
      // lifecycle = false: the seller goes live in the Whatnot app.
    },
    async endShow() {
      // lifecycle = false: the seller ends the show in the app.
    },
    async cancelShow() {
      // The show belongs to the seller (made by hand); we never delete it.
    },

    async pin(remote, pin) {
      let inShows: boolean | undefined;
      try {
        inShows = await merchandise(pin.platformProductId, remote.externalId, 'ADD');
      } catch (err) {
        // 409 show-not-editable: the lineup of an ended or cancelled show no longer changes. The seller
        // ended the show in the Whatnot app while the partner's is still live: the show is over there.
        if (isTargetError(err) && err.reason === 'show-not-editable') throw (await overOnWhatnot(remote.externalId, 'Whatnot would not change its lineup')) ?? err;
        // A 404 problem naming no parameter: the path's product (the partner's sku is none of the
        // seller's listings) or the show. The show is read: there and not over, the product is what
        // Whatnot does not know, and that pin alone fails; a show gone fails the read (the mirror's
        // error, as before). A bare 404 (a gateway's, a wrong base URL's) stays the mirror's error.
        // The seller can make that listing during the show: asked again with a back-off (`mendable`).
        if (err instanceof UnknownResourceError) {
          throw (
            (await overOnWhatnot(remote.externalId, unknownProduct(pin.platformProductId))) ??
            new PinRefusedError(`Whatnot has no product ${pin.platformProductId} among the seller's listings (404: ${err.message})`, err.reason, { mendable: true })
          );
        }
        throw err;
      }
      if (inShows === false) {
        // Whatnot applies additions to shows beyond the seller's next upcoming ones in the background.
        log.info({ productId: pin.platformProductId, showId: remote.externalId }, 'whatnot accepted the lineup change; it is applied in the background');
      }
      return { ref: pin.platformProductId };
    },

    async unpin(remote, pin, ref) {
      const productId = ref ?? pin.platformProductId;
      try {
        await merchandise(productId, remote.externalId, 'REMOVE');
      } catch (err) {
        // A 404 problem naming no parameter, as for the ADD: the product is none of the seller's
        // listings (an ADD that 404'd and whose show read then failed, a listing the seller deleted in
        // the app, the old id of a changed sku) or the show is gone. The show is read: there and not
        // over, nothing of ours is in its lineup under that id, and the take-back is done (a REMOVE of
        // what the lineup does not hold changes nothing); over, the mirror is (ShowOverError); a show
        // gone fails the read (the mirror's error). It failed the mirror whatever the show was.
        if (!(err instanceof UnknownResourceError)) throw err;
        const over = await overOnWhatnot(remote.externalId, unknownProduct(productId));
        if (over) throw over;
        log.info({ productId, showId: remote.externalId }, 'whatnot knows no such product of the seller: nothing to take back');
      }
    },

    async handleWebhook(headers, raw) {
      const secret = client.credentials.webhookSecret;
      if (!secret) throw new WebhookAuthError('Whatnot webhooks cannot be verified for this target', `store the webhook's signing secret with ${credentialsPatch(adviceTarget(ctx.target, CREDENTIAL_FIELDS, CREDENTIAL_KINDS), ['webhookSecret'])}`);
      try {
        verifyWebhook(
          { id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], signature: headers['webhook-signature'] },
          raw,
          [secret],
          WEBHOOK_TOLERANCE_S,
          now(),
        );
      } catch (err) {
        if (err instanceof SignatureError) throw new WebhookAuthError(`Whatnot webhook: ${err.message}`);
        throw err;
      }
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new PermanentError('Whatnot webhook body is not JSON', 'malformed_webhook');
      }
      const body = WebhookBodySchema.safeParse(json);
      if (!body.success) throw new PermanentError('Whatnot webhook body does not have the documented shape', 'malformed_webhook');
      if (!ORDER_TOPICS.has(body.data.type)) return [];
      const order = OrderSchema.safeParse(body.data.data);
      if (!order.success) {
        const where = order.error.issues
          .slice(0, 3)
          .map((i) => `data.${i.path.join('.')}: ${i.message}`)
          .join('; ');
        throw new PermanentError(`Whatnot ${body.data.type} webhook carries no readable order (${where})`, 'malformed_webhook');
      }
      const sale = saleOf(order.data.id, judgeOrder(order.data, 'data'));
      if (!sale) return [];
      // A sale's product is one more call, made before the order is stored. A full window (ours or
      // Whatnot's 429) is waited out for a few seconds; if the items still cannot be read the sale is
      // stored without its product rather than refused: the order, its money and its show are what
      // attribution needs (CONTRACT §5.2), and a refused delivery would leave the sale out of the
      // ledger until a reconciliation run (the product is then missing for that order: a re-run does
      // not add an order the ledger holds).
      const productId = await productOf(sale.orderId, { signal: undefined, budget: reportWaitBudget(WEBHOOK_ITEMS_WAIT_MS) }).catch((err: unknown) => {
        // The platform's text may quote the token (its own log line: not redacted by openAdapter's wrapper).
        log.warn({ orderId: sale.orderId, err: redact(err instanceof Error ? err.message : String(err)) }, 'whatnot order items unreadable; the sale is stored without its product');
        return undefined;
      });
      return [{ ...sale, productId }];
    },

    ...pagedOrderReport(orderPages),

    async orderDetails(orders, signal) {
      // One call per order, one after the other, through the limiter; the waits share one budget.
      const patient = { signal, budget: reportWaitBudget() };
      const out: PlatformOrder[] = [];
      for (const o of orders) out.push(o.productId !== undefined ? o : { ...o, productId: await productOf(o.orderId, patient) });
      return out;
    },
  };

  /**
   * GET /orders page by page; each order once, in [from, to) (OncePerReport, as TikTok's: an id the list
   * names twice with the same data is one order, with other data an invalid order, or a `repeat` note
   * on a later page, never healed; the first read was kept silently).
   * Without products (no line items in the list): orderDetails reads them for the orders that need one.
   * An order that cannot be read is handed on marked `unreadable` (judgeReportOrder); one whose
   * created_at cannot be read is in every period whose list names it (reportedIn).
   */
  async function* orderPages(from: Date, to: Date, signal?: AbortSignal): AsyncGenerator<PlatformOrder[]> {
    const fromMs = from.getTime();
    const toMs = to.getTime();
    const once = new OncePerReport();
    const budget = reportWaitBudget();
    const trail = new CursorTrail('Whatnot order list');
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const at = cursor;
      // A full window (ours or Whatnot's 429) is waited out, not a failed report (report-wait.ts).
      const res = await patiently(Date.now() + REPORT_PAGE_WAIT_BUDGET_MS, () =>
        client.call({
          method: 'GET',
          path: '/orders',
          query: { created_at_gte: from.toISOString(), created_at_lt: to.toISOString(), limit: pageSize, cursor: at },
          what: 'list orders',
          schema: OrderPageSchema,
        }),
        signal,
        budget,
      );
      const out: PlatformOrder[] = [];
      const verdicts = res.data.map((o, i) => judgeReportOrder(o, `data.${i}`));
      // A page of unreadable orders alone is a shape we do not know, not odd orders (report-order.ts).
      refuseAllUnreadable('Whatnot GET /orders', verdicts.map((v) => (v.kind === 'sale' ? v.order : undefined)));
      for (const [i, o] of res.data.entries()) {
        // One order that cannot be read is that order's invalid_order, not the report's (report-order.ts).
        const mapped = saleOf(o.unreadable ? o.unreadable.orderId : o.order.id, verdicts[i]!);
        if (!mapped || !reportedIn(mapped, fromMs, toMs)) continue;
        if (once.add(out, mapped) === 'twice') log.warn({ orderId: mapped.orderId }, 'whatnot order listed twice with different data; reported as an invalid order');
      }
      if (out.length > 0) yield out;
      cursor = trail.next(cursor, res.next_cursor);
      if (cursor === undefined) return;
    }
    throw new PermanentError(`Whatnot order list did not end after ${MAX_PAGES} pages`, 'too_many_pages');
  }
  return adapter;
}

export const createWhatnotAdapter: AdapterFactory = (ctx) => buildWhatnotAdapter(ctx);
