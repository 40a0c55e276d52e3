/**
 * Reading a stored record that may not read: an operator's hand edit with redis-cli, a half-migrated
 * key, a write of another version. Its JSON does not parse, it parses to the wrong shape (`null`, a
 * number, an array, an object without its fields), or its key holds another type (WRONGTYPE). Each is
 * a StoredRecordCorruptError naming the key family, the record's id and its key — never its content —
 * counted in syndicast_stored_records_unreadable_total{family}. A route answers it 500 with the problem
 * type `stored-record-unreadable` (a data fault: no retry mends it, unlike a 503); a list leaves the
 * record out (isUnreadableRecord, src/store/redis.ts).
 */
import { storedRecordsUnreadable } from '../lib/metrics.js';

/** The key families a StoredRecordCorruptError names (a bounded metric label). */
export type StoredFamily = 'show' | 'partner' | 'target' | 'mirror' | 'apiKey' | 'audit' | 'endpoint' | 'reconciliation' | 'order' | 'link' | 'message' | 'relayStatus' | 'click' | 'session' | 'attempt' | 'other';

export type CorruptReason = 'not JSON' | 'not of the expected shape' | 'a Redis key of another type';

export class StoredRecordCorruptError extends Error {
  override readonly name = 'StoredRecordCorruptError';
  constructor(
    readonly family: StoredFamily,
    readonly id: string,
    readonly key: string,
    readonly reason: CorruptReason,
  ) {
    super(`the stored ${family} record ${id} (Redis key ${key}) does not read (${reason}): an operator repairs or deletes that key`);
  }
}

/** A StoredRecordCorruptError, counted (every read that finds one counts once). */
export function corruptRecord(family: StoredFamily, id: string, key: string, reason: CorruptReason): StoredRecordCorruptError {
  storedRecordsUnreadable.inc({ family });
  return new StoredRecordCorruptError(family, id, key, reason);
}

/** A plain (non-null, non-array) object. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `raw` parsed and checked by `isShape`; anything else (not JSON, or JSON of another shape) is a
 * StoredRecordCorruptError. Never the parse error itself: V8's SyntaxError quotes the text.
 */
export function parseStored<T>(family: StoredFamily, id: string, key: string, raw: string, isShape: (v: unknown) => boolean): T {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw corruptRecord(family, id, key, 'not JSON');
  }
  if (!isShape(v)) throw corruptRecord(family, id, key, 'not of the expected shape');
  return v as T;
}

/** What a list does with a record it leaves out (logs it with its key: the error is counted already). */
export type OnUnreadable = (err: StoredRecordCorruptError) => void;

/** An OnUnreadable that logs the record left out of a list of `what` at error level, with its key (once: it is counted already). */
export function logLeftOut(log: { error: (obj: object, msg: string) => void } | undefined, what: string): OnUnreadable {
  return (err) => log?.error({ family: err.family, recordId: err.id, key: err.key, reason: err.reason }, `${what} left out of the list: its stored record does not read`);
}

/**
 * What a list's item whose read threw `err` becomes: `err` thrown on unless it is a
 * StoredRecordCorruptError, which is handed to `onUnreadable` and the item left out as `absent`. The one
 * catch of parseListed (sync) and unlessUnreadable (async).
 */
function leftOut<A>(err: unknown, absent: A, onUnreadable: OnUnreadable | undefined): A {
  if (!(err instanceof StoredRecordCorruptError)) throw err;
  onUnreadable?.(err);
  return absent;
}

/** parseStored for one item of a list: undefined (after `onUnreadable`) for one that does not read. */
export function parseListed<T>(family: StoredFamily, id: string, key: string, raw: string, isShape: (v: unknown) => boolean, onUnreadable?: OnUnreadable): T | undefined {
  try {
    return parseStored<T>(family, id, key, raw, isShape);
  } catch (err) {
    return leftOut(err, undefined, onUnreadable);
  }
}

/** `read`'s record, or null (after `onUnreadable`) for one that does not read: a list's item. */
export async function unlessUnreadable<T>(read: Promise<T>, onUnreadable?: OnUnreadable): Promise<T | null> {
  try {
    return await read;
  } catch (err) {
    return leftOut(err, null, onUnreadable);
  }
}

/** A Redis read of the record's key: WRONGTYPE (the key holds another type) is a StoredRecordCorruptError. */
export async function readStored<T>(family: StoredFamily, id: string, key: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (isWrongType(err)) throw corruptRecord(family, id, key, 'a Redis key of another type');
    throw err;
  }
}

/** Redis's WRONGTYPE reply (also quoted in a script's error). */
export function isWrongType(err: unknown): boolean {
  return err instanceof Error && /\bWRONGTYPE\b/.test(err.message);
}
