/**
 * Facebook Live simulator: the Graph API's Live Video endpoints for Pages under
 * `/facebook/{version}/...` (graph.facebook.com/{version}/...), so a target with
 * `baseUrl = http://127.0.0.1:{port}/facebook` uses the real paths. Parts: facebook-graph.sim.ts
 * (errors, parameters, paging), facebook-versions.sim.ts (which version answers),
 * facebook-access.sim.ts (token permissions, debug_token), facebook-shopping.sim.ts (Live Shopping).
 *
 * Protocol, as the Graph API and Live Video API docs describe it:
 *  - access token in `Authorization: Bearer|OAuth <token>` or the `access_token` parameter: a Page
 *    access token works for its own Page only (src/simulators/sim.accounts.ts: the seeded Pages,
 *    more from `POST /_sim/facebook/accounts {pageId?}`, a new Page or another token of one); a
 *    token never seen is a new Page's (CONTRACT §9: any non-empty credentials), with the id the
 *    request names when no Page, live video or video has it; a made-up token for an existing Page →
 *    code 190 (as is every request hit by the `token_expired` fault: subcode 463, session expired); another Page's edges and live videos answer Graph's "Object with ID … does
 *    not exist, cannot be loaded due to missing permissions" (code 100, subcode 33);
 *  - parameters in the query or a form-encoded (or JSON) body; answers in Graph's shapes, errors as
 *    `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`, mostly with HTTP 400;
 *  - `POST /{page-id}/live_videos` with `status` LIVE_NOW | UNPUBLISHED | SCHEDULED_UNPUBLISHED (the
 *    last needs `event_params` — a unix start time, bare or as `{"start_time": …}` — at least 10
 *    minutes and at most 7 days ahead, as Facebook refuses a closer start: `PUT /_sim/facebook/limits
 *    {minScheduleLeadSec}` lowers that for tests only) → `{id, stream_url, secure_stream_url}`; a
 *    scheduled video goes live by itself at its planned start while its stream URL receives data, or
 *    when data arrives after it ("The broadcast will appear … at the planned start time as long as it
 *    is receiving stream data", Schedule a Broadcast); `GET /{page-id}/live_videos` (newest first; its
 *    cursors mark a video, as Graph's mark an item, so videos made or deleted meanwhile shift nothing);
 *    `GET /{id}?fields=…`; `POST /{id}` with title/description/event_params, `status=LIVE_NOW`
 *    (publish), `status=SCHEDULED_CANCELED`, or `end_live_video=true` (a request refused in any part
 *    changes nothing, as Graph's); `DELETE /{id}` (refused while
 *    streaming); comments are created on the live video's underlying video object
 *    (`POST /{video-id}/comments`, `video.id` of the LiveVideo; needs pages_manage_engagement) — the
 *    LiveVideo's `comments` edge only reads, and a POST there gets Graph's "(#100) Unsupported post
 *    request" (code 100, subcode 33); `GET /{live-video-id|video-id}/comments` (`order`
 *    chronological, the default, or reverse_chronological: newest first, cursors mark a comment);
 *  - versions: every answer names the version that served it in `facebook-api-version`; an expired
 *    version is served by the oldest usable one, without an error (facebook-versions.sim.ts); the
 *    simulator's calendar date is `graphClockMs` (PUT /_sim/facebook/limits; 0 = today);
 *  - permissions per token (facebook-access.sim.ts): creating, changing, ending and deleting a live
 *    video need pages_read_engagement and pages_manage_posts (the Broadcasting guide: "a Page access
 *    token for an admin of the Page with the pages_read_engagement and pages_manage_posts
 *    permissions"), reading live videos and comments pages_read_engagement, posting a comment
 *    pages_manage_engagement, Live Shopping live_shopping_manage_video (granted only with
 *    `PUT /_sim/facebook/permissions {token, granted: [...]}`); `GET /debug_token?input_token=`;
 *  - Live Shopping Tools: product pins from the Page's catalog (`PUT /_sim/facebook/catalog`), see
 *    facebook-shopping.sim.ts;
 *  - the stream URL is good for `ingestTtlSec` (24 h) after creation — after the planned start for a
 *    scheduled video — and a video that reached it without going live cannot be published: reading
 *    it (`GET /{id}`) then hands out a fresh stream URL (our model of Facebook managing ingest streams
 *    itself); a live broadcast is stopped after `maxLiveSec` (8 h);
 *  - throttling: the `429` fault answers code 4 with `X-App-Usage`; a full request window (if set with
 *    PUT /_sim/facebook/limits) answers what a Page token gets under Business Use Case limits: code
 *    80001 with `X-Business-Use-Case-Usage` ({"<page id>": [{type: "pages", …,
 *    estimated_time_to_regain_access}]}), and on the Live Shopping edges (catalog items) the Catalog
 *    Management use case's 80009 (`type: "catalog_management"`; which use case counts them: our model).
 *    Each use case has a window of its own (Graph's Business Use Case limits are per type): a full
 *    catalog window does not throttle the Page's calls, and the header names every use case with its
 *    own estimate (0 for one that is not throttled). `PUT /_sim/facebook/use-cases {liveShopping:
 *    "pages"}` counts the Live Shopping edges under the Pages use case instead (80001: Graph's mapping
 *    is not documented, so a client must take the use case from the code, not from its own guess);
 * Facebook discontinued live shopping: there is no order API. Orders made with POST /_sim/facebook/orders
 * are stored (and listed by GET /_sim/facebook/orders) but nothing in this Graph API reports them.
 * Going live here is immediate (no encoder to wait for); viewers on the real platform are ~4–5 s behind.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  GraphError,
  bool,
  expiredToken,
  fieldsOf,
  graphError,
  invalidParam,
  invalidToken,
  iso,
  noSuchObject,
  numericId,
  pageOfList,
  paramsOf,
  send,
  startTimeOf,
  type Params,
} from './facebook-graph.sim.js';
import { FbPermissions } from './facebook-access.sim.js';
import { FB_AVAILABILITY, FbCatalog, isLiveShoppingPath, registerLiveShopping } from './facebook-shopping.sim.js';
import { registerRevocations, seededAccounts, type FacebookSimAccount } from './sim.accounts.js';
import { servedGraphVersion } from './facebook-versions.sim.js';
import { SimPlatform, SimProblem, firstUrl, installSimApiHooks, randomId, type PlatformSimulator, invalidControlBody, parseControlBody } from './sim.platform.js';
import { hasId } from '../lib/id-record.js';
import { streamsOf } from './rtmp-sink.js';

type FacebookExtraLimits = {
  /** How long a stream URL may go unused (Facebook: 24 h). */
  ingestTtlSec: number;
  /** Longest live broadcast (Facebook: 8 h); the broadcast is stopped after it. */
  maxLiveSec: number;
  /** The day (epoch ms) the Graph version calendar is read at; 0 = now. */
  graphClockMs: number;
  /**
   * The shortest lead of a scheduled start (Facebook: 10 minutes). Only for tests of what happens at
   * the planned start, which cannot wait 10 minutes: lowering it is no model of Facebook.
   */
  minScheduleLeadSec: number;
};

const MAX_SCHEDULE_AHEAD_SEC = 7 * 24 * 3600;
/** Facebook refuses a scheduled start closer than 10 minutes (field reports; the adapter sends a preview then). */
const MIN_SCHEDULE_LEAD_SEC = 10 * 60;
const DEFAULT_FIELDS = ['id', 'status', 'title', 'description'];
const LIVE_VIDEO_FIELDS = new Set([
  'id',
  'status',
  'title',
  'description',
  'stream_url',
  'secure_stream_url',
  'permalink_url',
  'creation_time',
  'planned_start_time',
  'broadcast_start_time',
  'embed_html',
  'video',
  'from',
  'live_views',
]);
const COMMENT_FIELDS = new Set(['id', 'message', 'created_time', 'from']);
/** Creating or changing a live video on a Page (developers.facebook.com/docs/live-video-api/guides/streaming). */
const LIVE_VIDEO_WRITE = ['pages_read_engagement', 'pages_manage_posts'] as const;
/** Reading what the Page posted: its live videos and their comments. */
const PAGE_READ = ['pages_read_engagement'] as const;
const AccountBody = z.strictObject({ pageId: z.string().regex(/^\d{1,20}$/).optional() });
const PermissionsBody = z.strictObject({ token: z.string().min(1), granted: z.array(z.string().min(1)) });
const UseCasesBody = z.strictObject({ liveShopping: z.enum(['pages', 'catalog_management']) });
const CatalogBody = z.strictObject({ items: z.array(z.strictObject({ retailer_id: z.string().min(1), name: z.string().optional(), availability: z.enum(FB_AVAILABILITY).optional() })) });

type Status = 'UNPUBLISHED' | 'SCHEDULED_UNPUBLISHED' | 'LIVE' | 'LIVE_STOPPED' | 'VOD' | 'SCHEDULED_CANCELED' | 'SCHEDULED_EXPIRED';

interface FbComment {
  id: string;
  /** Creation order, for cursors that mark a comment (as Graph's mark an item). */
  seq: number;
  message: string;
  createdTime: string;
  fromId: string;
  fromName: string;
}
interface FbLiveVideo {
  id: string;
  videoId: string;
  pageId: string;
  title: string;
  description: string;
  status: Status;
  creationTime: number;
  plannedStart: number | undefined;
  streamKey: string;
  ingestExpiresAt: number;
  broadcastStart: number | undefined;
  comments: FbComment[];
  /** Live Shopping: the catalog product item featured on the video. */
  pinnedItem: string | undefined;
  seq: number;
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export function createFacebookSimulator(): PlatformSimulator {
  const sim = new SimPlatform<FacebookExtraLimits>('facebook', {
    // Pages run on business-use-case limits far above what a mirror needs: no window by default.
    extraLimits: { ingestTtlSec: 24 * 3600, maxLiveSec: 8 * 3600, graphClockMs: 0, minScheduleLeadSec: MIN_SCHEDULE_LEAD_SEC },
  });
  const videos = new Map<string, FbLiveVideo>();
  const streams = streamsOf(sim);
  // Data reaching a scheduled video's stream URL after its planned start puts it on air (startWhenDue).
  streams.onReceiving((key, receiving) => {
    if (!receiving) return;
    for (const v of videos.values()) if (v.streamKey === key) startWhenDue(v);
  });
  const permissions = new FbPermissions();
  const catalog = new FbCatalog();
  /** The Pages and their tokens; per request: the access token and its Page, and the Graph version that answers. */
  let pages: FacebookSimAccount[] = seededAccounts('facebook');
  const tokens = new WeakMap<object, string>();
  /** Page tokens a Page admin revoked (`POST /_sim/facebook/revocations`). */
  const revoked = new Set<string>();
  const pageOfReq = new WeakMap<object, string>();
  const servedVersions = new WeakMap<object, string>();
  let seq = 0;
  /** The use case the Live Shopping edges count under (PUT /_sim/facebook/use-cases). */
  let liveShoppingUseCase: 'pages' | 'catalog_management' = 'catalog_management';
  sim.onReset(() => {
    videos.clear();
    pages = seededAccounts('facebook');
    revoked.clear();
    permissions.clear();
    catalog.clear();
    liveShoppingUseCase = 'catalog_management';
    seq = 0;
  });

  /**
   * Facebook: rtmps://live-api-s.facebook.com:443/rtmp/{key} (secure) and rtmp://…:80/rtmp/{key}; here
   * both are the simulator's RTMP sink (plain RTMP on loopback).
   */
  function streamUrl(v: FbLiveVideo, _secure: boolean): string {
    return `${streams.ingestUrl()}/${v.streamKey}`;
  }

  function newStreamKey(v: FbLiveVideo, now: number): void {
    v.streamKey = `FB-${v.videoId}-0-${randomId(24)}`;
    streams.register(v.streamKey, v.id);
    v.ingestExpiresAt = Math.max(now, (v.plannedStart ?? 0) * 1000) + sim.limits.ingestTtlSec * 1000;
  }

  /** An unused stream URL past its 24 h cannot be streamed to; reading the video hands out a new one. */
  function ingestExpired(v: FbLiveVideo, now = Date.now()): boolean {
    return (v.status === 'UNPUBLISHED' || v.status === 'SCHEDULED_UNPUBLISHED') && now >= v.ingestExpiresAt;
  }

  function render(v: FbLiveVideo, fields: string[]): Record<string, unknown> {
    if (ingestExpired(v)) newStreamKey(v, Date.now());
    const all: Record<string, unknown> = {
      id: v.id,
      status: v.status,
      title: v.title,
      description: v.description,
      stream_url: streamUrl(v, false),
      secure_stream_url: streamUrl(v, true),
      permalink_url: `/${v.pageId}/videos/${v.videoId}/`,
      creation_time: iso(v.creationTime),
      ...(v.plannedStart !== undefined ? { planned_start_time: iso(v.plannedStart * 1000) } : {}),
      ...(v.broadcastStart !== undefined ? { broadcast_start_time: iso(v.broadcastStart) } : {}),
      embed_html: `<iframe src="https://www.facebook.com/plugins/video.php?href=https%3A%2F%2Fwww.facebook.com%2F${v.pageId}%2Fvideos%2F${v.videoId}%2F" width="1280" height="720"></iframe>`,
      video: { id: v.videoId },
      from: { id: v.pageId, name: 'Syndicast Simulator Page' },
      live_views: 0,
    };
    return Object.fromEntries(fields.filter((f) => hasId(all, f)).map((f) => [f, all[f]]));
  }

  /** A live video of the calling token's Page; another Page's is refused like one that does not exist. */
  function find(id: string, verb: 'get' | 'post' | 'delete', req: FastifyRequest): FbLiveVideo {
    const v = videos.get(id);
    if (!v || v.pageId !== pageOfReq.get(req.raw)) throw noSuchObject(id, verb);
    return v;
  }
  /**
   * A token never seen is a new Page's (CONTRACT §9: any non-empty credentials): the Page the request
   * names when that id is free (no Page, live video or video has it), else one with a new id. A made-up
   * token for an existing Page is no token of it: undefined (190, as before).
   */
  function newPageFor(token: string, id: string | undefined): FacebookSimAccount | undefined {
    if (id !== undefined && pages.some((a) => a.pageId === id)) return undefined;
    const free = id !== undefined && /^\d{1,20}$/.test(id) && !videos.has(id) && !byVideoId(id);
    const page: FacebookSimAccount = { pageId: free ? id : newPageId(), pageAccessToken: token };
    pages.push(page);
    return page;
  }
  /**
   * A Page id no Page has: 1048576 and 8 random digits, the next free one when those are taken. (The 8
   * digits alone gave two of 50 Pages one id about once in 80,000, and the second token then acted on
   * the first one's Page.)
   */
  function newPageId(): string {
    let id = Number(`1048576${numericId().slice(-8).padStart(8, '0')}`);
    while (pages.some((a) => a.pageId === String(id))) id = id >= 104_857_699_999_999 ? 104_857_600_000_000 : id + 1;
    return String(id);
  }

  /** Throws unless `pageId` is the calling token's Page. */
  function ownPage(pageId: string, verb: 'get' | 'post', req: FastifyRequest): void {
    if (pageId !== pageOfReq.get(req.raw)) throw noSuchObject(pageId, verb);
  }

  /** The live video whose underlying video object is `videoId`. */
  function byVideoId(videoId: string): FbLiveVideo | undefined {
    for (const v of videos.values()) if (v.videoId === videoId) return v;
    return undefined;
  }

  function validStart(unix: number, now: number): number {
    const nowSec = Math.floor(now / 1000);
    if (unix < nowSec + sim.limits.minScheduleLeadSec || unix > nowSec + MAX_SCHEDULE_AHEAD_SEC) {
      throw invalidParam(
        '(#100) The scheduled start time must be at least 10 minutes and no more than 7 days from now',
        undefined,
        'Scheduled live videos can start between 10 minutes and 7 days from now.',
      );
    }
    return unix;
  }

  function goLive(v: FbLiveVideo): void {
    v.status = 'LIVE';
    v.broadcastStart = Date.now();
    sim.recordEffect({ type: 'show.started', externalId: v.id, title: v.title });
    const started = v.broadcastStart;
    // Facebook stops a broadcast after 8 hours of streaming.
    sim.schedule(sim.limits.maxLiveSec * 1000, () => {
      if (videos.get(v.id) === v && v.status === 'LIVE' && v.broadcastStart === started) stop(v);
    });
  }

  function stop(v: FbLiveVideo): void {
    v.status = 'LIVE_STOPPED';
    sim.recordEffect({ type: 'show.ended', externalId: v.id, title: v.title });
  }

  /**
   * A scheduled live video goes live by itself: "The broadcast will appear on the node's
   * timeline/feed at the planned start time as long as it is receiving stream data" (Live Video API,
   * Schedule a Broadcast). At the planned start when its stream URL is receiving, or as soon as data
   * arrives after it; before it the data is a preview. No POST status=LIVE_NOW is needed for that.
   */
  function startWhenDue(v: FbLiveVideo, now = Date.now()): void {
    if (videos.get(v.id) !== v || v.status !== 'SCHEDULED_UNPUBLISHED' || v.plannedStart === undefined) return;
    if (now < v.plannedStart * 1000 || ingestExpired(v, now) || !streams.receiving(v.streamKey)) return;
    goLive(v);
  }

  /**
   * Look again at the planned start (a timer per planned start: one a reschedule made stale stops; a
   * timer that fires a little early, as they may, waits out the rest).
   */
  function watchPlannedStart(v: FbLiveVideo): void {
    const at = v.plannedStart;
    if (at === undefined) return;
    sim.schedule(at * 1000 - Date.now(), () => {
      if (v.plannedStart !== at) return;
      if (Date.now() < at * 1000) watchPlannedStart(v);
      else startWhenDue(v);
    });
  }

  function createVideo(pageId: string, p: Params, now: number): FbLiveVideo {
    const status = p.status ?? 'UNPUBLISHED';
    if (!['LIVE_NOW', 'UNPUBLISHED', 'SCHEDULED_UNPUBLISHED'].includes(status)) {
      throw invalidParam(`(#100) param status must be one of {LIVE_NOW, UNPUBLISHED, SCHEDULED_UNPUBLISHED}`);
    }
    const start = startTimeOf(p.event_params);
    if (status === 'SCHEDULED_UNPUBLISHED' && start === undefined) throw invalidParam('(#100) A scheduled live video needs event_params with its start time');
    const videoId = numericId();
    const v: FbLiveVideo = {
      id: numericId(),
      videoId,
      pageId,
      title: p.title ?? '',
      description: p.description ?? '',
      status: status === 'SCHEDULED_UNPUBLISHED' ? 'SCHEDULED_UNPUBLISHED' : 'UNPUBLISHED',
      creationTime: now,
      plannedStart: status === 'SCHEDULED_UNPUBLISHED' && start !== undefined ? validStart(start, now) : undefined,
      streamKey: '',
      ingestExpiresAt: 0,
      broadcastStart: undefined,
      comments: [],
      pinnedItem: undefined,
      seq: ++seq,
    };
    newStreamKey(v, now);
    videos.set(v.id, v);
    sim.recordEffect({ type: 'show.created', externalId: v.id, title: v.title });
    if (status === 'LIVE_NOW') goLive(v);
    watchPlannedStart(v);
    return v;
  }

  /**
   * `POST /{id}`: Graph refuses the whole request when any part of it is wrong, so everything (the
   * start time, the status change) is checked before anything changes.
   */
  function update(v: FbLiveVideo, p: Params): void {
    const now = Date.now();
    if (bool(p.end_live_video)) {
      if (v.status !== 'LIVE') throw invalidParam('(#100) This live video is not live; only a live broadcast can be ended', 1363048);
      stop(v);
      return;
    }
    const start = startTimeOf(p.event_params);
    // A planned start only exists on a scheduled video; elsewhere the parameter has nothing to change.
    const plannedStart = start !== undefined && v.status === 'SCHEDULED_UNPUBLISHED' ? validStart(start, now) : v.plannedStart;
    const change = statusChange(v, p.status, now);

    const before = JSON.stringify([v.title, v.description, v.plannedStart]);
    if (p.title !== undefined) v.title = p.title;
    if (p.description !== undefined) v.description = p.description;
    const moved = v.plannedStart !== plannedStart;
    v.plannedStart = plannedStart;
    if (JSON.stringify([v.title, v.description, v.plannedStart]) !== before) sim.recordEffect({ type: 'show.updated', externalId: v.id, title: v.title });

    if (change === 'live') {
      goLive(v);
    } else if (change === 'cancel') {
      v.status = 'SCHEDULED_CANCELED';
      sim.recordEffect({ type: 'show.cancelled', externalId: v.id, title: v.title });
    } else if (moved) {
      watchPlannedStart(v);
    }
  }

  /** What `status` asks of `v` (nothing: absent, or LIVE_NOW on a live video); throws Graph's error for a change it cannot make. */
  function statusChange(v: FbLiveVideo, status: string | undefined, now: number): 'live' | 'cancel' | undefined {
    switch (status) {
      case undefined:
        return undefined;
      case 'LIVE_NOW':
        if (v.status === 'LIVE') return undefined; // already live
        if (v.status !== 'UNPUBLISHED' && v.status !== 'SCHEDULED_UNPUBLISHED') throw invalidParam(`(#100) A ${v.status} live video cannot go live`, 1363049);
        if (ingestExpired(v, now)) throw invalidParam('(#100) The stream URL of this live video expired before it was used; read secure_stream_url again for a new one', 1363050);
        return 'live';
      case 'SCHEDULED_CANCELED':
        if (v.status !== 'SCHEDULED_UNPUBLISHED') throw invalidParam('(#100) Only a scheduled live video can be cancelled', 1363049);
        return 'cancel';
      default:
        throw invalidParam('(#100) param status must be one of {LIVE_NOW, SCHEDULED_CANCELED}');
    }
  }

  // --- the plugin -------------------------------------------------------------------------

  /** The Business Use Cases this simulator counts apart: the Live Shopping edges are the catalog's (our model). */
  const USE_CASES = ['pages', 'catalog_management'] as const;
  const useCaseOf = (req: FastifyRequest): (typeof USE_CASES)[number] => (isLiveShoppingPath((req.raw.url ?? '').split('?')[0] ?? '') ? liveShoppingUseCase : 'pages');

  async function plugin(app: FastifyInstance): Promise<void> {
    installSimApiHooks(app, sim, {
      faultReply: (kind) => {
        if (kind === '500') return graphError(500, 2, 'An unexpected error has occurred. Please retry your request later.', { transient: true });
        if (kind === 'token_expired') return expiredToken();
        return graphError(400, 4, '(#4) Application request limit reached', {
          headers: { 'x-app-usage': JSON.stringify({ call_count: 100, total_cputime: 30, total_time: 45 }) },
        });
      },
      // "requests made with system user or page access tokens are subject to Business Use Case Rate
      // Limits" (Graph rate-limiting guide): a Page token that runs out gets the Pages BUC error, code
      // 80001, with X-Business-Use-Case-Usage keyed by the Page (code 32 / X-Page-Usage is what user
      // tokens get, which nobody here holds).
      // The Live Shopping edges act on the Page's catalog items (permission catalog_management or
      // pages_manage_posts): the Catalog Management BUC, code 80009 of the same family (which use case
      // Graph counts them under is our model; the family is the rate-limiting guide's), so a client
      // must take the whole 8000x family as throttling, not 80001 alone.
      // Each use case is counted and throttled on its own (a Business Use Case limit is per type), and
      // the header names every use case of the Page with its own estimate (0: not throttled).
      windowKey: (req) => useCaseOf(req),
      rateLimitReply: (_w, req) => {
        const header = req.headers.authorization ?? '';
        const token = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(header)?.[1] ?? paramsOf(req).access_token;
        const pageId = pages.find((a) => a.pageAccessToken === token)?.pageId ?? (req.params as { id?: string }).id ?? '0';
        const useCase = useCaseOf(req);
        const now = Date.now();
        const usage = USE_CASES.map((type) => {
          const w = sim.windowState(now, type);
          const full = w.remaining === 0;
          return {
            type,
            call_count: Math.min(100, Math.round((100 * (w.limit - w.remaining)) / Math.max(1, w.limit))),
            total_cputime: 20,
            total_time: 30,
            estimated_time_to_regain_access: full ? Math.max(1, Math.ceil(w.resetMs / 60_000)) : 0,
          };
        });
        const [code, what] = useCase === 'catalog_management' ? [80009, 'Catalog'] : [80001, 'Page'];
        return graphError(400, code, `(#${code}) There have been too many calls to this ${what} account. Wait a bit and try again.`, {
          headers: { 'x-business-use-case-usage': JSON.stringify({ [pageId]: usage }) },
        });
      },
    });

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      if (err instanceof GraphError) return send(reply, err.reply);
      if ((err.statusCode ?? 500) < 500) return send(reply, graphError(400, 100, `(#100) ${err.code === 'SIM_BODY_PARSE_ERROR' ? 'Invalid request body' : err.message}`));
      return send(reply, graphError(500, 1, 'An unknown error has occurred.', { transient: true }));
    });
    app.setNotFoundHandler((req, reply) => send(reply, graphError(400, 2500, `Unknown path components: ${(req.raw.url ?? '').split('?')[0] ?? ''}`)));

    await app.register(async (api) => {
      api.addHook('preHandler', async (req, reply) => {
        const { version } = req.params as { version?: string };
        if (version !== undefined) {
          // An expired version is served by the oldest usable one, silently; an unknown one is not a path.
          const served = servedGraphVersion(version, sim.limits.graphClockMs || Date.now());
          if (!served) return send(reply, graphError(400, 2500, `Unknown path components: /${version}`));
          servedVersions.set(req.raw, served);
        }
        const header = req.headers.authorization ?? '';
        const token = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(header)?.[1] ?? paramsOf(req).access_token;
        if (!token) return send(reply, graphError(400, 104, 'An access token is required to request this resource.'));
        if (revoked.has(token)) return send(reply, invalidToken());
        const page = pages.find((a) => a.pageAccessToken === token) ?? newPageFor(token, (req.params as { id?: string }).id);
        if (!page) return send(reply, invalidToken());
        tokens.set(req.raw, token);
        pageOfReq.set(req.raw, page.pageId);
        return undefined;
      });
      api.addHook('onSend', async (req, reply, payload) => {
        const served = servedVersions.get(req.raw);
        if (served) void reply.header('facebook-api-version', served);
        return payload;
      });
      registerRoutes(api);
      registerLiveShopping(api, { sim, catalog, permissions, tokenOf, liveVideo: find });
    });
  }

  function tokenOf(req: FastifyRequest): string {
    return tokens.get(req.raw) ?? '';
  }

  /** Facebook-only control: what each token may do, and the Page's catalog. */
  async function control(app: FastifyInstance): Promise<void> {
    registerRevocations(app, revoked);
    // A Page access token: of a new Page, or another one of `pageId` (each Page admin's login gives one).
    app.post('/accounts', async (req, reply) => {
      const body = parseControlBody(AccountBody, req.body, 'expected {pageId?: string}');
      if (body.pageId !== undefined && !pages.some((a) => a.pageId === body.pageId)) throw new SimProblem(404, 'Unknown account', `no Facebook Page ${body.pageId}`);
      const account: FacebookSimAccount = { pageId: body.pageId ?? newPageId(), pageAccessToken: `EAAGsim${randomId(24).replace(/[-_]/g, 'x')}` };
      pages.push(account);
      return reply.code(201).send({ ...account, credentials: { pageId: account.pageId, pageAccessToken: account.pageAccessToken } });
    });
    app.put('/permissions', async (req) => {
      const b = PermissionsBody.safeParse(req.body);
      if (!b.success) throw invalidControlBody('expected {token: string, granted: string[]}', b.error);
      permissions.set(b.data.token, b.data.granted);
      return { token: b.data.token, granted: [...permissions.of(b.data.token)].sort() };
    });
    app.put('/use-cases', async (req) => {
      const b = UseCasesBody.safeParse(req.body);
      if (!b.success) throw invalidControlBody('expected {liveShopping: "pages" | "catalog_management"}', b.error);
      liveShoppingUseCase = b.data.liveShopping;
      return { liveShopping: liveShoppingUseCase };
    });
    app.put('/catalog', async (req) => {
      const b = CatalogBody.safeParse(req.body);
      if (!b.success) throw invalidControlBody('expected {items: [{retailer_id: string, name?: string, availability?: string}]}', b.error);
      return { items: catalog.set(b.data.items) };
    });
  }

  function registerRoutes(api: FastifyInstance): void {
    type IdParams = { version: string; id: string };

    api.get('/:version/debug_token', async (req) => {
      const input = paramsOf(req).input_token;
      // A revoked token is a token Graph knows, and no longer valid (the adapter must not trust it).
      const state = input !== undefined && revoked.has(input) ? 'revoked' : pages.some((a) => a.pageAccessToken === input) ? 'valid' : 'unknown';
      return permissions.debugToken(input, state);
    });

    api.post('/:version/:id/live_videos', async (req) => {
      const { id: pageId } = req.params as IdParams;
      if (!/^\d+$/.test(pageId)) throw noSuchObject(pageId, 'post');
      ownPage(pageId, 'post', req);
      permissions.require(tokenOf(req), LIVE_VIDEO_WRITE);
      const v = createVideo(pageId, paramsOf(req), Date.now());
      return {
        id: v.id,
        stream_url: streamUrl(v, false),
        secure_stream_url: streamUrl(v, true),
        stream_secondary_urls: [],
        secure_stream_secondary_urls: [],
      };
    });

    api.get('/:version/:id/live_videos', async (req) => {
      const { id: pageId } = req.params as IdParams;
      const p = paramsOf(req);
      const fields = fieldsOf(p, LIVE_VIDEO_FIELDS, ['id', 'status', 'title', 'description']);
      ownPage(pageId, 'get', req);
      permissions.require(tokenOf(req), PAGE_READ);
      let list = [...videos.values()].filter((v) => v.pageId === pageId).sort((a, b) => b.seq - a.seq);
      if (p.broadcast_status) {
        let wanted: string[];
        try {
          wanted = JSON.parse(p.broadcast_status) as string[];
        } catch {
          wanted = p.broadcast_status.split(',');
        }
        list = list.filter((v) => wanted.includes(v.status));
      }
      const page = pageOfList(list, p, 25, (v) => v.seq);
      return { ...page, data: page.data.map((v) => render(v, fields)) };
    });

    api.get('/:version/:id', async (req) => {
      const { id } = req.params as IdParams;
      // The token's own Page node (`GET /{page-id}?fields=id`: the cheap check of a Page token).
      if (id === pageOfReq.get(req.raw) && !videos.has(id)) {
        const fields = new Set((paramsOf(req).fields ?? 'id,name').split(',').map((f) => f.trim()));
        return { id, ...(fields.has('name') ? { name: `Sim Page ${id}` } : {}) };
      }
      const v = find(id, 'get', req);
      permissions.require(tokenOf(req), PAGE_READ);
      return render(v, fieldsOf(paramsOf(req), LIVE_VIDEO_FIELDS, DEFAULT_FIELDS));
    });

    api.post('/:version/:id', async (req) => {
      const { id } = req.params as IdParams;
      const v = find(id, 'post', req);
      permissions.require(tokenOf(req), LIVE_VIDEO_WRITE);
      update(v, paramsOf(req));
      return { id: v.id };
    });

    api.delete('/:version/:id', async (req) => {
      const { id } = req.params as IdParams;
      const v = find(id, 'delete', req);
      permissions.require(tokenOf(req), LIVE_VIDEO_WRITE);
      if (v.status === 'LIVE') throw invalidParam('(#100) A live video that is streaming cannot be deleted; end it first', 1363051);
      videos.delete(v.id);
      if (v.status === 'UNPUBLISHED' || v.status === 'SCHEDULED_UNPUBLISHED') sim.recordEffect({ type: 'show.cancelled', externalId: v.id, title: v.title });
      return { success: true };
    });

    api.post('/:version/:id/comments', async (req) => {
      const { id } = req.params as IdParams;
      // Only the video object takes comments; the LiveVideo's comments edge is read-only.
      const v = byVideoId(id);
      if (!v || v.pageId !== pageOfReq.get(req.raw)) throw noSuchObject(id, 'post');
      permissions.require(tokenOf(req), ['pages_manage_engagement']);
      const { message } = paramsOf(req);
      if (!message || message.trim() === '') throw invalidParam('(#100) The parameter message is required');
      if (message.length > 8000) throw invalidParam('(#100) The comment is too long');
      if (v.status !== 'LIVE' && v.status !== 'LIVE_STOPPED' && v.status !== 'VOD') {
        throw invalidParam('(#100) Comments can be posted once the live video is published', 1363052);
      }
      const c: FbComment = { id: `${v.videoId}_${numericId()}`, seq: ++seq, message, createdTime: iso(Date.now()), fromId: v.pageId, fromName: 'Syndicast Simulator Page' };
      v.comments.push(c);
      const url = firstUrl(message);
      sim.recordEffect({ type: 'message.posted', externalId: v.id, ...(url ? { url } : {}) });
      return { id: c.id };
    });

    api.get('/:version/:id/comments', async (req) => {
      const { id } = req.params as IdParams;
      const v = videos.get(id) ?? byVideoId(id);
      if (!v || v.pageId !== pageOfReq.get(req.raw)) throw noSuchObject(id, 'get');
      permissions.require(tokenOf(req), PAGE_READ);
      const p = paramsOf(req);
      const fields = fieldsOf(p, COMMENT_FIELDS, ['id', 'message', 'created_time']);
      // reverse_chronological: newest first, with cursors that mark a comment, so comments posted while a
      // client pages shift nothing; chronological (the default): oldest first, offset cursors
      const newestFirst = p.order === 'reverse_chronological';
      const ordered = newestFirst ? [...v.comments].reverse() : [...v.comments];
      const page = newestFirst ? pageOfList(ordered, p, 25, (c) => c.seq) : pageOfList(ordered, p, 25);
      return {
        ...page,
        data: page.data.map((c) => {
          const all: Record<string, unknown> = { id: c.id, message: c.message, created_time: c.createdTime, from: { id: c.fromId, name: c.fromName } };
          return Object.fromEntries(fields.map((f) => [f, all[f]]));
        }),
      };
    });
  }

  return {
    platform: 'facebook',
    sim,
    plugin,
    control,
    createShowByHand(title: string, account?: string): string {
      const pageId = account ?? pages[0]!.pageId;
      if (!pages.some((a) => a.pageId === pageId)) throw new SimProblem(404, 'Unknown account', `no Facebook Page ${pageId}`);
      return createVideo(pageId, { title, status: 'UNPUBLISHED' }, Date.now()).id;
    },
    showExists: (externalId) => videos.has(externalId),
  };
}
