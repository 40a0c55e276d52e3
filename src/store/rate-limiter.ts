/**
 * Per target-account rate limiting shared by every worker process: a sliding-window log (one Lua
 * call, one slot per target) plus a "blocked until" marker for Retry-After / quota resets. A full
 * window or a block throws RateLimitedError: the job is delayed, no handler sleeps.
 *
 * Time comes from Redis (TIME inside the scripts), never from the worker: workers whose clocks
 * disagree would otherwise each see a different window (a fast clock expires everybody's entries
 * early and lets a burst through) and a different end of a block.
 */
import { RateLimitedError } from '../targets/target.errors.js';
import type { RateLimiter } from '../targets/target.adapter.js';
import type { Result } from 'ioredis';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

const REDIS_NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** KEYS: window zset, block key. ARGV: window ms, limit, cost, member. Returns wait ms (0 = granted). */
const ACQUIRE_LUA = `${REDIS_NOW_MS}
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return blocked - now end
local limit = tonumber(ARGV[2])
if limit <= 0 then return 0 end
local window = tonumber(ARGV[1])
local cost = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost > limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = window
  if oldest[2] then wait = tonumber(oldest[2]) + window - now end
  if wait < 1 then wait = 1 end
  return wait
end
for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], window)
return 0
`;

/**
 * KEYS: block key, reason key. ARGV: block for ms (from now, Redis time), reason. A block only ever
 * grows: a shorter one (a 1 s Retry-After during a quota block that lasts until midnight) leaves the
 * longer one in place. Returns 1 when the block was extended.
 */
const BLOCK_LUA = `${REDIS_NOW_MS}
local ms = tonumber(ARGV[1])
local untilMs = now + ms
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= untilMs then return 0 end
redis.call('SET', KEYS[1], string.format('%d', untilMs), 'PX', ms)
redis.call('SET', KEYS[2], ARGV[2], 'PX', ms)
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scAcquire(windowKey: string, blockKey: string, ...args: (string | number)[]): Result<number, Context>;
    scBlock(blockKey: string, reasonKey: string, ...args: (string | number)[]): Result<number, Context>;
  }
}

export interface WindowLimit {
  requests: number;
  windowMs: number;
}

let seq = 0;

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly targetId: string,
    private readonly limit: WindowLimit | undefined,
  ) {
    if (typeof (redis as unknown as { scBlock?: unknown }).scBlock !== 'function') {
      redis.defineCommand('scAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
      redis.defineCommand('scBlock', { numberOfKeys: 2, lua: BLOCK_LUA });
    }
  }

  async acquire(cost = 1): Promise<void> {
    // Window limits count requests; `cost` (quota units) only matters for quota-style platforms.
    const wait = await this.redis.scAcquire(
      this.keys.targetLimit(this.targetId, 'window'),
      this.keys.targetLimit(this.targetId, 'blocked'),
      this.limit?.windowMs ?? 1000,
      this.limit?.requests ?? 0,
      this.limit ? 1 : cost > 0 ? 1 : 0,
      `${process.pid}:${Date.now()}:${++seq}`,
    );
    if (wait > 0) throw new RateLimitedError(`rate limit of target ${this.targetId}: wait ${wait} ms`, wait, 'local_limit');
  }

  /**
   * `untilMs` is on this worker's clock (now + Retry-After, or a quota reset it computed); only the
   * remaining duration leaves the process, and Redis anchors it to its own clock.
   */
  async blockUntil(untilMs: number, reason: string): Promise<void> {
    const forMs = Math.ceil(untilMs - Date.now());
    if (forMs <= 0) return;
    await this.redis.scBlock(this.keys.targetLimit(this.targetId, 'blocked'), this.keys.targetLimit(this.targetId, 'blocked-reason'), forMs, reason);
  }
}
