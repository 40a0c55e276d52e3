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
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { rfc3339Ms } from '../lib/timestamp.js';
import { quotedText } from './platform-text.js';
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

/**
 * Whether the run of period [fromMs, toMs), which reads its report `skewMs` beyond both ends, reports the
 * repeat note `p`: the run of the first copy's period reports it when its report reads the note (with
 * the first copy's own finding); else the run of the note's own period (the first copy's period's report
 * does not read it; neighbouring periods assumed). A first copy whose date cannot be read (the unreadable
 * order every run reports) has its note in every run that reads it; a note whose date cannot be read is
 * its first copy's period's.
 */
export function noteIn(p: PlatformOrder, fromMs: number, toMs: number, skewMs: number): boolean {
  // Read as the ledger reads them (rfc3339Ms): a date it refuses (no offset, a day that does not exist)
  // is no date here either, never one that Date.parse makes up.
  const first = rfc3339Ms(p.repeatOf?.createdAt);
  const own = rfc3339Ms(p.createdAt);
  if (first === undefined) return true;
  if (first >= fromMs && first < toMs) return own === undefined || (own >= fromMs - skewMs && own < toMs + skewMs);
  if (own === undefined || own < fromMs || own >= toMs) return false;
  // the note is of this period; the first copy's (the one before or after) reads it within the margin
  return first < fromMs ? own >= fromMs + skewMs : own < toMs - skewMs;
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

/** An order id as a discrepancy's detail quotes it (as reconcile.compare.ts quotes the fields the ledger refuses): cut to 40 characters. */
export function quotedId(id: string): string {
  return quotedText(id.slice(0, 40));
}

/**
 * What a report keeps of an order it handed on (OncePerReport): 30 bits of a SHA-256 of all that was
 * read of it, a small integer that V8 keeps in the Map's slot. Measured on 1,000,000 ids of 20
 * characters (node 20): the Map holds 181 MB with these digests as with none, 244 MB with the
 * 44-character base64 digests kept before. Two copies of an id in other data pass for one with a
 * chance of 1 in 2^30.
 */
export function orderDigest(p: PlatformOrder): number {
  return createHash('sha256').update(JSON.stringify(p)).digest().readUInt32BE(0) >>> 2;
}
/** OncePerReport's mark of an order id named twice with different data (no digest is this). */
const TWICE = -1;

/** What OncePerReport.add did with an order: handed it on (`new`), dropped it as a copy in the same data (`same`), or took it as an id named twice in other data (`twice`). */
export type ReportedAs = 'new' | 'same' | 'twice';

/**
 * Each order of one report once (the adapter contract), for every platform's report alike (TikTok's
 * affiliate search, Whatnot's `GET /orders`, Bambuser's order stats of every show): the ids seen are
 * kept with a digest of what was read of the order (orderDigest), not the orders. An order id the
 * report names twice with the same data is one order; with other data (another total, status, time...)
 * it is an invalid order: which copy is the platform's is not known (the first read was kept silently
 * before). Within a page neither copy is handed on: the order is handed on as the invalid one
 * (`unreadable`), never compared nor healed, so no money moves on it. When the second comes on a later
 * page (Bambuser: under a later show), the first was handed on already and is compared, and healed if
 * the ledger lacks it, as if it were the only copy (pages are streamed, there is no second pass): money
 * may move on it (docs/attribution.md). The id is not handed on again (as the invalid order the run
 * reported it twice, "added to the ledger" and "not added", and a re-run, which finds the first copy in
 * the ledger, another kind); the second is a note (PlatformOrder.repeat) that reconciliation reports
 * with the first copy (reconcile.stream.ts: in its period; on a shared account by its target), so it
 * carries where the first copy belongs (PlatformOrder.repeatOf: its show and date). `same`: what of an
 * order counts as its data (Bambuser: not the show it is listed under, docs/platforms.md); all of it by
 * default.
 */
export class OncePerReport {
  /** Order id → its slot in the columns below (a small integer in the Map's slot). */
  private readonly seen = new Map<string, number>();
  // Per slot: the order's digest (or TWICE), and where its first copy belongs (a note is routed and
  // placed by it): its date (ms, NaN when the ledger would not read it: rfc3339Ms) and its show (an
  // index in `shows`, -1 for none). 16 bytes per order in typed arrays; the show ids once each. Measured (node 20, 1,000,000
  // ids of 20 characters, 50 shows): OncePerReport holds 86 MB, 70 MB with the digests alone.
  private digests = new Int32Array(1024);
  private dates = new Float64Array(1024);
  private showOf = new Int32Array(1024);
  private readonly shows: string[] = [];
  private readonly showIndex = new Map<string, number>();

  constructor(private readonly same: (p: PlatformOrder) => PlatformOrder = (p) => p) {}

  private keep(p: PlatformOrder, digest: number): void {
    const slot = this.seen.size;
    if (slot === this.digests.length) {
      const grown = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.digests = grown(this.digests, (n) => new Int32Array(n));
      this.dates = grown(this.dates, (n) => new Float64Array(n));
      this.showOf = grown(this.showOf, (n) => new Int32Array(n));
    }
    this.seen.set(p.orderId, slot);
    this.digests[slot] = digest;
    // As the ledger reads it: a date it refuses is none (NaN), the first copy's note then in every run.
    this.dates[slot] = rfc3339Ms(p.createdAt) ?? NaN;
    let show = -1;
    if (p.externalShowId !== undefined) {
      show = this.showIndex.get(p.externalShowId) ?? this.shows.length;
      if (show === this.shows.length) {
        this.shows.push(p.externalShowId);
        this.showIndex.set(p.externalShowId, show);
      }
    }
    this.showOf[slot] = show;
  }

  /** Where the first copy of the order in `slot` belongs (PlatformOrder.repeatOf). */
  private firstOf(slot: number): NonNullable<PlatformOrder['repeatOf']> {
    const ms = this.dates[slot]!;
    const show = this.showOf[slot]!;
    return { externalShowId: show < 0 ? undefined : this.shows[show], createdAt: Number.isNaN(ms) ? '' : new Date(ms).toISOString() };
  }

  /** Adds the report's order `p` (of the period) to `page`, the page being read, as the rule above says. */
  add(page: PlatformOrder[], p: PlatformOrder): ReportedAs {
    const digest = orderDigest(this.same(p));
    const slot = this.seen.get(p.orderId);
    if (slot === undefined) {
      this.keep(p, digest);
      page.push(p);
      return 'new';
    }
    const before = this.digests[slot];
    if (before === digest || before === TWICE) return 'same';
    this.digests[slot] = TWICE;
    const what = `order ${quotedId(p.orderId)} twice, with different data`;
    const i = page.findIndex((q) => q.orderId === p.orderId);
    // Within a page: neither copy is compared, the order is the invalid one. On a later page the first
    // was handed on (and may be healed): this copy is a note (`repeat`), not the order again.
    // The invalid order keeps the first copy's data (its show routes it on a shared account, as the copy
    // read first decides whose an order is everywhere else), its amounts never compared nor healed.
    if (i >= 0) page[i] = { ...page[i]!, unreadable: what };
    else page.push({ ...p, repeat: what, repeatOf: this.firstOf(slot) });
    return 'twice';
  }
}
