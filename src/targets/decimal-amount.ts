/**
 * Platforms that report money as decimal strings (`{"amount": "12.34", "currency": "USD"}`: TikTok
 * Shop, Whatnot) → our integer minor units, without ever going through a float.
 */
import { currencyExponent, type Money } from '../domain/money.js';

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/**
 * "12.34" USD → 1234; "1000" JPY → 1000. Digits beyond the currency's exponent are rounded half up
 * (away from zero). Returns undefined for anything that is not a plain decimal number.
 */
export function decimalToMinor(amount: string, currency: string): number | undefined {
  const m = DECIMAL.exec(amount.trim());
  if (!m) return undefined;
  const [, sign, whole = '0', frac = ''] = m;
  const exp = currencyExponent(currency);
  const kept = frac.slice(0, exp).padEnd(exp, '0');
  const rest = frac.slice(exp);
  let minor = BigInt(whole + kept);
  if (rest.length > 0 && rest.charCodeAt(0) >= '5'.charCodeAt(0)) minor += 1n;
  const n = Number(sign ? -minor : minor);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** 1234 USD → "12.34" (the inverse, for simulators and request bodies). */
export function minorToDecimal(m: Money): string {
  const exp = currencyExponent(m.currency);
  const neg = m.amount < 0;
  const digits = String(Math.abs(m.amount)).padStart(exp + 1, '0');
  const whole = exp === 0 ? digits : digits.slice(0, digits.length - exp);
  return `${neg ? '-' : ''}${whole}${exp === 0 ? '' : `.${digits.slice(digits.length - exp)}`}`;
}
