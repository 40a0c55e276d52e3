/**
 * Timestamps read from outside (platform webhooks and reports): strict, never `Date.parse` alone.
 * `Date.parse` is lenient in V8: `"2"` is 2001-02-01, `"2026-02-30"` is March 2nd, a time without an
 * offset is local time. A platform order's time decides its attribution window and its reconciliation
 * period, so only what the platforms document is read:
 *  - an RFC 3339 / ISO 8601 date-time with seconds and an offset (`Z` or `±HH:MM`), a real calendar
 *    date (`rfc3339Ms`, `PlatformTimestampSchema`);
 *  - unix seconds as an integer (TikTok Shop's `create_time`; `unixSecondsMs`).
 * Both stay within the years 1970–9999, so the instant always prints back as a four-digit ISO year.
 */
import { z } from 'zod';

const RFC3339 = z.iso.datetime({ offset: true });
/** 9999-12-31T23:59:59.999Z: the last instant an ISO 8601 four-digit year can write. */
const MAX_MS = 253402300799999;

function inRange(ms: number): boolean {
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_MS;
}

/** Milliseconds of a strict RFC 3339 date-time with an offset, or undefined for anything else. */
export function rfc3339Ms(value: unknown): number | undefined {
  if (typeof value !== 'string' || !RFC3339.safeParse(value).success) return undefined;
  const ms = Date.parse(value);
  return inRange(ms) ? ms : undefined;
}

/**
 * Milliseconds of a time a platform lists its objects by (recovery lookups: Graph's `creation_time` /
 * `created_time`, YouTube's chat `publishedAt`, Bambuser's `createdAt`), or undefined: an RFC 3339
 * date-time as `rfc3339Ms` reads it, or the same with the offset written without a colon, as Graph
 * writes its times (`2026-11-24T18:00:00+0000`, ISO 8601's basic offset). Nothing else: Date.parse
 * read "1.5" as 2001-01-05, and a recovery lookup took the object for older than the attempt.
 */
export function listedTimeMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const colonOffset = value.replace(/(T[\d:.]+[+-]\d{2})(\d{2})$/, '$1:$2');
  return rfc3339Ms(colonOffset);
}

/** Milliseconds of unix seconds given as an integer (1970–9999), or undefined. */
export function unixSecondsMs(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return undefined;
  const ms = value * 1000;
  return inRange(ms) ? ms : undefined;
}

export const TIMESTAMP_MESSAGE = 'an RFC 3339 date-time with an offset, e.g. 2026-11-24T18:00:00Z';
/** A platform's RFC 3339 date-time with an offset (the string as given: read it with rfc3339Ms). */
export const PlatformTimestampSchema = z.string().refine((v) => rfc3339Ms(v) !== undefined, TIMESTAMP_MESSAGE);
export const UNIX_SECONDS_MESSAGE = 'unix seconds (an integer, 1970–9999)';
/** A platform's unix seconds (TikTok Shop). */
export const UnixSecondsSchema = z.number().refine((v) => unixSecondsMs(v) !== undefined, UNIX_SECONDS_MESSAGE);

/**
 * Milliseconds of an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime
 * forms), as a Retry-After header carries it, or undefined. Every form starts with a day name; requiring
 * it keeps Date.parse from reading "1.5" or "-3" as a date (2001-01-05, 2001-03-01).
 */
export function httpDateMs(value: string): number | undefined {
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /i.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
