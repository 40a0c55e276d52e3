/**
 * Reconciliation (docs/attribution.md and README "Reconciliation"): for a partner and period, compare the ledger with every target
 * platform's own order report, record each discrepancy, auto-heal what the platform reports and the
 * ledger lacks (new ledger entries, marked as coming from the report), and tell the partner
 * (`reconciliation.completed`). Re-running a period never double-counts: platform orders and
 * refunds are idempotent by id, and heals are remembered so the re-run reports the same discrepancies.
 */
import { withCurrentRequestId } from '../lib/request-context.js';
import { reconciliationDiscrepancies, reconciliationRuns } from '../lib/metrics.js';
import type { Logger } from 'pino';
import { Queue, type ConnectionOptions } from 'bullmq';
import { VOIDED, type AttributionService } from '../attribution/attribution.service.js';
import { badRequest, notFound } from '../lib/errors.js';
import { sortableId, sortableIdOf } from '../lib/ids.js';
import type { OutboundService } from '../outbound/outbound.service.js';
import type { Keys } from '../store/keys.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import type { Discrepancy, ReconcileRepository, ReconciliationRecord, ReconTargetSummary } from '../store/reconcile.repository.js';
import type { TargetAdapter } from '../targets/target.adapter.js';
import { isTargetError } from '../targets/target.errors.js';
import { pagesOf, reconcileTargetStream } from './reconcile.stream.js';

export const RECONCILE_QUEUE = 'reconcile';
const MAX_PERIOD_MS = 92 * 86_400_000;

export interface ReconcileDeps {
  repo: ReconcileRepository;
  partners: PartnerRepository;
  attribution: AttributionService;
  outbound: Pick<OutboundService, 'emit'> | undefined;
  adapterFor: (t: TargetRecord) => TargetAdapter | null;
  connection: ConnectionOptions;
  keys: Keys;
  log: Logger;
}

export class ReconcileService {
  private queue: Queue | undefined;
  constructor(private readonly deps: ReconcileDeps) {}

  private q(): Queue {
    if (!this.queue) {
      this.queue = new Queue(RECONCILE_QUEUE, { connection: this.deps.connection, prefix: this.deps.keys.queuePrefix(RECONCILE_QUEUE) });
      this.queue.on('error', () => undefined); // surfaced through the add() promise instead
    }
    return this.queue;
  }

  /**
   * `once`: a key naming the logical request (a scheduled tick's job id). The same key makes the same
   * run (its id is derived from it): a tick processed again (BullMQ runs a job again when its worker
   * died mid-run) finds the run it requested and queues it again (a no-op when its job is there).
   */
  async request(partnerId: string, from: Date, to: Date, trigger: 'manual' | 'scheduled', once?: string): Promise<ReconciliationRecord> {
    if (!(await this.deps.partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
    if (!(from.getTime() < to.getTime())) throw badRequest('from must be before to', [{ path: 'body.to', message: 'must be after from' }]);
    if (to.getTime() - from.getTime() > MAX_PERIOD_MS) throw badRequest('a reconciliation covers at most 92 days', [{ path: 'body.from', message: 'period longer than 92 days' }]);
    let rec: ReconciliationRecord = {
      id: once === undefined ? sortableId('rec_') : sortableIdOf('rec_', to.getTime(), `${partnerId}\0${once}`),
      partnerId,
      trigger,
      status: 'queued',
      from: from.toISOString(),
      to: to.toISOString(),
      createdAt: new Date().toISOString(),
      summary: null,
      discrepancies: [],
    };
    if (once === undefined) await this.deps.repo.save(rec);
    else rec = (await this.deps.repo.saveNew(rec)) ?? rec;
    await this.deps.repo.index(rec);
    // Marked before its job is added: if the add is lost (Redis gone between the steps, the API process
    // killed), the record is listed `queued` with no job, and recoverQueued() adds the job later.
    if (rec.status === 'queued') await this.deps.repo.markQueued(rec);
    await this.addJob(rec.id, withCurrentRequestId({ id: rec.id }));
    return rec;
  }

  /** The run's job; its id is the run's, so adding it again while it exists is a no-op. */
  private async addJob(id: string, data: Record<string, unknown>): Promise<void> {
    await this.q().add('reconcile', data, { jobId: id, attempts: 5, backoff: { type: 'exponential', delay: 5000, jitter: 0.5 }, removeOnComplete: 1000, removeOnFail: 1000 });
  }

  /**
   * Recovery pass (the scheduler's periodic sweep): a run still `queued` `minAgeMs` after it was
   * requested whose job does not exist lost its job add (the client got an error, yet the run is
   * listed); its job is added again (run() is safe to repeat), so it runs as requested. Reads only the
   * index of runs not started yet (oldest first, `limit` per pass), not every record.
   */
  async recoverQueued(minAgeMs = 60_000, limit = 100): Promise<{ requeued: string[] }> {
    const { repo, log } = this.deps;
    const requeued: string[] = [];
    for (const id of await repo.queuedBefore(Date.now() - minAgeMs, limit)) {
      const rec = await repo.get(id);
      if (!rec || rec.status !== 'queued') {
        await repo.unmarkQueued(id);
        continue;
      }
      if (await this.q().getJob(id)) continue; // waiting its turn
      await this.addJob(id, { id });
      requeued.push(id);
      log.warn({ reconciliationId: id }, 'reconciliation queued without a job: job added again');
    }
    return { requeued };
  }

  async get(id: string): Promise<ReconciliationRecord | null> {
    return this.deps.repo.get(id);
  }

  async list(partnerId: string, offset: number, limit: number): Promise<{ items: ReconciliationRecord[]; total: number }> {
    return this.deps.repo.list(partnerId, offset, limit);
  }

  /**
   * The job: safe to run again for the same record (a retry after a crash gives the same result).
   * `signal` (the worker closing) ends a report's wait for a rate limit: run() then throws the signal's
   * reason and leaves the run `running` for the job's next run (reconcile.worker.ts).
   */
  async run(id: string, signal?: AbortSignal): Promise<ReconciliationRecord> {
    const { repo, partners, attribution, log } = this.deps;
    const rec = await repo.get(id);
    if (!rec) throw new Error(`reconciliation ${id} not found`);
    if (rec.status === 'completed') {
      await repo.unmarkQueued(id);
      return rec;
    }
    rec.status = 'running';
    rec.startedAt = new Date().toISOString();
    await repo.save(rec);
    await repo.unmarkQueued(id);

    const bundle = await partners.bundle(rec.partnerId);
    const fromMs = Date.parse(rec.from);
    const toMs = Date.parse(rec.to);
    const targets: ReconTargetSummary[] = [];
    const skipped: string[] = [];
    const found: Discrepancy[] = [];
    for (const t of bundle?.targets ?? []) {
      const adapter = this.deps.adapterFor(t);
      if (!adapter?.capabilities.orderReport || !adapter.listOrders) {
        skipped.push(t.id);
        continue;
      }
      const summary: ReconTargetSummary = { targetId: t.id, platform: t.platform, platformOrders: 0, ledgerOrders: 0, discrepancies: 0, healed: 0 };
      targets.push(summary);
      // Both sides streamed (reconcile.stream.ts): the adapter's report page by page as the platform
      // returns it (orderPages), the ledger by point lookups and a paged scan.
      const from = new Date(fromMs);
      const to = new Date(toMs);
      const listOrders = adapter.listOrders.bind(adapter);
      const report = adapter.orderPages ? adapter.orderPages(from, to, signal) : (async function* () { yield* pagesOf(await listOrders(from, to, signal)); })();
      let res;
      try {
        res = await reconcileTargetStream(t.id, report, attribution.targetLedger(rec.partnerId, t.id, { fromMs, toMs }), VOIDED, async (cmp) => {
          await attribution.ingestPlatformOrders(rec.partnerId, t.id, cmp.heal, 'report');
          const healed = new Map(cmp.heal.map((p) => [p.orderId, p]));
          for (const d of cmp.discrepancies) {
            if (!d.healed) continue;
            const p = healed.get(d.orderId);
            await repo.rememberHeal(rec.partnerId, d, p ? Date.parse(p.createdAt) : fromMs);
          }
        });
      } catch (err) {
        if (!isTargetError(err)) throw err;
        // The report failed (at its first page or midway): the target's comparison is incomplete, so
        // none of its findings are reported as such. Orders healed from pages read before the failure
        // stay healed and remembered, and come back below as this period's healed discrepancies.
        summary.error = `${t.platform}: ${err.message}`;
        log.warn({ reconciliationId: rec.id, targetId: t.id, reason: err.reason }, 'platform order report unavailable');
        continue;
      }
      summary.platformOrders = res.platformOrders;
      summary.ledgerOrders = res.ledgerOrders;
      found.push(...res.discrepancies);
    }
    // What an earlier run healed in this period is still a discrepancy of the period (same result on
    // re-run): each remembered heal that this run did not find again (same target, order and kind).
    // Another kind found for the same order does not replace it: an order healed as missing and later
    // healed for a refund had its missing_in_ledger dropped from that run but not from the next one.
    const key = (d: Discrepancy): string => `${d.targetId}\u0000${d.orderId}\u0000${d.kind}`;
    const seen = new Set(found.map(key));
    const previously = (await repo.heals(rec.partnerId, fromMs, toMs)).filter((d) => !seen.has(key(d)));
    const discrepancies = [...found, ...previously].sort((a, b) => a.targetId.localeCompare(b.targetId) || a.orderId.localeCompare(b.orderId) || a.kind.localeCompare(b.kind));
    for (const s of targets) {
      const mine = discrepancies.filter((d) => d.targetId === s.targetId);
      s.discrepancies = mine.length;
      s.healed = mine.filter((d) => d.healed).length;
    }
    rec.discrepancies = discrepancies;
    rec.summary = { targets, discrepancies: discrepancies.length, healed: discrepancies.filter((d) => d.healed).length, skippedTargets: skipped };
    rec.status = targets.length > 0 && targets.every((s) => s.error) ? 'failed' : 'completed';
    if (rec.status === 'failed') rec.error = 'no target report could be read';
    rec.completedAt = new Date().toISOString();
    await repo.save(rec);
    reconciliationRuns.inc({ status: rec.status });
    for (const d of discrepancies) reconciliationDiscrepancies.inc({ kind: d.kind, healed: String(d.healed) });
    await this.deps.outbound?.emit(
      rec.partnerId,
      'reconciliation.completed',
      { id: rec.id, status: rec.status, from: rec.from, to: rec.to, trigger: rec.trigger, summary: rec.summary, discrepancies: rec.discrepancies },
      `reconciliation:${rec.id}`,
    );
    return rec;
  }

  async close(): Promise<void> {
    await this.queue?.close();
  }
}
