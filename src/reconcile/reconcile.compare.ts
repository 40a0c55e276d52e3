/**
 * Ledger vs platform report for one target and period (docs/attribution.md and README "Reconciliation"). Pure: which discrepancies
 * exist and which platform orders must be (re-)ingested to heal the ledger.
 *
 * Money is compared only within one currency (no FX). A platform order in another currency than the
 * ledger's, a refund reported in another currency than its order's, and an order whose currency is
 * not an ISO 4217 currency are discrepancies of their own (`reason`), never amount differences: their
 * amounts are not compared, and none of them is healed into the ledger in another currency.
 */
import { checkPlatformOrder, PLATFORM_ORDER_PROBLEMS } from '../attribution/platform-order-check.js';
import { platformRefunded } from '../attribution/platform-refund.js';
import { formatMoney, isCurrency, type Money } from '../domain/money.js';
import { quotedText } from '../targets/platform-text.js';
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

/** Money as a discrepancy's detail shows it: `10.50 USD`, or the raw amount and a quoted code that is no currency. */
function shown(m: Money): string {
  return isCurrency(m.currency) ? formatMoney(m) : `${m.amount} ${JSON.stringify(String(m.currency).slice(0, 16))}`;
}

export function compareTarget(targetId: string, report: PlatformOrder[], ledger: LedgerOrder[], voided: RegExp, nowMs = Date.now()): Comparison {
  const discrepancies: Discrepancy[] = [];
  const heal: PlatformOrder[] = [];
  const inLedger = new Map(ledger.map((l) => [l.orderId, l]));
  const inReport = new Set<string>();
  for (const p of report) {
    inReport.add(p.orderId);
    const l = inLedger.get(p.orderId);
    const what = l ? 'not compared with the ledger' : 'not added to the ledger';
    if (p.unreadable !== undefined) {
      // One order of the report the adapter could not read (adapter.ts PlatformOrder.unreadable): that
      // order alone is reported and left as it is; it failed the target's whole report before.
      discrepancies.push({ kind: l ? 'amount_mismatch' : 'missing_in_ledger', reason: 'invalid_order', targetId, orderId: p.orderId, detail: `platform reports ${p.unreadable}: ${what}`, healed: false });
      continue;
    }
    if (!isCurrency(p.total.currency)) {
      // Not a currency the ledger counts in (refused at the edge for partner events too): nothing to compare, nothing to add.
      discrepancies.push({ kind: l ? 'amount_mismatch' : 'missing_in_ledger', reason: 'invalid_currency', targetId, orderId: p.orderId, detail: `platform reports ${shown(p.total)}, not an ISO 4217 currency: ${what}`, healed: false });
      continue;
    }
    // An order the ledger refuses (a negative total or refund, a time over a year ahead): handed to it,
    // it was skipped, and the run said "added to the ledger", healed, and remembered that heal.
    // An id the ledger already holds is compared whatever characters it has (checkPlatformOrder's
    // `held`): only an order new to the ledger is refused for its id.
    const problem = checkPlatformOrder(p, nowMs, l !== undefined);
    if (problem) {
      const field = problem === 'refunded' ? `a refund of ${shown(p.refunded)}` : problem === 'total' ? shown(p.total) : `${problem} ${quotedText(String(p[problem]).slice(0, 40))}`;
      discrepancies.push({ kind: l ? 'amount_mismatch' : 'missing_in_ledger', reason: 'invalid_order', targetId, orderId: p.orderId, detail: `platform reports ${field}; the ledger takes ${PLATFORM_ORDER_PROBLEMS[problem]}: ${what}`, healed: false });
      continue;
    }
    const refunded = platformRefunded(p, voided);
    const refundInOtherCurrency = (): Discrepancy => ({
      kind: 'amount_mismatch',
      reason: 'currency_mismatch',
      targetId,
      orderId: p.orderId,
      detail: `platform reports a refund of ${shown(p.refunded)} on an order in ${p.total.currency}: amounts in different currencies are not compared, the refund is not added`,
      healed: false,
    });
    if (!l) {
      discrepancies.push({ kind: 'missing_in_ledger', targetId, orderId: p.orderId, detail: `platform reports ${p.total.amount} ${p.total.currency}; added to the ledger`, healed: true });
      if (refunded === undefined) {
        // The order is added; its refund in another currency is not (the ledger would not apply it either).
        heal.push({ ...p, refunded: { amount: 0, currency: p.total.currency } });
        discrepancies.push(refundInOtherCurrency());
      } else {
        heal.push(p);
      }
      continue;
    }
    if (l.currency !== p.total.currency) {
      // Ledger entries are never edited, and amounts in two currencies are not compared: a person looks.
      discrepancies.push({
        kind: 'amount_mismatch',
        reason: 'currency_mismatch',
        targetId,
        orderId: p.orderId,
        detail: `currency differs: ledger ${shown({ amount: l.gross, currency: l.currency })}, platform ${shown(p.total)}; amounts in different currencies are not compared`,
        healed: false,
      });
      continue;
    }
    if (l.gross !== p.total.amount) {
      // Ledger entries are never edited: a different total is reported for a person to look at.
      discrepancies.push({ kind: 'amount_mismatch', targetId, orderId: p.orderId, detail: `ledger ${l.gross} ${l.currency}, platform ${p.total.amount} ${p.total.currency}`, healed: false });
      continue;
    }
    if (refunded === undefined) {
      discrepancies.push(refundInOtherCurrency());
      continue;
    }
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
