/**
 * YouTube Live simulator: Google OAuth token endpoint + YouTube Data API v3 live resources
 * (liveStreams, liveBroadcasts incl. bind/transition, liveChat/messages), mounted under `/youtube`.
 *
 * The production adapter is pointed at `baseUrl = http://127.0.0.1:{port}/youtube` and uses
 * `{baseUrl}/token` (oauth2.googleapis.com/token) and `{baseUrl}/youtube/v3/...`
 * (www.googleapis.com/youtube/v3/...), so paths below mirror the real ones. Resource shapes, `part`
 * filtering, pagination, quota costs, lifecycle rules and error bodies follow the public Data API
 * docs; anything unused by a live-shopping mirror (thumbnails upload, cuepoints, polls) is left out.
 *
 * Credentials (src/simulators/sim.accounts.ts): the token endpoint refuses a known OAuth client with
 * a wrong client secret (401 `invalid_client`) and a refresh token issued to another client
 * (`invalid_grant`); an OAuth client never seen is registered with the secret given, and a refresh
 * token never seen (with its client's secret) is a new channel's grant (CONTRACT §9: any non-empty
 * credentials work). An access token acts for the channel its refresh token belongs to. Streams and
 * broadcasts belong to the channel that made them (`POST /_sim/youtube/shows {title, account?}`,
 * account = channel id): another channel's answer 404 (`liveBroadcastNotFound` /
 * `liveStreamNotFound`) and are not listed. Live chat stays open to any channel, as on YouTube.
 * More channels: `POST /_sim/youtube/accounts {clientId?, clientSecret?, scope?}`; `scope` is what the
 * owner granted (default the full `youtube` scope): the token endpoint answers it, and a token without
 * `youtube` / `youtube.force-ssl` gets 403 insufficientPermissions on every write (reads also take
 * `youtube.readonly`).
 * A channel whose owner has not enabled live streaming (`PUT /_sim/youtube/live-streaming {account?,
 * enabled}`, account = channel id, default the first seeded channel) gets 403 `liveStreamingNotEnabled`
 * on every liveBroadcasts and liveStreams method ("The user that authorized the request is not enabled
 * to stream live video on YouTube", Live Streaming API errors), charged no quota; live chat is not
 * refused (another channel's broadcast chat stays open to it).
 * `{..., blocked: true}`: YouTube does not let the channel stream live for now (a Community Guidelines
 * strike, a live-streaming restriction): liveBroadcasts.insert gets 403 `livePermissionBlocked` (the
 * method Google's errors name it for), charged no quota; the other methods answer as usual.
 * Live chat lists are polling cursors: a page token used sooner than the `pollingIntervalMillis` of the
 * answer that handed it out (limit `chatPollingIntervalMs`, 2 s) is refused with 403 rateLimitExceeded.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SIM_ACCOUNTS, registerRevocations, seededAccounts, type YoutubeSimAccount } from './sim.accounts.js';
import {
  SimPlatform,
  SimProblem,
  firstUrl,
  installSimApiHooks,
  randomId,
  type PlatformSimulator,
  type SimReply,
  parseControlBody,
} from './sim.platform.js';
import { streamsOf } from './rtmp-sink.js';

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const LiveStreamingBody = z.object({ account: z.string().min(1).max(200).optional(), enabled: z.boolean(), blocked: z.boolean().optional() }).strict();

const AccountBody = z.strictObject({
  clientId: z.string().min(1).max(200).optional(),
  clientSecret: z.string().min(1).max(200).optional(),
  /** Space-separated OAuth scopes the owner grants (default: the full youtube scope), e.g. `https://www.googleapis.com/auth/youtube.readonly`. */
  scope: z.string().min(1).max(1000).optional(),
});

type YoutubeExtraLimits = {
  /**
   * 0 (default): a liveStream is `active` only while the RTMP sink receives data on its key, as on
   * YouTube. 1: a simulated encoder turns a bound stream `active` streamActivationMs after bind, without
   * any video (for tests of the API flow that push none).
   */
  simulatedEncoder: number;
  /** simulatedEncoder 1: after bind, the bound stream turns `active` this much later. */
  streamActivationMs: number;
  /** Duration of testStarting / liveStarting (0 = the transition lands immediately). */
  transitionMs: number;
  /**
   * liveChatMessages.list's `pollingIntervalMillis`: a page token used sooner than this after the
   * answer that handed it out is refused (rateLimitExceeded).
   */
  chatPollingIntervalMs: number;
};

const CHANNEL_ID = SIM_ACCOUNTS.youtube[0]!.channelId;
const OAUTH_SCOPE = 'https://www.googleapis.com/auth/youtube';
/** Scopes that let a request change live broadcasts, streams and chat (each method's "Authorization" section). */
const WRITE_SCOPES = ['https://www.googleapis.com/auth/youtube', 'https://www.googleapis.com/auth/youtube.force-ssl'];
/** Scopes that let a request read them. */
const READ_SCOPES = [...WRITE_SCOPES, 'https://www.googleapis.com/auth/youtube.readonly'];
/** The documented costs: writes 50, liveChatMessages.insert 20, liveChatMessages.list 5, lists 1. */
const QUOTA_COST = { write: 50, list: 1, chatInsert: 20, chatList: 5 } as const;
/** liveBroadcast snippet.title: at most 100 characters (the video's title). */
const TITLE_MAX = 100;
const DESCRIPTION_MAX_BYTES = 5000;
/** liveStream snippet: "The value must be between 1 and 128 characters long"; description at most 10,000 characters (LiveStreamSnippet). */
const STREAM_TITLE_MAX = 128;
const STREAM_DESCRIPTION_MAX = 10_000;
const CHAT_TEXT_MAX = 200;

const BROADCAST_PARTS = ['id', 'snippet', 'contentDetails', 'status', 'monetizationDetails'] as const;
const STREAM_PARTS = ['id', 'snippet', 'cdn', 'contentDetails', 'status'] as const;
const CHAT_PARTS = ['id', 'snippet', 'authorDetails'] as const;

const PRIVACY = ['public', 'private', 'unlisted'] as const;
const FRAME_RATES = ['30fps', '60fps', 'variable'] as const;
const RESOLUTIONS = ['240p', '360p', '480p', '720p', '1080p', '1440p', '2160p', 'variable'] as const;
const INGESTION_TYPES = ['rtmp', 'dash', 'webrtc', 'hls'] as const;

const GOOGLE_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

// ---------------------------------------------------------------------------------------------
// Google error bodies
// ---------------------------------------------------------------------------------------------

interface ErrorItemExtra {
  location?: string;
  locationType?: 'parameter' | 'header' | 'body';
  /** errors[0].message when it differs from the top-level message (e.g. "Invalid Credentials"). */
  itemMessage?: string;
}

/** `{"error":{"code","message","errors":[{message,domain,reason,...}],"status"}}`, Google's JSON error. */
function googleError(code: number, reason: string, message: string, domain: string, extra: ErrorItemExtra = {}): SimReply {
  const { itemMessage, ...where } = extra;
  const status = GOOGLE_STATUS[code];
  return {
    status: code,
    body: {
      error: {
        code,
        message,
        errors: [{ message: itemMessage ?? message, domain, reason, ...where }],
        ...(status ? { status } : {}),
      },
    },
  };
}

/** Thrown from handlers; the plugin's error handler sends `reply`. */
class YtError extends Error {
  readonly reply: SimReply;
  constructor(code: number, reason: string, message: string, domain = 'youtube.liveBroadcast', extra: ErrorItemExtra = {}) {
    super(`${code} ${reason}: ${message}`);
    this.reply = googleError(code, reason, message, domain, extra);
  }
}

/** Missing, unknown or expired access token (also the `token_expired` fault). */
function invalidCredentialsReply(): SimReply {
  return {
    ...googleError(
      401,
      'authError',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      'global',
      { location: 'Authorization', locationType: 'header', itemMessage: 'Invalid Credentials' },
    ),
    headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
  };
}

const quotaExceeded = (): YtError =>
  new YtError(
    403,
    'quotaExceeded',
    'The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started#quota">quota</a>.',
    'youtube.quota',
  );

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

type LifeCycle = 'created' | 'ready' | 'testStarting' | 'testing' | 'liveStarting' | 'live' | 'complete' | 'revoked';
type StreamStatus = 'created' | 'ready' | 'active' | 'inactive' | 'error';

interface YtStream {
  id: string;
  /** The channel whose token created it. */
  channelId: string;
  publishedAt: string;
  title: string;
  description: string;
  frameRate: string;
  resolution: string;
  ingestionType: string;
  streamName: string;
  isReusable: boolean;
  streamStatus: StreamStatus;
  activationScheduled: boolean;
  statusChangedAt: number;
}

interface YtBroadcast {
  id: string;
  /** The channel whose token (or operator, by hand) created it. */
  channelId: string;
  liveChatId: string;
  publishedAt: string;
  title: string;
  description: string;
  scheduledStartTime: string;
  scheduledEndTime: string | undefined;
  actualStartTime: string | undefined;
  actualEndTime: string | undefined;
  privacyStatus: string;
  lifeCycleStatus: LifeCycle;
  recordingStatus: 'notRecording' | 'recording' | 'recorded';
  enableMonitorStream: boolean;
  broadcastStreamDelayMs: number;
  enableAutoStart: boolean;
  enableAutoStop: boolean;
  enableDvr: boolean;
  enableEmbed: boolean;
  recordFromStart: boolean;
  enableClosedCaptions: boolean;
  latencyPreference: string;
  boundStreamId: string | undefined;
  boundStreamLastUpdateTimeMs: string | undefined;
}

interface YtChatMessage {
  id: string;
  liveChatId: string;
  text: string;
  publishedAt: string;
}

class YoutubeState {
  streams = new Map<string, YtStream>();
  broadcasts = new Map<string, YtBroadcast>();
  /** liveChatId → broadcast id */
  chats = new Map<string, string>();
  messages = new Map<string, YtChatMessage[]>();

  clear(): void {
    this.streams.clear();
    this.broadcasts.clear();
    this.chats.clear();
    this.messages.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------------------------

type Query = Record<string, string | string[] | undefined>;

function qp(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Query)[name];
  return Array.isArray(v) ? v[0] : v;
}

function requiredParam(req: FastifyRequest, name: string, reason = 'required', domain = 'global'): string {
  const v = qp(req, name);
  if (v === undefined || v === '') {
    throw new YtError(400, reason, `Required parameter: ${name}`, domain, { location: name, locationType: 'parameter' });
  }
  return v;
}

function parseParts<T extends string>(req: FastifyRequest, allowed: readonly T[]): Set<T> {
  const raw = requiredParam(req, 'part');
  const out = new Set<T>();
  for (const p of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(allowed as readonly string[]).includes(p)) {
      throw new YtError(400, 'unknownPart', `'${p}'`, 'youtube.part', { location: 'part', locationType: 'parameter' });
    }
    out.add(p as T);
  }
  if (out.size === 0) throw new YtError(400, 'required', 'Required parameter: part', 'global', { location: 'part', locationType: 'parameter' });
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function rec(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}
function optString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function resourceBody(req: FastifyRequest): Record<string, unknown> {
  if (!isRecord(req.body)) throw new YtError(400, 'required', "'resource' is required", 'global', { locationType: 'body' });
  return req.body;
}

/**
 * A time YouTube takes ("ISO 8601 (YYYY-MM-DDThh:mm:ss.sZ) format"), as it echoes it, or undefined:
 * a date-time with seconds and an offset, on a real calendar date. Date.parse alone took
 * `2026-02-30T10:00:00Z` (as March 2nd) and `2026-12-04T21:00` (no offset: the simulator's local time).
 */
function normTime(v: unknown): string | undefined {
  if (typeof v !== 'string' || !ISO_DATE_TIME.safeParse(v).success) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}
/**
 * The format alone (a date-time with seconds and an offset on a real calendar date), on any four-digit
 * year: not rfc3339Ms's 1970–9999 (that bound is ours, for platform order times). A show the partner
 * scheduled in 1969 is a valid event (src/domain/events.ts: years 0000–9999) and YouTube documents no
 * bound; refusing it here failed its mirror on a format the platform is not known to refuse.
 */
const ISO_DATE_TIME = z.iso.datetime({ offset: true });

function enumValue<T extends string>(v: unknown, values: readonly T[]): T | undefined {
  return typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : undefined;
}

function etagOf(v: unknown): string {
  return createHash('sha1').update(JSON.stringify(v)).digest('base64url');
}

/** Opaque page tokens carrying an offset (real tokens are opaque too; clients just echo them). */
function encodePageToken(offset: number): string {
  return Buffer.from(`o${offset}`).toString('base64url');
}
function decodePageToken(req: FastifyRequest): number {
  const tok = qp(req, 'pageToken');
  if (tok === undefined || tok === '') return 0;
  const m = /^o(\d+)$/.exec(Buffer.from(tok, 'base64url').toString('utf8'));
  if (!m?.[1]) throw new YtError(400, 'invalidPageToken', 'The request specifies an invalid page token.', 'youtube.parameter', { location: 'pageToken', locationType: 'parameter' });
  return Number(m[1]);
}

/** Chat page tokens are polling cursors: the offset, and when the answer carrying the token was given. */
function encodeChatToken(offset: number, issuedAt = Date.now()): string {
  return Buffer.from(`o${offset}t${issuedAt}`).toString('base64url');
}
function decodeChatToken(req: FastifyRequest): { offset: number; issuedAt: number } {
  const m = /^o(\d+)t(\d+)$/.exec(Buffer.from(qp(req, 'pageToken') ?? '', 'base64url').toString('utf8'));
  if (!m?.[1] || !m[2]) throw new YtError(400, 'invalidPageToken', 'The request specifies an invalid page token.', 'youtube.parameter', { location: 'pageToken', locationType: 'parameter' });
  return { offset: Number(m[1]), issuedAt: Number(m[2]) };
}

function maxResults(req: FastifyRequest, def: number, min: number, max: number): number {
  const raw = qp(req, 'maxResults');
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new YtError(400, 'invalidParameter', `Invalid value '${raw}'. Values must be within the range: [${min}, ${max}]`, 'youtube.parameter', {
      location: 'maxResults',
      locationType: 'parameter',
    });
  }
  return n;
}

interface Page<T> {
  items: T[];
  nextPageToken?: string;
  prevPageToken?: string;
  pageInfo: { totalResults: number; resultsPerPage: number };
}
function paginate<T>(all: T[], offset: number, per: number): Page<T> {
  const items = all.slice(offset, offset + per);
  const next = offset + per;
  return {
    items,
    ...(next < all.length ? { nextPageToken: encodePageToken(next) } : {}),
    ...(offset > 0 ? { prevPageToken: encodePageToken(Math.max(0, offset - per)) } : {}),
    pageInfo: { totalResults: all.length, resultsPerPage: per },
  };
}

/** Exactly one of the filter parameters, as the real list methods require. */
function oneFilter(req: FastifyRequest, names: string[]): string {
  const present = names.filter((n) => qp(req, n) !== undefined);
  if (present.length === 0) {
    throw new YtError(400, 'missingRequiredParameter', `No filter selected. Expected one of: ${names.join(', ')}`, 'youtube.parameter', { locationType: 'parameter' });
  }
  if (present.length > 1) {
    throw new YtError(400, 'incompatibleParameters', `Incompatible parameters specified in the request: ${present.join(', ')}`, 'youtube.parameter', {
      locationType: 'parameter',
    });
  }
  return present[0] as string;
}

function idList(v: string): Set<string> {
  return new Set(v.split(',').map((s) => s.trim()).filter(Boolean));
}

// ---------------------------------------------------------------------------------------------
// Rendering (only the requested parts, plus kind/etag/id, like the real API)
// ---------------------------------------------------------------------------------------------

function withEtag(kind: string, id: string, parts: Record<string, unknown>): Record<string, unknown> {
  const body = { kind, id, ...parts };
  return { kind, etag: etagOf(body), id, ...parts };
}

function renderStream(s: YtStream, parts: Set<string>, ingestUrl: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (parts.has('snippet')) {
    out.snippet = { publishedAt: s.publishedAt, channelId: s.channelId, title: s.title, description: s.description, isDefaultStream: false };
  }
  if (parts.has('cdn')) {
    out.cdn = {
      ingestionType: s.ingestionType,
      ingestionInfo: {
        streamName: s.streamName,
        // YouTube: rtmp://a.rtmp.youtube.com/live2 (+ backup, rtmps); here every one is the simulator's RTMP sink
        ingestionAddress: ingestUrl,
        backupIngestionAddress: ingestUrl,
        rtmpsIngestionAddress: ingestUrl,
        rtmpsBackupIngestionAddress: ingestUrl,
      },
      resolution: s.resolution,
      frameRate: s.frameRate,
    };
  }
  if (parts.has('status')) {
    out.status = {
      streamStatus: s.streamStatus,
      healthStatus: {
        status: s.streamStatus === 'active' ? 'good' : 'noData',
        lastUpdateTimeSeconds: String(Math.floor(s.statusChangedAt / 1000)),
        configurationIssues: [],
      },
    };
  }
  if (parts.has('contentDetails')) {
    out.contentDetails = {
      closedCaptionsIngestionUrl: `http://upload.youtube.com/closedcaption?cid=${s.streamName}`,
      isReusable: s.isReusable,
    };
  }
  return withEtag('youtube#liveStream', s.id, out);
}

function renderBroadcast(b: YtBroadcast, parts: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (parts.has('snippet')) {
    out.snippet = {
      publishedAt: b.publishedAt,
      channelId: b.channelId,
      title: b.title,
      description: b.description,
      thumbnails: {
        default: { url: `https://i.ytimg.com/vi/${b.id}/default_live.jpg`, width: 120, height: 90 },
        medium: { url: `https://i.ytimg.com/vi/${b.id}/mqdefault_live.jpg`, width: 320, height: 180 },
        high: { url: `https://i.ytimg.com/vi/${b.id}/hqdefault_live.jpg`, width: 480, height: 360 },
      },
      scheduledStartTime: b.scheduledStartTime,
      ...(b.scheduledEndTime ? { scheduledEndTime: b.scheduledEndTime } : {}),
      ...(b.actualStartTime ? { actualStartTime: b.actualStartTime } : {}),
      ...(b.actualEndTime ? { actualEndTime: b.actualEndTime } : {}),
      isDefaultBroadcast: false,
      liveChatId: b.liveChatId,
    };
  }
  if (parts.has('status')) {
    out.status = {
      lifeCycleStatus: b.lifeCycleStatus,
      privacyStatus: b.privacyStatus,
      recordingStatus: b.recordingStatus,
      madeForKids: false,
      selfDeclaredMadeForKids: false,
    };
  }
  if (parts.has('contentDetails')) {
    out.contentDetails = {
      ...(b.boundStreamId ? { boundStreamId: b.boundStreamId, boundStreamLastUpdateTimeMs: b.boundStreamLastUpdateTimeMs } : {}),
      monitorStream: {
        enableMonitorStream: b.enableMonitorStream,
        broadcastStreamDelayMs: b.broadcastStreamDelayMs,
        embedHtml: `<iframe width="425" height="344" src="https://www.youtube.com/embed/${b.id}?autoplay=1&livemonitor=1" frameborder="0" allow="accelerometer; autoplay; clipboard-write; encrypted-media; gyroscope; picture-in-picture; web-share" allowfullscreen></iframe>`,
      },
      enableEmbed: b.enableEmbed,
      enableDvr: b.enableDvr,
      recordFromStart: b.recordFromStart,
      enableClosedCaptions: b.enableClosedCaptions,
      closedCaptionsType: 'closedCaptionsDisabled',
      projection: 'rectangular',
      enableLowLatency: false,
      latencyPreference: b.latencyPreference,
      enableAutoStart: b.enableAutoStart,
      enableAutoStop: b.enableAutoStop,
    };
  }
  if (parts.has('monetizationDetails')) {
    out.monetizationDetails = { cuepointSchedule: { enabled: false } };
  }
  return withEtag('youtube#liveBroadcast', b.id, out);
}

function renderMessage(m: YtChatMessage, parts: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (parts.has('snippet')) {
    out.snippet = {
      type: 'textMessageEvent',
      liveChatId: m.liveChatId,
      authorChannelId: CHANNEL_ID,
      publishedAt: m.publishedAt,
      hasDisplayContent: true,
      displayMessage: m.text,
      textMessageDetails: { messageText: m.text },
    };
  }
  if (parts.has('authorDetails')) {
    out.authorDetails = {
      channelId: CHANNEL_ID,
      channelUrl: `http://www.youtube.com/channel/${CHANNEL_ID}`,
      displayName: 'Syndicast Simulator',
      profileImageUrl: 'https://yt3.ggpht.com/sim/photo.jpg',
      isVerified: false,
      isChatOwner: true,
      isChatSponsor: false,
      isChatModerator: false,
    };
  }
  return withEtag('youtube#liveChatMessage', m.id, out);
}

function listResponse<T>(kind: string, page: Page<T>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const body = { kind, ...extra, ...page };
  return { kind, etag: etagOf(body), ...extra, ...page };
}

// ---------------------------------------------------------------------------------------------
// Validation of written resources
// ---------------------------------------------------------------------------------------------

/** Characters are counted as UTF-16 units (an emoji is two): the strictest reading of YouTube's limits. */
function validTitle(v: unknown, domain: string, max = TITLE_MAX): string {
  if (typeof v !== 'string' || v.trim() === '') throw new YtError(400, 'titleRequired', 'The title is required.', domain);
  if (v.length > max || /[<>]/.test(v)) throw new YtError(400, 'invalidTitle', `The title is invalid (at most ${max} characters, no < or >).`, domain);
  return v;
}

/** A liveStream's description: at most 10,000 characters (no byte limit is documented for it). */
function validStreamDescription(v: unknown, domain: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string' || v.length > STREAM_DESCRIPTION_MAX || /[<>]/.test(v)) {
    throw new YtError(400, 'invalidDescription', `The description is invalid (at most ${STREAM_DESCRIPTION_MAX} characters, no < or >).`, domain);
  }
  return v;
}

function validDescription(v: unknown, domain: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string' || Buffer.byteLength(v, 'utf8') > DESCRIPTION_MAX_BYTES || /[<>]/.test(v)) {
    throw new YtError(400, 'invalidDescription', 'The description is invalid (at most 5000 bytes, no < or >).', domain);
  }
  return v;
}

interface BroadcastFields {
  title?: string;
  description?: string;
  scheduledStartTime?: string;
  scheduledEndTime?: string | undefined;
  privacyStatus?: string;
  content?: Pick<
    YtBroadcast,
    'enableMonitorStream' | 'broadcastStreamDelayMs' | 'enableAutoStart' | 'enableAutoStop' | 'enableDvr' | 'enableEmbed' | 'recordFromStart' | 'enableClosedCaptions' | 'latencyPreference'
  >;
}

/**
 * Reads the parts named in `part` from a liveBroadcast body. As in the real API, a written part
 * replaces the stored one entirely (an omitted description is cleared), and parts not named in
 * `part` are ignored.
 */
function readBroadcastFields(body: Record<string, unknown>, parts: Set<string>): BroadcastFields {
  const out: BroadcastFields = {};
  const D = 'youtube.liveBroadcast';
  if (parts.has('snippet')) {
    const sn = rec(body.snippet);
    out.title = validTitle(sn.title, D);
    out.description = validDescription(sn.description, D);
    if (sn.scheduledStartTime === undefined) throw new YtError(400, 'scheduledStartTimeRequired', 'The scheduled start time is required.', D);
    const start = normTime(sn.scheduledStartTime);
    if (!start) throw new YtError(400, 'invalidScheduledStartTime', 'The scheduled start time is invalid.', D);
    out.scheduledStartTime = start;
    if (sn.scheduledEndTime !== undefined) {
      const end = normTime(sn.scheduledEndTime);
      if (!end || Date.parse(end) <= Date.parse(start)) throw new YtError(400, 'invalidScheduledEndTime', 'The scheduled end time is invalid.', D);
      out.scheduledEndTime = end;
    } else {
      out.scheduledEndTime = undefined;
    }
  }
  if (parts.has('status')) {
    const st = rec(body.status);
    if (st.privacyStatus === undefined) throw new YtError(400, 'privacyStatusRequired', 'The privacy status is required.', D);
    const privacy = enumValue(st.privacyStatus, PRIVACY);
    if (!privacy) throw new YtError(400, 'invalidPrivacyStatus', 'The privacy status is invalid.', D);
    out.privacyStatus = privacy;
  }
  if (parts.has('contentDetails')) {
    const cd = rec(body.contentDetails);
    const ms = rec(cd.monitorStream);
    const bool = (v: unknown, def: boolean, reason: string): boolean => {
      if (v === undefined) return def;
      if (typeof v !== 'boolean') throw new YtError(400, reason, `Invalid value for ${reason.replace(/^invalid/, '')}.`, D);
      return v;
    };
    const delay = ms.broadcastStreamDelayMs ?? 0;
    if (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0) throw new YtError(400, 'invalidValue', 'Invalid broadcastStreamDelayMs.', D);
    const latency = cd.latencyPreference ?? 'normal';
    if (!enumValue(latency, ['normal', 'low', 'ultraLow'] as const)) throw new YtError(400, 'invalidLatencyPreferenceOptions', 'Invalid latency preference.', D);
    out.content = {
      enableMonitorStream: bool(ms.enableMonitorStream, true, 'invalidMonitorStream'),
      broadcastStreamDelayMs: delay,
      enableAutoStart: bool(cd.enableAutoStart, false, 'invalidAutoStart'),
      enableAutoStop: bool(cd.enableAutoStop, false, 'invalidAutoStop'),
      enableDvr: bool(cd.enableDvr, true, 'invalidEnableDvr'),
      enableEmbed: bool(cd.enableEmbed, true, 'invalidEmbedSetting'),
      recordFromStart: bool(cd.recordFromStart, true, 'invalidRecordFromStart'),
      enableClosedCaptions: bool(cd.enableClosedCaptions, false, 'invalidEnableClosedCaptions'),
      latencyPreference: latency as string,
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

const TOKEN_PATH = '/token';

export function createYoutubeSimulator(): PlatformSimulator {
  const sim = new SimPlatform<YoutubeExtraLimits>('youtube', {
    limits: { quotaPerDay: 10_000, tokenTtlSec: 3599 },
    extraLimits: { simulatedEncoder: 0, streamActivationMs: 300, transitionMs: 0, chatPollingIntervalMs: 2000 },
    quotaTimeZone: 'America/Los_Angeles',
  });
  const state = new YoutubeState();
  /** The OAuth clients' channels and refresh tokens; the channel each access token was issued for. */
  let accounts: YoutubeSimAccount[] = seededAccounts('youtube');
  const tokenChannel = new Map<string, string>();
  /** Refresh tokens their channel's owner revoked (`POST /_sim/youtube/revocations`). */
  const revoked = new Set<string>();
  /** access token → the scopes its refresh token was granted. */
  const tokenScopes = new Map<string, string[]>();
  /** Channels whose owner has not enabled live streaming (`PUT /_sim/youtube/live-streaming`). */
  const liveDisabled = new Set<string>();
  /** Channels YouTube currently does not let stream live (a strike, a restriction: `PUT /_sim/youtube/live-streaming {blocked: true}`). */
  const liveBlocked = new Set<string>();
  const channelOfReq = new WeakMap<object, string>();
  /** The channel the request's access token acts for; a request without one never reaches a handler. */
  const me = (req: FastifyRequest): string => {
    const channel = channelOfReq.get(req.raw);
    if (channel === undefined) throw new YtError(401, 'authError', 'Request had invalid authentication credentials.', 'global');
    return channel;
  };
  sim.onReset(() => {
    state.clear();
    accounts = seededAccounts('youtube');
    revoked.clear();
    tokenChannel.clear();
    tokenScopes.clear();
    liveDisabled.clear();
    liveBlocked.clear();
  });
  // The RTMP sink: a stream is active while its key receives data, inactive once the data stops.
  const streams = streamsOf(sim);
  streams.onReceiving((key, receiving) => {
    const s = [...state.streams.values()].find((x) => x.streamName === key);
    if (!s) return;
    if (receiving) return activateStream(s);
    s.streamStatus = 'inactive';
    s.statusChangedAt = Date.now();
  });

  // --- domain operations shared by routes and /_sim ---------------------------------------

  function newBroadcast(channelId: string, f: Required<Pick<BroadcastFields, 'title' | 'description' | 'scheduledStartTime' | 'privacyStatus'>> & BroadcastFields): YtBroadcast {
    const id = randomId(8).slice(0, 11);
    const b: YtBroadcast = {
      id,
      channelId,
      liveChatId: Buffer.from(`\n\r\n\u000b${id}`).toString('base64url'),
      publishedAt: new Date().toISOString(),
      title: f.title,
      description: f.description,
      scheduledStartTime: f.scheduledStartTime,
      scheduledEndTime: f.scheduledEndTime,
      actualStartTime: undefined,
      actualEndTime: undefined,
      privacyStatus: f.privacyStatus,
      lifeCycleStatus: 'created',
      recordingStatus: 'notRecording',
      enableMonitorStream: true,
      broadcastStreamDelayMs: 0,
      enableAutoStart: false,
      enableAutoStop: false,
      enableDvr: true,
      enableEmbed: true,
      recordFromStart: true,
      enableClosedCaptions: false,
      latencyPreference: 'normal',
      boundStreamId: undefined,
      boundStreamLastUpdateTimeMs: undefined,
      ...f.content,
    };
    state.broadcasts.set(b.id, b);
    state.chats.set(b.liveChatId, b.id);
    state.messages.set(b.liveChatId, []);
    sim.recordEffect({ type: 'show.created', externalId: b.id, title: b.title });
    return b;
  }

  /** testStarting → testing / liveStarting → live, instantly or after limits.transitionMs. */
  function moveTo(b: YtBroadcast, starting: LifeCycle, final: LifeCycle): void {
    b.lifeCycleStatus = starting;
    sim.schedule(sim.limits.transitionMs, () => {
      if (b.lifeCycleStatus === starting) b.lifeCycleStatus = final;
    });
  }

  function goLive(b: YtBroadcast): void {
    moveTo(b, 'liveStarting', 'live');
    b.actualStartTime = new Date().toISOString();
    b.recordingStatus = b.recordFromStart ? 'recording' : b.recordingStatus;
    sim.recordEffect({ type: 'show.started', externalId: b.id, title: b.title });
  }

  /** The encoder reached YouTube: the stream is active; enableAutoStart broadcasts go live by themselves. */
  function activateStream(s: YtStream): void {
    if (state.streams.get(s.id) !== s) return; // deleted or reset meanwhile
    s.streamStatus = 'active';
    s.statusChangedAt = Date.now();
    for (const b of state.broadcasts.values()) {
      if (b.boundStreamId === s.id && b.enableAutoStart && b.lifeCycleStatus === 'ready') goLive(b);
    }
  }

  /** The caller's broadcast: another channel's is as unknown as one that does not exist. */
  function findBroadcast(id: string, req: FastifyRequest): YtBroadcast {
    const b = state.broadcasts.get(id);
    if (!b || b.channelId !== me(req)) throw new YtError(404, 'liveBroadcastNotFound', 'Broadcast not found', 'youtube.liveBroadcast', { location: 'id', locationType: 'parameter' });
    return b;
  }

  function transition(b: YtBroadcast, target: 'testing' | 'live' | 'complete'): void {
    const cur = b.lifeCycleStatus;
    const D = 'youtube.liveBroadcast';
    const heading = cur === 'testStarting' ? 'testing' : cur === 'liveStarting' ? 'live' : cur;
    if (heading === target) throw new YtError(403, 'redundantTransition', 'Redundant transition', D);
    const invalid = (): YtError => new YtError(403, 'invalidTransition', 'Invalid transition', D);
    const requireActiveStream = (): void => {
      const s = b.boundStreamId ? state.streams.get(b.boundStreamId) : undefined;
      if (!s || s.streamStatus !== 'active') throw new YtError(403, 'errorStreamInactive', 'Stream is inactive', D);
    };
    switch (target) {
      case 'testing':
        // testing is the monitor stream: only from ready, and only when the monitor stream is on
        if (cur !== 'ready' || !b.enableMonitorStream) throw invalid();
        requireActiveStream();
        moveTo(b, 'testStarting', 'testing');
        return;
      case 'live':
        // with the monitor stream on, YouTube insists on going through testing first
        if (cur !== (b.enableMonitorStream ? 'testing' : 'ready')) throw invalid();
        requireActiveStream();
        goLive(b);
        return;
      case 'complete':
        if (!['testStarting', 'testing', 'liveStarting', 'live'].includes(cur)) throw invalid();
        b.lifeCycleStatus = 'complete';
        b.actualEndTime = new Date().toISOString();
        if (b.recordingStatus === 'recording') b.recordingStatus = 'recorded';
        sim.recordEffect({ type: 'show.ended', externalId: b.id, title: b.title });
        return;
    }
  }

  function charge(units: number): void {
    if (!sim.tryConsumeQuota(units)) throw quotaExceeded();
  }

  // --- the plugin -------------------------------------------------------------------------

  async function plugin(app: FastifyInstance): Promise<void> {
    installSimApiHooks(app, sim, {
      isAuthEndpoint: (req) => (req.raw.url ?? '').split('?')[0] === `${app.prefix}${TOKEN_PATH}`,
      faultReply: (kind, req) => {
        const onToken = (req.raw.url ?? '').split('?')[0] === `${app.prefix}${TOKEN_PATH}`;
        if (kind === '500') {
          return onToken
            ? { status: 500, body: { error: 'internal_failure', error_description: 'Backend Error' } }
            : googleError(500, 'backendError', 'Backend Error', 'global');
        }
        if (kind === 'token_expired') return invalidCredentialsReply();
        return googleError(429, 'rateLimitExceeded', 'Rate Limit Exceeded', 'youtube.api');
      },
      rateLimitReply: () => googleError(429, 'rateLimitExceeded', 'Rate Limit Exceeded', 'youtube.api'),
    });

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      if (err instanceof YtError) return send(reply, err.reply);
      if ((err.statusCode ?? 500) < 500) {
        // body parse errors, oversized bodies: Google answers these as a global parseError / badRequest
        const reason = err.code === 'SIM_BODY_PARSE_ERROR' ? 'parseError' : 'badRequest';
        return send(reply, googleError(400, reason, reason === 'parseError' ? 'Parse Error' : err.message, 'global'));
      }
      return send(reply, googleError(500, 'backendError', 'Backend Error', 'global'));
    });
    app.setNotFoundHandler((_req, reply) => send(reply, googleError(404, 'notFound', 'Not Found', 'global')));

    // --- Google OAuth 2.0 token endpoint (refresh_token grant) ----------------------------
    app.post(TOKEN_PATH, async (req, reply) => {
      const body = isRecord(req.body) ? req.body : {};
      const p = (k: string): string => optString(body[k]) ?? '';
      const oauthError = (status: number, error: string, description: string): FastifyReply =>
        reply.code(status).send({ error, error_description: description });
      void reply.headers({ 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' });
      if (!p('grant_type')) return oauthError(400, 'invalid_request', 'Missing required parameter: grant_type');
      if (p('grant_type') !== 'refresh_token') return oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${p('grant_type')}`);
      if (!p('client_id')) return oauthError(400, 'invalid_request', 'Could not determine client ID from request.');
      if (!p('client_secret')) return oauthError(400, 'invalid_request', 'client_secret is missing.');
      if (!p('refresh_token')) return oauthError(400, 'invalid_request', 'Missing required parameter: refresh_token');
      // A known OAuth client takes its own secret only; a refresh token works with the client it was
      // issued to only. Credentials never seen before are an account that exists (CONTRACT §9: any
      // non-empty credentials): a new client is registered with the secret given, a new refresh token
      // of a known client (with its secret) is a new channel's grant.
      const client = accounts.filter((a) => a.clientId === p('client_id'));
      if (client.length > 0 && !client.some((a) => a.clientSecret === p('client_secret'))) return oauthError(401, 'invalid_client', 'Unauthorized');
      const holder = accounts.find((a) => a.refreshToken === p('refresh_token'));
      if (revoked.has(p('refresh_token')) || (holder && holder.clientId !== p('client_id'))) return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
      const account = holder ?? newChannel(p('client_id'), p('client_secret'), p('refresh_token'));
      const ttl = sim.limits.tokenTtlSec;
      const { token } = sim.tokens.issue(ttl, 'ya29.');
      tokenChannel.set(token, account.channelId);
      const scope = account.scope ?? OAUTH_SCOPE;
      tokenScopes.set(token, scope.split(' ').filter(Boolean));
      return { access_token: token, expires_in: ttl, scope, token_type: 'Bearer' };
    });

    // --- Data API v3 -----------------------------------------------------------------------
    await app.register(
      async (api) => {
        api.addHook('preHandler', async (req, reply) => {
          const header = req.headers.authorization ?? '';
          const m = /^Bearer\s+(\S+)$/i.exec(header);
          const token = m?.[1] ?? qp(req, 'access_token');
          const channel = tokenChannel.get(token ?? '');
          if (sim.tokens.check(token) !== 'valid' || channel === undefined) return send(reply, invalidCredentialsReply());
          // A token whose grant lacks the method's scope: 403 insufficientPermissions (a read needs
          // youtube.readonly at least, anything else youtube or youtube.force-ssl).
          const granted = tokenScopes.get(token ?? '') ?? [];
          const needed = req.method === 'GET' ? READ_SCOPES : WRITE_SCOPES;
          if (!needed.some((s) => granted.includes(s))) {
            return send(
              reply,
              googleError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', 'global', { itemMessage: 'Insufficient Permission' }),
            );
          }
          // A channel not enabled for live streaming: every liveBroadcasts / liveStreams method is refused
          // (liveStreamingNotEnabled, errors of liveBroadcasts.insert/bind/transition/delete…), before any
          // quota is charged. Live chat is another resource: not refused.
          const resource = /\/youtube\/v3\/(liveBroadcasts|liveStreams)(?:[/?]|$)/.exec(req.raw.url ?? '')?.[1];
          if (resource !== undefined && liveDisabled.has(channel)) {
            return send(
              reply,
              googleError(
                403,
                'liveStreamingNotEnabled',
                'The user that authorized the request is not enabled to stream live video on YouTube. The user can find more information at https://www.youtube.com/features.',
                resource === 'liveStreams' ? 'youtube.liveStream' : 'youtube.liveBroadcast',
              ),
            );
          }
          // A channel YouTube does not let stream live for now (a Community Guidelines strike, a
          // restriction): liveBroadcasts.insert is refused with livePermissionBlocked (the one method
          // Google's error tables name it for), before any quota is charged.
          if (req.method === 'POST' && /\/youtube\/v3\/liveBroadcasts(?:\?|$)/.test(req.raw.url ?? '') && liveBlocked.has(channel)) {
            return send(
              reply,
              googleError(
                403,
                'livePermissionBlocked',
                'The user that authorized the request is currently unable to stream live video on YouTube. More information may be found in the channel settings at https://www.youtube.com/features.',
                'youtube.liveBroadcast',
              ),
            );
          }
          channelOfReq.set(req.raw, channel);
          return undefined;
        });
        registerStreams(api);
        registerBroadcasts(api);
        registerChat(api);
      },
      { prefix: '/youtube/v3' },
    );
  }

  function registerStreams(api: FastifyInstance): void {
    const D = 'youtube.liveStream';

    api.post('/liveStreams', async (req) => {
      charge(QUOTA_COST.write);
      const parts = parseParts(req, STREAM_PARTS);
      const body = resourceBody(req);
      const sn = parts.has('snippet') ? rec(body.snippet) : {};
      const cdn = parts.has('cdn') ? rec(body.cdn) : {};
      const cd = parts.has('contentDetails') ? rec(body.contentDetails) : {};
      const title = validTitle(sn.title, D, STREAM_TITLE_MAX);
      const description = validStreamDescription(sn.description, D);
      const need = <T extends string>(v: unknown, values: readonly T[], field: string): T => {
        const Field = field[0]?.toUpperCase() + field.slice(1);
        if (v === undefined) throw new YtError(400, `${field}Required`, `The ${field} is required.`, D);
        const ok = enumValue(v, values);
        if (!ok) throw new YtError(400, `invalid${Field}`, `The ${field} is invalid.`, D);
        return ok;
      };
      const ingestionType = need(cdn.ingestionType, INGESTION_TYPES, 'ingestionType');
      const frameRate = need(cdn.frameRate, FRAME_RATES, 'frameRate');
      const resolution = need(cdn.resolution, RESOLUTIONS, 'resolution');
      const key = () => randomId(6).replace(/[-_]/g, 'x').slice(0, 4).toLowerCase();
      const s: YtStream = {
        id: `${me(req).slice(2)}${Date.now()}${randomId(3)}`.replace(/[-_]/g, 'x'),
        channelId: me(req),
        publishedAt: new Date().toISOString(),
        title,
        description,
        frameRate,
        resolution,
        ingestionType,
        streamName: [key(), key(), key(), key(), key()].join('-'),
        isReusable: typeof cd.isReusable === 'boolean' ? cd.isReusable : true,
        streamStatus: 'ready',
        activationScheduled: false,
        statusChangedAt: Date.now(),
      };
      state.streams.set(s.id, s);
      streams.register(s.streamName, () => [...state.broadcasts.values()].find((b) => b.boundStreamId === s.id)?.id ?? s.id);
      return renderStream(s, parts, streams.ingestUrl());
    });

    api.get('/liveStreams', async (req) => {
      charge(QUOTA_COST.list);
      const parts = parseParts(req, STREAM_PARTS);
      const filter = oneFilter(req, ['id', 'mine']);
      const per = maxResults(req, 5, 0, 50);
      const offset = decodePageToken(req);
      let all = [...state.streams.values()].filter((s) => s.channelId === me(req));
      if (filter === 'id') {
        const ids = idList(qp(req, 'id') ?? '');
        all = all.filter((s) => ids.has(s.id));
      } else if (qp(req, 'mine') !== 'true') {
        all = []; // mine=false: streams of nobody we know
      } else {
        // LiveStreamContentDetails.isReusable: "The liveStreams.list method does not list non-reusable
        // streams if you call the method and set the mine parameter to true. The only way to use that
        // method to retrieve the resource for a non-reusable stream is to use the id parameter."
        all = all.filter((s) => s.isReusable);
      }
      return listResponse('youtube#liveStreamListResponse', paginate(all.map((s) => renderStream(s, parts, streams.ingestUrl())), offset, per));
    });

    api.delete('/liveStreams', async (req, reply) => {
      charge(QUOTA_COST.write);
      const id = requiredParam(req, 'id', 'idRequired', D);
      const s = state.streams.get(id);
      if (!s || s.channelId !== me(req)) throw new YtError(404, 'liveStreamNotFound', 'Stream not found', D, { location: 'id', locationType: 'parameter' });
      // "A stream can't be deleted if it is bound to an active, pre-live, or persistent broadcast"
      // (liveStreams.delete; liveStreamDeletionNotAllowed: "bound to a broadcast that has not completed"):
      // upcoming (created, ready) as much as on air. Only testing and live were refused here, and a
      // stream deleted from under a ready broadcast left it unable to go live.
      const inUse = [...state.broadcasts.values()].some((b) => b.boundStreamId === id && b.lifeCycleStatus !== 'complete' && b.lifeCycleStatus !== 'revoked');
      if (inUse) throw new YtError(403, 'liveStreamDeletionNotAllowed', 'The specified live stream cannot be deleted because it is bound to a broadcast that has not completed.', D);
      state.streams.delete(id);
      return reply.code(204).send();
    });
  }

  function registerBroadcasts(api: FastifyInstance): void {
    const D = 'youtube.liveBroadcast';

    api.post('/liveBroadcasts', async (req) => {
      charge(QUOTA_COST.write);
      const parts = parseParts(req, BROADCAST_PARTS);
      const f = readBroadcastFields(resourceBody(req), parts);
      // snippet and status are mandatory for an insert: naming them in `part` is how they are sent
      if (f.title === undefined || f.scheduledStartTime === undefined) throw new YtError(400, 'titleRequired', 'The title is required.', D);
      if (f.privacyStatus === undefined) throw new YtError(400, 'privacyStatusRequired', 'The privacy status is required.', D);
      const b = newBroadcast(me(req), { ...f, title: f.title, description: f.description ?? '', scheduledStartTime: f.scheduledStartTime, privacyStatus: f.privacyStatus });
      return renderBroadcast(b, parts);
    });

    api.put('/liveBroadcasts', async (req) => {
      charge(QUOTA_COST.write);
      const parts = parseParts(req, BROADCAST_PARTS);
      const body = resourceBody(req);
      const id = optString(body.id);
      if (!id) throw new YtError(400, 'idRequired', 'The id of the broadcast is required.', D, { location: 'id', locationType: 'body' });
      const b = findBroadcast(id, req);
      const f = readBroadcastFields(body, parts);
      const before = JSON.stringify([b.title, b.description, b.scheduledStartTime, b.scheduledEndTime, b.privacyStatus]);
      if (f.title !== undefined) b.title = f.title;
      if (f.description !== undefined) b.description = f.description;
      if (f.scheduledStartTime !== undefined) {
        b.scheduledStartTime = f.scheduledStartTime;
        b.scheduledEndTime = f.scheduledEndTime;
      }
      if (f.privacyStatus !== undefined) b.privacyStatus = f.privacyStatus;
      if (f.content) Object.assign(b, f.content);
      const after = JSON.stringify([b.title, b.description, b.scheduledStartTime, b.scheduledEndTime, b.privacyStatus]);
      if (after !== before) sim.recordEffect({ type: 'show.updated', externalId: b.id, title: b.title });
      return renderBroadcast(b, parts);
    });

    api.get('/liveBroadcasts', async (req) => {
      charge(QUOTA_COST.list);
      const parts = parseParts(req, BROADCAST_PARTS);
      const filter = oneFilter(req, ['id', 'mine', 'broadcastStatus']);
      const per = maxResults(req, 5, 0, 50);
      const offset = decodePageToken(req);
      let all = [...state.broadcasts.values()].filter((b) => b.channelId === me(req));
      if (filter === 'id') {
        const ids = idList(qp(req, 'id') ?? '');
        all = all.filter((b) => ids.has(b.id));
      } else if (filter === 'mine') {
        if (qp(req, 'mine') !== 'true') all = [];
      } else {
        const status = qp(req, 'broadcastStatus');
        const groups: Record<string, LifeCycle[]> = {
          active: ['liveStarting', 'live'],
          upcoming: ['created', 'ready', 'testStarting', 'testing'],
          completed: ['complete', 'revoked'],
        };
        if (status !== 'all') {
          const wanted = status === undefined ? undefined : groups[status];
          if (!wanted) {
            throw new YtError(400, 'invalidValue', `Invalid value '${status ?? ''}' for broadcastStatus.`, 'youtube.parameter', {
              location: 'broadcastStatus',
              locationType: 'parameter',
            });
          }
          all = all.filter((b) => wanted.includes(b.lifeCycleStatus));
        }
      }
      return listResponse('youtube#liveBroadcastListResponse', paginate(all.map((b) => renderBroadcast(b, parts)), offset, per));
    });

    api.delete('/liveBroadcasts', async (req, reply) => {
      charge(QUOTA_COST.write);
      const b = findBroadcast(requiredParam(req, 'id', 'idRequired', D), req);
      if (['testStarting', 'testing', 'liveStarting', 'live'].includes(b.lifeCycleStatus)) {
        throw new YtError(403, 'liveBroadcastDeletionNotAllowed', 'The current status of the live broadcast does not allow it to be deleted.', D);
      }
      state.broadcasts.delete(b.id);
      state.chats.delete(b.liveChatId);
      state.messages.delete(b.liveChatId);
      sim.recordEffect({ type: 'show.cancelled', externalId: b.id, title: b.title });
      return reply.code(204).send();
    });

    api.post('/liveBroadcasts/bind', async (req) => {
      charge(QUOTA_COST.write);
      const parts = parseParts(req, BROADCAST_PARTS);
      const b = findBroadcast(requiredParam(req, 'id', 'idRequired', D), req);
      const streamId = qp(req, 'streamId');
      const found = streamId ? state.streams.get(streamId) : undefined;
      const s = found?.channelId === me(req) ? found : undefined;
      if (streamId && !s) throw new YtError(404, 'liveStreamNotFound', 'Stream not found', D, { location: 'streamId', locationType: 'parameter' });
      if (b.lifeCycleStatus !== 'created' && b.lifeCycleStatus !== 'ready') {
        throw new YtError(403, 'liveBroadcastBindingNotAllowed', 'The current status of the live broadcast does not allow it to be bound to a stream.', D);
      }
      b.boundStreamLastUpdateTimeMs = new Date().toISOString();
      if (!s) {
        // no streamId = unbind
        b.boundStreamId = undefined;
        b.lifeCycleStatus = 'created';
        return renderBroadcast(b, parts);
      }
      b.boundStreamId = s.id;
      b.lifeCycleStatus = 'ready';
      if (s.streamStatus === 'active') {
        activateStream(s); // already pushing: an auto-start broadcast goes live right away
      } else if (sim.limits.simulatedEncoder > 0 && !s.activationScheduled) {
        s.activationScheduled = true;
        sim.schedule(sim.limits.streamActivationMs, () => activateStream(s));
      }
      return renderBroadcast(b, parts);
    });

    api.post('/liveBroadcasts/transition', async (req) => {
      charge(QUOTA_COST.write);
      const target = requiredParam(req, 'broadcastStatus', 'broadcastStatusRequired', D);
      const b = findBroadcast(requiredParam(req, 'id', 'idRequired', D), req);
      const parts = parseParts(req, BROADCAST_PARTS);
      const t = enumValue(target, ['testing', 'live', 'complete'] as const);
      if (!t) throw new YtError(400, 'invalidValue', `Invalid value '${target}' for broadcastStatus.`, 'youtube.parameter', { location: 'broadcastStatus', locationType: 'parameter' });
      transition(b, t);
      return renderBroadcast(b, parts);
    });
  }

  function registerChat(api: FastifyInstance): void {
    const D = 'youtube.liveChat';

    function chatBroadcast(liveChatId: string): YtBroadcast {
      const bid = state.chats.get(liveChatId);
      const b = bid ? state.broadcasts.get(bid) : undefined;
      if (!b) throw new YtError(404, 'liveChatNotFound', 'The live chat that you are trying to retrieve cannot be found.', D);
      return b;
    }

    api.post('/liveChat/messages', async (req) => {
      charge(QUOTA_COST.chatInsert);
      const parts = parseParts(req, CHAT_PARTS);
      const sn = rec(resourceBody(req).snippet);
      const liveChatId = optString(sn.liveChatId);
      if (!liveChatId) throw new YtError(400, 'liveChatIdRequired', 'The liveChatId is required.', D);
      if (sn.type === undefined) throw new YtError(400, 'typeRequired', 'The message type is required.', D);
      if (sn.type !== 'textMessageEvent') throw new YtError(400, 'invalidValue', `Unsupported message type '${String(sn.type)}'.`, D);
      const text = rec(sn.textMessageDetails).messageText;
      if (typeof text !== 'string' || text.trim() === '') throw new YtError(400, 'messageTextRequired', 'The message text is required.', D);
      if (text.length > CHAT_TEXT_MAX) throw new YtError(400, 'messageTextInvalid', 'The message text is invalid (at most 200 characters).', D);
      const b = chatBroadcast(liveChatId);
      if (b.lifeCycleStatus === 'complete' || b.lifeCycleStatus === 'revoked') throw new YtError(403, 'liveChatEnded', 'The live chat is no longer live.', D);
      if (!['testStarting', 'testing', 'liveStarting', 'live'].includes(b.lifeCycleStatus)) {
        // chat opens with the broadcast (testing or live); before that there is nobody to talk to
        throw new YtError(403, 'liveChatDisabled', 'The live chat is not enabled until the broadcast starts testing or goes live.', D);
      }
      const m: YtChatMessage = { id: `LCC.${randomId(24)}`, liveChatId, text, publishedAt: new Date().toISOString() };
      state.messages.get(liveChatId)?.push(m);
      const url = firstUrl(text);
      sim.recordEffect({ type: 'message.posted', externalId: b.id, ...(url ? { url } : {}) });
      return renderMessage(m, parts);
    });

    api.get('/liveChat/messages', async (req) => {
      charge(QUOTA_COST.chatList);
      const parts = parseParts(req, CHAT_PARTS);
      const liveChatId = requiredParam(req, 'liveChatId', 'liveChatIdRequired', D);
      const per = maxResults(req, 500, 200, 2000);
      const b = chatBroadcast(liveChatId);
      if (b.lifeCycleStatus === 'complete' || b.lifeCycleStatus === 'revoked') throw new YtError(403, 'liveChatEnded', 'The live chat is no longer live.', D);
      const all = state.messages.get(liveChatId) ?? [];
      // Messages come oldest to newest. The first request (no pageToken) returns "some or all of the chat
      // history, depending on the length of that history" (liveChatMessages.list): here the newest
      // maxResults of it, so a client cannot page back to older messages; the page token then polls for
      // what comes after.
      // "The pollingIntervalMillis property indicates how long your API client should wait before
      // requesting additional results"; a request sent sooner is refused: rateLimitExceeded, "The request
      // was sent too quickly after the previous request … more frequently than YouTube's refresh rates"
      // (liveChatMessages.list, Errors). The token says when it was handed out.
      const polling = sim.limits.chatPollingIntervalMs;
      const token = qp(req, 'pageToken') ? decodeChatToken(req) : undefined;
      if (token && Date.now() - token.issuedAt < polling) {
        throw new YtError(
          403,
          'rateLimitExceeded',
          "The request was sent too quickly after the previous request: wait pollingIntervalMillis before requesting additional results.",
          D,
        );
      }
      const offset = token ? token.offset : Math.max(0, all.length - per);
      const items = all.slice(offset, offset + per).map((m) => renderMessage(m, parts));
      // chat paging is a polling cursor: nextPageToken is always there and points past the last item
      const page: Page<Record<string, unknown>> = {
        items,
        nextPageToken: encodeChatToken(offset + items.length),
        pageInfo: { totalResults: all.length, resultsPerPage: items.length },
      };
      return listResponse('youtube#liveChatMessageListResponse', page, { pollingIntervalMillis: polling });
    });
  }

  /** A new channel whose owner granted `refreshToken` to OAuth client `clientId` (with `clientSecret`). */
  function newChannel(clientId: string, clientSecret: string, refreshToken: string, scope?: string): YoutubeSimAccount {
    const account: YoutubeSimAccount = {
      channelId: `UC${randomId(16).replace(/[-_]/g, 'x').slice(0, 22)}`,
      clientId,
      clientSecret,
      refreshToken,
      ...(scope ? { scope } : {}),
    };
    accounts.push(account);
    return account;
  }

  /** A new channel and the OAuth credentials that act for it (the seeded OAuth client's, or `clientId`/`clientSecret`'s). */
  async function control(app: FastifyInstance): Promise<void> {
    registerRevocations(app, revoked);
    // The channel owner enables live streaming (YouTube Studio; the first activation takes up to 24 h) or has not.
    app.put('/live-streaming', async (req) => {
      const body = parseControlBody(LiveStreamingBody, req.body, 'expected {account?: channel id, enabled: boolean, blocked?: boolean}');
      const channelId = body.account ?? accounts[0]!.channelId;
      if (!accounts.some((a) => a.channelId === channelId)) throw new SimProblem(404, 'Unknown account', `no YouTube channel ${channelId}`);
      if (body.enabled) liveDisabled.delete(channelId);
      else liveDisabled.add(channelId);
      // blocked: YouTube does not let the channel stream live for now (a strike); unsaid, not blocked.
      if (body.blocked === true) liveBlocked.add(channelId);
      else liveBlocked.delete(channelId);
      return { account: channelId, enabled: body.enabled, blocked: liveBlocked.has(channelId) };
    });
    // Every liveStream of a channel, non-reusable ones included (liveStreams.list by `mine` leaves those
    // out, as YouTube does, and by `id` needs their ids): what a test counts to see a stream left behind.
    app.get('/live-streams', async (req) => {
      const account = (req.query as Record<string, unknown>).account;
      const channelId = typeof account === 'string' && account !== '' ? account : accounts[0]!.channelId;
      if (!accounts.some((a) => a.channelId === channelId)) throw new SimProblem(404, 'Unknown account', `no YouTube channel ${channelId}`);
      const boundTo = (id: string): string | null => [...state.broadcasts.values()].find((b) => b.boundStreamId === id)?.id ?? null;
      return {
        account: channelId,
        streams: [...state.streams.values()].filter((st) => st.channelId === channelId).map((st) => ({ id: st.id, title: st.title, isReusable: st.isReusable, streamStatus: st.streamStatus, boundBroadcastId: boundTo(st.id) })),
      };
    });
    app.post('/accounts', async (req, reply) => {
      const body = parseControlBody(AccountBody, req.body, 'expected {clientId?, clientSecret?, scope?}');
      const seeded = accounts[0]!;
      const account = newChannel(body.clientId ?? seeded.clientId, body.clientSecret ?? seeded.clientSecret, `1//${randomId(32)}`, body.scope);
      return reply.code(201).send({ ...account, credentials: { clientId: account.clientId, clientSecret: account.clientSecret, refreshToken: account.refreshToken } });
    });
  }

  return {
    platform: 'youtube',
    sim,
    plugin,
    control,
    createShowByHand(title: string, account?: string): string {
      const channelId = account ?? accounts[0]!.channelId;
      if (!accounts.some((a) => a.channelId === channelId)) throw new SimProblem(404, 'Unknown account', `no YouTube channel ${channelId}`);
      const b = newBroadcast(channelId, { title, description: '', scheduledStartTime: new Date().toISOString(), privacyStatus: 'unlisted' });
      return b.id;
    },
    showExists: (externalId) => state.broadcasts.has(externalId),
  };
}

function send(reply: FastifyReply, r: SimReply): FastifyReply {
  reply.code(r.status);
  if (r.headers) void reply.headers(r.headers);
  return reply.send(r.body);
}
