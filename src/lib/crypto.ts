/** AES-256-GCM for secrets at rest, SHA-256 for API keys, random tokens. */
import * as nodeCrypto from 'node:crypto';
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** SECRETS_KEY (and each SECRETS_KEY_PREVIOUS): the AES-256 key, 32 bytes, base64. The configuration checks it too. */
export const SECRETS_KEY_RULE = 'must be 32 bytes, base64-encoded (openssl rand -base64 32)';
export const isSecretsKey = (b64: string): boolean => Buffer.from(b64.trim(), 'base64').length === 32;

/**
 * GCM nonces: 12 random bytes each, drawn from a pool refilled 256 at a time (one randomBytes call
 * per seal was a visible part of a sync's CPU). Each nonce is used once: the slice is copied out.
 */
const IV_BYTES = 12;
let ivPool = Buffer.alloc(0);
let ivAt = 0;
function nextIv(): Buffer {
  if (ivAt + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_BYTES * 256);
    ivAt = 0;
  }
  const iv = Buffer.from(ivPool.subarray(ivAt, ivAt + IV_BYTES));
  ivAt += IV_BYTES;
  return iv;
}

/**
 * A sealed value that neither SECRETS_KEY nor any of SECRETS_KEY_PREVIOUS opens (the key that sealed it
 * was changed or removed without the rotation of docs/operations.md), or a stored text that is not a
 * sealed value at all. A misconfiguration of the service, not the caller's fault: the API answers it
 * 503 `secret-unreadable` (src/api/plugins/errors.plugin.ts), a sync fails its mirror with it. The
 * message never holds the value.
 */
export class SecretUnreadableError extends Error {
  readonly code = 'SECRET_UNREADABLE';
  constructor() {
    super('a stored secret cannot be opened with SECRETS_KEY or any of SECRETS_KEY_PREVIOUS: the key that sealed it was changed or removed without rotation');
    this.name = 'SecretUnreadableError';
  }
}

/**
 * A catch handler for a sealed value no configured key opens, to be skipped: undefined for a
 * SecretUnreadableError, any other error thrown on (`await repo.read().catch(undefinedIfUnreadable)`).
 */
export function undefinedIfUnreadable(err: unknown): undefined {
  if (!(err instanceof SecretUnreadableError)) throw err;
  return undefined;
}

/** What `open` opens, or undefined when no configured key opens it (SecretUnreadableError); any other error is thrown. */
export function tryOpen<T>(open: () => T): T | undefined {
  try {
    return open();
  } catch (err) {
    return undefinedIfUnreadable(err);
  }
}

export class SecretBox {
  private readonly key: Buffer;
  /** Earlier keys, tried for decryption only (SECRETS_KEY_PREVIOUS): lets SECRETS_KEY be rotated in place. */
  private readonly previous: Buffer[];
  constructor(keyBase64: string, previousBase64: string[] = []) {
    const parse = (b64: string, name: string): Buffer => {
      if (!isSecretsKey(b64)) throw new Error(`${name} ${SECRETS_KEY_RULE}`);
      return Buffer.from(b64.trim(), 'base64');
    };
    this.key = parse(keyBase64, 'SECRETS_KEY');
    this.previous = previousBase64.filter((k) => k.trim() !== '').map((k) => parse(k, 'SECRETS_KEY_PREVIOUS'));
  }
  /**
   * Which keys this box holds (SECRETS_KEY and SECRETS_KEY_PREVIOUS, in order), as a digest that tells
   * nothing of them: a mirror failed on a secret no key opened records it, and the sweep leaves the
   * mirror alone while its process holds the same keys (a restart with a restored key retries it).
   */
  get keyring(): string {
    return (this.keyringMemo ??= createHash('sha256')
      .update(Buffer.concat([this.key, ...this.previous].map((k) => createHmac('sha256', k).update('syndicast keyring').digest())))
      .digest('base64url')
      .slice(0, 22));
  }
  private keyringMemo: string | undefined;
  encrypt(plain: string): string {
    const iv = nextIv();
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${iv.toString('base64url')}.${c.getAuthTag().toString('base64url')}.${ct.toString('base64url')}`;
  }
  decrypt(sealed: string): string {
    return this.open(sealed).plain;
  }
  /** decrypt(), and whether SECRETS_KEY itself sealed it (not one of SECRETS_KEY_PREVIOUS): such a value need not be sealed again. */
  open(sealed: string): { plain: string; current: boolean } {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new SecretUnreadableError();
    for (const key of [this.key, ...this.previous]) {
      try {
        const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        d.setAuthTag(Buffer.from(tag, 'base64url'));
        return { plain: Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8'), current: key === this.key };
      } catch {
        // GCM authentication fails under a wrong key: try the next one
      }
    }
    throw new SecretUnreadableError();
  }
  /**
   * A key of its own for one purpose (`label`), derived from SECRETS_KEY (HMAC-SHA256 of the label),
   * then one from each of SECRETS_KEY_PREVIOUS: the first signs, all of them verify, so processes in the
   * middle of a rotation (docs/operations.md) still accept each other's signatures. SECRETS_KEY itself
   * never leaves this box (the relay's edge thread gets only its derived keys).
   */
  derivedKeys(label: string): Buffer[] {
    return [this.key, ...this.previous].map((k) => createHmac('sha256', k).update(label).digest());
  }
  /** Keyed hash for values we must look up but never store in clear (link codes, IP hashes). */
  mac(value: string): Buffer {
    return createHmac('sha256', this.key).update(value).digest();
  }
}

/**
 * Node's one-shot digest (`crypto.hash`, Node >= 20.12): the same digest, without a Hash object, a
 * stream and an `update` per call (3–4× faster for short texts; a pin sync makes three SHA-256s, the
 * dispatcher one SHA-1 per dirty show). Older Nodes (engines: >= 20.6) take createHash.
 */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: string, encoding: 'hex' | 'base64url') => string }).hash;

/** The `algorithm` digest of a text (UTF-8), as hex or base64url. */
export function digestOf(algorithm: 'sha1' | 'sha256', value: string, encoding: 'hex' | 'base64url'): string {
  return oneShot ? oneShot(algorithm, value, encoding) : createHash(algorithm).update(value).digest(encoding);
}

/** SHA-256 of a text (UTF-8), as hex or base64url. */
export function sha256(value: string, encoding: 'hex' | 'base64url'): string {
  return digestOf('sha256', value, encoding);
}

export function sha256Hex(value: string): string {
  return sha256(value, 'hex');
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
