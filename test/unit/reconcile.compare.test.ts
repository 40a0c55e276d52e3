import { compareTarget } from '../../src/reconcile/reconcile.compare.js';
import { VOIDED } from '../../src/attribution/attribution.service.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';

const order = (orderId: string, amount: number, refunded = 0, status?: string): PlatformOrder => ({
  orderId,
  externalShowId: 'show-x',
  productId: 'p1',
  clickId: undefined,
  createdAt: '2026-11-24T18:00:00Z',
  total: { amount, currency: 'USD' },
  refunded: { amount: refunded, currency: 'USD' },
  status,
  commission: undefined,
});

test('each kind of discrepancy, and what is healed', () => {
  const report = [order('a', 1000), order('b', 2000), order('c', 3000, 1000), order('d', 4000, 0, 'CANCELLED'), order('e', 5000), order('f', 500)];
  const ledger = [
    { orderId: 'b', currency: 'USD', gross: 2500, refunded: 0 },
    { orderId: 'c', currency: 'USD', gross: 3000, refunded: 0 },
    { orderId: 'd', currency: 'USD', gross: 4000, refunded: 0 },
    { orderId: 'e', currency: 'USD', gross: 5000, refunded: 0 },
    { orderId: 'f', currency: 'USD', gross: 500, refunded: 200 },
    { orderId: 'g', currency: 'USD', gross: 700, refunded: 0 },
  ];
  const { discrepancies, heal } = compareTarget('t1', report, ledger, VOIDED);
  const byOrder = Object.fromEntries(discrepancies.map((d) => [d.orderId, [d.kind, d.healed]]));
  expect(byOrder).toEqual({
    a: ['missing_in_ledger', true],
    b: ['amount_mismatch', false],
    c: ['amount_mismatch', true],
    d: ['status_mismatch', true],
    f: ['amount_mismatch', false],
    g: ['missing_in_platform', false],
  });
  expect(heal.map((h) => h.orderId).sort()).toEqual(['a', 'c', 'd']);
});

test('a report equal to the ledger has no discrepancies', () => {
  const report = [order('a', 1000, 300)];
  expect(compareTarget('t1', report, [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 300 }], VOIDED)).toEqual({ discrepancies: [], heal: [] });
});

describe('currencies: amounts are compared only within one currency (no FX)', () => {
  const inCurrency = (orderId: string, amount: number, currency: string, refunded?: { amount: number; currency: string }, status?: string): PlatformOrder => ({
    ...order(orderId, amount, 0, status),
    total: { amount, currency },
    refunded: refunded ?? { amount: 0, currency },
  });

  test('an order the platform reports in another currency than the ledger is a currency mismatch, not an amount difference', () => {
    const { discrepancies, heal } = compareTarget('t1', [inCurrency('a', 1000, 'EUR')], [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 0 }], VOIDED);
    expect(discrepancies).toEqual([{ kind: 'amount_mismatch', reason: 'currency_mismatch', targetId: 't1', orderId: 'a', detail: 'currency differs: ledger 10.00 USD, platform 10.00 EUR; amounts in different currencies are not compared', healed: false }]);
    expect(heal).toEqual([]);
  });

  test('a currency that is not ISO 4217 is reported and never healed into the ledger', () => {
    const { discrepancies, heal } = compareTarget('t1', [inCurrency('a', 1000, 'ZZZ'), inCurrency('b', 500, 'usd')], [{ orderId: 'b', currency: 'USD', gross: 500, refunded: 0 }], VOIDED);
    expect(discrepancies).toEqual([
      { kind: 'missing_in_ledger', reason: 'invalid_currency', targetId: 't1', orderId: 'a', detail: 'platform reports 1000 "ZZZ", not an ISO 4217 currency: not added to the ledger', healed: false },
      { kind: 'amount_mismatch', reason: 'invalid_currency', targetId: 't1', orderId: 'b', detail: 'platform reports 500 "usd", not an ISO 4217 currency: not compared with the ledger', healed: false },
    ]);
    expect(heal).toEqual([]);
  });

  test('a refund in another currency than its order is reported, neither compared nor healed as a reversal', () => {
    const ledger = [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 0 }];
    const { discrepancies, heal } = compareTarget('t1', [inCurrency('a', 1000, 'USD', { amount: 500, currency: 'EUR' })], ledger, VOIDED);
    expect(discrepancies).toEqual([
      { kind: 'amount_mismatch', reason: 'currency_mismatch', targetId: 't1', orderId: 'a', detail: 'platform reports a refund of 5.00 EUR on an order in USD: amounts in different currencies are not compared, the refund is not added', healed: false },
    ]);
    expect(heal).toEqual([]);
  });

  test('an order missing from the ledger is added without its refund in another currency', () => {
    const { discrepancies, heal } = compareTarget('t1', [inCurrency('a', 1000, 'USD', { amount: 500, currency: 'EUR' })], [], VOIDED);
    expect(discrepancies.map((d) => [d.kind, d.reason, d.healed])).toEqual([
      ['missing_in_ledger', undefined, true],
      ['amount_mismatch', 'currency_mismatch', false],
    ]);
    expect(heal).toEqual([expect.objectContaining({ orderId: 'a', total: { amount: 1000, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' } })]);
  });

  test('a refund figure of 0 in another currency is no refund: nothing to report, the order added as it is', () => {
    const ledger = [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 0 }];
    expect(compareTarget('t1', [inCurrency('a', 1000, 'USD', { amount: 0, currency: 'EUR' })], ledger, VOIDED)).toEqual({ discrepancies: [], heal: [] });
    const missing = compareTarget('t1', [inCurrency('b', 1000, 'USD', { amount: 0, currency: 'EUR' })], [], VOIDED);
    expect(missing.discrepancies.map((d) => [d.kind, d.reason, d.healed])).toEqual([['missing_in_ledger', undefined, true]]);
    expect(missing.heal).toEqual([expect.objectContaining({ orderId: 'b' })]);
  });

  test('an order taken back is refunded in full in its own currency, whatever currency its refund figure is in', () => {
    const ledger = [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 0 }];
    const { discrepancies } = compareTarget('t1', [inCurrency('a', 1000, 'USD', { amount: 90_000, currency: 'JPY' }, 'CANCELLED')], ledger, VOIDED);
    expect(discrepancies).toEqual([expect.objectContaining({ kind: 'status_mismatch', detail: 'platform status CANCELLED; ledger had 0 refunded of 1000; reversal added', healed: true })]);
  });
});

test('an order taken back after more than its total was refunded agrees with a ledger that holds that refund: the refund figure counts, not only the total', () => {
  // The ledger keeps a refund beyond the total as it was reported (reports cap it when they read it).
  const ledger = [{ orderId: 'a', currency: 'USD', gross: 1000, refunded: 1200 }];
  expect(compareTarget('t1', [order('a', 1000, 1200, 'CANCELLED')], ledger, VOIDED)).toEqual({ discrepancies: [], heal: [] });
});

describe('a report the ledger cannot take as it is', () => {
  test('an order the ledger refuses (negative total or refund, a time over a year ahead) is reported with reason invalid_order, never healed', () => {
    const now = Date.parse('2026-11-25T00:00:00Z');
    const ahead = { ...order('c', 1000), createdAt: '2028-01-01T00:00:00Z' };
    const ledger = [{ orderId: 'b', currency: 'USD', gross: 1000, refunded: 0 }];
    const { discrepancies, heal } = compareTarget('t1', [order('a', -1800), order('b', 1000, -500), ahead], ledger, VOIDED, now);
    expect(discrepancies).toEqual([
      { kind: 'missing_in_ledger', reason: 'invalid_order', targetId: 't1', orderId: 'a', detail: `platform reports -18.00 USD; the ledger takes a total of 0 to ${Number.MAX_SAFE_INTEGER} minor units in an active ISO 4217 currency: not added to the ledger`, healed: false },
      { kind: 'amount_mismatch', reason: 'invalid_order', targetId: 't1', orderId: 'b', detail: `platform reports a refund of -5.00 USD; the ledger takes a refunded amount of 0 to ${Number.MAX_SAFE_INTEGER} minor units: not compared with the ledger`, healed: false },
      { kind: 'missing_in_ledger', reason: 'invalid_order', targetId: 't1', orderId: 'c', detail: 'platform reports createdAt "2028-01-01T00:00:00Z"; the ledger takes an order time from 1970-01-01T00:00:00Z to a year from now: not added to the ledger', healed: false },
    ]);
    expect(heal).toEqual([]);
  });
});

describe('an order id the ledger does not store', () => {
  /**
   * Reconciliation refuses the order ids the platform-webhook route refuses (checkPlatformOrder, one
   * check): control characters, format characters (Unicode Cf: bidi controls, zero-width and other
   * invisible ones) and lone surrogates, in an order new to the ledger. Such an order is an
   * `invalid_order` discrepancy, never healed; its detail writes the refused character as \uXXXX
   * (JSON.stringify writes a control character so, not a format character: the operator saw
   * "ord-1" and could not tell what was refused). An id with white space is an order like any other.
   */
  test.each([
    ['a NUL', 'ord\u0000x', String.raw`"ord\u0000x"`],
    ['a U+202E override', 'ord-\u202e1', String.raw`"ord-\u202e1"`],
    ['a U+200B zero-width space', 'ord-1\u200b', String.raw`"ord-1\u200b"`],
    ['a U+200E left-to-right mark', 'ord-\u200e2', String.raw`"ord-\u200e2"`],
    ['a U+2062 invisible times', 'ord\u20623', String.raw`"ord\u20623"`],
    ['a U+FEFF byte order mark', '\ufefford-4', String.raw`"\ufefford-4"`],
    ['a U+00AD soft hyphen', 'ord\u00ad5', String.raw`"ord\u00ad5"`],
    ['a U+E0041 tag letter (outside the BMP)', 'ord-6\u{e0041}', String.raw`"ord-6\udb40\udc41"`],
  ])('an order id holding %s, new to the ledger: invalid_order, not healed, the character shown escaped', (_name, id, quoted) => {
    const now = Date.parse('2026-11-25T00:00:00Z');
    const detail = `platform reports orderId ${quoted}; the ledger takes an order id of 1 to 256 characters, without control characters, format characters (Unicode Cf: bidi controls, zero-width and other invisible characters) or lone surrogates: not added to the ledger`;
    expect(compareTarget('t1', [order(id, 1000)], [], VOIDED, now)).toEqual({ discrepancies: [{ kind: 'missing_in_ledger', reason: 'invalid_order', targetId: 't1', orderId: id, detail, healed: false }], heal: [] });
  });

  /**
   * An order the ledger stored before the rule (neither the control/bidi rule nor the Cf rule was
   * released when these ids were taken): the ledger holds the id exactly, so it is compared and its
   * refund healed as any order's. Refused, a Bambuser order "SO\u200E1001" lost its refund (no
   * commission reversal) and was an invalid_order of every run.
   */
  test.each([
    ['a U+200E left-to-right mark', 'SO\u200e1001'],
    ['a U+200B zero-width space', 'ord-1\u200b'],
    ['a U+202E override', 'ord-\u202e1'],
    ['a NUL', 'ord\u0000x'],
  ])('an order id holding %s that the ledger already holds: compared, its refund healed', (_name, id) => {
    const now = Date.parse('2026-11-25T00:00:00Z');
    const ledger = [{ orderId: id, currency: 'USD', gross: 1000, refunded: 0 }];
    const reported = order(id, 1000, 400);
    expect(compareTarget('t1', [reported], ledger, VOIDED, now)).toEqual({
      discrepancies: [{ kind: 'amount_mismatch', targetId: 't1', orderId: id, detail: 'platform refunded 400, ledger 0; reversal added', healed: true }],
      heal: [reported],
    });
    // The same id, and another the ledger lacks, in one report: only the new one is refused.
    const other = `${id}-new`;
    const both = compareTarget('t1', [reported, order(other, 1000)], ledger, VOIDED, now);
    expect(both.discrepancies.map((d) => [d.orderId, d.kind, d.reason, d.healed])).toEqual([
      [id, 'amount_mismatch', undefined, true],
      [other, 'missing_in_ledger', 'invalid_order', false],
    ]);
    expect(both.heal).toEqual([reported]);
  });

  /**
   * A lone surrogate is refused even in an id the ledger "holds" (re-review): the ledger's key goes to
   * Redis as UTF-8, each lone surrogate as U+FFFD, so a lookup of 'ord-\udc00' finds the order stored as
   * 'ord-\ud800': not the same id. It is an invalid_order, never healed onto that record.
   */
  test('an order id holding a lone surrogate that the ledger lookup found: invalid_order, not healed', () => {
    const id = 'ord-\udc00';
    const { discrepancies, heal } = compareTarget('t1', [order(id, 1000, 400)], [{ orderId: id, currency: 'USD', gross: 1000, refunded: 0 }], VOIDED, Date.parse('2026-11-25T00:00:00Z'));
    expect(discrepancies).toEqual([expect.objectContaining({ kind: 'amount_mismatch', reason: 'invalid_order', orderId: id, healed: false, detail: expect.stringContaining(String.raw`"ord-\udc00"`) })]);
    expect(heal).toEqual([]);
  });

  test('an order id holding white space is healed as any other', () => {
    const { discrepancies, heal } = compareTarget('t1', [order('SO 1001', 1000), order('SO\u00a01002', 1000)], [], VOIDED, Date.parse('2026-11-25T00:00:00Z'));
    expect(discrepancies.map((d) => [d.orderId, d.kind, d.healed, d.reason])).toEqual([
      ['SO 1001', 'missing_in_ledger', true, undefined],
      ['SO\u00a01002', 'missing_in_ledger', true, undefined],
    ]);
    expect(heal.map((h) => h.orderId)).toEqual(['SO 1001', 'SO\u00a01002']);
  });
});
