import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

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
  const rnd = randomBytes(10);
  let bits = 0n;
  for (const b of rnd) bits = (bits << 8n) | BigInt(b);
  let r = '';
  for (let i = 0; i < 16; i++) {
    r = CROCKFORD[Number(bits & 31n)]! + r;
    bits >>= 5n;
  }
  return prefix + time + r;
}

export function randomId(prefix: string, bytes = 9): string {
  return prefix + randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');
}

/** Ids in the contract: [A-Za-z0-9_.:-]{1,128}. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
