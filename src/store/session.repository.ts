/**
 * Browser sessions for pages that cannot send a bearer header (the bull-board dashboard at
 * /admin/queues): a console sign-in exchanges its API key for a random token kept in an HttpOnly,
 * SameSite=Strict cookie. Only the token's SHA-256 is stored, with the principal it stands for.
 */
import { randomToken, sha256Hex } from '../lib/crypto.js';
import type { Principal } from './apikey.repository.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export class SessionRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly ttlSec: number,
  ) {}

  async create(p: Principal): Promise<string> {
    const token = randomToken(32);
    await this.redis.set(this.keys.consoleSession(sha256Hex(token)), JSON.stringify(p), 'EX', this.ttlSec);
    return token;
  }

  async find(token: string): Promise<Principal | null> {
    const raw = await this.redis.get(this.keys.consoleSession(sha256Hex(token)));
    return raw ? (JSON.parse(raw) as Principal) : null;
  }

  async delete(token: string): Promise<void> {
    await this.redis.del(this.keys.consoleSession(sha256Hex(token)));
  }
}
