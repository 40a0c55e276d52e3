/**
 * Redis stream ids taken from a request (a page cursor, a time bound): `<ms>-<seq>`, each part an
 * unsigned 64-bit integer. Redis refuses anything else with an error, and refuses an exclusive bound
 * `(0-0` (nothing is below it), so ids are checked here and the empty ranges are named instead of
 * being sent: a cursor or a time that Redis would refuse is a 400 at the edge or an empty page, never
 * a 500.
 */

import { z } from 'zod';

const U64_MAX = (1n << 64n) - 1n;
const PATTERN = /^(\d{1,20})-(\d{1,20})$/;

/** `ms-seq` with both parts within Redis' unsigned 64-bit range. */
export function isStreamId(s: string): boolean {
  const m = PATTERN.exec(s);
  return m !== null && BigInt(m[1]!) <= U64_MAX && BigInt(m[2]!) <= U64_MAX;
}

/** The exclusive upper bound `(id` for XREVRANGE, or null when no id is below `id` (0-0): an empty page. */
export function exclusiveBelow(id: string): string | null {
  const m = PATTERN.exec(id);
  if (!m || !isStreamId(id)) throw new RangeError(`not a stream id: ${id}`);
  const ms = BigInt(m[1]!);
  const seq = BigInt(m[2]!);
  return ms === 0n && seq === 0n ? null : `(${ms}-${seq}`;
}

/** The lowest id at or after the time `ms` (inclusive): every id is at or after any time before 1970. */
export function idAtOrAfter(ms: number): string {
  return ms <= 0 ? '-' : `${Math.floor(ms)}-0`;
}

/** The exclusive upper bound for ids before the time `ms`, or null when no id is (`ms` ≤ 1970-01-01T00:00:00Z). */
export function idsBefore(ms: number): string | null {
  return ms <= 0 ? null : `(${Math.floor(ms)}-0`;
}

/** When Redis appended the entry with this id (ids given as `*`: Redis's clock at the append), ISO. */
export function streamIdTime(id: string): string {
  return new Date(Number(id.slice(0, id.indexOf('-')))).toISOString();
}

/** A page cursor at the edge: a stream id Redis accepts (else 400 with this reason). */
export const StreamCursorSchema = z
  .string()
  // abort: a cursor that is not `<ms>-<seq>` is named for that alone, not also for the range (one error).
  .regex(PATTERN, { message: 'a nextCursor from a previous page expected (<ms>-<seq>)', abort: true })
  .refine(isStreamId, 'each part of a cursor is at most 18446744073709551615 (a Redis stream id)');
