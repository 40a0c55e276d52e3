/**
 * TikTok Shop request and webhook signatures (Partner Center "Sign your API request" and
 * "Webhook signature"). Pure functions; the worked example in test/unit/tiktok.sign.test.ts checks
 * them against an HMAC computed by hand.
 *
 * Request: sign = hex(HMAC-SHA256(key = app_secret,
 *   app_secret + path + concat(sorted by key: key + value, over every query parameter except `sign`
 *   and `access_token`) + body + app_secret)).
 * The body is the exact JSON text sent (left out for multipart/form-data uploads); values are the raw,
 * un-encoded parameter values; `path` is the API path without host or query (e.g.
 * `/affiliate_seller/202410/orders/search`).
 *
 * Webhook: Authorization header = hex(HMAC-SHA256(key = app_secret, app_key + raw body)).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const UNSIGNED_PARAMS: ReadonlySet<string> = new Set(['sign', 'access_token']);

export interface SignInput {
  appSecret: string;
  path: string;
  query: Record<string, string>;
  /** Exact body text; '' for GET or an empty POST; undefined for multipart (not part of the sign). */
  body: string | undefined;
}

/** The string that is HMAC'd (exposed for tests and debugging; it contains the secret, never log it). */
export function signBaseString(input: SignInput): string {
  const params = Object.keys(input.query)
    .filter((k) => !UNSIGNED_PARAMS.has(k))
    .sort()
    .map((k) => `${k}${input.query[k] ?? ''}`)
    .join('');
  return `${input.appSecret}${input.path}${params}${input.body ?? ''}${input.appSecret}`;
}

export function signRequest(input: SignInput): string {
  return createHmac('sha256', input.appSecret).update(signBaseString(input), 'utf8').digest('hex');
}

export function webhookSignature(appKey: string, appSecret: string, raw: Buffer | string): string {
  return createHmac('sha256', appSecret).update(appKey, 'utf8').update(raw).digest('hex');
}

/** Constant-time check of a webhook's Authorization header (hex, case-insensitive). */
export function verifyWebhookSignature(header: string | undefined, appKey: string, appSecret: string, raw: Buffer): boolean {
  if (!header) return false;
  const given = header.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  const expected = Buffer.from(webhookSignature(appKey, appSecret, raw), 'hex');
  return timingSafeEqual(Buffer.from(given, 'hex'), expected);
}
