/**
 * When to try an outbound webhook again (README "Outbound webhooks": "retried with backoff … for at least 24 h,
 * honouring Retry-After"). Pure functions; the delivery service feeds them the attempt number.
 *
 * The schedule follows Standard Webhooks / Svix: after the first attempt, retries 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h and 10 h later — 8 attempts spread over ≈ 27 h 35 min.
 */
import { httpDateMs } from '../lib/timestamp.js';

/** Delay before retry n (index n-1) after attempt n failed. The only copy of the schedule. */
export const RETRY_SCHEDULE_MS: readonly number[] = Object.freeze([5_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 5 * 3_600_000, 10 * 3_600_000, 10 * 3_600_000]);

/** Each delay is spread ±10 % so that an endpoint that comes back is not hit by every retry at once. */
export const RETRY_JITTER = 0.1;

/** A Retry-After longer than this is clamped (an endpoint cannot park a delivery for days). */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

/** Total span of the schedule without jitter (first attempt → last attempt). */
export function scheduleSpanMs(schedule: readonly number[] = RETRY_SCHEDULE_MS): number {
  return schedule.reduce((a, b) => a + b, 0);
}

/** `delayMs` spread uniformly over ±`fraction`. */
export function jittered(delayMs: number, fraction = RETRY_JITTER, rand: () => number = Math.random): number {
  return Math.max(0, Math.round(delayMs * (1 + (rand() * 2 - 1) * fraction)));
}

/**
 * Delay before the next attempt after attempt `attempt` (1-based) failed, or null when the schedule
 * is exhausted. A Retry-After (ms) longer than the scheduled delay wins, clamped to MAX_RETRY_AFTER_MS.
 */
export function retryDelayMs(attempt: number, opts: { schedule?: readonly number[]; retryAfterMs?: number | null; rand?: () => number } = {}): number | null {
  const schedule = opts.schedule ?? RETRY_SCHEDULE_MS;
  const base = schedule[attempt - 1];
  if (base === undefined || attempt < 1) return null;
  const delay = jittered(base, RETRY_JITTER, opts.rand);
  const after = opts.retryAfterMs;
  return after !== null && after !== undefined && after > delay ? Math.min(after, MAX_RETRY_AFTER_MS) : delay;
}

/** Number of attempts the schedule allows (first attempt + one per delay). */
export function maxAttempts(schedule: readonly number[] = RETRY_SCHEDULE_MS): number {
  return schedule.length + 1;
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns ms from `nowMs`, 0 for a
 * date in the past, null when absent or unparseable. Delay-seconds may have any number of digits: one
 * too large for a number is Infinity (the longest wait, as RFC 9111 §1.2.2 has caches take such a
 * delta), which retryDelayMs clamps to MAX_RETRY_AFTER_MS. Read as garbage (it was, past 10 digits),
 * an endpoint that said to stay away was tried again 5 s later.
 */
export function parseRetryAfter(value: string | string[] | undefined | null, nowMs = Date.now()): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw === null) return null;
  const v = raw.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = httpDateMs(v); // "1.5" or "-3" is no date (Date.parse alone reads them as 2001)
  if (at === undefined) return null;
  return Math.max(0, at - nowMs);
}
