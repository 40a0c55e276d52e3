import { z } from 'zod';

/** Money is an integer amount in minor units plus an ISO 4217 currency; never a float. */
export const MoneySchema = z.object({
  amount: z.number().int().safe(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code, e.g. USD'),
});
export type Money = z.infer<typeof MoneySchema>;

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

/** Format minor units for humans (demo output); exponent per ISO 4217 for the common odd ones. */
const EXPONENT: Record<string, number> = { JPY: 0, KRW: 0, VND: 0, CLP: 0, ISK: 0, KWD: 3, BHD: 3, OMR: 3, JOD: 3, TND: 3 };
export function currencyExponent(currency: string): number {
  return EXPONENT[currency] ?? 2;
}
export function formatMoney(m: Money): string {
  const e = currencyExponent(m.currency);
  const neg = m.amount < 0;
  const s = String(Math.abs(m.amount)).padStart(e + 1, '0');
  const whole = e === 0 ? s : s.slice(0, s.length - e);
  const frac = e === 0 ? '' : '.' + s.slice(s.length - e);
  return `${neg ? '-' : ''}${whole}${frac} ${m.currency}`;
}
