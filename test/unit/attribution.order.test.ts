/**
 * The pure half of attribution (docs/attribution.md): rule 1 (`attributeByClick`, window edges
 * inclusive, another partner's click is unknown), net commission after refunds, the commission
 * status, and the reports built from grouped rows (`AggRow`: the ledger's per-day / per-show
 * aggregates, or one order as a group of one through `orderAgg`, which clamps its refund and splits its
 * commission by status): totals per show/target/currency, the unattributed per currency, a show's
 * breakdown by target and product with pending/approved split, and the CSV with its formula
 * neutralisation. Written to kill the mutants StrykerJS found in
 * src/domain/order.ts and src/attribution/attribution.report.ts (docs/testing.md "Mutation testing").
 */
import { attributeByClick, commissionStatus, netCommission, partnerOrderRef, platformOrderRef, type ClickRef, type OrderTotals } from '../../src/domain/order.js';
import { aggregate, orderAgg, reportCsv, REPORT_CSV_HEADER, showBreakdown, type AttributionReport } from '../../src/attribution/attribution.report.js';
import type { AggRow, OrderRow } from '../../src/store/attribution.repository.js';

const HOUR = 3_600_000;

describe('order refs', () => {
  test('a partner order is keyed by its own id; a platform order by @target:id', () => {
    expect(partnerOrderRef('ord-1')).toBe('ord-1');
    expect(platformOrderRef('t-yt', 'P-9')).toBe('@t-yt:P-9');
  });
  test("a target id with ':' is written as keyPart: target t + order x:1 and target t:x + order 1 are two refs", () => {
    expect(platformOrderRef('t', 'x:1')).toBe('@t:x:1');
    expect(platformOrderRef('t:x', '1')).toBe('@t%3Ax:1');
  });
});

describe('attributeByClick (rule 1)', () => {
  const click: ClickRef = { partnerId: 'pa', showId: 's1', targetId: 't1', productId: 'p1', at: '2026-01-01T00:00:00.000Z' };
  const rates = new Map([['t1', 750]]);
  const rateFor = (t: string): number => rates.get(t) ?? -1;
  const at = (ms: number): string => new Date(Date.parse(click.at) + ms).toISOString();

  test('an order without a click id is no_click', () => {
    expect(attributeByClick('pa', { createdAt: at(0), clickId: undefined }, click, 1, rateFor)).toEqual({ attributed: false, reason: 'no_click', clickId: undefined });
    expect(attributeByClick('pa', { createdAt: at(0), clickId: '' }, click, 1, rateFor)).toEqual({ attributed: false, reason: 'no_click', clickId: undefined });
  });

  test('an unknown click, or one of another partner, is unknown_click', () => {
    expect(attributeByClick('pa', { createdAt: at(0), clickId: 'c1' }, null, 1, rateFor)).toEqual({ attributed: false, reason: 'unknown_click', clickId: 'c1' });
    expect(attributeByClick('pb', { createdAt: at(0), clickId: 'c1' }, click, 1, rateFor)).toEqual({ attributed: false, reason: 'unknown_click', clickId: 'c1' });
  });

  test('both window edges are inclusive; a millisecond outside either is outside_window', () => {
    const attributed = { attributed: true, via: 'click', showId: 's1', targetId: 't1', productId: 'p1', clickId: 'c1', rateBps: 750 };
    expect(attributeByClick('pa', { createdAt: at(0), clickId: 'c1' }, click, 2, rateFor)).toEqual(attributed);
    expect(attributeByClick('pa', { createdAt: at(2 * HOUR), clickId: 'c1' }, click, 2, rateFor)).toEqual(attributed);
    expect(attributeByClick('pa', { createdAt: at(HOUR), clickId: 'c1' }, click, 2, rateFor)).toEqual(attributed);
    const outside = { attributed: false, reason: 'outside_window', clickId: 'c1' };
    expect(attributeByClick('pa', { createdAt: at(-1), clickId: 'c1' }, click, 2, rateFor)).toEqual(outside);
    expect(attributeByClick('pa', { createdAt: at(2 * HOUR + 1), clickId: 'c1' }, click, 2, rateFor)).toEqual(outside);
    expect(attributeByClick('pa', { createdAt: at(-HOUR), clickId: 'c1' }, click, 2, rateFor)).toEqual(outside);
  });

  test("an order stamped in whole seconds is compared at that resolution: the same second as its click is not before it", () => {
    const late: ClickRef = { ...click, at: '2026-01-01T10:00:00.400Z' };
    const attributed = { attributed: true, via: 'click', showId: 's1', targetId: 't1', productId: 'p1', clickId: 'c1', rateBps: 750 };
    const outside = { attributed: false, reason: 'outside_window', clickId: 'c1' };
    expect(attributeByClick('pa', { createdAt: '2026-01-01T10:00:00Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(attributed);
    // the same second with an offset, and in tenths of a second
    expect(attributeByClick('pa', { createdAt: '2026-01-01T12:00:00+02:00', clickId: 'c1' }, late, 1, rateFor)).toEqual(attributed);
    expect(attributeByClick('pa', { createdAt: '2026-01-01T10:00:00.4Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(attributed);
    // given in milliseconds, or a second earlier: before the click
    expect(attributeByClick('pa', { createdAt: '2026-01-01T10:00:00.000Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(outside);
    expect(attributeByClick('pa', { createdAt: '2026-01-01T10:00:00.3Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(outside);
    expect(attributeByClick('pa', { createdAt: '2026-01-01T09:59:59Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(outside);
    // the far edge stays where it was: the window's last second is in, the next one out
    expect(attributeByClick('pa', { createdAt: '2026-01-01T11:00:00Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(attributed);
    expect(attributeByClick('pa', { createdAt: '2026-01-01T11:00:01Z', clickId: 'c1' }, late, 1, rateFor)).toEqual(outside);
  });

  test("the rate is the click's target's", () => {
    const other = { ...click, targetId: 't2' };
    expect(attributeByClick('pa', { createdAt: at(0), clickId: 'c1' }, other, 1, rateFor)).toMatchObject({ attributed: true, targetId: 't2', rateBps: -1 });
  });
});

describe('netCommission', () => {
  test('round-half-up of what is left after refunds, never below zero', () => {
    expect(netCommission(10_000, 0, 750)).toBe(750);
    expect(netCommission(10_000, 4_000, 750)).toBe(450);
    expect(netCommission(10_000, 10_000, 750)).toBe(0);
    expect(netCommission(10_000, 12_000, 750)).toBe(0);
    expect(netCommission(1, 0, 5000)).toBe(1);
  });
});

describe('commissionStatus', () => {
  const HOLD = 1000;
  const base: OrderTotals = { attributed: true, createdAtMs: 5_000, gross: 10_000, refunded: 0, accrued: 750, reversed: 0 };

  test('unattributed orders have no commission status', () => {
    expect(commissionStatus({ ...base, attributed: false }, 0, HOLD)).toBe('unattributed');
    expect(commissionStatus({ ...base, attributed: false, refunded: 10_000 }, 99_999, HOLD)).toBe('unattributed');
  });

  test('pending until the hold period has passed (inclusive), then approved', () => {
    expect(commissionStatus(base, 5_999, HOLD)).toBe('pending');
    expect(commissionStatus(base, 6_000, HOLD)).toBe('approved');
    expect(commissionStatus(base, 6_001, HOLD)).toBe('approved');
  });

  test('reversed once the whole gross is refunded, or the reversals took back all of the commission', () => {
    expect(commissionStatus({ ...base, refunded: 10_000, reversed: 750 }, 0, HOLD)).toBe('reversed');
    expect(commissionStatus({ ...base, refunded: 12_000 }, 0, HOLD)).toBe('reversed');
    // A zero-rate order refunded in full: no reversal was booked, the refund alone says reversed.
    expect(commissionStatus({ ...base, refunded: 10_000, accrued: 0 }, 0, HOLD)).toBe('reversed');
    expect(commissionStatus({ ...base, refunded: 9_999 }, 0, HOLD)).toBe('pending');
    // Rounding can take all of the commission back before the whole gross is refunded.
    expect(commissionStatus({ ...base, refunded: 9_990, accrued: 5, reversed: 5 }, 0, HOLD)).toBe('reversed');
    expect(commissionStatus({ ...base, refunded: 5_000, accrued: 5, reversed: 3 }, 0, HOLD)).toBe('pending');
  });

  test('a zero order, or a zero-rate commission nothing was reversed from, is not reversed', () => {
    expect(commissionStatus({ ...base, gross: 0, accrued: 0 }, 0, HOLD)).toBe('pending');
    expect(commissionStatus({ ...base, accrued: 0 }, 0, HOLD)).toBe('pending');
    expect(commissionStatus({ ...base, accrued: 0 }, 9_000, HOLD)).toBe('approved');
  });
});

function row(o: Partial<OrderRow>): OrderRow {
  return { ref: 'r', attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', gross: 1000, refunded: 0, accrued: 100, reversed: 0, createdAtMs: 0, ...o };
}

describe('orderAgg (one order as a group of one)', () => {
  const HOLD = 100;
  test('counts one order; its commission is accrued − reversed, split by its status at now', () => {
    const o = row({ gross: 1000, refunded: 300, accrued: 100, reversed: 30, createdAtMs: 500 });
    const group = { attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', orders: 1, gross: 1000, refunded: 300, commission: 70 };
    expect(orderAgg(o, 599, HOLD)).toEqual({ ...group, pending: 70, approved: 0 });
    expect(orderAgg(o, 600, HOLD)).toEqual({ ...group, pending: 0, approved: 70 });
  });

  test('a refund above the gross counts only up to the gross; a fully reversed order is neither pending nor approved', () => {
    const o = row({ gross: 500, refunded: 600, accrued: 50, reversed: 50, createdAtMs: 0 });
    expect(orderAgg(o, 0, HOLD)).toMatchObject({ refunded: 500, commission: 0, pending: 0, approved: 0 });
    expect(orderAgg(row({ gross: 500, refunded: 499 }), 0, HOLD)).toMatchObject({ refunded: 499 });
  });

  test('an unattributed order keeps its flag, target and currency and has no commission status', () => {
    const o = row({ attributed: false, showId: '', targetId: 't2', productId: '', currency: 'EUR', gross: 80, accrued: 0 });
    expect(orderAgg(o, 10_000, HOLD)).toEqual({ attributed: false, showId: '', targetId: 't2', productId: '', currency: 'EUR', orders: 1, gross: 80, refunded: 0, commission: 0, pending: 0, approved: 0 });
  });
});

/** Groups with more than one order, as the ledger's per-day and per-show aggregates hand them in. */
function agg(o: Partial<AggRow>): AggRow {
  return { attributed: true, showId: 's1', targetId: 't1', productId: 'p1', currency: 'USD', orders: 1, gross: 0, refunded: 0, commission: 0, pending: 0, approved: 0, ...o };
}

describe('aggregate (the attribution report)', () => {
  const orders: OrderRow[] = [
    row({ ref: 'a', showId: 's2', targetId: 't1', currency: 'USD', gross: 1000, accrued: 100 }),
    row({ ref: 'b', showId: 's1', targetId: 't2', currency: 'USD', gross: 2000, accrued: 200 }),
    row({ ref: 'c', showId: 's1', targetId: 't1', currency: 'USD', gross: 3000, refunded: 5000, accrued: 300, reversed: 300 }),
    row({ ref: 'd', showId: 's1', targetId: 't1', currency: 'EUR', gross: 400, refunded: 100, accrued: 40, reversed: 10 }),
    row({ ref: 'e', showId: 's1', targetId: 't1', currency: 'USD', gross: 500, refunded: 200, accrued: 50, reversed: 20 }),
    row({ ref: 'f', attributed: false, showId: '', targetId: '', currency: 'USD', gross: 70, accrued: 0 }),
    row({ ref: 'g', attributed: false, showId: '', targetId: 't2', currency: 'USD', gross: 80, accrued: 0 }),
    row({ ref: 'h', attributed: false, showId: '', targetId: '', currency: 'EUR', gross: 90, accrued: 0 }),
  ];
  const rows = orders.map((o) => orderAgg(o, 0, 0));

  test('totals per (show, target, currency), sorted; refunds clamped at the gross; unattributed per currency', () => {
    expect(aggregate(rows, {})).toEqual({
      totals: [
        { showId: 's1', targetId: 't1', currency: 'EUR', orders: 1, grossAmount: 400, refundedAmount: 100, commission: 30 },
        { showId: 's1', targetId: 't1', currency: 'USD', orders: 2, grossAmount: 3500, refundedAmount: 3200, commission: 30 },
        { showId: 's1', targetId: 't2', currency: 'USD', orders: 1, grossAmount: 2000, refundedAmount: 0, commission: 200 },
        { showId: 's2', targetId: 't1', currency: 'USD', orders: 1, grossAmount: 1000, refundedAmount: 0, commission: 100 },
      ],
      unattributed: [
        { currency: 'EUR', orders: 1, grossAmount: 90 },
        { currency: 'USD', orders: 2, grossAmount: 150 },
      ],
    });
  });

  test('the input order does not change the output', () => {
    expect(aggregate([...rows].reverse(), {})).toEqual(aggregate(rows, {}));
  });

  test('a show filter keeps that show and drops the unattributed (they belong to no show)', () => {
    expect(aggregate(rows, { showId: 's2' })).toEqual({
      totals: [{ showId: 's2', targetId: 't1', currency: 'USD', orders: 1, grossAmount: 1000, refundedAmount: 0, commission: 100 }],
      unattributed: [],
    });
  });

  test('a target filter keeps that target and the unattributed orders that target reported itself', () => {
    expect(aggregate(rows, { targetId: 't2' })).toEqual({
      totals: [{ showId: 's1', targetId: 't2', currency: 'USD', orders: 1, grossAmount: 2000, refundedAmount: 0, commission: 200 }],
      unattributed: [{ currency: 'USD', orders: 1, grossAmount: 80 }],
    });
  });

  test('pre-aggregated groups add up their order counts and amounts with single orders', () => {
    const groups = [
      agg({ orders: 3, gross: 6000, refunded: 500, commission: 550 }),
      agg({ attributed: false, showId: '', targetId: '', currency: 'USD', orders: 4, gross: 400 }),
      ...rows,
    ];
    expect(aggregate(groups, { showId: 's1', targetId: 't1' }).totals).toEqual([
      { showId: 's1', targetId: 't1', currency: 'EUR', orders: 1, grossAmount: 400, refundedAmount: 100, commission: 30 },
      { showId: 's1', targetId: 't1', currency: 'USD', orders: 5, grossAmount: 9500, refundedAmount: 3700, commission: 580 },
    ]);
    expect(aggregate(groups, {}).unattributed).toEqual([
      { currency: 'EUR', orders: 1, grossAmount: 90 },
      { currency: 'USD', orders: 6, grossAmount: 550 },
    ]);
  });
});

describe('showBreakdown', () => {
  const HOLD = 100;
  const NOW = 1_000;
  const orders: OrderRow[] = [
    // approved (created long ago)
    row({ ref: 'a', targetId: 't2', productId: 'p2', currency: 'USD', gross: 1000, accrued: 100, createdAtMs: 0 }),
    // pending (inside the hold period)
    row({ ref: 'b', targetId: 't1', productId: 'p2', currency: 'USD', gross: 2000, accrued: 200, createdAtMs: 950 }),
    // fully reversed: counts in the commission (0) but neither pending nor approved
    row({ ref: 'c', targetId: 't1', productId: 'p1', currency: 'USD', gross: 500, refunded: 600, accrued: 50, reversed: 50, createdAtMs: 950 }),
    // partly refunded, pending
    row({ ref: 'd', targetId: 't1', productId: 'p1', currency: 'EUR', gross: 300, refunded: 100, accrued: 30, reversed: 10, createdAtMs: 990 }),
    // platform order that named no product
    row({ ref: 'e', targetId: 't1', productId: '', currency: 'USD', gross: 700, accrued: 70, createdAtMs: 0 }),
    // another show, and an unattributed order: not in this breakdown
    row({ ref: 'f', showId: 's2', targetId: 't1', productId: 'p1', gross: 9000, accrued: 900 }),
    row({ ref: 'g', attributed: false, showId: 's1', targetId: 't1', productId: 'p1', gross: 8000, accrued: 0 }),
  ];
  const rows = orders.map((o) => orderAgg(o, NOW, HOLD));

  test('by target and by product, each per currency, sorted; commission split pending/approved', () => {
    const zero = { commissionPending: 0, commissionApproved: 0 };
    expect(showBreakdown('s1', rows)).toEqual({
      showId: 's1',
      byTarget: [
        { targetId: 't1', currency: 'EUR', orders: 1, grossAmount: 300, refundedAmount: 100, commission: 20, ...zero, commissionPending: 20 },
        { targetId: 't1', currency: 'USD', orders: 3, grossAmount: 3200, refundedAmount: 500, commission: 270, commissionPending: 200, commissionApproved: 70 },
        { targetId: 't2', currency: 'USD', orders: 1, grossAmount: 1000, refundedAmount: 0, commission: 100, ...zero, commissionApproved: 100 },
      ],
      byProduct: [
        { productId: '', currency: 'USD', orders: 1, grossAmount: 700, refundedAmount: 0, commission: 70, ...zero, commissionApproved: 70 },
        { productId: 'p1', currency: 'EUR', orders: 1, grossAmount: 300, refundedAmount: 100, commission: 20, ...zero, commissionPending: 20 },
        { productId: 'p1', currency: 'USD', orders: 1, grossAmount: 500, refundedAmount: 500, commission: 0, ...zero },
        { productId: 'p2', currency: 'USD', orders: 2, grossAmount: 3000, refundedAmount: 0, commission: 300, commissionPending: 200, commissionApproved: 100 },
      ],
    });
  });

  test('the input order does not change the output', () => {
    expect(showBreakdown('s1', [...rows].reverse())).toEqual(showBreakdown('s1', rows));
  });

  test('pre-aggregated groups (the per-show aggregates) add up with single orders, pending and approved too', () => {
    const groups = [agg({ targetId: 't2', productId: 'p2', orders: 4, gross: 4000, refunded: 100, commission: 390, pending: 90, approved: 300 }), ...rows];
    const report = showBreakdown('s1', groups);
    expect(report.byTarget.find((r) => r.targetId === 't2')).toEqual({ targetId: 't2', currency: 'USD', orders: 5, grossAmount: 5000, refundedAmount: 100, commission: 490, commissionPending: 90, commissionApproved: 400 });
    expect(report.byProduct.find((r) => r.productId === 'p2' && r.currency === 'USD')).toEqual({ productId: 'p2', currency: 'USD', orders: 6, grossAmount: 7000, refundedAmount: 100, commission: 690, commissionPending: 290, commissionApproved: 400 });
  });

  test('a show without orders has empty breakdowns', () => {
    expect(showBreakdown('s9', rows)).toEqual({ showId: 's9', byTarget: [], byProduct: [] });
  });
});

describe('reportCsv', () => {
  test('header, one line per totals row then per unattributed row, CRLF-terminated', () => {
    const report: AttributionReport = {
      totals: [{ showId: 's1', targetId: 't1', currency: 'USD', orders: 2, grossAmount: 3500, refundedAmount: 200, commission: -30 }],
      unattributed: [{ currency: 'EUR', orders: 1, grossAmount: 90 }],
    };
    expect(REPORT_CSV_HEADER).toEqual(['attributed', 'showId', 'targetId', 'currency', 'orders', 'grossAmount', 'refundedAmount', 'commission']);
    // A negative number is data, not a formula: no quote prefix.
    expect(reportCsv(report)).toBe('attributed,showId,targetId,currency,orders,grossAmount,refundedAmount,commission\r\ntrue,s1,t1,USD,2,3500,200,-30\r\nfalse,,,EUR,1,90,,\r\n');
  });

  test('cells that a spreadsheet would run as a formula are neutralised; separators and quotes are quoted', () => {
    const csv = (showId: string): string => reportCsv({ totals: [{ showId, targetId: 't', currency: 'USD', orders: 1, grossAmount: 1, refundedAmount: 0, commission: 0 }], unattributed: [] }).split('\r\n')[1]!;
    expect(csv('=1+1')).toBe("true,'=1+1,t,USD,1,1,0,0");
    expect(csv('+1')).toBe("true,'+1,t,USD,1,1,0,0");
    expect(csv('-1')).toBe("true,'-1,t,USD,1,1,0,0");
    expect(csv('@SUM(A1)')).toBe("true,'@SUM(A1),t,USD,1,1,0,0");
    expect(csv('\tx')).toBe("true,'\tx,t,USD,1,1,0,0");
    expect(csv('a=b')).toBe('true,a=b,t,USD,1,1,0,0');
    expect(csv('a,b')).toBe('true,"a,b",t,USD,1,1,0,0');
    expect(csv('say "hi"')).toBe('true,"say ""hi""",t,USD,1,1,0,0');
    expect(csv('a\nb')).toBe('true,"a\nb",t,USD,1,1,0,0');
    expect(reportCsv({ totals: [{ showId: '\rx', targetId: 'a\rb', currency: 'USD', orders: 1, grossAmount: 1, refundedAmount: 0, commission: 0 }], unattributed: [] })).toContain('\r\ntrue,"\'\rx","a\rb",USD,1,1,0,0\r\n');
  });
});
