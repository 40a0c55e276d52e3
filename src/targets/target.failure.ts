/**
 * What every adapter's error mapping produces, and the pieces of it that are the same on every
 * platform: Retry-After parsing, which network codes are timeouts, and acting on a mapped failure.
 */
import type { RateLimiter } from './target.adapter.js';
import type { TargetError } from './target.errors.js';

/** An interpreted failure: the typed error to throw and, when the platform said so, how long to keep every worker away. */
export interface MappedFailure {
  error: TargetError;
  /** Tell the shared limiter to keep every worker away from this account until then. */
  block?: { untilMs: number; reason: string };
}

/** axios codes for a request that ran out of time (as opposed to one that never connected). */
export const TIMEOUT_CODES: ReadonlySet<string> = new Set(['ECONNABORTED', 'ETIMEDOUT']);

/** Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3); ms from now, or undefined. */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Applies the block (if any) to the shared limiter, then throws the typed error. */
export async function raiseMapped(limiter: RateLimiter, mapped: MappedFailure): Promise<never> {
  if (mapped.block) await limiter.blockUntil(mapped.block.untilMs, mapped.block.reason);
  throw mapped.error;
}
