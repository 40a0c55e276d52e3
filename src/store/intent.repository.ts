/**
 * Intents: the exactly-once record around each non-idempotent platform call (ARCHITECTURE
 * "Exactly-once side effects on at-least-once queues"). See `Once` in target.adapter.ts.
 */
import type { Once } from '../targets/target.adapter.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

interface IntentRecord {
  status: 'started' | 'done';
  result?: unknown;
  startedAt: string;
}

const TTL_SEC = 90 * 24 * 3600;

export class IntentRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** A `once` whose steps are scoped to (show, target, scope). */
  scoped(partnerId: string, showId: string, targetId: string, scope: string): Once {
    return async <T>(step: string, run: () => Promise<T>, recover?: () => Promise<T | null>): Promise<T> => {
      const key = this.keys.intent(partnerId, showId, targetId, `${scope}:${step}`);
      const raw = await this.redis.get(key);
      if (raw) {
        const rec = JSON.parse(raw) as IntentRecord;
        if (rec.status === 'done') return rec.result as T;
        if (recover) {
          const found = await recover();
          if (found !== null) {
            await this.redis.set(key, JSON.stringify({ ...rec, status: 'done', result: found } satisfies IntentRecord), 'EX', TTL_SEC);
            return found;
          }
        }
      }
      await this.redis.set(key, JSON.stringify({ status: 'started', startedAt: new Date().toISOString() } satisfies IntentRecord), 'EX', TTL_SEC);
      const result = await run();
      await this.redis.set(key, JSON.stringify({ status: 'done', result, startedAt: new Date().toISOString() } satisfies IntentRecord), 'EX', TTL_SEC);
      return result;
    };
  }
}
