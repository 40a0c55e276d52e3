import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID-style id: 10 chars of millisecond time then 16 random chars (80 bits), Crockford base32.
 * Lexicographic order = time order, and unguessable (used for click ids and event ids).
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = POOL_SIZE;

/** 10 random bytes from a pooled buffer refilled from the CSPRNG (one syscall per ~400 ids). */
function random10(): Buffer {
  if (poolOffset + 10 > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  const b = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return b;
}

/** 5 bytes (40 bits, exact in a double) → 8 Crockford base32 chars. */
function encode40(b: Buffer, at: number): string {
  let v = b[at]! * 2 ** 32 + b.readUInt32BE(at + 1);
  let out = '';
  for (let i = 0; i < 8; i++) {
    out = CROCKFORD[v % 32]! + out;
    v = Math.floor(v / 32);
  }
  return out;
}

/**
 * A ULID-style id: 10 chars of millisecond time then 16 random chars (80 bits), Crockford base32.
 * Lexicographic order = time order, and unguessable (used for click ids and event ids).
 */
export function sortableId(prefix = '', now = Date.now()): string {
  let t = now;
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const rnd = random10();
  return prefix + time + encode40(rnd, 0) + encode40(rnd, 5);
}

export function randomId(prefix: string, bytes = 9): string {
  return prefix + randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');
}

/** Ids in the contract: [A-Za-z0-9_.:-]{1,128}. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
