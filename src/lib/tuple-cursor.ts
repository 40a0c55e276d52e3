/**
 * Opaque `nextCursor`s of the lists that are ordered by a few fields rather than by a sorted set's
 * score (the ops endpoints view, the API keys): base64url of the JSON array of the page's last item's
 * fields. The next page is the items that come after those fields in the list's order, so items added
 * or removed while a client pages shift nothing: an item whose fields stay as they were is listed once.
 * An item whose ordering fields change between two pages is listed where its new fields put it: once
 * more when it moves after the cursor, not at all when it moves before it (an endpoint that starts or
 * stops failing while the endpoints view is paged; a key's fields, createdAt and id, never change).
 */
import { z } from 'zod';

/** The JSON value a base64url cursor carries; undefined when it is not base64url of JSON. */
export function decodeJsonCursor(cursor: string): unknown {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The cursor of a page whose last item has these fields. */
export function tupleCursor(fields: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(fields)).toString('base64url');
}

/**
 * The fields a cursor carries when `shape` takes them (each a string of 1-128 characters, or an integer
 * where `shape` says 'int'), or null when it is none this API gives.
 */
export function parseTupleCursor(cursor: string, shape: readonly ('string' | 'int')[]): (string | number)[] | null {
  const v = decodeJsonCursor(cursor);
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length !== shape.length) return null;
  const ok = shape.every((kind, i) => {
    const x: unknown = v[i];
    return kind === 'int' ? Number.isSafeInteger(x) : typeof x === 'string' && x.length > 0 && x.length <= 128;
  });
  return ok ? (v as (string | number)[]) : null;
}

/** A list's `cursor` query parameter of this `shape` (else 400 with this reason, as the other lists say it). */
export function tupleCursorSchema(shape: readonly ('string' | 'int')[]) {
  return z
    .string()
    .max(1024)
    .refine((c) => parseTupleCursor(c, shape) !== null, 'a nextCursor from a previous page of this list expected')
    .describe("the previous page's `nextCursor` (opaque)");
}

/** Whether the fields `a` come before `b` (each field in turn: numbers by value, strings by code unit). */
export function tupleBefore(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** The comparator of tupleBefore for Array.sort. */
export function tupleOrder(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  return tupleBefore(a, b) ? -1 : tupleBefore(b, a) ? 1 : 0;
}
