/**
 * Per target-account rate limiting shared by every worker process: a sliding-window log (one Lua
 * call, one slot per target) plus a "blocked until" marker for Retry-After / quota resets. A full
 * window or a block throws RateLimitedError: the job is delayed, no handler sleeps.
 */
import { RateLimitedError } from '../targets/target.errors.js';
import type { RateLimiter } from '../targets/target.adapter.js';
import type { Result } from 'ioredis';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/** KEYS: window zset, block key. ARGV: now ms, window ms, limit, cost, member. Returns wait ms (0 = granted). */
const ACQUIRE_LUA = `
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
local now = tonumber(ARGV[1])
if blocked > now then return blocked - now end
local limit = tonumber(ARGV[3])
if limit <= 0 then return 0 end
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost > limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = window
  if oldest[2] then wait = tonumber(oldest[2]) + window - now end
  if wait < 1 then wait = 1 end
  return wait
end
for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], window)
return 0
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scAcquire(windowKey: string, blockKey: string, ...args: (string | number)[]): Result<number, Context>;
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
    if (typeof (redis as unknown as { scAcquire?: unknown }).scAcquire !== 'function') redis.defineCommand('scAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
  }

  async acquire(cost = 1): Promise<void> {
    // Window limits count requests; `cost` (quota units) only matters for quota-style platforms.
    const wait = await this.redis.scAcquire(
      this.keys.targetLimit(this.targetId, 'window'),
      this.keys.targetLimit(this.targetId, 'blocked'),
      Date.now(),
      this.limit?.windowMs ?? 1000,
      this.limit?.requests ?? 0,
      this.limit ? 1 : cost > 0 ? 1 : 0,
      `${process.pid}:${Date.now()}:${++seq}`,
    );
    if (wait > 0) throw new RateLimitedError(`rate limit of target ${this.targetId}: wait ${wait} ms`, wait, 'local_limit');
  }

  async blockUntil(untilMs: number, reason: string): Promise<void> {
    const ttl = untilMs - Date.now();
    if (ttl <= 0) return;
    await this.redis.set(this.keys.targetLimit(this.targetId, 'blocked'), String(untilMs), 'PX', ttl);
    await this.redis.set(this.keys.targetLimit(this.targetId, 'blocked-reason'), reason, 'PX', ttl);
  }
}
