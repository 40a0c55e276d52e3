/**
 * Checks a target's credentials with its platform when the target is saved (issue 11: credentials were
 * accepted unchecked, and the first sign of a typo was a failed mirror at show time). Each adapter's
 * `verifyCredentials()` makes the platform's cheapest authenticated call (README "Targets").
 *
 * Outcomes, as the REST API answers them:
 * - accepted: the target is saved; the access token the check obtained is kept for the workers;
 * - refused by the platform (bad key, revoked grant, wrong shop, missing scope): 422 with the
 *   platform's reason, nothing saved;
 * - the platform could not say (unreachable, timeout, 5xx, rate limited): 503 with `Retry-After`,
 *   nothing saved. A careful operator re-tries; one who must save while the platform is down passes
 *   `?verify=false` (the audit log records that the check was skipped).
 * The check goes through the account's shared rate limiter (it is a request like any other) and the
 * connect-time SSRF guard, like every platform call.
 */
import type { Logger } from 'pino';
import { effectiveTimeoutMs } from '../config/config.js';
import type { SecretBox } from '../lib/crypto.js';
import type { DestinationGuard } from '../lib/destination-guard.js';
import { DESTINATION_LOOKUP_TIMEOUT_MS } from '../lib/ssrf.js';
import type { Keys } from '../store/keys.js';
import { RedisRateLimiter, type WindowLimit } from '../store/rate-limiter.js';
import type { RedisClient } from '../store/redis.js';
import { RedisTokenStore, type GrantFence, type GrantLock, type KeptGrant, type TargetGrant } from '../store/token.repository.js';
import { openAdapter } from './instrumented.js';
import type { AccessToken, Platform, PlatformSettings, TokenStore } from './target.adapter.js';
import { isTargetError, RateLimitedError } from './target.errors.js';
import { adapterFactory, limiterId, PLATFORM_LIMITS } from './target.registry.js';

/**
 * The most platform calls a credential check makes (TikTok's, up to 6: a call refused with the held
 * token, a refresh, the call again, one more refresh when a worker rotated the grant meanwhile, the
 * call again, and the rest of its check), each at most PLATFORM_TIMEOUT_MS; the DNS lookup of a new baseUrl
 * (DESTINATION_LOOKUP_TIMEOUT_MS), also under the lock; and what the PATCH's reads and writes around it
 * may take. The PATCH renews the lease while it runs (RedisTokenStore.lockGrant): this is how long a
 * dead process's lock stays, and how long the next PATCH waits.
 */
const GRANT_LOCK_CHECK_CALLS = 6;
const GRANT_LOCK_MARGIN_MS = DESTINATION_LOOKUP_TIMEOUT_MS + 10_000;
/** The grant lock's lease for PLATFORM_TIMEOUT_MS `timeoutMs` (renewed every third of it: config's MAX_PLATFORM_TIMEOUT_MS keeps it a timer). */
export function grantLockMs(timeoutMs: number): number {
  return GRANT_LOCK_CHECK_CALLS * timeoutMs + GRANT_LOCK_MARGIN_MS;
}

const PLATFORM_NAMES: Record<Platform, string> = { youtube: 'YouTube', tiktok: 'TikTok Shop', whatnot: 'Whatnot', bambuser: 'Bambuser', facebook: 'Facebook' };

export interface VerifyTarget {
  id: string;
  partnerId: string;
  platform: Platform;
  baseUrl: string | undefined;
  credentials: Record<string, string>;
  rateLimit?: WindowLimit | undefined;
  /** A PATCH's new credentials: the names of the stored target's fields, for the advice (TargetRef.heldFields). */
  heldFields?: readonly string[] | undefined;
}

export type VerifyResult =
  /** `checked: false`: the platform has no cheap call for it (or no adapter): nothing was asked. */
  /**
   * `from`: the target's token record the check's token was obtained from (see verify's `held`): the
   * one given, or a newer one a worker stored while the check ran (the check refreshed again with it).
   */
  /** `accountId`: the platform's id of the account the credentials act for, when the check named it (adapter accountId()). */
  | { kind: 'accepted'; checked: boolean; token: AccessToken | null; from: AccessToken | null; accountId?: string | undefined }
  | { kind: 'refused'; detail: string; reason: string | undefined }
  | { kind: 'unavailable'; detail: string; retryAfterSec: number };

/**
 * Tokens of the check itself: new credentials must not use (or overwrite) the target's cached token.
 * A check of the same grant starts from the target's record (`from`) and may read it again (`record`).
 */
class MemoryTokenStore implements TokenStore {
  constructor(
    public token: AccessToken | null,
    private readonly record?: () => Promise<AccessToken | null>,
  ) {
    this.from = token;
  }
  /** The record of the target the check's tokens come from (the one given, or a newer one: dropGrant). */
  from: AccessToken | null;
  async get(): Promise<AccessToken | null> {
    return this.token;
  }
  async set(token: AccessToken): Promise<void> {
    this.token = token;
  }
  async clear(): Promise<void> {
    this.token = null;
  }
  async dropGrant(refreshToken: string | undefined): Promise<boolean> {
    if (this.token && this.token.refreshToken !== refreshToken) return false;
    // A check of the same grant lost a race: a worker refreshed meanwhile, the platform rotated the
    // refresh token this check sent, and the record holds the live one. As the workers do (oauth2.ts
    // refreshAccessToken), that one is used for one more refresh instead of refusing the credentials.
    const now = this.record ? await this.record() : null;
    if (now?.refreshToken !== undefined && now.refreshToken !== refreshToken) {
      this.token = now;
      this.from = now;
      return false;
    }
    this.token = null;
    return true;
  }
  async expire(accessToken: string): Promise<void> {
    if (this.token?.accessToken === accessToken) this.token = { ...this.token, expiresAt: 0 };
  }
  /** The check's own tokens: nothing else writes them (the target's record is replaced by keep/keepHeld). */
  /** The check's (one process's) refreshes: nothing else waits for them. */
  async refreshing(): Promise<() => Promise<void>> {
    return async () => undefined;
  }
  async refreshed(next: AccessToken): Promise<AccessToken> {
    this.token = next;
    return next;
  }
}

export interface CredentialVerifierDeps {
  redis: RedisClient;
  keys: Keys;
  box: SecretBox;
  timeoutMs: number;
  /** A platform's own, shorter timeout (PLATFORM_TIMEOUTS_MS) for its calls; the grant lock keeps timeoutMs's. */
  platformTimeoutsMs?: Partial<Record<Platform, number>>;
  settings: PlatformSettings;
  destinations: DestinationGuard;
  log: Logger;
}

export class CredentialVerifier {
  constructor(private readonly deps: CredentialVerifierDeps) {}

  /**
   * `held`: the target's token record (held()), when the credentials are the same grant as the target's
   * (sameGrant()): the check starts from it, with a refresh token the platform rotated since, as the
   * workers would. Without it, the check has no token but what the credentials give.
   */
  async verify(t: VerifyTarget, held: AccessToken | null = null): Promise<VerifyResult> {
    const factory = adapterFactory(t.platform);
    if (!factory) return { kind: 'accepted', checked: false, token: null, from: held };
    const { redis, keys } = this.deps;
    const tokens = new MemoryTokenStore(held, held ? () => this.held(t.id) : undefined);
    // Its errors carry no secret of the credentials (openAdapter): their text is the 422's detail.
    const adapter = openAdapter(factory, {
      target: { id: t.id, partnerId: t.partnerId, platform: t.platform, baseUrl: t.baseUrl, credentials: t.credentials, ...(t.heldFields ? { heldFields: t.heldFields } : {}) },
      tokens,
      limiter: new RedisRateLimiter(redis, keys, limiterId(t.platform, t.credentials, t.id), t.rateLimit ?? PLATFORM_LIMITS[t.platform]),
      log: this.deps.log.child({ targetId: t.id, platform: t.platform }),
      timeoutMs: effectiveTimeoutMs(t.platform, this.deps.timeoutMs, this.deps.platformTimeoutsMs),
      settings: this.deps.settings,
      destinations: this.deps.destinations,
    });
    if (!adapter.verifyCredentials) return { kind: 'accepted', checked: false, token: null, from: held };
    const name = PLATFORM_NAMES[t.platform];
    try {
      const learned = await adapter.verifyCredentials();
      return { kind: 'accepted', checked: true, token: tokens.token, from: tokens.from, accountId: learned?.accountId };
    } catch (err) {
      if (!isTargetError(err)) throw err;
      const later = 'try again, or save without the check with ?verify=false';
      if (err instanceof RateLimitedError) {
        const retryAfterSec = Math.max(1, Math.ceil(err.delayMs / 1000));
        return { kind: 'unavailable', detail: `could not check the credentials with ${name} now (rate limited: ${err.message}); ${later}`, retryAfterSec };
      }
      if (err.kind === 'retryable' || err.reason === 'malformed_response') {
        return { kind: 'unavailable', detail: `could not check the credentials with ${name} (${err.message}); ${later}`, retryAfterSec: 30 };
      }
      // permanent, auth_expired (refused even with a fresh token), action_required: the platform said no.
      return { kind: 'refused', detail: `${name} refused these credentials: ${err.message}`, reason: err.reason };
    }
  }

  /**
   * The workers start with the token the check obtained (a rotated refresh token is not lost); with
   * none, from a record that names the new credentials (RedisTokenStore.newGrant: a refresh of the old
   * grant still under way is not stored over them). `fence`: a PATCH's (RedisTokenStore.newGrant): what
   * it replaced, for undoGrant.
   */
  async keep(targetId: string, token: AccessToken | null, fence?: GrantFence): Promise<KeptGrant | undefined> {
    return this.store(targetId).newGrant(token, fence);
  }

  /** A PATCH's new grant record put back as it was (RedisTokenStore.undoGrant): its target write was refused. */
  async undoGrant(targetId: string, kept: KeptGrant, fence: GrantFence): Promise<void> {
    await this.store(targetId).undoGrant(kept, fence);
  }

  /**
   * The target's grant lock (RedisTokenStore.lockGrant), for a PATCH that changes its credentials or
   * baseUrl and so its token record. Its lease outlasts the longest check (GRANT_LOCK_CHECK_CALLS
   * platform calls of timeoutMs each) with a margin; null when another PATCH held it all that time.
   * One hold in the target's slot and one in its partner's (the target record's).
   */
  async lockGrant(targetId: string, partnerId: string): Promise<GrantLock | null> {
    return this.store(targetId).lockGrant(grantLockMs(this.deps.timeoutMs), partnerId);
  }

  /**
   * Under the PATCH's grant lock, right after its read of the target (`committed`: its
   * targetGrant): a pending record another PATCH left is put back unless the target is that
   * PATCH's, and then loses its `pending` (RedisTokenStore.settlePending, `finish`), so that held() and
   * the new grant's base are the committed record, and this PATCH's target write (a new seal) is not
   * taken for another later.
   */
  async settlePending(targetId: string, fence: GrantFence, committed: TargetGrant): Promise<void> {
    await this.store(targetId).settlePending(fence, committed, true);
  }

  /** The target's token record now (null: none): what a check of the same grant starts from. */
  async held(targetId: string): Promise<AccessToken | null> {
    return this.store(targetId).current();
  }

  /**
   * The same grant was saved again: the record `held` (the verify result's `from`: the check may have
   * moved on to a newer one) stays the workers' (it may hold the only live
   * refresh token), replaced by `token`, what the check started from it obtained (a refresh, maybe a
   * rotated refresh token), unless another process rotated the grant meanwhile (RedisTokenStore.replaceGrant);
   * else (no check, or one that refreshed nothing) sealed again with the current SECRETS_KEY if need be.
   * `fence`: a PATCH's, whose hold must still be its own for a write (else GrantHoldLostError).
   */
  async keepHeld(targetId: string, held: AccessToken, token: AccessToken | null, fence?: GrantFence): Promise<void> {
    if (token && token !== held) await this.store(targetId).replaceGrant(held, token, fence);
    else await this.store(targetId).reseal(fence);
  }

  private store(targetId: string): RedisTokenStore {
    return new RedisTokenStore(this.deps.redis, this.deps.keys, this.deps.box, targetId);
  }
}
