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
import { inFourDigitYears, withinFourDigitYears } from '../domain/events.js';
import { latestTick } from '../lib/cron.js';
import { badRequest, notFound } from '../lib/errors.js';
import { sortableId, sortableIdOf } from '../lib/ids.js';
import type { OutboundService } from '../outbound/outbound.service.js';
import type { PendingAudit } from '../store/audit.repository.js';
import type { Keys } from '../store/keys.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import type { Discrepancy, ReconcileRepository, ReconciliationRecord, ReconTargetSummary } from '../store/reconcile.repository.js';
import type { PlatformOrder, TargetAdapter } from '../targets/target.adapter.js';
import { isTargetError } from '../targets/target.errors.js';
import { AccountOrders } from './account-orders.js';
import type { Comparison } from './reconcile.compare.js';
import { DEFAULT_RECONCILE_CLOCK_SKEW_MS, owningDateMs, pagesOf, reconcileTargetStream } from './reconcile.stream.js';
import type { PageStart } from '../store/zset-page.js';
import type { OnUnreadable } from '../store/stored-record.js';
import { closeQueue } from '../queues/close-queue.js';

export const RECONCILE_QUEUE = 'reconcile';
export const MAX_PERIOD_MS = 92 * 86_400_000;
const DAY_MS = 86_400_000;

export interface ReconcileDeps {
  repo: ReconcileRepository;
  partners: PartnerRepository;
  attribution: AttributionService;
  outbound: Pick<OutboundService, 'emit'> | undefined;
  adapterFor: (t: TargetRecord) => TargetAdapter | null;
  connection: ConnectionOptions;
  keys: Keys;
  log: Logger;
  /** The run's job retries (default 5 attempts, exponential backoff from 5 s with jitter); tests shorten them. */
  retry?: Partial<RunRetry>;
  /**
   * RECONCILE_CLOCK_SKEW_MS (default 5 minutes): each report is read over the period widened by this on
   * both sides, so that an order the ledger and the platform date on two sides of a period's boundary
   * is recognised by the run of the ledger's period (reconcile.stream.ts owningDateMs).
   */
  clockSkewMs?: number;
}

export interface RunRetry {
  attempts: number;
  /** First backoff; each later one doubles (jitter 0.5). */
  backoffMs: number;
}

/**
 * What a run whose job failed for good says (GET and `reconciliation.completed`). Fixed text: the
 * error itself (a Redis reply, a stack) is logged with the run id, never shown to the partner.
 */
export const RUN_FAILED_ERROR = 'the run failed on every attempt (internal error; the service logs have the cause)';

/**
 * The orders to heal, those the ledger lacks with what the report left out filled in
 * (TargetAdapter.orderDetails: Whatnot's products, one call per order). Only those: an order the ledger
 * holds (a refund to add) needs nothing more, so a period re-read every run costs no call per order.
 * A failure throws (the target's report is incomplete; nothing of this page is stored, the next run heals it).
 */
async function withDetails(adapter: TargetAdapter, cmp: Comparison, signal: AbortSignal | undefined): Promise<PlatformOrder[]> {
  if (!adapter.orderDetails) return cmp.heal;
  const added = new Set(cmp.discrepancies.filter((d) => d.kind === 'missing_in_ledger' && d.healed).map((d) => d.orderId));
  const lacking = cmp.heal.filter((p) => added.has(p.orderId));
  if (lacking.length === 0) return cmp.heal;
  const detailed = new Map((await adapter.orderDetails(lacking, signal)).map((p) => [p.orderId, p]));
  return cmp.heal.map((p) => detailed.get(p.orderId) ?? p);
}

export class ReconcileService {
  private queue: Queue | undefined;
  /** Read when a job is added: a change applies to runs requested (or re-queued) later. */
  readonly retry: RunRetry;
  /** Which target of a shared platform account counts each of its orders (account-orders.ts; also the platform webhooks'). */
  readonly accounts: AccountOrders;
  constructor(private readonly deps: ReconcileDeps) {
    this.retry = { attempts: deps.retry?.attempts ?? 5, backoffMs: deps.retry?.backoffMs ?? 5000 };
    this.accounts = new AccountOrders({ repo: deps.repo, partners: deps.partners, attribution: deps.attribution, log: deps.log });
  }

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
   * died mid-run) finds the run it requested and queues it again (a no-op when its job is there). A
   * run found finished (`completed` or `failed`) is returned as it is: its job may be gone
   * (removeOnComplete/removeOnFail), and adding it again would run the period once more.
   */
  async request(partnerId: string, from: Date, to: Date, trigger: 'manual' | 'scheduled', once?: string, audit?: (id: string) => PendingAudit): Promise<ReconciliationRecord> {
    if (!(await this.deps.partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
    if (!(from.getTime() < to.getTime())) throw badRequest('from must be before to', [{ path: 'body.to', message: 'must be after from' }]);
    // A period is stored, answered and sent to the platforms as ISO-8601 UTC: an offset can put a bound
    // given with a four-digit year outside them ('9999-12-31T23:59:59-23:59' is in year 10000). Such a
    // run was queued (202) and answered `to: "+010000-01-01T23:58:59.000Z"`, and Whatnot refused to list
    // orders for it (created_at_lt must be an ISO 8601 date-time): its report was never compared.
    for (const [path, at] of [['body.from', from], ['body.to', to]] as const) {
      if (!inFourDigitYears(at.getTime())) throw badRequest('from and to must be within the years 0000-9999 in UTC', [{ path, message: 'outside 0000-01-01T00:00:00Z … 9999-12-31T23:59:59.999Z once in UTC' }]);
    }
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
    // Marked before it is stored and listed: if a later step is lost (Redis gone between the steps, the
    // API process killed), the record is listed `queued` with no job, and recoverQueued() adds the job
    // later (a mark whose record was never stored, or has started, is dropped by it). Marked after the
    // save, a lost mark left a listed run no pass would ever look at.
    await this.deps.repo.markQueued(rec);
    if (once === undefined) await this.deps.repo.save(rec);
    else rec = (await this.deps.repo.saveNew(rec)) ?? rec;
    await this.deps.repo.index(rec, audit?.(rec.id));
    if (rec.status === 'completed' || rec.status === 'failed') {
      await this.deps.repo.unmarkQueued(rec.id); // marked above, before it was found finished
      return rec;
    }
    try {
      await this.addJob(rec.id, withCurrentRequestId({ id: rec.id }));
    } catch (err) {
      // Stored, listed, audited and marked: the recovery pass adds the job within a minute or two. A 5xx
      // here made the client request a second run of the period (a second report read, two webhooks).
      this.deps.log.warn({ err, reconciliationId: rec.id }, 'reconciliation job not added now (the recovery pass adds it)');
    }
    return rec;
  }

  /**
   * A scheduled tick (scheduler.ts `reconcile-partner`; `tickJobId` the job scheduler's job id, which
   * ends with `tickMs`). Its period ends at the tick and covers the partner's `reconcileLookbackDays`,
   * reaching further back to the end of the latest scheduled period requested before (capped at 92 days)
   * when that is earlier: ticks BullMQ never produced (the scheduler down for longer than the lookback,
   * Redis that lost its job schedulers) leave no stretch of time that no scheduled run covered.
   * BullMQ produces the tick after a processed one from the time it is processed, so a tick processed
   * late (the service was down) is followed by no tick for the cron's ticks that passed meanwhile: the
   * latest of those is requested here too, right after this one, covering the stretch up to it (its id
   * is the one that tick's job would have had, so a scheduler that did produce it finds this run).
   * Each tick makes one run however often it is processed (`request`'s `once`).
   */
  async requestScheduled(
    partner: { id: string; reconcileCron: string; reconcileLookbackDays: number },
    tickJobId: string | undefined,
    tickMs: number,
    nowMs: number = Date.now(),
  ): Promise<ReconciliationRecord[]> {
    const { repo, log } = this.deps;
    const runs: ReconciliationRecord[] = [];
    const period = async (toMs: number, once: string | undefined): Promise<void> => {
      let fromMs = toMs - partner.reconcileLookbackDays * DAY_MS;
      const last = await repo.scheduledTo(partner.id);
      if (last !== null && last < fromMs) {
        fromMs = Math.max(last, toMs - MAX_PERIOD_MS);
        if (last < fromMs) log.warn({ partnerId: partner.id, uncoveredFrom: new Date(last).toISOString(), uncoveredTo: new Date(fromMs).toISOString() }, 'scheduled reconciliations missed more than 92 days: request the rest by hand');
      }
      runs.push(await this.request(partner.id, new Date(fromMs), new Date(toMs), 'scheduled', once));
      await repo.advanceScheduledTo(partner.id, toMs);
    };
    await period(tickMs, tickJobId);
    const tickSuffix = /:(\d{1,15})$/;
    if (tickJobId === undefined || !tickSuffix.test(tickJobId)) return runs;
    const missed = latestTick(partner.reconcileCron, nowMs);
    if (missed === null) return runs; // a cron the partner routes would refuse: nothing to catch up on
    if (missed > tickMs) {
      log.warn({ partnerId: partner.id, tick: new Date(tickMs).toISOString(), missedUpTo: new Date(missed).toISOString() }, 'scheduled reconciliation processed after later ticks passed: their period requested too');
      await period(missed, tickJobId.replace(tickSuffix, `:${missed}`));
    }
    return runs;
  }

  /** The run's job; its id is the run's, so adding it again while it exists is a no-op. */
  private async addJob(id: string, data: Record<string, unknown>): Promise<void> {
    const { attempts, backoffMs } = this.retry;
    await this.q().add('reconcile', data, { jobId: id, attempts, backoff: { type: 'exponential', delay: backoffMs, jitter: 0.5 }, removeOnComplete: 1000, removeOnFail: 1000 });
  }

  /**
   * Recovery pass (the scheduler's periodic sweep) over the runs not finished yet (marked when
   * requested, unmarked when finished; oldest check first, `limit` per pass, each looked at again
   * `minAgeMs` after its last check):
   * - no job (its add was lost: Redis gone between the steps, the API killed): the job is added again
   *   (run() is safe to repeat), for a `running` run too (its job was lost with data). A run that never
   *   made it into its partner's list is not run when a client asked for it (the client got an error
   *   and retries); a scheduled one is listed and run.
   * - its job failed for good but the run was not marked (both marks failed, the process died before
   *   the failed handler): marked failed now and the partner told.
   * - its job is there: looked at again after the others, so that a backlog of runs waiting their turn
   *   (every partner's 03:00 run) does not hide one behind the first `limit`.
   */
  async recoverQueued(minAgeMs = 60_000, limit = 100): Promise<{ requeued: string[]; failed: string[] }> {
    const { repo, log } = this.deps;
    const requeued: string[] = [];
    const failed: string[] = [];
    for (const id of await repo.queuedBefore(Date.now() - minAgeMs, limit)) {
      const rec = await repo.get(id);
      if (!rec || (rec.status !== 'queued' && rec.status !== 'running')) {
        await repo.unmarkQueued(id);
        continue;
      }
      const job = await this.q().getJob(id);
      if (job) {
        if ((await job.getState()) === 'failed') {
          await this.fail(id);
          failed.push(id);
          log.warn({ reconciliationId: id }, 'reconciliation whose job failed for good was not marked failed: marked now');
          continue;
        }
        await repo.checkedQueued(id, Date.now());
        continue;
      }
      if (!(await repo.isListed(rec))) {
        if (rec.trigger !== 'scheduled') {
          await repo.unmarkQueued(id);
          log.warn({ reconciliationId: id }, 'reconciliation request that never got listed (its client got an error): not run');
          continue;
        }
        await repo.index(rec);
      }
      await this.addJob(id, { id });
      requeued.push(id);
      log.warn({ reconciliationId: id, status: rec.status }, 'reconciliation without a job: job added again');
    }
    return { requeued, failed };
  }

  async get(id: string): Promise<ReconciliationRecord | null> {
    return this.deps.repo.get(id);
  }

  async list(partnerId: string, start: PageStart, limit: number, onUnreadable?: OnUnreadable): Promise<{ items: ReconciliationRecord[]; total: number; next: { score: number; member: string } | null }> {
    return this.deps.repo.list(partnerId, start, limit, onUnreadable);
  }

  /**
   * The job: safe to run again for the same record (a retry after a crash gives the same result). A run
   * already finished (its job processed again after its worker died between the last write and the
   * job's completion) is not run again; the partner is told (again: the event is idempotent by run id).
   * `signal` (the worker closing) ends a report's wait for a rate limit: run() then throws the signal's
   * reason and leaves the run `running` for the job's next run (reconcile.worker.ts).
   */
  async run(id: string, signal?: AbortSignal): Promise<ReconciliationRecord> {
    const { repo, partners, attribution, log } = this.deps;
    const rec = await repo.get(id);
    if (!rec) throw new Error(`reconciliation ${id} not found`);
    if (rec.status === 'completed' || rec.status === 'failed') return this.finished(rec);
    rec.status = 'running';
    rec.startedAt = new Date().toISOString();
    const finishedMeanwhile = await repo.saveUnlessFinished(rec);
    if (finishedMeanwhile) return this.finished(finishedMeanwhile);
    // Still marked while it runs (finished() unmarks it): a run whose job is lost or fails for good
    // without the run being marked failed is found by the recovery pass.

    const bundle = await partners.bundle(rec.partnerId);
    const fromMs = Date.parse(rec.from);
    const toMs = Date.parse(rec.to);
    const targets: ReconTargetSummary[] = [];
    const skipped: string[] = [];
    const found: Discrepancy[] = [];
    // The reports' repeat notes (reconcile.stream.ts `repeated`): listed, never a finding that replaces a remembered heal.
    const repeated: Discrepancy[] = [];
    // Targets whose report could not be read: the heals earlier runs made for them are not listed (below).
    const unread = new Set<string>();
    // Every target on its platform account's registry before any report is read: a run of another
    // target on the account (this partner's or another's) then leaves the orders of their shows to them.
    await this.accounts.backfill();
    await this.accounts.register(bundle?.targets ?? []);
    for (const t of bundle?.targets ?? []) {
      const adapter = this.deps.adapterFor(t);
      if (!adapter?.capabilities.orderReport || !adapter.listOrders) {
        skipped.push(t.id);
        continue;
      }
      const summary: ReconTargetSummary = { targetId: t.id, platform: t.platform, platformOrders: 0, otherTargetOrders: 0, ledgerOrders: 0, discrepancies: 0, healed: 0 };
      targets.push(summary);
      // Both sides streamed (reconcile.stream.ts): the adapter's report page by page as the platform
      // returns it (orderPages), the ledger by point lookups and a paged scan.
      // The report over the period and the margin around it: its orders of the margin are compared only
      // when they are this period's (owningDateMs: the ledger dates them in it, within the margin).
      const skewMs = this.deps.clockSkewMs ?? DEFAULT_RECONCILE_CLOCK_SKEW_MS;
      // Within the years 0000-9999: widened past them (a period from 0000-01-01, or to 9999-12-31), the
      // bound printed as `-000001-12-31T23:55:00.000Z`, no RFC 3339 date-time, and Whatnot's report
      // refused it (400): the run failed.
      const from = new Date(withinFourDigitYears(fromMs - skewMs));
      const to = new Date(withinFourDigitYears(toMs + skewMs));
      const listOrders = adapter.listOrders.bind(adapter);
      const report = adapter.orderPages ? adapter.orderPages(from, to, signal) : (async function* () { yield* pagesOf(await listOrders(from, to, signal)); })();
      let res;
      try {
        // A target saved before its platform was asked who the account is: asked now (once per credentials).
        await this.accounts.learnFrom(t, adapter);
        const sift = await this.accounts.sifter(t);
        res = await reconcileTargetStream(t.id, report, attribution.targetLedger(rec.partnerId, t.id, { fromMs, toMs }), VOIDED, async (cmp, heldDated) => {
          const outcomes = await attribution.ingestPlatformOrders(rec.partnerId, t.id, await withDetails(adapter, cmp, signal), 'report');
          // the date the ledger stored each order with (a webhook may have stored one meanwhile, with its own date)
          const stored = new Map(outcomes.map((o) => [o.orderId, o.createdAtMs]));
          const healed = new Map(cmp.heal.map((p) => [p.orderId, p]));
          for (const d of cmp.discrepancies) {
            if (!d.healed) continue;
            const p = healed.get(d.orderId);
            const reportMs = p ? Date.parse(p.createdAt) : fromMs;
            const ledgerMs = stored.get(d.orderId);
            // Remembered under the order's period (owningDateMs): a held order's as the comparison decided
            // it; one this heal stored, by the ledger's stored date beside the report's.
            await repo.rememberHeal(rec.partnerId, d, heldDated.get(d.orderId) ?? (ledgerMs !== undefined ? owningDateMs(ledgerMs, reportMs, skewMs) : reportMs), rec.id);
          }
        }, sift, skewMs);
      } catch (err) {
        if (!isTargetError(err)) throw err;
        // The report failed (at its first page or midway): the target's comparison is incomplete, so
        // none of its findings are reported as such, and neither are the heals earlier runs of the period
        // made for it (this run confirmed none of them: a failed report listed `healed: 6` beside
        // `ledgerOrders: 0`). Orders this run healed from pages read before the failure stay healed and
        // remembered, and are listed (below, by the run id they were remembered with): they were added by
        // this run, in this attempt or in an earlier one of the same run that was interrupted (the worker
        // closing, a crash) after healing them. Kept in memory, such a heal was lost on the retry: its
        // order was then in the ledger (no discrepancy), so whether the run listed it hung on the interruption.
        summary.error = `${t.platform}: ${err.message}`;
        unread.add(t.id);
        log.warn({ reconciliationId: rec.id, targetId: t.id, reason: err.reason }, 'platform order report unavailable');
        continue;
      }
      summary.platformOrders = res.platformOrders;
      summary.otherTargetOrders = res.otherTargetOrders;
      summary.ledgerOrders = res.ledgerOrders;
      found.push(...res.discrepancies);
      repeated.push(...res.repeated);
    }
    // What an earlier run healed in this period is still a discrepancy of the period (same result on
    // re-run): each remembered heal that this run did not find again (same target, order and kind), of a
    // target whose report this run read whole (it found the order in the ledger) or that has no report
    // to read (skipped, deleted); of a target whose report failed, only those this run made (its id).
    // Another kind found for the same order does not replace it: an order healed as missing and later
    // healed for a refund had its missing_in_ledger dropped from that run but not from the next one.
    const key = (d: Discrepancy): string => `${d.targetId}\u0000${d.orderId}\u0000${d.kind}`;
    const seen = new Set(found.map(key));
    const previously = (await repo.heals(rec.partnerId, fromMs, toMs))
      .filter((d) => !seen.has(key(d)) && (!unread.has(d.targetId) || d.runId === rec.id));
    // A `missing_in_ledger` heal remembered before heals kept their run id (before 2026-12-07), whose
    // order the ledger holds from elsewhere than a report heal (its webhook): the old by-period lookup's
    // false heal of an order held but dated outside the period (it added nothing). Not listed. One read
    // per such heal; heals remembered since carry a run id and cost nothing here.
    const listed: Discrepancy[] = [];
    for (const { runId, ...d } of previously) {
      if (d.kind === 'missing_in_ledger' && runId === undefined) {
        const held = await attribution.order(rec.partnerId, d.orderId, d.targetId);
        if (held && held.source !== 'platform_report') continue;
      }
      listed.push(d);
    }
    const discrepancies = [...found, ...repeated, ...listed].sort((a, b) => a.targetId.localeCompare(b.targetId) || a.orderId.localeCompare(b.orderId) || a.kind.localeCompare(b.kind) || a.detail.localeCompare(b.detail));
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
    // Failed for good meanwhile (this processing outlived its job's lock and the job failed): that stands.
    const done = await repo.saveUnlessFinished(rec);
    if (done) return this.finished(done);
    reconciliationRuns.inc({ status: rec.status });
    for (const d of discrepancies) reconciliationDiscrepancies.inc({ kind: d.kind, healed: String(d.healed) });
    return this.finished(rec);
  }

  /**
   * The run's job failed for good (its last attempt threw, or it stalled too often): a run still
   * `queued` or `running` becomes `failed` with `error` and `completedAt`, and the partner gets
   * `reconciliation.completed` with status `failed`. Idempotent: the write compares on the stored
   * status (a run that completed or failed meanwhile stays as it is), and the event is keyed by run id,
   * so calling it again (the worker's failed handler after the last attempt's own call, a process that
   * died between the write and the event) tells the partner once. Null when the run does not exist.
   */
  async fail(id: string, error: string = RUN_FAILED_ERROR): Promise<ReconciliationRecord | null> {
    const { repo, log } = this.deps;
    const rec = await repo.get(id);
    if (!rec) return null;
    if (rec.status === 'completed' || rec.status === 'failed') return this.finished(rec);
    const failed: ReconciliationRecord = { ...rec, status: 'failed', error, completedAt: new Date().toISOString() };
    const done = await repo.saveUnlessFinished(failed);
    if (done) return this.finished(done);
    reconciliationRuns.inc({ status: 'failed' });
    log.error({ reconciliationId: id, partnerId: rec.partnerId }, 'reconciliation failed for good');
    return this.finished(failed);
  }

  /** A finished run: out of the queued index, and the partner told (idempotent by run id). */
  private async finished(rec: ReconciliationRecord): Promise<ReconciliationRecord> {
    await this.deps.repo.unmarkQueued(rec.id);
    await this.tell(rec);
    return rec;
  }

  private async tell(rec: ReconciliationRecord): Promise<void> {
    await this.deps.outbound?.emit(
      rec.partnerId,
      'reconciliation.completed',
      { id: rec.id, status: rec.status, from: rec.from, to: rec.to, trigger: rec.trigger, summary: rec.summary, discrepancies: rec.discrepancies, ...(rec.error ? { error: rec.error } : {}) },
      `reconciliation:${rec.id}`,
    );
  }

  async close(): Promise<void> {
    if (this.queue) await closeQueue(this.queue);
  }
}
