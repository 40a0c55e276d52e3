/** OAuth access tokens per target, shared by every worker, sealed with SECRETS_KEY. */
import type { SecretBox } from '../lib/crypto.js';
import type { AccessToken, TokenStore } from '../targets/target.adapter.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

const MEMO_MARGIN_MS = 120_000;

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    private readonly targetId: string,
  ) {}

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
   * outlive the access token beside it, and a record at all says the credentials' access token was
   * replaced by a refresh (it is not tried again). Callers read expiresAt.
   */
  async set(token: AccessToken): Promise<void> {
    await this.redis.set(this.keys.targetToken(this.targetId), this.box.encrypt(JSON.stringify(token)));
    this.memo = token;
  }

  /** Read from Redis, not the memo: another process may have stored a fresh token (and a rotated refresh token) since. */
  async expire(accessToken: string): Promise<void> {
    const token = await this.stored();
    if (token?.accessToken === accessToken) await this.set({ ...token, expiresAt: 0 });
  }

  /**
   * Whichever access token is stored is not used again (the platform refused even a fresh one): the
   * next caller refreshes. The record stays, and with it a refresh token the platform rotated (the
   * credentials' one is dead then: clear() here lost the target's authorisation for good).
   */
  async expireAccess(): Promise<void> {
    const token = await this.stored();
    if (token) await this.set({ ...token, expiresAt: 0 });
  }

  /** The record in Redis (not the memo, which goes), or null: none, or sealed with an older SECRETS_KEY. */
  private async stored(): Promise<AccessToken | null> {
    this.memo = null;
    const raw = await this.redis.get(this.keys.targetToken(this.targetId));
    if (!raw) return null;
    try {
      return JSON.parse(this.box.decrypt(raw)) as AccessToken;
    } catch {
      return null;
    }
  }

  async clear(): Promise<void> {
    this.memo = null;
    await this.redis.del(this.keys.targetToken(this.targetId));
  }
}
