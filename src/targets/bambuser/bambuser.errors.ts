/**
 * Bambuser HTTP failures → the typed errors of target.errors.ts. Pure (the clock is a parameter);
 * the client performs what the result asks for (blockUntil).
 *
 * Bambuser API keys are long-lived and org-wide: there is no token to refresh, so a 401 is a dead
 * key (revoked, mistyped, or a key of the other region) and a 403 with a valid key is a missing
 * scope — both need an operator, so both are permanent.
 */
import { PermanentError, PinRefusedError, RateLimitedError, RetryableError } from '../target.errors.js';
import { ErrorBodySchema } from './bambuser.schemas.js';
import { credentialsPatch, type AdviceTarget } from '../credentials-advice.js';
import { networkFailure, parseRetryAfter, type MappedFailure } from '../target.failure.js';
export type { MappedFailure };

export type BambuserFailure =
  | { kind: 'http'; status: number; body: unknown; retryAfter: string | undefined }
  | { kind: 'network'; code: string | undefined; message: string };

/** Who is asking, for messages that tell the operator exactly what to fix. */
export interface FailureContext {
  partnerId: string;
  targetId: string;
  /** The target's credential field names, for the PATCH an advice names (credentials-advice.ts adviceTarget). */
  advice?: AdviceTarget;
  /** The scope the endpoint requires (from the API reference), named in 403 messages. */
  scope: string;
  /** e.g. `POST /v1/shows` */
  what: string;
  /**
   * The call carries one pinned product's data (the show product a pin attaches: its productReference
   * = the partner's sku, title, publicUrl; the highlight naming that product): a 400 or 422, Bambuser's
   * validation answer about that body, refuses that product only (PinRefusedError), not the key or the show.
   */
  pinOf?: string;
}

/** The moving window is 10 s: without Retry-After, a full window is free again at most 10 s later. */
export const DEFAULT_RATE_LIMIT_DELAY_MS = 10_000;
const SCOPE_PATTERN = /\b((?:READ|WRITE|DELETE)_[A-Z_]+)\b/;

export function errorMessage(body: unknown): string | undefined {
  const parsed = ErrorBodySchema.safeParse(body);
  if (!parsed.success) return typeof body === 'string' && body.trim() ? body.trim() : undefined;
  const { message, error } = parsed.data;
  const text = message ?? (typeof error === 'string' ? error : error?.message);
  return text && text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export function mapBambuserFailure(failure: BambuserFailure, nowMs: number, ctx: FailureContext): MappedFailure {
  if (failure.kind === 'network') return networkFailure('Bambuser API', `Bambuser ${ctx.what} timed out`, failure.code, failure.message);
  const { status, body, retryAfter } = failure;
  const message = errorMessage(body);
  const advice = ctx.advice ?? { id: ctx.targetId, partnerId: ctx.partnerId };
  const fix = credentialsPatch(advice, ['apiKey']);

  if (status === 429) {
    // Never hand the worker a 0 ms delay: "not right now" still means wait a moment.
    const delayMs = Math.max(1000, parseRetryAfter(retryAfter, nowMs) ?? DEFAULT_RATE_LIMIT_DELAY_MS);
    return {
      error: new RateLimitedError(`Bambuser rate limit (5 requests per 10 s per API key) reached: retry in ${Math.ceil(delayMs / 1000)} s`, delayMs, 'rate_limited'),
      block: { untilMs: nowMs + delayMs, reason: 'bambuser rate limit' },
    };
  }
  if (status === 401) {
    return {
      error: new PermanentError(
        'Bambuser rejected the API key (Authorization: Token …): it is revoked, mistyped, or belongs to the other region ' +
          '(global liveshopping-api vs EU liveshopping-api-eu). Create a key in BamHub → Settings → Integrations → API Keys and store it and its region with ' +
          // region too, the key's (global or eu): a target that never stored one is global, and the
          // advice that left it out had an EU key stored for the global host, refused again.
          `${credentialsPatch(advice, ['apiKey', 'region'])} (region: the key's, global or eu), then resync.`,
        'unauthorized',
      ),
    };
  }
  if (status === 403) {
    const scope = SCOPE_PATTERN.exec(message ?? '')?.[1] ?? ctx.scope;
    return {
      error: new PermanentError(
        `the Bambuser API key lacks the ${scope} scope needed for ${ctx.what}: create a key with READ_SHOWS, WRITE_SHOWS, DELETE_SHOWS, ` +
          `READ_PRODUCTS, WRITE_PRODUCTS and READ_STATS in BamHub and store it with ${fix}`,
        `missing_scope:${scope}`,
      ),
    };
  }
  if (status >= 500) {
    const delayMs = parseRetryAfter(retryAfter, nowMs);
    return {
      error: new RetryableError(`Bambuser API ${status} on ${ctx.what}${message ? `: ${message}` : ''}`, {
        reason: `http_${status}`,
        ...(delayMs !== undefined ? { delayMs } : {}),
      }),
    };
  }
  if (status === 404) {
    return { error: new PermanentError(`Bambuser ${ctx.what}: not found${message ? ` (${message})` : ''}`, 'not_found') };
  }
  if (ctx.pinOf !== undefined && (status === 400 || status === 422)) {
    return { error: new PinRefusedError(`Bambuser refused to pin product ${ctx.pinOf} (${ctx.what}, HTTP ${status})${message ? `: ${message}` : ''}`, `http_${status}`) };
  }
  return { error: new PermanentError(`Bambuser refused ${ctx.what} (HTTP ${status})${message ? `: ${message}` : ''}`, `http_${status}`) };
}
