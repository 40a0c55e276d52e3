/**
 * Facebook Live on a Page (Graph API, version from FACEBOOK_GRAPH_VERSION; Live Video API): the stream
 * is created, started and ended by API. A pin is a product pinned with Meta's Live Shopping Tools API
 * where the target's token has `live_shopping_manage_video` and the product is in the Page's catalog,
 * otherwise a comment by the Page carrying the tracked link; there is no order data
 * (orderWebhooks/orderReport false).
 *
 * createShow — when the live video is created (our choice, documented for operators):
 *  - show starts in 10 min … 7 days (at least 11 min: see SEND_MARGIN_MS): `status=SCHEDULED_UNPUBLISHED` with `event_params` =
 *    `{"start_time": <unix s>}` (Facebook schedules at most 7 days ahead). The scheduling guide shows a
 *    bare unix time; the parameter's own reference ("Live Video Event Parameter", example
 *    `{ start_time: 1641013200, cover: … }`) and the official Business SDKs (type `Object`, sent
 *    JSON-encoded) use the object, so we do. Viewers see an upcoming broadcast; the encoder can
 *    push (preview) any time before the start.
 *  - show starts in less than that (or is late): `status=UNPUBLISHED`, a preview only the Page's admins
 *    see, published by startShow.
 *  - show starts more than 7 days ahead: nothing is created yet. createShow answers RetryableError with a
 *    delay until the show is inside Facebook's 7-day window (at most 3 days at a time), because a live
 *    video created earlier could neither be scheduled nor keep its stream URL (24 h) until then. A show
 *    that is live already (its snapshot's start left days ahead) is not held back: a preview, started at once.
 *  startShow goes live with `POST /{id} status=LIVE_NOW`. A preview waits for it; a scheduled video does
 *  not always: "The broadcast will appear on the node's timeline/feed at the planned start time as long
 *  as it is receiving stream data" (Schedule a Broadcast), so when the relay is already sending at the
 *  planned start (the source publishing before the show's start event), Facebook puts it on air itself
 *  and LIVE_NOW then finds it live. updateShow moves the planned start with the show's (at least 11 min
 *  ahead); a show put back later than that cannot be, and airs at the old time if video is arriving.
 *  The creation marker goes on the last line of the description (`syndicast:<marker>`; LiveVideo has no
 *  metadata field, so viewers can see it); recovery pages `GET /{page-id}/live_videos` (newest first)
 *  for it, back to the uncertain attempt's start (findLiveVideo).
 * Ingest — `secure_stream_url` (RTMPS only) → {url, streamKey}. Facebook: "the stream URL must be used
 *  within 24 hours; once used it can be streamed to for up to 8 hours". We record `ingestExpiresAt`
 *  (24 h after creation, or after the planned start for a scheduled video — our reading, since a video
 *  scheduled 7 days ahead must keep its URL until it starts). The RemoteShow cannot be replaced after
 *  createShow, so a fresh URL cannot reach the mirror's `ingest` by itself: when startShow finds the URL
 *  expired and the video not yet live, it re-fetches `secure_stream_url` and answers ActionRequired,
 *  telling the operator to re-link the same live video (which re-reads the URL through attachShow) and
 *  point the encoder at it. The 8-hour limit is Facebook's to enforce: it stops the broadcast, and
 *  endShow treats an already stopped video as ended.
 * Pins — capability per target (resolveCapabilities), from the token's permissions (read once and
 *  cached, facebook.permissions.ts):
 *  - with `live_shopping_manage_video`: the catalog item whose retailer_id is the product's SKU is pinned
 *    on the live video (facebook.live-shopping.ts; ref `lsp:<item id>`), and unpin takes it down again
 *    (a pin whose outcome is unknown, without a ref: the featured item is read, and taken down when it
 *    is the product's).
 *    A product that is not in the Page's catalog, or a pin refused for a permission, falls back to:
 *  - a comment by the Page, created on the live video's underlying **video** object
 *    (`POST /{video-id}/comments`, `video.id` of the LiveVideo; needs pages_manage_engagement). The
 *    LiveVideo node's own `comments` edge is read-only (Graph refuses a POST there). A comment cannot be
 *    taken back as an "unpin": unpin leaves it.
 *  Viewers are ~4–5 s behind the encoder: a pin delay (mirror pin `dueAt`) of about that keeps the link
 *  from appearing before the product is on screen.
 */
import { z } from 'zod';
import { formatMoney } from '../../domain/money.js';
import type { AdapterFactory, Capabilities, OpContext, PinSpec, RemoteShow, RecoverAttempt, ShowSpec, TargetAdapter } from '../target.adapter.js';
import { ActionRequiredError, PermanentError, RetryableError, isTargetError } from '../target.errors.js';
import { adviceTarget, credentialsPatch } from '../credentials-advice.js';
import { carriesPin, pinTag, pinTagSuffix } from '../pin-tag.js';
import { listedTimeMs } from '../../lib/timestamp.js';
import { RECOVERY_CLOCK_MARGIN_MS, recoveryHorizon } from '../recovery-horizon.js';
import { createFacebookClient, CREDENTIAL_FIELDS } from './facebook.client.js';
import { createLiveShopping } from './facebook.live-shopping.js';
import { createPermissionReader, isPermissionRefusal } from './facebook.permissions.js';
import {
  CommentListSchema,
  CommentSchema,
  CreatedLiveVideoSchema,
  ENDED_STATUSES,
  LiveVideoListSchema,
  LiveVideoSchema,
  NOT_LIVE_YET_STATUSES,
  WriteResultSchema,
  type LiveVideo,
} from './facebook.schemas.js';
import { platformTitle, PRODUCT_TITLE_FALLBACK, SHOW_TITLE_FALLBACK } from '../platform-text.js';
import { describeWithMarker, markerOf } from '../show-marker.js';

/** Every Facebook target: pins are comments, which cannot be taken back. */
export const FACEBOOK_CAPABILITIES: Capabilities = {
  createShow: 'api',
  pin: 'comment',
  unpin: false,
  lifecycle: true,
  ingest: true,
  orderWebhooks: false,
  orderReport: false,
};
/** A target whose token may use the Live Shopping Tools API: products are pinned and unpinned. */
export const FACEBOOK_LIVE_SHOPPING_CAPABILITIES: Capabilities = { ...FACEBOOK_CAPABILITIES, pin: 'product_pin', unpin: true };

/** Pin refs of Live Shopping pins (comment ids are `<video id>_<n>`, never this). */
const PRODUCT_PIN_REF = 'lsp:';

const DAY_MS = 24 * 3600_000;
/** Facebook: a broadcast can be scheduled "up to seven days from [its] creation date". */
const MAX_SCHEDULE_AHEAD_MS = 7 * DAY_MS;
/** Stay this far inside the 7 days so that clock skew and request time cannot push us over. */
const SCHEDULE_MARGIN_MS = 10 * 60_000;
/** Facebook refuses a scheduled start closer than this (field reports): a preview (UNPUBLISHED) is created instead. */
const MIN_SCHEDULE_LEAD_MS = 10 * 60_000;
/**
 * The lead is measured when the request is about to go (after the limiter and the intent store's
 * round trips), and a start is scheduled only this much beyond MIN_SCHEDULE_LEAD_MS: the request's
 * own time, the clock skew with Facebook and the start's rounding down to whole seconds (start_time is
 * a unix time) must never land it under 10 minutes. It was measured before the once-write, with no
 * margin: a show ~10 min out was sent as scheduled and could be refused.
 */
const SEND_MARGIN_MS = 60_000;

/** Whether a start `start` (ms) can be scheduled on Facebook if the request goes now. */
function schedulable(start: number): boolean {
  const lead = start - Date.now();
  return lead >= MIN_SCHEDULE_LEAD_MS + SEND_MARGIN_MS && lead <= MAX_SCHEDULE_AHEAD_MS - SCHEDULE_MARGIN_MS;
}
/** A show further out than 7 days is looked at again at most this much later. */
const MAX_DEFER_MS = 3 * DAY_MS;
export const INGEST_TTL_MS = DAY_MS;
const LIVE_VIDEO_FIELDS = 'id,status,title,description,secure_stream_url,permalink_url,creation_time,planned_start_time,video';
const RECOVERY_PAGE_SIZE = 50;
/**
 * A bound on the lookup all the same (10,000 live videos newer than the attempt): past it the lookup
 * cannot say "not there", and creating another live video might make a second one.
 */
const MAX_RECOVERY_PAGES = 200;
/**
 * A pin comment lookup reads the video's comments (newest first, 100 a page) back to the uncertain
 * attempt's start less RECOVERY_CLOCK_MARGIN_MS, at most this many pages (5,000 comments newer than it).
 */
const MAX_COMMENT_PAGES = 50;
const COMMENT_PAGE_SIZE = 100;

interface CreatedRef {
  id: string;
  secureStreamUrl: string | null;
  /** Sent as SCHEDULED_UNPUBLISHED (decided at send time); absent in a ref found by recovery or stored before. */
  scheduled?: boolean;
}

/** `rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-Ab…` → server URL + stream key (what encoders ask for). */
export function splitStreamUrl(secureStreamUrl: string): { url: string; streamKey: string } {
  const i = secureStreamUrl.lastIndexOf('/');
  return { url: secureStreamUrl.slice(0, i + 1), streamKey: secureStreamUrl.slice(i + 1) };
}

function absolute(permalink: string | undefined): string | undefined {
  if (!permalink) return undefined;
  return permalink.startsWith('/') ? `https://www.facebook.com${permalink}` : permalink;
}

/**
 * `🛍 {title} — {price} {link} · {tag}`, the tag being the pin episode's (`pinTag(op.marker)`, see
 * pin-tag.ts): a crash recovery finds this episode's comment by it.
 */
export function pinComment(pin: PinSpec, tag: string): string {
  return `🛍 ${platformTitle(pin.title, PRODUCT_TITLE_FALLBACK).trim()} — ${formatMoney(pin.price)} ${pin.linkUrl}${pinTagSuffix(tag)}`;
}

function isCode100(err: unknown): boolean {
  return isTargetError(err) && (err.reason === 'code_100' || (err.reason?.startsWith('code_100_') ?? false));
}

export const createFacebookAdapter: AdapterFactory = (ctx) => {
  const client = createFacebookClient(ctx);
  const log = ctx.log.child({ module: 'facebook.adapter', targetId: ctx.target.id });
  const permissions = createPermissionReader(client, log);
  const liveShopping = createLiveShopping(client);
  const videoPath = (id: string): string => `/${encodeURIComponent(id)}`;

  /**
   * A non-idempotent write inside `once` (one request), its limiter slot taken with the intent's start
   * (`limitedRequest`): a full window throws there, before anything is recorded, and a step done
   * already takes none; a block of the call's use case (pages), read as the request goes, forgets the
   * step (`singleRequest`). Taken before the start (`reserve()`), a done step spent the slot all the
   * same: at one request per window a create recorded its live video and then spent each run's token
   * on that reserve, and the read after it was refused for ever.
   */
  async function onceWrite<T>(op: OpContext, step: string, run: () => Promise<T>, recover: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> {
    return op.once(step, run, recover, { limitedRequest: true, singleRequest: true });
  }

  async function getLiveVideo(id: string, fields = LIVE_VIDEO_FIELDS): Promise<LiveVideo> {
    return client.call({ method: 'GET', path: videoPath(id), params: { fields }, schema: LiveVideoSchema });
  }

  function remoteShow(lv: LiveVideo, data: Record<string, string>): RemoteShow {
    const streaming = lv.status === undefined || NOT_LIVE_YET_STATUSES.has(lv.status) || lv.status === 'LIVE';
    return {
      externalId: lv.id,
      url: absolute(lv.permalink_url),
      ingest: streaming && lv.secure_stream_url ? splitStreamUrl(lv.secure_stream_url) : undefined,
      // Comments are created on the underlying video object, not on the LiveVideo: keep its id.
      data: lv.video?.id ? { ...data, videoId: lv.video.id } : data,
    };
  }

  /**
   * The live video carrying `marker`, made no earlier than `since` (the uncertain attempt's start, our
   * clock). The Page's list is newest first: it is read until a page ends with a video created before
   * `since` less the clock margin (or the list ends; see recoveryHorizon); without `since`, to the end.
   * It used to stop after 10 pages of 50: at 1,000 shows on one Page, 775 newer live videos had been
   * created by the time a crashed worker's create was looked for, the lookup missed it, and the show
   * got a second live video.
   */
  async function findLiveVideo(marker: string, since: string | undefined): Promise<CreatedRef | null> {
    const { pageId } = client.credentials;
    const passed = recoveryHorizon(since, RECOVERY_CLOCK_MARGIN_MS);
    let after: string | undefined;
    for (let i = 0; i < MAX_RECOVERY_PAGES; i++) {
      const page = await client.call({
        method: 'GET',
        path: `/${pageId}/live_videos`,
        params: { fields: 'id,description,status,secure_stream_url,creation_time', limit: RECOVERY_PAGE_SIZE, after },
        schema: LiveVideoListSchema,
      });
      const hit = page.data.find((v) => markerOf(v.description) === marker);
      if (hit) return { id: hit.id, secureStreamUrl: hit.secure_stream_url ?? null };
      if (passed(page.data.map((v) => v.creation_time))) return null; // everything further down is older still
      const next = page.paging?.next ? page.paging.cursors?.after : undefined;
      if (!next || next === after) return null;
      after = next;
    }
    throw new ActionRequiredError(
      `could not tell whether an earlier attempt created the Facebook live video (marker syndicast:${marker}): ` +
        `more than ${MAX_RECOVERY_PAGES * RECOVERY_PAGE_SIZE} live videos on Page ${pageId} are newer than it. Look for a live video whose description ` +
        `ends with that marker line and link it (PUT …/mirrors/${ctx.target.id} {"externalId": "<live video id>"}); if there is none, create one and link it.`,
      'recovery_inconclusive',
    );
  }

  /** The live video's underlying video object (the one that takes comments). */
  async function videoIdOf(remote: RemoteShow): Promise<string> {
    if (remote.data.videoId) return remote.data.videoId; // mirrors made before videoId was kept read it once
    const lv = await getLiveVideo(remote.externalId, 'id,video');
    if (!lv.video?.id) throw new PermanentError(`Facebook live video ${remote.externalId} has no video object to comment on`, 'no_video');
    return lv.video.id;
  }

  /**
   * This pin episode's comment: by the Page, carrying the link and the episode's tag (a re-pin of the
   * product has the same link), made no earlier than `since` (the uncertain attempt's start, our clock).
   * The comments are read newest first until a page ends before `since` less the clock margin (see
   * recoveryHorizon); without `since`, to the end; at most MAX_COMMENT_PAGES either way.
   */
  async function findPinComment(videoId: string, linkUrl: string, tag: string, since: string | undefined): Promise<{ id: string } | null> {
    const { pageId } = client.credentials;
    const passed = recoveryHorizon(since, RECOVERY_CLOCK_MARGIN_MS);
    let after: string | undefined;
    for (let i = 0; i < MAX_COMMENT_PAGES; i++) {
      const page = await client.call({
        method: 'GET',
        path: `${videoPath(videoId)}/comments`,
        params: { fields: 'id,message,created_time,from', order: 'reverse_chronological', filter: 'stream', limit: COMMENT_PAGE_SIZE, after },
        schema: CommentListSchema,
      });
      const hit = page.data.find((c) => c.from?.id === pageId && carriesPin(c.message ?? '', linkUrl, tag));
      if (hit) return { id: hit.id };
      if (passed(page.data.map((c) => c.created_time))) return null; // everything further down is older still
      const next = page.paging?.next ? page.paging.cursors?.after : undefined;
      if (!next || next === after) return null;
      after = next;
    }
    // A comment stream busier than the pages read: posting again risks a second comment; stopping the
    // mirror mid-show for a comment would cost more.
    log.warn({ videoId, since }, `pin lookup: more than ${MAX_COMMENT_PAGES * COMMENT_PAGE_SIZE} comments since the attempt; posting again`);
    return null;
  }

  async function statusOf(id: string): Promise<string | undefined> {
    return (await getLiveVideo(id, 'id,status')).status;
  }

  /** `end_live_video=true`; a video already stopped (by us earlier, by the Page, or by Facebook's 8-hour limit) is ended. */
  async function endVideo(id: string): Promise<void> {
    try {
      await client.call({ method: 'POST', path: videoPath(id), params: { end_live_video: true }, schema: WriteResultSchema });
    } catch (err) {
      if (!isCode100(err)) throw err;
      const status = await statusOf(id);
      if (status && ENDED_STATUSES.has(status)) return;
      throw err;
    }
  }

  /**
   * LIVE_NOW was refused, or the stream URL is past its 24 h: find out why from the video itself.
   * Returns when it is live after all; otherwise throws what the mirror should do.
   */
  async function explainNotStarted(remote: RemoteShow, expiresAt: number, refusal: unknown): Promise<void> {
    const id = remote.externalId;
    const lv = await getLiveVideo(id, 'id,status,secure_stream_url');
    if (lv.status === 'LIVE') return;
    if (lv.status && ENDED_STATUSES.has(lv.status)) throw new PermanentError(`Facebook live video ${id} has already ended (${lv.status})`, 'already_ended');
    const renewed = lv.secure_stream_url !== undefined && remote.ingest !== undefined && splitStreamUrl(lv.secure_stream_url).streamKey !== remote.ingest.streamKey;
    const expired = !Number.isNaN(expiresAt) && Date.now() > expiresAt;
    if ((expired || renewed) && lv.status && NOT_LIVE_YET_STATUSES.has(lv.status)) {
      throw new ActionRequiredError(
        `the Facebook stream URL of live video ${id} expired${expired ? ` at ${new Date(expiresAt).toISOString()}` : ''} before the show went live ` +
          `(Facebook allows 24 h to start streaming)${renewed ? '; Facebook has issued a new one' : ''}. Re-link the live video ` +
          `(PUT …/mirrors/${ctx.target.id} {"externalId": "${id}"}) to read its current stream URL into the mirror's ingest, point the encoder at it, ` +
          'and the mirror continues from there.',
        'ingest_expired',
      );
    }
    throw refusal ?? new PermanentError(`Facebook live video ${id} cannot go live (status ${lv.status ?? 'unknown'})`, 'not_startable');
  }

  const adapter: TargetAdapter = {
    platform: 'facebook',
    capabilities: FACEBOOK_CAPABILITIES,

    async resolveCapabilities() {
      return (await permissions.get()).liveShopping ? FACEBOOK_LIVE_SHOPPING_CAPABILITIES : FACEBOOK_CAPABILITIES;
    },

    async createShow(spec: ShowSpec, op: OpContext) {
      const { pageId } = client.credentials;
      const now = Date.now();
      const start = Date.parse(spec.scheduledAt);
      const lead = start - now;
      const latestCreate = MAX_SCHEDULE_AHEAD_MS - SCHEDULE_MARGIN_MS;
      // A look for an earlier attempt's video (findOnly) is not held back: that attempt was made in the
      // window. Nor is a show that is live already: it goes on air now (a preview, started at once),
      // whatever its snapshot's start says; it waited for the window, days, while it was on air.
      if (lead > latestCreate && !op.findOnly && !spec.live) {
        const from = new Date(start - latestCreate).toISOString();
        throw new RetryableError(`Facebook schedules live videos at most 7 days ahead: the live video for this show is created from ${from}`, {
          reason: 'schedule_window',
          delayMs: Math.min(lead - latestCreate + 60_000, MAX_DEFER_MS),
          waiting: true,
        });
      }
      const startUnix = Math.floor(start / 1000);
      const created = await onceWrite(
        op,
        'live_video',
        async (): Promise<CreatedRef> => {
          // Decided here, as the request goes (not before the limiter and the intent's round trips).
          const scheduled = schedulable(startUnix * 1000);
          const res = await client.call({
            method: 'POST',
            path: `/${pageId}/live_videos`,
            params: {
              title: platformTitle(spec.title, SHOW_TITLE_FALLBACK),
              description: describeWithMarker(spec.description, op.marker),
              status: scheduled ? 'SCHEDULED_UNPUBLISHED' : 'UNPUBLISHED',
              event_params: scheduled ? JSON.stringify({ start_time: startUnix }) : undefined,
            },
            schema: CreatedLiveVideoSchema,
          });
          return { id: res.id, secureStreamUrl: res.secure_stream_url ?? null, scheduled };
        },
        (attempt) => findLiveVideo(op.marker, attempt.since),
      );
      // The create answer has no permalink; one read gives it (and the status) without side effects.
      const lv = await getLiveVideo(created.id);
      const createdAt = listedTimeMs(lv.creation_time) ?? now; // strict: Date.parse read "1.5" as 2001, a stream URL long expired
      // What was sent; for a video an earlier attempt made (recovered), what Facebook says it is.
      const scheduled = created.scheduled ?? (lv.status !== undefined ? lv.status === 'SCHEDULED_UNPUBLISHED' : lead >= MIN_SCHEDULE_LEAD_MS + SEND_MARGIN_MS);
      const ingestBase = scheduled ? Math.max(createdAt, start) : createdAt;
      const data: Record<string, string> = {
        marker: op.marker,
        mode: scheduled ? 'scheduled' : 'preview',
        ingestExpiresAt: new Date(ingestBase + INGEST_TTL_MS).toISOString(),
      };
      if (scheduled) data.plannedStart = String(startUnix);
      log.info({ externalId: lv.id, mode: data.mode }, 'facebook live video created');
      return remoteShow({ ...lv, secure_stream_url: lv.secure_stream_url ?? created.secureStreamUrl ?? undefined }, data);
    },

    async verifyCredentials() {
      // The Page node itself with the Page token (`GET /{page-id}?fields=id`): a dead token is 190, a
      // token of another Page cannot read this one.
      const { pageId } = client.credentials;
      const page = await client.call({ method: 'GET', path: `/${encodeURIComponent(pageId)}`, params: { fields: 'id' }, schema: z.object({ id: z.string() }) });
      if (page.id !== pageId) throw new PermanentError(`the Page token answers for Page ${page.id}, not for pageId ${pageId}`, 'page_mismatch');
      // Reading the Page works without the permissions a mirror needs; Graph would refuse the live
      // video (#200) only at show time. debug_token says what the token was granted.
      const { missing } = await permissions.get();
      if (missing.length > 0) {
        throw new PermanentError(
          `the Page token lacks ${missing.join(', ')} on Page ${pageId}: a Page admin must authorise the app again granting pages_read_engagement, ` +
            `pages_manage_posts and pages_manage_engagement, then store the new token with ${credentialsPatch(adviceTarget(ctx.target, CREDENTIAL_FIELDS), ['pageAccessToken'])}`,
          'missing_permissions',
        );
      }
    },

    async attachShow(externalId) {
      const lv = await getLiveVideo(externalId);
      const marker = markerOf(lv.description);
      const data: Record<string, string> = { mode: lv.status === 'SCHEDULED_UNPUBLISHED' ? 'scheduled' : 'preview' };
      if (marker) data.marker = marker;
      // The URL just read is current: Facebook hands out a fresh one for a video whose URL expired unused.
      if (lv.secure_stream_url) data.ingestExpiresAt = new Date(Date.now() + INGEST_TTL_MS).toISOString();
      const planned = listedTimeMs(lv.planned_start_time);
      if (planned !== undefined) data.plannedStart = String(Math.floor(planned / 1000));
      return remoteShow(lv, data);
    },

    async updateShow(remote, spec) {
      const start = Date.parse(spec.scheduledAt);
      const startUnix = Math.floor(start / 1000);
      // The limiter's slot first, then the lead, measured as the request goes (see SEND_MARGIN_MS).
      await client.reserve();
      // Only a scheduled video has a planned start to move, and only within Facebook's window.
      const reschedule = remote.data.mode === 'scheduled' && remote.data.plannedStart !== String(startUnix) && schedulable(startUnix * 1000);
      await client.call({
        method: 'POST',
        path: videoPath(remote.externalId),
        params: {
          title: platformTitle(spec.title, SHOW_TITLE_FALLBACK),
          description: describeWithMarker(spec.description, remote.data.marker),
          event_params: reschedule ? JSON.stringify({ start_time: startUnix }) : undefined,
        },
        schema: WriteResultSchema,
        preReserved: true,
      });
    },

    async startShow(remote) {
      const id = remote.externalId;
      const expiresAt = Date.parse(remote.data.ingestExpiresAt ?? '');
      if (Number.isNaN(expiresAt) || Date.now() <= expiresAt) {
        try {
          await client.call({ method: 'POST', path: videoPath(id), params: { status: 'LIVE_NOW' }, schema: WriteResultSchema });
          return;
        } catch (err) {
          if (!isCode100(err)) throw err;
          // Refused: already live (success), already over, or (our clock aside) its stream URL expired.
          await explainNotStarted(remote, expiresAt, err);
          return;
        }
      }
      await explainNotStarted(remote, expiresAt, undefined);
    },
    async endShow(remote) {
      await endVideo(remote.externalId);
    },

    async cancelShow(remote) {
      // The status is read first: a video that is streaming is ended (Facebook does not delete one
      // that is LIVE), one already over is left alone — a retry after a crash that followed the end
      // must not delete the ended video (its recording) — and only one that never aired is deleted.
      // The read is not a recorded step (at 1 request per window the withdraw never completes): a
      // "never aired" read by an earlier run could delete a video that went live and ended since.
      const id = remote.externalId;
      let status: string | undefined;
      try {
        status = await statusOf(id);
      } catch (err) {
        if (isTargetError(err) && err.reason === 'code_100_33') return; // does not exist (any more)
        throw err;
      }
      if (status && ENDED_STATUSES.has(status)) return;
      if (status === 'LIVE') {
        await endVideo(id);
        return;
      }
      try {
        await client.call({ method: 'DELETE', path: videoPath(id), schema: WriteResultSchema });
      } catch (err) {
        if (isTargetError(err) && err.reason === 'code_100_33') return; // does not exist (any more)
        if (!isCode100(err)) throw err;
        // Refused: it went live since the read (the Page started it): end it instead.
        const now = await statusOf(id);
        if (now === 'LIVE') {
          await endVideo(id);
          return;
        }
        if (now && ENDED_STATUSES.has(now)) return;
        throw err;
      }
    },

    async pin(remote, pin, op) {
      const id = remote.externalId;
      if ((await permissions.get()).liveShopping) {
        try {
          // Setting the featured product is idempotent: a retry after a crash pins the same item again.
          // Two requests through the account's limiter: the catalog read, then the pin. The read is a
          // recorded step of the pin's scope, so a run whose pin the limiter refused resumes with the
          // pin: read again by every run, it took the one token each wait freed, and at 1 request per
          // window the product was never pinned. Reused, it is safe: it only names the catalog item of
          // the sku (or none: a comment instead), and the pin replaces whatever is featured either way;
          // an item deleted since is refused by Facebook (a refused pin is asked again as a new episode,
          // which reads again). Repeatable (a read): any error forgets it.
          const item = await op.once('item', () => liveShopping.findProductItem(id, pin.platformProductId), undefined, {
            repeatable: true,
            resultInClear: true,
            limitedRequest: true,
          });
          if (item) {
            await liveShopping.pin(id, item.id, pin.platformProductId);
            return { ref: `${PRODUCT_PIN_REF}${item.id}` };
          }
          log.info({ productId: pin.productId }, 'product not in the Page catalog; pinned as a comment instead');
        } catch (err) {
          // The permission went away since we read it: the comment still works.
          if (!isPermissionRefusal(err)) throw err;
          permissions.forget();
          log.warn({ reason: isTargetError(err) ? err.reason : undefined }, 'live shopping refused for a permission; pinned as a comment instead');
        }
      }
      const videoId = await videoIdOf(remote);
      const tag = pinTag(op.marker);
      const message = pinComment(pin, tag);
      const comment = await onceWrite(
        op,
        'comment',
        async () => {
          const res = await client.call({ method: 'POST', path: `${videoPath(videoId)}/comments`, params: { message }, schema: CommentSchema });
          return { id: res.id };
        },
        (attempt) => findPinComment(videoId, pin.linkUrl, tag, attempt.since),
      );
      return { ref: comment.id };
    },

    async unpin(remote, pin, ref) {
      // A comment cannot be taken back as an "unpin" (it scrolls away); a Live Shopping pin can.
      // Without a ref the pin's outcome is unknown (its request timed out, or its run died during it):
      // with Live Shopping it may have featured the product all the same, so the featured item is
      // looked up by the product's SKU (as the pin found it in the catalog) and taken down when it is
      // that one. (It was a no-op, and the product could stay featured on Facebook.) Without the
      // permission the pin was a comment: nothing to take down.
      if (ref !== undefined && !ref.startsWith(PRODUCT_PIN_REF)) return;
      if (ref === undefined && !(await permissions.get()).liveShopping) return;
      try {
        await liveShopping.unpin(remote.externalId, ref !== undefined ? { id: ref.slice(PRODUCT_PIN_REF.length) } : { productId: pin.platformProductId });
      } catch (err) {
        // The permission was taken away since the pin: nothing can take it down now; the show goes on.
        if (!isPermissionRefusal(err)) throw err;
        permissions.forget();
        log.warn({ reason: isTargetError(err) ? err.reason : undefined }, 'live shopping unpin refused for a permission; the product stays pinned');
      }
    },
  };
  return adapter;
};
