/** Exact money sums past 2^53 (domain/money.ts `plus`, `amountOf`) and their JSON (lib/exact-json.ts). */
import { amountOf, plus } from '../../src/domain/money.js';
import { exactJson } from '../../src/lib/exact-json.js';

const MAX = Number.MAX_SAFE_INTEGER;

test('plus stays a number while the sum is a safe integer and is an exact bigint past it', () => {
  expect(plus(1, 2)).toBe(3);
  expect(plus(MAX - 1, 1)).toBe(MAX);
  expect(plus(MAX, 1)).toBe(9007199254740992n);
  expect(plus(plus(MAX, MAX), MAX)).toBe(27021597764222973n);
  expect(plus(plus(MAX, MAX), -MAX)).toBe(MAX); // back to a number once safe again
  expect(plus(-MAX, -1)).toBe(-9007199254740992n);
});

test('amountOf reads an int64 counter exactly', () => {
  expect(amountOf('42')).toBe(42);
  expect(amountOf('9007199254740993')).toBe(9007199254740993n);
  expect(amountOf('-9223372036854775808')).toBe(-9223372036854775808n);
});

test('exactJson writes bigints as their digits and everything else as JSON.stringify does', () => {
  const v = { a: 27021597764222973n, b: [-(1n << 70n), 'x"\u0000big', new Date(0)], c: 1.5, d: undefined };
  expect(exactJson(v)).toBe('{"a":27021597764222973,"b":[-1180591620717411303424,"x\\"\\u0000big","1970-01-01T00:00:00.000Z"],"c":1.5}');
  expect(exactJson({ a: 1, s: 'x' })).toBe(JSON.stringify({ a: 1, s: 'x' }));
  expect(exactJson(5n)).toBe('5');
});
