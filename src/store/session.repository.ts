/**
 * Browser sessions for pages that cannot send a bearer header (the bull-board dashboard at
 * /admin/queues): a console sign-in exchanges its API key for a random token kept in an HttpOnly,
 * SameSite=Strict cookie. Only the token's SHA-256 is stored, with the principal it stands for.
 */
import { createHmac } from 'node:crypto';
import { randomToken, sha256Hex } from '../lib/crypto.js';
import type { Principal } from './apikey.repository.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';
import { isPlainObject, parseStored, readStored, StoredRecordCorruptError } from './stored-record.js';

/** What a session's StoredRecordCorruptError names for its id (never the token, nor its hash). */
const SESSION_ID = "(this request's session)";

/**
 * A stored session's shape: the principal it stands for. Its `partnerId` may be `null`: a key record
 * with `"partnerId":null` reads (apikey.repository isIndexRecord), and its sign-in stored that principal
 * as it read it; refused here, its session read as corrupt (/admin/queues 500 right after a 201 sign-in).
 */
function isPrincipal(v: unknown): v is Principal {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['role'] === 'string' && (v['partnerId'] === undefined || v['partnerId'] === null || typeof v['partnerId'] === 'string');
}

/**
 * Live sessions one API key may hold; a sign-in past it ends the key's oldest. Every sign-in stored a
 * session for its full TTL, any valid key's (a viewer's or a partner's too, whose sessions open
 * nothing): a script signing in with a partner key in a loop filled Redis, the system of record, with
 * ~110 sessions a second (8 clients, `npm start` on a loaded 2-core machine), each kept 8 hours. A
 * browser holds one session (the cookie; a renewal replaces it): this is one per browser or device.
 */
export const SESSIONS_PER_KEY = 20;

/** What SessionRepository's renewal key is derived for from SECRETS_KEY (SecretBox.derivedKeys). */
export const SESSION_RENEWAL_LABEL = 'syndicast console session renewal';

/** The same principal: the same key, and for ADMIN_API_KEY's principal the same admin key (its fingerprint). */
const samePrincipal = (a: Principal, b: Principal): boolean => a.id === b.id && (a.adminKey ?? '') === (b.adminKey ?? '');

export class SessionRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly ttlSec: number,
    /** A server secret (SecretBox.derivedKeys(SESSION_RENEWAL_LABEL)[0]) keying renewalToken. */
    private readonly renewalKey: Buffer,
  ) {}

  /**
   * The token of the session that replaces the live session `replaced` of `p` (a renewal): the same for
   * every renewal of that cookie by that principal. Two tabs of one browser renew together (the hourly
   * renewal, a Queues link) with the same cookie: each made a random token, the browser kept the one
   * answered last, and the other session was left alive for 8 hours, counted in the key's cap.
   * Keyed with a server secret, over the principal (its id; ADMIN_API_KEY's fingerprint for the admin)
   * and the cookie: keyed with the raw API key (758dc272), a leaked cookie and its renewal (a HAR file, a
   * proxy log) let anyone test guesses of an operator-chosen ADMIN_API_KEY offline.
   */
  private renewalToken(p: Principal, replaced: string): string {
    return createHmac('sha256', this.renewalKey).update(`${p.id}\0${p.adminKey ?? ''}\0${replaced}`).digest('base64url');
  }

  /**
   * A console sign-in of `p`; `replaced`, the cookie the browser sent (a renewal). Its new token:
   * - `replaced` a live session of `p`: renewalToken(p, replaced), created (a fresh 8 h), and `replaced`
   *   ends. Two tabs renewing it at once both get this one session.
   * - otherwise, the session renewalToken(p, replaced) live (another tab renewed that cookie just
   *   before): that token, nothing created, nothing extended.
   * - otherwise (`replaced` replaced long ago, signed out, ended by the cap, expired, another key's, or
   *   garbage): a random token, a new sign-in, and `replaced` ends if it was live. The derived token was
   *   used for any `replaced` (758dc272): a signed-out or replaced session came back, with a fresh 8 h,
   *   for anyone holding its old cookie, for as long as the key was valid.
   * Sessions live in their own slots (consoleSession, by the token's hash): the check of `replaced` and
   * the create are separate steps. Between them another request may end `replaced` (another tab
   * renewing it: the same session results) or end the session just derived from it (a sign-out within
   * the same milliseconds): that renewal then makes it again, from a cookie that was live when it came.
   */
  async signIn(p: Principal, replaced?: string): Promise<string> {
    if (replaced === undefined) return this.create(p);
    const derived = this.renewalToken(p, replaced);
    // A replaced session that does not read (counted) is no live one: a new sign-in, and it ends below.
    const old = await this.find(replaced).catch((err: unknown) => {
      if (err instanceof StoredRecordCorruptError) return null;
      throw err;
    });
    let token: string;
    if (old !== null && samePrincipal(old, p)) token = await this.create(p, replaced, derived);
    else if ((await this.find(derived)) !== null) return derived; // the second tab: already renewed
    else token = await this.create(p, replaced);
    await this.delete(replaced);
    return token;
  }

  /**
   * A new session of `p`. `replaces`, the token of the session this one replaces (a renewal: the
   * browser's cookie), leaves the key's list in the same step, before the cap counts: taken off after
   * (by delete), a renewal at SESSIONS_PER_KEY made a 21st, the cap ended the key's oldest live session
   * (another browser's, signed out on every renewal) and then the replaced one went: 19 left. Its
   * record (another slot) is the caller's to delete; a create that fails leaves it as it was.
   * `token`: the new session's (a renewal's, renewalToken: signIn); a random one otherwise.
   */
  async create(p: Principal, replaces?: string, token = randomToken(32)): Promise<string> {
    const hash = sha256Hex(token);
    await this.redis.set(this.keys.consoleSession(hash), JSON.stringify(p), 'EX', this.ttlSec);
    // The key's sessions, oldest first: those past SESSIONS_PER_KEY end (their records in their own
    // slots, one DEL each). Sign-ins racing may each end one: never more than the cap is left.
    const ofKey = this.keys.consoleSessionsOfKey(p.id);
    const nowMs = Date.now();
    const tx = this.redis.multi();
    if (replaces !== undefined) tx.zrem(ofKey, sha256Hex(replaces));
    const results = (await tx
      .zadd(ofKey, nowMs, hash)
      .zremrangebyscore(ofKey, '-inf', nowMs - this.ttlSec * 1000)
      .pexpire(ofKey, this.ttlSec * 1000)
      .zrange(ofKey, 0, -SESSIONS_PER_KEY - 1)
      .exec()) ?? [];
    const ended = (results.at(-1)?.[1] as string[] | undefined) ?? [];
    if (ended.length > 0) {
      await this.redis.zrem(ofKey, ...ended);
      for (const h of ended) await this.redis.del(this.keys.consoleSession(h));
    }
    return token;
  }

  /**
   * The session's principal; null when none. One that does not read (not JSON, of another shape, a key
   * of another type) is a StoredRecordCorruptError: never a principal without its role or key id.
   */
  async find(token: string): Promise<Principal | null> {
    const key = this.keys.consoleSession(sha256Hex(token));
    const raw = await readStored('session', SESSION_ID, key, () => this.redis.get(key));
    if (!raw) return null;
    const p = parseStored<Principal>('session', SESSION_ID, key, raw, isPrincipal);
    // A stored null partnerId (isPrincipal) is none: the principal as the rest of the code knows it.
    return { ...p, partnerId: p.partnerId ?? undefined };
  }

  /**
   * Ends a session, and takes it off its key's list. Left there (a sign-out, a renewal, a session whose
   * key was revoked), an ended session still counted towards SESSIONS_PER_KEY for its 8 hours: an admin
   * console renewing its session (hourly and on each Queues link) filled the key's list with ended
   * ones, and the cap then ended another browser's live session of the same key (the shared
   * ADMIN_API_KEY) while only two were alive.
   */
  async delete(token: string): Promise<void> {
    const hash = sha256Hex(token);
    const key = this.keys.consoleSession(hash);
    let raw: string | null;
    try {
      raw = await readStored('session', SESSION_ID, key, () => this.redis.getdel(key));
    } catch (err) {
      if (!(err instanceof StoredRecordCorruptError)) throw err;
      // A key of another type where the session is: it ends all the same (its list entry expires with the list).
      await this.redis.del(key);
      return;
    }
    let id: unknown;
    try {
      id = raw ? (JSON.parse(raw) as Partial<Principal> | null)?.id : undefined;
    } catch {
      id = undefined; // not JSON: it is ended (GETDEL) all the same
    }
    if (typeof id === 'string') await this.redis.zrem(this.keys.consoleSessionsOfKey(id), hash);
  }
}
