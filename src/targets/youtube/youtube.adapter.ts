/**
 * YouTube Live: the whole lifecycle is available by API (liveStreams + liveBroadcasts + liveChatMessages).
 * Non-idempotent inserts go through `op.once` and carry `syndicast:<marker>` so that an attempt that
 * crashed after YouTube created the broadcast finds it again instead of creating a second one (a
 * non-reusable liveStream cannot be found that way: see createShow).
 * API: https://developers.google.com/youtube/v3/live/docs (life cycle: .../live/life-of-a-broadcast).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { formatMoney } from '../../domain/money.js';
import type { AdapterFactory, Capabilities, OnceOptions, OpContext, PinSpec, RemoteShow, ShowSpec, TargetAdapter, WithdrawOutcome } from '../target.adapter.js';
import { ActionRequiredError, AuthExpiredError, NotMadeError, PermanentError, RetryableError, asUnsent, isTargetError } from '../target.errors.js';
import { adviceTarget, credentialsPatch } from '../credentials-advice.js';
import { carriesPin, pinTag, pinTagSuffix } from '../pin-tag.js';
import { listedTimeMs } from '../../lib/timestamp.js';
import { RECOVERY_CLOCK_MARGIN_MS, recoveryOldest } from '../recovery-horizon.js';
import { createYoutubeClient, CREDENTIAL_FIELDS, QUOTA_COST } from './youtube.client.js';
import {
  BroadcastBindSchema,
  BroadcastSnippetSchema,
  BroadcastStatusSchema,
  EmptySchema,
  LiveBroadcastListSchema,
  LiveChatMessageListSchema,
  LiveChatMessageSchema,
  LiveStreamListSchema,
  LiveStreamSchema,
  LiveBroadcastSchema,
  type LiveBroadcast,
  type LiveChatMessage,
  type LiveStream,
} from './youtube.schemas.js';
import { platformText, platformTitle, PRODUCT_TITLE_FALLBACK, SHOW_TITLE_FALLBACK } from '../platform-text.js';
import { MARKER_PREFIX, markerLine } from '../show-marker.js';

export const YOUTUBE_CAPABILITIES: Capabilities = {
  createShow: 'api',
  pin: 'chat_message',
  unpin: false,
  lifecycle: true,
  ingest: true,
  orderWebhooks: false,
  orderReport: false,
};

const V3 = '/youtube/v3';
/** OAuth scopes with which liveBroadcasts/liveStreams/liveChatMessages writes are allowed (each method's "Authorization"). */
const WRITE_SCOPES = ['https://www.googleapis.com/auth/youtube', 'https://www.googleapis.com/auth/youtube.force-ssl'];
/** A list read with `part=id` (the credential check): only the ids. */
const IdListSchema = z.object({ items: z.array(z.object({ id: z.string() })).default([]) });
/**
 * Recovery (a create whose outcome is unknown) reads the channel's liveBroadcasts list, 50 a page, for
 * the broadcast carrying the attempt's marker (the stream has no lookup: see createShow). YouTube does not document the lists'
 * order, so the read never stops early on creation times (as the Facebook and Bambuser lookups do on
 * their newest-first lists): a list sorted by, say, scheduled start could look newest-first for a page
 * and hide the object on the next one. It reads to the end of the list.
 */
const RECOVERY_PAGE_SIZE = 50;
/**
 * A bound all the same, so a huge channel cannot burn the quota (a list page costs 1 unit of the
 * day's 10,000): 10,000 objects. It used to be 20 pages, after which the lookup answered "not there"
 * and the create ran again — a second broadcast for a channel with more than 1,000 of them. Past the
 * bound the lookup now cannot say "not there": the mirror stops for an operator instead.
 */
const MAX_RECOVERY_PAGES = 200;
/**
 * Chat lists cost 5 units a page and their page tokens never run out (they are polling cursors): a
 * pin lookup reads at most this many pages of CHAT_PAGE_SIZE (10,000 messages, 25 units).
 */
const MAX_CHAT_PAGES = 5;
const CHAT_PAGE_SIZE = 2000;
/**
 * The pin's chat message among `items`: its text carries the pin's link and the episode's tag, and it
 * was published no earlier than `oldest` (the uncertain attempt's start less the clock margin).
 * `publishedAt` is read strictly (RFC 3339 with an offset, as YouTube writes it): Date.parse read
 * "1.5" as 2001-01-05 and any local-time text as a time. A message whose time cannot be read is
 * ignored (nothing says it is this attempt's; at worst the pin is posted again).
 */
export function findPinMessage(items: readonly LiveChatMessage[], linkUrl: string, tag: string, oldest: number): LiveChatMessage | undefined {
  return items.find((m) => {
    const at = listedTimeMs(m.snippet.publishedAt);
    return at !== undefined && at >= oldest && carriesPin(m.snippet.textMessageDetails?.messageText ?? m.snippet.displayMessage ?? '', linkUrl, tag);
  });
}

/**
 * Whether a full first chat page may start after `oldest`: YouTube hands out only part of a long
 * chat's history, so messages from before it are out of reach. A first message whose time cannot be
 * read proves nothing: it may.
 */
export function historyMayNotReach(items: readonly LiveChatMessage[], pageSize: number, oldest: number): boolean {
  if (items.length < pageSize) return false;
  const first = listedTimeMs(items[0]?.snippet.publishedAt);
  return first === undefined || first > oldest;
}

/** The wait between chat pages when YouTube names none (its usual pollingIntervalMillis), and the longest one honoured. */
const CHAT_POLL_WAIT_DEFAULT_MS = 2_000;
const CHAT_POLL_WAIT_MAX_MS = 15_000;
/**
 * Broadcast states in which YouTube refuses liveBroadcasts.delete (liveBroadcastDeletionNotAllowed):
 * the broadcast is on air (testing or live, or moving there) and can only be ended.
 */
const ON_AIR: ReadonlySet<string> = new Set(['testStarting', 'testing', 'liveStarting', 'live']);
/** Broadcast/stream is between two states (testStarting, liveStarting): YouTube needs a few seconds. */
const TRANSITIONING_DELAY_MS = 2_000;
const TITLE_MAX = 100; // liveBroadcast snippet.title
const STREAM_TITLE_MAX = 128; // liveStream snippet.title
const DESCRIPTION_MAX_BYTES = 5000;
const CHAT_MESSAGE_MAX = 200;

/** Results of `once` steps: stored as JSON by the intent store. */
interface StreamRef {
  id: string;
  ingestionAddress: string;
  streamName: string;
}
interface BroadcastRef {
  id: string;
  liveChatId: string | null;
}

function codePoints(s: string): string[] {
  return Array.from(s);
}

/**
 * `s` in at most `max` units, cut by whole code points and ending in `…` when cut ('' when not even
 * one fits beside it). A unit is a code point unless `size` says otherwise (the chat's limit counts
 * UTF-16 units: pinMessage).
 */
function truncate(s: string, max: number, size: (cp: string) => number = () => 1): string {
  const cps = codePoints(s);
  if (cps.reduce((n, cp) => n + size(cp), 0) <= max) return s;
  let used = size('…');
  let n = 0;
  while (n < cps.length && used + size(cps[n]!) <= max) used += size(cps[n++]!);
  return n > 0 ? `${cps.slice(0, n).join('')}…` : '';
}

/** YouTube rejects `<` and `>` in titles and descriptions (invalidTitle / invalidDescription). */
function clean(s: string): string {
  return s.replace(/</g, '‹').replace(/>/g, '›');
}

/**
 * A title within YouTube's limit (100 for a broadcast, 128 for a stream), counted in UTF-16 units like
 * the chat message (pinMessage): the strictest reading of "characters", and the simulator's. Titles
 * used to be counted in code points, so a title of emoji (two units each) went out over the limit and
 * the insert was refused with invalidTitle.
 */
function fitTitle(s: string, max: number): string {
  return truncate(clean(platformTitle(s, SHOW_TITLE_FALLBACK)), max, (cp) => cp.length);
}

function truncateBytes(s: string, maxBytes: number): string {
  let out = s;
  while (Buffer.byteLength(out, 'utf8') > maxBytes) out = codePoints(out).slice(0, -16).join('');
  return out;
}

/** The marker goes last and is never cut: recovery depends on it. */
function describe(description: string | undefined, markerLines: string[]): string {
  const tail = markerLines.join('\n');
  const base = truncateBytes(clean(platformText(description ?? '').trim()), DESCRIPTION_MAX_BYTES - Buffer.byteLength(tail, 'utf8') - 2);
  return base && tail ? `${base}\n\n${tail}` : base || tail;
}

function hasMarker(description: string | undefined, marker: string): boolean {
  return (description ?? '').split('\n').some((line) => line.trim() === markerLine(marker));
}

/**
 * Refusals of an insert that say for certain it made nothing: the channel may not stream live, or the
 * grant may not write (insufficientLivePermissions: "The request is not authorized to create the live
 * broadcast", liveBroadcasts.insert errors).
 */
const NOTHING_MADE = new Set(['livePermissionBlocked', 'liveStreamingNotEnabled', 'insufficientPermissions', 'insufficientLivePermissions']);

function markerLinesOf(description: string | undefined): string[] {
  return (description ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(MARKER_PREFIX));
}

/**
 * A bound stream createShow made together with the broadcast: non-reusable (insertStream) and carrying
 * a marker line of the broadcast's own (one create writes its marker into both; updateShow keeps the
 * broadcast's). A re-link of a broadcast this service made (the operator linking the mirror's own show
 * again, to re-read its url and ingest) read it as the broadcast's own ('0'), and a withdraw then left
 * our stream on the channel for good. A stream the seller bound (made in Studio: reusable, no marker of
 * the broadcast's) is not ours, nor one whose `syndicast:` line is another broadcast's.
 */
function madeWith(broadcast: Pick<LinkedBroadcast, 'markers'>, stream: LiveStream): boolean {
  if (stream.contentDetails?.isReusable !== false) return false;
  const ours = broadcast.markers;
  return markerLinesOf(stream.snippet.description).some((line) => ours.includes(line));
}

/** What attachShow reads of a linked broadcast (recorded as a step at one request per window: attachShow). */
interface LinkedBroadcast {
  ref: BroadcastRef;
  boundStreamId: string | null;
  /** The marker lines of its description (madeWith). */
  markers: string[];
  /** created or ready: a stream may still be bound. */
  upcoming: boolean;
  title: string;
  scheduledStartTime: string | null;
}

function linkedBroadcast(b: LiveBroadcast): LinkedBroadcast {
  return {
    ref: broadcastRef(b),
    boundStreamId: b.contentDetails?.boundStreamId ?? null,
    markers: markerLinesOf(b.snippet.description),
    upcoming: b.status.lifeCycleStatus === 'created' || b.status.lifeCycleStatus === 'ready',
    title: b.snippet.title,
    scheduledStartTime: b.snippet.scheduledStartTime ?? null,
  };
}

/** A clean-up call that failed in a way that may pass: `expired` when the access token was refused even fresh. */
type Later = 'later' | 'expired';

/** What a withdraw's clean-up says to the sync (WithdrawOutcome) after its last call: done (true) or failed for good (false) is nothing pending. */
function outcomeOf(result: boolean | Later): WithdrawOutcome {
  if (result === 'expired') return { cleanupPending: true, authExpired: true };
  return { cleanupPending: result === 'later' };
}

function watchUrl(broadcastId: string): string {
  return `https://www.youtube.com/watch?v=${encodeURIComponent(broadcastId)}`;
}

function streamRef(s: LiveStream): StreamRef {
  return { id: s.id, ingestionAddress: s.cdn.ingestionInfo.ingestionAddress, streamName: s.cdn.ingestionInfo.streamName };
}

function broadcastRef(b: LiveBroadcast): BroadcastRef {
  return { id: b.id, liveChatId: b.snippet.liveChatId ?? null };
}

/**
 * `data.ownStream` says whether this service made the stream `data.streamId` names ('1': createShow's,
 * also when read again by a re-link of its broadcast (madeWith), or the one attachShow made for a linked
 * broadcast without one) or not ('0': a linked broadcast's own, made on YouTube, perhaps reusable and
 * used for other broadcasts). A withdraw deletes only a '1'
 * (dropOwnStream). Mirrors made before it was recorded have neither.
 */
function remoteShow(broadcast: BroadcastRef, stream: StreamRef | undefined, ownStream: boolean): RemoteShow {
  const data: Record<string, string> = {};
  if (stream) {
    data.streamId = stream.id;
    data.ownStream = ownStream ? '1' : '0';
  }
  if (broadcast.liveChatId) data.liveChatId = broadcast.liveChatId;
  return {
    externalId: broadcast.id,
    url: watchUrl(broadcast.id),
    ingest: stream ? { url: stream.ingestionAddress, streamKey: stream.streamName } : undefined,
    data,
  };
}

/**
 * What a look-up-only create (findOnly) returns: the broadcast (and the stream, when made) an earlier
 * attempt made, with no stream made or bound now, and so marked `data.incomplete` '1' (RemoteShow.data):
 * a show back on before its withdraw ran has the sync run the create in full first (its steps recorded:
 * the stream made if it was not, and bound). Left `ready` and unbound, it could never go live: YouTube
 * refuses the transition of a broadcast with no bound, active stream, and the relay had no ingest.
 */
function unfinished(remote: RemoteShow): RemoteShow {
  return { ...remote, data: { ...remote.data, incomplete: '1' } };
}

/**
 * `🛍 {title} — {price} {link} · {tag}`, the tag being the pin episode's (`pinTag(op.marker)`, see
 * pin-tag.ts: a crash recovery finds this episode's message by it). The title is shortened (by whole
 * code points, ending in `…`) so the message fits YouTube's 200-character limit; the link and the tag
 * are never cut. Characters are counted as UTF-16 units (an emoji is two): the strictest reading of
 * the limit, and the simulator's; a count in code points is then within it too. It used to count code
 * points, so a long title made a message of 201 units (the 🛍 alone is two) and the pin failed.
 */
export function pinMessage(pin: PinSpec, tag: string): string {
  const suffix = ` — ${formatMoney(pin.price)} ${pin.linkUrl}${pinTagSuffix(tag)}`;
  const prefix = '🛍 ';
  const room = CHAT_MESSAGE_MAX - prefix.length - suffix.length;
  return `${prefix}${truncate(platformTitle(pin.title, PRODUCT_TITLE_FALLBACK).trim(), room, (cp) => cp.length)}${suffix}`;
}

function notFound(reason: string): boolean {
  return reason === 'liveBroadcastNotFound' || reason === 'notFound' || reason === 'http_404';
}

type TransitionOutcome = 'done' | 'invalid';

/**
 * How long a recorded read stays usable for a target without a request window, or with one of 2
 * requests or more, and the least for any target: a write refused after it (a 5xx, a quota block) and
 * sent by a later run within it uses that read; later, the broadcast is read again.
 */
const RECORDED_READ_MIN_MS = 30_000;

/**
 * How far ahead of this process' clock a read's `readAt` may be and still count as fresh: the clocks
 * of two workers differ by this much at most (NTP keeps them within milliseconds); a read further
 * ahead was made by a process whose clock ran fast, and its age cannot be told.
 */
const READ_AHEAD_TOLERANCE_MS = 5_000;

/**
 * How long a recorded read stays usable for a target whose limit is `limit` (RateLimiter.windowLimit).
 * At 1 request per window the write goes out at the earliest one window after its read (the read took
 * the run's one token), later when shows of the account compete for it (a run that lost the race waits
 * until the oldest token leaves the window: two windows and the job's delay): three windows, at least
 * RECORDED_READ_MIN_MS (a window of 100 ms must not expire the read before the next run starts). With
 * 2 requests or more a run gets the tokens for both the read and the write (a refused run waits until
 * as many are free as it took, plus one), so the window does not lengthen it: 30 s, whatever the window
 * (a day's window kept a read for two days, the stale read the bound is there to refuse).
 */
export function recordedReadMaxAgeMs(limit: { requests: number; windowMs: number } | undefined): number {
  return limit !== undefined && limit.requests < 2 ? Math.max(3 * limit.windowMs, RECORDED_READ_MIN_MS) : RECORDED_READ_MIN_MS;
}

/**
 * Whether a read made at `readAt` (ISO 8601, the clock of the process that made it) is at most
 * `maxAgeMs` old. A read with no time (recorded by the version before) is not, nor one more than
 * READ_AHEAD_TOLERANCE_MS ahead of this clock (a process whose clock ran fast: its age cannot be told).
 */
export function readFresh(readAt: string | undefined, maxAgeMs: number, nowMs = Date.now()): boolean {
  const age = nowMs - Date.parse(readAt ?? '');
  return age <= maxAgeMs && age >= -READ_AHEAD_TOLERANCE_MS;
}

/** The number of whole max-ages since `readAt` (since 1970 for a read without a time). */
function maxAgesSince(readAt: string | undefined, maxAgeMs: number, nowMs: number): number {
  const since = Date.parse(readAt ?? '');
  return Math.floor((nowMs - (Number.isNaN(since) ? 0 : since)) / maxAgeMs);
}

/**
 * The step name of the read made again after `step`'s recorded one (read at `readAt`) is too old:
 * `step:<n>`, n the number of whole max-ages since that read (since 1970 for a read without a time).
 * A run looks at three steps (`step`, the name before while its read is fresh: previousReReadStep,
 * then this one; a fourth, `<name>+`, only when two workers' clocks are apart), not every read made
 * again before; a read made under the name is younger than the max-age while the name holds (on one
 * clock).
 */
export function reReadStep(step: string, readAt: string | undefined, maxAgeMs: number, nowMs = Date.now()): string {
  return `${step}:${maxAgesSince(readAt, maxAgeMs, nowMs)}`;
}

/**
 * The name before reReadStep's (`step:<n-1>`), when a read can have been made under it: n ≥ 2 (a read
 * is made again only once the first is more than a max-age old, never as `step:0`). A read made late
 * under it is still fresh under the next name: looking at `step:<n>` alone, a read made x into its
 * max-age was usable for the max-age less x, and a run under the next name read again and spent its
 * token (at one request per window the write waited another window).
 */
export function previousReReadStep(step: string, readAt: string | undefined, maxAgeMs: number, nowMs = Date.now()): string | undefined {
  const n = maxAgesSince(readAt, maxAgeMs, nowMs);
  return n >= 2 ? `${step}:${n - 1}` : undefined;
}

/** `op.once(step, run, undefined, opts)`, and whether this run made the step (`now`: run() was called, not a recorded result returned). */
async function onceNow<T>(op: OpContext, step: string, run: () => Promise<T>, opts: OnceOptions): Promise<{ result: T; now: boolean }> {
  let now = false;
  const result = await op.once(
    step,
    () => {
      now = true;
      return run();
    },
    undefined,
    opts,
  );
  return { result, now };
}

export const createYoutubeAdapter: AdapterFactory = (ctx) => {
  const client = createYoutubeClient(ctx);
  const log = ctx.log.child({ module: 'youtube.adapter', targetId: ctx.target.id });
  const redact = ctx.redact ?? ((t: string) => t);

  /**
   * The chat's pages. Its page token is a polling cursor: the next page is asked for no sooner than the
   * answer's `pollingIntervalMillis` (at most CHAT_POLL_WAIT_MAX_MS) after it, since YouTube refuses a
   * request sent sooner (rateLimitExceeded, liveChatMessages.list). The lookup asked at once, so each
   * page after the first was refused, the refusal (a rate limit) retried the pin, and the retry's
   * lookup began again: it never read past the first page, and never concluded "not posted".
   */
  async function* chatPages<T extends { nextPageToken?: string | undefined; pollingIntervalMillis?: number | undefined }>(
    fetchPage: (pageToken: string | undefined) => Promise<T>,
    maxPages: number,
  ): AsyncGenerator<T> {
    let token: string | undefined;
    for (let i = 0; i < maxPages; i++) {
      const page = await fetchPage(token);
      const answeredAt = Date.now();
      yield page;
      if (!page.nextPageToken || page.nextPageToken === token) return;
      token = page.nextPageToken;
      const wait = Math.min(page.pollingIntervalMillis ?? CHAT_POLL_WAIT_DEFAULT_MS, CHAT_POLL_WAIT_MAX_MS) - (Date.now() - answeredAt);
      if (wait > 0) await sleep(wait);
    }
  }

  /**
   * A read that the write after it depends on, as a recorded step of `op`: a run whose write the
   * limiter refused resumes with the write on the next run's one token (read again by every run, it
   * took that token each time, and at one request per window the write never went out). The recorded
   * read carries its time (`readAt`) and is used only while it is fresh (recordedReadMaxAgeMs of the
   * target's limit): after a write that failed for longer (a 5xx backoff, a quota block until midnight
   * Pacific, an operator's retry hours later) the broadcast is read again, as another step (reReadStep:
   * named by the max-ages since the first read, so a run looks at three steps, not at every read made
   * again before: the first, the one before this name while fresh, this one; at one request per window
   * the read goes out on one run's token and the write on the next). Used long after, it sent the
   * snippet of an upcoming broadcast to one the seller had started in Studio since. A read made again is not progress (OnceOptions.notProgress): it reset the mirror's
   * retries, and a write failing with a 5xx every time never used them up (each run older than the
   * max-age read again first). The step is that one read, sent again harmlessly (repeatable: any error
   * forgets it), a title, a description and times: nothing secret, kept in clear; its request is the
   * step's first through the limiter (its token taken with the step's start). `now`: this run made the read.
   */
  async function recordedRead<T extends object>(op: OpContext, step: string, read: () => Promise<T>): Promise<{ read: T; now: boolean }> {
    const maxAgeMs = recordedReadMaxAgeMs(ctx.limiter.windowLimit);
    const readOnce = async (name: string, again: boolean): Promise<{ read: T & { readAt?: string }; now: boolean }> => {
      const { result, now } = await onceNow(
        op,
        name,
        async (): Promise<T & { readAt?: string }> => ({ ...(await read()), readAt: new Date().toISOString() }),
        { singleRequest: true, repeatable: true, resultInClear: true, limitedRequest: true, ...(again ? { notProgress: true } : {}) },
      );
      return { read: result, now };
    };
    const first = await readOnce(step, false);
    if (first.now || readFresh(first.read.readAt, maxAgeMs)) return first;
    // The read made again under the name before, while fresh (made late under it, it is usable for a
    // whole max-age); else read again under the name of this max-age since the first. One found too old
    // there (another worker's clock behind this one's) is read again under `<name>+`, used whatever its
    // readAt says: made under this name, it is at most a max-age old, plus the clocks' difference.
    const nowMs = Date.now();
    const previous = previousReReadStep(step, first.read.readAt, maxAgeMs, nowMs);
    // Looked at only (OpContext.recorded): nothing written, no token taken. A read an earlier run left
    // started, its outcome unknown, has nothing to use either.
    const before = previous === undefined ? undefined : await op.recorded?.<T & { readAt?: string }>(previous);
    if (before !== undefined && readFresh(before.readAt, maxAgeMs)) return { read: before, now: false };
    const name = reReadStep(step, first.read.readAt, maxAgeMs, nowMs);
    const again = await readOnce(name, true);
    if (again.now || readFresh(again.read.readAt, maxAgeMs)) return again;
    return readOnce(`${name}+`, true);
  }

  // --- liveStreams ----------------------------------------------------------------------------

  async function insertStream(spec: ShowSpec, marker: string): Promise<StreamRef> {
    const stream = await client.call({
      method: 'POST',
      path: `${V3}/liveStreams`,
      query: { part: 'id,snippet,cdn,contentDetails,status' },
      body: {
        snippet: { title: fitTitle(spec.title, STREAM_TITLE_MAX), description: describe(undefined, [markerLine(marker)]) },
        cdn: { ingestionType: 'rtmp', resolution: 'variable', frameRate: 'variable' },
        contentDetails: { isReusable: false },
      },
      cost: QUOTA_COST.write,
      schema: LiveStreamSchema,
    });
    return streamRef(stream);
  }

  /**
   * The object carrying `marker` in one of the channel's lists, read to its end. Past
   * MAX_RECOVERY_PAGES the answer is unknown, and creating again might make a second object:
   * ActionRequiredError('recovery_inconclusive').
   */
  async function findByMarker<I extends { snippet: { description?: string | undefined } }>(
    what: string,
    list: string,
    listPage: (pageToken: string | undefined) => Promise<{ items: I[]; nextPageToken?: string | undefined }>,
    marker: string,
  ): Promise<I | null> {
    let token: string | undefined;
    for (let i = 0; i < MAX_RECOVERY_PAGES; i++) {
      const page = await listPage(token);
      const hit = page.items.find((item) => hasMarker(item.snippet.description, marker));
      if (hit) return hit;
      if (!page.nextPageToken || page.nextPageToken === token) return null;
      token = page.nextPageToken;
    }
    throw new ActionRequiredError(
      `could not tell whether an earlier attempt created the YouTube ${what} (marker ${MARKER_PREFIX}${marker}): the channel's ${list} list ` +
        `has more than ${MAX_RECOVERY_PAGES * RECOVERY_PAGE_SIZE} entries to read. Look for a ${what} whose description ends with that marker line ` +
        `and link the broadcast (PUT …/mirrors/${ctx.target.id} {"externalId": "<broadcast id>"}); if there is none, create one and link it.`,
      'recovery_inconclusive',
    );
  }

  async function getStream(id: string): Promise<LiveStream | undefined> {
    const res = await client.call({
      method: 'GET',
      path: `${V3}/liveStreams`,
      query: { part: 'id,snippet,cdn,contentDetails,status', id },
      cost: QUOTA_COST.list,
      schema: LiveStreamListSchema,
    });
    return res.items[0];
  }

  // --- liveBroadcasts -------------------------------------------------------------------------

  async function insertBroadcast(spec: ShowSpec, marker: string): Promise<BroadcastRef> {
    const broadcast = await client
      .call({
        method: 'POST',
        path: `${V3}/liveBroadcasts`,
        query: { part: 'id,snippet,status,contentDetails' },
        body: {
          snippet: {
            title: fitTitle(spec.title, TITLE_MAX),
            description: describe(spec.description, [markerLine(marker)]),
            scheduledStartTime: spec.scheduledAt,
          },
          status: { privacyStatus: client.credentials.privacyStatus },
          // Auto start/stop off: the mirror drives the transitions, and a manual transition fails once
          // YouTube has started the broadcast by itself.
          contentDetails: { monitorStream: { enableMonitorStream: true }, enableAutoStart: false, enableAutoStop: false },
        },
        cost: QUOTA_COST.write,
        schema: LiveBroadcastSchema,
      })
      .catch((err: unknown) => {
        // A refusal that says the channel may not make one (blocked, not enabled, a read-only grant)
        // made nothing: the step is forgotten as if unsent, not left `started` for every resync to
        // page the channel's broadcasts first (recovery_inconclusive past MAX_RECOVERY_PAGES).
        throw isTargetError(err) && err.reason !== undefined && NOTHING_MADE.has(err.reason) ? asUnsent(err) : err;
      });
    return broadcastRef(broadcast);
  }

  async function findBroadcast(marker: string): Promise<BroadcastRef | null> {
    const listPage = (pageToken: string | undefined) =>
      client.call({
        method: 'GET',
        path: `${V3}/liveBroadcasts`,
        // `mine` alone: the list filters (id, mine, broadcastStatus) are mutually exclusive on YouTube.
        query: { part: 'id,snippet,status,contentDetails', mine: true, broadcastType: 'all', maxResults: RECOVERY_PAGE_SIZE, pageToken },
        cost: QUOTA_COST.list,
        schema: LiveBroadcastListSchema,
      });
    const hit = await findByMarker('live broadcast', 'liveBroadcasts', listPage, marker);
    return hit ? broadcastRef(hit) : null;
  }

  async function getBroadcast(id: string): Promise<LiveBroadcast> {
    const res = await client.call({
      method: 'GET',
      path: `${V3}/liveBroadcasts`,
      query: { part: 'id,snippet,status,contentDetails', id },
      cost: QUOTA_COST.list,
      schema: LiveBroadcastListSchema,
    });
    const broadcast = res.items[0];
    if (!broadcast) {
      throw new PermanentError(`the YouTube broadcast ${id} no longer exists (it was deleted on YouTube)`, 'liveBroadcastNotFound');
    }
    return broadcast;
  }

  async function bind(broadcastId: string, streamId: string): Promise<void> {
    // Binding the same pair again is harmless, so a retry needs no intent. Past `ready` YouTube refuses
    // any bind; a retry that arrives that late finds the pair already bound and is done.
    try {
      await client.call({
        method: 'POST',
        path: `${V3}/liveBroadcasts/bind`,
        query: { id: broadcastId, streamId, part: 'id,contentDetails' },
        cost: QUOTA_COST.write,
        schema: BroadcastBindSchema,
      });
    } catch (err) {
      if (!isTargetError(err) || err.reason !== 'liveBroadcastBindingNotAllowed') throw err;
      if ((await getBroadcast(broadcastId)).contentDetails?.boundStreamId !== streamId) throw err;
    }
  }

  /**
   * Binds the stream this show's steps made to its broadcast. A bind refused because the broadcast can
   * never take it (deleted on YouTube: liveBroadcastNotFound; past `ready`, started or bound in YouTube
   * Studio: liveBroadcastBindingNotAllowed, which bind() has checked is not ours already) is refused on
   * every retry too (the steps are recorded): the stream, made for this broadcast alone and bound to
   * none, is deleted then, so it is not left on the channel for good. A stream already gone counts as
   * deleted, so a retry deletes nothing twice; a delete YouTube does not answer leaves it (logged) and
   * the bind's refusal stands. A delete refused even with a fresh access token (401 after the refresh)
   * throws an AuthExpiredError instead, as any other call does: the sync marks the token expired and
   * runs the create again once it is renewed, which finds the bind refused again and deletes the stream.
   * The bind's refusal stood: the mirror failed, the refused token stayed in use, and the stream stayed.
   */
  async function bindOwnStream(broadcastId: string, streamId: string): Promise<void> {
    try {
      await bind(broadcastId, streamId);
    } catch (err) {
      if (isTargetError(err) && err.reason === 'liveBroadcastNotFound' && !(await broadcastGone(broadcastId))) {
        // The bind's "not found" and a read of the broadcast disagree (an answer lagging behind the insert):
        // the stream is kept (the recorded step names it) and the bind tried again. Deleted on that
        // answer alone, every later attempt bound a stream that no longer exists (liveStreamNotFound).
        throw new RetryableError(`YouTube answered the bind of broadcast ${broadcastId} "not found" but reads it: the bind is tried again`, { reason: 'liveBroadcastNotFound' });
      }
      if (isTargetError(err) && (err.reason === 'liveBroadcastNotFound' || err.reason === 'liveBroadcastBindingNotAllowed') && (await dropStream(streamId)) === 'expired') {
        throw new AuthExpiredError(`YouTube refused a fresh access token on the delete of stream ${streamId}, which broadcast ${broadcastId} cannot take (${err.reason}): tried again once the token is renewed`, err.reason);
      }
      throw err;
    }
  }

  /** A read of the broadcast says it does not exist (any other failure of the read is thrown). */
  async function broadcastGone(id: string): Promise<boolean> {
    try {
      await getBroadcast(id);
      return false;
    } catch (err) {
      if (isTargetError(err) && err.reason === 'liveBroadcastNotFound') return true;
      throw err;
    }
  }

  /**
   * Deletes a stream of ours, best effort: true when it is gone (deleted now or already), false when
   * it stays (logged): `later` when the refusal may pass (a 5xx, a timeout, a rate limit, quota), so
   * that a later attempt may try again; `expired` when it was refused even with a fresh access token
   * (AuthExpiredError): later too, and the sync is told (WithdrawOutcome.authExpired) so that the token
   * is marked expired as on any other call. Only `later` said so, and the refused token stayed in use.
   */
  async function dropStream(id: string, what = 'youtube stream of a broadcast that cannot be bound'): Promise<Later | false | true> {
    try {
      await client.call({ method: 'DELETE', path: `${V3}/liveStreams`, query: { id }, cost: QUOTA_COST.write, schema: EmptySchema });
      log.info({ streamId: id }, `${what} deleted`);
      return true;
    } catch (err) {
      if (isTargetError(err) && (err.reason === 'liveStreamNotFound' || err.reason === 'http_404')) return true; // deleted already
      const later = laterOf(err);
      log.warn({ streamId: id, err: { message: redact((err as Error).message) } }, `${what} not deleted; it stays on the channel unbound${later ? ' (tried again later)' : ''}`);
      return later;
    }
  }

  /** How a failed clean-up call may pass: `later`, `expired` (an AuthExpiredError), or not (false). */
  function laterOf(err: unknown): Later | false {
    if (err instanceof AuthExpiredError) return 'expired';
    return transient(err) ? 'later' : false;
  }

  /** A failure that may pass by itself (5xx, timeout, rate limit or quota, an expired token). */
  function transient(err: unknown): boolean {
    return isTargetError(err) && (err.kind === 'retryable' || err.kind === 'rate_limited' || err.kind === 'auth_expired');
  }

  /**
   * After a withdrawn broadcast is deleted (or found gone): the stream made for it goes too, or it
   * stayed on the channel, unbound, for good (one per show called off before it aired). Only a stream
   * this service made (`data.ownStream` '1', recorded when it was inserted: remoteShow); a linked
   * broadcast's own stream (made by hand, perhaps reused for other broadcasts) is left alone, also when
   * its description happens to carry a `syndicast:` line. A mirror made before ownership was recorded
   * has its stream read (1 unit): ours is non-reusable with a marker line (insertStream).
   * All of it is best effort, after YouTube already took the broadcast down: a read or a delete that
   * fails (rate limit, quota, 5xx, a refusal, a malformed answer) is logged and the stream stays, as
   * after a refused bind (dropStream). Thrown, it failed a withdraw YouTube had carried out (a permanent
   * refusal left the cancelled mirror `failed`, quota held it until midnight Pacific). A stream already
   * gone counts as deleted, so a retry after a crash deletes nothing twice.
   * A read or a delete that failed in a way that may pass (a 5xx, a timeout, a rate limit, quota) is
   * not lost: cancelShow says the clean-up is left for later (WithdrawOutcome), and a later run of the
   * mirror asks again (its broadcast delete recorded: not sent twice). A refusal for good is only logged.
   * One refused even with a fresh access token (AuthExpiredError) says so too (`authExpired`): the sync
   * marks the token expired, as for any other call.
   */
  async function dropOwnStream(remote: RemoteShow): Promise<WithdrawOutcome> {
    const streamId = remote.data.streamId;
    if (!streamId || remote.data.ownStream === '0') return { cleanupPending: false };
    if (remote.data.ownStream !== '1') {
      const own = await legacyOwnStream(streamId);
      if (own !== true) return outcomeOf(own);
    }
    return outcomeOf(await dropStream(streamId, 'youtube stream of a withdrawn broadcast'));
  }

  /**
   * A mirror's stream from before `data.ownStream`: ours when non-reusable with a marker line; unread
   * (logged) counts as not ours, `later` when the failure may pass.
   */
  async function legacyOwnStream(streamId: string): Promise<boolean | Later> {
    try {
      const stream = await getStream(streamId);
      return stream !== undefined && stream.contentDetails?.isReusable === false && markerLinesOf(stream.snippet.description).length > 0;
    } catch (err) {
      log.warn({ streamId, err: { message: redact((err as Error).message) } }, 'youtube stream of a withdrawn broadcast not read; it stays on the channel unbound');
      return laterOf(err);
    }
  }

  /**
   * The DELETE of a broadcast not on air, the one step of a withdraw that costs 50 units: `deleted`
   * (also when YouTube finds it gone), or `onAir` when YouTube refuses because it went on air since
   * the caller's read (started in YouTube Studio: ended instead, outside the step).
   */
  async function deleteBroadcast(id: string): Promise<'deleted' | 'onAir'> {
    try {
      await client.call({ method: 'DELETE', path: `${V3}/liveBroadcasts`, query: { id }, cost: QUOTA_COST.write, schema: EmptySchema });
      return 'deleted';
    } catch (err) {
      if (isTargetError(err) && err.reason !== undefined && notFound(err.reason)) return 'deleted'; // already gone
      if (isTargetError(err) && err.reason === 'liveBroadcastDeletionNotAllowed') return 'onAir';
      throw err;
    }
  }

  /**
   * What an earlier delete whose answer never came did: gone is `deleted`; on air `onAir`; over
   * (`complete` / `revoked`: it went live and ended in Studio since, the delete refused) `over`, left
   * alone with its stream, as cancelShow leaves a broadcast it reads over; still upcoming null (not deleted).
   */
  async function deletedAlready(id: string): Promise<'deleted' | 'onAir' | 'over' | null> {
    let state: string;
    try {
      state = await lifeCycle(id);
    } catch (err) {
      if (isTargetError(err) && err.reason !== undefined && notFound(err.reason)) return 'deleted';
      throw err;
    }
    if (state === 'complete' || state === 'revoked') return 'over';
    return ON_AIR.has(state) ? 'onAir' : null;
  }

  /** `redundantTransition` (already there) is success; `invalidTransition` is left to the caller. */
  async function transition(id: string, broadcastStatus: 'testing' | 'live' | 'complete'): Promise<TransitionOutcome> {
    try {
      await client.call({
        method: 'POST',
        path: `${V3}/liveBroadcasts/transition`,
        query: { broadcastStatus, id, part: 'id,status' },
        cost: QUOTA_COST.write,
        schema: BroadcastStatusSchema,
      });
      return 'done';
    } catch (err) {
      if (isTargetError(err) && err.reason === 'redundantTransition') return 'done';
      if (isTargetError(err) && err.reason === 'invalidTransition') return 'invalid';
      throw err;
    }
  }

  async function lifeCycle(id: string): Promise<string> {
    return (await getBroadcast(id)).status.lifeCycleStatus;
  }

  /** Ends a broadcast (transition to complete); already complete or revoked is done. */
  async function complete(id: string): Promise<void> {
    if ((await transition(id, 'complete')) === 'done') return;
    const state = await lifeCycle(id);
    if (state === 'complete' || state === 'revoked') return;
    if (state === 'liveStarting' || state === 'testStarting') throw transitioning(id, state);
    throw refused(id, state, 'complete');
  }

  function refused(id: string, from: string, to: string): PermanentError {
    return new PermanentError(`YouTube refused to move broadcast ${id} from ${from} to ${to} (invalidTransition)`, 'invalidTransition');
  }

  function transitioning(id: string, state: string): RetryableError {
    return new RetryableError(`YouTube broadcast ${id} is still ${state}`, { reason: state, delayMs: TRANSITIONING_DELAY_MS, waiting: true });
  }

  // --- adapter methods ------------------------------------------------------------------------

  const adapter: TargetAdapter = {
    platform: 'youtube',
    capabilities: YOUTUBE_CAPABILITIES,

    async createShow(spec, op) {
      // Each insert is one request: a refused one (rate limit, quota) did nothing, so the next attempt
      // sends it again without a lookup first (one request per attempt when YouTube allows no more).
      // The stream has no recovery lookup: it is non-reusable (bound to this one broadcast, and YouTube may
      // delete it once the broadcast is over), and "liveStreams.list does not list non-reusable streams
      // if you call the method and set the mine parameter to true. The only way ... is to use the id
      // parameter" (LiveStreamContentDetails.isReusable), which a crashed attempt never recorded. A
      // lookup by `mine` can only answer "not there" (it paged the channel's other streams, up to 200
      // units, for nothing), so an attempt whose outcome is unknown inserts the stream again: the one it
      // may have made stays unbound and unused (an ingest key nobody sees, no broadcast, no viewer).
      // The broadcast comes first: its insert is the one YouTube refuses for a channel it does not let
      // stream live (livePermissionBlocked, a strike: for days, not within the show). With the stream
      // inserted first, such a show left that stream on the channel for good (each show of a blocked
      // channel one more, 50 units each), and a resync once the block lifted reused it. Now a refused
      // broadcast insert leaves nothing, on any attempt; a step an earlier attempt recorded is reused
      // whatever the order it was made in.
      const broadcast = await op.once('broadcast', () => insertBroadcast(spec, op.marker), () => findBroadcast(op.marker), { singleRequest: true });
      let stream: StreamRef;
      try {
        stream = await op.once('stream', () => insertStream(spec, op.marker), undefined, { singleRequest: true });
      } catch (err) {
        // Called off (findOnly) after the broadcast was made and before its stream was: the broadcast is
        // what there is to take down. Said "not made", it stayed on the channel, upcoming, for good.
        if (op.findOnly && err instanceof NotMadeError) return unfinished(remoteShow(broadcast, undefined, false));
        throw err;
      }
      // Called off (findOnly) after both were made and before the bind: what there is goes down now
      // (cancelShow deletes the broadcast, then the stream). A bind here changed YouTube on a look-up,
      // and one refused (the seller deleted the broadcast meanwhile) failed the mirror instead.
      if (op.findOnly) return unfinished(remoteShow(broadcast, stream, true));
      await bindOwnStream(broadcast.id, stream.id);
      log.info({ externalId: broadcast.id }, 'youtube broadcast ready');
      return remoteShow(broadcast, stream, true);
    },

    async verifyCredentials() {
      // A token from the refresh token, then the cheapest read of the channel itself (1 quota unit):
      // its own live streams, which YouTube refuses when live streaming is not enabled on the channel.
      await client.call({
        method: 'GET',
        path: `${V3}/liveStreams`,
        query: { part: 'id', mine: true, maxResults: 1 },
        cost: QUOTA_COST.list,
        schema: IdListSchema,
      });
      // That read also works with a youtube.readonly grant, with which every insert, bind and
      // transition is refused (403 insufficientPermissions) at show time. The refresh names the grant.
      const granted = client.grantedScopes();
      if (granted && !WRITE_SCOPES.some((s) => granted.includes(s))) {
        throw new PermanentError(
          `the YouTube authorisation was granted ${granted.join(' ') || 'no scope'}, without ${WRITE_SCOPES[0]} (or youtube.force-ssl), which ` +
            `creating and running live broadcasts needs: re-authorise the channel with that scope and store the new refresh token with ` +
            credentialsPatch(adviceTarget(ctx.target, CREDENTIAL_FIELDS), ['refreshToken']),
          'insufficientPermissions',
        );
      }
    },

    async attachShow(externalId, op) {
      // Adopting it (`op`) at one request per window, the broadcast's read is a recorded step
      // (recordedRead, while fresh): what comes after it (the bound stream's read; or a stream made, a
      // step, then the bind) goes out on the next runs' tokens. Read again by every run, it took the one
      // token each wait freed, and the link never completed. With a larger limit a run has tokens for
      // both (a refused run waits until as many are free as it took, plus one) and reads afresh. The
      // step is this link's (`op.link`, the operator's link's nonce): a re-link of the same broadcast
      // keeps the generation and so the scope, and used the link before's read (a stream the seller
      // bound in Studio since was not seen: the mirror kept the old one's ingest).
      const recorded = op !== undefined && !op.findOnly && (ctx.limiter.windowLimit?.requests ?? Infinity) < 2;
      const read = async (): Promise<LinkedBroadcast> => linkedBroadcast(await getBroadcast(externalId));
      const broadcast = recorded ? (await recordedRead(op, `linked:${op.link ?? ''}`, read)).read : await read();
      if (broadcast.boundStreamId) {
        const stream = await getStream(broadcast.boundStreamId);
        // Ours when it carries this attach's own marker (made and bound by an attempt that crashed before
        // its result was saved), or when this service made the broadcast and this stream for it
        // (madeWith); any other bound stream is the broadcast's own, as far as a withdraw goes.
        const own = stream !== undefined && ((op !== undefined && hasMarker(stream.snippet.description, op.marker)) || madeWith(broadcast, stream));
        return remoteShow(broadcast.ref, stream ? streamRef(stream) : undefined, own);
      }
      // A broadcast made by hand (or by another tool) without a stream: YouTube refuses its transition
      // to testing/live (errorStreamInactive) until one is bound and receiving, and without a stream the
      // relay has no ingest to push to. When the sync adopts it to run it (`op`), a stream is made, once
      // (the same once step as createShow's, with its marker in the description: a retry or a crash after
      // the insert never makes a second one bound) and bound; YouTube allows a bind while the broadcast is
      // created or ready. A read-only attach (readiness, a link after the show) changes nothing.
      if (!op || op.findOnly || !broadcast.upcoming) return remoteShow(broadcast.ref, undefined, false);
      const spec: ShowSpec = { title: broadcast.title, description: undefined, scheduledAt: broadcast.scheduledStartTime ?? '' };
      const stream = await op.once('stream', () => insertStream(spec, op.marker), undefined, { singleRequest: true });
      await bindOwnStream(broadcast.ref.id, stream.id);
      log.info({ externalId: broadcast.ref.id }, 'youtube linked broadcast bound to a new stream');
      return remoteShow(broadcast.ref, stream, true);
    },

    async updateShow(remote, spec, op) {
      // Two requests through the account's limiter: the broadcast's read, then the update. The read is
      // a recorded step (recordedRead: its result the snippet to send, whether YouTube has it already,
      // and when it was read), so a run whose update the limiter refused resumes with the update within
      // the read's freshness, and reads again after it. Its scope is this update's alone (the sync's
      // `update:<n>:`), so a later update of the same spec reads again. A skip (nothing changed) is
      // taken only on a read this run made: one remembered from an earlier run (whose update never
      // completed, its save lost) could be stale, and the update is sent then (idempotent: it replaces
      // the snippet).
      const { read: planned, now: readNow } = await recordedRead(op, 'read', async () => {
        const current = await getBroadcast(remote.externalId);
        // Keep the creation marker (so the show stays findable) and, once the show has started, the
        // start time YouTube already has: moving it then is meaningless and may be refused.
        const upcoming = current.status.lifeCycleStatus === 'created' || current.status.lifeCycleStatus === 'ready';
        const snippet = {
          title: fitTitle(spec.title, TITLE_MAX),
          description: describe(spec.description, markerLinesOf(current.snippet.description)),
          scheduledStartTime: upcoming ? spec.scheduledAt : (current.snippet.scheduledStartTime ?? spec.scheduledAt),
        };
        // The same start: the same text, or two strictly read times of one instant. Date.parse took text YouTube
        // would not write (e.g. "Fri Dec 04 2026 21:00:00 GMT+0000") for ours, and the update was skipped.
        const ours = listedTimeMs(snippet.scheduledStartTime);
        const sameStart = snippet.scheduledStartTime === current.snippet.scheduledStartTime || (ours !== undefined && ours === listedTimeMs(current.snippet.scheduledStartTime));
        const same = snippet.title === current.snippet.title && snippet.description === (current.snippet.description ?? '') && sameStart;
        return { snippet, same };
      });
      if (planned.same && readNow) return; // an update costs 50 units: skip it when nothing changed
      // liveBroadcasts.update replaces the whole snippet, so every field (incl. scheduledStartTime) is sent.
      await client.call({
        method: 'PUT',
        path: `${V3}/liveBroadcasts`,
        query: { part: 'snippet' },
        body: { id: remote.externalId, snippet: planned.snippet },
        cost: QUOTA_COST.write,
        schema: BroadcastSnippetSchema,
      });
    },

    async startShow(remote, op) {
      const id = remote.externalId;
      // Two transitions, each a request through the account's limiter. The first is a recorded step:
      // a run whose transition to live the limiter refused (a limit of 2 a second, the first token
      // spent on testing) resumes at live. Sent again, the (redundant) transition to testing took the
      // one token each wait frees, every run, and the one to live never got one: the broadcast stayed
      // in testing while its job was delayed again and again (at 1 request per window, for good). The
      // step is that one request and records only its answer: the state read after an invalid one (a
      // broadcast on air already) comes after it, so a run whose read the limiter refused starts with
      // the read (in the step, the transition was sent again each run). Repeatable: any error (the
      // usual first answer errorStreamInactive, a 5xx, a timeout) forgets it, and the next run sends it
      // again after that error's own delay, not after the settle window a started step waits out.
      // An invalid answer is stale once the state can change: from created (a bind not visible yet) or
      // from ready with the monitor stream off (an attached Studio broadcast), while a retry or a
      // re-attach keeps the intents (90 days). The state read after an invalid answer is a step too
      // (`state:0`): a run whose read the limiter refused resumes with it, and one that finds the
      // broadcast neither on air nor testing refuses the start (the mirror fails). So a remembered
      // invalid whose remembered read refused the start belongs to an earlier attempt (before the
      // operator's retry): this one sends the transition again, as the next pair of steps
      // (`testing:1`, `state:1`, …), one request a step. Checked by a read and a send in one run, a
      // stale invalid never went live at one request per window (the read took the token, the send was
      // refused, every run). An invalid this run got is never sent again: the read decides. The first
      // pair is `testing:0`/`state:0`, not `testing`: the code before kept a `testing` invalid with no
      // state step (read in the run), which read fresh here refused a start the operator's retry was
      // meant to send again (one redundant transition, for a start in flight across the upgrade).
      for (let attempt = 0; ; attempt++) {
        const suffix = `:${attempt}`;
        const toTesting = await op.once(`testing${suffix}`, () => transition(id, 'testing'), undefined, { singleRequest: true, repeatable: true, resultInClear: true });
        if (toTesting === 'done') break;
        const { result: state, now: readNow } = await onceNow(op, `state${suffix}`, () => lifeCycle(id), { singleRequest: true, repeatable: true, resultInClear: true });
        if (state === 'live' || state === 'liveStarting') return;
        if (state === 'testing' || state === 'testStarting') break;
        if (readNow) throw refused(id, state, 'testing');
      }
      if ((await transition(id, 'live')) === 'invalid') {
        const state = await lifeCycle(id);
        if (state === 'live' || state === 'liveStarting') return;
        if (state === 'testStarting') throw transitioning(id, state);
        throw refused(id, state, 'live');
      }
    },

    async endShow(remote) {
      await complete(remote.externalId);
    },

    async cancelShow(remote, op) {
      // liveBroadcasts.delete is refused (403 liveBroadcastDeletionNotAllowed) once the broadcast is
      // testing or live: a show cancelled on air is ended the way YouTube allows, by the transition to
      // complete. The state is read first (1 unit) so that a retry after a crash finds the broadcast
      // complete and leaves it (and its recording) alone instead of deleting what already ended.
      const id = remote.externalId;
      let state: string;
      try {
        state = await lifeCycle(id);
      } catch (err) {
        if (isTargetError(err) && err.reason !== undefined && notFound(err.reason)) return dropOwnStream(remote); // already gone
        throw err;
      }
      if (state === 'complete' || state === 'revoked') return; // already over
      if (ON_AIR.has(state)) {
        await complete(id);
        return;
      }
      // The delete is a recorded step, as the create's are (per broadcast: a show linked again is
      // another one): a cancel retried after it went through (its answer lost, the mirror's save lost, a
      // stream clean-up left for later) whose read still lists the broadcast does not send it again (50
      // units); one whose answer never came looks first (deletedAlready). Went on air since the read
      // (started in YouTube Studio): ended instead.
      const deleted = await op.once(`delete:${id}`, () => deleteBroadcast(id), () => deletedAlready(id), { singleRequest: true, resultInClear: true });
      if (deleted === 'onAir') {
        await complete(id);
        return;
      }
      if (deleted === 'over') return; // already over (as above): nothing done, its stream left with it
      return dropOwnStream(remote);
    },

    async pin(remote, pin, op) {
      const liveChatId = remote.data.liveChatId ?? (await getBroadcast(remote.externalId)).snippet.liveChatId;
      if (!liveChatId) {
        throw new PermanentError(`YouTube broadcast ${remote.externalId} has no live chat to post the product link in`, 'liveChatNotFound');
      }
      const tag = pinTag(op.marker);
      const messageText = pinMessage(pin, tag);
      const message = await op.once(
        'message',
        async () => {
          const posted = await client.call({
            method: 'POST',
            path: `${V3}/liveChat/messages`,
            query: { part: 'snippet' },
            body: { snippet: { liveChatId, type: 'textMessageEvent', textMessageDetails: { messageText } } },
            cost: QUOTA_COST.chatInsert,
            schema: LiveChatMessageSchema,
            // The text is the product's (title, price) with its link: YouTube refusing it fails this pin only.
            pinOf: JSON.stringify(pin.productId),
          });
          return { id: posted.id };
        },
        async (attempt) => {
          // This episode's message: the link and the episode's tag (a re-pin of the product has the same
          // link), published since the uncertain attempt started (less the clock margin). The chat list
          // runs oldest to newest and its page token is a polling cursor, so nothing lets the read stop
          // early on time: it reads to the newest message (an empty page), at most MAX_CHAT_PAGES.
          const oldest = recoveryOldest(attempt.since, RECOVERY_CLOCK_MARGIN_MS);
          const listPage = (pageToken: string | undefined) =>
            client.call({
              method: 'GET',
              path: `${V3}/liveChat/messages`,
              query: { liveChatId, part: 'snippet', maxResults: CHAT_PAGE_SIZE, pageToken },
              cost: QUOTA_COST.chatList,
              schema: LiveChatMessageListSchema,
            });
          let first = true;
          for await (const page of chatPages(listPage, MAX_CHAT_PAGES)) {
            const hit = findPinMessage(page.items, pin.linkUrl, tag, oldest);
            if (hit) return { id: hit.id };
            if (page.items.length === 0) return null;
            if (first && historyMayNotReach(page.items, CHAT_PAGE_SIZE, oldest)) {
              // YouTube hands out only part of a long chat's history: messages from before this page are out of reach
              log.warn({ productId: pin.productId, since: attempt.since }, 'pin lookup: the chat history YouTube returned may not reach back to the attempt');
            }
            first = false;
          }
          // A chat busier than the pages read: the message could be further on. Posting again risks a second
          // message; stopping the mirror mid-show for a chat line would cost more.
          log.warn({ productId: pin.productId, since: attempt.since }, `pin lookup: no end of the chat after ${MAX_CHAT_PAGES} pages; posting again`);
          return null;
        },
        // The result is the chat message's id: nothing secret, kept in clear. The post is the run's
        // first request through the limiter: its token is taken with the step's start.
        { singleRequest: true, resultInClear: true, limitedRequest: true },
      );
      return { ref: message.id };
    },

    async unpin() {
      // YouTube has no way to take a chat message back as an "unpin"; the pin simply scrolls away.
    },
  };
  return adapter;
};
