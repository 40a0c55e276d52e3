/**
 * JSON.parse rounds every number to a double, silently: `1.0000000000000001` reads as 1 and
 * `9007199254740990.6` as 9007199254740991, both integers the money schema then accepts although the
 * sender wrote neither. Money is integers in minor units (the contract), so a number literal that
 * reads as a safe integer must be exactly that integer as written; this finds the first one that is
 * not. Literals that read as a non-integer or past 2^53 − 1 are left to the schema (an amount must be a
 * safe integer, so those are refused there anyway); `1e3` and `100.0` are exactly 1000 and 100.
 */

const NUMBER = /-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?/y;

/** The first number literal of `text` (valid JSON) that reads as a safe integer it is not exactly, or undefined. */
export function inexactIntegerLiteral(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string: an escaped character never ends it.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      continue;
    }
    if (c !== 0x2d /* - */ && (c < 0x30 || c > 0x39)) continue;
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) continue;
    const literal = m[0];
    i += literal.length - 1;
    const value = Number(literal);
    if (!Number.isSafeInteger(value)) continue;
    if (!isExactly(value, m[1]!, m[2] ?? '', m[3])) return literal;
  }
  return undefined;
}

/** Is whole.frac × 10^exp exactly the safe integer `value` (sign aside: a double keeps the sign)? */
function isExactly(value: number, whole: string, frac: string, exp: string | undefined): boolean {
  if (frac === '' && exp === undefined) return whole.length <= 16 && String(Math.abs(value)) === whole.replace(/^0+(?=\d)/, '');
  let digits = whole + frac;
  // A longer exponent than this puts a non-zero digit past 10^30 or below 10^-30: no safe integer.
  const e = exp === undefined ? 0 : exp.length > 8 ? Math.sign(Number(exp)) * 1e9 : Number(exp);
  let point = whole.length + e; // where the decimal point falls in `digits`
  const lead = /^0*/.exec(digits)![0].length;
  digits = digits.slice(lead);
  point -= lead;
  digits = digits.replace(/0+$/, '');
  if (digits === '') return value === 0;
  if (point <= 0 || point > 16 || digits.length > point) return false; // a fraction left, or past 2^53
  return String(Math.abs(value)) === digits.padEnd(point, '0');
}
