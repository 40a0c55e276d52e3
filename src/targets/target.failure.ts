/**
 * What every adapter's error mapping produces, and the pieces of it that are the same on every
 * platform: Retry-After parsing, which network codes are timeouts, and acting on a mapped failure.
 */
import { httpDateMs } from '../lib/timestamp.js';
import { isRefusedAnswer } from './platform-http.js';
import type { RateLimiter } from './target.adapter.js';
import { RetryableError, type TargetError } from './target.errors.js';

/** An interpreted failure: the typed error to throw and, when the platform said so, how long to keep every worker away. */
export interface MappedFailure {
  error: TargetError;
  /** Tell the shared limiter to keep every worker away from this account until then. */
  block?: { untilMs: number; reason: string };
  /**
   * Blocks of single use cases of the account (Facebook's Business Use Cases: the platform throttles
   * each on its own), each until its own end: the calls of other use cases go on.
   */
  useCaseBlocks?: { useCase: string; untilMs: number; reason: string }[];
}

/** axios codes for a request that ran out of time (as opposed to one that never connected). */
export const TIMEOUT_CODES: ReadonlySet<string> = new Set(['ECONNABORTED', 'ETIMEDOUT']);

/**
 * A request that got no answer to use (a network failure: retried). `timedOut`: the text of a timeout.
 * An answer refused here (ERR_BAD_RESPONSE: past MAX_RESPONSE_BYTES or MAX_RESPONSE_VALUES,
 * src/targets/platform-http.ts, isRefusedAnswer) is named so, with why: it read "<api> unreachable (ERR_BAD_RESPONSE)",
 * for a platform, or a wrong baseUrl, that had answered 50 MB (attack on npm start, 2026-12-07).
 * Anything else is "<api> unreachable (<code>)", a connection reset half-way through an answer too
 * (axios' ERR_BAD_RESPONSE "stream has been aborted": every ERR_BAD_RESPONSE was taken for a refusal).
 */
export function networkFailure(api: string, timedOut: string, code: string | undefined, message: string): MappedFailure {
  if (code !== undefined && TIMEOUT_CODES.has(code)) return { error: new RetryableError(timedOut, { reason: 'timeout' }) };
  const text = isRefusedAnswer(code, message) ? `${api} answered what cannot be read: ${message}` : `${api} unreachable (${code ?? message})`;
  return { error: new RetryableError(text, { reason: code ?? 'network' }) };
}

/**
 * The longest wait a platform's answer can impose (Retry-After, Facebook's time to regain access):
 * longer than the longest quota wait of our own (YouTube's until midnight Pacific, 25 h on the day the
 * clocks go back). A platform (or a proxy in front of it) that said `Retry-After: 99999999999999999999`
 * made a block the limiter could not store (Redis refused its PX): the run failed with a Redis error,
 * the mirror said nothing, and BullMQ and then every sweep ran it into the same answer again; one of
 * a year kept the account blocked for that year. Past this the next attempt asks the platform again.
 */
export const MAX_PLATFORM_WAIT_MS = 26 * 60 * 60 * 1000;

/** A platform-given wait (ms) as the worker and the limiter take it: at most MAX_PLATFORM_WAIT_MS, never negative. */
export function platformWait(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(Math.max(0, ms), MAX_PLATFORM_WAIT_MS);
}

/** Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3); ms from now (platformWait), or undefined. */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return platformWait(Number(trimmed) * 1000);
  // Strict: Date.parse alone read "1.5" as 2001-01-05, a wait of 0, and the platform was asked again at once.
  const at = httpDateMs(trimmed);
  return at === undefined ? undefined : platformWait(at - nowMs);
}

/** Applies the block (if any) to the shared limiter, then throws the typed error. */
export async function raiseMapped(limiter: RateLimiter, mapped: MappedFailure): Promise<never> {
  if (mapped.block) await limiter.blockUntil(mapped.block.untilMs, mapped.block.reason);
  for (const b of mapped.useCaseBlocks ?? []) await limiter.blockUntil(b.untilMs, b.reason, b.useCase);
  throw mapped.error;
}
