/** OAuth access tokens per target, shared by every worker, sealed with SECRETS_KEY. */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Result } from 'ioredis';
import type { SecretBox } from '../lib/crypto.js';
import type { AccessToken, TokenStore } from '../targets/target.adapter.js';
import type { Keys } from './keys.js';
import { defineRedisScripts, type RedisClient } from './redis.js';

const MEMO_MARGIN_MS = 120_000;

/**
 * KEYS: the record. ARGV: the sealed record read ('' none), the one to store instead ('' deletes it).
 * Only if the record is still the one read: another process may have stored a fresh token and a
 * rotated refresh token since, which a read-then-write here would overwrite (or delete) with a dead one.
 */
const REPLACE_IF_LUA = `if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * KEYS: the target's refreshes under way (ZSET nonce → lease end). ARGV: a nonce, the lease (ms; '' to
 * only count). Drops the ended leases, adds ARGV[1]'s, and answers how many others are under way.
 * Ends from Redis TIME: workers with skewed clocks share them.
 */
const REFRESHING_LUA = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then n = n - 1 end
return n
`;

/**
 * KEYS: the target's grant lock. ARGV: the holder's nonce, a new lease (ms; '' releases it). Only the
 * holder's: 1, else 0 (its lease ran out, and another may hold it now).
 */
const GRANT_LOCK_LUA = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/** How often a PATCH waiting for another's grant lock looks again. */
const GRANT_LOCK_POLL_MS = 50;

/** A target PATCH's hold on the target's credentials and token record (RedisTokenStore.lockGrant). */
export interface GrantLock {
  /** True while it is still this PATCH's (its lease renewed for `leaseMs` more); false: it ran out (for good), the target may not be written. */
  renew(): Promise<boolean>;
  /** Stops the renewals and frees the lock if it is still this PATCH's (may throw: Redis down; the lease frees it then). */
  release(): Promise<void>;
}

/** How long past its request's timeout a refresh may take to store its result (parse, seal, one write). */
const REFRESH_STORE_MARGIN_MS = 5_000;
/** How often a dropGrant waiting for another process's refresh looks again. */
const REFRESH_WAIT_POLL_MS = 50;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scTokenReplaceIf(key: string, read: string, next: string): Result<number, Context>;
    scTokenRefreshing(key: string, nonce: string, leaseMs: string): Result<number, Context>;
    scTokenGrantLock(key: string, nonce: string, leaseMs: string): Result<number, Context>;
  }
}

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    private readonly targetId: string,
  ) {
    defineRedisScripts(redis, {
      scTokenReplaceIf: { numberOfKeys: 1, lua: REPLACE_IF_LUA },
      scTokenRefreshing: { numberOfKeys: 1, lua: REFRESHING_LUA },
      scTokenGrantLock: { numberOfKeys: 1, lua: GRANT_LOCK_LUA },
    });
  }

  /**
   * The last token this process saw, reused while it has more than MEMO_MARGIN_MS to live: no Redis
   * read and no decryption per platform call. A token another process refreshed meanwhile is not
   * needed (ours is still valid); a 401 expires both copies.
   */
  private memo: AccessToken | null = null;

  async get(): Promise<AccessToken | null> {
    if (this.memo && this.memo.expiresAt - Date.now() > MEMO_MARGIN_MS) return this.memo;
    const raw = await this.redis.get(this.keys.targetToken(this.targetId));
    if (!raw) return null;
    try {
      this.memo = JSON.parse(this.box.decrypt(raw)) as AccessToken;
      return this.memo;
    } catch {
      return null; // sealed with an older SECRETS_KEY: just refresh
    }
  }

  /**
   * Kept without a TTL (deleted with the target, or by clear()): a rotated refresh token in it must
   * outlive the access token beside it, and a record at all (but one that names a save, `grant`:
   * newGrant) says the credentials' access token was replaced by a refresh (it is not tried again).
   * Callers read expiresAt.
   */
  async set(token: AccessToken): Promise<void> {
    await this.redis.set(this.keys.targetToken(this.targetId), this.box.encrypt(JSON.stringify(token)));
    this.memo = token;
  }

  /**
   * Read from Redis, not the memo: another process may have stored a fresh token (and a rotated
   * refresh token) since; and written only if the record is still the one read (else it is that
   * newer token, which is not the refused one).
   */
  async expire(accessToken: string): Promise<void> {
    const { raw, token } = await this.stored();
    if (raw !== null && token?.accessToken === accessToken) await this.replaceIf(raw, { ...token, expiresAt: 0 });
  }

  /**
   * Whichever access token is stored is not used again (the platform refused even a fresh one): the
   * next caller refreshes. The record stays, and with it a refresh token the platform rotated (the
   * credentials' one is dead then: clear() here lost the target's authorisation for good). A record
   * another process stored meanwhile (a fresh token) is left alone.
   */
  async expireAccess(): Promise<void> {
    const { raw, token } = await this.stored();
    if (raw !== null && token) await this.replaceIf(raw, { ...token, expiresAt: 0 });
  }

  /** This store's refreshes under way (their nonces in the target's `refreshing` set). */
  private readonly leases = new Set<string>();

  async refreshing(ms: number): Promise<() => Promise<void>> {
    const nonce = randomBytes(12).toString('base64url');
    const key = this.keys.targetRefreshing(this.targetId);
    await this.redis.scTokenRefreshing(key, nonce, String(ms + REFRESH_STORE_MARGIN_MS));
    this.leases.add(nonce);
    return async () => {
      this.leases.delete(nonce);
      await this.redis.zrem(key, nonce);
    };
  }

  /** How many refreshes of other processes (or other stores) are under way. */
  private async othersRefreshing(): Promise<number> {
    const key = this.keys.targetRefreshing(this.targetId);
    const total = await this.redis.scTokenRefreshing(key, '', '');
    if (this.leases.size === 0 || total === 0) return total;
    const mine = await this.redis.zmscore(key, ...this.leases);
    return total - mine.filter((score) => score !== null).length;
  }

  /**
   * The platform refused `refreshToken` for good: the record goes if it still holds that refresh token
   * (or one sealed with an older SECRETS_KEY). A record with another one stays (false): another process
   * refreshed meanwhile and the platform rotated the token, which deleting would lose for good.
   * While another process's refresh is under way (refreshing), this waits for it first: it may have
   * rotated that refresh token, and its result (the live one) is not stored yet.
   */
  async dropGrant(refreshToken: string | undefined): Promise<boolean> {
    for (;;) {
      const { raw, token } = await this.stored();
      if (raw !== null && token && token.refreshToken !== refreshToken) return false;
      if ((await this.othersRefreshing()) > 0) {
        await delay(REFRESH_WAIT_POLL_MS);
        continue;
      }
      if (raw === null) return true;
      // A record that names new credentials saved without a token (`grant`) holds no refresh token to
      // drop; it stays, so that a refresh of an older grant still under way is not stored (refreshed).
      if (token?.grant !== undefined) return true;
      if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, '')) === 1) return true;
    }
  }

  /**
   * The record as it is in Redis now: what a credential check of the same grant starts from (a target
   * PATCH that re-sends an app's credentials: the record holds the refresh token the platform rotated,
   * the body the original one, dead by then). Null: no record, or one no key opens.
   */
  async current(): Promise<AccessToken | null> {
    return (await this.stored()).token;
  }

  /**
   * Stores `next` (a credential check's token, started from `from`, the record current() gave) unless
   * the grant in the record changed meanwhile: another process rotated the refresh token, and that one
   * is live (the check's may then be dead). A record that only had its access token refreshed or
   * expired meanwhile, or was dropped, takes `next`. Compare-and-set: retried on a concurrent write.
   * False when the record's other grant stayed.
   */
  async replaceGrant(from: AccessToken, next: AccessToken): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { raw, token } = await this.stored();
      if (raw !== null && (token?.refreshToken !== from.refreshToken || token?.grant !== from.grant)) return false;
      const sealed = this.box.encrypt(JSON.stringify(next));
      if (raw === null) {
        if ((await this.redis.set(this.keys.targetToken(this.targetId), sealed, 'NX')) === 'OK') return true;
      } else if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, sealed)) === 1) {
        return true;
      }
    }
    return false;
  }

  /**
   * A worker's refresh: `next` is stored only while the record still holds the grant it was obtained
   * with (compare-and-set on the sealed record, retried on a concurrent write):
   * - the record holds `used` (its access token refreshed or expired meanwhile, or untouched);
   * - it is the one `from` was (a record from before refresh tokens were always kept in it);
   * - there was none when the refresh started (the first token) and is none now;
   * - it went meanwhile, and `from` held `used`: a refresh with it was refused after this one rotated
   *   it (dropGrant), and `next` holds the only live refresh token;
   * - no key opens it (it is refreshed anyway);
   * - it names new credentials saved without a token (`grant`, newGrant()) and `from` is that very
   *   record (the refresh started after the save, with the new credentials).
   * Otherwise the grant changed: a target PATCH saved new credentials and replaced the record (with
   * the check's token, or, without one, with a record naming the save: a refresh of the old grant
   * that started before it, even from no record, is told apart by `grant`), or another process rotated
   * the refresh token. The record stays and its token is the one used (a refresh of the old grant
   * does not undo the new one); with no record, or one that holds no token, `next` is used unstored.
   * The write is a compare-and-set on the sealed record (one key, one script): a save between the
   * read and the write fails it, and the next attempt reads the save.
   */
  async refreshed(next: AccessToken, used: string, from: AccessToken | null): Promise<AccessToken> {
    const sealed = this.box.encrypt(JSON.stringify(next));
    const usable = (token: AccessToken | null): AccessToken => (token && token.grant === undefined ? token : next);
    for (let attempt = 0; attempt < 5; attempt++) {
      const { raw, token } = await this.stored();
      const sameGrant =
        raw === null
          ? from === null || (from.grant === undefined && from.refreshToken === used)
          : token === null ||
            (token.grant !== undefined
              ? from?.grant === token.grant
              : token.refreshToken === used || (from !== null && token.accessToken === from.accessToken && token.refreshToken === from.refreshToken));
      if (!sameGrant) return usable(token);
      if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw ?? '', sealed)) === 1) {
        this.memo = next;
        return next;
      }
    }
    return usable((await this.stored()).token);
  }

  /**
   * New credentials were saved (a target create or a PATCH of another grant or host, under the grant
   * lock): the record becomes the check's token, or, with none (`?verify=false`, or a check that
   * obtained none), a record that names this save (`grant`, a nonce) and holds no token. Deleting the
   * record instead left "no record", which a refresh of the old grant still under way (started from
   * the old record, or from none) took for its own and stored the old grant's tokens over the new
   * credentials (refreshed).
   */
  async newGrant(token: AccessToken | null): Promise<void> {
    await this.set(token ?? { accessToken: '', expiresAt: 0, grant: randomBytes(12).toString('base64url') });
  }

  /**
   * A record sealed with one of SECRETS_KEY_PREVIOUS is sealed again with SECRETS_KEY (the same token),
   * if it is still the one read: a target PATCH of the same credentials re-seals the token record with
   * them (docs/operations.md, SECRETS_KEY rotation), and a rotated refresh token in it survives the
   * removal of the old key.
   */
  async reseal(): Promise<void> {
    const raw = await this.redis.get(this.keys.targetToken(this.targetId));
    if (!raw) return;
    let opened: { plain: string; current: boolean };
    try {
      opened = this.box.open(raw);
    } catch {
      return; // no key opens it: it is refreshed anyway
    }
    if (!opened.current) await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, this.box.encrypt(opened.plain));
  }

  /**
   * One target PATCH at a time changes the target's credentials (or baseUrl) and its token record: the
   * two are written apart (the target record in the partner's slot, this one in the target's), and two
   * PATCHes whose writes interleaved left one's credentials with the other's token record. The lock is
   * taken before the PATCH reads the target and released after both writes; a lease (`leaseMs`, longer
   * than the PATCH's check can take) frees it when its process died. Another PATCH's lock is waited
   * for, up to `leaseMs`; null when it was not freed by then.
   */
  async lockGrant(leaseMs: number): Promise<GrantLock | null> {
    const key = this.keys.targetGrantLock(this.targetId);
    const nonce = randomBytes(12).toString('base64url');
    const until = Date.now() + leaseMs;
    while ((await this.redis.set(key, nonce, 'PX', leaseMs, 'NX')) !== 'OK') {
      if (Date.now() >= until) return null;
      await delay(GRANT_LOCK_POLL_MS);
    }
    // Renewed while the PATCH runs (a check slower than the lease was sized for, or retried, keeps
    // it); stops once a renewal finds it gone. An error (Redis down) is left to the next renewal and
    // to the PATCH's own renew() before its writes.
    let held = true;
    const renew = async (): Promise<boolean> => (held = held && (await this.redis.scTokenGrantLock(key, nonce, String(leaseMs))) === 1);
    const timer = setInterval(() => {
      renew().then((ok) => ok || clearInterval(timer), () => undefined);
    }, Math.max(GRANT_LOCK_POLL_MS, Math.floor(leaseMs / 3)));
    timer.unref();
    return {
      renew,
      release: async () => {
        clearInterval(timer);
        held = false;
        await this.redis.scTokenGrantLock(key, nonce, '');
      },
    };
  }

  /** The record in Redis (not the memo, which goes): its sealed text, and the token (null: none, or sealed with an older SECRETS_KEY). */
  private async stored(): Promise<{ raw: string | null; token: AccessToken | null }> {
    this.memo = null;
    const raw = await this.redis.get(this.keys.targetToken(this.targetId));
    if (!raw) return { raw: null, token: null };
    try {
      return { raw, token: JSON.parse(this.box.decrypt(raw)) as AccessToken };
    } catch {
      return { raw, token: null };
    }
  }

  private async replaceIf(raw: string, token: AccessToken): Promise<void> {
    await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, this.box.encrypt(JSON.stringify(token)));
  }

  async clear(): Promise<void> {
    this.memo = null;
    await this.redis.del(this.keys.targetToken(this.targetId));
  }
}
