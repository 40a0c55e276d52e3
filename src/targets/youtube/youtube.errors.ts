/**
 * Google error bodies → the typed errors of target.errors.ts. Pure (the clock is a parameter) so the
 * whole table is unit tested; the client performs the side effects the result asks for (blockUntil).
 * Reasons: https://developers.google.com/youtube/v3/live/docs/errors and .../docs/errors (core errors).
 */
import { AuthExpiredError, PermanentError, PinRefusedError, RateLimitedError, RetryableError } from '../target.errors.js';
import { nextMidnightPacific } from '../quota-reset.js';
import { GoogleErrorSchema, TokenErrorSchema } from './youtube.schemas.js';
import { networkFailure, parseRetryAfter, type MappedFailure } from '../target.failure.js';
import { credentialsPatch, type AdviceTarget } from '../credentials-advice.js';
export type { MappedFailure };

/** What went wrong with one HTTP exchange, before interpretation. */
export type YoutubeFailure =
  | { kind: 'http'; status: number; body: unknown; retryAfter: string | undefined }
  | { kind: 'network'; code: string | undefined; message: string };

/** Google sends no Retry-After for per-user rate limits and advises backing off from ~1 s: pause the account briefly. */
export const DEFAULT_RATE_LIMIT_DELAY_MS = 2_000;
/** The encoder has not started pushing yet; YouTube usually notices a new stream within seconds. */
export const STREAM_INACTIVE_DELAY_MS = 5_000;

const QUOTA_REASONS = new Set(['quotaExceeded', 'dailyLimitExceeded']);
const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'userRequestsExceedRateLimit']);

/** Operator-facing explanations of the permanent reasons worth explaining; others quote Google's message. */
const PERMANENT_MESSAGES: Record<string, string> = {
  liveStreamingNotEnabled:
    'live streaming is not enabled on this YouTube channel: enable it in YouTube Studio (the first activation can take up to 24 hours), then resync',
  livePermissionBlocked:
    'YouTube does not let this channel stream live at the moment (livePermissionBlocked: e.g. a Community Guidelines strike or another live-streaming restriction): the channel owner sees why and until when in YouTube Studio (youtube.com/features); once the channel can stream again, resync',
  liveBroadcastBindingNotAllowed:
    'YouTube does not allow binding this broadcast to its stream (the broadcast is past the ready state or the stream belongs to another channel)',
  liveBroadcastNotFound: 'the YouTube broadcast no longer exists (it was deleted on YouTube)',
  liveStreamNotFound: 'the YouTube live stream no longer exists (it was deleted on YouTube)',
  liveChatNotFound: "the broadcast's live chat does not exist",
  liveChatDisabled: 'live chat is disabled for this broadcast: enable it in YouTube Studio to post product links',
  liveChatEnded: "the broadcast's live chat has ended",
  insufficientPermissions: 'the authorised Google account did not grant the YouTube scope this needs: re-authorise the channel',
  forbidden: 'YouTube refused the request for this channel (forbidden)',
  invalidTransition: 'YouTube refused the broadcast state transition',
};

export function googleError(body: unknown): { reason: string | undefined; domain: string | undefined; message: string | undefined } {
  const parsed = GoogleErrorSchema.safeParse(body);
  if (!parsed.success) return { reason: undefined, domain: undefined, message: undefined };
  const first = parsed.data.error.errors?.[0];
  return {
    reason: first?.reason ?? parsed.data.error.status,
    domain: first?.domain,
    message: first?.message ?? parsed.data.error.message,
  };
}

function clip(text: string | undefined): string {
  if (text === undefined) return '';
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function rateLimited(status: number, reason: string | undefined, retryAfter: string | undefined, nowMs: number): MappedFailure {
  // A zero or past Retry-After still means "not right now": never hand the worker a 0 ms delay.
  const told = parseRetryAfter(retryAfter, nowMs);
  const delayMs = Math.max(1000, told ?? DEFAULT_RATE_LIMIT_DELAY_MS);
  return {
    error: new RateLimitedError(`YouTube rate limit (${reason ?? `HTTP ${status}`}): retry in ${Math.ceil(delayMs / 1000)} s`, delayMs, reason ?? 'http_429'),
    // Only a wait the platform states holds back the whole account; a bare 429 backs off this call
    // alone (a whole-account pause on every stray 429 starves every show of the account).
    ...(told !== undefined ? { block: { untilMs: nowMs + delayMs, reason: 'youtube rate limit' } } : {}),
  };
}

function unreachable(code: string | undefined, message: string, what: string): MappedFailure {
  return networkFailure(what, `${what} timed out`, code, message);
}

/**
 * The refusals of a pin's chat message that are about its text (liveChatMessages.insert: `invalidValue
 * (400) messageTextInvalid`, "the message text (snippet.textMessageDetails.messageText) is invalid"),
 * which the pinned product's title and price make: that pin's alone, not the chat's or the channel's.
 */
const PIN_TEXT_REASONS = new Set(['messageTextInvalid']);

/**
 * Failure of a YouTube Data API call (www.googleapis.com/youtube/v3/...). `pinOf`: the product whose
 * pin the call posts (its chat message); a refusal of the message's text is then a PinRefusedError.
 */
export function mapApiFailure(failure: YoutubeFailure, nowMs: number, pinOf?: string): MappedFailure {
  if (failure.kind === 'network') return unreachable(failure.code, failure.message, 'YouTube API');

  const { status, body, retryAfter } = failure;
  const { reason, message } = googleError(body);

  if (reason !== undefined && QUOTA_REASONS.has(reason)) {
    const untilMs = nextMidnightPacific(nowMs);
    return {
      error: new RateLimitedError(
        `YouTube daily quota exhausted (${reason}); it resets at midnight Pacific (${new Date(untilMs).toISOString()})`,
        untilMs - nowMs,
        reason,
      ),
      block: { untilMs, reason: 'youtube quota' },
    };
  }
  if (status === 429 || (reason !== undefined && RATE_LIMIT_REASONS.has(reason))) {
    return rateLimited(status, reason, retryAfter, nowMs);
  }
  if (status === 401) {
    return { error: new AuthExpiredError('YouTube rejected the access token even after a refresh', reason ?? 'authError') };
  }
  if (reason === 'errorStreamInactive') {
    return {
      error: new RetryableError('the bound YouTube stream is not active yet (the encoder has not started pushing)', {
        reason,
        delayMs: STREAM_INACTIVE_DELAY_MS,
        waiting: true,
      }),
    };
  }
  if (status >= 500) {
    const delayMs = parseRetryAfter(retryAfter, nowMs);
    return {
      error: new RetryableError(`YouTube API ${status}${reason ? ` ${reason}` : ''}: ${clip(message)}`.trimEnd(), {
        reason: reason ?? `http_${status}`,
        ...(delayMs !== undefined ? { delayMs } : {}),
      }),
    };
  }
  if (pinOf !== undefined && reason !== undefined && PIN_TEXT_REASONS.has(reason)) {
    return { error: new PinRefusedError(`YouTube refused the chat message of product ${pinOf} (${reason})${message ? `: ${clip(message)}` : ''}`, reason) };
  }
  const known = reason !== undefined ? PERMANENT_MESSAGES[reason] : undefined;
  const detail = known ?? `YouTube API ${status}${reason ? ` ${reason}` : ''}${message ? `: ${clip(message)}` : ''}`;
  // The reason once, in brackets (a text that names it already, livePermissionBlocked's, as it is).
  return { error: new PermanentError(known && !known.includes(`(${reason}`) ? `${detail} (${reason})` : detail, reason ?? `http_${status}`) };
}

/** Failure of the OAuth token endpoint (oauth2.googleapis.com/token). */
export function mapTokenFailure(failure: YoutubeFailure, nowMs: number, target: AdviceTarget): MappedFailure {
  if (failure.kind === 'network') return unreachable(failure.code, failure.message, 'Google OAuth');

  const { status, body, retryAfter } = failure;
  const parsed = TokenErrorSchema.safeParse(body);
  const code = parsed.success ? parsed.data.error : undefined;

  if (code === 'invalid_grant') {
    return {
      error: new PermanentError(
        'YouTube authorisation lost: Google refused the refresh token (invalid_grant: revoked, expired, or the OAuth app is in ' +
          '"Testing" mode, where refresh tokens expire after 7 days). Re-authorise the YouTube channel and store the new ' +
          `refresh token with ${credentialsPatch(target, ['refreshToken'])}, then resync.`,
        'invalid_grant',
      ),
    };
  }
  if (status === 429) return rateLimited(status, code, retryAfter, nowMs);
  if (status >= 500) return { error: new RetryableError(`Google OAuth ${status}`, { reason: code ?? `http_${status}` }) };
  if (code === 'invalid_client' || code === 'unauthorized_client') {
    return {
      error: new PermanentError(
        `Google OAuth rejected the client (${code}): check the target's clientId and clientSecret and store them with ` +
          `${credentialsPatch(target, ['clientId', 'clientSecret'])}, then resync.`,
        code,
      ),
    };
  }
  const description = parsed.success ? parsed.data.error_description : undefined;
  return {
    error: new PermanentError(`Google OAuth token refresh failed (${code ?? `HTTP ${status}`})${description ? `: ${clip(description)}` : ''}`, code ?? `http_${status}`),
  };
}
