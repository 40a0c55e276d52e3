/**
 * Bambuser Live Video Shopping (REST API for Live, v1): shows are created by API; a pin becomes a
 * product highlight; the show's live state follows the host's broadcast.
 *
 * - createShow: `POST /v1/shows`. Bambuser shows have no metadata or external-reference field, so the
 *   creation marker goes on the last line of the description (`syndicast:<marker>`, the same as on
 *   YouTube); it may be visible in the show info in the player. Recovery lists `GET /v1/shows` (newest
 *   first) back to the uncertain attempt's start and looks for that line (findShow).
 * - lifecycle false: the API has no start/end call. A Bambuser show goes live when its host starts
 *   broadcasting (Bambuser app, or an external encoder with the RTMP details BamHub shows the host) and
 *   ends when the broadcast stops; `state`/`isLive` follow. startShow/endShow are therefore no-ops.
 * - ingest false: shows expose no RTMP ingest through the API (the external-encoder details live in
 *   BamHub only), so the mirror reports none.
 * - pin = highlight (beta): the product is first attached to the show (`POST /shows/{id}/products`
 *   with `publicUrl` = our tracked link, `productReference` = the product id), then a highlight
 *   `POST /shows/{id}/highlights {startAt: now, products: [bambuserProductId]}` features it from now on.
 * - unpin = `DELETE /shows/{id}/highlights/{highlightId}` (WRITE_SHOWS) of the highlight the pin made
 *   (its ref): the product stops being featured. The product stays attached to the show (still in the
 *   player's product list and buyable); the replay and the product's "appears in shows" lookups lose
 *   that moment, which is what taking the pin back means. A highlight already gone is success.
 *   (Removing the show product, `DELETE /shows/{id}/products/{productId}`, would also take it out of
 *   the product list — more than an unpin; we do not.)
 * - orderWebhooks false: Bambuser's webhook topics are show, product, user, product-highlight and
 *   broadcast — none carries orders. handleWebhook still verifies (custom header) and acknowledges
 *   those deliveries so that a registered webhook does not retry forever.
 * - orderReport true: `GET /v1/stats/show/{showId}/orders` per show (see listOrders).
 * Every request spends one of the key's 5 per 10 s: the adapter avoids reads it does not need.
 */
import { z } from 'zod';
import { pagedOrderReport, type AdapterFactory, type Capabilities, type OpContext, type PinSpec, type PlatformOrder, type RecoverAttempt, type RemoteShow, type ShowSpec, type TargetAdapter } from '../target.adapter.js';
import { ActionRequiredError, isTargetError, PermanentError, PinRefusedError } from '../target.errors.js';
import { patiently } from '../report-wait.js';
import { platformWebhooksUnreadable } from '../../lib/metrics.js';
import { CursorTrail } from '../cursor-trail.js';
import { OncePerReport, refuseAllUnreadable, reportedIn, type ReportElement } from '../report-order.js';
import { listedTimeMs } from '../../lib/timestamp.js';
import { RECOVERY_CLOCK_MARGIN_MS, recoveryHorizon } from '../recovery-horizon.js';
import { MAX_REPORT_VALUES } from '../platform-http.js';
import { adviceTarget } from '../credentials-advice.js';
import { createBambuserClient, CREDENTIAL_FIELDS } from './bambuser.client.js';
import { reportOrder, showMayHaveOrders } from './bambuser.orders.js';
import {
  EmptySchema,
  HighlightListSchema,
  HighlightSchema,
  ProductListSchema,
  ProductSchema,
  ShowListSchema,
  ShowSchema,
  StatsOrdersSchema,
  type BambuserHighlight,
  type BambuserProduct,
  type BambuserShow,
  type BambuserStatsOrder,
} from './bambuser.schemas.js';
import { parseWebhookEvent, verifyWebhookHeader } from './bambuser.webhook.js';
import { platformTitle, PRODUCT_TITLE_FALLBACK, SHOW_TITLE_FALLBACK } from '../platform-text.js';
import { describeWithMarker, markerOf } from '../show-marker.js';

/**
 * The highlight with the latest `startAt` (the first of equals, in list order), read strictly (RFC 3339
 * with an offset: listedTimeMs). One whose startAt cannot be read is ignored: Date.parse read local-time
 * text as a time, and its NaN for anything else left the sort's order, and so the "current" highlight,
 * to chance.
 */
export function latestHighlight(highlights: readonly BambuserHighlight[]): BambuserHighlight | undefined {
  let latest: BambuserHighlight | undefined;
  let latestMs = -Infinity;
  for (const h of highlights) {
    const ms = listedTimeMs(h.startAt);
    if (ms !== undefined && ms > latestMs) [latest, latestMs] = [h, ms];
  }
  return latest;
}

/** A read recorded as a step of a pin's (an unpin's) scope: sent again on any error, its result in clear, its token taken with its start. */
const RECORDED_READ = { repeatable: true, resultInClear: true, limitedRequest: true } as const;

/** Bambuser's refusal of a pin's highlight, recorded as the highlight step's result (a PinRefusedError's). */
interface HighlightRefusal {
  refused: { message: string; reason: string | undefined };
}

export const BAMBUSER_CAPABILITIES: Capabilities = {
  createShow: 'api',
  pin: 'highlight',
  unpin: true,
  lifecycle: false,
  ingest: false,
  orderWebhooks: false,
  orderReport: true,
};

const V1 = '/v1';
const PAGE_SIZE = 100;
/** A bound all the same (10,000 newer shows): past it the lookup cannot say "not there". */
const MAX_RECOVERY_PAGES = 100;
/**
 * Every page is one of 5 requests per 10 s: a lookup past the first page waits for the window (up to
 * this long in total) instead of failing, since a retry would start over and never get further.
 */
const RECOVERY_WAIT_BUDGET_MS = 60_000;
/**
 * A full order report pages through every show of the org (its whole history: GET /shows has no date
 * filter). The bound of TikTok's and Whatnot's reports (100,000 shows): at 50 pages an org of more
 * than 5,000 shows failed every report too_many_pages. A loop is caught by CursorTrail; this only
 * ends a list of ever-new cursors.
 */
const MAX_REPORT_PAGES = 1000;
/**
 * A report needs one request per show plus the list pages: more than one window's worth. Instead of
 * failing on every full window (and starting over), listOrders waits for the shared limiter up to this
 * long in total; beyond it, it gives up with RateLimitedError and the report job retries later.
 */
const REPORT_WAIT_BUDGET_MS = 120_000;

export const createBambuserAdapter: AdapterFactory = (ctx) => {
  const client = createBambuserClient(ctx);
  const log = ctx.log.child({ module: 'bambuser.adapter', targetId: ctx.target.id });
  const showPath = (showId: string): string => `${V1}/shows/${encodeURIComponent(showId)}`;

  function remoteShow(show: BambuserShow): RemoteShow {
    const marker = markerOf(show.description);
    const template = client.credentials.showUrlTemplate;
    return {
      externalId: show.id,
      url: template ? template.replace('{showId}', encodeURIComponent(show.id)) : undefined,
      ingest: undefined,
      data: marker ? { marker } : {},
    };
  }

  /**
   * A non-idempotent write inside `once`, its limiter slot taken with the intent's start
   * (`limitedRequest`): a full window throws there, before anything is recorded, and a step done
   * already takes none. Taken before the start (`reserve()`), a done step spent the slot all the same,
   * and a pin resumed after its add at one request per window spent each run's on the add's reserve
   * and was refused its highlight for ever.
   */
  async function onceWrite<T>(op: OpContext, step: string, run: () => Promise<T>, recover: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> {
    return op.once(step, run, recover, { limitedRequest: true });
  }

  async function listShowsPage(cursor: string | undefined): Promise<{ results: BambuserShow[]; cursor?: string | null | undefined }> {
    return client.call({ method: 'GET', path: `${V1}/shows`, query: { limit: PAGE_SIZE, cursor }, scope: 'READ_SHOWS', schema: ShowListSchema });
  }

  /**
   * The show carrying `marker`, created no earlier than `since` (the uncertain attempt's start, our
   * clock): the list is newest first (our assumption: its order is not documented) and is read until a
   * page ends with a show created before `since` less the clock margin (or the list ends; in another
   * order, to its end: see recoveryHorizon); without `since`, to the end of the list. It used to stop
   * after 5 pages of 100: at 1,000 shows 830 newer shows had been created by the time a crashed
   * worker's create was looked for, the lookup missed it, and the show was created twice (scale-out
   * run, docs/testing.md).
   */
  async function findShow(marker: string, since: string | undefined): Promise<BambuserShow | null> {
    const passed = recoveryHorizon(since, RECOVERY_CLOCK_MARGIN_MS);
    const deadline = Date.now() + RECOVERY_WAIT_BUDGET_MS;
    let cursor: string | undefined;
    for (let i = 0; i < MAX_RECOVERY_PAGES; i++) {
      const at = cursor;
      // A full window on the first page costs nothing to retry later: the job is delayed as usual.
      const page = i === 0 ? await listShowsPage(at) : await patiently(deadline, () => listShowsPage(at));
      const hit = page.results.find((show) => markerOf(show.description) === marker);
      if (hit) return hit;
      if (passed(page.results.map((show) => show.createdAt))) return null; // everything further down is older still
      if (!page.cursor || page.cursor === cursor) return null;
      cursor = page.cursor;
    }
    throw new ActionRequiredError(
      `could not tell whether an earlier attempt created the Bambuser show (marker syndicast:${marker}): more than ` +
        `${MAX_RECOVERY_PAGES * PAGE_SIZE} shows of the organisation are newer than it. Look for a show whose description ends with that marker ` +
        `line and link it (PUT …/mirrors/${ctx.target.id} {"externalId": "<show id>"}); if there is none, create one and link it.`,
      'recovery_inconclusive',
    );
  }

  /** The show has been on air (live now, or ended after a broadcast). */
  function aired(show: BambuserShow): boolean {
    return show.isLive === true || show.state === 'live' || show.state === 'ended';
  }

  /** The show's order stats (`GET /v1/stats/show/{showId}/orders`, READ_STATS): every order Bambuser has for it. */
  async function showOrders(showId: string): Promise<ReportElement<BambuserStatsOrder>[]> {
    // Every order of the show in one answer: more values than a page's bound allows (≈ 10 per order).
    const path = `${V1}/stats/show/${encodeURIComponent(showId)}/orders`;
    return (await client.call({ method: 'GET', path, scope: 'READ_STATS', schema: StatsOrdersSchema, maxJsonValues: MAX_REPORT_VALUES })).orders;
  }

  async function getShow(showId: string): Promise<BambuserShow> {
    return client.call({ method: 'GET', path: showPath(showId), scope: 'READ_SHOWS', schema: ShowSchema });
  }

  async function showProducts(showId: string): Promise<BambuserProduct[]> {
    return (await client.call({ method: 'GET', path: `${showPath(showId)}/products`, scope: 'READ_PRODUCTS', schema: ProductListSchema })).results;
  }

  async function findShowProduct(showId: string, linkUrl: string): Promise<BambuserProduct | null> {
    return (await showProducts(showId)).find((p) => p.publicUrl === linkUrl) ?? null;
  }

  /**
   * The pin is in effect when the show's latest highlight features the product: either the crashed
   * attempt created it, or the product is still the featured one from an earlier pin (a later pin's
   * highlight was taken back since), and a new highlight would change nothing for viewers.
   */
  async function currentHighlightOf(showId: string, productId: string): Promise<BambuserHighlight | null> {
    const res = await client.call({ method: 'GET', path: `${showPath(showId)}/highlights`, scope: 'READ_SHOWS', schema: HighlightListSchema });
    const latest = latestHighlight(res.results);
    return latest?.products.includes(productId) ? latest : null;
  }


  const adapter: TargetAdapter = {
    platform: 'bambuser',
    capabilities: BAMBUSER_CAPABILITIES,

    async createShow(spec: ShowSpec, op: OpContext) {
      const body = {
        title: platformTitle(spec.title, SHOW_TITLE_FALLBACK),
        description: describeWithMarker(spec.description, op.marker),
        scheduledStartAt: spec.scheduledAt,
        published: true,
      };
      const show = await onceWrite(
        op,
        'show',
        () => client.call({ method: 'POST', path: `${V1}/shows`, body, scope: 'WRITE_SHOWS', schema: ShowSchema }),
        (attempt) => findShow(op.marker, attempt.since),
      );
      log.info({ externalId: show.id }, 'bambuser show created');
      return remoteShow(show);
    },

    async verifyCredentials() {
      // One show of the organisation (READ_SHOWS): the key must be valid, of this region, with that scope.
      // A JSON object (the page): a 200 of anything else (an HTML page, `ok`: a wrong baseUrl) proves nothing about the key.
      await client.call({ method: 'GET', path: `${V1}/shows`, query: { limit: 1 }, scope: 'READ_SHOWS', schema: z.looseObject({}) });
    },

    async attachShow(externalId) {
      return remoteShow(await getShow(externalId));
    },

    async updateShow(remote, spec) {
      // PATCH is idempotent: no intent needed. The creation marker (kept in data) stays on the last line.
      await client.call({
        method: 'PATCH',
        path: showPath(remote.externalId),
        body: { title: platformTitle(spec.title, SHOW_TITLE_FALLBACK), description: describeWithMarker(spec.description, remote.data.marker), scheduledStartAt: spec.scheduledAt },
        scope: 'WRITE_SHOWS',
        schema: ShowSchema,
      });
    },

    async startShow() {
      // lifecycle false: the show goes live when the host starts broadcasting; there is no API call.
    },

    async endShow() {
      // lifecycle false: the show ends when the host's broadcast stops.
    },

    async cancelShow(remote) {
      // DELETE /shows/{id} removes the show "and associated data", its order stats with it — the only
      // source of Bambuser orders (reconciliation reads them later). A show that has aired (live now,
      // or ended) is therefore left as it is: there is no API to end the host's broadcast, and deleting
      // it would lose its sales. A show that never went on air may have sold too (pre-show sales from
      // its product list): its order stats are read first, and one with orders is unpublished
      // (viewers no longer see it) instead of deleted. Only a show that never aired nor sold is deleted.
      // The reads are not recorded steps (at 1 or 2 requests per window the cancel never completes):
      // reused by a later run, a "not aired, no orders" read would delete a show that went live or sold
      // since (its broadcast and its sales), and a "sold" one would unpublish a show the host has started.
      let show: BambuserShow;
      try {
        show = await getShow(remote.externalId);
      } catch (err) {
        if (isTargetError(err) && err.reason === 'not_found') return; // already gone
        throw err;
      }
      if (aired(show)) {
        log.info({ showId: remote.externalId, state: show.state }, 'cancelled show has aired on Bambuser: kept (its broadcast is ended by the host; its orders stay reportable)');
        return;
      }
      let sold: boolean;
      try {
        sold = (await showOrders(remote.externalId)).length > 0;
      } catch (err) {
        if (isTargetError(err) && err.reason === 'not_found') return; // deleted meanwhile
        throw err;
      }
      if (sold) {
        await client.call({ method: 'PATCH', path: showPath(remote.externalId), body: { published: false }, scope: 'WRITE_SHOWS', schema: ShowSchema });
        log.info({ showId: remote.externalId, state: show.state }, 'cancelled show sold before airing on Bambuser: unpublished, not deleted (its orders stay reportable)');
        return;
      }
      try {
        await client.call({ method: 'DELETE', path: showPath(remote.externalId), scope: 'DELETE_SHOWS', schema: EmptySchema });
      } catch (err) {
        if (isTargetError(err) && err.reason === 'not_found') return; // already gone
        throw err;
      }
    },

    async pin(remote, pin: PinSpec, op) {
      const showId = remote.externalId;
      // Links are unique per (show, target, product): a product pinned before is attached already.
      // The show's products read is a recorded step of the pin's scope, so a run whose add or highlight
      // the limiter refused resumes there: read again by every run, it took the one token each wait
      // freed, and at 1 request per window the product was never pinned. Reused, it is safe: the
      // product it names is ours (our tracked link), and one the seller removed since makes Bambuser
      // refuse the highlight, a refusal then mendable when a read shows it gone (below): asked again as
      // a new episode, which reads again.
      // Repeatable (a read): any error forgets it.
      // `current`: this run read, made or found the product itself (not an earlier run's recorded result).
      let current = false;
      const existing = await op.once(
        'products',
        () => {
          current = true;
          return findShowProduct(showId, pin.linkUrl);
        },
        undefined,
        RECORDED_READ,
      );
      const product =
        existing ??
        (await onceWrite(
          op,
          'product',
          () => {
            current = true;
            return client.call({
              method: 'POST',
              path: `${showPath(showId)}/products`,
              body: { publicUrl: pin.linkUrl, productReference: pin.platformProductId, title: platformTitle(pin.title, PRODUCT_TITLE_FALLBACK) },
              scope: 'WRITE_PRODUCTS',
              schema: ProductSchema,
              // Bambuser validating the product (its reference, title) refuses this pin only.
              pinOf: JSON.stringify(pin.platformProductId),
            });
          },
          // A crashed add is looked for: `existing` may have been read by an earlier run, before it.
          () => {
            current = true;
            return findShowProduct(showId, pin.linkUrl);
          },
        ));
      // Bambuser's refusal of the highlight is the step's result, recorded: the read after it (below)
      // may be refused by the limiter, and the run after it must not send the highlight again.
      const highlight = await onceWrite<BambuserHighlight | HighlightRefusal>(
        op,
        'highlight',
        async () => {
          try {
            return await client.call({
              method: 'POST',
              path: `${showPath(showId)}/highlights`,
              body: { startAt: new Date().toISOString(), products: [product.id] },
              scope: 'WRITE_SHOWS',
              schema: HighlightSchema,
              pinOf: JSON.stringify(pin.platformProductId),
            });
          } catch (err) {
            if (err instanceof PinRefusedError && !err.mendable && !err.unsent) return { refused: { message: err.message, reason: err.reason } };
            throw err;
          }
        },
        () => currentHighlightOf(showId, product.id),
      );
      if ('refused' in highlight) {
        const refusal = new PinRefusedError(highlight.refused.message, highlight.refused.reason);
        // The product's id came from this run (read or made now): Bambuser refused the product or the
        // highlight itself, for good.
        if (current) throw refusal;
        // It came from an earlier run (its read or its add recorded, the highlight refused by the limiter
        // or a 5xx then; at 1 request per window always): the seller may have removed that product since
        // (400 "product … is not part of show"). The show's products are read again, in a recorded step
        // of their own (the highlight took this run's token): still attached, the refusal was not about
        // a stale id and is final; gone, it is mendable: the pin is asked again after a wait as a new
        // episode, which reads the products again. Made mendable without that read, every highlight
        // refusal at 1 request per window was asked again, every 5 min at last, for the whole show.
        const attached = await op.once('products-recheck', async () => (await showProducts(showId)).some((p) => p.id === product.id), undefined, RECORDED_READ);
        if (attached) throw refusal;
        throw new PinRefusedError(refusal.message, refusal.reason, { mendable: true });
      }
      return { ref: highlight.id };
    },

    async unpin(remote, pin, ref, op) {
      const showId = remote.externalId;
      // A pin recorded without its highlight id: the product's latest highlight is the one to take back.
      // Its two reads are recorded steps of the unpin's scope, so a run whose next request the limiter
      // refused resumes there (read again by every run, at 1 or 2 requests per window the delete never
      // came). Reused, they are safe: the delete names the highlight read, one featuring our product,
      // as a pin's ref would (one no longer current, or gone, changes nothing for viewers).
      let highlightId = ref;
      if (!highlightId) {
        const product = await op.once('product', () => findShowProduct(showId, pin.linkUrl), undefined, RECORDED_READ);
        highlightId = product ? ((await op.once('highlight', async () => (await currentHighlightOf(showId, product.id))?.id ?? null, undefined, RECORDED_READ)) ?? undefined) : undefined;
        if (!highlightId) return; // nothing of ours is featured
      }
      try {
        await client.call({ method: 'DELETE', path: `${showPath(showId)}/highlights/${encodeURIComponent(highlightId)}`, scope: 'WRITE_SHOWS', schema: EmptySchema });
      } catch (err) {
        if (isTargetError(err) && err.reason === 'not_found') return; // already taken back
        throw err;
      }
    },

    async handleWebhook(headers, raw) {
      const { webhookHeaderName, webhookHeaderValue } = client.credentials;
      verifyWebhookHeader(headers, webhookHeaderName, webhookHeaderValue, adviceTarget(ctx.target, CREDENTIAL_FIELDS));
      let event;
      try {
        event = parseWebhookEvent(raw);
      } catch (err) {
        if (!(err instanceof PermanentError)) throw err;
        // Verified (the header), but no event we can read (not JSON, a payload that is no object...):
        // acknowledged, logged and counted. Bambuser retries a delivery until it gets a 200, so the 400
        // it got was retried forever; and no Bambuser topic carries orders: nothing would be stored
        // from it. (TikTok's and Whatnot's unreadable bodies stay 400: theirs may carry an order, and
        // they stop retrying.) An unverified one is still 401 (above).
        platformWebhooksUnreadable.inc({ platform: 'bambuser' });
        log.warn({ reason: err.message }, 'bambuser webhook verified but unreadable; acknowledged, nothing stored');
        return [];
      }
      log.debug({ collection: event.collection, action: event.action, eventId: event.eventId }, 'bambuser webhook');
      return []; // no Bambuser topic carries orders
    },

    /**
     * Every order Bambuser reports with createdAt in [from, to): the order report is per show
     * (`GET /v1/stats/show/{showId}/orders`), so the shows are found first by paging `GET /v1/shows`
     * (newest first) and keeping every one, aired or not (pre-show sales), that did not end more than
     * 30 days before `from` (replay purchases keep arriving after a show: bambuser.orders.ts). Then one
     * report per show, filtered to the period. Costs 1 request per 100 shows plus 1 per show in range.
     */
    ...pagedOrderReport(orderPages),
  };

  /**
   * The shows an order report of the period from `fromMs` asks (showMayHaveOrders), each once, from
   * every page of the show list. A list that has not ended after MAX_REPORT_PAGES, or whose cursors
   * loop (A → B → A), fails the report (too_many_pages), as TikTok's and Whatnot's do: the listing
   * stopped there silently, and the run completed without the shows past that page (their orders
   * never asked for, none healed).
   */
  async function reportShows(fromMs: number, deadline: number, signal?: AbortSignal): Promise<Map<string, BambuserShow>> {
    const shows = new Map<string, BambuserShow>();
    const trail = new CursorTrail('Bambuser show list');
    let cursor: string | undefined;
    for (let page = 0; page < MAX_REPORT_PAGES; page++) {
      const answer = await patiently(deadline, () => listShowsPage(cursor), signal);
      for (const s of answer.results) if (!shows.has(s.id) && showMayHaveOrders(s, fromMs)) shows.set(s.id, s);
      cursor = trail.next(cursor, answer.cursor);
      if (cursor === undefined) return shows;
    }
    throw new PermanentError(`Bambuser show list did not end after ${MAX_REPORT_PAGES} pages`, 'too_many_pages');
  }

  /** listOrders page by page: one page per show's order report (the shows in range are found first). */
  async function* orderPages(from: Date, to: Date, signal?: AbortSignal): AsyncGenerator<PlatformOrder[]> {
    const fromMs = from.getTime();
    const toMs = to.getTime();
    const deadline = Date.now() + REPORT_WAIT_BUDGET_MS;
    // Each show once and each order once (the adapter contract): a show the list names on two pages
    // (a cursor that does not move past it) had its report read twice, and an order a report names
    // twice was handed over twice; the run counted and listed it as often. An order id named twice in
    // other data, in one show's report or under two shows, is an invalid order (OncePerReport; a later
    // show's copy a `repeat` note): which copy is Bambuser's is not known, and the first read was kept
    // silently. The show an order is listed under is no part of its data here: the same order under two
    // shows (a shopper who watched both) is one order, under the first show that lists it.
    const shows = await reportShows(fromMs, deadline, signal);
    const once = new OncePerReport((p) => ({ ...p, externalShowId: undefined }));
    let count = 0;
    for (const show of shows.values()) {
      const report = await patiently(deadline, () => showOrders(show.id), signal);
      const orders: PlatformOrder[] = [];
      const read = report.map((o) => reportOrder(show.id, o));
      // A show's report of unreadable orders alone is a shape we do not know, not odd orders (report-order.ts).
      refuseAllUnreadable(`Bambuser order stats of show ${show.id}`, read);
      for (const order of read) {
        // Every order the report lists is compared with the copies read before it, whatever its period:
        // two copies dated on either side of the period's bound were each the first in its own period's
        // run (both healed, never compared). Then the period's (reportedIn): the first copy in its own
        // date's period, a later copy's note in the note's (each the same on every run of that period).
        const as = once.add(orders, order);
        if (as === 'twice') log.warn({ orderId: order.orderId, showId: show.id }, 'bambuser order listed twice with different data; reported as an invalid order');
        // One order that cannot be read is that order's invalid_order, not the report's (report-order.ts);
        // one whose createdAt cannot be read is in every period that asks its show (reportedIn).
        else if (as === 'new' && order.unreadable !== undefined && reportedIn(order, fromMs, toMs)) log.warn({ orderId: order.orderId, problem: order.unreadable }, 'bambuser order cannot be read; reported as an invalid order');
      }
      const ours = orders.filter((o) => reportedIn(o, fromMs, toMs));
      count += ours.length;
      if (ours.length > 0) yield ours;
    }
    log.debug({ shows: shows.size, orders: count }, 'bambuser order report');
  }
  return adapter;
};
