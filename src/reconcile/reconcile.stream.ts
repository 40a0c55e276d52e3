/**
 * Reconciliation of one target, streamed (docs/attribution.md "Reconciliation at volume"): the
 * platform's report is compared page by page against the ledger orders those pages name (point
 * lookups), and the ledger is then scanned page by page for orders the report did not name. Which
 * orders the report named is kept by the ledger (in Redis, per run): the process holds a few pages,
 * not the period's orders nor their ids.
 */
import type { PlatformOrder } from '../targets/target.adapter.js';
import type { Discrepancy } from '../store/reconcile.repository.js';
import type { SiftOrders } from './account-orders.js';
import { compareTarget, type Comparison, type LedgerOrder } from './reconcile.compare.js';

export interface TargetLedger {
  /**
   * The ledger's view of these platform order ids of the target (every one the ledger holds, whatever
   * day it dates it: the report's period decides what the report names, the ref whether it is held),
   * each with whether an earlier lookup of this run named it already; remembers them as named.
   */
  lookup(orderIds: string[]): Promise<{ order: LedgerOrder; named: boolean }[]>;
  /** The ledger orders of the target created in the period that no lookup named, page by page. */
  scan(): AsyncIterable<LedgerOrder[]>;
  /** Forgets what this run named. */
  close(): Promise<void>;
}

export interface StreamedComparison {
  platformOrders: number;
  /** Of platformOrders, those `sift` left to another target of the account. */
  otherTargetOrders: number;
  /** Ledger orders of the target before any heal of this run: those the report names (wherever the ledger dates them) and those of the period it does not. */
  ledgerOrders: number;
  discrepancies: Discrepancy[];
}

/** Report pages compared at once (their lookups overlap; each page's heals run when its comparison is done). */
const PAGES_IN_FLIGHT = 4;

/**
 * `heal` runs once per report page that has something to heal. `sift` (account-orders.ts) gets the
 * page's orders the target's ledger lacks and keeps those that are this target's to compare and heal:
 * the others (another target's on the same platform account) are counted, nothing more.
 */
export async function reconcileTargetStream(
  targetId: string,
  report: AsyncIterable<PlatformOrder[]>,
  ledger: TargetLedger,
  voided: RegExp,
  heal: (cmp: Comparison) => Promise<void>,
  sift?: SiftOrders,
): Promise<StreamedComparison> {
  const discrepancies: Discrepancy[] = [];
  let platformOrders = 0;
  let otherTargetOrders = 0;
  let ledgerOrders = 0;
  const comparePage = async (page: PlatformOrder[]): Promise<void> => {
    const looked = await ledger.lookup([...new Set(page.map((p) => p.orderId))]);
    const found = looked.map((l) => l.order);
    // an order the report names on two pages is one ledger order
    ledgerOrders += looked.filter((l) => !l.named).length;
    if (sift) {
      const held = new Set(found.map((l) => l.orderId));
      const absent = page.filter((p) => !held.has(p.orderId));
      const { mine, others } = absent.length > 0 ? await sift(absent) : { mine: absent, others: 0 };
      otherTargetOrders += others;
      if (others > 0) {
        const kept = new Set(mine);
        page = page.filter((p) => held.has(p.orderId) || kept.has(p));
      }
    }
    // every ledger order handed in is named by the page: compareTarget adds no missing_in_platform here
    const cmp = compareTarget(targetId, page, found, voided);
    discrepancies.push(...cmp.discrepancies);
    if (cmp.heal.length > 0) await heal(cmp);
  };
  const inflight: Promise<void>[] = [];
  try {
    for await (const page of report) {
      platformOrders += page.length;
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
  return { platformOrders, otherTargetOrders, ledgerOrders, discrepancies };
}

/** A report that arrived whole, as pages. */
export async function* pagesOf<T>(items: T[], size = 1000): AsyncGenerator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
