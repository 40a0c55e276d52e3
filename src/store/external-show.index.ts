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
import type { Result } from 'ioredis';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * Lua that writes an index entry and sets the variable `waiting` (declared by the caller) to how many
 * orders wait for it; the arguments are the Lua expressions of the entry's key, its waiting set's key
 * and the show id. Shared with the run's last mirror save on a single Redis (show.repository.ts
 * SAVE_MIRROR_FINAL_LUA), which asserts the entry in its own step.
 */
export function assertEntryLua(entry: string, waitingSet: string, showId: string): string {
  return `redis.call('SET', ${entry}, ${showId})
waiting = redis.call('SCARD', ${waitingSet})
`;
}

/** KEYS: the entry, its waiting set (one slot). ARGV: show id. Writes the entry, returns how many orders wait. */
const ASSERT_LUA = `
local waiting
${assertEntryLua('KEYS[1]', 'KEYS[2]', 'ARGV[1]')}return waiting
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scExtShowAssert(entry: string, waiting: string, showId: string): Result<number, Context>;
  }
}

export class ExternalShowIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    if (typeof (redis as unknown as { scExtShowAssert?: unknown }).scExtShowAssert !== 'function') redis.defineCommand('scExtShowAssert', { numberOfKeys: 2, lua: ASSERT_LUA });
  }

  async set(targetId: string, externalId: string, showId: string): Promise<void> {
    await this.redis.set(this.keys.targetExternalShow(targetId, externalId), showId);
  }

  /** Writes the entry (idempotent) and says how many orders wait for it; one command, one slot. */
  async assert(targetId: string, externalId: string, showId: string): Promise<number> {
    return Number(await this.redis.scExtShowAssert(this.keys.targetExternalShow(targetId, externalId), this.keys.targetExternalShowWaiting(targetId, externalId), showId));
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
