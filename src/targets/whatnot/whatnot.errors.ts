/**
 * Whatnot problem+json answers / network failures → the typed errors of target.errors.ts, and the
 * RateLimit-* header reading. Pure (the clock is a parameter).
 * Whatnot allows 10 requests/s per seller per app and says so on every response:
 * `RateLimit-Limit: 10, 10;w=1`, `RateLimit-Remaining`, `RateLimit-Reset` (delta seconds);
 * a 429 carries `Retry-After` and `{"type": "rate-limited", ...}`.
 */
import { AuthExpiredError, PermanentError, PinRefusedError, RateLimitedError, RetryableError } from '../target.errors.js';
import { TokenErrorSchema, type HttpFailure } from '../oauth2.js';
import { ProblemSchema, type Problem } from './whatnot.schemas.js';
import { networkFailure, parseRetryAfter, type MappedFailure } from '../target.failure.js';
import { credentialsPatch, type AdviceTarget } from '../credentials-advice.js';
export type { MappedFailure };

export type WhatnotFailure = HttpFailure;

export interface FailureContext {
  what: string;
  target: AdviceTarget;
  /**
   * The request parameter that names the pinned product (`product_id` of a merchandising call): a 4xx
   * whose problem names it (`param`) refuses that product only (PinRefusedError), not the account.
   */
  item?: string;
  /** The credentials are an app's (OAuth) and a 401 came even with a freshly refreshed access token. */
  refreshed?: boolean;
  /**
   * The credentials are an app's (OAuth: clientId, clientSecret, refreshToken), not a personal access
   * token: a scope the grant lacks is then the seller's to grant by connecting the app again, and the
   * new refresh token is what the target needs, not an `accessToken`.
   */
  app?: boolean;
}

/**
 * Whatnot's 404 problem naming no parameter (RFC 9457 body with a `type`, no `param`; `not-found` in
 * the simulator, our model of Whatnot's answer): a resource the path names (a product that is none of
 * the seller's listings, a show) or a show the body names is none the seller has. The mirror's error
 * (a PermanentError) unless the caller tells which: the lineup calls read the show. A bare 404 (no
 * problem body: a gateway's, a wrong base URL's) is not one: it stays the mirror's error.
 */
export class UnknownResourceError extends PermanentError {}

/** When a 429 comes without Retry-After: the window is one second. */
export const DEFAULT_RATE_LIMIT_DELAY_MS = 1_000;

function firstNumber(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined) return undefined;
  // Structured-field lists ("0, 5;w=1") and plain numbers alike: the first item is the current policy.
  const m = /^\s*(\d+)/.exec(v);
  return m?.[1] !== undefined ? Number(m[1]) : undefined;
}

/**
 * RateLimit-Remaining: 0 → keep every worker away until the window resets (RateLimit-Reset is in
 * seconds; at least one second, since Whatnot's window is one second long).
 */
export function proactiveBlock(headers: Record<string, string | string[] | undefined>, nowMs: number): { untilMs: number; reason: string } | undefined {
  const remaining = firstNumber(headers['ratelimit-remaining']);
  if (remaining === undefined || remaining > 0) return undefined;
  const resetS = firstNumber(headers['ratelimit-reset']) ?? 1;
  return { untilMs: nowMs + Math.max(1, resetS) * 1000, reason: 'whatnot rate limit window used up' };
}

export function problemOf(body: unknown): Problem {
  const parsed = ProblemSchema.safeParse(body);
  return parsed.success ? parsed.data : {};
}

function clip(text: string | undefined): string {
  if (!text) return '';
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function mapFailure(failure: WhatnotFailure, nowMs: number, ctx: FailureContext): MappedFailure {
  if (failure.kind === 'network') return unreachable(failure, 'Whatnot API');
  const passing = transient(failure, nowMs, 'Whatnot API');
  if (passing) return passing;
  const { status, body } = failure;
  const p = problemOf(body);
  const reason = p.type ?? `http_${status}`;
  const detail = clip(p.detail ?? p.title);
  const fix = credentialsPatch(ctx.target, ['accessToken']);
  if (status === 401 && ctx.refreshed) {
    return { error: new AuthExpiredError(`Whatnot refused the access token even after a refresh${detail ? `: ${detail}` : ''}`, reason) };
  }
  if (status === 401) {
    return {
      error: new PermanentError(
        `Whatnot refused the API token (revoked, expired or wrong environment): issue a new Seller API token for the seller and store it with ${fix}, then resync`,
        reason,
      ),
    };
  }
  if (status === 403) {
    const scopes = p.required_scopes?.length ? p.required_scopes.join(', ') : undefined;
    const grant = ctx.app
      ? `the seller must connect the app again granting it; store the new refresh token with ${credentialsPatch(ctx.target, ['refreshToken'], ['accessToken'])}`
      : `generate a new personal access token with it in the seller's Whatnot developer dashboard and store it with ${fix}`;
    return {
      error: new PermanentError(
        scopes
          ? `Whatnot: the ${ctx.app ? "app's authorisation" : 'API token'} lacks the scope ${scopes}, needed to ${ctx.what}: ${grant}, then resync`
          : `Whatnot refused to ${ctx.what} (forbidden)${detail ? `: ${detail}` : ''}`,
        reason,
      ),
    };
  }
  if (ctx.item !== undefined && p.param === ctx.item) {
    // A 404 naming it: the seller has no such listing yet (mendable: asked again while the show is
    // live); another status judged the id itself (a 422 for a character Whatnot does not take).
    return { error: new PinRefusedError(`Whatnot refused to ${ctx.what} (HTTP ${status}, ${p.param})${detail ? `: ${detail}` : ''}`, reason, { mendable: status === 404 }) };
  }
  if (status === 404) {
    const unnamed = p.type !== undefined && p.param === undefined;
    return { error: new (unnamed ? UnknownResourceError : PermanentError)(`Whatnot could not ${ctx.what}: not found${detail ? ` (${detail})` : ''}`, reason) };
  }
  return { error: new PermanentError(`Whatnot refused to ${ctx.what} (HTTP ${status}${p.param ? `, ${p.param}` : ''})${detail ? `: ${detail}` : ''}`, reason) };
}

function unreachable(failure: Extract<WhatnotFailure, { kind: 'network' }>, what: string): MappedFailure {
  return networkFailure(what, `${what} timed out`, failure.code, failure.message);
}

/** 429 and 5xx of the API and of the token endpoint alike: worth another try later. */
function transient(failure: Extract<WhatnotFailure, { kind: 'http' }>, nowMs: number, what: string): MappedFailure | undefined {
  const { status, body, retryAfter } = failure;
  const p = problemOf(body);
  const reason = p.type ?? TokenErrorSchema.safeParse(body).data?.error ?? `http_${status}`;
  const detail = clip(p.detail ?? p.title);
  if (status === 429) {
    const delayMs = Math.max(1000, parseRetryAfter(retryAfter, nowMs) ?? DEFAULT_RATE_LIMIT_DELAY_MS);
    return {
      error: new RateLimitedError(`Whatnot rate limit (10 requests/s per seller): retry in ${Math.ceil(delayMs / 1000)} s`, delayMs, reason),
      block: { untilMs: nowMs + delayMs, reason: 'whatnot rate limit' },
    };
  }
  if (status >= 500) {
    const delayMs = parseRetryAfter(retryAfter, nowMs);
    return { error: new RetryableError(`${what} ${status}${detail ? `: ${detail}` : ''}`, { reason, ...(delayMs !== undefined ? { delayMs } : {}) }) };
  }
  return undefined;
}

/**
 * Failure of the OAuth token endpoint (`…/seller-api/rest/oauth/token`). Any refusal (RFC 6749
 * `invalid_grant`: the refresh token was revoked, expired after its year or is another app's;
 * `invalid_client`: the app's id or secret) means the seller must connect the app again.
 */
export function mapTokenFailure(failure: WhatnotFailure, nowMs: number, target: AdviceTarget): MappedFailure {
  if (failure.kind === 'network') return unreachable(failure, 'Whatnot OAuth token endpoint');
  const passing = transient(failure, nowMs, 'Whatnot OAuth token endpoint');
  if (passing) return passing;
  const parsed = TokenErrorSchema.safeParse(failure.body);
  const code = parsed.data?.error;
  const description = parsed.data?.error_description;
  const fix = code === 'invalid_client' ? credentialsPatch(target, ['clientId', 'clientSecret']) : credentialsPatch(target, ['refreshToken'], ['accessToken']);
  const cause =
    code === 'invalid_client'
      ? "Whatnot refused the app's client id or secret (invalid_client): check clientId and clientSecret"
      : `Whatnot refused the refresh token (${code ?? `HTTP ${failure.status}`}: revoked by the seller, expired after a year, or issued to another app)${description ? `: ${clip(description)}` : ''}; have the seller connect the app again`;
  return { error: new PermanentError(`Whatnot authorisation lost: ${cause}, store the new credentials with ${fix}, then resync`, code ?? `http_${failure.status}`) };
}
