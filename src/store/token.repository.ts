/** OAuth access tokens per target, shared by every worker, sealed with SECRETS_KEY. */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Result } from 'ioredis';
import type { SecretBox } from '../lib/crypto.js';
import type { AccessToken, Platform, TokenStore } from '../targets/target.adapter.js';
import { grantIdentity } from '../targets/target.registry.js';
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
 * A grant hold (RedisTokenStore.lockGrant): a record `<lease end ms>:<nonce>` (Redis TIME), one in the
 * target's slot (its token record's) and one in the partner's (its target record's), taken with one
 * nonce. The record stays one more lease after its lease ended: a write of the PATCH that took it
 * checks in its own script that the record still names its nonce, lapsed or not (nobody took it since;
 * grantHoldLua). A PATCH stalled longer than that finds it gone and writes nothing (refused: safe); a
 * PATCH of an older version (a bare nonce, SET NX) waits for it as for another's lock.
 */
const HOLD_NOW_LUA = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: a grant hold. ARGV: the nonce, the lease (ms), how long the record stays after it. Taken (1)
 * unless another nonce's lease still runs (0); a record this code cannot read (a lock of an older
 * version: a bare nonce with its lease as TTL) is another's until it expires.
 */
const HOLD_TAKE_LUA = `${HOLD_NOW_LUA}local cur = redis.call('GET', KEYS[1])
if cur then
  local e, who = string.match(cur, '^(%d+):(.*)$')
  if who ~= ARGV[1] and (not e or tonumber(e) > now) then return 0 end
end
redis.call('SET', KEYS[1], string.format('%d', now + tonumber(ARGV[2])) .. ':' .. ARGV[1], 'PX', tonumber(ARGV[2]) + tonumber(ARGV[3]))
return 1
`;

/**
 * KEYS: a grant hold. ARGV: the holder's nonce, a new lease (ms; '0' ends it: the release), how long
 * the record stays after it. Only while the record names the nonce (lapsed or not: nobody took it
 * since): 1, else 0 (another took it, or the record is gone). The release writes end 0 (`0:<nonce>`,
 * which no lease has): a renewal that reaches Redis after it (sent before, answered after) finds the
 * lease ended and extends nothing (0), or the next PATCH waited for a lease that nobody held.
 */
const HOLD_RENEW_LUA = `${HOLD_NOW_LUA}local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local e, who = string.match(cur, '^(%d+):(.*)$')
if who ~= ARGV[1] then return 0 end
if ARGV[2] ~= '0' and tonumber(e) == 0 then return 0 end
local ends = 0
if ARGV[2] ~= '0' then ends = now + tonumber(ARGV[2]) end
redis.call('SET', KEYS[1], string.format('%d', ends) .. ':' .. ARGV[1], 'PX', tonumber(ARGV[2]) + tonumber(ARGV[3]))
return 1
`;

/**
 * The first lines of a write fenced by a grant hold (a script with the hold among its keys, in the
 * written record's slot): it answers -1 and writes nothing unless the hold `key` still names `nonce`
 * (the Lua expressions of the key and the nonce; an empty nonce: no fence).
 */
export function grantHoldLua(key: string, nonce: string): string {
  return `if ${nonce} ~= '' and string.match(redis.call('GET', ${key}) or '', '^%d+:(.*)$') ~= ${nonce} then return -1 end
`;
}

/**
 * KEYS: the token record, the target's grant hold. ARGV: the sealed record read ('' none), the one to
 * store ('' deletes it), the PATCH's nonce, '1' to store it whatever the record is (a new grant). -1:
 * the hold is another's (nothing written); 0: the record is not the one read; else 1 and the record
 * that was there ('' none: what undoGrant puts back).
 */
const FENCED_REPLACE_LUA = `${grantHoldLua('KEYS[2]', 'ARGV[3]')}local cur = redis.call('GET', KEYS[1]) or ''
if ARGV[4] ~= '1' and cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return {1, cur}
`;

/** A stored record as read: its text, or its bytes when they are not valid UTF-8 (passed back as they are to a compare-and-set). */
type StoredText = string | Buffer;

/** Raised when the token record changed between every read and compare-and-set of a PATCH's write (nothing written). */
export class ConcurrentTokenWriteError extends Error {
  override readonly name = 'ConcurrentTokenWriteError';
}

/** Raised by a write fenced by a grant hold that another PATCH took meanwhile (nothing written). */
export class GrantHoldLostError extends Error {
  override readonly name = 'GrantHoldLostError';
}

/** What a PATCH's writes check (in their own scripts): its holds' keys (the token record's slot, the target record's) and its nonce. */
export interface GrantFence {
  nonce: string;
  tokenHold: string;
  targetHold: string;
  /**
   * A new grant's (newGrant): what the target record is before the PATCH (the committed credentials,
   * targetGrant of the target it read under the lock) and after its write.
   */
  committed?: TargetGrant;
  writes?: TargetGrant;
}

/**
 * What a target record's credentials and host are (a PATCH's record is told committed by it:
 * AccessToken.pending): `sealed`, a hash of the sealed text (what a record of the version before
 * names, `commits`); `identity`, grantIdentity of the plaintext (undefined: no key opens them).
 */
export interface TargetGrant {
  sealed: string;
  identity: string | undefined;
}

/** A target's TargetGrant: `credentials` are its plaintext (undefined: no key opens them). */
export function targetGrant(platform: Platform, credentialsSealed: string, credentials: Record<string, string> | undefined, baseUrl: string | undefined): TargetGrant {
  return {
    sealed: createHash('sha256').update(`${credentialsSealed}\n${baseUrl ?? ''}`).digest('base64url').slice(0, 22),
    identity: credentials ? grantIdentity(platform, credentials, baseUrl) : undefined,
  };
}

/**
 * Whether a pending record's PATCH wrote the target as it is (`target`, read under the grant lock): its
 * token is the target's grant. By the plaintext (`identity`), so that the same credentials sealed
 * again (a PATCH of the same grant: a new webhookSecret, `?verify=false`, the SECRETS_KEY rotation's
 * re-seal; none of them touches `pending`) still are. A record of the version before names only the
 * sealed text's hash (`commits`): the same text is committed; another may be that PATCH's credentials
 * sealed again, which cannot be told apart from a target write that never happened, and the pending
 * token (the newer grant, maybe the only live refresh token: Whatnot, TikTok) is kept: putting back
 * the base there lost the target's authorisation for good, and the version before used the pending
 * token all along. Target credentials no key opens are not the pending ones (sealed with the key that
 * sealed this record, which opens).
 */
function commitsTo(pending: NonNullable<AccessToken['pending']>, target: TargetGrant): boolean {
  if (pending.commits === target.sealed) return true;
  if (pending.identity === undefined) return true;
  return target.identity !== undefined && pending.identity === target.identity;
}

/** A new grant's record written by a PATCH (newGrant with its fence): the sealed record it replaced ('' none) and its own. */
export interface KeptGrant {
  before: string;
  written: string;
}

/** How often a PATCH waiting for another's grant lock looks again. */
const GRANT_LOCK_POLL_MS = 50;

/** A target PATCH's hold on the target's credentials and token record (RedisTokenStore.lockGrant). */
export interface GrantLock {
  /** True while it is still this PATCH's (its lease renewed for `leaseMs` more); false: another took it (for good), the target may not be written. */
  renew(): Promise<boolean>;
  /** Stops the renewals and ends the lease if the holds are still this PATCH's (may throw: Redis down; the lease ends anyway). */
  release(): Promise<void>;
  /** What its writes check. */
  fence: GrantFence;
}

/** How long past its request's timeout a refresh may take to store its result (parse, seal, one write). */
const REFRESH_STORE_MARGIN_MS = 5_000;
/** How often a dropGrant waiting for another process's refresh looks again. */
const REFRESH_WAIT_POLL_MS = 50;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scTokenReplaceIf(key: string, read: string | Buffer, next: string): Result<number, Context>;
    scTokenRefreshing(key: string, nonce: string, leaseMs: string): Result<number, Context>;
    scTokenHoldTake(key: string, nonce: string, leaseMs: string, keepMs: string): Result<number, Context>;
    scTokenHoldRenew(key: string, nonce: string, leaseMs: string, keepMs: string): Result<number, Context>;
    scTokenFencedReplace(key: string, hold: string, read: string | Buffer, next: string, nonce: string, outright: string): Result<number | [number, string], Context>;
  }
}

/** A record's token without what a PATCH's pending new grant carries (AccessToken.pending: only the token store reads it). */
function tokenOnly(token: AccessToken | null): AccessToken | null {
  if (!token?.pending) return token;
  const { pending: _pending, ...rest } = token;
  return rest;
}

/** How long a worker's settle (RedisTokenStore.settleLapsed) holds the grant lock: a read of the target and one write. */
const SETTLE_LEASE_MS = 10_000;

/**
 * What a worker's token store reads to settle a pending record a PATCH left (RedisTokenStore.settleLapsed):
 * the target's partner (its grant hold's slot) and the target record as stored now (null: deleted).
 */
export interface PendingSettler {
  partnerId: string;
  target(): Promise<SettledTarget | null>;
  /** The target's credentials opened (undefined: no key opens them): PartnerRepository.credentialsIfOpen. */
  credentials(t: SettledTarget): Record<string, string> | undefined;
}

/** What a settle reads of the target record. */
interface SettledTarget {
  platform: Platform;
  credentialsSealed: string;
  baseUrl?: string | undefined;
}

/**
 * The token store of a worker's adapter (SyncService): it settles a pending record a crashed PATCH left
 * by the target record as stored (`partners.getTarget`), when its token is refused (dropGrant).
 */
export function workerTokenStore(
  redis: RedisClient,
  keys: Keys,
  box: SecretBox,
  partners: { getTarget(partnerId: string, targetId: string): Promise<SettledTarget | null>; credentialsIfOpen(t: SettledTarget): Record<string, string> | undefined },
  target: { id: string; partnerId: string },
): RedisTokenStore {
  return new RedisTokenStore(redis, keys, box, target.id, { partnerId: target.partnerId, target: () => partners.getTarget(target.partnerId, target.id), credentials: (t) => partners.credentialsIfOpen(t) });
}

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    private readonly targetId: string,
    private readonly settler?: PendingSettler,
  ) {
    defineRedisScripts(redis, {
      scTokenReplaceIf: { numberOfKeys: 1, lua: REPLACE_IF_LUA },
      scTokenRefreshing: { numberOfKeys: 1, lua: REFRESHING_LUA },
      scTokenHoldTake: { numberOfKeys: 1, lua: HOLD_TAKE_LUA },
      scTokenHoldRenew: { numberOfKeys: 1, lua: HOLD_RENEW_LUA },
      scTokenFencedReplace: { numberOfKeys: 2, lua: FENCED_REPLACE_LUA },
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
      this.memo = tokenOnly(JSON.parse(this.box.decrypt(raw)) as AccessToken);
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
      // A PATCH's new grant not known committed (pending) stays too: refused with the old credentials
      // (a worker that has not read the new ones), and the record holds the committed one (its base),
      // which the PATCH puts back if its target write does not happen (undoGrant).
      // Unless that PATCH's hold lapsed (it crashed, or its target write ended in an error of unknown
      // outcome): the record is settled by the target record (settleLapsed), and read again.
      if (token?.pending !== undefined) {
        if (this.settler && (await this.settleLapsed(this.settler))) continue;
        return true;
      }
      if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, '')) === 1) return true;
    }
  }

  /**
   * The record as it is in Redis now: what a credential check of the same grant starts from (a target
   * PATCH that re-sends an app's credentials: the record holds the refresh token the platform rotated,
   * the body the original one, dead by then). Null: no record, or one no key opens.
   */
  async current(): Promise<AccessToken | null> {
    return tokenOnly((await this.stored()).token);
  }

  /**
   * Stores `next` (a credential check's token, started from `from`, the record current() gave) unless
   * the grant in the record changed meanwhile: another process rotated the refresh token, and that one
   * is live (the check's may then be dead). A record that only had its access token refreshed or
   * expired meanwhile, or was dropped, takes `next`. Compare-and-set: retried on a concurrent write.
   * False when the record's other grant stayed.
   */
  async replaceGrant(from: AccessToken, next: AccessToken, fence?: GrantFence): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { raw, token } = await this.stored();
      const sealed = this.box.encrypt(JSON.stringify(next));
      if (raw !== null && (token?.refreshToken !== from.refreshToken || token?.grant !== from.grant)) {
        // Unfenced (a PATCH that lost its hold keeps what its check refreshed): the record is another
        // PATCH's pending new grant over this grant: `next` goes into its base, which that PATCH's undo
        // puts back (else the undo restored the refresh token this check rotated away: a dead one).
        const base = !fence && token?.pending ? this.open(token.pending.base) : null;
        if (!base || base.refreshToken !== from.refreshToken || base.grant !== from.grant) return false;
        const moved = this.box.encrypt(JSON.stringify({ ...token, pending: { ...token!.pending!, base: sealed } }));
        if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, moved)) === 1) return true;
        continue;
      }
      if (fence) {
        if ((await this.fencedReplace(fence, raw ?? '', sealed, false)) !== null) return true;
      } else if (raw === null) {
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
      if (!sameGrant) {
        // A PATCH's new grant not known committed, over the grant refreshed: the refresh (and its
        // rotated refresh token) goes into its base, the record put back if the PATCH's target write
        // does not happen; the credentials this worker has are still the base's.
        // (A base '' is no record: a refresh that started from none, with the credentials' refresh token, is of it.)
        const base = token?.pending ? this.open(token.pending.base) : null;
        const ofBase = base ? base.refreshToken === used || (base.grant !== undefined && from?.grant === base.grant) : token?.pending?.base === '' && from === null;
        if (raw === null || !token?.pending || !ofBase) return usable(token);
        const moved = this.box.encrypt(JSON.stringify({ ...token, pending: { ...token.pending, base: sealed } }));
        if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, moved)) === 1) return next;
        continue;
      }
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
  /**
   * `fence`: a PATCH's, whose hold must still be its own (else GrantHoldLostError, nothing written); it
   * answers what it replaced (undoGrant).
   */
  async newGrant(token: AccessToken | null, fence?: GrantFence): Promise<KeptGrant | undefined> {
    const next: AccessToken = token ?? { accessToken: '', expiresAt: 0, grant: randomBytes(12).toString('base64url') };
    if (!fence) return void (await this.set(next));
    // The record carries the committed one it replaces (pending.base). A record another PATCH wrote
    // for its new grant is the committed one only if the target record is that PATCH's (committed:
    // its target write happened); else it is that PATCH's base (its target write never happened, and
    // its undo may have found this PATCH's record, or none: two undos put back another's new grant).
    for (let attempt = 0; attempt < 10; attempt++) {
      const { raw, token: cur } = await this.stored();
      let base = raw?.toString() ?? '';
      if (cur?.pending) base = fence.committed && commitsTo(cur.pending, fence.committed) ? this.box.encrypt(JSON.stringify(tokenOnly(cur))) : cur.pending.base;
      const identity = fence.writes?.identity;
      const written = this.box.encrypt(JSON.stringify({ ...next, pending: { base, commits: fence.writes?.sealed ?? '', by: fence.nonce, ...(identity ? { identity } : {}) } }));
      if ((await this.fencedReplace(fence, raw ?? '', written, false)) === null) continue;
      this.memo = next;
      return { before: base, written };
    }
    throw new ConcurrentTokenWriteError(`target ${this.targetId}: its token record changed on every attempt`);
  }

  /**
   * A PATCH that wrote a new grant's record (newGrant with its fence) and then did not write the
   * target (another PATCH took its hold, the target was deleted, or its write failed for sure) puts
   * back the committed record it replaced, as it is now (a worker's refresh of it meanwhile went into
   * it: refreshed), if the record is still this PATCH's (another PATCH has not written its own yet):
   * the credentials left are the old ones, and so is their record. Not fenced (the hold may be
   * another's): a compare-and-set on the record.
   */
  async undoGrant(kept: KeptGrant, fence: GrantFence): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const { raw, token } = await this.stored();
      if (raw === null || token?.pending?.by !== fence.nonce) return;
      if ((await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, token.pending.base)) === 1) return;
    }
  }

  /**
   * Under the grant lock (`fence`: its holds are this caller's, so no other PATCH's write lands from
   * now on), a pending record another PATCH left is settled by the target record as read under the
   * lock (`committed`, targetGrant): its target write never happened (commitsTo: the target is not its
   * grant) and its base is put back (fenced, compare-and-set); one whose target write happened stays.
   * A PATCH that crashed between its writes (or whose target write ended in a Redis timeout, or whose
   * token write did) left it; the next PATCH of the same grant checked from the pending token (another
   * app's: a 422, or a 200 that left it beside the credentials). True when it put one back.
   * `finish` (a PATCH's, which writes the target next): a committed one loses its `pending` too. A PATCH
   * of the same grant seals the credentials again (as did one of the version before, without settling):
   * the record is told by the plaintext grant (commitsTo), not by the sealed text.
   */
  async settlePending(fence: GrantFence, committed: TargetGrant, finish = false): Promise<boolean> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const { raw, token } = await this.stored();
      if (raw === null || !token?.pending || token.pending.by === fence.nonce) return false;
      const done = commitsTo(token.pending, committed);
      if (done && !finish) return false;
      if ((await this.fencedReplace(fence, raw, done ? this.box.encrypt(JSON.stringify(tokenOnly(token))) : token.pending.base, false)) !== null) return !done;
    }
    throw new ConcurrentTokenWriteError(`target ${this.targetId}: its token record changed on every attempt`);
  }

  /**
   * A worker's settle of a pending record (dropGrant: its token refused with the credentials the worker
   * has): when the grant lock is free (the PATCH that wrote it crashed, or its hold lapsed; a PATCH
   * under way keeps it, and is not waited for), taken for one read of the target and settlePending.
   * Taking it fences the stalled PATCH out (its later writes are refused), so the target read is final.
   * True when a record was put back.
   */
  async settleLapsed(settler: PendingSettler): Promise<boolean> {
    const lock = await this.lockGrant(SETTLE_LEASE_MS, settler.partnerId, 0);
    if (!lock) return false;
    try {
      const target = await settler.target();
      return target ? await this.settlePending(lock.fence, targetGrant(target.platform, target.credentialsSealed, settler.credentials(target), target.baseUrl)) : false;
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  /** A sealed record opened (null: none, or no key opens it). */
  private open(raw: string): AccessToken | null {
    if (!raw) return null;
    try {
      return JSON.parse(this.box.decrypt(raw)) as AccessToken;
    } catch {
      return null;
    }
  }

  /**
   * A record sealed with one of SECRETS_KEY_PREVIOUS is sealed again with SECRETS_KEY (the same token),
   * if it is still the one read: a target PATCH of the same credentials re-seals the token record with
   * them (docs/operations.md, SECRETS_KEY rotation), and a rotated refresh token in it survives the
   * removal of the old key.
   */
  async reseal(fence?: GrantFence): Promise<void> {
    const raw = await this.redis.get(this.keys.targetToken(this.targetId));
    if (!raw) return;
    let opened: { plain: string; current: boolean };
    try {
      opened = this.box.open(raw);
    } catch {
      return; // no key opens it: it is refreshed anyway
    }
    if (opened.current) return;
    if (fence) await this.fencedReplace(fence, raw, this.box.encrypt(opened.plain), false);
    else await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, this.box.encrypt(opened.plain));
  }

  /**
   * One target PATCH at a time changes the target's credentials (or baseUrl) and its token record: the
   * two are written apart (the target record in the partner's slot, this one in the target's), and two
   * PATCHes whose writes interleaved left one's credentials with the other's token record. The lock is
   * two holds with one nonce (HOLD_TAKE_LUA): the target's slot's, taken first (waited for, up to
   * `waitMs`, one lease unless told; null when it was not freed by then), then the partner's slot's (waited for within the
   * same time: the one of the PATCH before may end a little later, on another node's clock). Taken
   * before the PATCH reads the target and released after both writes; a lease (`leaseMs`, longer than
   * the PATCH's check can take) frees it when its process died. Each write checks its slot's hold in
   * its own script (`fence`): a PATCH that stalled past its lease while another took the holds writes
   * nothing (GrantHoldLostError); one whose lease ran out but whose holds nobody took writes.
   */
  async lockGrant(leaseMs: number, partnerId: string, waitMs = leaseMs): Promise<GrantLock | null> {
    const fence: GrantFence = {
      nonce: randomBytes(12).toString('base64url'),
      tokenHold: this.keys.targetGrantLock(this.targetId),
      targetHold: this.keys.targetGrantHold(partnerId, this.targetId),
    };
    const lease = String(leaseMs);
    const keep = lease;
    const until = Date.now() + waitMs;
    const take = async (key: string): Promise<boolean> => {
      while ((await this.redis.scTokenHoldTake(key, fence.nonce, lease, keep)) !== 1) {
        if (Date.now() >= until) return false;
        await delay(GRANT_LOCK_POLL_MS);
      }
      return true;
    };
    const both = async (ms: string): Promise<boolean> => {
      const [t, p] = await Promise.all([fence.tokenHold, fence.targetHold].map((key) => this.redis.scTokenHoldRenew(key, fence.nonce, ms, keep)));
      return t === 1 && p === 1;
    };
    if (!(await take(fence.tokenHold))) return null;
    if (!(await take(fence.targetHold))) {
      await both('0');
      return null;
    }
    // Renewed while the PATCH runs (a check slower than the lease was sized for, or retried, keeps
    // it); stops once a renewal finds either hold another's. An error (Redis down) is left to the next
    // renewal and to the PATCH's own renew() before its writes.
    // (`held` is read after the renewal's answer: one answered after the release does not make it true again.)
    let held = true;
    const renew = async (): Promise<boolean> => {
      if (!held) return false;
      const ok = await both(lease);
      return (held = held && ok);
    };
    const timer = setInterval(() => {
      renew().then((ok) => ok || clearInterval(timer), () => undefined);
    }, Math.max(GRANT_LOCK_POLL_MS, Math.floor(leaseMs / 3)));
    timer.unref();
    return {
      renew,
      release: async () => {
        clearInterval(timer);
        held = false;
        await both('0');
      },
      fence,
    };
  }

  /** The record in Redis (not the memo, which goes): its sealed text, and the token (null: none, or sealed with an older SECRETS_KEY). */
  private async stored(): Promise<{ raw: StoredText | null; token: AccessToken | null }> {
    this.memo = null;
    // Read as bytes: a record that is not valid UTF-8 (a hand edit, a value cut mid-character) read as
    // text has U+FFFD, never equal to what Redis holds, and every compare-and-set of it failed (a PATCH
    // of credentials 409 for good, dropGrant looping). Such a record is no sealed text (that is ASCII):
    // it is passed back as the bytes read, unreadable.
    const bytes = await this.redis.getBuffer(this.keys.targetToken(this.targetId));
    if (!bytes || bytes.length === 0) return { raw: null, token: null };
    const text = bytes.toString('utf8');
    const raw: StoredText = Buffer.from(text, 'utf8').equals(bytes) ? text : bytes;
    if (typeof raw !== 'string') return { raw, token: null };
    try {
      return { raw, token: JSON.parse(this.box.decrypt(raw)) as AccessToken };
    } catch {
      return { raw, token: null };
    }
  }

  /**
   * The record replaced by `next` if it is still `read` ('' none; `outright`: whatever it is), in one
   * script with the check that `fence`'s hold names its nonce (else GrantHoldLostError): the record
   * replaced (its sealed text, '' none), null when it was not `read` any more.
   */
  private async fencedReplace(fence: GrantFence, read: StoredText, next: string, outright: boolean): Promise<string | null> {
    const r = await this.redis.scTokenFencedReplace(this.keys.targetToken(this.targetId), fence.tokenHold, read, next, fence.nonce, outright ? '1' : '0');
    if (r === -1) throw new GrantHoldLostError(`target ${this.targetId}: its grant hold was taken by another PATCH`);
    return Array.isArray(r) ? r[1] : null;
  }

  private async replaceIf(raw: StoredText, token: AccessToken): Promise<void> {
    await this.redis.scTokenReplaceIf(this.keys.targetToken(this.targetId), raw, this.box.encrypt(JSON.stringify(token)));
  }

  async clear(): Promise<void> {
    this.memo = null;
    await this.redis.del(this.keys.targetToken(this.targetId));
  }
}
