/**
 * Money and times read from the platforms (webhooks and order reports) are exact or refused:
 * decimalToMinor never rounds (digits beyond the currency's minor unit, past 2^53, exponent forms are
 * refused) and rfc3339Ms / unixSecondsMs accept only a full RFC 3339 date-time with an offset or
 * integer unix seconds, from 1970 to 9999. Before: "1.235" USD was rounded to 124 and Date.parse read
 * "2" as 2001-02-01.
 */
import fc from 'fast-check';
import { currencyExponent } from '../../src/domain/money.js';
import { rfc3339Ms, unixSecondsMs } from '../../src/lib/timestamp.js';
import { decimalToMinor, minorToDecimal } from '../../src/targets/decimal-amount.js';

const CURRENCIES = ['JPY', 'KWD', 'USD', 'EUR', 'BHD', 'IQD', 'CLF'];

describe('decimalToMinor', () => {
  test('every safe minor-unit amount round-trips through its decimal text, with trailing zeros too (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(...CURRENCIES), fc.nat({ max: 3 }), (amount, currency, zeros) => {
        const text = minorToDecimal({ amount, currency });
        expect(decimalToMinor(text, currency)).toBe(amount === 0 ? 0 : amount);
        const padded = currencyExponent(currency) === 0 ? (zeros > 0 ? `${text}.${'0'.repeat(zeros)}` : text) : text + '0'.repeat(zeros);
        expect(decimalToMinor(padded, currency)).toBe(amount === 0 ? 0 : amount);
      }),
    );
  });

  test('a digit the minor unit cannot hold is refused, never rounded (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), fc.constantFrom(...CURRENCIES), fc.integer({ min: 1, max: 9 }), (amount, currency, digit) => {
        const text = minorToDecimal({ amount, currency });
        const extra = currencyExponent(currency) === 0 ? `${text}.${digit}` : `${text}${digit}`;
        expect(decimalToMinor(extra, currency)).toBeUndefined();
      }),
    );
  });

  test('anything but a plain decimal within 2^53 − 1 minor units is refused (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: BigInt(Number.MAX_SAFE_INTEGER) + 1n, max: 10n ** 40n }), (minor) => {
        expect(decimalToMinor(minorToDecimalBig(minor, 2), 'USD')).toBeUndefined();
        expect(decimalToMinor(`-${minorToDecimalBig(minor, 2)}`, 'USD')).toBeUndefined();
      }),
    );
    for (const bad of ['1e3', '1E3', '1e300', ' 12.34', '12.34 ', '+1', '12.', '.5', '0x10', 'Infinity', 'NaN', '', '1,00', '१२', '9'.repeat(65)]) {
      expect(decimalToMinor(bad, 'USD')).toBeUndefined();
    }
    expect(decimalToMinor('90071992547409.91', 'USD')).toBe(Number.MAX_SAFE_INTEGER);
    expect(decimalToMinor('90071992547409.92', 'USD')).toBeUndefined();
    expect(decimalToMinor('-0', 'USD')).toBe(0);
    expect(Object.is(decimalToMinor('-0.00', 'USD'), 0)).toBe(true);
  });
});

function minorToDecimalBig(minor: bigint, exp: number): string {
  const s = minor.toString().padStart(exp + 1, '0');
  return `${s.slice(0, s.length - exp)}.${s.slice(s.length - exp)}`;
}

describe('rfc3339Ms', () => {
  test('every instant from 1970 to 9999 written as RFC 3339 (Z or an offset) reads back exactly (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253402300799999 }), fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }), (ms, offsetMin) => {
        expect(rfc3339Ms(new Date(ms).toISOString())).toBe(ms);
        const local = new Date(ms + offsetMin * 60_000);
        if (local.getUTCFullYear() > 9999 || local.getTime() < 0) return;
        const sign = offsetMin < 0 ? '-' : '+';
        const abs = Math.abs(offsetMin);
        const text = `${local.toISOString().slice(0, 23)}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        expect(rfc3339Ms(text)).toBe(ms);
      }),
    );
  });

  test('what Date.parse reads loosely is refused', () => {
    for (const bad of ['2', '2026', '2026-11-24', '2026-11-24T18:00:00', '2026-11-24 18:00:00Z', '2026-11-24T18:00Z', '2026-02-30T00:00:00Z', '2026-11-24T24:00:00Z', 'Tue, 24 Nov 2026 18:00:00 GMT', '11/24/2026', '1969-12-31T23:59:59Z', '0001-01-01T00:00:00Z', '+010000-01-01T00:00:00Z', '', 1764000000, null]) {
      expect(rfc3339Ms(bad)).toBeUndefined();
    }
  });
});

describe('unixSecondsMs', () => {
  test('integer seconds from 1970 to 9999 only', () => {
    expect(unixSecondsMs(1764000000)).toBe(1764000000_000);
    expect(unixSecondsMs(0)).toBe(0);
    for (const bad of [-1, 1.5, 253402300800, Number.MAX_SAFE_INTEGER, 1e300, Number.NaN, '1764000000']) expect(unixSecondsMs(bad)).toBeUndefined();
  });
});
