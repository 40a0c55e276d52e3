/** API keys are random 32-byte tokens; only their SHA-256 is stored (a slow hash adds nothing for such entropy). */
import { randomId } from '../lib/ids.js';
import { randomToken, sha256Hex } from '../lib/crypto.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export const ROLES = ['admin', 'operator', 'viewer', 'partner'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  id: string;
  role: Role;
  partnerId: string | undefined;
}

export class ApiKeyRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async create(role: Role, partnerId: string | undefined): Promise<{ id: string; key: string }> {
    const id = randomId('key_');
    const key = `sk_${role}_${randomToken(32)}`;
    const principal: Principal = { id, role, partnerId };
    await this.redis.set(this.keys.apiKey(sha256Hex(key)), JSON.stringify({ ...principal, createdAt: new Date().toISOString() }));
    return { id, key };
  }

  async find(key: string): Promise<Principal | null> {
    const raw = await this.redis.get(this.keys.apiKey(sha256Hex(key)));
    return raw ? (JSON.parse(raw) as Principal) : null;
  }
}
