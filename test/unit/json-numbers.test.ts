/**
 * inexactIntegerLiteral: a JSON number literal that JSON.parse rounds into a safe integer it is not is
 * found (the partner event ingest refuses it); exact forms of an integer (`1e3`, `100.0`, `-0`) and
 * literals inside strings are not.
 */
import fc from 'fast-check';
import { inexactIntegerLiteral } from '../../src/lib/json-numbers.js';

test('every safe integer, written plainly, with zeros after a point or as mantissa and exponent, is exact (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: 5 }), (n, zeros) => {
      expect(inexactIntegerLiteral(JSON.stringify({ amount: n, list: [n, { n }] }))).toBeUndefined();
      if (zeros > 0) expect(inexactIntegerLiteral(`[${n}.${'0'.repeat(zeros)}]`)).toBeUndefined();
      const digits = String(Math.abs(n));
      const sign = n < 0 ? '-' : '';
      expect(inexactIntegerLiteral(`[${sign}${digits[0]}.${digits.slice(1) || '0'}e${digits.length - 1}]`)).toBeUndefined();
      expect(inexactIntegerLiteral(`[${sign}${digits}0e-1]`)).toBeUndefined();
    }),
  );
});

test('a safe integer with a non-zero digit after it, which JSON.parse rounds away, is found (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 1 }), fc.stringMatching(/^[0-9]{0,30}[1-9]$/), (n, frac) => {
      const literal = `${n}.${frac}`;
      const found = inexactIntegerLiteral(`{"a":"${literal}","b":${literal}}`);
      // Only when the double is an integer: a fraction that survives is the schema's to refuse.
      expect(found).toBe(Number.isInteger(Number(literal)) ? literal : undefined);
    }),
  );
});

test('examples', () => {
  expect(inexactIntegerLiteral('{"amount":1.0000000000000001}')).toBe('1.0000000000000001');
  expect(inexactIntegerLiteral('[9007199254740990.6]')).toBe('9007199254740990.6');
  expect(inexactIntegerLiteral('[1e-400]')).toBe('1e-400');
  expect(inexactIntegerLiteral('[0.1e1, 1e3, -0, 0e99999999999, 1E+2]')).toBeUndefined();
  expect(inexactIntegerLiteral('["1.0000000000000001", "\\"", 12.5, 9007199254740993, 1e300]')).toBeUndefined();
  expect(inexactIntegerLiteral('{"a\\"1.0000000000000001":2}')).toBeUndefined();
});
