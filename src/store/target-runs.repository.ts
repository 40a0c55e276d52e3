/**
 * The sync runs of a slow target in flight, across every worker process (src/mirror/target-cap.ts): a
 * ZSET per target, run token → the end of the run's slot lease (Redis ms), so a run whose worker was
 * killed stops counting once its lease lapses. Plus one ZSET of the slow targets (target id → slow
 * until, Redis ms) that every worker process reads whole once a second: only a target in it has its
 * runs counted, so a healthy target's run costs no Redis call. Time comes from Redis (TIME), as in the
 * rate limiter.
 */
import type { Result } from 'ioredis';
import type { Keys } from './keys.js';
import { defineRedisScripts, type RedisClient } from './redis.js';
import { REDIS_NOW_MS } from './rate-limiter.js';

/**
 * KEYS: runs. ARGV: token, cap, lease ms. Drops lapsed runs; a token already in (a retried call) is
 * renewed. Returns 0 when the run is counted, 1 when the target already holds `cap` runs.
 */
const ENTER_LUA = `${REDIS_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ms = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 1 end
redis.call('ZADD', KEYS[1], now + ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ms)
return 0
`;

/**
 * KEYS: runs. ARGV: token, lease ms, leave (1: the run ended). Renews a run still counted (never
 * counts it again) or ends it.
 */
const KEEP_LUA = `${REDIS_NOW_MS}
if ARGV[3] == '1' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local ms = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ms, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return 1
`;

/** KEYS: slow targets. ARGV: target id, slow for ms. Extends, never shortens, the target's slow time. */
const MARK_SLOW_LUA = `${REDIS_NOW_MS}
local untilMs = now + tonumber(ARGV[2])
local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')
if untilMs > cur then redis.call('ZADD', KEYS[1], untilMs, ARGV[1]) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/** KEYS: slow targets. Drops targets no longer slow; returns [id, ms it stays slow, …]. */
const SLOW_LUA = `${REDIS_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local r = redis.call('ZRANGEBYSCORE', KEYS[1], now + 1, '+inf', 'WITHSCORES')
for i = 2, #r, 2 do r[i] = tostring(tonumber(r[i]) - now) end
return r
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scTargetRunEnter(runs: string, token: string, cap: number, leaseMs: number): Result<number, Context>;
    scTargetRunKeep(runs: string, token: string, leaseMs: number, leave: 0 | 1): Result<number, Context>;
    scTargetMarkSlow(slow: string, targetId: string, slowForMs: number): Result<number, Context>;
    scSlowTargets(slow: string): Result<string[], Context>;
  }
}

export class TargetRunRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    defineRedisScripts(redis, {
      scTargetRunEnter: { numberOfKeys: 1, lua: ENTER_LUA },
      scTargetRunKeep: { numberOfKeys: 1, lua: KEEP_LUA },
      scTargetMarkSlow: { numberOfKeys: 1, lua: MARK_SLOW_LUA },
      scSlowTargets: { numberOfKeys: 1, lua: SLOW_LUA },
    });
  }

  /** Counts the run `token` of a slow target (true), unless it has `cap` runs in flight (false). */
  async enter(targetId: string, token: string, cap: number, leaseMs: number): Promise<boolean> {
    return (await this.redis.scTargetRunEnter(this.keys.targetRuns(targetId), token, cap, leaseMs)) === 0;
  }

  /** Extends the run's lease while it is still counted. */
  async renew(targetId: string, token: string, leaseMs: number): Promise<void> {
    await this.redis.scTargetRunKeep(this.keys.targetRuns(targetId), token, leaseMs, 0);
  }

  /** The counted run ended. */
  async leave(targetId: string, token: string): Promise<void> {
    await this.redis.scTargetRunKeep(this.keys.targetRuns(targetId), token, 0, 1);
  }

  /** The target is slow for `slowForMs` from now (or longer, if it already was). */
  async markSlow(targetId: string, slowForMs: number): Promise<void> {
    await this.redis.scTargetMarkSlow(this.keys.slowTargets(), targetId, slowForMs);
  }

  /** The slow targets, each with how many ms it stays slow (one command). */
  async slowTargets(): Promise<Map<string, number>> {
    const r = await this.redis.scSlowTargets(this.keys.slowTargets());
    const slow = new Map<string, number>();
    for (let i = 0; i + 1 < r.length; i += 2) slow.set(r[i]!, Number(r[i + 1]));
    return slow;
  }
}
