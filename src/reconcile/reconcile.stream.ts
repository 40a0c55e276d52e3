/**
 * Reconciliation of one target, streamed (docs/attribution.md "Reconciliation at volume"): the
 * platform's report is compared page by page against the ledger orders those pages name (point
 * lookups), and the ledger is then scanned page by page for orders the report did not name. Which
 * orders the report named is kept by the ledger (in Redis, per run): the process holds a few pages,
 * not the period's orders nor their ids.
 *
 * Periods and clock skew (docs/attribution.md "Periods and clock skew"): the report handed in covers
 * the ledger's period widened by a margin on both sides. An order belongs to one period: the one the
 * ledger dates it in when the ledger holds it, else the one the report dates it in. This run compares,
 * heals and counts only the orders of its period; a report order outside the period serves only to
 * name the ledger order of this period it matches (so that order is compared, not reported missing).
 */
import type { PlatformOrder } from '../targets/target.adapter.js';
import { reportedIn } from '../targets/report-order.js';
import type { Discrepancy } from '../store/reconcile.repository.js';
import type { SiftOrders } from './account-orders.js';
import { compareTarget, type Comparison, type LedgerOrder } from './reconcile.compare.js';

export interface TargetLedger {
  /** The run's period, [fromMs, toMs): the ledger orders it compares and counts are those it dates in it. */
  readonly period: { fromMs: number; toMs: number };
  /**
   * The ledger's view of these platform order ids of the target (every one the ledger holds, whatever
   * day it dates it: the ref decides whether it is held, `createdAtMs` whose period it is), each with
   * whether an earlier lookup of this run named it already; remembers them as named.
   */
  lookup(orderIds: string[]): Promise<{ order: LedgerOrder; named: boolean; createdAtMs: number }[]>;
  /** The ledger orders of the target created in the period that no lookup named, page by page. */
  scan(): AsyncIterable<LedgerOrder[]>;
  /** Forgets what this run named. */
  close(): Promise<void>;
}

export interface StreamedComparison {
  /** The report's orders dated in the period (not those of the margin around it). */
  platformOrders: number;
  /** Of platformOrders, those `sift` left to another target of the account. */
  otherTargetOrders: number;
  /** Ledger orders of the target dated in the period, before any heal of this run (named by the report or not). */
  ledgerOrders: number;
  discrepancies: Discrepancy[];
  /**
   * The report's `repeat` notes of this period (a later copy of an order in other data: PlatformOrder.repeat),
   * one discrepancy each, whatever the ledger holds: the same on every run. Kept apart from
   * `discrepancies`: none of them is a finding that replaces a heal an earlier run remembered.
   */
  repeated: Discrepancy[];
}

/** Report pages compared at once (their lookups overlap; each page's heals run when its comparison is done). */
const PAGES_IN_FLIGHT = 4;

/**
 * `heal` runs once per report page that has something to heal, with the ledger's date of each held
 * order it heals (a refund: the period the heal is remembered under is the ledger's). `sift`
 * (account-orders.ts) gets the page's orders of the period the target's ledger lacks and keeps those
 * that are this target's to compare and heal: the others (another target's on the same platform
 * account) are counted, nothing more.
 */
export async function reconcileTargetStream(
  targetId: string,
  report: AsyncIterable<PlatformOrder[]>,
  ledger: TargetLedger,
  voided: RegExp,
  heal: (cmp: Comparison, ledgerDated: ReadonlyMap<string, number>) => Promise<void>,
  sift?: SiftOrders,
): Promise<StreamedComparison> {
  const discrepancies: Discrepancy[] = [];
  const { fromMs, toMs } = ledger.period;
  const inPeriod = (ms: number): boolean => ms >= fromMs && ms < toMs;
  let platformOrders = 0;
  let otherTargetOrders = 0;
  let ledgerOrders = 0;
  const repeated: Discrepancy[] = [];
  const comparePage = async (page: PlatformOrder[]): Promise<void> => {
    // Every order of the page is looked up (and so named), also one of the margin: named, the ledger's
    // order of this period it matches is not reported missing_in_platform by the scan below.
    const looked = await ledger.lookup([...new Set(page.map((p) => p.orderId))]);
    const held = new Set(looked.map((l) => l.order.orderId));
    // Held: this period's when the ledger dates it in it (wherever the report dates it), else another
    // period's (compared there: the report's margin names it to that run); not held: the report's date decides.
    const ours = looked.filter((l) => inPeriod(l.createdAtMs));
    const owned = new Map(ours.map((l) => [l.order.orderId, l.createdAtMs]));
    // an order the report names on two pages is one ledger order
    ledgerOrders += ours.filter((l) => !l.named).length;
    // An unreadable order without a date (report-order.ts) is in every period whose report lists it: reported, never healed.
    page = page.filter((p) => (held.has(p.orderId) ? owned.has(p.orderId) : reportedIn(p, fromMs, toMs)));
    if (sift) {
      const absent = page.filter((p) => !held.has(p.orderId));
      const { mine, others } = absent.length > 0 ? await sift(absent) : { mine: absent, others: 0 };
      otherTargetOrders += others;
      if (others > 0) {
        const kept = new Set(mine);
        page = page.filter((p) => held.has(p.orderId) || kept.has(p));
      }
    }
    // A repeat note is no order: its discrepancy does not hang on the ledger (run 1 may or may not have
    // healed its first copy yet, a re-run finds it held) nor on which page's comparison ends first.
    // Its ledger order (the first copy's, compared on an earlier page) is not compared again here.
    const noted = new Set<string>();
    for (const p of page) {
      if (p.repeat === undefined) continue;
      noted.add(p.orderId);
      repeated.push({ kind: 'amount_mismatch', reason: 'invalid_order', targetId, orderId: p.orderId, detail: `platform reports ${p.repeat}: only its first copy is compared with the ledger`, healed: false });
    }
    if (noted.size > 0) page = page.filter((p) => p.repeat === undefined);
    // every ledger order handed in is named by the page: compareTarget adds no missing_in_platform here
    const cmp = compareTarget(targetId, page, ours.filter((l) => !noted.has(l.order.orderId)).map((l) => l.order), voided);
    discrepancies.push(...cmp.discrepancies);
    if (cmp.heal.length > 0) await heal(cmp, owned);
  };
  const inflight: Promise<void>[] = [];
  try {
    for await (const page of report) {
      for (const p of page) if (p.repeat === undefined && reportedIn(p, fromMs, toMs)) platformOrders += 1;
      const task = comparePage(page);
      task.catch(() => undefined); // awaited below; this only keeps a rejection from counting as unhandled meanwhile
      inflight.push(task);
      if (inflight.length >= PAGES_IN_FLIGHT) await inflight.shift();
    }
    await Promise.all(inflight);
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
