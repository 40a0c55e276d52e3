/** Reconciliation runs and the discrepancies they auto-healed (so a re-run reports the same). */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export type ReconStatus = 'queued' | 'running' | 'completed' | 'failed';
export type DiscrepancyKind = 'missing_in_ledger' | 'missing_in_platform' | 'amount_mismatch' | 'status_mismatch';

export interface Discrepancy {
  kind: DiscrepancyKind;
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
    // The partner's list (ops console); a run whose record expired drops out of `recent`.
    await this.redis.zadd(this.keys.partnerRecons(r.partnerId), Date.parse(r.createdAt) || Date.now(), r.id);
  }

  /** The partner's latest runs, newest first. */
  async recent(partnerId: string, limit: number): Promise<ReconciliationRecord[]> {
    const key = this.keys.partnerRecons(partnerId);
    const ids = await this.redis.zrevrange(key, 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(...ids.map((id) => this.keys.reconciliation(id)));
    const gone = ids.filter((_, i) => !raws[i]);
    if (gone.length) await this.redis.zrem(key, ...gone);
    return raws.filter((r): r is string => !!r).map((r) => JSON.parse(r) as ReconciliationRecord);
  }

  async get(id: string): Promise<ReconciliationRecord | null> {
    const raw = await this.redis.get(this.keys.reconciliation(id));
    return raw ? (JSON.parse(raw) as ReconciliationRecord) : null;
  }

  /** Remember a heal, keyed by (target, order, kind): the first run that healed it wins. */
  async rememberHeal(partnerId: string, d: Discrepancy, createdAtMs: number): Promise<void> {
    const field = `${d.targetId}\u0000${d.orderId}\u0000${d.kind}`;
    await this.redis.hsetnx(this.keys.reconHealed(partnerId), field, JSON.stringify({ ...d, createdAtMs }));
  }

  async heals(partnerId: string, fromMs: number, toMs: number): Promise<Discrepancy[]> {
    const all = await this.redis.hvals(this.keys.reconHealed(partnerId));
    return all
      .map((v) => JSON.parse(v) as Discrepancy & { createdAtMs: number })
      .filter((d) => d.createdAtMs >= fromMs && d.createdAtMs < toMs)
      .map(({ createdAtMs: _c, ...d }) => d);
  }
}
