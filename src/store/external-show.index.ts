/**
 * The platform's show id → our show id, per target. Written by the mirror worker as soon as a mirror
 * has its remote show (created by API or linked by an operator) and re-asserted by every later sync
 * of that mirror, so a write that failed (or a process that died before it) is repaired by the next
 * sync; read by attribution to apply rule 2 (a platform order that names the broadcast / room /
 * content is attributed to that show and target).
 *
 * Orders that named a platform show the index did not know yet are stored unattributed and listed
 * under that show id ("waiting"); when the entry appears they are attributed after all, with new
 * ledger entries (AttributionService.attributeWaiting).
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

  /** Writes the entry (idempotent) and says how many orders wait for it; one round trip, one slot. */
  async assert(targetId: string, externalId: string, showId: string): Promise<number> {
    const res = await this.redis
      .multi()
      .set(this.keys.targetExternalShow(targetId, externalId), showId)
      .scard(this.keys.targetExternalShowWaiting(targetId, externalId))
      .exec();
    const [setErr] = res?.[0] ?? [];
    const [cardErr, waiting] = res?.[1] ?? [];
    if (!res || setErr || cardErr) throw setErr ?? cardErr ?? new Error('external-show index write was discarded');
    return Number(waiting ?? 0);
  }

  async get(targetId: string, externalId: string): Promise<string | null> {
    return this.redis.get(this.keys.targetExternalShow(targetId, externalId));
  }

  /** An order stored unattributed because `externalId` was not in the index yet. Idempotent. */
  async addWaiting(targetId: string, externalId: string, ref: string): Promise<void> {
    await this.redis.sadd(this.keys.targetExternalShowWaiting(targetId, externalId), ref);
  }

  async waiting(targetId: string, externalId: string): Promise<string[]> {
    return this.redis.smembers(this.keys.targetExternalShowWaiting(targetId, externalId));
  }

  async doneWaiting(targetId: string, externalId: string, refs: string[]): Promise<void> {
    if (refs.length > 0) await this.redis.srem(this.keys.targetExternalShowWaiting(targetId, externalId), ...refs);
  }
}
