/**
 * Attribution (docs/attribution.md): turns partner order events and platform-reported orders into one
 * normalised order, decides which (show, target, product) produced it, and applies it to the
 * append-only ledger (src/store/attribution.repository.ts) in one atomic step per order / refund.
 *
 * The attribution decision is made before the atomic step (the click and the mirror index live in
 * other slots) but only from data that does not change (click records, the external-show index) plus
 * the partner's window and target's rate at that moment; the first write of an order wins, so two
 * workers racing on the same order store one decision. One decision is revisited: a platform order
 * that named a platform show the external-show index did not know yet (its write failed, or the
 * order came first) waits under that show id and is attributed when the index entry appears
 * (`attributeWaiting`, called by the sync that re-asserts the entry) — with new ledger entries.
 */
import { randomUUID } from 'node:crypto';
import { commissionBooked, commissionReversed, platformOrderConflicts } from '../lib/metrics.js';
import type { FieldError } from '../lib/errors.js';
import { rfc3339Ms } from '../lib/timestamp.js';
import { checkPlatformOrder, isPlatformIdText, PLATFORM_ORDER_PROBLEMS } from './platform-order-check.js';
import type { Logger } from 'pino';
import type { PartnerEvent } from '../domain/events.js';
import type { Money } from '../domain/money.js';
import {
  attributeByClick,
  commissionStatus,
  partnerOrderRef,
  displacedPlatformOrderRef,
  legacyPlatformOrderRef,
  platformOrderRef,
  type Attribution,
  type CommissionStatus,
  type NormalizedOrder,
  type OrderSource,
} from '../domain/order.js';
import type { LinkService } from '../links/link.service.js';
import { DAY_MS, rowWithOrderTarget, type AggRow, type OrderRow, type AttributionRepository, type ApplyOrderResult, type DayRange, type RefundedFloor, type RowKeep, type StoredOrder } from '../store/attribution.repository.js';
import type { ExternalShowIndex } from '../store/external-show.index.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import type { PlatformOrder } from '../targets/target.adapter.js';
import type { LedgerOrder } from '../reconcile/reconcile.compare.js';
import type { TargetLedger } from '../reconcile/reconcile.stream.js';
import { platformRefunded } from './platform-refund.js';
import { aggregate, orderAgg, showBreakdown, type AttributionReport, type ReportFilter, type ShowAttributionReport } from './attribution.report.js';

const DEFAULT_WINDOW_HOURS = 168;

/** Payload of the `attribution.order_attributed` outbound event. */
export interface OrderAttributedPayload {
  orderId: string;
  source: OrderSource;
  via: 'click' | 'platform_show';
  showId: string;
  targetId: string;
  productId: string | undefined;
  clickId: string | undefined;
  createdAt: string;
  total: Money;
  commission: Money;
  commissionRateBps: number;
}

/** Called (at least once) for every attributed order; `idempotencyKey` is stable per order. */
/** Resolves false when it did nothing (no endpoint subscribes): the order then stays unmarked, so a later retry may still notify. */
export type OrderAttributedHook = (partnerId: string, payload: OrderAttributedPayload, idempotencyKey: string) => Promise<boolean | void>;

export interface AttributionDeps {
  repo: AttributionRepository;
  partners: PartnerRepository;
  links: LinkService;
  externalShows: ExternalShowIndex;
  log: Logger;
  /** Commission stays pending this long after the order, then is approved (config commissionHoldDays). */
  holdDays: number;
  now?: () => number;
  onOrderAttributed?: OrderAttributedHook;
  /**
   * The currency recorded with a partner order's first stored order.created (OrderEventRepository.
   * recordedCurrency): an order.created of the order in another currency is not booked. Read only for
   * an order.created that comes without its store's mark (handlePartnerEvent's `otherCurrency`).
   */
  recordedCurrency?: (partnerId: string, orderId: string) => Promise<string | undefined>;
}

export type PlatformOrderSource = 'webhook' | 'report';

export interface OrderOutcome {
  ref: string;
  orderId: string;
  isNew: boolean;
  attributed: boolean;
  /**
   * The ledger held the order already with another total or currency than this one: the ledger's (the
   * first stored), which it keeps (no correction entry; docs/attribution.md "An order re-sent with
   * another total"). Its refunds are applied to the ledger's order as ever.
   */
  conflict?: { ledgerTotal: Money; reportedTotal: Money };
}

/** A platform order's outcome: with the date the ledger holds the order with (its first stored `createdAt`: a webhook's may precede a report's). */
export interface PlatformOrderOutcome extends OrderOutcome {
  createdAtMs: number;
}

export interface OrderView {
  orderId: string;
  ref: string;
  source: string;
  createdAt: string;
  total: Money;
  attribution: Attribution;
  status: CommissionStatus;
  refundedAmount: number;
  commission: Money;
  accrued: number;
  reversed: number;
  refunds: StoredOrder['refunds'];
  entries: StoredOrder['entries'];
}

/** Platform status strings that mean the whole order was taken back. */
export const VOIDED = /^(cancel+ed|void(?:ed)?|refunded|returned)$/i;

export class AttributionService {
  constructor(private readonly deps: AttributionDeps) {}

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }
  private holdMs(): number {
    return this.deps.holdDays * 86_400_000;
  }

  /**
   * The attribution worker's entry: one stored partner order event. `otherCurrency`: an order.created's
   * mark from its store (the job's AttributionJob.otherCurrency): true, its order's recorded currency is
   * another (not booked); false, it may be booked. Undefined (a job of an older version, the sweep): the
   * recorded currency is read here, one Redis command more.
   */
  async handlePartnerEvent(partnerId: string, event: PartnerEvent, otherCurrency?: boolean): Promise<OrderOutcome | { refundId: string; isNew: boolean; waitingForOrder: boolean }> {
    if (event.type === 'order.created') {
      const o = event.data.order;
      if (otherCurrency === true) return { ref: partnerOrderRef(o.id), orderId: o.id, isNew: false, attributed: false };
      const lines = o.lines.map((l) => ({ productId: l.productId, quantity: l.quantity, amount: l.amount }));
      // The order is the one in the currency recorded with its first stored order.created, which the
      // edge checks refunds against before the ledger holds the order: a re-reported order.created in
      // another currency whose job ran first was booked (the ledger keeps the first it books), so a
      // refund in its currency was refused until then and taken after (stored and booked disagreed).
      // That first order.created is stored too, and is booked when its own job runs.
      const recorded = otherCurrency === undefined ? this.deps.recordedCurrency?.(partnerId, o.id) : undefined;
      const { createdAtMs: _createdAtMs, ...outcome } = await this.applyOrder(
        partnerId,
        {
          ref: partnerOrderRef(o.id),
          orderId: o.id,
          source: 'partner',
          targetId: undefined,
          clickId: o.clickId,
          showId: o.showId,
          externalShowId: undefined,
          productId: lines.length === 1 ? lines[0]!.productId : undefined,
          createdAt: o.createdAt,
          total: o.total,
          lines,
        },
        undefined,
        recorded,
      );
      return outcome;
    }
    if (event.type === 'order.refunded') {
      const r = event.data.refund;
      const res = await this.deps.repo.applyRefund(partnerId, partnerOrderRef(r.orderId), { id: r.id, amount: r.amount.amount, currency: r.amount.currency, createdAt: r.createdAt }, { nowMs: this.now(), holdMs: this.holdMs() });
      if (res.isNew && res.reversal > 0) commissionReversed.inc({ currency: r.amount.currency }, res.reversal);
      return { refundId: r.id, isNew: res.isNew, waitingForOrder: res.waitingForOrder };
    }
    throw new Error(`not an order event: ${event.type}`);
  }

  /**
   * The orders ingestPlatformOrders would skip, as field errors (`orders.{i}.{field}`). The platform
   * webhook route refuses a webhook with any (400, nothing stored) instead of answering 200 with
   * `stored: 0`: a malformed amount or date is one 400 whether the adapter's parse or this check finds it.
   * `stores`: whether `targetId` stores the order (the webhook's orders are sorted between the targets of
   * a shared platform account: AccountOrders.webhookOrders). Only such an order's id is looked up in
   * `targetId`'s ledger; any other is checked for what no ledger takes (its length, a lone surrogate, its
   * amounts and time): its id may be held by the target it is left to (a target B holding
   * 'SO\u200E1001' made A's webhook of the account a 400 on every retry, A's own orders with it).
   */
  async platformOrderProblems(partnerId: string, targetId: string, orders: readonly PlatformOrder[], stores: (p: PlatformOrder) => boolean = () => true): Promise<FieldError[]> {
    const out: FieldError[] = [];
    for (const [i, p] of orders.entries()) {
      const problem = stores(p) ? await this.platformOrderProblem(partnerId, targetId, p) : checkPlatformOrder(p, this.now(), true);
      if (problem) out.push({ path: `orders.${i}.${problem}`, message: PLATFORM_ORDER_PROBLEMS[problem] });
    }
    return out;
  }

  /**
   * checkPlatformOrder, with an id it refuses for a control or format character taken when the ledger
   * already holds this target's order of exactly that id (checkPlatformOrder's `held`). The ledger is
   * read only for such an id: an ordinary order costs no round trip.
   */
  private async platformOrderProblem(partnerId: string, targetId: string, p: PlatformOrder): Promise<keyof typeof PLATFORM_ORDER_PROBLEMS | undefined> {
    const nowMs = this.now();
    const problem = checkPlatformOrder(p, nowMs);
    if (problem !== 'orderId') return problem;
    const asHeld = checkPlatformOrder(p, nowMs, true);
    // its length, a lone surrogate (or no string at all): refused whoever holds it
    if (asHeld === 'orderId') return problem;
    return (await this.storedUnder(partnerId, targetId, p.orderId)) ? asHeld : problem;
  }

  /**
   * Orders a target platform reported (its webhook, or its order report during reconciliation).
   * Durable when this returns. Orders with an unusable shape are skipped (and logged), never half-stored.
   */
  async ingestPlatformOrders(partnerId: string, targetId: string, orders: PlatformOrder[], source: PlatformOrderSource): Promise<PlatformOrderOutcome[]> {
    const out: PlatformOrderOutcome[] = [];
    for (const p of orders) {
      const problem = await this.platformOrderProblem(partnerId, targetId, p);
      if (problem) {
        this.deps.log.warn({ partnerId, targetId, orderId: p.orderId, problem }, 'platform order skipped');
        continue;
      }
      // In the order's currency only: a refund reported in another one is not applied (no FX; reconciliation reports it).
      const refunded = platformRefunded(p, VOIDED);
      if (refunded === undefined) this.deps.log.warn({ partnerId, targetId, orderId: p.orderId }, 'platform refund in another currency than its order; not applied');
      const floor: RefundedFloor | undefined = refunded !== undefined && refunded > 0 ? { amount: refunded, currency: p.total.currency, occurredAt: new Date(this.now()).toISOString() } : undefined;
      const outcome = await this.applyOrder(
        partnerId,
        {
          ref: (await this.platformRef(partnerId, targetId, p.orderId)).ref,
          orderId: p.orderId,
          source: source === 'webhook' ? 'platform_webhook' : 'platform_report',
          targetId,
          // Attribution hints are the platform's data, kept only when they could name something of ours:
          // an over-long one matches nothing and would only grow the order's record.
          clickId: hint(p.clickId),
          showId: undefined,
          externalShowId: hint(p.externalShowId),
          productId: hint(p.productId),
          createdAt: new Date(rfc3339Ms(p.createdAt)!).toISOString(),
          total: p.total,
          lines: [],
        },
        floor,
      );
      if (outcome.conflict) {
        // The first stored total stands (append-only, no ordering between a platform's reports to say
        // which is later): said to the caller (the webhook's `conflicting`), logged and counted here,
        // and reported by reconciliation as an amount_mismatch against the platform's report.
        platformOrderConflicts.inc({ platform_source: source });
        this.deps.log.warn({ partnerId, targetId, orderId: p.orderId, ledgerTotal: outcome.conflict.ledgerTotal, platformTotal: p.total, source }, 'platform order re-sent with another total than the ledger holds; the ledger keeps its own');
      }
      // (always stored: a platform order has no recorded currency to refuse it)
      out.push({ ...outcome, createdAtMs: outcome.createdAtMs ?? rfc3339Ms(p.createdAt)! });
    }
    return out;
  }

  /**
   * The ledger ref of a platform order: platformOrderRef, or
   * - for a target whose id has a '%', ':', '{' or '}': the legacyPlatformOrderRef it was stored under
   *   before keyPart, when that record is this target's order (so a re-reported order is found again
   *   instead of being stored twice);
   * - for any other target, an order id with a ':': the displacedPlatformOrderRef when the record under
   *   platformOrderRef is another target's order. That ref is then that target's legacy ref (target
   *   `t`'s `z:7` is `@t:z:7`, target `t:z`'s order `7` from before keyPart): written there, the order
   *   was stored nowhere and its refund applied to the other's order. Legacy records are no longer
   *   written (a target with ':' stores a new order under its new ref), so which of the two refs holds
   *   `t`'s order is settled by that one read.
   * An order id without ':' of such a target (every order the benchmarks send) reads nothing here: its
   * ref can be no other target's (a legacy ref `@T:<id>` of a target T with ':' is `@t:` + `z:<id>`).
   *
   * `read` (storedUnder, order()): the record under the ref too (`stored`: null for none). The record
   * read to decide the ref is returned when it is the one under it, not read again: storedUnder and
   * order() read an ordinary target's order with ':' twice (two HGETs of one record; a shared account's
   * webhook order three, its storedUnder and then its ingest), and the two reads could see two versions
   * of it. A displaced order is read under its two refs, as before.
   */
  private async platformRef(partnerId: string, targetId: string, orderId: string, read = false): Promise<{ ref: string; stored?: StoredOrder | null }> {
    const { repo } = this.deps;
    const under = async (ref: string): Promise<{ ref: string; stored?: StoredOrder | null }> => (read ? this.recordUnder(partnerId, ref) : { ref });
    const ref = platformOrderRef(targetId, orderId);
    const legacy = legacyPlatformOrderRef(targetId, orderId);
    if (legacy === ref) {
      if (!orderId.includes(':')) return under(ref);
      const held = await repo.get(partnerId, ref);
      return held !== null && held.order.targetId !== targetId ? under(displacedPlatformOrderRef(targetId, orderId)) : { ref, stored: held };
    }
    const old = await repo.get(partnerId, legacy);
    return old?.order.targetId === targetId && old.order.orderId === orderId ? { ref: legacy, stored: old } : under(ref);
  }

  /** `ref` and the record stored under it (null: none). */
  private async recordUnder(partnerId: string, ref: string): Promise<{ ref: string; stored: StoredOrder | null }> {
    return { ref, stored: await this.deps.repo.get(partnerId, ref) };
  }

  /** `recorded`: a partner order's recorded currency (handlePartnerEvent), read alongside the attribution's reads; another than the order's: not booked. */
  private async applyOrder(partnerId: string, order: NormalizedOrder, floor?: RefundedFloor, recorded?: Promise<string | undefined>): Promise<OrderOutcome & { createdAtMs?: number }> {
    const { repo, externalShows } = this.deps;
    const [attribution, recordedCurrency] = await Promise.all([this.attribute(partnerId, order), recorded]);
    if (recordedCurrency !== undefined && recordedCurrency !== order.total.currency) return { ref: order.ref, orderId: order.orderId, isNew: false, attributed: false };
    // Rule 2 could not apply because the index has no entry for this platform show (yet): the order
    // waits for it — listed BEFORE it is stored. Listed after, a failure or crash between the two
    // writes left it stored unattributed and listed nowhere: a reconciliation re-run finds it in the
    // ledger (nothing to heal, nothing re-ingested), so it stayed unattributed for good. A listed ref
    // whose order is not stored (yet) just keeps waiting (attributeWaiting).
    const waits = !attribution.attributed && order.targetId !== undefined && order.externalShowId !== undefined;
    if (waits) await externalShows.addWaiting(order.targetId!, order.externalShowId!, order.ref);
    const res = await repo.applyOrder(partnerId, order, attribution, { nowMs: this.now(), holdMs: this.holdMs(), ...(floor ? { refundedFloor: floor } : {}) });
    const conflict = !res.isNew && (res.gross !== order.total.amount || res.currency !== order.total.currency) ? { conflict: { ledgerTotal: { amount: res.gross, currency: res.currency }, reportedTotal: order.total } } : {};
    // Also on the duplicate path: a first attempt may have stored the order and failed before these.
    if (res.isNew && res.attributed && res.accrued > 0) commissionBooked.inc({ currency: res.currency }, res.accrued);
    if (!res.attributed && order.targetId && order.externalShowId) {
      // Stored unattributed (now or by an earlier delivery): waiting, then look again — an entry
      // written since our first read means its sync may already have checked the waiting list, so
      // this order is attributed here.
      if (!waits) await externalShows.addWaiting(order.targetId, order.externalShowId, order.ref);
      if (await externalShows.get(order.targetId, order.externalShowId)) {
        const attributed = await this.attributeWaiting(partnerId, order.targetId, order.externalShowId);
        if (attributed.includes(order.ref)) return { ref: order.ref, orderId: order.orderId, isNew: res.isNew, attributed: true, createdAtMs: res.createdAtMs, ...conflict };
      }
    }
    // A new order's stored decision is the one made here: no need to read it back.
    await this.notify(partnerId, order.ref, res, res.isNew && attribution.attributed ? { order, attribution, accrued: res.accrued } : undefined);
    return { ref: order.ref, orderId: order.orderId, isNew: res.isNew, attributed: res.attributed, createdAtMs: res.createdAtMs, ...conflict };
  }

  /**
   * The external-show index now knows `externalId`: attribute the orders that were stored
   * unattributed while it did not (rule 2), each once, with new ledger entries (never an edit).
   * Safe to call again and concurrently. Returns the refs it attributed.
   */
  async attributeWaiting(partnerId: string, targetId: string, externalId: string): Promise<string[]> {
    const { repo, externalShows, log } = this.deps;
    const refs = await externalShows.waiting(targetId, externalId);
    const done: string[] = [];
    const settled: string[] = [];
    for (const ref of refs) {
      const stored = await repo.get(partnerId, ref);
      if (!stored) continue; // not this partner's (or not stored yet): leave it waiting
      if (stored.attribution.attributed) {
        // Attributed by an earlier call whose hook failed or that died before it (the sync is retried):
        // the partner is still owed its order_attributed, and this order leaves the waiting list now.
        // (A concurrent call may be about to tell it too: the hook's key makes that one message.)
        if (!stored.notified) await this.notify(partnerId, ref, { isNew: false, attributed: true, createdAtMs: stored.createdAtMs, showId: stored.showId, notified: false, accrued: stored.accrued, currency: stored.currency });
        settled.push(ref);
        continue;
      }
      const a = await this.attribute(partnerId, stored.order);
      if (!a.attributed) continue; // the entry is gone again: keep waiting
      const note = 're-attributed: the platform show was indexed after the order arrived';
      const changed = await repo.reattribute(partnerId, ref, { ...a, note: a.note ? `${a.note}; ${note}` : note }, { nowMs: this.now(), holdMs: this.holdMs() });
      settled.push(ref);
      if (!changed) continue; // another caller attributed it first
      if (changed.accrued > 0) commissionBooked.inc({ currency: stored.currency }, changed.accrued);
      await this.notify(partnerId, ref, { isNew: false, attributed: true, createdAtMs: stored.createdAtMs, showId: a.showId, notified: false, accrued: changed.accrued, currency: stored.currency });
      done.push(ref);
    }
    await externalShows.doneWaiting(targetId, externalId, settled);
    if (done.length > 0) log.info({ partnerId, targetId, externalId, orders: done.length }, 'orders attributed after their platform show was indexed');
    return done;
  }

  private async notify(partnerId: string, ref: string, res: Omit<ApplyOrderResult, 'gross'>, fresh?: { order: NormalizedOrder; attribution: Attribution; accrued: number }): Promise<void> {
    const hook = this.deps.onOrderAttributed;
    if (!hook || !res.attributed || res.notified) return;
    const stored = fresh ?? (await this.deps.repo.get(partnerId, ref));
    if (!stored || !stored.attribution.attributed) return;
    const a = stored.attribution;
    const sent = await hook(
      partnerId,
      {
        orderId: stored.order.orderId,
        source: stored.order.source,
        via: a.via,
        showId: a.showId,
        targetId: a.targetId,
        productId: a.productId,
        clickId: a.clickId,
        createdAt: stored.order.createdAt,
        total: stored.order.total,
        commission: { amount: stored.accrued, currency: stored.order.total.currency },
        commissionRateBps: a.rateBps,
      },
      `order_attributed:${ref}`,
    );
    if (sent !== false) await this.deps.repo.markNotified(partnerId, ref);
  }

  /** docs/attribution.md rules 1 and 2. */
  async attribute(partnerId: string, order: NormalizedOrder): Promise<Attribution> {
    const { partners, links, externalShows } = this.deps;
    // The cached bundle (≤ 1 s old; this process's own partner/target writes drop it at once): one
    // Redis read and a parse of the partner's whole hash less per order.
    const bundle = await partners.bundleCached(partnerId);
    const targets = new Map<string, TargetRecord>((bundle?.targets ?? []).map((t) => [t.id, t]));
    const rateFor = (targetId: string): number => targets.get(targetId)?.commissionRateBps ?? 0;

    if (order.targetId && order.externalShowId) {
      const showId = await externalShows.get(order.targetId, order.externalShowId);
      if (showId) {
        const rateBps = rateFor(order.targetId);
        return { attributed: true, via: 'platform_show', showId, targetId: order.targetId, productId: order.productId, clickId: order.clickId, rateBps, ...(targets.has(order.targetId) ? {} : { note: 'target deleted: no commission rate' }) };
      }
    }
    const click = order.clickId ? await links.findClick(order.clickId) : null;
    const a = attributeByClick(partnerId, order, click, bundle?.partner.attributionWindowHours ?? DEFAULT_WINDOW_HOURS, rateFor);
    if (!a.attributed && order.externalShowId && !order.clickId) return { attributed: false, reason: 'unknown_show', clickId: undefined };
    if (a.attributed && !targets.has(a.targetId)) return { ...a, note: 'target deleted: no commission rate' };
    return a;
  }

  /**
   * Reports read the ledger's aggregates for the days the period covers whole, and single orders only
   * for the (at most two) days it covers in part — never every order of the period.
   */
  async report(partnerId: string, filter: ReportFilter): Promise<AttributionReport> {
    const range = { fromMs: filter.fromMs ?? -Infinity, toMs: filter.toMs ?? Infinity };
    const rows = filter.showId ? await this.showRows(partnerId, filter.showId, range, false) : await this.partnerRows(partnerId, range);
    return aggregate(rows, filter);
  }

  async showReport(partnerId: string, showId: string, filter: Omit<ReportFilter, 'showId' | 'targetId'>): Promise<ShowAttributionReport> {
    const rows = await this.showRows(partnerId, showId, { fromMs: filter.fromMs ?? -Infinity, toMs: filter.toMs ?? Infinity }, true);
    return showBreakdown(showId, rows);
  }

  private async partnerRows(partnerId: string, range: DayRange): Promise<AggRow[]> {
    const { repo } = this.deps;
    const days = await repo.days(partnerId, range);
    const whole = days.filter((d) => coversDay(range, d));
    const rows = await repo.dayAggregates(partnerId, whole);
    for (const d of days.filter((x) => !coversDay(range, x))) {
      for await (const page of repo.ordersOfDay(partnerId, d, range)) for (const o of page) rows.push(orderAgg(o, this.now(), this.holdMs()));
    }
    return rows;
  }

  /**
   * A show's rows: its aggregates per day; single orders for a day the period covers in part, and
   * (when `split`) for the day whose orders are partly still in the hold period and partly past it.
   */
  private async showRows(partnerId: string, showId: string, range: DayRange, split: boolean): Promise<AggRow[]> {
    const { repo } = this.deps;
    const nowMs = this.now();
    const holdMs = this.holdMs();
    const byDay = await repo.showAggregates(partnerId, showId);
    const rows: AggRow[] = [];
    for (const [day, dayRows] of byDay) {
      const start = day * DAY_MS;
      const end = start + DAY_MS;
      if (end <= range.fromMs || start >= range.toMs) continue;
      const allApproved = nowMs >= end - 1 + holdMs;
      const allPending = nowMs < start + holdMs;
      if (coversDay(range, day) && (!split || allApproved || allPending)) {
        for (const r of dayRows) rows.push({ ...r, pending: allPending ? r.commission : 0, approved: allApproved ? r.commission : 0 });
        continue;
      }
      for await (const page of repo.ordersOfDay(partnerId, day, range)) {
        for (const o of page) if (o.attributed && o.showId === showId) rows.push(orderAgg(o, nowMs, holdMs));
      }
    }
    return rows;
  }

  /** A partner order (`targetId` undefined) or a platform-native order of `targetId`. */
  async order(partnerId: string, orderId: string, targetId?: string): Promise<OrderView | null> {
    const { ref, stored: s } = targetId ? await this.platformRef(partnerId, targetId, orderId, true) : await this.recordUnder(partnerId, partnerOrderRef(orderId));
    // A target's ref can be another target's legacy ref (`@t:` + `z:7` is target t:z's order 7): that
    // record is not this target's order (storedUnder's rule), so it is not shown as one.
    if (!s || (targetId !== undefined && s.order.targetId !== targetId)) return null;
    return {
      orderId: s.order.orderId,
      ref,
      source: s.source,
      createdAt: s.order.createdAt,
      total: s.order.total,
      attribution: s.attribution,
      status: commissionStatus(s, this.now(), this.holdMs()),
      refundedAmount: Math.min(s.refunded, s.gross),
      commission: { amount: s.accrued - s.reversed, currency: s.currency },
      accrued: s.accrued,
      reversed: s.reversed,
      refunds: s.refunds,
      entries: s.entries,
    };
  }

  /** Which of `targetIds` reported a platform order with this id (for a lookup made without its targetId). */
  async reportedBy(partnerId: string, orderId: string, targetIds: readonly string[]): Promise<string[]> {
    const found: string[] = [];
    for (const targetId of targetIds) if (await this.storedUnder(partnerId, targetId, orderId)) found.push(targetId);
    return found;
  }

  /**
   * Whether the ledger holds `targetId`'s platform order of exactly this id (under its ref or its legacy
   * ref): an id held (platformOrderProblem), the orders a target of a shared account already stores
   * (AccountOrders: rule 1, webhookOrders), the targets that reported an id (reportedBy). The ref is the
   * record's key, and an id without lone surrogates (checkPlatformOrder refuses them first) is that key
   * exactly in UTF-8: a record found under it is an order of this id, of whichever target the record
   * names (another's legacy ref: target `t`'s `z:7` is target `t:z`'s `7`; counted as `t`'s, the
   * account's order `z:7` was left to `t` by its other targets and never stored). The id in the unpacked
   * order is the one asked for (packOrder leaves it out; unpackOrder derives it from the ref): its check
   * only catches another target's legacy ref, as the target check does.
   */
  async storedUnder(partnerId: string, targetId: string, orderId: string): Promise<boolean> {
    const { stored } = await this.platformRef(partnerId, targetId, orderId, true);
    return stored?.order.targetId === targetId && stored.order.orderId === orderId;
  }

  /** The target's platform-show index names a show of ours for this platform show (a mirror of it holds it: rule 2). */
  async holdsPlatformShow(targetId: string, externalId: string): Promise<boolean> {
    return (await this.deps.externalShows.get(targetId, externalId)) !== null;
  }

  /** Every stored order of the partner created in the range (tests; reconciliation streams `scan` instead). */
  async orders(partnerId: string, range?: { fromMs: number; toMs: number }): Promise<StoredOrder[]> {
    const out: StoredOrder[] = [];
    for await (const page of this.deps.repo.scan(partnerId, range)) out.push(...page);
    return out;
  }

  /**
   * The platform-native orders of one target created in the range, for reconciliation (lookups and a
   * paged scan): those under platformOrderRef and, for a target whose id has a '%', ':', '{' or '}',
   * those still under the legacyPlatformOrderRef of before keyPart. A ref with a target's prefix can be
   * another target's legacy ref (`@t:` + `z:7` is target t:z's order 7, or target t's order z:7), so
   * such a row is checked against the target stored with the order; an order stored under both refs
   * comes back once (the legacy one, which platformRef keeps updating).
   * `lookup` answers by ref whatever day the ledger dates the order: an order the ledger holds is held
   * (the by-ref read is what the ingest itself decides by), with the ledger's date (reconcile.stream.ts
   * owningDateMs: with the report's, it decides which period compares it). Filtered to the range, an order the ledger
   * dated just outside it and the platform's report inside (clock skew, a time zone) was reported
   * `missing_in_ledger` and "healed": the heal changed nothing (the ref was taken) but was reported and
   * remembered for every later run, and the order went to `sift` as absent (on a shared account another
   * target could be handed it). `scan` (what the report did not name) stays the range's.
   */
  targetLedger(partnerId: string, targetId: string, range: DayRange, mark = randomUUID()): TargetLedger {
    const { repo } = this.deps;
    const prefix = platformOrderRef(targetId, '');
    const legacy = legacyPlatformOrderRef(targetId, '');
    const special = legacy !== prefix;
    const displaced = displacedPlatformOrderRef(targetId, '');
    const idOf = (ref: string): string => ref.slice(ref.startsWith(prefix) ? prefix.length : ref.startsWith(displaced) ? displaced.length : legacy.length);
    const view = (o: OrderRow): LedgerOrder => ({ orderId: idOf(o.ref), currency: o.currency, gross: o.gross, refunded: o.refunded });
    // Another target's legacy ref under this prefix is `@<targetId>:<rest of its id>:<order>`: the part
    // after the prefix has a ':'. Without one (every order of an ordinary id without ':') the ref decides.
    const mine: RowKeep = (row, orderTargetId) => {
      if (!special && !idOf(row.ref).includes(':')) return true;
      const t = orderTargetId();
      return t !== undefined ? t === targetId : row.ref.startsWith(prefix);
    };
    // The refs an id may be under: platformOrderRef, and the legacy ref (a target whose id has a ':') or
    // the displaced ref (an ordinary target's id with ':'; platformRef). An id found under two comes back
    // once: the legacy row, which platformRef keeps updating (for an ordinary target `legacy` is `prefix`:
    // the platformOrderRef row; platformRef settles on one of the two, so both are not written by it).
    const refsOf = (id: string): string[] =>
      special ? [platformOrderRef(targetId, id), legacyPlatformOrderRef(targetId, id)] : id.includes(':') ? [platformOrderRef(targetId, id), displacedPlatformOrderRef(targetId, id)] : [platformOrderRef(targetId, id)];
    const lookup: TargetLedger['lookup'] = async (orderIds) => {
      const found = new Map<string, { row: OrderRow; named: boolean }>();
      for (const l of await repo.lookupAndMark(partnerId, orderIds.flatMap(refsOf), mark, mine)) {
        const id = idOf(l.row.ref);
        if (!found.has(id) || l.row.ref.startsWith(legacy)) found.set(id, l);
      }
      return [...found.values()].map((l) => ({ order: view(l.row), named: l.named, createdAtMs: l.row.createdAtMs }));
    };
    const period = { fromMs: range.fromMs, toMs: range.toMs };
    if (!special) {
      return {
        period,
        lookup,
        scan: async function* () {
          for await (const page of repo.scanUnmarked(partnerId, range, (ref) => ref.startsWith(prefix) || ref.startsWith(displaced), mark, mine)) yield page.map(view);
        },
        close: () => repo.dropMarks(partnerId, mark),
      };
    }
    return {
      period,
      lookup,
      scan: async function* () {
        for await (const page of repo.scanUnmarked(partnerId, range, (ref) => ref.startsWith(prefix) || ref.startsWith(legacy), mark, mine)) {
          // a new-ref order whose legacy ref holds this target's order too is the legacy row (this scan's or a lookup's)
          const twins = page.filter((o) => o.ref.startsWith(prefix)).map((o) => legacyPlatformOrderRef(targetId, idOf(o.ref)));
          const held = twins.length > 0 ? await repo.getMany(partnerId, twins, rowWithOrderTarget) : new Map<string, { orderTargetId: string | undefined }>();
          const kept = page.filter((o) => !o.ref.startsWith(prefix) || held.get(legacyPlatformOrderRef(targetId, idOf(o.ref)))?.orderTargetId !== targetId);
          if (kept.length > 0) yield kept.map(view);
        }
      },
      close: () => repo.dropMarks(partnerId, mark),
    };
  }

  /** The stored orders created in the range, page by page (bounded memory). */
  scan(partnerId: string, range: { fromMs: number; toMs: number }): AsyncGenerator<StoredOrder[]> {
    return this.deps.repo.scan(partnerId, range);
  }
}

/** The range contains the whole UTC day. */
function coversDay(range: DayRange, day: number): boolean {
  return range.fromMs <= day * DAY_MS && (day + 1) * DAY_MS <= range.toMs;
}

/**
 * A platform's attribution hint (click id, platform show id, product id), kept only when it could name
 * something of ours: 1 to PLATFORM_ID_MAX characters without control or format characters or lone
 * surrogates, as an order id new to the ledger (isPlatformIdText). An over-long one only grew the order's
 * record; one with a bidi override or a zero-width character read reversed or invisibly in it.
 */
function hint(v: string | undefined): string | undefined {
  return isPlatformIdText(v) ? v : undefined;
}
