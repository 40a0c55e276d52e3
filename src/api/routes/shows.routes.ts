/** Show status, listing and the operator actions on mirrors (link, resync, retry). */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { IdSchema, SHOW_STATES } from '../../domain/events.js';
import { MIRROR_STATES, newMirror, PIN_STATES, type MirrorDoc } from '../../domain/mirror.js';
import { AppError, conflict, notFound } from '../../lib/errors.js';
import { SecretUnreadableError, undefinedIfUnreadable, type SecretBox } from '../../lib/crypto.js';
import { assertPublicDestination, DestinationRefusedError } from '../../lib/ssrf.js';
import { maskUrl } from '../../relay/mask.js';
import { mirrorIngest } from '../../relay/relay.service.js';
import type { RelayRepository } from '../../store/relay.repository.js';
import { idRecord } from '../../lib/id-record.js';
import type { DesiredShow } from '../../domain/desired-state.js';
import { showView } from '../../mirror/show.view.js';
import type { ReadinessService } from '../../mirror/readiness.service.js';
import type { SyncProducer } from '../../queues/queues.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { TargetDeletingError, TargetGoneError, TargetReplacedError, type ShowRepository } from '../../store/show.repository.js';
import type { ExternalShowIndex } from '../../store/external-show.index.js';
import { StoredRecordCorruptError } from '../../store/stored-record.js';
import { PLATFORMS } from '../../targets/target.adapter.js';
import { externalIdProblem } from '../../targets/external-id.js';
import { comesAfter, PageCursorSchema, pageCursor, parsePageCursor, type PageStart } from '../../store/zset-page.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import { FORBIDDEN_PARTNER, FORBIDDEN_ROLE, NoBody, ok } from '../openapi.js';

export interface ShowRoutesOptions {
  partners: PartnerRepository;
  shows: ShowRepository;
  sync: SyncProducer;
  relay: RelayRepository;
  box: SecretBox;
  /** What partners publish to (README "Video relay" `show.ingest.url`). */
  relayPublicUrl: () => string;
  allowPrivateDestinations: boolean;
  readiness?: ReadinessService;
  /** The platform show → show index (attribution rule 2): a link of a platform show another show's mirror holds is refused. */
  externalShows: ExternalShowIndex;
  /** Shows a `?state=` list reads at most per request (tests; default SHOW_FILTER_SCAN_MAX). */
  filterScanMax?: number;
}

/**
 * A nonce of one operator link (the mirror's `data.link`): the sync passes it to attachShow
 * (OpContext.link), whose step tied to that link (YouTube's recorded read of the linked broadcast at
 * one request per window) a re-link of the same broadcast, same generation, no longer finds.
 */
function linkNonce(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * Shows a list filtered by `state` reads at most per request. The filter is no index: each show of the
 * partner's index (every show it ever had) is read and kept when in that state. The list read all of
 * them on every request, to count `total`: 3.3 s for one request at 10,000 shows, and twenty at once
 * from one partner key held every other request of the API for seconds (an unfiltered list of another
 * partner took 5.6 s). A partner with at most this many shows is still read whole (exact `total`).
 */
export const SHOW_FILTER_SCAN_MAX = 1_000;
/** A show as the list gives it. */
const listItem = (d: DesiredShow) => ({ id: d.showId, title: d.title, state: d.state, scheduledAt: d.scheduledAt, version: d.version });

/** Shows a filtered list reads in one round trip. */
const FILTER_PAGE = 200;

const RtmpUrl = z
  .string()
  .max(2048)
  // printable ASCII only: a control character (a NUL byte, say) cannot be passed to ffmpeg at all
  .regex(/^rtmps?:\/\/[\x21-\x22\x24-\x2e\x30-\x3e\x40-\x7e]+(\/[\x21-\x22\x24-\x3e\x40-\x7e]*)?$/i, 'must be an rtmp:// or rtmps:// URL without query');
/**
 * Whether an operator's RTMP address has the stream key as one of its path segments: the address
 * copied with the key (`rtmp://host/app/<key>`, as a platform's app shows it joined). The relay
 * publishes to `{url}/{streamKey}`, so such a link never worked, and the url is what a viewer or
 * partner key is shown of the mirror's ingest: it was stored, and read back by them with the key.
 */
function ingestUrlHoldsKey(url: string, streamKey: string): boolean {
  return url.replace(/^rtmps?:\/\/[^/]*/i, '').split('/').includes(streamKey);
}

const IngestBody = z
  .strictObject({
    url: RtmpUrl,
    streamKey: z
      .string()
      .min(1)
      .max(512)
      .regex(/^[\x21-\x2e\x30-\x7e]+$/, 'must be printable ASCII without spaces or slashes'),
  })
  .superRefine((b, ctx) => {
    if (ingestUrlHoldsKey(b.url, b.streamKey)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'holds the stream key: give the RTMP address without it (the relay publishes to {url}/{streamKey}), the key in streamKey alone' });
  });
const IngestView = z.object({
  url: z.string(),
  streamKey: z.string().optional(),
  streamKeyUnreadable: z
    .literal(true)
    .optional()
    .describe('the stored stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS (changed without rotation): it is kept, and comes back once that key is restored (docs/operations.md, "Secrets and rotation"); for operator and admin keys only'),
});
const RelayView = z.object({
  state: z.enum(['idle', 'connecting', 'sending', 'retrying', 'failed', 'stopped']),
  bitrateKbps: z.number(),
  bytesSent: z.number(),
  since: z.string().nullable(),
  restarts: z.number(),
  lastError: z.string().nullable(),
});
const ShowViewSchema = z
  .object({
    show: z.object({ id: z.string(), state: z.enum(SHOW_STATES), sourceUrl: z.string().optional(), ingest: IngestView }).passthrough(),
    mirrors: z.array(
      z
        .object({
          targetId: z.string(),
          platform: z.enum(PLATFORMS),
          state: z
            .enum(MIRROR_STATES)
            .describe('`action_required`: the platform cannot do the next step by API; `lastError` says what the operator must do (e.g. link a show made by hand: PUT …/mirrors/{targetId})'),
          externalId: z.string().nullable().describe("the platform's id of the show (its broadcast, room, live video); null until it exists"),
          url: z.string().nullable().describe('where viewers watch it on the platform; null until known'),
          ingest: IngestView.optional().describe('on a `ready` or `live` mirror whose platform gives an RTMP ingest; `streamKey` for operator and admin keys only'),
          relay: RelayView,
          pins: z.array(
            z
              .object({
                productId: z.string(),
                state: z.enum(PIN_STATES),
                linkUrl: z.string().nullable(),
                reason: z
                  .string()
                  .optional()
                  .describe(
                    'why a `pending` pin waits, where the mirror cannot act on it yet: the product is not in the show\'s snapshot (it is pinned when the partner sends the product); or why a `failed` pin was refused by the platform (its reason, e.g. a product id it cannot take): only that pin failed, and it is tried again when the partner changes the product or pins it again; a refusal the seller can mend on the platform (Whatnot: a product none of the seller\'s listings yet; TikTok: 36009004 naming product_id, a product not in the shop; Facebook: code 100 on a Live Shopping pin of a catalog item out of stock or discontinued) is also tried again while the show is live, at most 5 min apart, and the reason says so; the pin stays `failed` with that reason while an attempt is under way',
                  ),
              })
              .passthrough(),
          ),
          enabled: z.boolean().describe('the target is enabled; a disabled target\'s mirror is not synced, and its `lastError` says so (not the error of its last run) until the mirror has ended or been cancelled'),
          lastError: z.string().nullable(),
          updatedAt: z.string().nullable().describe('ISO-8601 timestamp of the mirror\'s last change; null while no sync has run'),
        })
        .passthrough(),
    ),
  })
  .passthrough();

const Params = z.object({ partnerId: IdSchema });
const ShowParams = z.object({ partnerId: IdSchema, showId: IdSchema });
const MirrorParams = z.object({ partnerId: IdSchema, showId: IdSchema, targetId: IdSchema });
const ListQuery = z.object({ state: z.enum(SHOW_STATES).optional(), limit: z.coerce.number().int().min(1).max(200).default(50), cursor: PageCursorSchema.optional() });
const ShowList = z.object({
  shows: z.array(z.object({ id: z.string(), title: z.string(), state: z.enum(SHOW_STATES), scheduledAt: z.string(), version: z.number().int() })),
  nextCursor: z.string().nullable().describe('`cursor` for the next page (opaque: it marks the last show of this page, so shows added or rescheduled meanwhile shift nothing); null on the last page'),
  total: z
    .number()
    .int()
    .nullable()
    .describe(`the shows matching \`state\` (all shows without it); null for a \`state\` list of a partner with more than ${SHOW_FILTER_SCAN_MAX} shows, whose requests each read at most ${SHOW_FILTER_SCAN_MAX} shows from the cursor on: its pages may hold fewer than \`limit\` shows, even none, while \`nextCursor\` is not null`),
  unreadable: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('shows of this page left out because their stored record does not read (a data fault for an operator: logged with its Redis key, counted in syndicast_stored_records_unreadable_total{family="show"}); absent when none. `total` still counts them'),
});

/**
 * An operator link's claim of a platform show (ExternalShowIndex.claimLink): its lease (a claim whose
 * process died is freed after it; a link holds it for a few round trips), and how long a link waits
 * for another link's claim of the same platform show before it answers 409.
 */
const LINK_CLAIM_LEASE_MS = 30_000;
const LINK_CLAIM_WAIT_MS = 5_000;

/**
 * An operator's save of a target's mirror (a link, a retry), which has the target guard of a sync run's
 * saves (ShowRepository.updateMirror): refused, nothing changed, while a DELETE of the target checks
 * its mirrors (409: the DELETE either deletes the target or is refused and leaves it as it was), or
 * once the target is gone (404) or was deleted and created again since this request read it (409).
 */
async function operatorSave<T>(targetId: string, save: () => Promise<T>): Promise<T> {
  try {
    return await save();
  } catch (err) {
    if (err instanceof TargetDeletingError) throw conflict(`target ${targetId} is being deleted (a DELETE is checking its mirrors): nothing changed; try again once the DELETE has answered (a refused DELETE leaves the target as it was)`);
    if (err instanceof TargetReplacedError) throw conflict(`target ${targetId} was deleted and created again while this request ran: nothing changed; try again`);
    if (err instanceof TargetGoneError) throw notFound(`target ${targetId}`);
    throw err;
  }
}

export const showRoutes: FastifyPluginAsyncZod<ShowRoutesOptions> = async (app, opts) => {
  const { partners, shows, sync, relay, box } = opts;

  const load = async (partnerId: string, showId: string) => {
    const bundle = await partners.bundle(partnerId);
    if (!bundle) throw notFound(`partner ${partnerId}`);
    const desired = await shows.desired(partnerId, showId);
    if (!desired) throw notFound(`show ${showId}`);
    return { bundle, desired };
  };

  /**
   * The desired states of a page of a list: a show whose stored record does not read (an operator's hand
   * edit, a half-migrated key) is left out, logged with its key (StoredRecordCorruptError, counted in
   * syndicast_stored_records_unreadable_total) and counted in `unreadable`; before, its error failed the
   * whole list with a 500 for every other show of the partner. Any other error (Redis gone) fails the list.
   */
  const readPage = async (req: FastifyRequest, partnerId: string, ids: readonly { member: string }[], seen: { unreadable: number }): Promise<(DesiredShow | null)[]> =>
    Promise.all(
      ids.map((i) =>
        shows.desired(partnerId, i.member).catch((err: unknown) => {
          if (!(err instanceof StoredRecordCorruptError)) throw err;
          req.log.error({ partnerId, showId: i.member, key: err.key, reason: err.reason }, 'show left out of the list: its stored record does not read');
          seen.unreadable += 1;
          return null;
        }),
      ),
    );
  const withUnreadable = <T extends object>(body: T, seen: { unreadable: number }): T & { unreadable?: number } => (seen.unreadable > 0 ? { ...body, unreadable: seen.unreadable } : body);

  app.get('/v1/partners/:partnerId/shows', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['shows'], summary: 'List shows (newest scheduled first)', params: Params, querystring: ListQuery, docResponses: { 200: ok('one page', ShowList), 403: FORBIDDEN_PARTNER, 404: 'unknown partner' } } }, async (req) => {
    const { partnerId } = req.params;
    assertPartnerAccess(req, partnerId);
    if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
    const { state, limit } = req.query;
    const start = parsePageCursor(req.query.cursor);
    if (start === null) throw new AppError(400, 'Bad Request', 'cursor: a nextCursor from a previous page of this list expected'); // the schema refused it already
    const seen = { unreadable: 0 };
    if (!state) {
      const page = await shows.listShowIds(partnerId, start, limit);
      const desired = await readPage(req, partnerId, page.items, seen);
      const items = desired.filter((d): d is DesiredShow => d !== null).map(listItem);
      const last = page.items.at(-1);
      return withUnreadable({ shows: items, nextCursor: page.more && last ? pageCursor(last) : null, total: page.total }, seen);
    }
    const scanMax = opts.filterScanMax ?? SHOW_FILTER_SCAN_MAX;
    if ((await shows.showCount(partnerId)) > scanMax) return withUnreadable(await filteredPage(req, partnerId, state, start, limit, scanMax, seen), seen);
    // Filtered, a partner with few shows: `total` counts the shows in that state, so every show is read
    // (pages of FILTER_PAGE, each on from the last one read); the page is the matching shows after the cursor's.
    const matching: { d: DesiredShow; at: { score: number; member: string } }[] = [];
    for (let from: PageStart = undefined; ; ) {
      const page = await shows.listShowIds(partnerId, from, FILTER_PAGE);
      const desired = await readPage(req, partnerId, page.items, seen);
      page.items.forEach((at, i) => {
        const d = desired[i];
        if (d && d.state === state) matching.push({ d, at });
      });
      const last = page.items.at(-1);
      if (!page.more || !last) break;
      from = { after: last };
    }
    const rest = !start ? matching : 'offset' in start ? matching.slice(start.offset) : matching.filter((m) => comesAfter(m.at, start.after));
    const items = rest.slice(0, limit);
    const last = items.at(-1);
    return withUnreadable({ shows: items.map((m) => listItem(m.d)), nextCursor: rest.length > limit && last ? pageCursor(last.at) : null, total: matching.length }, seen);
  });

  /**
   * A page of a `state` list of a partner with more than `scanMax` shows: from the cursor on, at most
   * `scanMax` shows are read; the page is the first `limit` of them in `state`. `nextCursor` marks the
   * last show read before the one that would have been the page's `limit + 1`th (or, once `scanMax`
   * shows were read, the last one read), so the next page reads on from there; null once the index
   * ended. An old numeric cursor (a position in the filtered list) is taken as a position in the whole
   * index, which is never past it: shows may repeat, none is skipped.
   */
  const filteredPage = async (req: FastifyRequest, partnerId: string, state: DesiredShow['state'], start: PageStart, limit: number, scanMax: number, skipped: { unreadable: number }) => {
    const items: DesiredShow[] = [];
    let seen: { score: number; member: string } | undefined;
    let from: PageStart = start;
    let read = 0;
    for (;;) {
      const page = await shows.listShowIds(partnerId, from, Math.min(FILTER_PAGE, scanMax - read));
      const desired = await readPage(req, partnerId, page.items, skipped);
      for (const [i, at] of page.items.entries()) {
        const d = desired[i];
        if (d && d.state === state) {
          if (items.length === limit) return { shows: items.map(listItem), nextCursor: seen ? pageCursor(seen) : null, total: null };
          items.push(d);
        }
        seen = at;
      }
      read += page.items.length;
      if (!page.more || page.items.length === 0) return { shows: items.map(listItem), nextCursor: null, total: null };
      if (read >= scanMax) return { shows: items.map(listItem), nextCursor: seen ? pageCursor(seen) : null, total: null };
      from = { after: seen! };
    }
  };

  app.get('/v1/partners/:partnerId/shows/:showId', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['shows'], summary: 'Show status with one entry per mirror, the show\'s ingest and each mirror\'s relay', params: ShowParams, response: { 200: ShowViewSchema }, docResponses: { 200: ok('the show and one entry per mirror'), 403: FORBIDDEN_PARTNER, 404: 'unknown partner or show' } } }, async (req) => {
    const { partnerId, showId } = req.params;
    assertPartnerAccess(req, partnerId);
    const { bundle, desired } = await load(partnerId, showId);
    const ids = bundle.targets.map((t) => t.id);
    const [mirrors, statuses, streamKey, readiness] = await Promise.all([
      shows.getMirrors(partnerId, showId, bundle.targets),
      relay.statusesAsRelayed(partnerId, showId, ids),
      // A key sealed under a key this service no longer has: the view still answers (POST …/ingest/rotate issues a new one).
      relay.ingestKey(partnerId, showId).catch(undefinedIfUnreadable),
      opts.readiness ? opts.readiness.get(partnerId, showId, ids) : Promise.resolve([]),
    ]);
    const role = req.principal?.role;
    // The show's own key: its operator or partner (the encoder's owner); a viewer sees the url alone.
    const ingest = role === 'viewer' ? { url: opts.relayPublicUrl() } : streamKey === undefined ? { url: opts.relayPublicUrl(), streamKeyUnreadable: true as const } : { url: opts.relayPublicUrl(), streamKey };
    const mirrorIngests = mirrors.map((m) => {
      try {
        return m ? mirrorIngest(m, box) : undefined;
      } catch (err) {
        // Sealed under a key this service no longer has: the address, and that its key cannot be opened.
        const url = m?.remote?.ingest?.url ?? m?.operatorIngest?.url;
        if (!(err instanceof SecretUnreadableError) || url === undefined) throw err;
        return { url, streamKeyUnreadable: true as const };
      }
    });
    const view = showView(desired, bundle.targets, mirrors, { ingest, relay: statuses, mirrorIngest: mirrorIngests, revealMirrorKeys: role === 'admin' || role === 'operator' }, readiness);
    // The pull source's credentials (its stream key, token, password) are the partner's stream key too.
    if (role === 'viewer' && view.show.sourceUrl) view.show.sourceUrl = maskUrl(view.show.sourceUrl);
    return view;
  });

  app.post(
    '/v1/partners/:partnerId/shows/:showId/ingest/rotate',
    {
      preHandler: app.requireRole('operator'),
      schema: { tags: ['shows'], summary: "Issue a new stream key for the show's ingest; the old one is refused from now on", params: ShowParams, body: NoBody, response: { 200: z.object({ ingest: IngestView }) }, docResponses: { 200: ok('the new stream key'), 403: FORBIDDEN_ROLE, 404: 'unknown partner or show' } },
    },
    async (req) => {
      const { partnerId, showId } = req.params;
      await load(partnerId, showId);
      // Recorded with the new key (one script, in the show's slot) and written after it: the retry of a
      // rotation whose audit write failed rotates again, and the first keeps its entry. Announced first,
      // so that a read of the log or the scheduler writes it also when nobody retries.
      await app.auditAnnounce({ partnerId, showId });
      const streamKey = await relay.rotateIngestKey(partnerId, showId, app.auditPending(req, { action: 'show.ingest_rotated', partnerId, showId }));
      await app.auditSettle({ partnerId, showId });
      return { ingest: { url: opts.relayPublicUrl(), streamKey } };
    },
  );

  app.put(
    '/v1/partners/:partnerId/shows/:showId/mirrors/:targetId',
    { preHandler: app.requireRole('operator'), schema: {
        tags: ['shows'],
        summary: 'Link a show created by hand on the platform, with the RTMP ingest its app shows (where the relay pushes)',
        params: MirrorParams,
        body: z.strictObject({ externalId: z.string().min(1).max(256), ingest: IngestBody.optional() }),
        docResponses: {
          200: ok('linked; a sync is queued', z.object({ targetId: z.string(), state: z.enum(MIRROR_STATES), externalId: z.string() })),
          400: 'invalid body (also: an `ingest.url` with the stream key as one of its path segments, the address copied with its key), or ingest.url refused (not a public address)',
          403: FORBIDDEN_ROLE,
          404: 'unknown partner, show or target (also one deleted while this request ran)',
          409: "another show's mirror on this target already has that platform show (its sales are attributed to that show): a platform show mirrors one show (of two links of one platform show at the same time, the second waits for the first and is refused then; one still unfinished after 5 s is a 409 too: try again); or the target is being deleted (a DELETE is checking its mirrors), or was deleted and created again while this request ran (then try again); nothing linked",
          422: "`externalId` is not of the form the target's platform gives its show ids (YouTube: the 11-character video id; TikTok: the decimal room id; Whatnot: a UUID; Bambuser: 20 letters and digits; Facebook: the decimal live video id); nothing stored",
        },
      },
    },
    async (req, reply) => {
      const { partnerId, showId, targetId } = req.params;
      const { bundle } = await load(partnerId, showId);
      const target = bundle.targets.find((t) => t.id === targetId);
      if (!target) throw notFound(`target ${targetId}`);
      // An id the platform could never accept is refused here: stored, it answered 200 `ready` and the
      // next sync failed the mirror.
      const malformed = externalIdProblem(target.platform, req.body.externalId);
      if (malformed) throw new AppError(422, 'Unprocessable Content', malformed, [{ path: 'body.externalId', message: malformed }]);
      const given = req.body.ingest;
      if (given) {
        try {
          // The same rule as every destination (§8): checked here and again before each push.
          await assertPublicDestination(given.url.replace(/^rtmps?:/i, 'http:'), opts.allowPrivateDestinations, undefined, partnerId);
        } catch (err) {
          if (err instanceof DestinationRefusedError) throw new AppError(400, 'Bad Request', `ingest.url refused: ${err.message}`, [{ path: 'body.ingest.url', message: err.message }]);
          throw err;
        }
      }
      const operatorIngest = given ? { url: given.url, streamKeySealed: box.encrypt(given.streamKey) } : undefined;
      // One platform show is one show's mirror: the index names one show per platform show (attribution
      // rule 2) and every sync of a mirror re-asserts its entry, so a platform show linked to two shows
      // had its sales attributed to whichever of them synced last (an order during show B went to the
      // ended show A). The index finds the other show; its mirror decides (an entry an earlier link or
      // target of the same id left names a show whose mirror no longer has it). Under the platform
      // show's link claim, taken with the read of the entry in one step, from the check to the entry's
      // write: two links at the same instant both read no entry (or a stale one) and both passed; now
      // the second waits and finds the first's entry and mirror.
      // A client that went away while this link waits for another's claim: nobody waits for the answer,
      // so the wait (polls of Redis) ends. The response's close before it finished is the client gone
      // (the request's 'close' fires once its body was read).
      const gone = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableFinished) gone.abort();
      };
      reply.raw.once('close', onClose);
      const claim = await opts.externalShows.claimLink(targetId, req.body.externalId, LINK_CLAIM_LEASE_MS, LINK_CLAIM_WAIT_MS, gone.signal).finally(() => reply.raw.off('close', onClose));
      if (!claim) throw conflict(`${target.platform} show ${req.body.externalId} is being linked by another request that has not finished; nothing linked, try again`);
      let mirror: MirrorDoc;
      let linked = false;
      try {
        const holder = claim.holder;
        if (holder !== null && holder !== showId && (await shows.getMirror(partnerId, holder, target))?.remote?.externalId === req.body.externalId) {
          const detail = `${target.platform} show ${req.body.externalId} is already the mirror of show ${holder} on target ${targetId}, which its sales are attributed to: a platform show mirrors one show; make another one in the ${target.platform} app and link that (or, to move this one, first link show ${holder}'s mirror to another)`;
          throw new AppError(409, 'Conflict', detail, [{ path: 'body.externalId', message: detail }]);
        }
        // Back in the active set first, as on a resync: the link gives the mirror a show on the platform
        // (`remote`), also once its show ended and the sweep dropped the show; a target DELETE (which walks
        // the active set) must see it. Before the mirror changes, so no DELETE reads the linked mirror
        // without its show in the set. The sweep drops the show again once everything of it is done.
        await shows.markActive(partnerId, showId);
        let finished: MirrorDoc | undefined;
        mirror = (await operatorSave(targetId, () => shows.updateMirror(partnerId, showId, target, () => newMirror(targetId, target.platform, target.incarnation), (m) => {
          finished = undefined;
          const same = m.remote !== undefined && m.remote.externalId === req.body.externalId;
          if (same && m.remote) {
            // The same remote show: what was done on it stays done. Its intents (keyed by generation),
            // pins, what was written to it and whether it went live all still hold, so nothing is sent
            // twice (each side effect once).
            // A finished mirror (ended, cancelled) is never synced again: there is nothing to re-read, and
            // its url (the replay) and platform data stay as they are. The link changes nothing. So for one
            // that is over while the show is live again (`over`): its platform show cannot start again.
            if (m.state === 'ended' || m.state === 'cancelled' || m.over) {
              finished = m;
              return false;
            }
            // The platform's url and ingest are read again (attachShow, on the sync): a Facebook stream URL
            // that expired unused comes back fresh. Until then the mirror keeps what it has, its ingest
            // included, so the relay keeps pushing a live show's video; an ingest in the body replaces it
            // now (the operator's ingest is what the relay pushes to when the platform gives none).
            m.remote = { ...m.remote, ...(operatorIngest ? { ingest: undefined } : {}), data: { ...m.remote.data, attach: '1', link: linkNonce() } };
            if (operatorIngest) m.operatorIngest = operatorIngest;
            m.lastError = null;
            m.retries = 0;
            // A live mirror keeps its state, any other one (action_required for an expired Facebook
            // stream URL, failed) is retried with the same intents.
            if (m.state !== 'live') m.state = 'ready';
            return true;
          }
          // Another remote show: its url and ingest are read by the sync (attachShow).
          m.remote = { externalId: req.body.externalId, url: undefined, ingest: undefined, data: { attach: '1', link: linkNonce() } };
          m.operatorIngest = operatorIngest;
          m.lastError = null;
          m.retries = 0;
          m.generation += 1; // intents of the previous remote show no longer apply
          m.applied = undefined;
          m.state = 'ready';
          m.wentLive = false;
          m.over = undefined; // a new platform show: not over
          m.linkedAfterEnd = undefined;
          m.pins = idRecord();
          return true;
        }))) ?? finished!;
        // The index names this show for the platform show now (with the claim freed, one step), not only
        // once its sync ran: a second show linked to it before that (the worker down or behind) passed the
        // check above, and the two syncs then overwrote each other's entry. (Written after the save: a
        // refused save leaves no entry.)
        linked = mirror.remote?.externalId === req.body.externalId;
      } finally {
        // A link slower than its claim's lease writes no entry (another link may hold the claim and
        // have written its own); the mirror's sync asserts its entry as after any link.
        if (!(await claim.settle(linked ? showId : undefined))) req.log.warn({ targetId, showId }, 'operator link outlasted its claim of the platform show; index entry left to the sync');
      }
      // And marked again after it: a sweep that read the show (and its mirrors, not yet linked) after
      // the mark above would otherwise still drop it, its removal finding the score it read (sweep.service.ts).
      await shows.markActive(partnerId, showId);
      await app.audit(req, { action: 'mirror.linked', partnerId, showId, targetId, detail: { externalId: req.body.externalId } });
      await sync.enqueue(target.platform, { partnerId, showId, targetId });
      return { targetId, state: mirror.state, externalId: req.body.externalId };
    },
  );

  app.post(
    '/v1/partners/:partnerId/shows/:showId/mirrors/:targetId/resync',
    {
      preHandler: app.requireRole('operator'),
      schema: {
        tags: ['shows'],
        summary: 'Force a sync now; a failed mirror is retried',
        params: MirrorParams,
        body: NoBody,
        docResponses: { 202: ok('a sync is queued', z.object({ targetId: z.string(), queued: z.literal(true) })), 403: FORBIDDEN_ROLE, 404: 'unknown partner, show or target (also one deleted while this request ran)', 409: 'the target is being deleted (a DELETE is checking its mirrors), or was deleted and created again while this request ran: nothing retried; try again' },
      },
    },
    async (req, reply) => {
      const { partnerId, showId, targetId } = req.params;
      const { bundle } = await load(partnerId, showId);
      const target = bundle.targets.find((t) => t.id === targetId);
      if (!target) throw notFound(`target ${targetId}`);
      let retried: string | null = null;
      // Back in the active set first: a failed mirror retried here may hold a show on the platform (a
      // create whose outcome is unknown: `creating`), also once its show ended and the sweep dropped the
      // show; a target DELETE (which walks the active set) must see it once it is `pending`. Before the
      // mirror changes, so no DELETE reads the retried mirror without its show in the set. The sweep
      // drops the show again once everything of it is done.
      await shows.markActive(partnerId, showId);
      if (await shows.getMirror(partnerId, showId, target)) {
        await operatorSave(targetId, () => shows.updateMirror(partnerId, showId, target, () => newMirror(targetId, target.platform, target.incarnation), (m) => {
          retried = null;
          // A pin the platform refused is asked again too (an operator may have fixed it there: the
          // product made on the platform): its digest no longer matches, so the sync starts a new episode
          // (and the count of a refusal the seller can mend starts over, also during an attempt at it).
          const refused = Object.values(m.pins).filter((p) => (p.state === 'failed' || p.state === 'pending') && p.refused !== undefined);
          for (const p of refused) p.refused = { ...p.refused!, as: '' };
          if (m.state !== 'failed' && m.retries === 0 && refused.length === 0) return false;
          retried = m.state;
          // Retry: same intents (a half-done create is found again, not repeated), fresh retry budget.
          m.state = m.remote ? (m.wentLive ? 'live' : 'ready') : 'pending';
          m.retries = 0;
          m.lastError = null;
          return true;
        }));
        // And marked again after it: a sweep that read the show (and the still failed mirror) after the
        // mark above would otherwise still drop it, its removal finding the score it read (sweep.service.ts).
        if (retried) await shows.markActive(partnerId, showId);
      }
      await app.audit(req, { action: retried ? 'mirror.retry' : 'mirror.resync', partnerId, showId, targetId, ...(retried ? { detail: { from: retried } } : {}) });
      const job = { partnerId, showId, targetId };
      if (!(await sync.promote(target.platform, job))) await sync.enqueue(target.platform, job);
      return reply.status(202).send({ targetId, queued: true });
    },
  );
};
