/**
 * JSON with exact big integers. Money sums can pass 2^53 (each amount is at most
 * Number.MAX_SAFE_INTEGER; a total of several is not); they are kept as a bigint past that, and JSON
 * may carry any number of digits, so a bigint is written as its integer digits, not rounded through a
 * double. Used as the API's reply serializer: plain JSON.stringify first (a reply without a bigint costs
 * nothing extra), the digit-writing path only when it refuses a bigint.
 */
import { randomBytes } from 'node:crypto';

export function exactJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (e) {
    if (!(e instanceof TypeError) || !/BigInt/i.test(e.message)) throw e;
  }
  // Each bigint becomes a string carrying a marker no input can hold (random per call), then its quotes go.
  const mark = `\u0000big${randomBytes(9).toString('hex')}:`;
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${mark}${v}` : v));
  const quoted = JSON.stringify(mark).slice(0, -1); // the marker as JSON writes it, opening quote included
  return text.split(quoted).map((part, i) => (i === 0 ? part : part.replace(/^(-?\d+)"/, '$1'))).join('');
}
