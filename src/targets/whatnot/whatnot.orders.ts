/**
 * Whatnot order → PlatformOrder. Pure, so the sale rules are unit tested.
 *
 * A sale counts when Whatnot says it happened. Order statuses (developers.whatnot.com, Orders model):
 *  - `pending_fulfillment`, `completed`: paid → a sale (refunded as Whatnot reports it);
 *  - `cancelled`: a sale taken back → reported with everything refunded;
 *  - `pending` (not paid yet) and `failed` (payment failed): no sale → not reported at all. A pending
 *    order that gets paid comes back as `orders.updated` / in the next report as a sale then;
 *  - any other status is not one Whatnot documents: not counted either, and the caller logs it.
 */
import { rfc3339Ms } from '../../lib/timestamp.js';
import { decimalToMinor } from '../decimal-amount.js';
import { unreadableOrder, type ReportElement } from '../report-order.js';
import type { PlatformOrder } from '../target.adapter.js';
import { PermanentError } from '../target.errors.js';
import type { WhatnotOrder } from './whatnot.schemas.js';

const SALE = new Set(['pending_fulfillment', 'completed']);
const TAKEN_BACK = new Set(['cancelled']);
const NO_SALE = new Set(['pending', 'failed']);

export type OrderVerdict = { kind: 'sale'; order: PlatformOrder } | { kind: 'no_sale'; status: string; documented: boolean };

function minor(amount: string, currency: string, field: string): number {
  const value = decimalToMinor(amount, currency);
  // No Whatnot amount is negative: a "-1.00" refund was clamped to 0 and the order stored as if unrefunded.
  if (value === undefined || value < 0) throw new PermanentError(`malformed response from Whatnot: ${field} "${amount}" is not an amount in ${currency}`, 'malformed_response');
  return value;
}

/** `where` names the order in errors, e.g. `data.3` (GET /orders) or `data` (webhook). */
export function judgeOrder(o: WhatnotOrder, where: string): OrderVerdict {
  // Time and amounts are read whatever the status: a malformed total is refused the same way on a
  // pending order as on a paid one (it was 200 `received: 0` for a pending order, 400 for a paid one).
  const createdMs = rfc3339Ms(o.created_at);
  if (createdMs === undefined) throw new PermanentError(`malformed response from Whatnot: ${where}.created_at "${o.created_at}" is not an RFC 3339 date-time with an offset`, 'malformed_response');
  const currency = o.amounts.total.currency;
  const total = minor(o.amounts.total.amount, currency, `${where}.amounts.total.amount`);
  const refundedRaw = o.amounts.refunded ? minor(o.amounts.refunded.amount, o.amounts.refunded.currency, `${where}.amounts.refunded.amount`) : 0;
  if (!SALE.has(o.status) && !TAKEN_BACK.has(o.status)) return { kind: 'no_sale', status: o.status, documented: NO_SALE.has(o.status) };
  // A refund figure in another currency than the total keeps its own (amounts are never mixed across
  // currencies: reconciliation reports it, attribution does not apply it); a cancelled order is
  // refunded in full, in the total's currency, even when no refund figure (or another one) is reported.
  const refundCurrency = o.amounts.refunded && o.amounts.refunded.currency !== currency && !TAKEN_BACK.has(o.status) ? o.amounts.refunded.currency : currency;
  const refunded = TAKEN_BACK.has(o.status) ? total : refundCurrency !== currency ? refundedRaw : Math.min(total, refundedRaw);
  return {
    kind: 'sale',
    order: {
      orderId: o.id,
      externalShowId: o.show_id ?? undefined,
      productId: undefined, // not in the Order model: the adapter reads it from GET /orders/{id}/items
      clickId: undefined, // Whatnot checkout carries no click id of ours
      createdAt: new Date(createdMs).toISOString(),
      total: { amount: total, currency },
      refunded: { amount: refunded, currency: refundCurrency },
      status: o.status,
      commission: undefined, // Whatnot reports no commission: ours is computed from the target's rate
    },
  };
}

/**
 * An order of the `GET /orders` report (`where`: `data.3`): judgeOrder's verdict, or, when Whatnot names
 * it in a form that cannot be read (a total or refund that is no amount in its currency, below zero, a
 * currency that is no ISO code, a created_at, status or show_id that cannot be read), a sale marked
 * `unreadable` unless its status can be read and says no sale (then left out, as judgeOrder leaves
 * it): reconciliation reports it (invalid_order) and never heals it. It failed the target's whole report
 * (`malformed_response`) before. A webhook's order is still refused (400: judgeOrder).
 */
export function judgeReportOrder(e: ReportElement<WhatnotOrder>, where: string): OrderVerdict {
  // A status that can be read and says no sale (pending, failed, one Whatnot does not document): the
  // order is left out as judgeOrder leaves it, its amounts never judged (a pending order's odd total
  // was an invalid_order in every run until it was paid).
  const status = e.unreadable ? e.unreadable.raw['status'] : e.order.status;
  if (typeof status === 'string' && !SALE.has(status) && !TAKEN_BACK.has(status)) return { kind: 'no_sale', status, documented: NO_SALE.has(status) };
  if (e.unreadable) {
    const { orderId, problem, raw } = e.unreadable;
    const amounts = raw['amounts'] as { total?: { currency?: unknown } } | undefined;
    return { kind: 'sale', order: unreadableOrder(orderId, problem, { createdAt: raw['created_at'], currency: amounts?.total?.currency, showId: raw['show_id'], status: raw['status'] }) };
  }
  const o = e.order;
  try {
    return judgeOrder(o, where);
  } catch (err) {
    if (!(err instanceof PermanentError) || err.reason !== 'malformed_response') throw err;
    const problem = `order ${o.id}: ${err.message.replace(/^malformed response from Whatnot: /, '')}`;
    return { kind: 'sale', order: unreadableOrder(o.id, problem, { createdAt: o.created_at, currency: o.amounts.total.currency, showId: o.show_id, status: o.status }) };
  }
}
