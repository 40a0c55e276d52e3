/**
 * The attribution ledger (docs/attribution.md "Ledger" and "Storage"). A partner's orders are spread
 * over LEDGER_BUCKETS buckets by a hash of the order ref; a bucket is one slot (`{lg:partner:n}`):
 *
 *   `…:o`          HASH ref → the order's packed record: the order, its attribution, running totals,
 *                  its refunds (also those that arrived before the order) and its append-only ledger
 *                  entries — one hash field per order instead of four keys (see "Storage" for bytes)
 *   `…:d:<day>`    SET of the refs created on that UTC day (edge days of a report, reconciliation)
 *   `…:a:<day>`    HASH of integer counters per (attributed, show, target, product, currency) of the
 *                  orders created that day: orders, gross, refunded (capped at the total), commission
 *   `…:s:<showId>` HASH of the same counters per (day, target, product, currency) for one show
 *   `…:days`       ZSET of the days that have orders
 *
 * Every order / refund / re-attribution is one Lua script on its bucket: it checks idempotency (order
 * stored / refund id stored / entry key present), appends the entries, updates the totals and moves
 * the order's contribution in the aggregates by the exact difference (HINCRBY, integers only), so
 * the aggregates always equal the sum over the orders, and two workers handling an order and its
 * refund at the same time are serialised by Redis. The scripts build the day / show key names from
 * the bucket's base name: they share the bucket's hash tag, hence its slot on a Cluster.
 *
 * Amounts are integers in minor units. Lua numbers are doubles, exact up to 2^53; `bps()` splits the
 * amount so that no intermediate product exceeds the amount itself (round-half-up, like applyBps).
 * Every number in a record is a string written with string.format('%d') (cjson would print doubles
 * with 14 significant digits).
 */
import { Cluster, type Redis, type Result } from 'ioredis';
import { amountOf, plus, type Amount } from '../domain/money.js';
import { legacyPlatformOrderRef, platformOrderRef, type Attribution, type LedgerEntry, type NormalizedOrder, type OrderSource, type UnattributedReason } from '../domain/order.js';
import { TurnBatcher } from '../lib/turn-batcher.js';
import { pcallInto } from './lua-batch.js';
import { evalOnNode, NodeBatches, nodeScript, notLocal } from './node-batch.js';
import type { Keys } from './keys.js';
import { defineRedisScripts, type RedisClient } from './redis.js';

/** Buckets per partner (slots a partner's ledger spreads over). Changing it needs a migration. */
export const LEDGER_BUCKETS = 32;
export const DAY_MS = 86_400_000;

const LUA_LIB = `
local DAY = 86400000
local function bps(a, r)
  if a <= 0 or r <= 0 then return 0 end
  local q = math.floor(a / 10000)
  local rem = a - q * 10000
  if rem < 0 then q = q - 1; rem = rem + 10000 end
  if rem >= 10000 then q = q + 1; rem = rem - 10000 end
  return q * r + math.floor((rem * r + 5000) / 10000)
end
local function int(x) return string.format('%d', x) end
local function num(v) if not v then return 0 end return tonumber(v) or 0 end

-- The step's arguments, set before each step (one per call, or one per op of a batch): K the
-- bucket's order hash, A the step's ARGV (A[1] the bucket's base name, A[2] the order ref).
local K, A, base, ref
local function load()
  local raw = redis.call('HGET', K, ref)
  if not raw then return {} end
  return cjson.decode(raw)
end
local function save(R) redis.call('HSET', K, ref, cjson.encode(R)) end

-- What the order adds to the aggregates (nil while only its refunds are stored).
local function contrib(R)
  if not R.g then return nil end
  local g = num(R.g)
  local rf = num(R.f)
  if rf > g then rf = g end
  local day = math.floor(num(R.t) / DAY)
  return { day = day, at = R.at, s = R.s or '',
    dims = cjson.encode({ R.at, R.s or '', R.tg or '', R.p or '', R.c }),
    sdims = cjson.encode({ int(day), R.tg or '', R.p or '', R.c }),
    o = 1, g = g, r = rf, c = num(R.a) - num(R.v) }
end
-- A counter is an int64 in Redis and a sum of amounts (each below 2^53) can pass it: after about 1024
-- orders of the largest amount on one counter. When HINCRBY refuses (overflow), 2^62 moves from the
-- counter to its carry field (the kind letter in capitals, counting 2^62s) before the increment, so the
-- step never fails and carry * 2^62 + counter is the exact sum (addCounter reads both).
local CARRY = { [1] = '4611686018427387904', [-1] = '-4611686018427387904' }
local function hinc(key, field, by)
  if by == 0 then return end
  local r = redis.pcall('HINCRBY', key, field, int(by))
  if type(r) == 'table' and r.err then
    local s = 1
    if by < 0 then s = -1 end
    redis.call('HINCRBY', key, field, CARRY[-s])
    redis.call('HINCRBY', key, string.upper(string.sub(field, 1, 1)) .. string.sub(field, 2), s)
    redis.call('HINCRBY', key, field, int(by))
  end
end
local function agg(x, sign)
  local dk = base .. ':a:' .. int(x.day)
  hinc(dk, 'o' .. x.dims, sign * x.o)
  hinc(dk, 'g' .. x.dims, sign * x.g)
  hinc(dk, 'r' .. x.dims, sign * x.r)
  hinc(dk, 'c' .. x.dims, sign * x.c)
  if x.at == '1' then
    local sk = base .. ':s:' .. x.s
    hinc(sk, 'o' .. x.sdims, sign * x.o)
    hinc(sk, 'g' .. x.sdims, sign * x.g)
    hinc(sk, 'r' .. x.sdims, sign * x.r)
    hinc(sk, 'c' .. x.sdims, sign * x.c)
  end
end
-- Moves the order's contribution from a to b (either may be nil) by the exact difference.
local function agg_move(a, b)
  if a and b and a.dims == b.dims and a.sdims == b.sdims and a.s == b.s and a.at == b.at then
    agg({ day = b.day, at = b.at, s = b.s, dims = b.dims, sdims = b.sdims, o = 0, g = b.g - a.g, r = b.r - a.r, c = b.c - a.c }, 1)
    return
  end
  if a then agg(a, -1) end
  if b then agg(b, 1) end
end

-- Entries: {kind a|r, key ('' = accrual:<ref>), amount, base, refundId or '', against p|a,
-- occurredAt ('' = the order's createdAt), recordedAt ms}. Appended only; seq = position.
local function append(R, kind, key, amount, b, refundId, against, occurredAt, recordedMs)
  local k = key
  if key == 'accrual:' .. ref then k = '' end
  if R.e then
    for _, x in ipairs(R.e) do if x[2] == k then return 0 end end
  else
    R.e = {}
  end
  table.insert(R.e, { kind, k, int(amount), int(b), refundId or '', against, occurredAt, recordedMs })
  return 1
end

-- Applies a refund to a stored order. The reversal keeps accrued - reversed equal to
-- bps(max(gross - refunded, 0), rate): it is the drop of that net commission, computed from the
-- cumulative refunded amount, so per-refund rounding never drifts and the net never goes below 0.
local function apply_refund(R, id, amount, currency, occurredAt, recordedMs, nowMs, holdMs)
  if R.c ~= currency then
    R.m = int(num(R.m) + 1)
    return 0
  end
  local gross = num(R.g)
  local before = num(R.f)
  local after = before + amount
  R.f = int(after)
  if R.at ~= '1' then return 0 end
  local rate = num(R.r)
  local rev = bps(math.max(gross - before, 0), rate) - bps(math.max(gross - after, 0), rate)
  if rev > 0 then
    local against = 'p'
    if nowMs >= num(R.t) + holdMs then against = 'a' end
    if append(R, 'r', 'reversal:' .. id, rev, amount, id, against, occurredAt, recordedMs) == 1 then
      R.v = int(num(R.v) + rev)
    end
  end
  return rev
end
local function nonempty(v) if v == '' then return nil end return v end
`;

/**
 * ARGV: 1 base, 2 ref, 3 createdAtMs, 4 currency, 5 gross, 6 attributed (1|0), 7 rateBps, 8 showId,
 * 9 targetId, 10 productId, 11 packed order, 12 packed attribution, 13 recordedAt ms, 14 nowMs,
 * 15 holdMs, 16 platform cumulative refunded (or -1), 17 its currency, 18 its occurredAt.
 * Returns {isNew, attributed, createdAtMs, showId, notified, accrued, currency, gross}.
 */
const APPLY_ORDER_FN = `
local function apply_order()
  local nowMs = tonumber(A[14])
  local holdMs = tonumber(A[15])
  local R = load()
  local before = contrib(R)
  local isNew = 0
  local changed = false
  if not R.g then
    isNew = 1
    changed = true
    R.t = A[3]; R.c = A[4]; R.g = A[5]; R.at = A[6]; R.r = A[7]
    R.s = nonempty(A[8]); R.tg = nonempty(A[9]); R.p = nonempty(A[10])
    R.o = A[11]; R.x = A[12]; R.ra = A[13]; R.f = '0'; R.a = '0'; R.v = '0'
    if R.at == '1' then
      local gross = tonumber(A[5])
      local acc = bps(gross, tonumber(A[7]))
      local against = 'p'
      if nowMs >= tonumber(A[3]) + holdMs then against = 'a' end
      if append(R, 'a', 'accrual:' .. ref, acc, gross, false, against, '', A[13]) == 1 then R.a = int(acc) end
    end
    -- refunds that arrived before their order, oldest first
    if R.rf then
      local list = {}
      for id, r in pairs(R.rf) do table.insert(list, { id = id, ms = tonumber(r[4]) or 0, r = r }) end
      table.sort(list, function(a, b)
        if a.ms == b.ms then return a.id < b.id end
        return a.ms < b.ms
      end)
      for _, x in ipairs(list) do apply_refund(R, x.id, tonumber(x.r[1]), x.r[2], x.r[3], A[13], nowMs, holdMs) end
    end
    local day = int(math.floor(tonumber(A[3]) / DAY))
    redis.call('SADD', base .. ':d:' .. day, ref)
    redis.call('ZADD', base .. ':days', day, day)
  end
  -- platforms report the cumulative refunded amount: apply what is new
  local floor = tonumber(A[16])
  if floor > 0 and A[17] ~= R.c then
    -- In another currency than the stored order's (the order was re-reported in another one): kept,
    -- not applied (no FX), under an id of its own. Under 'pf:<amount>' it took that id from the
    -- order's own currency, so the same cumulative refund reported right afterwards was skipped.
    local id = 'pf:' .. int(floor) .. ':' .. A[17]
    R.rf = R.rf or {}
    local legacy = R.rf['pf:' .. int(floor)]
    if not R.rf[id] and not (legacy and legacy[2] == A[17]) then
      R.rf[id] = { int(floor), A[17], A[18], '0' }
      apply_refund(R, id, floor, A[17], A[18], A[13], nowMs, holdMs)
      changed = true
    end
  elseif floor > 0 then
    local cur = num(R.f)
    if floor > cur then
      local id = 'pf:' .. int(floor)
      R.rf = R.rf or {}
      -- a record stored before that took the id in another currency
      if R.rf[id] and R.rf[id][2] ~= R.c then id = id .. ':' .. R.c end
      if not R.rf[id] then
        local amount = floor - cur
        R.rf[id] = { int(amount), A[17], A[18], '0' }
        apply_refund(R, id, amount, A[17], A[18], A[13], nowMs, holdMs)
        changed = true
      end
    end
  end
  if changed then
    agg_move(before, contrib(R))
    save(R)
  end
  return { isNew, R.at, R.t, R.s or '', R.n or '', R.a, R.c, R.g }
end
`;

/**
 * ARGV: 1 base, 2 ref, 3 refundId, 4 amount, 5 currency, 6 createdAt, 7 createdAtMs, 8 recordedAt ms,
 * 9 nowMs, 10 holdMs. Returns {isNew, reversal (or -1 while the order has not arrived)}.
 */
const APPLY_REFUND_FN = `
local function apply_refund_op()
  local R = load()
  local id = A[3]
  if R.rf and R.rf[id] then return { 0, 0 } end
  R.rf = R.rf or {}
  R.rf[id] = { A[4], A[5], A[6], A[7] }
  if not R.g then
    save(R)
    return { 1, -1 }
  end
  local before = contrib(R)
  local rev = apply_refund(R, id, tonumber(A[4]), A[5], A[6], A[8], tonumber(A[9]), tonumber(A[10]))
  agg_move(before, contrib(R))
  save(R)
  return { 1, rev }
end
`;

const STEP = 'K = KEYS[1]; A = ARGV; base = A[1]; ref = A[2]\n';
const APPLY_ORDER_LUA = `${LUA_LIB}${APPLY_ORDER_FN}${STEP}return apply_order()\n`;
const APPLY_REFUND_LUA = `${LUA_LIB}${APPLY_REFUND_FN}${STEP}return apply_refund_op()\n`;
/** Arguments of one order / refund step (the ARGV of APPLY_ORDER_LUA / APPLY_REFUND_LUA). */
const ORDER_ARGS = 18;
const REFUND_ARGS = 10;

/**
 * Orders and refunds in one call (one Redis): KEYS[i] the order hash of step i; ARGV per step, in
 * order: 'o' + the ${ORDER_ARGS} arguments of APPLY_ORDER_LUA, or 'r' + the ${REFUND_ARGS} of APPLY_REFUND_LUA.
 * Runs each step exactly as its own script would (same function, same arguments), one after the
 * other, each under pcall: a step that fails answers an error of its own and does not take the
 * other steps with it (what it wrote before failing stays, as for a failing script of its own).
 * One reply per step.
 */
const LEDGER_BATCH_LUA = `${LUA_LIB}${APPLY_ORDER_FN}${APPLY_REFUND_FN}
local out = {}
local p = 1
for i = 1, #KEYS do
  local kind = ARGV[p]
  local n = ${REFUND_ARGS}
  local step = apply_refund_op
  if kind == 'o' then n = ${ORDER_ARGS}; step = apply_order end
  local a = {}
  for j = 1, n do a[j] = ARGV[p + j] end
  p = p + 1 + n
  K = KEYS[i]; A = a; base = a[1]; ref = a[2]
  ${pcallInto('out[i]', 'step')}
end
return out
`;
/**
 * LEDGER_BATCH_LUA for one Cluster master (NodeBatches): the steps' order hashes are in several slots
 * of that master, so none is declared (a flagged script may use keys of any slot its node serves).
 * ARGV per step, in order: its order hash, then 'o' or 'r' and the step's arguments as above. A step
 * whose bucket the master does not serve fails on its first read, before it wrote anything (a step's
 * keys share its bucket's hash tag), with an error of its own (notLocal).
 */
const LEDGER_NODE_BATCH_LUA = `#!lua flags=allow-cross-slot-keys
${LUA_LIB}${APPLY_ORDER_FN}${APPLY_REFUND_FN}
local out = {}
local p = 1
local i = 0
while p <= #ARGV do
  i = i + 1
  local key = ARGV[p]
  local kind = ARGV[p + 1]
  local n = ${REFUND_ARGS}
  local step = apply_refund_op
  if kind == 'o' then n = ${ORDER_ARGS}; step = apply_order end
  local a = {}
  for j = 1, n do a[j] = ARGV[p + 1 + j] end
  p = p + 2 + n
  K = key; A = a; base = a[1]; ref = a[2]
  ${pcallInto('out[i]', 'step')}
end
return out
`;
const LEDGER_NODE_BATCH = nodeScript(LEDGER_NODE_BATCH_LUA);
/** Steps per LEDGER_BATCH_LUA call (bounds how long one call holds Redis: ≈ 25 µs per step). */
const STEPS_PER_CALL = 32;
/**
 * Batch calls in flight at once. Two, not one: while Redis runs one batch the worker takes the
 * replies of the other and gathers the next, so the two processes work at the same time instead of
 * taking turns (one call in flight made every batch wait for the whole previous round trip). In one
 * A/B series with the attribution bench's 64 orders in flight (machine shared, 2026-11-30), 32 × 2
 * used the least CPU per order (worker + Redis ≈ 10 % less than one call per step); 64 × 1, 24 × 3
 * and 16 × 4 used more.
 */
const MAX_IN_FLIGHT = 2;

/**
 * An order stored unattributed is attributed after all (the external-show index entry it needed
 * appeared later). Append-only: the existing entries stay as they are; the accrual the order would
 * have had is appended now, plus one reversal for what was refunded meanwhile, so accrued − reversed
 * is round-half-up(net × rate) as for any other order. Idempotent: a second call finds it attributed.
 * ARGV: 1 base, 2 ref, 3 packed attribution, 4 rateBps, 5 showId, 6 targetId, 7 productId,
 * 8 recordedAt ms, 9 recordedAt ISO, 10 nowMs, 11 holdMs.
 * Returns {1, accrued} when it attributed the order, {0, 0} when there was nothing to do.
 */
const REATTRIBUTE_LUA = `${LUA_LIB}
K = KEYS[1]; A = ARGV; base = A[1]; ref = A[2]
local R = load()
if not R.g or R.at == '1' then return { 0, 0 } end
local before = contrib(R)
local gross = num(R.g)
local rate = tonumber(ARGV[4])
local refunded = num(R.f)
R.ab = R.x
R.at = '1'; R.r = ARGV[4]; R.s = nonempty(ARGV[5]); R.tg = nonempty(ARGV[6]); R.p = nonempty(ARGV[7]); R.x = ARGV[3]; R.rt = ARGV[8]
local against = 'p'
if tonumber(ARGV[10]) >= num(R.t) + tonumber(ARGV[11]) then against = 'a' end
local acc = bps(gross, rate)
if append(R, 'a', 'accrual:' .. ref, acc, gross, false, against, '', ARGV[8]) == 1 then R.a = int(acc) end
local rev = acc - bps(math.max(gross - refunded, 0), rate)
if rev > 0 and append(R, 'r', 'reversal:reattributed:' .. int(refunded), rev, refunded, false, against, ARGV[9], ARGV[8]) == 1 then
  R.v = int(num(R.v) + rev)
end
agg_move(before, contrib(R))
save(R)
return { 1, acc }
`;

// Appends the flag to the record's JSON text instead of decoding and re-encoding it: a top-level
// key is the only place '"n":"1"' can occur unescaped (inside the packed order and attribution,
// which are JSON strings, every quote is escaped).
const MARK_NOTIFIED_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[2])
-- (only called for a stored order: a record never loses its order once it has one)
if not raw or string.find(raw, '"n":"1"', 1, true) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], string.sub(raw, 1, -2) .. ',"n":"1"}')
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scLedgerOrder(orders: string, ...args: (string | number)[]): Result<[number, string, string, string, string, string, string, string], Context>;
    scLedgerRefund(orders: string, ...args: (string | number)[]): Result<[number, number], Context>;
    scLedgerBatch(numKeys: number, ...args: (string | number)[]): Result<(unknown[] | Error)[], Context>;
    scLedgerReattribute(orders: string, ...args: (string | number)[]): Result<[number, number], Context>;
    scLedgerNotified(orders: string, base: string, ref: string): Result<number, Context>;
  }
}

function defineScripts(redis: RedisClient): void {
  defineRedisScripts(redis, {
    scLedgerOrder: { numberOfKeys: 1, lua: APPLY_ORDER_LUA },
    scLedgerRefund: { numberOfKeys: 1, lua: APPLY_REFUND_LUA },
    scLedgerBatch: { lua: LEDGER_BATCH_LUA },
    scLedgerReattribute: { numberOfKeys: 1, lua: REATTRIBUTE_LUA },
    scLedgerNotified: { numberOfKeys: 1, lua: MARK_NOTIFIED_LUA },
  });
}

export interface RefundInput {
  id: string;
  amount: number;
  currency: string;
  createdAt: string;
}

/** Cumulative refunded amount a platform reports for its order. */
export interface RefundedFloor {
  amount: number;
  currency: string;
  occurredAt: string;
}

export interface ApplyOrderResult {
  isNew: boolean;
  attributed: boolean;
  createdAtMs: number;
  showId: string | undefined;
  notified: boolean;
  /** The order's accrued commission (in `currency`). */
  accrued: number;
  /** The stored order's currency and total (the first stored order's: a duplicate with another one changes neither). */
  currency: string;
  gross: number;
}

/** One order's totals (what reports need per order). */
export interface OrderRow {
  ref: string;
  attributed: boolean;
  showId: string;
  targetId: string;
  productId: string;
  currency: string;
  gross: number;
  refunded: number;
  accrued: number;
  reversed: number;
  createdAtMs: number;
}

/**
 * A group of orders with the same (attributed, show, target, product, currency): from the
 * aggregates or from single orders. `refunded` is already capped at each order's total.
 */
export interface AggRow {
  attributed: boolean;
  showId: string;
  targetId: string;
  productId: string;
  currency: string;
  orders: number;
  /** Exact sums (numbers while safe, bigints past 2^53: the aggregates are int64 counters). */
  gross: Amount;
  refunded: Amount;
  commission: Amount;
  /** Commission of the orders still in the hold period / past it (fully reversed orders add 0). */
  pending: Amount;
  approved: Amount;
}

export interface StoredOrder extends OrderRow {
  order: NormalizedOrder;
  attribution: Attribution;
  rateBps: number;
  source: string;
  recordedAt: string;
  /** Refunds whose currency differs from the order's (stored, not applied). */
  mismatched: number;
  /** The order_attributed hook has told the partner about it (markNotified). */
  notified: boolean;
  refunds: (RefundInput & { applied: boolean })[];
  entries: LedgerEntry[];
}

/** The packed record (field names kept short: there may be ten million of them). */
interface Rec {
  g?: string;
  t?: string;
  c?: string;
  f?: string;
  a?: string;
  v?: string;
  at?: string;
  r?: string;
  s?: string;
  tg?: string;
  p?: string;
  o?: string;
  x?: string;
  ra?: string;
  n?: string;
  m?: string;
  rf?: Record<string, [string, string, string, string]>;
  e?: [string, string, string, string, string, string, string, string][];
}

const SOURCE_CODE: Record<OrderSource, string> = { partner: 'p', platform_webhook: 'w', platform_report: 'r' };
const SOURCE_OF: ReadonlyMap<string, OrderSource> = new Map(Object.entries(SOURCE_CODE).map(([k, v]) => [v, k as OrderSource]));

interface PackedOrder {
  s: string;
  i?: string;
  t?: string;
  k?: string;
  h?: string;
  x?: string;
  p?: string;
  c?: string;
  l?: 1 | NormalizedOrder['lines'];
}

/**
 * The order id a ref implies: the platform order id of `platformOrderRef(targetId, id)`, or of the
 * `legacyPlatformOrderRef` a record of a target with ':' in its id was stored under before; else the ref.
 */
function derivedOrderId(ref: string, targetId: string | undefined): string {
  if (targetId === undefined) return ref;
  const prefix = platformOrderRef(targetId, '');
  if (ref.startsWith(prefix)) return ref.slice(prefix.length);
  const legacy = legacyPlatformOrderRef(targetId, '');
  return legacy !== prefix && ref.startsWith(legacy) ? ref.slice(legacy.length) : ref;
}

/** The order minus what the record holds anyway (ref, total) or what follows from it. */
export function packOrder(o: NormalizedOrder): string {
  const x: PackedOrder = { s: SOURCE_CODE[o.source] };
  // left out only when unpackOrder derives it from the ref (a partner id may start with `@<target>:` too)
  if (derivedOrderId(o.ref, o.targetId) !== o.orderId) x.i = o.orderId;
  if (o.targetId !== undefined) x.t = o.targetId;
  if (o.clickId !== undefined) x.k = o.clickId;
  if (o.showId !== undefined) x.h = o.showId;
  if (o.externalShowId !== undefined) x.x = o.externalShowId;
  if (o.productId !== undefined) x.p = o.productId;
  const ms = Date.parse(o.createdAt);
  if (!Number.isFinite(ms) || new Date(ms).toISOString() !== o.createdAt) x.c = o.createdAt;
  const l = o.lines[0];
  const trivial = o.lines.length === 1 && l !== undefined && l.productId === o.productId && l.quantity === 1 && l.amount.amount === o.total.amount && l.amount.currency === o.total.currency;
  if (trivial) x.l = 1;
  else if (o.lines.length > 0) x.l = o.lines;
  return JSON.stringify(x);
}

function unpackOrder(ref: string, rec: Rec, total: { amount: number; currency: string }): NormalizedOrder {
  const x = JSON.parse(rec.o ?? '{"s":"p"}') as PackedOrder;
  const orderId = x.i ?? derivedOrderId(ref, x.t);
  const createdAt = x.c ?? new Date(Number(rec.t)).toISOString();
  const lines = x.l === 1 ? [{ productId: x.p ?? '', quantity: 1, amount: { amount: total.amount, currency: total.currency } }] : (x.l ?? []);
  const o: Record<string, unknown> = { ref, orderId, source: SOURCE_OF.get(x.s) ?? 'partner' };
  if (x.t !== undefined) o['targetId'] = x.t;
  if (x.k !== undefined) o['clickId'] = x.k;
  if (x.h !== undefined) o['showId'] = x.h;
  if (x.x !== undefined) o['externalShowId'] = x.x;
  if (x.p !== undefined) o['productId'] = x.p;
  o['createdAt'] = createdAt;
  o['total'] = total;
  o['lines'] = lines;
  return o as unknown as NormalizedOrder;
}

interface PackedAttribution {
  v?: 'c' | 'p';
  n?: string;
  r?: UnattributedReason;
}

/** The attribution minus what the record holds (show, target, product, rate) or the order has (click id). */
export function packAttribution(a: Attribution): string {
  const x: PackedAttribution = a.attributed ? { v: a.via === 'click' ? 'c' : 'p', ...(a.note !== undefined ? { n: a.note } : {}) } : { r: a.reason };
  return JSON.stringify(x);
}

function unpackAttribution(rec: Rec, clickId: string | undefined): Attribution {
  const x = JSON.parse(rec.x ?? '{}') as PackedAttribution;
  if (rec.at === '1') {
    const a: Record<string, unknown> = { attributed: true, via: x.v === 'p' ? 'platform_show' : 'click', showId: rec.s ?? '', targetId: rec.tg ?? '' };
    if (rec.p !== undefined) a['productId'] = rec.p;
    if (clickId !== undefined) a['clickId'] = clickId;
    a['rateBps'] = Number(rec.r ?? 0);
    if (x.n !== undefined) a['note'] = x.n;
    return a as unknown as Attribution;
  }
  return { attributed: false, reason: x.r ?? 'no_click', ...(clickId !== undefined ? { clickId } : {}) } as Attribution;
}

function toRow(ref: string, rec: Rec): OrderRow | null {
  if (rec.g === undefined) return null;
  return {
    ref,
    attributed: rec.at === '1',
    showId: rec.s ?? '',
    targetId: rec.tg ?? '',
    productId: rec.p ?? '',
    currency: rec.c ?? '',
    gross: Number(rec.g),
    refunded: Number(rec.f ?? 0),
    accrued: Number(rec.a ?? 0),
    reversed: Number(rec.v ?? 0),
    createdAtMs: Number(rec.t ?? 0),
  };
}

/**
 * Whether a row is kept; `orderTargetId()` is the target id stored with the order itself (undefined for a
 * partner order), read from the record only when called (the row's `targetId` is the attribution's).
 */
export type RowKeep = (row: OrderRow, orderTargetId: () => string | undefined) => boolean;

/** The row of a raw record when `keep` (if any) keeps it. */
function keptRow(ref: string, raw: string, keep: RowKeep | undefined): OrderRow | null {
  const rec = JSON.parse(raw) as Rec;
  const row = toRow(ref, rec);
  if (!row || !keep) return row;
  return keep(row, () => (JSON.parse(rec.o ?? '{}') as Partial<PackedOrder>).t) ? row : null;
}

/** A row with the target id stored with its order, for `getMany` (reads the packed order of every record). */
export function rowWithOrderTarget(ref: string, raw: string): (OrderRow & { orderTargetId: string | undefined }) | null {
  const rec = JSON.parse(raw) as Rec;
  const row = toRow(ref, rec);
  return row ? { ...row, orderTargetId: (JSON.parse(rec.o ?? '{}') as Partial<PackedOrder>).t } : null;
}

function toStored(ref: string, raw: string): StoredOrder | null {
  const rec = JSON.parse(raw) as Rec;
  const row = toRow(ref, rec);
  if (!row) return null;
  const order = unpackOrder(ref, rec, { amount: row.gross, currency: row.currency });
  const entries: LedgerEntry[] = (Array.isArray(rec.e) ? rec.e : []).map((e, i) => {
    const [kind, key, amount, base, refundId, against, occurredAt, recordedMs] = e;
    return {
      seq: i + 1,
      key: key === '' ? `accrual:${ref}` : key,
      kind: kind === 'a' ? 'accrual' : 'reversal',
      amount: Number(amount),
      currency: row.currency,
      base: Number(base),
      ...(refundId ? { refundId } : {}),
      against: against === 'a' ? 'approved' : 'pending',
      occurredAt: occurredAt === '' ? order.createdAt : occurredAt,
      recordedAt: new Date(Number(recordedMs)).toISOString(),
    };
  });
  const refunds = Object.entries(rec.rf && !Array.isArray(rec.rf) ? rec.rf : {})
    .map(([id, r]) => ({ id, amount: Number(r[0]), currency: r[1], createdAt: r[2], ms: Number(r[3]) }))
    .sort((a, b) => a.ms - b.ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(({ ms: _ms, ...r }) => ({ ...r, applied: r.currency === row.currency }));
  return {
    ...row,
    order,
    attribution: unpackAttribution(rec, order.clickId),
    rateBps: Number(rec.r ?? 0),
    source: order.source,
    recordedAt: new Date(Number(rec.ra ?? 0)).toISOString(),
    mismatched: Number(rec.m ?? 0),
    notified: rec.n === '1',
    refunds,
    entries,
  };
}

/** FNV-1a (32 bit) of the ref's UTF-8 bytes → bucket. */
export function ledgerBucket(ref: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(ref, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % LEDGER_BUCKETS;
}

const BUCKETS = Array.from({ length: LEDGER_BUCKETS }, (_, i) => i);
const SCAN_PAGE = 1000;

export interface DayRange {
  fromMs: number;
  toMs: number;
}

export const dayOf = (ms: number): number => Math.floor(ms / DAY_MS);

const CARRY = 1n << 62n;

/**
 * Adds counters `kind+dims` into the map (dims: the JSON array the scripts wrote). `G`/`R`/`C` are the
 * carries of `g`/`r`/`c` in units of 2^62 (the script's hinc, when a counter would pass int64).
 */
function addCounter(map: Map<string, { dims: string[]; o: number; g: Amount; r: Amount; c: Amount }>, field: string, value: string): void {
  const letter = field[0] ?? '';
  const dims = field.slice(1);
  let row = map.get(dims);
  if (!row) {
    row = { dims: JSON.parse(dims) as string[], o: 0, g: 0, r: 0, c: 0 };
    map.set(dims, row);
  }
  if (letter === 'o') row.o += Number(value);
  else if (letter === 'g' || letter === 'r' || letter === 'c') row[letter] = plus(row[letter], amountOf(value));
  else if (letter === 'G' || letter === 'R' || letter === 'C') {
    const kind = letter.toLowerCase() as 'g' | 'r' | 'c';
    row[kind] = plus(row[kind], BigInt(value) * CARRY);
  }
}

/** An order or refund step waiting for its batch (AttributionRepository.step). */
interface PendingStep {
  kind: 'o' | 'r';
  key: string;
  args: (string | number)[];
  resolve: (r: unknown[]) => void;
  reject: (e: unknown) => void;
}

export class AttributionRepository {
  /** On one Redis, steps go in batches (LEDGER_BATCH_LUA); a Cluster spreads the buckets over slots. */
  private readonly batched: boolean;
  /** On a Cluster, steps go in batches per master (LEDGER_NODE_BATCH_LUA); undefined on one Redis. */
  private readonly nodeSteps: NodeBatches<PendingStep, (unknown[] | Error)[]> | undefined;
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    defineScripts(redis);
    this.batched = !(redis instanceof Cluster);
    this.nodeSteps =
      redis instanceof Cluster
        ? new NodeBatches<PendingStep, (unknown[] | Error)[]>(redis, {
            maxPerCall: STEPS_PER_CALL,
            maxInFlight: MAX_IN_FLIGHT,
            send: (node, batch) => {
              const args: (string | number)[] = [];
              for (const b of batch) args.push(b.key, b.kind, ...b.args);
              return evalOnNode<(unknown[] | Error)[]>(node, LEDGER_NODE_BATCH, 0, args);
            },
            // A step whose bucket this master no longer serves goes again the ordinary way (it wrote nothing).
            deliver: (batch, replies) =>
              batch.forEach((b, i) => {
                const r = replies[i];
                if (Array.isArray(r)) b.resolve(r);
                else if (notLocal(r)) this.single(b.kind, b.key, b.args).then(b.resolve, b.reject);
                else b.reject(r ?? new Error('no reply for this ledger step'));
              }),
            // The call failed as a whole (connection lost, the node a replica now, no script flags):
            // each step goes again the ordinary way; a step that did run finds itself done (idempotent).
            fail: (batch) => {
              for (const b of batch) this.single(b.kind, b.key, b.args).then(b.resolve, b.reject);
            },
          })
        : undefined;
  }

  /**
   * Orders and refunds go to Redis in batches on one Redis: one LEDGER_BATCH_LUA call carries every
   * step waiting (up to STEPS_PER_CALL), so a batch costs one command, one script run and one reply
   * instead of one of each per order (the attribution worker runs many jobs at once, and the script's
   * own run and reply cost Redis about as much as a small order's writes). Each step still waits for
   * the reply that has its own result, and runs as its own script would: the same Lua function with
   * the same arguments, atomically (Redis runs one script at a time). A batch leaves at the end of the
   * event-loop turn its first step arrived in or, while MAX_IN_FLIGHT calls are waiting for their
   * replies, as soon as one of them has it (TurnBatcher). Steps of one order (its order, then its refund) are
   * awaited one after the other by their caller, so they never race inside or across batches more
   * than separate calls would. On a Cluster the steps waiting for one master go to it the same way,
   * one LEDGER_NODE_BATCH_LUA call per master's batch (nodeSteps: the buckets are in different slots).
   */
  private readonly steps = new TurnBatcher<PendingStep, (unknown[] | Error)[]>({
    maxPerCall: STEPS_PER_CALL,
    maxInFlight: MAX_IN_FLIGHT,
    send: (batch) => {
      const args: (string | number)[] = batch.map((b) => b.key);
      for (const b of batch) args.push(b.kind, ...b.args);
      return (this.redis as Redis).scLedgerBatch(batch.length, ...args);
    },
    deliver: (batch, replies) =>
      batch.forEach((b, i) => {
        const r = replies[i];
        if (Array.isArray(r)) b.resolve(r);
        else b.reject(r ?? new Error('no reply for this ledger step'));
      }),
    fail: (batch, err) => {
      for (const b of batch) b.reject(err);
    },
  });

  private step(kind: 'o' | 'r', key: string, args: (string | number)[]): Promise<unknown[]> {
    if (args.length !== (kind === 'o' ? ORDER_ARGS : REFUND_ARGS)) throw new Error(`ledger ${kind} step with ${args.length} arguments`);
    const nodeSteps = this.nodeSteps;
    if (nodeSteps !== undefined) {
      return new Promise<unknown[]>((resolve, reject) => {
        if (!nodeSteps.add(key, { kind, key, args, resolve, reject })) this.single(kind, key, args).then(resolve, reject);
      });
    }
    if (!this.batched) return this.single(kind, key, args);
    return new Promise<unknown[]>((resolve, reject) => this.steps.add({ kind, key, args, resolve, reject }));
  }

  /** One step as its own script (through the client: on a Cluster it follows MOVED). */
  private single(kind: 'o' | 'r', key: string, args: (string | number)[]): Promise<unknown[]> {
    return kind === 'o' ? this.redis.scLedgerOrder(key, ...args) : this.redis.scLedgerRefund(key, ...args);
  }

  private at(partnerId: string, ref: string): [string, string, string] {
    const b = ledgerBucket(ref);
    return [this.keys.ledgerOrders(partnerId, b), this.keys.ledgerBase(partnerId, b), ref];
  }

  /** Stores the order (first write wins), its accrual, the refunds that were waiting for it and a platform's cumulative refund. */
  async applyOrder(partnerId: string, order: NormalizedOrder, attribution: Attribution, opts: { nowMs: number; holdMs: number; refundedFloor?: RefundedFloor }): Promise<ApplyOrderResult> {
    const a = attribution;
    const floor = opts.refundedFloor;
    const [key, base, ref] = this.at(partnerId, order.ref);
    const r = (await this.step('o', key, [
      base,
      ref,
      Date.parse(order.createdAt),
      order.total.currency,
      order.total.amount,
      a.attributed ? '1' : '0',
      a.attributed ? a.rateBps : 0,
      a.attributed ? a.showId : '',
      a.attributed ? a.targetId : (order.targetId ?? ''),
      (a.attributed ? a.productId : order.productId) ?? '',
      packOrder(order),
      packAttribution(a),
      opts.nowMs,
      opts.nowMs,
      opts.holdMs,
      floor ? floor.amount : -1,
      floor?.currency ?? '',
      floor?.occurredAt ?? '',
    ])) as [number, string, string, string, string, string, string, string];
    return { isNew: r[0] === 1, attributed: r[1] === '1', createdAtMs: Number(r[2] ?? 0), showId: r[3] || undefined, notified: r[4] === '1', accrued: Number(r[5] ?? 0), currency: r[6] ?? '', gross: Number(r[7] ?? 0) };
  }

  /** Stores the refund (idempotent by id) and, when its order is there, appends the reversal. */
  async applyRefund(partnerId: string, orderRef: string, refund: RefundInput, opts: { nowMs: number; holdMs: number }): Promise<{ isNew: boolean; waitingForOrder: boolean; reversal: number }> {
    const [key, base, ref] = this.at(partnerId, orderRef);
    const r = (await this.step('r', key, [
      base,
      ref,
      refund.id,
      refund.amount,
      refund.currency,
      refund.createdAt,
      Date.parse(refund.createdAt),
      opts.nowMs,
      opts.nowMs,
      opts.holdMs,
    ])) as [number, number];
    return { isNew: r[0] === 1, waitingForOrder: r[1] === -1, reversal: Math.max(r[1], 0) };
  }

  /** Attributes an order that was stored unattributed (new ledger entries only); null when there was nothing to do, else the accrual. */
  async reattribute(partnerId: string, ref: string, a: Extract<Attribution, { attributed: true }>, opts: { nowMs: number; holdMs: number }): Promise<{ accrued: number } | null> {
    const r = await this.redis.scLedgerReattribute(
      ...this.at(partnerId, ref),
      packAttribution(a),
      a.rateBps,
      a.showId,
      a.targetId,
      a.productId ?? '',
      opts.nowMs,
      new Date(opts.nowMs).toISOString(),
      opts.nowMs,
      opts.holdMs,
    );
    return r[0] === 1 ? { accrued: Number(r[1]) } : null;
  }

  async markNotified(partnerId: string, ref: string): Promise<void> {
    await this.redis.scLedgerNotified(...this.at(partnerId, ref));
  }

  /** The hash that holds the record of the order `ref` (field `ref`). */
  orderKey(partnerId: string, ref: string): string {
    return this.keys.ledgerOrders(partnerId, ledgerBucket(ref));
  }

  /**
   * The currency of the order stored under `ref` (its total's), or undefined while the ledger has no
   * order there (nothing, or only refunds that arrived before it). One HGET and a parse of the record's
   * top level: the Cluster path's edge reads it for every order.refunded (IngestService.refundCurrency;
   * a single Redis reads it inside the store call, INGEST_ORDER_ONE_LUA).
   */
  async orderCurrency(partnerId: string, ref: string): Promise<string | undefined> {
    const raw = await this.redis.hget(this.orderKey(partnerId, ref), ref);
    if (!raw) return undefined;
    const rec = JSON.parse(raw) as Rec;
    return rec.g !== undefined && typeof rec.c === 'string' ? rec.c : undefined;
  }

  /** Whether the ledger holds a refund `refundId` of the order `ref` (applied or not; also one that came before its order). */
  async hasRefund(partnerId: string, ref: string, refundId: string): Promise<boolean> {
    const raw = await this.redis.hget(this.orderKey(partnerId, ref), ref);
    if (!raw) return false;
    const rec = JSON.parse(raw) as Rec;
    return rec.rf !== undefined && !Array.isArray(rec.rf) && Object.hasOwn(rec.rf, refundId);
  }

  async get(partnerId: string, ref: string): Promise<StoredOrder | null> {
    const raw = await this.redis.hget(this.keys.ledgerOrders(partnerId, ledgerBucket(ref)), ref);
    return raw ? toStored(ref, raw) : null;
  }

  /** The days (UTC, since the epoch) that have orders created in [fromMs, toMs), ascending. */
  async days(partnerId: string, range: DayRange): Promise<number[]> {
    const min = Number.isFinite(range.fromMs) ? String(dayOf(range.fromMs)) : '-inf';
    const max = Number.isFinite(range.toMs) ? String(dayOf(range.toMs - 1)) : '+inf';
    const per = await Promise.all(BUCKETS.map((b) => this.redis.zrangebyscore(this.keys.ledgerDays(partnerId, b), min, max)));
    return [...new Set(per.flat().map(Number))].sort((a, b) => a - b);
  }

  /**
   * The stored orders created on `day` within [fromMs, toMs), one page (≤ SCAN_PAGE per bucket) at a
   * time: memory stays bounded by a page whatever the day holds.
   */
  async *ordersOfDay(partnerId: string, day: number, range: DayRange = { fromMs: -Infinity, toMs: Infinity }, refFilter?: (ref: string) => boolean): AsyncGenerator<StoredOrder[]> {
    yield* this.dayPages(partnerId, day, range, refFilter, toStored);
  }

  private async *dayPages<T extends OrderRow>(partnerId: string, day: number, range: DayRange, refFilter: ((ref: string) => boolean) | undefined, parse: (ref: string, raw: string) => T | null): AsyncGenerator<T[]> {
    for (const b of BUCKETS) {
      const setKey = this.keys.ledgerDay(partnerId, b, day);
      const hashKey = this.keys.ledgerOrders(partnerId, b);
      let cursor = '0';
      do {
        const [next, found] = await this.redis.sscan(setKey, cursor, 'COUNT', SCAN_PAGE);
        cursor = next;
        const refs = refFilter ? found.filter(refFilter) : found;
        if (refs.length === 0) continue;
        const raws = await this.redis.hmget(hashKey, ...refs);
        const page: T[] = [];
        raws.forEach((raw, i) => {
          const s = raw ? parse(refs[i]!, raw) : null;
          if (s && s.createdAtMs >= range.fromMs && s.createdAtMs < range.toMs) page.push(s);
        });
        if (page.length > 0) yield page;
      } while (cursor !== '0');
    }
  }

  /** Every stored order created in [fromMs, toMs), page by page (day by day, bucket by bucket). */
  async *scan(partnerId: string, range: DayRange = { fromMs: -Infinity, toMs: Infinity }, refFilter?: (ref: string) => boolean): AsyncGenerator<StoredOrder[]> {
    for (const day of await this.days(partnerId, range)) yield* this.ordersOfDay(partnerId, day, range, refFilter);
  }

  /**
   * Reconciliation's bookkeeping in Redis instead of the process: marks `refs` as named by the report
   * of run `mark` (a set per bucket, `…:rc:<mark>`, expiring after a day) and returns the totals of
   * those stored (and kept by `keep`), each with whether an earlier page had named it already. One
   * pipeline per bucket.
   */
  async lookupAndMark(partnerId: string, refs: string[], mark: string, keep?: RowKeep): Promise<{ row: OrderRow; named: boolean }[]> {
    const out: { row: OrderRow; named: boolean }[] = [];
    await Promise.all(
      [...this.byBucket(refs)].map(async ([b, list]) => {
        const markKey = this.keys.ledgerReconMark(partnerId, b, mark);
        const res = await this.redis.pipeline().smismember(markKey, ...list).hmget(this.keys.ledgerOrders(partnerId, b), ...list).sadd(markKey, ...list).pexpire(markKey, DAY_MS).exec();
        if (!res) throw new Error('pipeline discarded');
        for (const [err] of res) if (err) throw err;
        const seen = res[0]![1] as number[];
        const raws = res[1]![1] as (string | null)[];
        raws.forEach((raw, i) => {
          const row = raw ? keptRow(list[i]!, raw, keep) : null;
          if (row) out.push({ row, named: seen[i] === 1 });
        });
      }),
    );
    return out;
  }

  /**
   * The totals of the stored orders created in the range whose ref passes `refFilter`, whose row `keep`
   * (if any) keeps and that run `mark` did not name, page by page.
   */
  async *scanUnmarked(partnerId: string, range: DayRange, refFilter: (ref: string) => boolean, mark: string, keep?: RowKeep): AsyncGenerator<OrderRow[]> {
    for (const day of await this.days(partnerId, range)) {
      for (const b of BUCKETS) {
        const setKey = this.keys.ledgerDay(partnerId, b, day);
        const markKey = this.keys.ledgerReconMark(partnerId, b, mark);
        let cursor = '0';
        do {
          const [next, found] = await this.redis.sscan(setKey, cursor, 'COUNT', SCAN_PAGE);
          cursor = next;
          const refs = found.filter(refFilter);
          if (refs.length === 0) continue;
          const named = await this.redis.smismember(markKey, ...refs);
          const unnamed = refs.filter((_, i) => named[i] !== 1);
          if (unnamed.length === 0) continue;
          const raws = await this.redis.hmget(this.keys.ledgerOrders(partnerId, b), ...unnamed);
          const page: OrderRow[] = [];
          raws.forEach((raw, i) => {
            const row = raw ? keptRow(unnamed[i]!, raw, keep) : null;
            if (row && row.createdAtMs >= range.fromMs && row.createdAtMs < range.toMs) page.push(row);
          });
          if (page.length > 0) yield page;
        } while (cursor !== '0');
      }
    }
  }

  /** Drops run `mark`'s bookkeeping. */
  async dropMarks(partnerId: string, mark: string): Promise<void> {
    await Promise.all(BUCKETS.map((b) => this.redis.del(this.keys.ledgerReconMark(partnerId, b, mark))));
  }

  private byBucket(refs: string[]): Map<number, string[]> {
    const byBucket = new Map<number, string[]>();
    for (const ref of refs) {
      const b = ledgerBucket(ref);
      const list = byBucket.get(b) ?? [];
      list.push(ref);
      byBucket.set(b, list);
    }
    return byBucket;
  }

  /** The stored orders among `refs` (one HMGET per bucket), by ref. */
  async getMany<T extends OrderRow = StoredOrder>(partnerId: string, refs: string[], parse: (ref: string, raw: string) => T | null = toStored as unknown as (ref: string, raw: string) => T | null): Promise<Map<string, T>> {
    const byBucket = this.byBucket(refs);
    const out = new Map<string, T>();
    await Promise.all(
      [...byBucket].map(async ([b, list]) => {
        const raws = await this.redis.hmget(this.keys.ledgerOrders(partnerId, b), ...list);
        raws.forEach((raw, i) => {
          const s = raw ? parse(list[i]!, raw) : null;
          if (s) out.set(list[i]!, s);
        });
      }),
    );
    return out;
  }

  /** Partner-wide aggregates of whole days, summed over the buckets. */
  async dayAggregates(partnerId: string, days: number[]): Promise<AggRow[]> {
    const map = new Map<string, { dims: string[]; o: number; g: Amount; r: Amount; c: Amount }>();
    for (const day of days) {
      const all = await Promise.all(BUCKETS.map((b) => this.redis.hgetall(this.keys.ledgerDayAgg(partnerId, b, day))));
      for (const h of all) for (const [f, v] of Object.entries(h)) addCounter(map, f, v);
    }
    const out: AggRow[] = [];
    for (const { dims, o, g, r, c } of map.values()) {
      if (o === 0) continue;
      const [at, showId, targetId, productId, currency] = dims as [string, string, string, string, string];
      out.push({ attributed: at === '1', showId, targetId, productId, currency, orders: o, gross: g, refunded: r, commission: c, pending: 0, approved: 0 });
    }
    return out;
  }

  /** One show's aggregates per day: day → rows (summed over the buckets). */
  async showAggregates(partnerId: string, showId: string): Promise<Map<number, AggRow[]>> {
    const map = new Map<string, { dims: string[]; o: number; g: Amount; r: Amount; c: Amount }>();
    const all = await Promise.all(BUCKETS.map((b) => this.redis.hgetall(this.keys.ledgerShowAgg(partnerId, b, showId))));
    for (const h of all) for (const [f, v] of Object.entries(h)) addCounter(map, f, v);
    const byDay = new Map<number, AggRow[]>();
    for (const { dims, o, g, r, c } of map.values()) {
      if (o === 0) continue;
      const [day, targetId, productId, currency] = dims as [string, string, string, string];
      const rows = byDay.get(Number(day)) ?? [];
      rows.push({ attributed: true, showId, targetId, productId, currency, orders: o, gross: g, refunded: r, commission: c, pending: 0, approved: 0 });
      byDay.set(Number(day), rows);
    }
    return byDay;
  }
}
