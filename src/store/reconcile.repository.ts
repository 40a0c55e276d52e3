/** Reconciliation runs and the discrepancies they auto-healed (so a re-run reports the same). */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export type ReconStatus = 'queued' | 'running' | 'completed' | 'failed';
export type DiscrepancyKind = 'missing_in_ledger' | 'missing_in_platform' | 'amount_mismatch' | 'status_mismatch';

/**
 * Why money could not be compared (the contract's kinds name what differs, not why): `currency_mismatch`
 * when the platform reports the order (or its refund) in another currency than the ledger (or the
 * order) has, `invalid_currency` when the platform's currency is not an ISO 4217 currency. Amounts in
 * different currencies are never compared nor added up (no FX), and such an order is never healed.
 */
export type DiscrepancyReason = 'currency_mismatch' | 'invalid_currency';

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

export interface ReconTargetSummary {
  targetId: string;
  platform: string;
  platformOrders: number;
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

export class ReconcileRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async save(r: ReconciliationRecord): Promise<void> {
    await this.redis.set(this.keys.reconciliation(r.id), JSON.stringify(r), 'EX', TTL_SEC);
  }

  /** Stores a new record unless one with its id exists: the stored one, or null when this one was stored. */
  async saveNew(r: ReconciliationRecord): Promise<ReconciliationRecord | null> {
    const prev = await this.redis.set(this.keys.reconciliation(r.id), JSON.stringify(r), 'EX', TTL_SEC, 'NX', 'GET');
    return prev === null ? null : (JSON.parse(prev) as ReconciliationRecord);
  }

  /** Lists the run under its partner (written when the run is requested; runs older than TTL_SEC drop out). */
  async index(r: ReconciliationRecord): Promise<void> {
    const key = this.keys.partnerReconciliations(r.partnerId);
    await this.redis.zadd(key, Date.parse(r.createdAt), r.id);
    await this.redis.zremrangebyscore(key, '-inf', Date.now() - TTL_SEC * 1000);
  }

  /** The partner's runs, newest first: `offset`/`limit` over the index; records are read in one MGET-like round. */
  async list(partnerId: string, offset: number, limit: number): Promise<{ items: ReconciliationRecord[]; total: number }> {
    const key = this.keys.partnerReconciliations(partnerId);
    const [ids, total] = await Promise.all([this.redis.zrevrange(key, offset, offset + limit - 1), this.redis.zcard(key)]);
    const recs = await Promise.all(ids.map((id) => this.get(id)));
    return { items: recs.filter((r): r is ReconciliationRecord => r !== null), total };
  }

  async get(id: string): Promise<ReconciliationRecord | null> {
    const raw = await this.redis.get(this.keys.reconciliation(id));
    return raw ? (JSON.parse(raw) as ReconciliationRecord) : null;
  }

  /** Remember a heal, keyed by (target, order, kind): the latest run that healed it wins. */
  async rememberHeal(partnerId: string, d: Discrepancy, createdAtMs: number): Promise<void> {
    const field = `${d.targetId}\u0000${d.orderId}\u0000${d.kind}`;
    // The latest heal of a kind is remembered (a refund healed twice): a re-run reports what the run before it did.
    await this.redis.hset(this.keys.reconHealed(partnerId), field, JSON.stringify({ ...d, createdAtMs }));
  }

  async heals(partnerId: string, fromMs: number, toMs: number): Promise<Discrepancy[]> {
    const all = await this.redis.hvals(this.keys.reconHealed(partnerId));
    return all
      .map((v) => JSON.parse(v) as Discrepancy & { createdAtMs: number })
      .filter((d) => d.createdAtMs >= fromMs && d.createdAtMs < toMs)
      .map(({ createdAtMs: _c, ...d }) => d);
  }
}
