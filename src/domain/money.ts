import { data as isoCurrencies } from 'currency-codes';
import { z } from 'zod';

/**
 * ISO 4217 codes with no minor unit ("N.A." in list one): precious metals (XAU, XAG, XPD, XPT), bond
 * market units (XBA–XBD), SDR-like units of account (XDR, XSU, XUA), the testing code XTS and XXX
 * ("no currency involved"). Nothing is sold for them, and without a minor unit an integer amount has
 * no meaning; the list (`currency-codes`) gives them 0 digits.
 */
const NO_MINOR_UNIT: ReadonlySet<string> = new Set(['XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX']);
/**
 * Active codes ISO added after the `currency-codes` data (2024-06-25): XCG, the Caribbean guilder of
 * Curaçao and Sint Maarten since 2025-03-31. Add an amendment's new code here when it comes.
 */
const ADDED_SINCE_LIST: readonly string[] = ['XCG'];
/** The active ISO 4217 currencies money can be in: ISO's list one (`currency-codes`, plus ADDED_SINCE_LIST) less NO_MINOR_UNIT. */
const CURRENCIES: ReadonlySet<string> = new Set([...isoCurrencies.map((c) => c.code), ...ADDED_SINCE_LIST].filter((c) => !NO_MINOR_UNIT.has(c)));
export const NOT_A_CURRENCY = 'not an active ISO 4217 currency (metals, funds, XTS and XXX are not accepted)';
export function isCurrency(code: string): boolean {
  return CURRENCIES.has(code);
}

/**
 * An active ISO 4217 currency code: three capital letters (else 'ISO 4217 code, e.g. USD'), and one the
 * ISO list has (else 'not an active ISO 4217 currency'): 'ZZZ' or 'ABC' is refused at the edge (400 with
 * the field), not counted as a currency of its own in the ledger and the attribution totals.
 */
export const CurrencySchema = z
  .string()
  .regex(/^[A-Z]{3}$/, { message: 'ISO 4217 code, e.g. USD', abort: true })
  .refine(isCurrency, { message: NOT_A_CURRENCY });

/**
 * Money is an integer amount in minor units plus an ISO 4217 currency; never a float. Its currency is
 * checked for shape only: stored events are parsed with it again later (the attribution job, the
 * order-event sweep), and an event an earlier version acknowledged must not fail that parse and be
 * dropped. Whether the code is on ISO's list is checked once, at the edge (currencyIssues, in
 * IngestService) — and by CurrencySchema where a body is validated and never stored.
 */
export const MoneySchema = z.object({
  // z.number().int() is a safe integer in zod 4 (±2^53 − 1): a .safe() after it repeated the same error.
  amount: z.number().int(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code, e.g. USD'),
});
/** Money whose currency must be on ISO's list (CurrencySchema): for bodies validated once and never re-read. */
export const CheckedMoneySchema = MoneySchema.extend({ currency: CurrencySchema });
export type Money = z.infer<typeof MoneySchema>;

/**
 * A sum of money amounts in minor units: a number while it is a safe integer, a bigint past 2^53
 * (totals of several orders can pass it; a double would round them). See `plus`.
 */
export type Amount = number | bigint;

/** a + b, exact: a number when the sum is a safe integer, else a bigint. */
export function plus(a: Amount, b: Amount): Amount {
  if (typeof a === 'number' && typeof b === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s; // both safe integers and the sum is: the double is exact
  }
  return normalize(BigInt(a) + BigInt(b));
}

/** A counter as Redis writes it (a signed 64-bit integer in decimal) as an exact Amount. */
export function amountOf(decimal: string): Amount {
  const n = Number(decimal);
  return Number.isSafeInteger(n) ? n : normalize(BigInt(decimal));
}

function normalize(x: bigint): Amount {
  return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}

/** round-half-up(amount × bps / 10000) in integer arithmetic (BigInt: no float anywhere). */
export function applyBps(amount: number, bps: number): number {
  if (!Number.isSafeInteger(amount) || !Number.isSafeInteger(bps)) throw new RangeError('integers only');
  const a = BigInt(amount);
  const b = BigInt(bps);
  const num = a * b;
  const neg = num < 0n;
  const abs = neg ? -num : num;
  const q = (abs * 2n + 10000n) / 20000n; // floor((abs + 5000) / 10000)
  return Number(neg ? -q : q);
}

/**
 * Minor-unit exponent of each ISO 4217 currency, from the ISO 4217 list itself (the `currency-codes`
 * package ships SIX's list one). Not from ICU: Node's `Intl.NumberFormat` resolves CLDR's display
 * digits, which differ from ISO's minor unit for some currencies (ICU says IQD 0, HUF 0, COP 0, IDR 0;
 * ISO says 3, 2, 2, 2), and money here is counted in ISO minor units. See docs/libraries.md.
 */
const EXPONENT: ReadonlyMap<string, number> = new Map(isoCurrencies.map((c) => [c.code, c.digits]));
/** ISO 4217 minor unit of `currency`; 2 for a code the list does not know (the usual case). */
export function currencyExponent(currency: string): number {
  return EXPONENT.get(currency) ?? 2;
}
export function formatMoney(m: Money): string {
  const e = currencyExponent(m.currency);
  const neg = m.amount < 0;
  const s = String(Math.abs(m.amount)).padStart(e + 1, '0');
  const whole = e === 0 ? s : s.slice(0, s.length - e);
  const frac = e === 0 ? '' : '.' + s.slice(s.length - e);
  return `${neg ? '-' : ''}${whole}${frac} ${m.currency}`;
}
