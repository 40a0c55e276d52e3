/**
 * Bambuser's order report → PlatformOrder, and which shows a report for a period has to look at.
 * Pure, so the money conversion and the period rule are unit tested.
 *
 * What Bambuser knows about an order is what the merchant's site reported through the player's
 * conversion tracking (order id, value, currency, products) for a shopper who watched the show: no
 * refunds, no commission, no status. Amounts are decimals in major units; they are converted from
 * their decimal text, never through float arithmetic.
 */
import { rfc3339Ms } from '../../lib/timestamp.js';
import { decimalToMinor } from '../decimal-amount.js';
import { unreadableOrder, type ReportElement } from '../report-order.js';
import type { PlatformOrder } from '../target.adapter.js';
import { PermanentError } from '../target.errors.js';
import type { BambuserShow, BambuserStatsOrder } from './bambuser.schemas.js';

/**
 * Purchases are attributed to a show the shopper watched, live or as a replay, so they keep arriving
 * after the show ended. A show that ended longer ago than this before the period starts is not asked.
 */
export const ORDER_TAIL_MS = 30 * 24 * 3600_000;

/**
 * A JSON number is a double once JSON.parse has read it: any decimal of up to 15 significant digits
 * survives that exactly (it prints back as written), one of 16 or 17 may not (90071992547409.91 reads
 * as 90071992547409.9, 9007199254740990 cents). So a number amount is read only below 10^15 minor
 * units; a larger one is refused, not stored as another amount (a decimal string carries every digit).
 */
const EXACT_NUMBER_MINOR = 1e15;

function toMinor(value: number | string, currency: string, what: string): number {
  // String(49.9) === "49.9": JSON numbers print back as the shortest decimal that parses to them.
  let minor = decimalToMinor(typeof value === 'number' ? String(value) : value, currency);
  if (typeof value === 'number' && minor !== undefined && Math.abs(minor) >= EXACT_NUMBER_MINOR) minor = undefined;
  if (minor === undefined) throw new PermanentError(`malformed response from Bambuser order stats: ${what} "${String(value)}" is not a decimal amount`, 'malformed_response');
  return minor;
}

export function toPlatformOrder(showId: string, o: BambuserStatsOrder): PlatformOrder {
  const total = { amount: toMinor(o.orderValue, o.currency, `orderValue of ${o.orderId}`), currency: o.currency };
  const createdAt = rfc3339Ms(o.createdAt);
  if (createdAt === undefined) throw new PermanentError(`malformed response from Bambuser order stats: createdAt of ${o.orderId}`, 'malformed_response');
  return {
    orderId: o.orderId,
    externalShowId: showId,
    productId: o.products?.find((p) => p.productReference)?.productReference ?? undefined,
    clickId: undefined, // conversion tracking does not carry our click id
    createdAt: new Date(createdAt).toISOString(),
    total,
    refunded: { amount: 0, currency: o.currency }, // Bambuser never hears of refunds
    status: undefined,
    commission: undefined,
  };
}

/**
 * An order of a show's report: toPlatformOrder's, or, when Bambuser names it in a form that cannot be
 * read (an orderValue that is no decimal in its currency or past 10^15 minor units as a JSON number, a
 * currency that is no ISO code, a createdAt or products that cannot be read), that order marked
 * `unreadable`: reconciliation reports it (invalid_order) and never heals it. It failed the target's
 * whole report (`malformed_response`) before: every show's orders, for every period the show is asked.
 */
export function reportOrder(showId: string, e: ReportElement<BambuserStatsOrder>): PlatformOrder {
  const read = (r: Record<string, unknown>): { createdAt: unknown; currency: unknown; showId: string; status: undefined } => ({ createdAt: r['createdAt'], currency: r['currency'], showId, status: undefined });
  if (e.unreadable) return unreadableOrder(e.unreadable.orderId, e.unreadable.problem, read(e.unreadable.raw));
  try {
    return toPlatformOrder(showId, e.order);
  } catch (err) {
    if (!(err instanceof PermanentError) || err.reason !== 'malformed_response') throw err;
    return unreadableOrder(e.order.orderId, `order ${e.order.orderId}: ${err.message.replace(/^malformed response from Bambuser order stats: /, '')}`, read(e.order));
  }
}

/**
 * Could this show have orders created in [fromMs, toMs)? Every show is asked, aired or not, except one
 * that ended more than ORDER_TAIL_MS before `from`. A show that never went on air has sales too: the
 * player sells the show's products before the broadcast (pre-show sales), and a show cancelled after
 * its products were attached keeps the orders made until then. Its start does not bound them either
 * (pre-show sales come before it), nor does its creation: an order's createdAt is what the merchant's
 * conversion tracking reported, not Bambuser's clock. (Asking only aired shows reported 0 platform
 * orders for a mirrored show that had sold before airing, and never healed them.)
 */
export function showMayHaveOrders(show: BambuserShow, fromMs: number): boolean {
  // Strict (rfc3339Ms): Date.parse read an endedAt of "2" as 2001-02-01, and the show's orders were never asked for.
  const endedAt = rfc3339Ms(show.endedAt);
  return endedAt === undefined || endedAt + ORDER_TAIL_MS >= fromMs;
}
