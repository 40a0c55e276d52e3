/**
 * Money (src/domain/money.ts): commission arithmetic in integer minor units, round-half-up, never a
 * float; and human formatting per ISO 4217 exponent.
 */
import fc from 'fast-check';
import { amountOf, applyBps, currencyExponent, formatMoney, MoneySchema, plus } from '../../src/domain/money.js';
import { decimalToMinor, minorToDecimal } from '../../src/targets/decimal-amount.js';

/** Independent reference: round-half-up(amount × bps / 10000) with BigInt quotient and remainder. */
function reference(amount: bigint, bps: bigint): bigint {
  const n = amount * bps;
  const q = n / 10000n; // truncates toward zero
  const r = n % 10000n;
  if (n >= 0n) return 2n * r >= 10000n ? q + 1n : q;
  // Negative amounts (corrections) round symmetrically: half away from zero.
  return 2n * -r >= 10000n ? q - 1n : q;
}

const amountArb = fc.maxSafeNat();
const bpsArb = fc.integer({ min: 0, max: 10_000 });

describe('applyBps', () => {
  test('worked examples (halves round up)', () => {
    expect(applyBps(1, 5000)).toBe(1); // 0.5 → 1
    expect(applyBps(1, 4999)).toBe(0); // 0.4999 → 0
    expect(applyBps(3, 5000)).toBe(2); // 1.5 → 2
    expect(applyBps(5, 5000)).toBe(3); // 2.5 → 3 (not banker's 2)
    expect(applyBps(2500, 1250)).toBe(313); // 312.5 → 313
    expect(applyBps(1999, 750)).toBe(150); // 149.925 → 150
    expect(applyBps(1999, 0)).toBe(0);
    expect(applyBps(1999, 10_000)).toBe(1999);
    expect(applyBps(0, 10_000)).toBe(0);
    expect(applyBps(-5, 5000)).toBe(-3);
  });

  test('matches the BigInt round-half-up reference for every safe amount and rate (property)', () => {
    fc.assert(
      fc.property(amountArb, bpsArb, (amount, bps) => {
        const got = applyBps(amount, bps);
        expect(Number.isSafeInteger(got)).toBe(true);
        expect(BigInt(got)).toBe(reference(BigInt(amount), BigInt(bps)));
      }),
      { numRuns: 2000 },
    );
  });

  test('exact where float arithmetic is not (amounts near 2^53)', () => {
    const max = Number.MAX_SAFE_INTEGER; // 9007199254740991
    expect(applyBps(max, 10_000)).toBe(max);
    expect(BigInt(applyBps(max, 5001))).toBe(reference(BigInt(max), 5001n));
    expect(BigInt(applyBps(max, 1))).toBe(900719925474n); // 900719925474.0991
    // The naive float formula gets at least one of these wrong; applyBps gets them all right.
    const samples = [max, max - 1, max - 12345, 2 ** 52 + 3, 4_503_599_627_370_497];
    let floatWrong = 0;
    for (const a of samples)
      for (const b of [3333, 5001, 7777, 9999]) {
        const exact = reference(BigInt(a), BigInt(b));
        expect(BigInt(applyBps(a, b))).toBe(exact);
        if (BigInt(Math.round((a * b) / 10000)) !== exact) floatWrong++;
      }
    expect(floatWrong).toBeGreaterThan(0);
  });

  test('negative amounts are symmetric (property)', () => {
    fc.assert(
      fc.property(amountArb, bpsArb, (amount, bps) => {
        expect(applyBps(-amount, bps) + 0).toBe(-applyBps(amount, bps) + 0);
        expect(BigInt(applyBps(-amount, bps))).toBe(reference(BigInt(-amount), BigInt(bps)));
      }),
      { numRuns: 500 },
    );
  });

  test('monotonic in the amount and in the rate (property)', () => {
    fc.assert(
      fc.property(amountArb, amountArb, bpsArb, (a, b, bps) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(applyBps(lo, bps)).toBeLessThanOrEqual(applyBps(hi, bps));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(amountArb, bpsArb, bpsArb, (amount, r1, r2) => {
        const [lo, hi] = r1 <= r2 ? [r1, r2] : [r2, r1];
        expect(applyBps(amount, lo)).toBeLessThanOrEqual(applyBps(amount, hi));
      }),
      { numRuns: 1000 },
    );
  });

  test('bounded: 0 ≤ commission ≤ amount for rates 0..100 %, and within ½ minor unit of the exact value (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), bpsArb, (amount, bps) => {
        const c = applyBps(amount, bps);
        expect(c).toBeGreaterThanOrEqual(0);
        expect(c).toBeLessThanOrEqual(amount);
        // |c × 10000 − amount × bps| ≤ 5000, in exact integers.
        const diff = BigInt(c) * 10000n - BigInt(amount) * BigInt(bps);
        expect(diff <= 5000n && diff > -5000n).toBe(true);
      }),
    );
  });

  test('never takes a float: non-integer or unsafe inputs throw', () => {
    expect(() => applyBps(12.5, 500)).toThrow(RangeError);
    expect(() => applyBps(1250, 2.5)).toThrow(RangeError);
    expect(() => applyBps(Number.NaN, 500)).toThrow(RangeError);
    expect(() => applyBps(Number.POSITIVE_INFINITY, 500)).toThrow(RangeError);
    expect(() => applyBps(Number.MAX_SAFE_INTEGER + 1, 1)).toThrow(RangeError);
    fc.assert(
      fc.property(
        fc.double({ noNaN: true }).filter((x) => !Number.isInteger(x)),
        (x) => {
          expect(() => applyBps(x, 100)).toThrow(RangeError);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/**
 * Totals (reports, the ledger's counters read back) are exact: a number while the sum is a safe integer,
 * a bigint past 2^53, where a double would round (2^53 + 1 is no double: it read as 2^53).
 */
describe('plus', () => {
  test('sums past 2^53 are exact bigints; safe sums stay numbers', () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(plus(1, 2)).toBe(3);
    expect(plus(max - 1, 1)).toBe(max);
    expect(plus(max, 2)).toBe(9007199254740993n);
    expect(plus(max, max)).toBe(18014398509481982n);
    expect(plus(-max, -2)).toBe(-9007199254740993n);
    // back under 2^53: a number again
    expect(plus(9007199254740993n, -2)).toBe(max);
    expect(plus(amountOf('9007199254740993'), 0)).toBe(9007199254740993n);
  });

  test('any two safe integers sum exactly', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), fc.maxSafeInteger(), (a, b) => {
        const s = plus(a, b);
        expect(BigInt(s)).toBe(BigInt(a) + BigInt(b));
        expect(typeof s === 'number').toBe(Number.isSafeInteger(a + b));
      }),
    );
  });
});

describe('MoneySchema', () => {
  test('integer minor units and an ISO 4217 code only', () => {
    expect(MoneySchema.safeParse({ amount: 1800, currency: 'USD' }).success).toBe(true);
    expect(MoneySchema.safeParse({ amount: 18.5, currency: 'USD' }).success).toBe(false);
    expect(MoneySchema.safeParse({ amount: '1800', currency: 'USD' }).success).toBe(false);
    expect(MoneySchema.safeParse({ amount: 2 ** 53, currency: 'USD' }).success).toBe(false);
    expect(MoneySchema.safeParse({ amount: 1800, currency: 'usd' }).success).toBe(false);
    expect(MoneySchema.safeParse({ amount: 1800, currency: 'US' }).success).toBe(false);
  });
});

describe('formatMoney', () => {
  test.each([
    [{ amount: 1800, currency: 'JPY' }, '1800 JPY'],
    [{ amount: 0, currency: 'JPY' }, '0 JPY'],
    [{ amount: -500, currency: 'JPY' }, '-500 JPY'],
    [{ amount: 1234, currency: 'KWD' }, '1.234 KWD'],
    [{ amount: 5, currency: 'KWD' }, '0.005 KWD'],
    [{ amount: 1000, currency: 'KWD' }, '1.000 KWD'],
    [{ amount: -1, currency: 'KWD' }, '-0.001 KWD'],
    [{ amount: 1999, currency: 'USD' }, '19.99 USD'],
    [{ amount: 5, currency: 'USD' }, '0.05 USD'],
    [{ amount: 0, currency: 'USD' }, '0.00 USD'],
    [{ amount: -150, currency: 'USD' }, '-1.50 USD'],
    [{ amount: 123456789, currency: 'EUR' }, '1234567.89 EUR'],
  ])('%o → %s', (m, s) => {
    expect(formatMoney(m)).toBe(s);
  });

  test('exponents: JPY 0, KWD 3, USD 2', () => {
    expect(currencyExponent('JPY')).toBe(0);
    expect(currencyExponent('KWD')).toBe(3);
    expect(currencyExponent('USD')).toBe(2);
  });

  // ISO 4217 minor units (list one), including those a hand-written table once got wrong and those
  // where ICU's display digits differ from ISO (IQD, HUF, COP, IDR).
  test.each([
    ['XOF', 0],
    ['XAF', 0],
    ['UGX', 0],
    ['PYG', 0],
    ['IQD', 3],
    ['LYD', 3],
    ['HUF', 2],
    ['COP', 2],
    ['IDR', 2],
    ['CLF', 4],
    ['ISK', 0],
    ['TND', 3],
  ])('ISO 4217 exponent of %s is %i', (currency, exponent) => {
    expect(currencyExponent(currency)).toBe(exponent);
  });

  test('a code outside ISO 4217 counts in hundredths', () => {
    expect(currencyExponent('ZZZ')).toBe(2);
  });

  test('ISO amounts format and parse with the ISO exponent', () => {
    expect(formatMoney({ amount: 1500, currency: 'XOF' })).toBe('1500 XOF');
    expect(formatMoney({ amount: 12345, currency: 'IQD' })).toBe('12.345 IQD');
    expect(decimalToMinor('1500', 'XOF')).toBe(1500);
    expect(decimalToMinor('25000', 'UGX')).toBe(25000);
    expect(decimalToMinor('12.345', 'LYD')).toBe(12345);
    expect(decimalToMinor('12.345', 'IQD')).toBe(12345);
    expect(minorToDecimal({ amount: 7000, currency: 'PYG' })).toBe('7000');
    expect(minorToDecimal({ amount: 7000, currency: 'IQD' })).toBe('7.000');
  });

  test('round-trips to the exact minor-unit amount (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(10 ** 15), max: 10 ** 15 }), fc.constantFrom('JPY', 'KWD', 'USD', 'EUR', 'BHD', 'KRW'), (amount, currency) => {
        const s = formatMoney({ amount, currency });
        const m = /^(-?)(\d+)(?:\.(\d+))? ([A-Z]{3})$/.exec(s);
        expect(m).not.toBeNull();
        const [, sign, whole, frac = ''] = m!;
        expect(m![4]).toBe(currency);
        expect(frac.length).toBe(currencyExponent(currency));
        expect(whole!.length === 1 || !whole!.startsWith('0')).toBe(true);
        const back = BigInt(whole! + frac) * (sign ? -1n : 1n);
        expect(back).toBe(BigInt(amount));
      }),
      { numRuns: 1000 },
    );
  });
});
