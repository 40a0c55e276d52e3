/**
 * Attribution reports (README / OpenAPI at /docs): totals per (show, target, currency) and unattributed orders per
 * currency, all amounts integers in minor units, never converted between currencies. Pure: the
 * repository hands in grouped rows — the ledger's pre-aggregated counters for whole days, and one row
 * per order (`orderAgg`) for the days a period only partly covers.
 *
 * Sums are exact: an amount is a number while it is a safe integer and a bigint past 2^53 (`plus`);
 * the API writes a bigint as its integer digits (lib/exact-json.ts), the CSV as well.
 */
import { commissionStatus } from '../domain/order.js';
import { plus, type Amount } from '../domain/money.js';
import type { AggRow, OrderRow } from '../store/attribution.repository.js';

export interface ReportFilter {
  /** Order createdAt in [fromMs, toMs). */
  fromMs?: number;
  toMs?: number;
  showId?: string;
  targetId?: string;
}

export interface TotalsRow {
  showId: string;
  targetId: string;
  currency: string;
  orders: number;
  grossAmount: Amount;
  refundedAmount: Amount;
  commission: Amount;
}

export interface UnattributedRow {
  currency: string;
  orders: number;
  grossAmount: Amount;
}

export interface AttributionReport {
  totals: TotalsRow[];
  unattributed: UnattributedRow[];
}

export interface BreakdownRow {
  targetId?: string;
  productId?: string;
  currency: string;
  orders: number;
  grossAmount: Amount;
  refundedAmount: Amount;
  commission: Amount;
  /** commission split by status: still in the hold period / approved (fully reversed orders count 0). */
  commissionPending: Amount;
  commissionApproved: Amount;
}

export interface ShowAttributionReport {
  showId: string;
  byTarget: BreakdownRow[];
  byProduct: BreakdownRow[];
}

/** Refunds above the order total do not count beyond it (the order's net is clamped at 0). */
function refundedOf(r: OrderRow): number {
  return Math.min(r.refunded, r.gross);
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** One order as a group of one, its commission split by its status at `nowMs`. */
export function orderAgg(r: OrderRow, nowMs: number, holdMs: number): AggRow {
  const commission = r.accrued - r.reversed;
  const status = commissionStatus(r, nowMs, holdMs);
  return {
    attributed: r.attributed,
    showId: r.showId,
    targetId: r.targetId,
    productId: r.productId,
    currency: r.currency,
    orders: 1,
    gross: r.gross,
    refunded: refundedOf(r),
    commission,
    pending: status === 'pending' ? commission : 0,
    approved: status === 'approved' ? commission : 0,
  };
}

export function aggregate(rows: AggRow[], filter: ReportFilter): AttributionReport {
  const totals = new Map<string, TotalsRow>();
  const unattributed = new Map<string, UnattributedRow>();
  for (const r of rows) {
    if (r.attributed) {
      if (filter.showId && r.showId !== filter.showId) continue;
      if (filter.targetId && r.targetId !== filter.targetId) continue;
      const k = JSON.stringify([r.showId, r.targetId, r.currency]);
      const t: TotalsRow = totals.get(k) ?? { showId: r.showId, targetId: r.targetId, currency: r.currency, orders: 0, grossAmount: 0, refundedAmount: 0, commission: 0 };
      t.orders += r.orders;
      t.grossAmount = plus(t.grossAmount, r.gross);
      t.refundedAmount = plus(t.refundedAmount, r.refunded);
      t.commission = plus(t.commission, r.commission);
      totals.set(k, t);
    } else {
      // Unattributed orders belong to no show; a target filter keeps those a platform reported itself.
      if (filter.showId) continue;
      if (filter.targetId && r.targetId !== filter.targetId) continue;
      const u: UnattributedRow = unattributed.get(r.currency) ?? { currency: r.currency, orders: 0, grossAmount: 0 };
      u.orders += r.orders;
      u.grossAmount = plus(u.grossAmount, r.gross);
      unattributed.set(r.currency, u);
    }
  }
  return {
    totals: [...totals.values()].sort((a, b) => cmp(a.showId, b.showId) || cmp(a.targetId, b.targetId) || cmp(a.currency, b.currency)),
    unattributed: [...unattributed.values()].sort((a, b) => cmp(a.currency, b.currency)),
  };
}

/** `rows` carry the commission split by status (see orderAgg and AttributionService.showRows). */
export function showBreakdown(showId: string, rows: AggRow[]): ShowAttributionReport {
  const byTarget = new Map<string, BreakdownRow>();
  const byProduct = new Map<string, BreakdownRow>();
  const add = (map: Map<string, BreakdownRow>, key: string, init: () => BreakdownRow, r: AggRow): void => {
    const row = map.get(key) ?? init();
    row.orders += r.orders;
    row.grossAmount = plus(row.grossAmount, r.gross);
    row.refundedAmount = plus(row.refundedAmount, r.refunded);
    row.commission = plus(row.commission, r.commission);
    row.commissionPending = plus(row.commissionPending, r.pending);
    row.commissionApproved = plus(row.commissionApproved, r.approved);
    map.set(key, row);
  };
  const zero = { orders: 0, grossAmount: 0 as Amount, refundedAmount: 0 as Amount, commission: 0 as Amount, commissionPending: 0 as Amount, commissionApproved: 0 as Amount };
  for (const r of rows) {
    if (!r.attributed || r.showId !== showId) continue;
    add(byTarget, JSON.stringify([r.targetId, r.currency]), () => ({ targetId: r.targetId, currency: r.currency, ...zero }), r);
    // The product whose tracked link (or platform listing) produced the order; '' when the platform did not say.
    add(byProduct, JSON.stringify([r.productId, r.currency]), () => ({ productId: r.productId, currency: r.currency, ...zero }), r);
  }
  return {
    showId,
    byTarget: [...byTarget.values()].sort((a, b) => cmp(a.targetId ?? '', b.targetId ?? '') || cmp(a.currency, b.currency)),
    byProduct: [...byProduct.values()].sort((a, b) => cmp(a.productId ?? '', b.productId ?? '') || cmp(a.currency, b.currency)),
  };
}

function csvCell(v: string | number | bigint): string {
  const s = String(v);
  // Quote when needed; neutralise spreadsheet formulas (CSV injection).
  const safe = /^[=+\-@\t\r]/.test(s) && typeof v === 'string' ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export const REPORT_CSV_HEADER = ['attributed', 'showId', 'targetId', 'currency', 'orders', 'grossAmount', 'refundedAmount', 'commission'];

/** The same rows as the JSON report; unattributed rows have empty show, target, refund and commission cells. */
export function reportCsv(report: AttributionReport): string {
  const lines = [REPORT_CSV_HEADER.join(',')];
  for (const t of report.totals) lines.push(['true', t.showId, t.targetId, t.currency, t.orders, t.grossAmount, t.refundedAmount, t.commission].map(csvCell).join(','));
  for (const u of report.unattributed) lines.push(['false', '', '', u.currency, u.orders, u.grossAmount, '', ''].map(csvCell).join(','));
  return lines.join('\r\n') + '\r\n';
}
