/**
 * Per target-account rate limiting shared by every worker process: a sliding-window log (one Lua
 * call, one slot per target) plus a "blocked until" marker for Retry-After / quota resets. A full
 * window or a block throws RateLimitedError: the job is delayed, no handler sleeps.
 *
 * Time comes from Redis (TIME inside the scripts), never from the worker: workers whose clocks
 * disagree would otherwise each see a different window (a fast clock expires everybody's entries
 * early and lets a burst through) and a different end of a block.
 */
import { randomBytes } from 'node:crypto';
import { RateLimitedError } from '../targets/target.errors.js';
import { hasPrepaid, takePrepaid } from '../targets/attempt-deadline.js';
import { currentRunTokens } from '../lib/request-context.js';
import { platformWait } from '../targets/target.failure.js';
import type { RateLimiter } from '../targets/target.adapter.js';
import { Cluster, type Result } from 'ioredis';
import type { Keys } from './keys.js';
import { evalOnNode, NodeBatches, nodeBatchLua, nodeScript } from './node-batch.js';
import { defineRedisScripts, type RedisClient } from './redis.js';

/** Lua: `now`, Redis's clock in ms (shared with src/store/target-runs.repository.ts). */
export const REDIS_NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * The acquire rule as a Lua fragment (shared with the intent start, which may take a step's token in
 * its own step: src/store/intent.repository.ts): with `now` (Redis ms) in scope, sets `wait` (0 =
 * granted, the token taken) for the window zset `win` and block key `blocked`.
 *
 * A full window's wait: until the oldest entry leaves (one token free), or, for a sync run that took
 * `taken` (k) of this window's tokens already, until the (k+1)-th oldest leaves: k + 1 tokens free,
 * enough for the run's k requests again and this one. A wait that freed one token only livelocked a
 * run that needs two requests (a read, then the write): it spent that token on the read, was refused
 * the write, waited for the next single token, and so on for ever.
 */
export function acquireLua(win: string, blocked: string, windowMs: string, limit: string, cost: string, member: string, taken: string): string {
  return `local wait = 0
do
  local blockedUntil = tonumber(redis.call('GET', ${blocked}) or '0')
  local lim = tonumber(${limit})
  local had = lim > 0 and redis.call('ZSCORE', ${win}, ${member} .. ':1')
  if had and tonumber(had) > now - tonumber(${windowMs}) then
    -- This take's token is in the window already: a call that ran and whose answer was lost is sent
    -- again (a batch that failed as a whole). Granted once, not a second token (members are unique per take).
    wait = 0
  elseif blockedUntil > now then
    wait = blockedUntil - now
  elseif lim > 0 then
    local window = tonumber(${windowMs})
    local cost = tonumber(${cost})
    redis.call('ZREMRANGEBYSCORE', ${win}, '-inf', now - window)
    local used = redis.call('ZCARD', ${win})
    if used + cost > lim then
      -- The entry whose leaving frees k + cost tokens: k + cost - 1 past the surplus of a window that holds
      -- more than the limit (a limit lowered, or processes on two limits during a deploy); the newest at most.
      local nth = math.min(used - lim + cost - 1 + tonumber(${taken}), used - 1)
      if nth < 0 then nth = 0 end
      local oldest = redis.call('ZRANGE', ${win}, nth, nth, 'WITHSCORES')
      wait = window
      if oldest[2] then wait = tonumber(oldest[2]) + window - now end
      if wait < 1 then wait = 1 end
    else
      for i = 1, cost do redis.call('ZADD', ${win}, now, ${member} .. ':' .. i) end
      redis.call('PEXPIRE', ${win}, window)
    end
  end
end
`;
}


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

/**
 * One use case's block (Facebook's Business Use Cases, throttled each on its own): a hash in the
 * target's slot, use case (data, from the platform's answer) → blocked until (Redis ms), kept as long
 * as its longest block. KEYS: the hash. ARGV: block for ms (from now, Redis time), use case. A block
 * only ever grows, as BLOCK_LUA's. Fields whose block has ended are deleted (the hash's expiry is its
 * longest live block's, not pushed on by the ended ones).
 */
const USE_CASE_BLOCK_LUA = `${REDIS_NOW_MS}
local ms = tonumber(ARGV[1])
local untilMs = now + ms
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if cur >= untilMs then return 0 end
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  if (tonumber(h[i + 1]) or 0) <= now then redis.call('HDEL', KEYS[1], h[i]) end
end
redis.call('HSET', KEYS[1], ARGV[2], string.format('%d', untilMs))
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return 1
`;

/**
 * Lua: `ms` raised to the longest wait (Redis ms from `now`) of the use cases in ARGV from `first` on,
 * in hash `hashKey`.
 */
const longestUseCaseWait = (hashKey: string, first = 1): string => `for i = ${first}, #ARGV do
  local w = tonumber(redis.call('HGET', ${hashKey}, ARGV[i]) or '0') - now
  if w > ms then ms = w end
end`;

/**
 * KEYS: the use-case block hash. ARGV: use cases. Returns the wait (ms) until the longest of their
 * blocks ends, 0 = none.
 */
const USE_CASE_WAIT_LUA = `${REDIS_NOW_MS}
local ms = 0
${longestUseCaseWait('KEYS[1]')}
return ms
`;

/**
 * KEYS: window zset, block key, use-case block hash. ARGV: window ms, limit, cost, member, the tokens
 * the sync run took already (acquireLua's `taken`), then the call's use cases (none but Facebook's). Returns wait ms (0 = granted). The use cases' own blocks
 * come first (no token is taken while one holds), in the same call: a Facebook acquire is one round
 * trip, and a call that names no use case reads nothing more.
 */
const ACQUIRE_LUA = `${REDIS_NOW_MS}
local ms = 0
${longestUseCaseWait('KEYS[3]', 6)}
if ms > 0 then return ms end
${acquireLua('KEYS[1]', 'KEYS[2]', 'ARGV[1]', 'ARGV[2]', 'ARGV[3]', 'ARGV[4]', 'ARGV[5]')}
return wait
`;

/**
 * KEYS: block key, use-case block hash. ARGV: use cases. Returns how long (ms) the longest of the
 * account's blocks that hold these use cases lasts: the whole account's or one of theirs (0 = none).
 */
const BLOCKED_FOR_LUA = `${REDIS_NOW_MS}
local ms = redis.call('PTTL', KEYS[1])
if ms < 0 then ms = 0 end
${longestUseCaseWait('KEYS[2]')}
return ms
`;

/**
 * How long (ms) the longest block of limiter `limiterId` that holds the calls of `useCases` lasts, the
 * account's or one of theirs (0 = none): readiness's headroom. Blocks of other use cases (an
 * ads_management throttle) hold no call of the show.
 */
export async function blockedForMs(redis: RedisClient, keys: Keys, limiterId: string, useCases: readonly string[]): Promise<number> {
  defineRedisScripts(redis, { scBlockedFor: { numberOfKeys: 2, lua: BLOCKED_FOR_LUA } });
  return redis.scBlockedFor(keys.targetLimit(limiterId, 'blocked'), keys.targetLimit(limiterId, 'blocked-use-cases'), ...useCases);
}

/**
 * The tokens taken alongside intent starts (take()) that wait for one master of a Cluster: ACQUIRE's
 * rule for each, in order, in one call on that master's connection (keys of many slots possible: none
 * declared, the `allow-cross-slot-keys` flag, as the redirect's click batches). One limiter's keys are
 * in its target's slot, so one master takes all of an account's tokens. ARGV: window key, block key,
 * window ms, limit, cost, member, the run's tokens taken, per token. Each answers its wait (0 = taken), or an error of its own
 * when this node does not serve its keys (nothing taken: the first command is the block key's GET);
 * that token is then taken through the Cluster client, as is every token of a call that failed as a
 * whole.
 */
const NODE_ACQUIRE_LUA = `#!lua flags=allow-cross-slot-keys
${REDIS_NOW_MS}
local function take(a)
  ${acquireLua('ARGV[a + 1]', 'ARGV[a + 2]', 'ARGV[a + 3]', 'ARGV[a + 4]', 'ARGV[a + 5]', 'ARGV[a + 6]', 'ARGV[a + 7]')}
  return wait
end
${nodeBatchLua('take', 7)}`;
const NODE_ACQUIRE = nodeScript(NODE_ACQUIRE_LUA);
const TAKES_PER_CALL = 100;

interface PendingTake {
  args: (string | number)[];
  /** The token taken through the Cluster client instead (a node that does not serve its keys, a failed call). */
  direct: () => Promise<number>;
  resolve: (wait: number) => void;
  reject: (err: unknown) => void;
}
/** One per Cluster client: the limiters of every target share its per-master batches. */
const nodeTakes = new WeakMap<Cluster, NodeBatches<PendingTake, (number | Error)[]>>();
function nodeTake(cluster: Cluster, windowKey: string, blockKey: string, useCaseKey: string, args: (string | number)[]): Promise<number> {
  const direct = (): Promise<number> => cluster.scAcquire(windowKey, blockKey, useCaseKey, ...args);
  let batches = nodeTakes.get(cluster);
  if (batches === undefined) {
    batches = new NodeBatches<PendingTake, (number | Error)[]>(cluster, {
      maxPerCall: TAKES_PER_CALL,
      maxInFlight: 1,
      send: (node, batch) => evalOnNode<(number | Error)[]>(node, NODE_ACQUIRE, 0, batch.flatMap((t) => t.args)),
      deliver: (batch, replies) =>
        batch.forEach((t, i) => {
          const r = replies[i];
          if (typeof r === 'number') t.resolve(r);
          else t.direct().then(t.resolve, t.reject);
        }),
      fail: (batch) => {
        for (const t of batch) t.direct().then(t.resolve, t.reject);
      },
    });
    nodeTakes.set(cluster, batches);
  }
  const b = batches;
  return new Promise<number>((resolve, reject) => {
    if (!b.add(windowKey, { args: [windowKey, blockKey, ...args], direct, resolve, reject })) direct().then(resolve, reject);
  });
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scAcquire(windowKey: string, blockKey: string, useCaseKey: string, ...args: (string | number)[]): Result<number, Context>;
    scBlock(blockKey: string, reasonKey: string, ...args: (string | number)[]): Result<number, Context>;
    scUseCaseBlock(hashKey: string, ms: number, useCase: string): Result<number, Context>;
    scUseCaseWait(hashKey: string, ...useCases: string[]): Result<number, Context>;
    scBlockedFor(blockKey: string, hashKey: string, ...useCases: string[]): Result<number, Context>;
  }
}

/** The reason of this limiter's own refusals (RedisRateLimiter.refused). */
const LOCAL_LIMIT_REASON = 'local_limit';

/**
 * This limiter's own refusal (RedisRateLimiter.refused): a RateLimitedError whose reason is
 * `local_limit`, told apart by its class, never by that reason: Whatnot and TikTok take a refusal's
 * reason from the platform's answer (a problem's `type`, a code), so a platform's 429 saying
 * `local_limit` had our reason too and was taken for ours. Named `RateLimitedError` as before (logs,
 * stack traces); asUnsent's copies keep the class.
 */
export class LocalLimitError extends RateLimitedError {
  constructor(message: string, delayMs: number) {
    super(message, delayMs, LOCAL_LIMIT_REASON);
    this.name = 'RateLimitedError';
  }
}

/**
 * Whether `err` is this limiter's own refusal (a full window, the account's block, a use case's block,
 * read before the request): the request it was taken for was never sent. A platform's refusal (a 429,
 * a throttling code) is not, whatever its reason says: the request reached it.
 */
export function refusedLocally(err: unknown): boolean {
  return err instanceof LocalLimitError;
}

export interface WindowLimit {
  requests: number;
  windowMs: number;
}

let seq = 0;
/** Makes the window members of this process unique among processes (pids repeat across hosts and containers). */
const PROCESS_TAG = randomBytes(6).toString('base64url');

/**
 * What an intent start needs to take one request's token of a limiter in its own Lua step (a single
 * Redis only: the limiter's keys are in the target's slot): its keys, ACQUIRE's arguments, and the
 * error a refusal is.
 */
export interface PrepayLimiter {
  prepay(): { keys: [string, string]; args: (string | number)[] };
  /**
   * One request's token taken now, by acquire(1)'s rule: `wait` resolves to 0 when taken, else how
   * long to wait (nothing taken). `key` names the limiter to takePrepaid (its window key);
   * `giveBack()` returns a token that was taken and not used (the request was never sent).
   */
  take(): { key: string; wait: Promise<number>; giveBack: () => Promise<void> };
  refused(waitMs: number): RateLimitedError;
}

export class RedisRateLimiter implements RateLimiter, PrepayLimiter {
  private readonly windowKey: string;
  private readonly blockKey: string;
  private readonly useCaseKey: string;
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly targetId: string,
    private readonly limit: WindowLimit | undefined,
  ) {
    this.windowKey = keys.targetLimit(targetId, 'window');
    this.blockKey = keys.targetLimit(targetId, 'blocked');
    this.useCaseKey = keys.targetLimit(targetId, 'blocked-use-cases');
    defineRedisScripts(redis, {
      scAcquire: { numberOfKeys: 3, lua: ACQUIRE_LUA },
      scBlock: { numberOfKeys: 2, lua: BLOCK_LUA },
      scUseCaseBlock: { numberOfKeys: 1, lua: USE_CASE_BLOCK_LUA },
      scUseCaseWait: { numberOfKeys: 1, lua: USE_CASE_WAIT_LUA },
    });
  }

  get windowLimit(): WindowLimit | undefined {
    return this.limit;
  }

  async acquire(cost = 1, useCase?: string | readonly string[]): Promise<void> {
    const useCases = useCase === undefined ? [] : typeof useCase === 'string' ? [useCase] : useCase;
    // The step's start took this attempt's first token already (IntentRepository.scoped): only the use
    // cases' own blocks are left to read, and a refusal there does not use that token up.
    if (useCases.length > 0 && hasPrepaid(this.windowKey)) {
      const held = await this.redis.scUseCaseWait(this.useCaseKey, ...useCases);
      if (held > 0) throw this.refused(held);
    }
    if (takePrepaid(this.windowKey)) return this.counted();
    // One call: the use cases' blocks first, then the window and the account's block. Window limits
    // count requests; `cost` (quota units) only matters for quota-style platforms.
    const wait = await this.redis.scAcquire(this.windowKey, this.blockKey, this.useCaseKey, ...this.acquireArgs(cost), ...useCases);
    if (wait > 0) throw this.refused(wait);
    this.counted();
  }

  private acquireArgs(cost: number): (string | number)[] {
    const member = `${PROCESS_TAG}:${process.pid}:${Date.now()}:${++seq}`;
    if (!this.limit) return [1000, 0, cost > 0 ? 1 : 0, member, 0];
    return [this.limit.windowMs, this.limit.requests, 1, member, currentRunTokens()?.get(this.windowKey) ?? 0];
  }

  /**
   * One more of this window's tokens taken by the current sync run (withRunTokens), if any: a refusal
   * later in the run waits until the run's tokens are free again (acquireLua). Without a window
   * limit there is nothing to count.
   */
  private counted(): void {
    const run = this.limit && currentRunTokens();
    if (run) run.set(this.windowKey, (run.get(this.windowKey) ?? 0) + 1);
  }

  /** One request's token, as acquire(1) takes it (the window key identifies the limiter to takePrepaid). */
  prepay(): { keys: [string, string]; args: (string | number)[] } {
    return { keys: [this.windowKey, this.blockKey], args: this.acquireArgs(1) };
  }

  take(): { key: string; wait: Promise<number>; giveBack: () => Promise<void> } {
    const args = this.acquireArgs(1);
    return {
      key: this.windowKey,
      // On a Cluster in the batch of the limiter's master (the tokens of the intent starts of one moment)
      wait:
        this.redis instanceof Cluster
          ? nodeTake(this.redis, this.windowKey, this.blockKey, this.useCaseKey, args)
          : this.redis.scAcquire(this.windowKey, this.blockKey, this.useCaseKey, ...args),
      // The window's member ACQUIRE added for it (cost 1: `<member>:1`; none without a limit).
      giveBack: async () => {
        await this.redis.zrem(this.windowKey, `${String(args[3])}:1`);
      },
    };
  }

  refused(waitMs: number): RateLimitedError {
    return new LocalLimitError(`rate limit of target ${this.targetId}: wait ${waitMs} ms`, waitMs);
  }

  /**
   * `untilMs` is on this worker's clock (now + Retry-After, or a quota reset it computed); only the
   * remaining duration leaves the process, and Redis anchors it to its own clock.
   */
  async blockUntil(untilMs: number, reason: string, useCase?: string): Promise<void> {
    // Bounded (platformWait): a block Redis cannot store (PX out of range) failed the run with a Redis error.
    const forMs = Math.ceil(platformWait(untilMs - Date.now()));
    if (forMs <= 0) return;
    if (useCase !== undefined) {
      await this.redis.scUseCaseBlock(this.useCaseKey, forMs, useCase);
      return;
    }
    await this.redis.scBlock(this.keys.targetLimit(this.targetId, 'blocked'), this.keys.targetLimit(this.targetId, 'blocked-reason'), forMs, reason);
  }
}
