/**
 * Platforms that report money as decimal strings (`{"amount": "12.34", "currency": "USD"}`: TikTok
 * Shop, Whatnot) → our integer minor units, without ever going through a float.
 */
import { currencyExponent, type Money } from '../domain/money.js';

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;
/** Longer text is no amount any order has (2^53 has 16 digits): refused before BigInt reads it. */
const MAX_TEXT = 64;

/**
 * "12.34" USD → 1234; "1000" JPY → 1000; "12.340" USD → 1234 (a trailing zero changes nothing).
 * Exact or nothing: undefined for anything that is not a plain decimal number ("1e3", " 12", "12.",
 * "+1"), for digits the currency's minor unit cannot hold ("1.235" USD: rounding it would store another
 * amount than the platform's), and past Number.MAX_SAFE_INTEGER minor units (a double would round it).
 * "-0" and "-0.00" are 0.
 */
export function decimalToMinor(amount: string, currency: string): number | undefined {
  if (amount.length > MAX_TEXT) return undefined;
  const m = DECIMAL.exec(amount);
  if (!m) return undefined;
  const [, sign, whole = '0', frac = ''] = m;
  const exp = currencyExponent(currency);
  if (/[^0]/.test(frac.slice(exp))) return undefined;
  const minor = BigInt(whole + frac.slice(0, exp).padEnd(exp, '0'));
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return minor === 0n ? 0 : Number(sign ? -minor : minor);
}

/** 1234 USD → "12.34" (the inverse, for simulators and request bodies). */
export function minorToDecimal(m: Money): string {
  const exp = currencyExponent(m.currency);
  const neg = m.amount < 0;
  const digits = String(Math.abs(m.amount)).padStart(exp + 1, '0');
  const whole = exp === 0 ? digits : digits.slice(0, digits.length - exp);
  return `${neg ? '-' : ''}${whole}${exp === 0 ? '' : `.${digits.slice(digits.length - exp)}`}`;
}
