/** OAuth access tokens per target, shared by every worker, sealed with SECRETS_KEY. */
import type { SecretBox } from '../lib/crypto.js';
import type { AccessToken, TokenStore } from '../targets/target.adapter.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export class RedisTokenStore implements TokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    private readonly targetId: string,
  ) {}

  async get(): Promise<AccessToken | null> {
    const raw = await this.redis.get(this.keys.targetToken(this.targetId));
    if (!raw) return null;
    try {
      return JSON.parse(this.box.decrypt(raw)) as AccessToken;
    } catch {
      return null; // sealed with an older SECRETS_KEY: just refresh
    }
  }

  async set(token: AccessToken): Promise<void> {
    const ttlMs = Math.max(1000, token.expiresAt - Date.now());
    await this.redis.set(this.keys.targetToken(this.targetId), this.box.encrypt(JSON.stringify(token)), 'PX', ttlMs);
  }

  async clear(): Promise<void> {
    await this.redis.del(this.keys.targetToken(this.targetId));
  }
}
