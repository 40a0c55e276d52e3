/**
 * Reconciliation of one target, streamed (docs/attribution.md "Reconciliation at volume"): the
 * platform's report is compared page by page against the ledger orders those pages name (point
 * lookups), and the ledger is then scanned page by page for orders the report did not name. Which
 * orders the report named is kept by the ledger (in Redis, per run): the process holds a few pages,
 * not the period's orders nor their ids.
 *
 * Periods and clock skew (docs/attribution.md "Periods and clock skew"): the report handed in covers
 * the ledger's period widened by a margin (`skewMs`) on both sides. An order belongs to one period
 * (owningDateMs): the one the ledger dates it in when the ledger holds it and the report dates it at
 * most the margin away, else the one the report dates it in. This run compares, heals and counts only
 * the orders of its period; a report order it leaves still names the ledger order it matches (so that
 * order is not reported missing here: it is compared in the report order's period).
 */
import type { PlatformOrder } from '../targets/target.adapter.js';
import { noteIn, reportedIn } from '../targets/report-order.js';
import type { Discrepancy } from '../store/reconcile.repository.js';
import type { SiftOrders } from './account-orders.js';
import { compareTarget, type Comparison, type LedgerOrder } from './reconcile.compare.js';

export interface TargetLedger {
  /** The run's period, [fromMs, toMs): the orders it compares and counts are those of it (owningDateMs), the ones it scans those the ledger dates in it. */
  readonly period: { fromMs: number; toMs: number };
  /**
   * The ledger's view of these platform order ids of the target (every one the ledger holds, whatever
   * day it dates it: the ref decides whether it is held, `createdAtMs` with the report's date whose period it is), each with
   * whether an earlier lookup of this run named it already; remembers them as named.
   */
  lookup(orderIds: string[]): Promise<{ order: LedgerOrder; named: boolean; createdAtMs: number }[]>;
  /** The ledger orders of the target created in the period that no lookup named, page by page. */
  scan(): AsyncIterable<LedgerOrder[]>;
  /** Forgets what this run named. */
  close(): Promise<void>;
}

export interface StreamedComparison {
  /**
   * The report's orders of the period (owningDateMs): those this run compared, sifted or healed (a
   * held order the report dates in the margin but the ledger in the period included; a held order the
   * report dates in the period but the ledger, at most the margin away, in another left out).
   */
  platformOrders: number;
  /** Of platformOrders, those `sift` left to another target of the account. */
  otherTargetOrders: number;
  /**
   * Ledger orders of the target of the period, before any heal of this run: those this run compared
   * (each once, whatever page named it) and those it reports missing_in_platform (dated in the period,
   * named by no report order).
   */
  ledgerOrders: number;
  discrepancies: Discrepancy[];
  /**
   * The report's `repeat` notes of this period (a later copy of an order in other data: PlatformOrder.repeat;
   * the first copy's period's when its report reads the note, else the note's own: noteIn), one discrepancy each,
   * whatever the ledger holds. On a shared account only the notes of this target's orders (placed by the
   * first copy's show and date, as the first copy is: account-orders.ts); a note never claims. Kept apart from `discrepancies`: none of them is a finding that replaces a heal an earlier
   * run remembered.
   */
  repeated: Discrepancy[];
}

/** RECONCILE_CLOCK_SKEW_MS's default. */
export const DEFAULT_RECONCILE_CLOCK_SKEW_MS = 300_000;

/**
 * The date whose period a held order the report dates at `reportMs` belongs to: the ledger's date when
 * the two are at most `skewMs` apart, else the report's. Either way that period's run reads the order
 * and so decides the same: the run of any period holding the ledger's date reads its report up to
 * `skewMs` beyond the period, so it reads a report date that close to the ledger's; a report date
 * further away is read by the run of its own period, whose report names it while the ledger's period's
 * report (widened by the margin only) may not. Leaving such an order to the ledger's period lost it: no
 * run compared it (a refund the platform made was never healed). A report date that does not parse
 * leaves the order to the ledger's period.
 */
export function owningDateMs(ledgerMs: number, reportMs: number, skewMs: number): number {
  return Number.isNaN(reportMs) || Math.abs(reportMs - ledgerMs) <= skewMs ? ledgerMs : reportMs;
}

/** What one page adds to ledgerOrders, settled in report order: the held orders it compared, and those it named first without comparing them. */
interface PageCount {
  compared: { id: string; named: boolean }[];
  leftFirst: string[];
  /** The page's repeat notes of the period that are this target's (reported in report order). */
  notes: PlatformOrder[];
}

/** Report pages compared at once (their lookups overlap; each page's heals run when its comparison is done). */
const PAGES_IN_FLIGHT = 4;

/**
 * `heal` runs once per report page that has something to heal, with, for each held order the page
 * compared, the date whose period it is (owningDateMs: a refund's heal is remembered under it). `sift`
 * (account-orders.ts) gets the page's orders of the period the target's ledger lacks and keeps those
 * that are this target's to compare and heal: the others (another target's on the same platform
 * account) are counted, nothing more.
 */
export async function reconcileTargetStream(
  targetId: string,
  report: AsyncIterable<PlatformOrder[]>,
  ledger: TargetLedger,
  voided: RegExp,
  heal: (cmp: Comparison, heldDated: ReadonlyMap<string, number>) => Promise<void>,
  sift?: SiftOrders,
  skewMs = DEFAULT_RECONCILE_CLOCK_SKEW_MS,
): Promise<StreamedComparison> {
  const discrepancies: Discrepancy[] = [];
  const { fromMs, toMs } = ledger.period;
  const inPeriod = (ms: number): boolean => ms >= fromMs && ms < toMs;
  let platformOrders = 0;
  let otherTargetOrders = 0;
  let ledgerOrders = 0;
  const repeated: Discrepancy[] = [];
  // Held orders a page named first without comparing them (the margin's, mostly): counted when a later
  // page compares them. Pages are settled in report order, and the lookup that names an order first is
  // its earliest page's, so each compared ledger order is counted once.
  const leftFirst = new Set<string>();
  const settle = (c: PageCount): void => {
    for (const id of c.leftFirst) leftFirst.add(id);
    for (const { id, named } of c.compared) if (!named || leftFirst.delete(id)) ledgerOrders += 1;
    for (const p of c.notes) {
      repeated.push({ kind: 'amount_mismatch', reason: 'invalid_order', targetId, orderId: p.orderId, detail: `platform reports ${p.repeat!}: only its first copy is compared with the ledger`, healed: false });
    }
  };
  const comparePage = async (page: PlatformOrder[]): Promise<PageCount> => {
    // Every order of the page is looked up (and so named), also one of the margin: named, the ledger's
    // order of this period it matches is not reported missing_in_platform by the scan below.
    const looked = await ledger.lookup([...new Set(page.map((p) => p.orderId))]);
    const held = new Map(looked.map((l) => [l.order.orderId, l]));
    // Each report order is compared in its period (owningDateMs): a held one in the ledger's when the
    // report dates it within the margin of the ledger's date, else in the report's; one the ledger lacks
    // in the report's (an unreadable order without a date, report-order.ts: in every period whose report
    // lists it, reported, never healed). The date each held order compared here is this period's by.
    const owned = new Map<string, number>();
    // A repeat note is no order: not compared, not counted, reported by one period's run (noteIn): the
    // first copy's period's, with its finding, when that run's report reads the note, else the note's
    // own period's; whatever the ledger holds by then.
    let notes = page.filter((p) => p.repeat !== undefined && noteIn(p, fromMs, toMs, skewMs));
    page = page.filter((p) => {
      if (p.repeat !== undefined) return false;
      const reportMs = Date.parse(p.createdAt);
      const l = held.get(p.orderId);
      if (!l) return reportedIn(p, fromMs, toMs);
      const ms = owningDateMs(l.createdAtMs, reportMs, skewMs);
      if (!inPeriod(ms)) return false;
      if (!owned.has(p.orderId)) owned.set(p.orderId, ms);
      return true;
    });
    platformOrders += page.length;
    const ours = looked.filter((l) => owned.has(l.order.orderId));
    if (sift) {
      // The notes go through sift with the orders, placed by their first copy's show and date: another
      // target's by the rules its first copy went by (it stores or claimed the order, or holds the first
      // copy's show); sift never claims for a note (account-orders.ts).
      const absent = page.filter((p) => !held.has(p.orderId));
      const absentNotes = notes.filter((p) => !held.has(p.orderId));
      const both = [...absent, ...absentNotes];
      const { mine } = both.length > 0 ? await sift(both) : { mine: both };
      const kept = new Set(mine);
      const left = absent.filter((p) => !kept.has(p));
      otherTargetOrders += left.length;
      if (left.length > 0) page = page.filter((p) => held.has(p.orderId) || kept.has(p));
      notes = notes.filter((p) => held.has(p.orderId) || kept.has(p));
    }
    // Its ledger order (the first copy's, compared on an earlier page) is not compared again by a note;
    // its discrepancy does not hang on the ledger (run 1 may or may not have healed its first copy yet, a
    // re-run finds it held) nor on which page's comparison ends first.
    // every ledger order handed in is named by the page: compareTarget adds no missing_in_platform here
    const cmp = compareTarget(targetId, page, ours.map((l) => l.order), voided);
    discrepancies.push(...cmp.discrepancies);
    if (cmp.heal.length > 0) await heal(cmp, owned);
    return {
      compared: ours.map((l) => ({ id: l.order.orderId, named: l.named })),
      leftFirst: looked.filter((l) => !l.named && !owned.has(l.order.orderId)).map((l) => l.order.orderId),
      notes,
    };
  };
  const inflight: Promise<PageCount>[] = [];
  try {
    for await (const page of report) {
      const task = comparePage(page);
      task.catch(() => undefined); // awaited below; this only keeps a rejection from counting as unhandled meanwhile
      inflight.push(task);
      if (inflight.length >= PAGES_IN_FLIGHT) settle(await inflight.shift()!);
    }
    // in report order (settle); a failure leaves the rest to the catch below
    while (inflight.length > 0) {
      settle(await inflight[0]!);
      void inflight.shift(); // settled just above
    }
    for await (const page of ledger.scan()) {
      for (const l of page) {
        ledgerOrders += 1;
        discrepancies.push({ kind: 'missing_in_platform', targetId, orderId: l.orderId, detail: `ledger has ${l.gross} ${l.currency}; the platform's report does not`, healed: false });
      }
    }
  } catch (err) {
    // A report page that failed midway (or a lookup): the pages already handed over finish first, so
    // no comparison is left running when the caller moves on, and this run's marks are dropped.
    await Promise.allSettled(inflight);
    await ledger.close().catch(() => undefined);
    throw err;
  }
  await ledger.close();
  return { platformOrders, otherTargetOrders, ledgerOrders, discrepancies, repeated };
}

/** A report that arrived whole, as pages. */
export async function* pagesOf<T>(items: T[], size = 1000): AsyncGenerator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
