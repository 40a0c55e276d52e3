/**
 * The attribution ledger (docs/attribution.md). Per order, in the order's slot: a state hash (the order, its
 * attribution, running totals), a refunds hash (refund id → refund, also those that arrived before
 * their order), the append-only ledger list and its idempotency-key hash. Every order / refund is
 * applied by one Lua script that checks idempotency, appends the entries and updates the totals, so
 * two workers handling an order and its refund at the same time are serialised by Redis.
 *
 * Amounts are integers in minor units. Lua numbers are doubles, exact up to 2^53; `bps()` splits the
 * amount so that no intermediate product exceeds the amount itself (round-half-up, like applyBps).
 * Numbers are written with string.format('%d') (Lua's default formatting switches to exponents).
 */
import type { Result } from 'ioredis';
import type { Attribution, LedgerEntry, NormalizedOrder } from '../domain/order.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

const LUA_LIB = `
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

-- KEYS: 1 state, 2 refunds, 3 ledger, 4 ledger keys
local function append(kind, key, amount, base, currency, occurredAt, recordedAt, refundId, against)
  if redis.call('HEXISTS', KEYS[4], key) == 1 then return 0 end
  local seq = redis.call('LLEN', KEYS[3]) + 1
  local e = '{"seq":' .. int(seq) .. ',"key":' .. cjson.encode(key) .. ',"kind":"' .. kind .. '","amount":' .. int(amount) ..
    ',"currency":' .. cjson.encode(currency) .. ',"base":' .. int(base)
  if refundId then e = e .. ',"refundId":' .. cjson.encode(refundId) end
  e = e .. ',"against":"' .. against .. '","occurredAt":' .. cjson.encode(occurredAt) .. ',"recordedAt":' .. cjson.encode(recordedAt) .. '}'
  redis.call('RPUSH', KEYS[3], e)
  redis.call('HSET', KEYS[4], key, seq)
  return 1
end

-- Applies a refund to an existing order. The reversal keeps accrued - reversed equal to
-- bps(max(gross - refunded, 0), rate): it is the drop of that net commission, computed from the
-- cumulative refunded amount, so per-refund rounding never drifts and the net never goes below 0.
local function apply_refund(id, amount, currency, occurredAt, recordedAt, nowMs, holdMs)
  local st = redis.call('HMGET', KEYS[1], 'currency', 'gross', 'refunded', 'attributed', 'rate', 'createdAtMs')
  if st[1] ~= currency then
    redis.call('HINCRBY', KEYS[1], 'mismatched', 1)
    return 0
  end
  local gross = num(st[2])
  local before = num(st[3])
  local after = before + amount
  redis.call('HSET', KEYS[1], 'refunded', int(after))
  if st[4] ~= '1' then return 0 end
  local rate = num(st[5])
  local rev = bps(math.max(gross - before, 0), rate) - bps(math.max(gross - after, 0), rate)
  if rev > 0 then
    local against = 'pending'
    if nowMs >= num(st[6]) + holdMs then against = 'approved' end
    if append('reversal', 'reversal:' .. id, rev, amount, currency, occurredAt, recordedAt, id, against) == 1 then
      redis.call('HINCRBY', KEYS[1], 'reversed', int(rev))
    end
  end
  return rev
end
`;

/**
 * ARGV: 1 ref, 2 createdAt, 3 createdAtMs, 4 currency, 5 gross, 6 attributed (1|0), 7 rateBps,
 * 8 showId, 9 targetId, 10 productId, 11 source, 12 order json, 13 attribution json, 14 recordedAt,
 * 15 nowMs, 16 holdMs, 17 platform cumulative refunded (or -1), 18 its currency, 19 its occurredAt.
 * Returns {isNew, attributed, createdAtMs, showId, notified}.
 */
const APPLY_ORDER_LUA = `${LUA_LIB}
local nowMs = tonumber(ARGV[15])
local holdMs = tonumber(ARGV[16])
local isNew = 0
if redis.call('HEXISTS', KEYS[1], 'gross') == 0 then
  isNew = 1
  redis.call('HSET', KEYS[1], 'ref', ARGV[1], 'createdAt', ARGV[2], 'createdAtMs', ARGV[3], 'currency', ARGV[4], 'gross', ARGV[5],
    'attributed', ARGV[6], 'rate', ARGV[7], 'showId', ARGV[8], 'targetId', ARGV[9], 'productId', ARGV[10], 'source', ARGV[11],
    'order', ARGV[12], 'attribution', ARGV[13], 'recordedAt', ARGV[14], 'refunded', '0', 'accrued', '0', 'reversed', '0', 'mismatched', '0')
  if ARGV[6] == '1' then
    local gross = tonumber(ARGV[5])
    local acc = bps(gross, tonumber(ARGV[7]))
    local against = 'pending'
    if nowMs >= tonumber(ARGV[3]) + holdMs then against = 'approved' end
    if append('accrual', 'accrual:' .. ARGV[1], acc, gross, ARGV[4], ARGV[2], ARGV[14], false, against) == 1 then
      redis.call('HSET', KEYS[1], 'accrued', int(acc))
    end
  end
  -- refunds that arrived before their order, oldest first
  local raw = redis.call('HGETALL', KEYS[2])
  local list = {}
  for i = 1, #raw, 2 do
    local r = cjson.decode(raw[i + 1])
    r.id = raw[i]
    r.ms = tonumber(r.createdAtMs) or 0
    table.insert(list, r)
  end
  table.sort(list, function(a, b)
    if a.ms == b.ms then return a.id < b.id end
    return a.ms < b.ms
  end)
  for _, r in ipairs(list) do
    apply_refund(r.id, tonumber(r.amount), r.currency, r.createdAt, ARGV[14], nowMs, holdMs)
  end
end
-- platforms report the cumulative refunded amount: apply what is new
local floor = tonumber(ARGV[17])
if floor > 0 then
  local cur = num(redis.call('HGET', KEYS[1], 'refunded'))
  if floor > cur then
    local id = 'pf:' .. int(floor)
    local amount = floor - cur
    if redis.call('HSETNX', KEYS[2], id, '{"amount":"' .. int(amount) .. '","currency":' .. cjson.encode(ARGV[18]) .. ',"createdAt":' .. cjson.encode(ARGV[19]) .. ',"createdAtMs":"0"}') == 1 then
      apply_refund(id, amount, ARGV[18], ARGV[19], ARGV[14], nowMs, holdMs)
    end
  end
end
local st = redis.call('HMGET', KEYS[1], 'attributed', 'createdAtMs', 'showId', 'notified')
return {isNew, st[1], st[2], st[3], st[4]}
`;

/**
 * ARGV: 1 refundId, 2 refund json (amount as a string), 3 amount, 4 currency, 5 createdAt,
 * 6 recordedAt, 7 nowMs, 8 holdMs. Returns {isNew, reversal (or -1 while the order has not arrived)}.
 */
const APPLY_REFUND_LUA = `${LUA_LIB}
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return {0, 0} end
if redis.call('HEXISTS', KEYS[1], 'gross') == 0 then return {1, -1} end
local rev = apply_refund(ARGV[1], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
return {1, rev}
`;

/**
 * An order stored unattributed is attributed after all (the external-show index entry it needed
 * appeared later). Append-only: the existing entries stay as they are; the accrual the order would
 * have had is appended now, plus one reversal for what was refunded meanwhile, so accrued − reversed
 * is round-half-up(net × rate) as for any other order. Idempotent: a second call finds it attributed.
 * ARGV: 1 attribution json, 2 rateBps, 3 showId, 4 targetId, 5 productId, 6 recordedAt, 7 nowMs, 8 holdMs.
 * Returns 1 when it attributed the order, 0 when there was nothing to do.
 */
const REATTRIBUTE_LUA = `${LUA_LIB}
local st = redis.call('HMGET', KEYS[1], 'gross', 'attributed', 'ref', 'currency', 'createdAt', 'createdAtMs', 'refunded', 'attribution')
if not st[1] or st[2] == '1' then return 0 end
local gross = num(st[1])
local rate = tonumber(ARGV[2])
local refunded = num(st[7])
redis.call('HSET', KEYS[1], 'attributed', '1', 'rate', ARGV[2], 'showId', ARGV[3], 'targetId', ARGV[4], 'productId', ARGV[5],
  'attribution', ARGV[1], 'attributionBefore', st[8] or '', 'reattributedAt', ARGV[6])
local against = 'pending'
if tonumber(ARGV[7]) >= num(st[6]) + tonumber(ARGV[8]) then against = 'approved' end
local acc = bps(gross, rate)
if append('accrual', 'accrual:' .. st[3], acc, gross, st[4], st[5], ARGV[6], false, against) == 1 then
  redis.call('HSET', KEYS[1], 'accrued', int(acc))
end
local rev = acc - bps(math.max(gross - refunded, 0), rate)
if rev > 0 and append('reversal', 'reversal:reattributed:' .. int(refunded), rev, refunded, st[4], ARGV[6], ARGV[6], false, against) == 1 then
  redis.call('HINCRBY', KEYS[1], 'reversed', int(rev))
end
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scAttrReattribute(state: string, refunds: string, ledger: string, ledgerKeys: string, ...args: (string | number)[]): Result<number, Context>;
    scAttrOrder(
      state: string,
      refunds: string,
      ledger: string,
      ledgerKeys: string,
      ...args: (string | number)[]
    ): Result<[number, string | null, string | null, string | null, string | null], Context>;
    scAttrRefund(state: string, refunds: string, ledger: string, ledgerKeys: string, ...args: (string | number)[]): Result<[number, number], Context>;
  }
}

function defineScripts(redis: RedisClient): void {
  if (typeof (redis as unknown as { scAttrOrder?: unknown }).scAttrOrder === 'function') return;
  redis.defineCommand('scAttrOrder', { numberOfKeys: 4, lua: APPLY_ORDER_LUA });
  redis.defineCommand('scAttrRefund', { numberOfKeys: 4, lua: APPLY_REFUND_LUA });
  redis.defineCommand('scAttrReattribute', { numberOfKeys: 4, lua: REATTRIBUTE_LUA });
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
}

/** What reports read per order (one HMGET). */
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

export interface StoredOrder extends OrderRow {
  order: NormalizedOrder;
  attribution: Attribution;
  rateBps: number;
  source: string;
  recordedAt: string;
  /** Refunds whose currency differs from the order's (stored, not applied). */
  mismatched: number;
  refunds: (RefundInput & { applied: boolean })[];
  entries: LedgerEntry[];
}

const ROW_FIELDS = ['attributed', 'showId', 'targetId', 'productId', 'currency', 'gross', 'refunded', 'accrued', 'reversed', 'createdAtMs'] as const;
const PAGE = 1000;
const CONCURRENT_READS = 500;

function toRow(ref: string, v: (string | null)[]): OrderRow | null {
  if (v[5] === null || v[5] === undefined) return null;
  const n = (i: number): number => Number(v[i] ?? 0);
  return { ref, attributed: v[0] === '1', showId: v[1] ?? '', targetId: v[2] ?? '', productId: v[3] ?? '', currency: v[4] ?? '', gross: n(5), refunded: n(6), accrued: n(7), reversed: n(8), createdAtMs: n(9) };
}

export class AttributionRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    defineScripts(redis);
  }

  private slot(partnerId: string, ref: string): [string, string, string, string] {
    const k = this.keys;
    return [k.orderState(partnerId, ref), k.orderRefunds(partnerId, ref), k.orderLedger(partnerId, ref), k.orderLedgerKeys(partnerId, ref)];
  }

  /** Stores the order (first write wins), its accrual, the refunds that were waiting for it and a platform's cumulative refund. */
  async applyOrder(partnerId: string, order: NormalizedOrder, attribution: Attribution, opts: { nowMs: number; holdMs: number; refundedFloor?: RefundedFloor }): Promise<ApplyOrderResult> {
    const a = attribution;
    const floor = opts.refundedFloor;
    const r = await this.redis.scAttrOrder(
      ...this.slot(partnerId, order.ref),
      order.ref,
      order.createdAt,
      Date.parse(order.createdAt),
      order.total.currency,
      order.total.amount,
      a.attributed ? '1' : '0',
      a.attributed ? a.rateBps : 0,
      a.attributed ? a.showId : '',
      a.attributed ? a.targetId : (order.targetId ?? ''),
      (a.attributed ? a.productId : order.productId) ?? '',
      order.source,
      JSON.stringify(order),
      JSON.stringify(a),
      new Date(opts.nowMs).toISOString(),
      opts.nowMs,
      opts.holdMs,
      floor ? floor.amount : -1,
      floor?.currency ?? '',
      floor?.occurredAt ?? '',
    );
    return { isNew: r[0] === 1, attributed: r[1] === '1', createdAtMs: Number(r[2] ?? 0), showId: r[3] || undefined, notified: r[4] === '1' };
  }

  /** Stores the refund (idempotent by id) and, when its order is there, appends the reversal. */
  async applyRefund(partnerId: string, orderRef: string, refund: RefundInput, opts: { nowMs: number; holdMs: number }): Promise<{ isNew: boolean; waitingForOrder: boolean; reversal: number }> {
    const json = JSON.stringify({ amount: String(refund.amount), currency: refund.currency, createdAt: refund.createdAt, createdAtMs: String(Date.parse(refund.createdAt)) });
    const r = await this.redis.scAttrRefund(
      ...this.slot(partnerId, orderRef),
      refund.id,
      json,
      refund.amount,
      refund.currency,
      refund.createdAt,
      new Date(opts.nowMs).toISOString(),
      opts.nowMs,
      opts.holdMs,
    );
    return { isNew: r[0] === 1, waitingForOrder: r[1] === -1, reversal: Math.max(r[1], 0) };
  }

  /** Attributes an order that was stored unattributed (new ledger entries only); false when there was nothing to do. */
  async reattribute(partnerId: string, ref: string, a: Extract<Attribution, { attributed: true }>, opts: { nowMs: number; holdMs: number }): Promise<boolean> {
    const r = await this.redis.scAttrReattribute(
      ...this.slot(partnerId, ref),
      JSON.stringify(a),
      a.rateBps,
      a.showId,
      a.targetId,
      a.productId ?? '',
      new Date(opts.nowMs).toISOString(),
      opts.nowMs,
      opts.holdMs,
    );
    return r === 1;
  }

  async markNotified(partnerId: string, ref: string): Promise<void> {
    await this.redis.hset(this.keys.orderState(partnerId, ref), 'notified', '1');
  }

  /** Report indexes; idempotent (ZADD of the same member and score), so written again on every retry. */
  async index(partnerId: string, ref: string, createdAtMs: number, showId: string | undefined): Promise<void> {
    await Promise.all([
      this.redis.zadd(this.keys.partnerOrders(partnerId), createdAtMs, ref),
      showId ? this.redis.zadd(this.keys.showOrders(partnerId, showId), createdAtMs, ref) : Promise.resolve(0),
    ]);
  }

  /** Rows of the orders created in [fromMs, toMs), from the partner index or a show's index. */
  async rows(partnerId: string, range: { fromMs: number; toMs: number }, showId?: string): Promise<OrderRow[]> {
    const key = showId ? this.keys.showOrders(partnerId, showId) : this.keys.partnerOrders(partnerId);
    const min = Number.isFinite(range.fromMs) ? String(range.fromMs) : '-inf';
    const max = Number.isFinite(range.toMs) ? `(${range.toMs}` : '+inf';
    const out: OrderRow[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const refs = await this.redis.zrangebyscore(key, min, max, 'LIMIT', offset, PAGE);
      // Concurrent HMGETs are auto-pipelined by ioredis (per node on a cluster: the slots differ).
      for (let i = 0; i < refs.length; i += CONCURRENT_READS) {
        const chunk = refs.slice(i, i + CONCURRENT_READS);
        const vals = await Promise.all(chunk.map((ref) => this.redis.hmget(this.keys.orderState(partnerId, ref), ...ROW_FIELDS)));
        vals.forEach((v, j) => {
          const row = toRow(chunk[j]!, v);
          if (row) out.push(row);
        });
      }
      if (refs.length < PAGE) break;
    }
    return out;
  }

  /** All refs in the partner index (for invariant checks and reconciliation). */
  async refs(partnerId: string, range: { fromMs: number; toMs: number } = { fromMs: -Infinity, toMs: Infinity }): Promise<string[]> {
    const min = Number.isFinite(range.fromMs) ? String(range.fromMs) : '-inf';
    const max = Number.isFinite(range.toMs) ? `(${range.toMs}` : '+inf';
    return this.redis.zrangebyscore(this.keys.partnerOrders(partnerId), min, max);
  }

  async get(partnerId: string, ref: string): Promise<StoredOrder | null> {
    const [state, refunds, ledger] = this.slot(partnerId, ref);
    const [h, rf, entries] = await Promise.all([this.redis.hgetall(state), this.redis.hgetall(refunds), this.redis.lrange(ledger, 0, -1)]);
    if (!h['gross']) return null;
    const row = toRow(ref, ROW_FIELDS.map((f) => h[f] ?? null))!;
    const reversedIds = new Set<string>();
    const parsed = entries.map((e) => JSON.parse(e) as LedgerEntry);
    for (const e of parsed) if (e.refundId) reversedIds.add(e.refundId);
    return {
      ...row,
      order: JSON.parse(h['order'] ?? '{}') as NormalizedOrder,
      attribution: JSON.parse(h['attribution'] ?? '{}') as Attribution,
      rateBps: Number(h['rate'] ?? 0),
      source: h['source'] ?? '',
      recordedAt: h['recordedAt'] ?? '',
      mismatched: Number(h['mismatched'] ?? 0),
      refunds: Object.entries(rf).map(([id, raw]) => {
        const r = JSON.parse(raw) as { amount: string; currency: string; createdAt: string };
        return { id, amount: Number(r.amount), currency: r.currency, createdAt: r.createdAt, applied: r.currency === row.currency };
      }),
      entries: parsed,
    };
  }
}
