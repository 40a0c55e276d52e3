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
   * needed (ours is still valid); a 401 clears both copies.
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

  async set(token: AccessToken): Promise<void> {
    const ttlMs = Math.max(1000, token.expiresAt - Date.now());
    await this.redis.set(this.keys.targetToken(this.targetId), this.box.encrypt(JSON.stringify(token)), 'PX', ttlMs);
    this.memo = token;
  }

  async clear(): Promise<void> {
    this.memo = null;
    await this.redis.del(this.keys.targetToken(this.targetId));
  }
}
