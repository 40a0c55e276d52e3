/**
 * Ledger vs platform report for one target and period (docs/attribution.md and README "Reconciliation"). Pure: which discrepancies
 * exist and which platform orders must be (re-)ingested to heal the ledger.
 */
import type { PlatformOrder } from '../targets/target.adapter.js';
import type { Discrepancy } from '../store/reconcile.repository.js';

/** The ledger's view of one platform-native order. */
export interface LedgerOrder {
  orderId: string;
  currency: string;
  gross: number;
  refunded: number;
}

export interface Comparison {
  discrepancies: Discrepancy[];
  /** Platform orders to hand to attribution (idempotent by id; refunds apply only their increase). */
  heal: PlatformOrder[];
}

export function platformRefunded(p: PlatformOrder, voided: RegExp): number {
  const isVoid = p.status !== undefined && voided.test(p.status);
  return isVoid ? Math.max(p.total.amount, p.refunded.amount) : p.refunded.amount;
}

export function compareTarget(targetId: string, report: PlatformOrder[], ledger: LedgerOrder[], voided: RegExp): Comparison {
  const discrepancies: Discrepancy[] = [];
  const heal: PlatformOrder[] = [];
  const inLedger = new Map(ledger.map((l) => [l.orderId, l]));
  const inReport = new Set<string>();
  for (const p of report) {
    inReport.add(p.orderId);
    const l = inLedger.get(p.orderId);
    if (!l) {
      discrepancies.push({ kind: 'missing_in_ledger', targetId, orderId: p.orderId, detail: `platform reports ${p.total.amount} ${p.total.currency}; added to the ledger`, healed: true });
      heal.push(p);
      continue;
    }
    if (l.currency !== p.total.currency || l.gross !== p.total.amount) {
      // Ledger entries are never edited: a different total is reported for a person to look at.
      discrepancies.push({ kind: 'amount_mismatch', targetId, orderId: p.orderId, detail: `ledger ${l.gross} ${l.currency}, platform ${p.total.amount} ${p.total.currency}`, healed: false });
      continue;
    }
    const refunded = platformRefunded(p, voided);
    if (refunded > l.refunded) {
      const isVoid = p.status !== undefined && voided.test(p.status);
      discrepancies.push({
        kind: isVoid ? 'status_mismatch' : 'amount_mismatch',
        targetId,
        orderId: p.orderId,
        detail: isVoid ? `platform status ${p.status}; ledger had ${l.refunded} refunded of ${l.gross}; reversal added` : `platform refunded ${refunded}, ledger ${l.refunded}; reversal added`,
        healed: true,
      });
      heal.push(p);
    } else if (refunded < l.refunded) {
      discrepancies.push({ kind: 'amount_mismatch', targetId, orderId: p.orderId, detail: `ledger refunded ${l.refunded}, platform only ${refunded}`, healed: false });
    }
  }
  for (const l of ledger) {
    if (!inReport.has(l.orderId)) {
      discrepancies.push({ kind: 'missing_in_platform', targetId, orderId: l.orderId, detail: `ledger has ${l.gross} ${l.currency}; the platform's report does not`, healed: false });
    }
  }
  return { discrepancies, heal };
}
