/**
 * One order of a platform's order report that cannot be read is that order's problem, not the
 * report's (PlatformOrder.unreadable): reconciliation reports it (an invalid_order discrepancy), never
 * heals it, and compares the rest of the report. It failed the target's whole report
 * (`malformed_response`) before, and one odd order stopped the reconciliation of every other order.
 *
 * What still fails the report: its shape (an envelope that is not the documented one: no list, a cursor
 * that is no text), and an order element whose id cannot be read (not an object, no id, an id that is no
 * text): an order that cannot be named cannot be reported by itself, and skipping it would drop a sale
 * from the run without a word (Whatnot's `GET /orders`, Bambuser's order stats); and a page whose
 * orders all cannot be read (refuseAllUnreadable).
 *
 * An order whose date cannot be read cannot be placed in a period: it is reported (createdAt '') in
 * every run whose report lists it (reportedIn): Whatnot lists it in its answer for the run's period,
 * Bambuser in its show's report, asked by every run up to 30 days after the show ended.
 */
import { z } from 'zod';
import { rfc3339Ms } from '../lib/timestamp.js';
import type { PlatformOrder } from './target.adapter.js';
import { PermanentError } from './target.errors.js';

/** An order element of a report: read by its schema, or named by its id alone with what could not be read. */
export type ReportElement<T> = { order: T; unreadable?: undefined } | { order?: undefined; unreadable: { orderId: string; problem: string; raw: Record<string, unknown> } };

/** Longest text of what is wrong with an order (a hostile platform's value is quoted in it). */
const MAX_PROBLEM = 200;

/** What is wrong, bounded (a discrepancy's detail). */
export function problemText(text: string): string {
  return text.length > MAX_PROBLEM ? `${text.slice(0, MAX_PROBLEM)}…` : text;
}

/**
 * An order element of a report read with `schema`. One that does not fit but has an id (`idKey`, a
 * non-empty string) is that order's unreadable element (its first issue named, the text alone kept: a
 * refused element's zod issues are ~2 KiB, and an unpaged report may hold 100,000 orders); one without
 * is refused, the issues of its id: the report's malformed_response names it (e.g. `data.3.id`).
 */
export function reportElement<T extends z.ZodType>(schema: T, idKey: string): z.ZodType<ReportElement<z.output<T>>, unknown> {
  const idSchema = z.looseObject({ [idKey]: z.string().min(1) });
  return z.unknown().transform((v, ctx): ReportElement<z.output<T>> => {
    const r = schema.safeParse(v);
    if (r.success) return { order: r.data };
    const id = idSchema.safeParse(v);
    if (!id.success) {
      for (const issue of id.error.issues) ctx.issues.push({ code: 'custom', message: issue.message, input: v, path: issue.path });
      return z.NEVER;
    }
    const first = r.error.issues[0];
    const orderId = id.data[idKey] as string;
    return { unreadable: { orderId, problem: problemText(`order ${orderId}: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'unreadable'}`), raw: v as Record<string, unknown> } };
  });
}

/**
 * The report's order `orderId` that cannot be read, `problem` saying why: its amounts are placeholders
 * (0 in the currency named, if it is three capitals, else XXX), never compared nor healed; its date and
 * show are kept when they can be read (the date places it in a period, the show tells which target of
 * a shared account it is), else '' and undefined.
 */
export function unreadableOrder(orderId: string, problem: string, read: { createdAt: unknown; currency: unknown; showId: unknown; status: unknown }): PlatformOrder {
  const createdMs = rfc3339Ms(read.createdAt);
  const currency = typeof read.currency === 'string' && /^[A-Z]{3}$/.test(read.currency) ? read.currency : 'XXX';
  return {
    orderId,
    externalShowId: typeof read.showId === 'string' && read.showId !== '' ? read.showId : undefined,
    productId: undefined,
    clickId: undefined,
    createdAt: createdMs === undefined ? '' : new Date(createdMs).toISOString(),
    total: { amount: 0, currency },
    refunded: { amount: 0, currency },
    status: typeof read.status === 'string' ? read.status : undefined,
    commission: undefined,
    unreadable: problemText(problem),
  };
}

/**
 * Whether a report's order belongs to [fromMs, toMs): its date does; an unreadable order without one
 * (createdAt '') belongs to every period whose report lists it (the run reports it, never heals it).
 */
export function reportedIn(p: PlatformOrder, fromMs: number, toMs: number): boolean {
  const at = Date.parse(p.createdAt);
  if (Number.isNaN(at)) return p.unreadable !== undefined;
  return at >= fromMs && at < toMs;
}

/** Fewest orders of a report page that, all unreadable, fail the report (refuseAllUnreadable). */
export const ALL_UNREADABLE_MIN = 5;

/**
 * A report page (Whatnot: one page of `GET /orders`; Bambuser: one show's order stats) whose orders
 * are all unreadable, at least ALL_UNREADABLE_MIN of them, is not read as odd orders but as a shape we
 * do not know (a field renamed): the report fails (`malformed_response`) naming the first problem, as
 * one odd order did before, instead of a run that "completes" with an invalid_order (and a warn line)
 * per order. `orders`: the page's orders as read, undefined for one read and left out (a Whatnot order
 * that is no sale).
 */
export function refuseAllUnreadable(what: string, orders: readonly (PlatformOrder | undefined)[]): void {
  if (orders.length < ALL_UNREADABLE_MIN || !orders.every((o) => o?.unreadable !== undefined)) return;
  throw new PermanentError(problemText(`malformed response from ${what}: none of its ${orders.length} orders can be read, e.g. ${orders[0]!.unreadable!}`), 'malformed_response');
}
