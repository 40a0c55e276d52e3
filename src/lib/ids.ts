import { createHash, randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID-style id: 10 chars of millisecond time then 16 random chars (80 bits), Crockford base32.
 * Lexicographic order = time order, and unguessable (used for click ids and event ids).
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = POOL_SIZE;

/**
 * 16 random Crockford chars (80 bits) from a pooled buffer refilled from the CSPRNG (one syscall per
 * ~400 ids), read in place (no Buffer view per id).
 */
function random80(): string {
  if (poolOffset + 10 > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  const s = encode80(pool, poolOffset);
  poolOffset += 10;
  return s;
}

/** Char codes of the Crockford alphabet. */
const CODES = Array.from(CROCKFORD, (c) => c.charCodeAt(0));

/**
 * 10 bytes (80 bits) from `at` → 16 Crockford base32 chars, 5 bits each, most significant first (two
 * 40-bit halves). Built in one String.fromCharCode: no chain of one-char concatenations to flatten
 * later. The bytes are read by index (destructuring a Buffer runs its iterator).
 */
export function encode80(b: Buffer, at = 0): string {
  const c = CODES;
  const b0 = b[at], b1 = b[at + 1], b2 = b[at + 2], b3 = b[at + 3], b4 = b[at + 4];
  const b5 = b[at + 5], b6 = b[at + 6], b7 = b[at + 7], b8 = b[at + 8], b9 = b[at + 9];
  return String.fromCharCode(
    c[b0! >> 3]!, c[((b0! & 7) << 2) | (b1! >> 6)]!, c[(b1! >> 1) & 31]!, c[((b1! & 1) << 4) | (b2! >> 4)]!,
    c[((b2! & 15) << 1) | (b3! >> 7)]!, c[(b3! >> 2) & 31]!, c[((b3! & 3) << 3) | (b4! >> 5)]!, c[b4! & 31]!,
    c[b5! >> 3]!, c[((b5! & 7) << 2) | (b6! >> 6)]!, c[(b6! >> 1) & 31]!, c[((b6! & 1) << 4) | (b7! >> 4)]!,
    c[((b7! & 15) << 1) | (b8! >> 7)]!, c[(b8! >> 2) & 31]!, c[((b8! & 3) << 3) | (b9! >> 5)]!, c[b9! & 31]!,
  );
}

/** The time part of the last id made (ids of one millisecond share it). */
let lastMs = Number.NaN;
let lastTime = '';

/**
 * A ULID-style id: 10 chars of millisecond time then 16 random chars (80 bits), Crockford base32.
 * Lexicographic order = time order, and unguessable (used for click ids and event ids).
 */
export function sortableId(prefix = '', now = Date.now()): string {
  if (now !== lastMs) {
    lastTime = timePart(now);
    lastMs = now;
  }
  return prefix + lastTime + random80();
}

function timePart(ms: number): string {
  let t = ms;
  const out = new Array<number>(10);
  for (let i = 9; i >= 0; i--) {
    out[i] = CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
  return String.fromCharCode(...out);
}

/**
 * The same shape as sortableId, but the same for the same `seed`: time part of `ms`, then 80 bits of
 * SHA-256 of the seed. For a record that one logical request must create once however often it runs
 * (a scheduled tick processed again after a crash).
 */
export function sortableIdOf(prefix: string, ms: number, seed: string): string {
  return prefix + timePart(ms) + encode80(createHash('sha256').update(seed).digest(), 0);
}

export function randomId(prefix: string, bytes = 9): string {
  return prefix + randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');
}

/** The longest id the contract allows (ID_PATTERN). */
export const ID_MAX_LENGTH = 128;
/**
 * The longest order id kept from a platform (their ids are theirs, not the contract's): longer ones are
 * refused at ingest (src/attribution/attribution.service.ts), and the order view's `orderId` path
 * parameter takes up to this many (src/api/app.ts PARAM_MAX_LENGTH).
 */
export const PLATFORM_ORDER_ID_MAX_LENGTH = 256;
/** Ids in the contract: [A-Za-z0-9_.:-]{1,128}. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/*
 * Ids may contain ':' (ID_PATTERN), which joins the parts of Redis keys (src/store/keys.ts) and of
 * platform order refs (src/domain/order.ts): an id that another part follows is written as keyPart(id).
 */
const KEY_PART_SPECIAL = /[%:{}]/;
const KEY_PART_ALL = /[%:{}]/g;
const KEY_PART_CODES: Readonly<Record<string, string>> = { '%': '%25', ':': '%3A', '{': '%7B', '}': '%7D' };

/**
 * An id as one key part: '%' → '%25', ':' → '%3A', '{' → '%7B', '}' → '%7D' (injective; the result has
 * no ':' and no braces). An id without those characters is returned as it is (one regex test: keys are
 * built on the ingest, redirect and sync paths).
 */
export function keyPart(id: string): string {
  return KEY_PART_SPECIAL.test(id) ? id.replace(KEY_PART_ALL, (c) => KEY_PART_CODES[c]!) : id;
}

/** The id a keyPart stands for (for code that reads ids back out of key names). */
export function fromKeyPart(part: string): string {
  return part.includes('%') ? part.replace(/%(25|3A|7B|7D)/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))) : part;
}

/**
 * An id as a segment of a `/v1` path the service tells an operator to call (an advice in `lastError`,
 * a readiness action, a credentials PATCH): `.` and `..` with each dot as `%252E` (README "Edges of
 * the API": URL normalisation in curl, fetch and browsers removes such a segment, so the advice for a
 * show `..` named its partner's path); every other id as it is (its characters need no escaping).
 */
export function pathId(id: string): string {
  return id === '.' || id === '..' ? id.replaceAll('.', '%252E') : id;
}
