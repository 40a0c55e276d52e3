/** Reconciliation runs and the discrepancies they auto-healed (so a re-run reports the same). */
import type { PendingAudit } from './audit.repository.js';
import type { Keys } from './keys.js';
import type { Result } from 'ioredis';
import { defineRedisScripts, type RedisClient } from './redis.js';
import { zrevPage, type PageStart } from './zset-page.js';
import { isPlainObject, parseStored, readStored, unlessUnreadable, type OnUnreadable } from './stored-record.js';

export const RECON_STATUSES = ['queued', 'running', 'completed', 'failed'] as const;
export type ReconStatus = (typeof RECON_STATUSES)[number];
/** The contract's discrepancy kinds (§2). */
export const DISCREPANCY_KINDS = ['missing_in_ledger', 'missing_in_platform', 'amount_mismatch', 'status_mismatch'] as const;
export type DiscrepancyKind = (typeof DISCREPANCY_KINDS)[number];

/**
 * Why money could not be compared (the contract's kinds name what differs, not why): `currency_mismatch`
 * when the platform reports the order (or its refund) in another currency than the ledger (or the
 * order) has, `invalid_currency` when the platform's currency is not an ISO 4217 currency. Amounts in
 * different currencies are never compared nor added up (no FX), and such an order is never healed.
 * `invalid_order`: the platform reports what the ledger does not store (a negative total or refund,
 * an order time more than a year ahead, an order id over the length kept) or an order of its report the
 * adapter could not read (PlatformOrder.unreadable: TikTok sku lines in two currencies, a Whatnot or
 * Bambuser amount, currency or date that cannot be read); never healed either.
 */
export const DISCREPANCY_REASONS = ['currency_mismatch', 'invalid_currency', 'invalid_order'] as const;
export type DiscrepancyReason = (typeof DISCREPANCY_REASONS)[number];

export interface Discrepancy {
  kind: DiscrepancyKind;
  /** Set when the money was not compared (see DiscrepancyReason). */
  reason?: DiscrepancyReason;
  targetId: string;
  orderId: string;
  detail: string;
  /** The ledger was corrected (a new entry): the platform's order or refund was added. */
  healed: boolean;
}

/** A heal as remembered: `runId` the run that made it (absent on heals remembered before it was stored). */
export type RememberedHeal = Discrepancy & { runId?: string };

export interface ReconTargetSummary {
  targetId: string;
  platform: string;
  platformOrders: number;
  /**
   * Of platformOrders, those another target on the same platform account counts (src/reconcile/account-orders.ts):
   * neither compared nor healed under this target.
   */
  otherTargetOrders: number;
  ledgerOrders: number;
  discrepancies: number;
  healed: number;
  error?: string;
}

export interface ReconciliationRecord {
  id: string;
  partnerId: string;
  trigger: 'manual' | 'scheduled';
  status: ReconStatus;
  from: string;
  to: string;
  createdAt: string;
  startedAt?: string;
  completedAt?: string;
  summary: { targets: ReconTargetSummary[]; discrepancies: number; healed: number; skippedTargets: string[] } | null;
  discrepancies: Discrepancy[];
  error?: string;
}

const TTL_SEC = 400 * 86_400;

/**
 * A stored record, read in the current shape: records are kept TTL_SEC (400 days), and a target summary
 * stored before `otherTargetOrders` was counted lacks it: none then (every order was compared under
 * the target), so 0, and the API answers one shape (the field is required in its schema).
 */
function decodeRecord(raw: string, id: string, key: string): ReconciliationRecord {
  const r = parseStored<ReconciliationRecord>('reconciliation', id, key, raw, isRunRecord);
  for (const t of r.summary?.targets ?? []) t.otherTargetOrders ??= 0;
  return r;
}

/** A stored run of the shape its readers use (JSON null or a number threw TypeErrors in every list it was on). */
function isRunRecord(v: unknown): boolean {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['partnerId'] === 'string' && typeof v['status'] === 'string' && typeof v['createdAt'] === 'string' && (v['summary'] === undefined || v['summary'] === null || isPlainObject(v['summary']));
}

// KEYS[1] the account's aliases, KEYS[2] its version (one slot); ARGV[1] the credential account. A new alias counts the version up.
const ALIAS_LUA = `
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) end
return 0
`;
/**
 * KEYS[1] the account's claims of one day; ARGV: platform order id, claimant, TTL seconds, a stale
 * claimant to replace ('' none: a claim held by anyone stands). The target the order is claimed by: the
 * one already there, else ARGV[2] (claimed now). One step, so two runs claiming together get the same answer.
 */
const CLAIM_LUA = `
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and held ~= ARGV[4] then return held end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ARGV[2]
`;

/**
 * A platform webhook to a target its process read alone on the account (AccountOrders.webhookOrders):
 * KEYS[1] the account's version, KEYS[2..] its claims of the orders' days (one slot). ARGV: the version
 * the process read, the claimant, TTL seconds, then (claims key index, platform order id) pairs. When the
 * version is still the one read (no target joined the account since), each order no one claimed is
 * claimed for the claimant, in the same step: {1, its claimant per order}. Else {0, the version}, nothing
 * written. A target that joins later counts the version up first, so its run finds these claims.
 */
const CLAIM_ALONE_LUA = `
local version = redis.call('GET', KEYS[1]) or ''
if version ~= ARGV[1] then return {0, version} end
local out = {1}
for i = 4, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  local held = redis.call('HGET', key, ARGV[i + 1])
  if not held then
    redis.call('HSET', key, ARGV[i + 1], ARGV[2])
    redis.call('EXPIRE', key, ARGV[3])
    held = ARGV[2]
  end
  out[#out + 1] = held
end
return out
`;

/**
 * `SET key value <ARGV[2..]> NX GET` of Redis 7.0 (NX with GET is refused on 6.2, our documented
 * minimum, with "ERR syntax error"): KEYS[1] the key, ARGV[1] the value, ARGV[2..] SET's other options
 * (e.g. EX seconds). The value held (nothing written), else nil (written), as SET … NX GET answers.
 */
const SET_NX_GET_LUA = `
local prev = redis.call('GET', KEYS[1])
if prev then return prev end
redis.call('SET', KEYS[1], unpack(ARGV))
return false
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scSetNxGet(key: string, value: string, ...options: (string | number)[]): Result<string | null, Context>;
    scReconClaimAlone(...args: (string | number)[]): Result<(string | number)[], Context>;
    scReconClaim(key: string, orderId: string, claimant: string, ttlSec: number, stale: string): Result<string, Context>;
    scReconAlias(aliases: string, version: string, alias: string): Result<number, Context>;
  }
}

// KEYS[1] the record, ARGV[1] the new JSON, ARGV[2] TTL seconds. Returns the stored record when it has
// finished (not written), else nil (written). A record that cannot be decoded is overwritten, as save() would.
const SAVE_UNLESS_FINISHED_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and type(doc) == 'table' and (doc['status'] == 'completed' or doc['status'] == 'failed') then return cur end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
`;
/**
 * KEYS: the partner's run index, its pending audit entries (same slot). ARGV: createdAt ms, run id, the
 * request's pending audit id and entry ('' for none; HSETNX: the first request's entry stays).
 */
const INDEX_LUA = `
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) end
return 1
`;
const DAY_MS = 86_400_000;
/** Legacy heals moved into their day buckets per script call. */
const MIGRATE_BATCH = 500;

/**
 * Moves heals of the legacy per-partner hash (KEYS[1]) into their day buckets (KEYS[2..]), each only
 * while the legacy field still holds the value read (compare-and-move: a heal an old-version process
 * wrote meanwhile stays for the next pass). A bucket's own entry, written by this code after the legacy
 * hash stopped growing, is newer and is kept (HSETNX). ARGV: ttl, then (bucket index, field, value)
 * triples. All keys share the partner's slot. Returns the fields moved.
 */
const MIGRATE_LEGACY_HEALS_LUA = `
local moved = 0
for i = 2, #ARGV, 3 do
  local bucket = KEYS[tonumber(ARGV[i])]
  local field, value = ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', KEYS[1], field) == value then
    redis.call('HSETNX', bucket, field, value)
    redis.call('EXPIRE', bucket, ARGV[1])
    redis.call('HDEL', KEYS[1], field)
    moved = moved + 1
  end
end
return moved
`;

/** KEYS[1] the partner's scheduled-to; ARGV: ms, ttl. Sets it unless it holds a later (or equal) time. */
const ADVANCE_SCHEDULED_TO_LUA = `
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur == nil or cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 0
`;

export class ReconcileRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {
    defineRedisScripts(redis, { scReconClaim: { numberOfKeys: 1, lua: CLAIM_LUA }, scReconAlias: { numberOfKeys: 2, lua: ALIAS_LUA }, scReconClaimAlone: { lua: CLAIM_ALONE_LUA }, scSetNxGet: { numberOfKeys: 1, lua: SET_NX_GET_LUA } });
  }

  /** The targets registered on a platform account (PartnerRepository.registerReportAccount), as registered. */
  async accountTargets(accountId: string): Promise<{ partnerId: string; targetId: string }[]> {
    const fields = await this.redis.hkeys(this.keys.reconAccountTargets(accountId));
    return fields.flatMap((f) => {
      const parsed: unknown = JSON.parse(f);
      return Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'string' ? [{ partnerId: parsed[0], targetId: parsed[1] }] : [];
    });
  }

  /**
   * Who a platform order of the account is (now) claimed by: an earlier claimant, else `claimant` (an
   * opaque owner key, account-orders.ts). A claim held by `stale` (a claimant that left the account) is
   * taken over; '' takes over none.
   */
  async claimAccountOrder(accountId: string, orderId: string, createdAtMs: number, claimant: string, stale = ''): Promise<string> {
    return this.redis.scReconClaim(this.keys.reconAccountClaims(accountId, Math.floor(createdAtMs / DAY_MS)), orderId, claimant, TTL_SEC, stale);
  }

  /**
   * The orders of a webhook to a target read alone on the account (its registry at `version`): each
   * claimed for `claimant` unless claimed already, in one step with a compare of the version. The
   * claimant of each order (in order), or undefined when the version changed (nothing claimed).
   */
  async claimAccountOrdersAlone(accountId: string, version: string, claimant: string, orders: readonly { orderId: string; createdAtMs: number }[]): Promise<string[] | undefined> {
    const days = [...new Set(orders.map((o) => Math.floor(o.createdAtMs / DAY_MS)))];
    const keys = [this.keys.reconAccountVersion(accountId), ...days.map((d) => this.keys.reconAccountClaims(accountId, d))];
    const pairs = orders.flatMap((o) => [days.indexOf(Math.floor(o.createdAtMs / DAY_MS)) + 2, o.orderId]);
    const r = await this.redis.scReconClaimAlone(keys.length, ...keys, version, claimant, TTL_SEC, ...pairs);
    return r[0] === 1 ? (r.slice(1) as string[]) : undefined;
  }

  /** The claimant of a platform order of the account, or null when none claimed it. */
  async accountOrderClaimant(accountId: string, orderId: string, createdAtMs: number): Promise<string | null> {
    return this.redis.hget(this.keys.reconAccountClaims(accountId, Math.floor(createdAtMs / DAY_MS)), orderId);
  }

  /** The platform account a credential account moved to (AccountOrders.learn), or null when not (yet) known. */
  async accountMovedTo(accountId: string): Promise<string | null> {
    return this.redis.get(this.keys.reconAccountMovedTo(accountId));
  }

  /**
   * `from` (a credential account) is `to` (the platform account): `from` joins `to`'s aliases first, then
   * names `to` (two slots, two steps in that order: whoever reads the move finds the alias). A move is
   * for good: `from` moved already (to another account) stays there, and `to` does not keep it as an
   * alias (a move lost to one made at the same time is undone). Returns the account `from` is now.
   */
  async moveAccount(from: string, to: string): Promise<string> {
    const movedTo = this.keys.reconAccountMovedTo(from);
    const first = await this.redis.get(movedTo);
    if (first !== null) return first;
    await this.redis.scReconAlias(this.keys.reconAccountAliases(to), this.keys.reconAccountVersion(to), from);
    const was = await this.redis.scSetNxGet(movedTo, to);
    if (was === null || was === to) return to;
    await this.redis.srem(this.keys.reconAccountAliases(to), from);
    return was;
  }

  /** The account's registry version (reconAccountVersion): '' before its first change. */
  async accountVersion(accountId: string): Promise<string> {
    return (await this.redis.get(this.keys.reconAccountVersion(accountId))) ?? '';
  }

  /** The credential accounts that moved to the account (moveAccount), sorted. */
  async accountAliases(accountId: string): Promise<string[]> {
    return (await this.redis.smembers(this.keys.reconAccountAliases(accountId))).sort();
  }

  async accountsBackfilled(): Promise<boolean> {
    return (await this.redis.exists(this.keys.reconAccountsBackfilled())) === 1;
  }
  async markAccountsBackfilled(): Promise<void> {
    await this.redis.set(this.keys.reconAccountsBackfilled(), String(Date.now()));
  }

  async save(r: ReconciliationRecord): Promise<void> {
    await this.redis.set(this.keys.reconciliation(r.id), JSON.stringify(r), 'EX', TTL_SEC);
  }

  /**
   * Stores the run unless the stored one has finished (`completed` or `failed`), in one script (a compare
   * on the stored status): a run that finished meanwhile (its job ran again after a stall, the failed
   * handler ran twice) is never overwritten. Null when written, else the stored (finished) record.
   */
  async saveUnlessFinished(r: ReconciliationRecord): Promise<ReconciliationRecord | null> {
    const prev = (await this.redis.eval(SAVE_UNLESS_FINISHED_LUA, 1, this.keys.reconciliation(r.id), JSON.stringify(r), TTL_SEC)) as string | null;
    return prev === null ? null : decodeRecord(prev, r.id, this.keys.reconciliation(r.id));
  }

  /** Stores a new record unless one with its id exists: the stored one, or null when this one was stored. */
  async saveNew(r: ReconciliationRecord): Promise<ReconciliationRecord | null> {
    const prev = await this.redis.scSetNxGet(this.keys.reconciliation(r.id), JSON.stringify(r), 'EX', TTL_SEC);
    return prev === null ? null : decodeRecord(prev, r.id, this.keys.reconciliation(r.id));
  }

  /** Lists the run under its partner (written when the run is requested; runs older than TTL_SEC drop out). */
  async index(r: ReconciliationRecord, audit?: PendingAudit): Promise<void> {
    const key = this.keys.partnerReconciliations(r.partnerId);
    // The request's audit entry is recorded pending (AuditRepository.settle) with the run's listing, one
    // script in the partner's slot: a run listed (and so run, see recoverQueued) has its entry.
    await this.redis.eval(INDEX_LUA, 2, key, this.keys.auditPending({ partnerId: r.partnerId }), Date.parse(r.createdAt), r.id, audit?.id ?? '', audit?.entry ?? '');
    await this.redis.zremrangebyscore(key, '-inf', Date.now() - TTL_SEC * 1000);
  }

  /** Whether the run is in its partner's list (a request that died between the save and the listing left it out). */
  async isListed(r: ReconciliationRecord): Promise<boolean> {
    return (await this.redis.zscore(this.keys.partnerReconciliations(r.partnerId), r.id)) !== null;
  }

  /**
   * The partner's runs, newest first, from a stable cursor (src/store/zset-page.ts: runs requested
   * while a client pages shift nothing); records are read in one MGET-like round. `next` marks the
   * page's last run when more follow.
   */
  async list(partnerId: string, start: PageStart, limit: number, onUnreadable?: OnUnreadable): Promise<{ items: ReconciliationRecord[]; total: number; next: { score: number; member: string } | null }> {
    const page = await zrevPage(this.redis, this.keys.partnerReconciliations(partnerId), start, limit);
    // A run that does not read is left out (counted, `onUnreadable`): before, it failed every page it was on.
    const recs = await Promise.all(page.items.map((i) => unlessUnreadable(this.get(i.member), onUnreadable)));
    const last = page.items.at(-1);
    return { items: recs.filter((r): r is ReconciliationRecord => r !== null), total: page.total, next: page.more && last ? last : null };
  }

  /** The run; null when none. One that does not read is a StoredRecordCorruptError. */
  async get(id: string): Promise<ReconciliationRecord | null> {
    const key = this.keys.reconciliation(id);
    const raw = await readStored('reconciliation', id, key, () => this.redis.get(key));
    return raw ? decodeRecord(raw, id, key) : null;
  }

  /** The end (ms) of the latest scheduled period requested for the partner; null before its first scheduled run. */
  async scheduledTo(partnerId: string): Promise<number | null> {
    const raw = await this.redis.get(this.keys.reconScheduledTo(partnerId));
    const ms = raw === null ? NaN : Number(raw);
    return Number.isSafeInteger(ms) ? ms : null;
  }

  /** Moves scheduledTo forward to `toMs`, never back (ticks processed late or out of order), in one script. */
  async advanceScheduledTo(partnerId: string, toMs: number): Promise<void> {
    await this.redis.eval(ADVANCE_SCHEDULED_TO_LUA, 1, this.keys.reconScheduledTo(partnerId), String(toMs), TTL_SEC);
  }

  /**
   * Remember a heal, keyed by (target, order, kind): the latest run that healed it wins. Heals are
   * bucketed by the UTC day of the order's createdAtMs (one hash per partner and day, kept TTL_SEC), so
   * a run reads only the days of its period, not every heal the partner ever had.
   */
  async rememberHeal(partnerId: string, d: Discrepancy, createdAtMs: number, runId: string): Promise<void> {
    const field = `${d.targetId}\u0000${d.orderId}\u0000${d.kind}`;
    const key = this.keys.reconHealedDay(partnerId, Math.floor(createdAtMs / DAY_MS));
    // The latest heal of a kind is remembered (a refund healed twice): a re-run reports what the run before it did.
    const replies = await this.redis.multi().hset(key, field, JSON.stringify({ ...d, createdAtMs, runId })).expire(key, TTL_SEC).exec();
    // A command Redis refused inside the transaction (a key of another type) does not reject exec():
    // the heal was not remembered, and a re-run would report other discrepancies than this one.
    const failed = replies?.find(([err]) => err);
    if (!replies || failed) throw failed?.[0] ?? new Error(`heal of ${d.orderId} not remembered (transaction aborted)`);
  }

  /**
   * The heals of orders created in [fromMs, toMs): the day buckets the period overlaps (at most 93 for
   * 92 days) and the legacy per-partner hash (written before the buckets; no longer grows). A (target,
   * order, kind) in several of them: the one with the greatest createdAtMs. The legacy hash, read whole,
   * is moved into the day buckets by the first run that finds it, so later runs read only their days.
   * Each with the id of the run that healed it (`runId`; none for a heal remembered before runs were named).
   */
  async heals(partnerId: string, fromMs: number, toMs: number): Promise<RememberedHeal[]> {
    if (!(fromMs < toMs)) return [];
    const keys = [this.keys.reconHealed(partnerId)];
    for (let day = Math.floor(fromMs / DAY_MS); day <= Math.floor((toMs - 1) / DAY_MS); day++) keys.push(this.keys.reconHealedDay(partnerId, day));
    const [legacy, ...days] = await Promise.all([this.redis.hgetall(keys[0]!), ...keys.slice(1).map((k) => this.redis.hvals(k))]);
    const hashes = [Object.values(legacy!), ...days];
    if (hashes[0]!.length > 0) await this.migrateLegacyHeals(partnerId, legacy!);
    const latest = new Map<string, RememberedHeal & { createdAtMs: number }>();
    for (const values of hashes) {
      for (const raw of values) {
        const d = JSON.parse(raw) as RememberedHeal & { createdAtMs: number };
        const field = `${d.targetId}\u0000${d.orderId}\u0000${d.kind}`;
        if (!(d.createdAtMs >= fromMs && d.createdAtMs < toMs)) continue;
        const prev = latest.get(field);
        if (!prev || d.createdAtMs >= prev.createdAtMs) latest.set(field, d);
      }
    }
    return [...latest.values()].map(({ createdAtMs: _c, ...d }) => d);
  }

  /** Moves the legacy hash's heals (`fields`, as read) into their day buckets; those older than the buckets' TTL are dropped. */
  private async migrateLegacyHeals(partnerId: string, fields: Record<string, string>): Promise<void> {
    const legacy = this.keys.reconHealed(partnerId);
    const oldestDay = Math.floor((Date.now() - TTL_SEC * 1000) / DAY_MS);
    const stale: string[] = [];
    const moves: { day: number; field: string; raw: string }[] = [];
    for (const [field, raw] of Object.entries(fields)) {
      let d: Discrepancy & { createdAtMs: number };
      try {
        d = JSON.parse(raw) as Discrepancy & { createdAtMs: number };
      } catch {
        continue; // left in place
      }
      const day = Math.floor(d.createdAtMs / DAY_MS);
      if (!Number.isFinite(day)) continue;
      if (day < oldestDay) stale.push(field); // its bucket would have expired already
      else moves.push({ day, field, raw });
    }
    if (stale.length > 0) await this.redis.hdel(legacy, ...stale);
    for (let i = 0; i < moves.length; i += MIGRATE_BATCH) {
      const batch = moves.slice(i, i + MIGRATE_BATCH);
      const buckets = [...new Set(batch.map((m) => m.day))];
      const index = new Map(buckets.map((day, j) => [day, j + 2]));
      const argv: (string | number)[] = [TTL_SEC];
      for (const m of batch) argv.push(index.get(m.day)!, m.field, m.raw);
      await this.redis.eval(MIGRATE_LEGACY_HEALS_LUA, 1 + buckets.length, legacy, ...buckets.map((day) => this.keys.reconHealedDay(partnerId, day)), ...argv);
    }
  }

  /** Marks a requested run as waiting for its job (the recovery pass re-adds the job of one whose add was lost). */
  async markQueued(r: ReconciliationRecord): Promise<void> {
    await this.redis.zadd(this.keys.reconQueued(), Date.parse(r.createdAt), r.id);
  }

  /** The run started (or is gone): no longer waiting for its job. */
  async unmarkQueued(id: string): Promise<void> {
    await this.redis.zrem(this.keys.reconQueued(), id);
  }

  /**
   * A queued run the recovery pass found waiting for its job: checked again after the others (its
   * score becomes `atMs`), so that runs waiting their turn do not keep the pass from the ones behind
   * them. Only while it is still marked (XX).
   */
  async checkedQueued(id: string, atMs: number): Promise<void> {
    await this.redis.zadd(this.keys.reconQueued(), 'XX', atMs, id);
  }

  /** Runs marked queued (or last checked) before `beforeMs`, oldest first, at most `limit`. */
  async queuedBefore(beforeMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.reconQueued(), '-inf', beforeMs, 'LIMIT', 0, limit);
  }
}
