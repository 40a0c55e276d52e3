/**
 * Intents: the exactly-once record around each non-idempotent platform call (ARCHITECTURE
 * "Exactly-once side effects on at-least-once queues"). See `Once` in target.adapter.ts.
 *
 * Intents are owned. A sync run first takes the mirror's lease (one per show × target, in the show's
 * slot, as long as the BullMQ job lock and renewed on the same event loop, so both lapse together
 * when a run stalls). Every intent step and every mirror save checks, in the same Lua step as its
 * write, that no other run holds the lease, and an intent records its owner: once a takeover run has
 * the lease, or has taken a step over, the stalled run can neither start nor complete that step, nor
 * save the mirror — it stops at its next write. A lease that merely lapsed (a slow event loop, nobody
 * else came) is taken back by the next write of its run, unless a renewal found it lapsed first: a
 * renewal never (re-)creates a lease, and one that finds it gone or another run's marks it `lost`.
 *
 * Where WAIT is on (REDIS_WAIT_REPLICAS, src/store/replica-ack.ts) a step's `started` record is
 * confirmed on a replica before its platform call: a failover cannot then lose it and let a retry call
 * the platform again without its recovery lookup.
 *
 * What no fencing can undo is a platform request still on its way when the attempt that sent it timed
 * out, died or stalled: the platform acts on it LATER. A retry that looked the object up by its marker
 * before then found nothing and made it a second time (the second `show.created` of the scale-out test,
 * issue 12). So an attempt has a deadline: a started intent records `until` (Redis clock: start +
 * `attemptMs`), the owner's platform requests cannot be sent after it (src/targets/attempt-deadline.ts,
 * enforced in platform-http.ts), and another run does not look the object up — nor call it again —
 * before `until + settleMs` (PLATFORM_SETTLE_MS: how late a platform may act on a request that reached it): it
 * waits (a RetryableError with that delay) and then adopts what the first attempt made. Durations are
 * measured on one clock each (Redis for `until`, the owner's for its deadline), never compared across
 * machines.
 */
import { randomBytes } from 'node:crypto';
import type { Redis, Result } from 'ioredis';
import type { SecretBox } from '../lib/crypto.js';
import type { Once, OnceOptions, RecoverAttempt, Recorded } from '../targets/target.adapter.js';
import { withAttemptDeadline, withPrepaid } from '../targets/attempt-deadline.js';
import { AuthExpiredError, NotMadeError, PermanentError, RateLimitedError, RetryableError, TargetError } from '../targets/target.errors.js';
import { acquireLua, refusedLocally, type PrepayLimiter } from './rate-limiter.js';
import type { Keys } from './keys.js';
import { defineRedisScripts, type RedisClient } from './redis.js';
import type { ReplicaAck } from './replica-ack.js';
import { evalOnNode, nodeScript } from './node-batch.js';

interface IntentRecord {
  status: 'started' | 'done';
  /** The lease token of the run that started (and completes) the step. */
  owner?: string;
  /** The result in clear: steps whose result carries no secret (OnceOptions.resultInClear), and earlier versions' records. */
  result?: unknown;
  /**
   * The step's result (JSON), sealed with SECRETS_KEY: platform answers carry credentials such as
   * YouTube's stream name and Facebook's secure_stream_url (stream keys are encrypted at rest).
   */
  resultSealed?: string;
  startedAt: string;
  /**
   * Started records taken over from an earlier started one (set by the script): the `startedAt` of
   * the first attempt in that chain, the oldest an object any of them made can be (told to recover()).
   */
  since?: string;
  /** Started records: until when (Redis clock, epoch ms) the owner's attempt may send (set by the script). */
  until?: number;
  /**
   * Started records that replaced an earlier attempt's (set by the script): from when (Redis clock,
   * epoch ms) a look that finds nothing may be trusted, the earlier `until` + 2 × settle. Kept in the
   * record so that this run's start executed twice (a reply lost and the command sent again) still
   * waits for it (IntentRepository.lookedTooSoon).
   */
  lookAfterAt?: number;
}

export interface IntentTiming {
  /** How long an attempt (the `run()` of a step) may send platform requests after it started. */
  attemptMs: number;
  /** How long a platform may take to act on a request that reached it: another run waits this much past `until`. */
  settleMs: number;
}

const TTL_SEC = 90 * 24 * 3600;

/** How soon a step whose start no replica confirmed is tried again. */
const REPLICA_RETRY_MS = 1000;

/** KEYS: lease. ARGV: token, ttl ms. Returns 0 when taken (or renewed), else the ms until the holder's lease lapses. */
const LEASE_ACQUIRE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then left = tonumber(ARGV[2]) end
  return left
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 0
`;

/**
 * KEYS: lease, the show's desired hash, the mirror[, the partner hash]. ARGV: token, ttl ms[, the
 * target's field in the partner hash]. LEASE_ACQUIRE, and when the lease is taken, the run's first
 * reads in the same step: {0, desired (HGETALL), mirror json or false, target json or false, the
 * names of those keys that hold another type (WRONGTYPE: 'desired', 'mirror', 'target'; each read as
 * absent): the lease is taken and the run decides, where an error here left it held until it lapsed};
 * else {ms until the holder's lease lapses}. The partner hash is in another slot: passed on a single
 * Redis only (on a Cluster the target is read alongside, in the partner's slot).
 */
const LEASE_ACQUIRE_READ_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then left = tonumber(ARGV[2]) end
  return {left}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
local wrong = {}
local target = false
if KEYS[4] then
  target = redis.pcall('HGET', KEYS[4], ARGV[3])
  if type(target) == 'table' then target = false wrong[#wrong + 1] = 'target' end
end
local desired = redis.pcall('HGETALL', KEYS[2])
if desired.err then desired = {} wrong[#wrong + 1] = 'desired' end
local mirror = redis.pcall('GET', KEYS[3])
if type(mirror) == 'table' then mirror = false wrong[#wrong + 1] = 'mirror' end
return {0, desired, mirror, target, wrong}
`;

/**
 * KEYS: lease. ARGV: token, ttl ms. Compare-and-pexpire: extends the lease only while it is still the
 * token's; a lease that lapsed or another run holds is never (re-)created here. Returns 1 when renewed.
 */
const LEASE_RENEW_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`;

/** KEYS: lease. ARGV: token. */
const LEASE_RELEASE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * The fencing check every owned write starts with (KEYS[2] = lease, ARGV[1] = token): refuse when
 * another run holds the lease. TAKE_BACK (ARGV[4] = lease ttl ms), once the write is decided: a lease
 * that lapsed with nobody else taking it is this run's again.
 */
const OTHER_HOLDER = `
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return LOST end
`;
const TAKE_BACK = `
if not holder then redis.call('SET', KEYS[2], ARGV[1], 'PX', tonumber(ARGV[4])) end
`;

/**
 * Lua: `ownedBy(raw, token)`, whether the stored intent record `raw` names `token` as its owner, and
 * `readable(raw)`, whether it is an intent record at all (JSON with status started or done). A started record that INTENT_START wrote for a
 * new step is `{"status":"started","owner":"…","startedAt":"…","until":…}` (IntentRecord's field
 * order, as JSON.stringify writes it, with `until` appended): when the WHOLE record has that shape its
 * owner is read from it without a cjson decode (one per pin step, in the run's last save). Any other
 * record is decoded: one that does not decode (corrupt, truncated) is owned by nobody, whatever its
 * head says — a matching head once made a corrupt record count as the run's own. An owner with an
 * escape in its text is decoded too.
 */
export const OWNED_BY_LUA = `local function readable(raw)
  local ok, rec = pcall(cjson.decode, raw)
  return ok and type(rec) == 'table' and (rec['status'] == 'started' or rec['status'] == 'done')
end
local function ownedBy(raw, token)
  local owner = string.match(raw, '^{"status":"started","owner":"([^"\\\\]*)","startedAt":"[%d%-:%.TZ]+","until":%d+}$')
  if owner then return owner == token end
  return readable(raw) and cjson.decode(raw)['owner'] == token
end
`;

/**
 * KEYS: intent, lease[, the target limiter's window zset and block key]. ARGV: token, the started
 * record (json, owner = token), ttl s, lease ttl ms, attempt ms, settle ms[, the limiter's ACQUIRE
 * arguments: window ms, limit, cost, member, the run's tokens taken]. Returns {-1} when another run owns the mirror, {2,
 * record} when the step is done, {3, ms} when another run's attempt at it may still reach the platform
 * (wait that long; nothing written), {4, ms} when the limiter refuses the step's request (wait that
 * long; nothing written, no token taken), {1, record, ms} when an earlier run started it and never
 * finished (now ours: recover first; also when this run starts its own step again, which only renews
 * `until`; `ms`: how long, by Redis' clock, until a look that finds nothing may be trusted, 0 when it
 * already may: another run's record's `until` + 2 × settle, or the `lookAfterAt` a record carries
 * from the one it replaced (the later of the two), less now: IntentRepository.stepOnce), {5} when its record is unreadable (corrupt: nothing written, see IntentCorruptError), {0}
 * when it is new. With the limiter keys (a single Redis only: the target's slot) a step
 * that is not done takes its first request's token here, by ACQUIRE's rule (rate-limiter.ts), so the
 * attempt does not take it in a round trip of its own (OnceOptions.limitedRequest). A started record
 * that replaces a started one keeps the first attempt's start as `since`, and that trust point as
 * `lookAfterAt` while it is ahead: this run's start executed again (ioredis re-sends a command whose
 * reply a dropped connection lost; startConfirmed's fallback) finds its own record, and still
 * replies the wait, not 0.
 */
const INTENT_START_LUA = `${OTHER_HOLDER.replace('LOST', '{-1}')}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local raw = redis.call('GET', KEYS[1])
local lookAfterAt = nil
if raw then
  local ok, rec = pcall(cjson.decode, raw)
  if ok and type(rec) == 'table' and (rec['status'] == 'started' or rec['status'] == 'done') then
    if rec['status'] == 'done' then return {2, raw} end
    local untilMs = tonumber(rec['until'])
    if rec['owner'] ~= ARGV[1] and untilMs then
      local settled = untilMs + tonumber(ARGV[6])
      if now < settled then return {3, tostring(settled - now)} end
      -- A look that finds nothing is trusted one settle window later still (see IntentRepository.stepOnce).
      lookAfterAt = settled + tonumber(ARGV[6])
    end
    -- Carried from the record this one replaced: this run's own start, executed again, waits for it too.
    local carried = tonumber(rec['lookAfterAt'])
    if carried and (not lookAfterAt or carried > lookAfterAt) then lookAfterAt = carried end
  else
    -- Unreadable (corrupt, truncated, or JSON that is no intent record: [], {}, no status): it
    -- may have been done. Left as it is, the step is not run.
    return {5}
  end
end
if KEYS[3] then
${acquireLua('KEYS[3]', 'KEYS[4]', 'ARGV[7]', 'ARGV[8]', 'ARGV[9]', 'ARGV[10]', 'ARGV[11]')}  if wait > 0 then return {4, tostring(wait)} end
end
${TAKE_BACK}
if not raw and string.sub(ARGV[2], -1) == '}' then
  -- A new step: \`until\` appended to the started record's text (no cjson decode and encode of it).
  redis.call('SET', KEYS[1], string.sub(ARGV[2], 1, -2) .. ',"until":' .. string.format('%d', now + tonumber(ARGV[5])) .. '}', 'EX', tonumber(ARGV[3]))
  return {0}
end
local rec = cjson.decode(ARGV[2])
rec['until'] = now + tonumber(ARGV[5])
if raw then
  local okPrev, prev = pcall(cjson.decode, raw)
  if okPrev and type(prev) == 'table' and prev['status'] == 'started' then
    local since = prev['since'] or prev['startedAt']
    if type(since) == 'string' then rec['since'] = since end
  end
end
local lookAfter = 0
if lookAfterAt and lookAfterAt > now then
  rec['lookAfterAt'] = lookAfterAt
  lookAfter = lookAfterAt - now
end
redis.call('SET', KEYS[1], cjson.encode(rec), 'EX', tonumber(ARGV[3]))
if raw then return {1, raw, string.format('%d', lookAfter)} end
return {0}
`;

/**
 * KEYS: intent, lease. ARGV: token, the done record (json), ttl s, lease ttl ms. Writes it only
 * while no other run holds the lease and the token still owns the step (a takeover that started the
 * step again owns it now). Returns 1 when written, 0 when the run lost the step, 2 when the stored
 * record is unreadable (corrupt: left as it is, see IntentCorruptError).
 */
const INTENT_COMPLETE_LUA = `${OWNED_BY_LUA}${OTHER_HOLDER.replace('LOST', '0')}
local raw = redis.call('GET', KEYS[1])
if raw and not ownedBy(raw, ARGV[1]) then
  if not readable(raw) then return 2 end
  return 0
end
${TAKE_BACK}
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
`;

/**
 * KEYS: intent, lease. ARGV: token. Forgets a step this run started whose one request was refused
 * (nothing was done): deleted only while no other run holds the lease and the step is still this
 * run's and not done. Returns 1 when forgotten.
 */
const INTENT_ABANDON_LUA = `${OTHER_HOLDER.replace('LOST', '0')}
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or rec['owner'] ~= ARGV[1] or rec['status'] ~= 'started' then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * KEYS: intent, lease. ARGV: token, the earlier record (json), ttl s. Puts back the `started` record
 * an earlier attempt left, over this run's own start, when this run sent nothing (a refusal, a look-up
 * it does not trust yet): the step stays uncertain with the earlier attempt's `until`, so this run's
 * start does not renew the window a later run waits out. Written only while no other run holds the
 * lease and the step is still this run's and not done. Returns 1 when put back.
 */
const INTENT_RESTORE_LUA = `${OTHER_HOLDER.replace('LOST', '0')}
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or rec['owner'] ~= ARGV[1] or rec['status'] ~= 'started' then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
`;

/** INTENT_START's reply: {state[, record or ms][, ms until a look that found nothing is trusted]}. */
type StartReply = [number, string?, string?];

/** INTENT_START for evalOnNode: the first start of a step where WAIT is on, with its WAIT right behind it. */
const INTENT_START_SCRIPT = nodeScript(INTENT_START_LUA);

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scLeaseAcquire(lease: string, token: string, ttlMs: number): Result<number, Context>;
    scLeaseRelease(lease: string, token: string): Result<number, Context>;
    scLeaseRenew(lease: string, token: string, ttlMs: number): Result<number, Context>;
    scLeaseAcquireRead(numKeys: number, ...args: (string | number)[]): Result<[number, string[]?, (string | null)?, (string | null)?, string[]?], Context>;
    scIntentStart(intent: string, lease: string, token: string, record: string, ttlSec: number, leaseMs: number, attemptMs: number, settleMs: number): Result<StartReply, Context>;
    scIntentStartLimited(intent: string, lease: string, window: string, blocked: string, ...args: (string | number)[]): Result<StartReply, Context>;
    scIntentComplete(intent: string, lease: string, token: string, record: string, ttlSec: number, leaseMs: number): Result<number, Context>;
    scIntentAbandon(intent: string, lease: string, token: string): Result<number, Context>;
    scIntentRestore(intent: string, lease: string, token: string, record: string, ttlSec: number): Result<number, Context>;
  }
}

/**
 * A step's intent record is unreadable (not JSON: corrupt, truncated). Whether the platform already did
 * the step is unknown, so the step is not run (nor its record replaced): a repeat could double a side
 * effect. A permanent error, so the mirror goes `failed` with this message for an operator, who checks
 * the platform and then deletes the record and resyncs (docs/operations.md "Unreadable intent record").
 */
export class IntentCorruptError extends PermanentError {
  constructor(what: string, key: string, made: boolean) {
    super(
      made
        ? `the record of step ${what} is unreadable (Redis key ${key}): this run made it on the platform but could not record that; the record is left as it is, so the step is not done again (a resync after deleting that key makes it afresh: remove it on the platform first)`
        : `the record of step ${what} is unreadable (Redis key ${key}): whether the platform already has it is unknown, so it is not done again. Check the platform (a resync after deleting that key makes it afresh: remove it there first if it is there)`,
      'intent_corrupt',
    );
  }
}

/** The run no longer holds the mirror's lease (it stalled and another run took over): it must stop. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** A run's hold on one mirror (show × target). */
export interface MirrorLease {
  readonly key: string;
  readonly token: string;
  readonly ttlMs: number;
  /** Set when the run gave the mirror up (its job lock was lost): its writes are refused from then on. */
  revoked?: boolean;
  /**
   * Set when a renewal found the lease no longer this run's (another run holds it, or it lapsed), or
   * a fenced write found another holder: the run's writes are refused from then on (LeaseLostError)
   * and nothing of this run renews or takes the lease back. A renewal that failed (Redis error) does
   * not set it: the run's fenced writes decide.
   */
  lost?: boolean;
  /** Set when the run's last save released the lease with it (SAVE_MIRROR_FINAL): nothing renews or releases it after. */
  released?: boolean;
  /**
   * Completed steps whose done records ride on the run's next mirror save (scoped with
   * `deferComplete`): the save writes them in the same Lua step, before its own write. `recoverable`:
   * the step has a recovery lookup (a run that finds it left `started` looks its object up instead of
   * calling again), so its record may also wait for the run's last save (SyncService, the pin step).
   * `what`: the step's `scope:step`, as errors name it (an unreadable record: IntentCorruptError).
   */
  pending?: { key: string; record: string; recoverable: boolean; what: string }[];
  /**
   * The run's target record (the partner's hash and the target's field): the run's mirror saves are
   * refused once it is gone (a target deleted during the run: ShowRepository, TargetGoneError), or is
   * of another incarnation than the mirror saved (deleted and created again: TargetReplacedError).
   */
  target?: { key: string; field: string };
}

/** Whether the run may still write under `lease`: it neither gave it up nor found it lost. */
export function stillOwned(lease: MirrorLease): boolean {
  return !lease.revoked && !lease.lost;
}

/** Throws LeaseLostError when the run gave its lease up or a renewal found it lost. */
export function assertHeld(lease: MirrorLease | undefined, what: string): void {
  if (lease?.revoked) throw new LeaseLostError(`${what}: this run gave the mirror up`);
  if (lease?.lost) throw new LeaseLostError(`${what}: this run's lease was lost (its renewal found it gone or another run's)`);
}

/**
 * An attempt may send for two platform timeouts (a token refresh, then the call). Another run then
 * waits `platformSettleMs` (PLATFORM_SETTLE_MS) past that for the platform to act on a request that
 * reached it by then. That wait is the platform's bound, not our timeout's: a request written to the
 * socket just before the deadline may sit in the platform's queue (or a loaded simulator's) for longer
 * than our client waits for answers — one timeout was too short for the 58 doubled chat messages of
 * the 1,000-show scale-out run (docs/testing.md).
 */
export function intentTiming(platformTimeoutMs: number, platformSettleMs: number): IntentTiming {
  return { attemptMs: 2 * platformTimeoutMs, settleMs: platformSettleMs };
}

/** A stored intent record's text as JSON; null when there is none or it does not parse. */
function parsedRecord(raw: string | null | undefined): Partial<IntentRecord> | null {
  if (raw === null || raw === undefined) return null;
  try {
    return JSON.parse(raw) as Partial<IntentRecord> | null;
  } catch {
    return null;
  }
}

/** What recover() is told about the started record a run found: since when an object may exist. */
function attemptOf(raw: string | undefined): RecoverAttempt {
  const prev = parsedRecord(raw);
  const since = prev?.since ?? prev?.startedAt;
  return typeof since === 'string' && !Number.isNaN(Date.parse(since)) ? { since } : {};
}

export function newLeaseToken(): string {
  return randomBytes(12).toString('base64url');
}

/** Done records kept 90 days, like every intent (the save that writes deferred ones uses the same). */
export const INTENT_TTL_SEC = TTL_SEC;

/** Options of `IntentRepository.scoped`. */
export interface ScopedOptions {
  /**
   * Steps complete by the caller's next mirror save (the done record rides on it, in its Lua step):
   * for a caller that saves right after the call returns.
   */
  deferComplete?: boolean;
  /**
   * Awaited before a step recovers or runs: resolves when what the step's platform requests refer to
   * has been written (a pin's tracked link, sent in the same event-loop turn as the step's start);
   * a rejection fails the step before anything is sent.
   */
  before?: () => Promise<void>;
  /** Look up only (OpContext.findOnly): never `run()`; NotMadeError when the step has no result and recover() finds nothing. */
  findOnly?: boolean;
  /**
   * Called when this run completed a step: its `run()` returned, or its lookup found what an earlier
   * attempt made (not when the step was found done already, nor for a step with OnceOptions.notProgress). The caller's progress: SyncService
   * starts the mirror's backoff afresh, as after any other step it saves.
   */
  onDone?: () => void;
  /**
   * The target's limiter. A step whose `run()` starts with a request through it
   * (OnceOptions.limitedRequest) takes that request's token in its start's Lua step, on a single
   * Redis (one round trip fewer before the call); a step found done takes none, a refused one writes
   * nothing (RateLimitedError, as acquire() throws it).
   */
  limiter?: PrepayLimiter;
}

/** One step of a `scoped` once while it runs: what its start, attempt and completion share. */
interface ScopedStep<T> {
  /** The step's intent key. */
  key: string;
  /** `scope:step`, as errors name it. */
  what: string;
  lease: MirrorLease;
  opts: ScopedOptions;
  recover: ((attempt: RecoverAttempt) => Promise<T | null>) | undefined;
  once: OnceOptions | undefined;
  /** The first request's token, taken in the first start's Lua step (a single Redis; see ScopedOptions.limiter). */
  prepay: ReturnType<PrepayLimiter['prepay']> | undefined;
  /** The first request's token, taken alongside the first start (a Cluster). */
  alongside: ReturnType<PrepayLimiter['take']> | undefined;
  /**
   * Whether the step's `started` record is known to be on a replica (WAIT on): set by a first
   * start whose WAIT went right behind it and answered; a later start (after a lookup found
   * nothing) is confirmed apart, before anything is sent.
   */
  confirmed: boolean;
  /** Whether run() was reached: a token taken alongside and not used by then is given back. */
  runReached: boolean;
}

export class IntentRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    /** Defaults: PLATFORM_TIMEOUT_MS's and PLATFORM_SETTLE_MS's (an attempt may send for 2 × 10 s, another run waits 30 s more). */
    private readonly timing: IntentTiming = intentTiming(10_000, 30_000),
    /**
     * The service's replica acknowledgement (REDIS_WAIT_REPLICAS, src/store/replica-ack.ts). Where it
     * is active, a step's `started` record must be on a replica before its platform call is made.
     */
    private readonly replicaAck?: Pick<ReplicaAck, 'active' | 'confirmKey' | 'nodeOf' | 'waitTurn'>,
  ) {
    defineRedisScripts(redis, {
      scLeaseAcquire: { numberOfKeys: 1, lua: LEASE_ACQUIRE_LUA },
      scLeaseRelease: { numberOfKeys: 1, lua: LEASE_RELEASE_LUA },
      scLeaseRenew: { numberOfKeys: 1, lua: LEASE_RENEW_LUA },
      scLeaseAcquireRead: { lua: LEASE_ACQUIRE_READ_LUA },
      scIntentStart: { numberOfKeys: 2, lua: INTENT_START_LUA },
      scIntentStartLimited: { numberOfKeys: 4, lua: INTENT_START_LUA },
      scIntentComplete: { numberOfKeys: 2, lua: INTENT_COMPLETE_LUA },
      scIntentAbandon: { numberOfKeys: 2, lua: INTENT_ABANDON_LUA },
      scIntentRestore: { numberOfKeys: 2, lua: INTENT_RESTORE_LUA },
    });
  }

  /**
   * How long after an attempt began its request may still take effect on the platform (two platform
   * timeouts, then the settle wait): what another run waits before it looks, or undoes.
   */
  get settledAfterMs(): number {
    return this.timing.attemptMs + this.timing.settleMs;
  }

  /**
   * Takes the mirror's lease for `token` (a BullMQ job token: a takeover run has a new one), or
   * reports how long the current holder keeps it. Taking it again with the same token renews it.
   */
  async acquire(partnerId: string, showId: string, targetId: string, token: string, ttlMs: number): Promise<{ lease: MirrorLease } | { heldForMs: number }> {
    const key = this.keys.mirrorLease(partnerId, showId, targetId);
    const wait = await this.redis.scLeaseAcquire(key, token, ttlMs);
    return wait === 0 ? { lease: { key, token, ttlMs } } : { heldForMs: wait };
  }

  /**
   * acquire() plus the run's first reads in the same Lua step (one round trip): the show's desired
   * registers (HGETALL, flat) and the mirror's json, read while the lease is already this run's.
   * With `target` (a field of another slot's hash: a single Redis only, never a Cluster) that field
   * is read in the same step too (`target`: its value or null); without it `target` is undefined.
   */
  async acquireAndRead(
    partnerId: string,
    showId: string,
    targetId: string,
    token: string,
    ttlMs: number,
    target?: { key: string; field: string },
  ): Promise<{ lease: MirrorLease; desired: string[]; mirror: string | null; target?: string | null; wrongType: string[] } | { heldForMs: number }> {
    const key = this.keys.mirrorLease(partnerId, showId, targetId);
    const desiredKey = this.keys.desired(partnerId, showId);
    const mirrorKey = this.keys.mirror(partnerId, showId, targetId);
    const [wait, desired, mirror, targetRaw, wrongType] = target
      ? await this.redis.scLeaseAcquireRead(4, key, desiredKey, mirrorKey, target.key, token, ttlMs, target.field)
      : await this.redis.scLeaseAcquireRead(3, key, desiredKey, mirrorKey, token, ttlMs);
    if (wait !== 0) return { heldForMs: wait };
    return { lease: { key, token, ttlMs }, desired: desired ?? [], mirror: mirror ?? null, ...(target ? { target: targetRaw ?? null } : {}), wrongType: wrongType ?? [] };
  }

  /**
   * Extends the lease while it is still this run's; false when it is not (another run holds it, or it
   * lapsed): the lease is lost then, and the caller marks it so (`lost`). Never takes a lease back.
   */
  async renew(lease: MirrorLease): Promise<boolean> {
    return (await this.redis.scLeaseRenew(lease.key, lease.token, lease.ttlMs)) === 1;
  }

  async release(lease: MirrorLease): Promise<void> {
    await this.redis.scLeaseRelease(lease.key, lease.token);
  }

  /**
   * WAIT (ReplicaAck.confirmKey) for the step's `started` record, just written, to reach a replica.
   * When it does not in time, the platform is not called: the step fails with a RetryableError (an
   * expected wait, not counted against the mirror's retry budget) and the record is forgotten, so the
   * retry starts afresh instead of waiting out an attempt that sent nothing. Not so when an earlier
   * attempt left the step started and its recovery lookup has just found nothing (`uncertain`): that
   * lookup may have lagged behind the earlier attempt's object (a list that does not show it yet), and
   * forgotten, the retry would send the request without looking and make a second one. The record
   * stays started then: the retry waits out the settle window and looks again.
   */
  private async confirmStarted(key: string, lease: MirrorLease, what: string, uncertain = false): Promise<void> {
    try {
      await this.replicaAck!.confirmKey(key);
    } catch (err) {
      await this.unconfirmed(key, lease, what, err, uncertain);
    }
  }

  /** A start no replica confirmed: forgotten (kept when `uncertain`, see confirmStarted), and the step fails with a RetryableError before anything is sent. */
  private async unconfirmed(key: string, lease: MirrorLease, what: string, err: unknown, uncertain = false): Promise<never> {
    if (!uncertain) await this.redis.scIntentAbandon(key, lease.key, lease.token).catch(() => undefined);
    throw new RetryableError(`storage could not confirm the start of ${what} on a replica (${(err as Error).message}); the platform was not called`, {
      reason: 'replica_unconfirmed',
      delayMs: REPLICA_RETRY_MS,
      waiting: true,
    });
  }

  /**
   * A step's first start where WAIT is on: INTENT_START on the connection of the master that holds
   * the step (ReplicaAck.nodeOf) with a WAIT right behind it on that connection (ReplicaAck.waitTurn:
   * one per master for the starts sent in one event-loop turn),
   * so the start and its confirmation take one round trip instead of two (and no wait for a shared
   * WAIT already on the wire). Replies come in order on a connection, so that WAIT covers the start;
   * after a NOSCRIPT the script's EVAL is sent again with a WAIT of its own behind it (evalOnNode).
   * `waitError`: the last WAIT's error ('none' when it answered or none was needed). Undefined when
   * the start could not go this way (no node known, or the node refused it: a slot it no longer
   * serves, a lost connection): the caller starts the ordinary way and confirms with confirmKey.
   * The script may have run on the node anyway: the caller's start then finds the step this run's
   * own, started, and the record it wrote over an earlier attempt's carries when an empty look may
   * be trusted (`lookAfterAt`), so that start replies the same wait as the first would have.
   */
  private async startConfirmed(key: string, numKeys: number, args: (string | number)[]): Promise<{ reply: StartReply; waitError: unknown } | undefined> {
    const ack = this.replicaAck!;
    const node = ack.nodeOf(key);
    if (!node) return undefined;
    let waitError: unknown = 'none';
    let sent = 0;
    const behind = (n: Redis): Promise<void> | undefined => {
      // Only the last WAIT counts (the one behind the EVAL after a NOSCRIPT covers the write).
      const mine = ++sent;
      waitError = 'none';
      return ack.waitTurn(n)?.then(
        () => undefined,
        (err: unknown) => {
          if (mine === sent) waitError = err;
        },
      );
    };
    try {
      const reply = await evalOnNode<StartReply>(node, INTENT_START_SCRIPT, numKeys, args, behind);
      return { reply, waitError };
    } catch {
      return undefined;
    }
  }

  private resultOf<T>(rec: IntentRecord): T {
    return (rec.resultSealed !== undefined ? JSON.parse(this.box.decrypt(rec.resultSealed)) : rec.result) as T;
  }

  /**
   * Writes the done records a run deferred (see `scoped`) on their own; LeaseLostError when the run
   * lost a step meanwhile.
   */
  async flush(lease: MirrorLease): Promise<void> {
    const pending = lease.pending ?? [];
    lease.pending = undefined;
    for (const p of pending) {
      const written = await this.redis.scIntentComplete(p.key, lease.key, lease.token, p.record, TTL_SEC, lease.ttlMs);
      if (written === 2) throw new IntentCorruptError(p.what, p.key, true);
      if (written !== 1) throw new LeaseLostError(`intent ${p.what}: another run took the mirror over before this one recorded its result`);
    }
  }

  /**
   * A `once` whose steps are scoped to (show, target, scope) and owned by `lease`. With
   * `deferComplete` (the pin step) a step's done record is not written on its own but kept on the
   * lease and written by the run's next mirror save, in the same Lua step as the mirror
   * (ShowRepository.saveMirror / saveMirrorFinal); the next step's start, the run's error path and its
   * end write it too if no save came first. The caller saves right after the call unless the step has
   * a recovery lookup (`pending[].recoverable`): then a crash before the record is written costs a
   * lookup, never a second call.
   */
  scoped(partnerId: string, showId: string, targetId: string, scope: string, lease: MirrorLease, opts: ScopedOptions = {}): Once {
    return async <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>, once?: OnceOptions): Promise<T> => {
      const what = `${scope}:${step}`;
      const key = this.keys.intent(partnerId, showId, targetId, what);
      assertHeld(lease, `intent ${what}`);
      if (lease.pending?.length) await this.flush(lease);
      // The first start takes the run's first request's token too, where it can (see ScopedOptions.limiter).
      const prepay = once?.limitedRequest && opts.limiter && !this.redis.isCluster ? opts.limiter.prepay() : undefined;
      // On a Cluster the limiter's keys are in another slot: that token is taken alongside the first
      // start instead (same event-loop turn, one round trip for both, not one more before the call).
      // It is the attempt's first request's (as `prepay`'s); a refusal fails the step before run()
      // (nothing sent: its started record is forgotten). A step that ends before run() (found done,
      // settling, lost, found by its lookup) gives it back, as the single Redis' start takes none then.
      const alongside = once?.limitedRequest && opts.limiter && this.redis.isCluster && !opts.findOnly ? opts.limiter.take() : undefined;
      alongside?.wait.catch(() => undefined); // (awaited before run(); unused when the step ends before that)
      return this.stepOnce({ key, what, lease, opts, recover, once, prepay, alongside, confirmed: false, runReached: false }, run);
    };
  }

  /**
   * The look-only companion of `scoped` (OpContext.recorded): a step's result when it is done (its
   * record, or a done record the run deferred to its next save), else undefined. One GET: no start
   * record written and deleted again, no replica WAIT, no limiter token (YouTube's look at its recorded
   * read went through `once` with a run() that refused at once: a start and its abandon, two writes).
   * An unreadable record throws IntentCorruptError, as the step's start does.
   */
  recorded(partnerId: string, showId: string, targetId: string, scope: string, lease: MirrorLease): Recorded {
    return async <T>(step: string): Promise<T | undefined> => {
      const what = `${scope}:${step}`;
      const key = this.keys.intent(partnerId, showId, targetId, what);
      assertHeld(lease, `intent ${what}`);
      const raw = lease.pending?.find((p) => p.key === key)?.record ?? (await this.redis.get(key));
      if (raw === null) return undefined;
      const rec = parsedRecord(raw); // null when unreadable: below
      if (rec?.status === 'done') return this.resultOf<T>(rec as IntentRecord);
      if (rec?.status === 'started') return undefined;
      throw new IntentCorruptError(what, key, false);
    };
  }

  /**
   * One step of `scoped`: started (or found done, or settling), looked up when an earlier run left it
   * started, else run as this run's attempt, and completed.
   */
  private async stepOnce<T>(s: ScopedStep<T>, run: () => Promise<T>): Promise<T> {
    try {
      const first = await this.startStep(s, true);
      if (first.state === 2) return this.doneResult<T>(s, first.raw);
      // What the step's platform requests carry must exist first (sent alongside the start, usually done by now).
      if (s.opts.before) await s.opts.before();
      let deadline = first.deadline;
      const startedAt = new Date(deadline - this.timing.attemptMs).toISOString();
      if (s.opts.findOnly) {
        // Look, never make: what an earlier attempt made is adopted, anything else is "not made" (the
        // started record this look wrote is forgotten, so nothing waits on it) once the look can be
        // trusted (lookedTooSoon).
        const found = first.state === 1 && s.recover ? (await this.lookUp(s, first.raw!)).found : null;
        if (found !== null) return this.completeStep(s, found, startedAt);
        if (first.state === 1 && s.recover) await this.lookedTooSoon(s, first);
        await this.redis.scIntentAbandon(s.key, s.lease.key, s.lease.token);
        throw new NotMadeError(`${s.what}: no earlier attempt made it`);
      }
      if (first.state === 1 && s.recover) {
        // Started by an earlier run that never recorded a result: the object may exist already, made
        // no earlier than the first of the attempts that left the step started.
        const looked = await this.lookUp(s, first.raw!);
        if (looked.found !== null) return this.completeStep(s, looked.found, startedAt);
        // Not listed, and the look came late enough to say so: this run's own attempt starts now (a
        // looking-up that took long must not shorten it).
        await this.lookedTooSoon(s, first);
        const again = looked.tookToken ? await this.startAfterLook(s) : await this.startStep(s);
        // The record this run wrote before the look must still be its own. A run that stalled past its
        // lease while it looked (the lease free again: its takeover done and released) would start
        // again on whatever that takeover left: its done result (2), or its own started record (1) —
        // sending then made the object a second time.
        if (again.state === 2) return this.doneResult<T>(s, again.raw);
        if (again.state === 1 && parsedRecord(again.raw)?.owner !== s.lease.token) {
          throw new LeaseLostError(`intent ${s.what}: another run started this step while this one looked it up`);
        }
        ({ deadline } = again);
      }
      // The `started` record must survive a failover before anything is sent: a promoted replica
      // without it would let a retry call the platform again without looking for what this call made.
      const uncertain = first.state === 1 && s.recover !== undefined;
      if (this.replicaAck?.active && !s.confirmed) await this.confirmStarted(s.key, s.lease, s.what, uncertain);
      return this.completeStep(s, await this.attempt(s, run, deadline, uncertain ? first.raw : undefined), startedAt);
    } finally {
      // The step ended before run() (found done, still settling, lost, unconfirmed, found by its
      // lookup): the token taken alongside its start goes back, as the single Redis' start takes none then.
      const alongside = s.alongside;
      if (alongside && !s.runReached) await alongside.wait.then((w) => (w === 0 ? alongside.giveBack() : undefined)).catch(() => undefined);
    }
  }

  /**
   * The result of the done record a start found ({2, record}), read as `recorded()` reads one: the start
   * script decodes it with cjson, which takes more than JSON does (a hex number, `nan`, `inf`), so a
   * record the script took as done may still not parse here. Unreadable, it is IntentCorruptError, as
   * everywhere else: as a SyntaxError it was an internal error, retried for ever the same way, and the
   * mirror never `failed` with the step's name and key for an operator.
   */
  private doneResult<T>(s: ScopedStep<T>, raw: string | undefined): T {
    const rec = parsedRecord(raw);
    if (rec?.status !== 'done') throw new IntentCorruptError(s.what, s.key, false);
    return this.resultOf<T>(rec as IntentRecord);
  }

  /**
   * The recovery lookup of a step an earlier attempt left started (`earlier`, its record, which this
   * run's start replaced with its own). A lookup that fails (a 5xx, a timeout, a reset connection, a
   * rate limit) sent nothing that makes an object, so the earlier record is put back before the error
   * goes on: kept, this run's start would have renewed `until`, and every later run waited out a whole
   * settle window again (2 × PLATFORM_TIMEOUT_MS + PLATFORM_SETTLE_MS) before it looked once more.
   */
  private async lookUp<T>(s: ScopedStep<T>, earlier: string): Promise<{ found: T | null; tookToken: boolean }> {
    // The token the start took (a single Redis: OnceOptions.limitedRequest) is the lookup's first
    // request's: the lookup is that run's request. It took one of its own, and at one request per
    // window it was refused every run (the start had the window's one token) and the step never
    // completed (Bambuser's add and highlight, Facebook's create and pin comment after a timeout).
    const prepaid: { prepaid?: string | undefined } = { prepaid: s.prepay?.keys[0] };
    try {
      const found = await (prepaid.prepaid === undefined ? s.recover!(attemptOf(earlier)) : withPrepaid(prepaid, () => s.recover!(attemptOf(earlier))));
      // withAttempt stores `prepaid` itself as the attempt (not a copy), and RedisRateLimiter.acquire
      // (takePrepaid) clears its `prepaid` when it uses the token: cleared here, the lookup took it.
      return { found, tookToken: s.prepay !== undefined && prepaid.prepaid === undefined };
    } catch (err) {
      if (stillOwned(s.lease)) await this.restoreEarlier(s, earlier).catch(() => undefined);
      throw err;
    }
  }

  /** Puts the record of the earlier attempt that left the step started (`earlier`) back in place of this run's start. */
  private restoreEarlier<T>(s: ScopedStep<T>, earlier: string): Promise<number> {
    return this.redis.scIntentRestore(s.key, s.lease.key, s.lease.token, earlier, TTL_SEC);
  }

  /**
   * After a look for what an earlier attempt made found nothing: returns when the look may be trusted,
   * else puts the earlier attempt's record back (the step stays uncertain, its window not renewed:
   * this run sent nothing) and throws a RetryableError (`intent_settling`, an expected wait) to look
   * again then. Trusted is a look made one settle window after the earlier attempt's own (`until` + 2 ×
   * settle): the first window bounds when a request still on its way may make the object, the second
   * gives the platform's list that long again to show an object made at the end of the first (a list
   * lags behind an insert: YouTube's broadcast list did). Both paths wait for it: a look-up-only step
   * (findOnly) would say "not made" and leave the object on the platform for good, a creating step
   * would make it a second time (a second broadcast). The start script computes the wait on Redis'
   * clock, as it does `until` (`first.lookAfterMs`, from before the look): this process' clock is
   * never compared with it (one ahead of Redis trusted the look too soon, one behind waited hours).
   * This run's own record (its start executed twice: a lost reply) waits for the `lookAfterAt` it
   * carries from the earlier attempt's; one without it (a step this run started afresh) for nothing.
   * The wait is checked after the look, not before it, on purpose: a look before the trust point
   * adopts what it finds at once (a write cut off at its deadline usually made its object); only one
   * that finds nothing is wasted, its token with it (at one request per window the trusted look then
   * waits for the next token: up to one window more). Checked first, the look would save that token
   * only when nothing was made, and every adoption would wait up to a settle window longer: not
   * better, only different (docs/operations.md, `rateLimit`).
   */
  private async lookedTooSoon<T>(s: ScopedStep<T>, first: { raw?: string; lookAfterMs: number }): Promise<void> {
    const waitMs = first.lookAfterMs;
    if (waitMs <= 0) return;
    await this.restoreEarlier(s, first.raw!);
    throw new RetryableError(`${s.what}: an earlier attempt's object may not be listed yet; looking for it again in ${Math.ceil(waitMs / 1000)} s`, {
      reason: 'intent_settling',
      delayMs: waitMs,
      waiting: true,
    });
  }

  /**
   * This run's own attempt after a look that found nothing, could be trusted (lookedTooSoon) and spent
   * the token the first start took: the write's token is taken with this start, in its Lua step, as a
   * first start's is. Refused, nothing was sent by this run, and the step is forgotten whatever the
   * limit: the look said that the earlier attempt made nothing, which it can no longer do (its `until`
   * + settle passed, and a list has had a settle window more to show it), so the next run sends the
   * request on its own token without a lookup, on the evidence of that look, as a run with tokens for
   * both sends it right after the look. Put back, the next run looked again on its token and could be
   * refused the write again: for ever at one request per window, and at more whenever other runs on the
   * account take the spare tokens, a request outside the steps spends one, or the look takes several.
   */
  private async startAfterLook<T>(s: ScopedStep<T>): Promise<{ state: number; raw?: string; deadline: number }> {
    s.prepay = s.opts.limiter!.prepay();
    try {
      return await this.startStep(s, true);
    } catch (err) {
      if (err instanceof RateLimitedError && stillOwned(s.lease)) await this.redis.scIntentAbandon(s.key, s.lease.key, s.lease.token);
      throw err;
    }
  }

  /** Marks the step started by this run; resolves to the local deadline of its attempt. */
  private async startStep<T>(s: ScopedStep<T>, withToken = false): Promise<{ state: number; raw?: string; deadline: number; lookAfterMs: number }> {
    const { key, lease, opts } = s;
    const { attemptMs, settleMs } = this.timing;
    // The deadline counts from before the script ran: it never ends later than the recorded `until`.
    const t0 = Date.now();
    const started = JSON.stringify({ status: 'started', owner: lease.token, startedAt: new Date(t0).toISOString() } satisfies IntentRecord);
    s.confirmed = false;
    const limited = withToken && s.prepay;
    const pipelined =
      withToken && this.replicaAck?.active && !opts.findOnly
        ? await this.startConfirmed(
            key,
            limited ? 4 : 2,
            limited
              ? [key, lease.key, limited.keys[0], limited.keys[1], lease.token, started, TTL_SEC, lease.ttlMs, attemptMs, settleMs, ...limited.args]
              : [key, lease.key, lease.token, started, TTL_SEC, lease.ttlMs, attemptMs, settleMs],
          )
        : undefined;
    const [state, raw, lookAfter] =
      pipelined !== undefined
        ? pipelined.reply
        : limited
          ? await this.redis.scIntentStartLimited(key, lease.key, limited.keys[0], limited.keys[1], lease.token, started, TTL_SEC, lease.ttlMs, attemptMs, settleMs, ...limited.args)
          : await this.redis.scIntentStart(key, lease.key, lease.token, started, TTL_SEC, lease.ttlMs, attemptMs, settleMs);
    // A step an earlier run left started (1) with a lookup is looked up first: its WAIT's answer
    // does not matter then (the lookup sends nothing that makes an object; a start after it is
    // confirmed apart). Otherwise this run's started record, with the WAIT behind it answered, is
    // on a replica; not answered, it is forgotten before anything is sent (as confirmStarted does).
    if (pipelined !== undefined && (state === 0 || (state === 1 && !s.recover))) {
      if (pipelined.waitError !== 'none') await this.unconfirmed(key, lease, s.what, pipelined.waitError);
      s.confirmed = true;
    }
    if (state === -1) throw new LeaseLostError(`intent ${s.what}: this run no longer owns the mirror`);
    if (state === 5) throw new IntentCorruptError(s.what, key, false);
    if (state === 4) throw opts.limiter!.refused(Math.max(1, Number(raw)));
    if (state === 3) {
      // Another run's attempt may still take effect on the platform: look for it only once it cannot.
      const waitMs = Math.max(1, Number(raw));
      throw new RetryableError(`an earlier attempt at ${s.what} may still reach the platform; looking for its result in ${Math.ceil(waitMs / 1000)} s`, {
        reason: 'intent_settling',
        delayMs: waitMs,
        waiting: true, // an expected wait: not a failure, so not counted against the retry budget
      });
    }
    return { state, ...(raw !== undefined ? { raw } : {}), deadline: t0 + attemptMs, lookAfterMs: Number(lookAfter ?? 0) };
  }

  /**
   * This run's attempt: `run()` within its deadline, its first request on the token its start took
   * (or one taken alongside). A step refused before its request went out (that token refused; or a
   * single-request step whose request was never sent) is forgotten, so a retry starts afresh.
   * When an earlier attempt left it started and the step has a lookup (`earlier`: this run's look,
   * trusted, found nothing), a refusal by the platform (YouTube's livePermissionBlocked after a
   * timed-out insert, a 429, a 401) keeps the step uncertain, the earlier attempt's record put back
   * (nothing was sent, so the window a later run waits before it looks is not renewed): the next run
   * looks once more first, a second chance against a list lagging past the trust point (forgotten,
   * such a lag made a second broadcast). A refusal by our own limiter (the token taken alongside a
   * Cluster's start, or a use case's block read before the request: refusedLocally) forgets it, as
   * startAfterLook forgets a write refused its token in the start, on the evidence of the same look:
   * put back, the next run looked again and could be refused the write again, whenever other shows
   * on the account took the tokens, and for ever at one request per window where the look takes a
   * token of its own (YouTube's broadcast insert: the look took the run's one).
   * A repeatable step (OnceOptions.repeatable) is forgotten on any error: sending it again does no harm.
   */
  private async attempt<T>(s: ScopedStep<T>, run: () => Promise<T>, deadline: number, earlier: string | undefined): Promise<T> {
    let tokenRefused = false;
    try {
      s.runReached = true;
      if (s.alongside) {
        const waitMs = await s.alongside.wait;
        if (waitMs > 0) {
          tokenRefused = true;
          throw s.opts.limiter!.refused(waitMs);
        }
      }
      // A token the first start took (or one taken alongside it) is the attempt's first request's (RedisRateLimiter.acquire).
      return await withAttemptDeadline(deadline, run, s.alongside ? s.alongside.key : s.prepay?.keys[0]);
    } catch (err) {
      // (Also a request never sent, whatever the error's class: the token refresh before it failed,
      // even for good, e.g. a dead refresh token; or the deadline had passed.)
      const refused = err instanceof RateLimitedError || err instanceof AuthExpiredError || (err instanceof TargetError && err.unsent);
      // A repeatable step (OnceOptions.repeatable) is forgotten on any error: sent again, it does no harm.
      const forget = tokenRefused || (s.once?.singleRequest && refused) || s.once?.repeatable;
      // Refused by our own limiter before anything left this process (the token taken alongside a
      // Cluster's start is refused with limiter.refused too).
      const unsentHere = refusedLocally(err);
      if (forget && stillOwned(s.lease)) {
        if (earlier === undefined || s.once?.repeatable || unsentHere) await this.redis.scIntentAbandon(s.key, s.lease.key, s.lease.token);
        else await this.restoreEarlier(s, earlier);
      }
      throw err;
    }
  }

  /** Records the step done with its result (now, or on the run's next mirror save with `deferComplete`). */
  private async completeStep<T>(s: ScopedStep<T>, result: T, startedAt: string): Promise<T> {
    const { key, lease, opts } = s;
    assertHeld(lease, `intent ${s.what}`);
    const done = JSON.stringify(
      (s.once?.resultInClear
        ? { status: 'done', owner: lease.token, result, startedAt }
        : { status: 'done', owner: lease.token, resultSealed: result === undefined ? undefined : this.box.encrypt(JSON.stringify(result)), startedAt }) satisfies IntentRecord,
    );
    if (opts.deferComplete) {
      (lease.pending ??= []).push({ key, record: done, recoverable: s.recover !== undefined, what: s.what });
    } else {
      const written = await this.redis.scIntentComplete(key, lease.key, lease.token, done, TTL_SEC, lease.ttlMs);
      if (written === 2) throw new IntentCorruptError(s.what, key, true);
      if (written !== 1) throw new LeaseLostError(`intent ${s.what}: another run took the mirror over before this one recorded its result`);
    }
    // (A step made again only because its earlier result is too old is no progress: OnceOptions.notProgress.)
    if (!s.once?.notProgress) opts.onDone?.();
    return result;
  }
}
