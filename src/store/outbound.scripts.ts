/** Lua steps of the outbound-webhook repositories (each touches one key, so one slot). */
import type { Result } from 'ioredis';
import { DEL_IF_HELD_LUA } from './lua-held.js';
import { defineRedisScripts, type RedisClient } from './redis.js';

/** KEYS: hash. ARGV: marker field, then field/value pairs. HSET only while the record exists (never resurrects a deleted one). */
const HSET_IF_EXISTS_LUA = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
`;

/**
 * EXPIRE GT for Redis 6.2, the documented minimum (EXPIRE's NX/XX/GT/LT options came with Redis 7.0;
 * 6.2 answers "ERR wrong number of arguments for 'expire' command", which failed every retry's save of
 * a delivery and every redelivery): the key's TTL is set to `ttl` seconds only when that is longer than
 * the TTL it has. A key without a TTL keeps none (as GT: no TTL counts as infinite).
 */
const EXPIRE_GT_FN = `
local function expireGt(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur ~= -1 and cur < ttl * 1000 then redis.call('EXPIRE', key, ttl) end
end
`;

/**
 * KEYS: message hash. ARGV: marker field, ttl s (0: none), then field/value pairs. Writes them while
 * the marker exists and, with a ttl, keeps the hash at least that long from now (EXPIRE GT: never
 * shorter): a retry's state and the message's extension land together or not at all.
 */
const HSET_KEEP_LUA = `${EXPIRE_GT_FN}
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local ttl = tonumber(ARGV[2])
if ttl > 0 then expireGt(KEYS[1], ttl) end
return 1
`;

/** KEYS: a key. ARGV: ttl s. EXPIRE GT (EXPIRE_GT_FN: Redis 6.2 has no GT option). */
const EXPIRE_GT_LUA = `${EXPIRE_GT_FN}
expireGt(KEYS[1], tonumber(ARGV[1]))
return 1
`;

/**
 * KEYS: endpoint hash. ARGV: start ms of the failed attempt. Starts the endpoint's failure clock
 * unless it runs already or an attempt that started later succeeded (attempts overlap).
 */
const ENDPOINT_FAILED_LUA = `
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return 0 end
local ok = tonumber(redis.call('HGET', KEYS[1], 'lastSuccessMs') or '0') or 0
if ok >= tonumber(ARGV[1]) then return 0 end
local f = redis.call('HGET', KEYS[1], 'failingSince')
if (not f) or f == '' then redis.call('HSET', KEYS[1], 'failingSince', ARGV[1]) end
return 1
`;

/**
 * KEYS: endpoint hash. ARGV: start ms of the successful attempt, its ISO time. Stops the failure
 * clock unless it was started by an attempt that began after this one.
 */
const ENDPOINT_SUCCEEDED_LUA = `
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return 0 end
local at = tonumber(ARGV[1])
local ok = tonumber(redis.call('HGET', KEYS[1], 'lastSuccessMs') or '0') or 0
if at > ok then redis.call('HSET', KEYS[1], 'lastSuccessMs', ARGV[1], 'lastSuccessAt', ARGV[2]) end
local f = redis.call('HGET', KEYS[1], 'failingSince')
if f and f ~= '' and tonumber(f) <= at then redis.call('HSET', KEYS[1], 'failingSince', '') end
return 1
`;

/**
 * KEYS: endpoint hash. ARGV: since ms, now ISO, reason. Disables the endpoint when it is enabled and
 * has failed without a single 2xx since `since` (the failure clock started at or before it).
 */
const DISABLE_IF_FAILING_LUA = `
if redis.call('HGET', KEYS[1], 'enabled') ~= '1' then return 0 end
local f = redis.call('HGET', KEYS[1], 'failingSince')
if f and f ~= '' and tonumber(f) <= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'enabled', '0', 'disabledAt', ARGV[2], 'disabledReason', ARGV[3], 'updatedAt', ARGV[2])
  return 1
end
return 0
`;

/**
 * KEYS: endpoint hash, the endpoint's pending audit entries (same slot). ARGV: new sealed secret,
 * previous-secret expiry ISO, now ISO, how many previous secrets to keep at most, the rotation's
 * pending audit id and entry ('' for none: recorded with the rotation, see AuditRepository.settle). The current secret becomes the newest previous one in the same
 * step, so concurrent rotations chain (each rotated-out secret keeps signing for the grace period)
 * instead of overwriting each other. Every earlier previous secret whose grace has not ended stays
 * (two rotations within the grace period, e.g. a retried rotate whose response was lost, must not
 * drop the secret the partner still verifies with); expired ones are dropped, and at most the newest
 * ARGV[4] are kept. Layout, readable by code that knows only one previous secret: the newest in
 * previousSecretSealed / previousSecretExpiresAt, the older ones in olderPreviousSecrets (a JSON
 * array of {sealed, expiresAt}, newest first; '' when none). Expiries are toISOString() values, so
 * they compare as strings.
 */
const ENDPOINT_ROTATE_LUA = `
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return 0 end
local now = ARGV[3]
local keep = tonumber(ARGV[4])
local cur = redis.call('HGET', KEYS[1], 'secretSealed') or ''
local prev = redis.call('HGET', KEYS[1], 'previousSecretSealed') or ''
local prevExp = redis.call('HGET', KEYS[1], 'previousSecretExpiresAt') or ''
local olderRaw = redis.call('HGET', KEYS[1], 'olderPreviousSecrets') or ''
local older = {}
if prev ~= '' and prevExp > now then older[#older + 1] = { sealed = prev, expiresAt = prevExp } end
if olderRaw ~= '' then
  local ok, list = pcall(cjson.decode, olderRaw)
  if ok and type(list) == 'table' then
    for _, s in ipairs(list) do
      if #older >= keep - 1 then break end
      if type(s) == 'table' and type(s.sealed) == 'string' and type(s.expiresAt) == 'string' and s.sealed ~= '' and s.expiresAt > now then
        older[#older + 1] = { sealed = s.sealed, expiresAt = s.expiresAt }
      end
    end
  end
end
while #older > keep - 1 do table.remove(older) end
local olderOut = ''
if #older > 0 then olderOut = cjson.encode(older) end
redis.call('HSET', KEYS[1], 'previousSecretSealed', cur, 'previousSecretExpiresAt', ARGV[2], 'olderPreviousSecrets', olderOut, 'secretSealed', ARGV[1], 'updatedAt', now)
if ARGV[5] and ARGV[5] ~= '' then redis.call('HSET', KEYS[2], ARGV[5], ARGV[6]) end
return 1
`;

/**
 * KEYS: endpoint hash, its attempt log (same slot). ARGV: max entries (approximate), the attempt's JSON.
 * Appends while the endpoint exists: an attempt that ends after its endpoint was deleted (DELETE drops
 * both keys) must not create a log nothing reads or removes.
 */
const ATTEMPT_ADD_LUA = `
if redis.call('HEXISTS', KEYS[1], 'id') == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'a', ARGV[2])
return 1
`;

/**
 * KEYS: message hash. ARGV: marker field, field, the value it was read with (its bytes), its new value. Writes it
 * while the marker exists and the field still holds what was read: a write in between (a redelivery's
 * state, an operator's repair) is left alone.
 */
const HSET_IF_SAME_LUA = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
return 1
`;

/** KEYS: message hash. ARGV: meta json, body, ttl s, then field/value pairs (deliveries). Creates once. */
const MESSAGE_CREATE_LUA = `
if redis.call('HEXISTS', KEYS[1], 'meta') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'body', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scObHsetIfExists(key: string, marker: string, ...pairs: string[]): Result<number, Context>;
    scObHsetKeep(key: string, marker: string, ttlSec: number, ...pairs: string[]): Result<number, Context>;
    scObHsetIfSame(key: string, marker: string, field: string, was: string | Buffer, value: string): Result<number, Context>;
    scObEndpointFailed(key: string, startMs: number): Result<number, Context>;
    scObEndpointSucceeded(key: string, startMs: number, startIso: string): Result<number, Context>;
    scObDisableIfFailing(key: string, sinceMs: number, nowIso: string, reason: string): Result<number, Context>;
    scObEndpointRotate(key: string, auditPending: string, sealed: string, previousExpiresAt: string, nowIso: string, keep: number, auditId: string, auditEntry: string): Result<number, Context>;
    scObAttemptAdd(endpointKey: string, attemptsKey: string, maxLen: number, attempt: string): Result<number, Context>;
    scObMessageCreate(key: string, meta: string, body: string, ttlSec: number, ...pairs: string[]): Result<number, Context>;
    scObReleaseIfHeld(key: string, token: string): Result<number, Context>;
    scObExpireGt(key: string, ttlSec: number): Result<number, Context>;
  }
}

export function defineOutboundScripts(redis: RedisClient): void {
  defineRedisScripts(redis, {
    scObHsetIfExists: { numberOfKeys: 1, lua: HSET_IF_EXISTS_LUA },
    scObHsetKeep: { numberOfKeys: 1, lua: HSET_KEEP_LUA },
    scObHsetIfSame: { numberOfKeys: 1, lua: HSET_IF_SAME_LUA },
    scObEndpointFailed: { numberOfKeys: 1, lua: ENDPOINT_FAILED_LUA },
    scObEndpointSucceeded: { numberOfKeys: 1, lua: ENDPOINT_SUCCEEDED_LUA },
    scObDisableIfFailing: { numberOfKeys: 1, lua: DISABLE_IF_FAILING_LUA },
    scObEndpointRotate: { numberOfKeys: 2, lua: ENDPOINT_ROTATE_LUA },
    scObAttemptAdd: { numberOfKeys: 2, lua: ATTEMPT_ADD_LUA },
    scObMessageCreate: { numberOfKeys: 1, lua: MESSAGE_CREATE_LUA },
    scObReleaseIfHeld: { numberOfKeys: 1, lua: DEL_IF_HELD_LUA },
    scObExpireGt: { numberOfKeys: 1, lua: EXPIRE_GT_LUA },
  });
}
