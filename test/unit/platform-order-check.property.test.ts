/**
 * The platform order id check (checkPlatformOrder, shared by the platform-webhook route and
 * reconciliation) as properties: an id holding any format character (Unicode Cf: bidi controls,
 * zero-width and other invisible characters, in and outside the BMP) is refused, wherever it stands;
 * an id of 1 to 256 (UTF-16 units) printable characters — none of category C, white space included — is taken.
 * The examples the webhook route and reconciliation are tested with: platform-webhooks.money,
 * reconcile.compare.
 */
import fc from 'fast-check';
import { checkPlatformOrder, PLATFORM_ID_MAX } from '../../src/attribution/platform-order-check.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';

const NOW = Date.parse('2026-11-25T00:00:00Z');
const withId = (orderId: string): PlatformOrder => ({
  orderId,
  externalShowId: 'show-x',
  productId: 'p1',
  clickId: undefined,
  createdAt: '2026-11-24T18:00:00Z',
  total: { amount: 1000, currency: 'USD' },
  refunded: { amount: 0, currency: 'USD' },
  status: undefined,
  commission: undefined,
});

/** Every format character (U+00AD, U+0600-U+0605, U+200B-U+200F, U+2060-U+2064, U+FEFF, U+E0001, …): 170-odd. */
const FORMAT_CHARS: string[] = [];
for (let cp = 0; cp <= 0x10ffff; cp++) if (/\p{Cf}/u.test(String.fromCodePoint(cp))) FORMAT_CHARS.push(String.fromCodePoint(cp));

/** A printable character: none of category C (control, format, surrogate, private use, unassigned). */
const printable = fc
  .integer({ min: 0x20, max: 0x10ffff })
  .map((cp) => String.fromCodePoint(cp))
  .filter((c) => !/\p{C}/u.test(c));
const printableText = (maxLength: number) => fc.array(printable, { maxLength }).map((cs) => cs.join(''));

test('the named ones are format characters (the rows of the route and reconciliation tests)', () => {
  for (const c of ['\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u2060', '\u2061', '\u2062', '\u2063', '\u2064', '\ufeff', '\u00ad', '\u061c', '\u202a', '\u202e', '\u2066', '\u2069', '\u{e0041}']) expect(FORMAT_CHARS).toContain(c);
  expect(FORMAT_CHARS.length).toBeGreaterThan(150);
});

test('an id holding a format character anywhere is refused (orderId)', () => {
  fc.assert(
    fc.property(printableText(100), fc.constantFrom(...FORMAT_CHARS), printableText(100), (before, cf, after) => {
      expect(checkPlatformOrder(withId(before + cf + after), NOW)).toBe('orderId');
    }),
    { numRuns: 2000 },
  );
});

test('each format character alone, and at either end of a plain id, is refused', () => {
  for (const cf of FORMAT_CHARS) for (const id of [cf, `ord-1${cf}`, `${cf}ord-1`]) expect([JSON.stringify(id), checkPlatformOrder(withId(id), NOW)]).toEqual([JSON.stringify(id), 'orderId']);
});

test(`an id of 1 to ${PLATFORM_ID_MAX} printable characters (white space included) is taken`, () => {
  fc.assert(
    fc.property(
      printableText(PLATFORM_ID_MAX).filter((s) => s.length > 0 && s.length <= PLATFORM_ID_MAX),
      (id) => {
        expect(checkPlatformOrder(withId(id), NOW)).toBeUndefined();
      },
    ),
    { numRuns: 2000 },
  );
});

test(`an id over ${PLATFORM_ID_MAX} printable characters, or empty, is refused`, () => {
  expect(checkPlatformOrder(withId(''), NOW)).toBe('orderId');
  expect(checkPlatformOrder(withId('x'.repeat(PLATFORM_ID_MAX)), NOW)).toBeUndefined();
  expect(checkPlatformOrder(withId('x'.repeat(PLATFORM_ID_MAX + 1)), NOW)).toBe('orderId');
});

test('an order its platform\'s report could not read (`unreadable`: placeholder amounts) is refused, held or not', () => {
  const o = { ...withId('ord-1'), unreadable: 'order "ord-1" has skus in USD and in EUR' };
  expect([checkPlatformOrder(withId('ord-1'), NOW), checkPlatformOrder(o, NOW), checkPlatformOrder(o, NOW, true)]).toEqual([undefined, 'total', 'total']);
});
