/**
 * The platform's show id → our show id, per target. Written by the mirror worker as soon as a mirror
 * has its remote show (created by API or linked by an operator); read by attribution to apply rule 2
 * (a platform order that names the broadcast / room / content is attributed to that show and target).
 */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export class ExternalShowIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async set(targetId: string, externalId: string, showId: string): Promise<void> {
    await this.redis.set(this.keys.targetExternalShow(targetId, externalId), showId);
  }

  async get(targetId: string, externalId: string): Promise<string | null> {
    return this.redis.get(this.keys.targetExternalShow(targetId, externalId));
  }
}
