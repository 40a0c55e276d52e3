/**
 * What a platform says it refunded of one of its orders, in the order's own currency. Money is never
 * mixed across currencies (no FX): a refund a platform reports in another currency than the order's
 * total has no amount in the order's currency, so it is neither compared with the ledger's refunds
 * nor applied to the ledger (reconciliation reports it instead).
 */
import type { PlatformOrder } from '../targets/target.adapter.js';

/**
 * The cumulative refunded amount of `p` in `p.total.currency`: for an order the platform took back
 * (`voided` status) at least its total; undefined when the platform reports a non-zero refund in
 * another currency than the order's (and the order is not taken back).
 */
export function platformRefunded(p: PlatformOrder, voided: RegExp): number | undefined {
  const isVoid = p.status !== undefined && voided.test(p.status);
  const sameCurrency = p.refunded.currency === p.total.currency;
  if (isVoid) return sameCurrency ? Math.max(p.total.amount, p.refunded.amount) : p.total.amount;
  if (p.refunded.amount === 0) return 0;
  return sameCurrency ? p.refunded.amount : undefined;
}
