/**
 * Standard Webhooks verification (https://www.standardwebhooks.com) on the raw body, with node:crypto.
 * We do not call the `standardwebhooks` package on the hot path: it hashes in pure JavaScript
 * (fast-sha256) and stops at the first secret, while we verify against every secret still in its
 * rotation grace period. Its output is accepted byte for byte (see test/integration/events.signature.test.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type VerifyFailure = 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'bad_signature';

export class SignatureError extends Error {
  constructor(readonly reason: VerifyFailure, message: string) {
    super(message);
  }
}

export interface WebhookHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice(6) : secret;
  return Buffer.from(b64, 'base64');
}

export function newWebhookSecret(): string {
  return 'whsec_' + randomBytes(24).toString('base64');
}

export function sign(secret: string | Buffer, id: string, timestamp: number | string, body: Buffer | string): string {
  const key = typeof secret === 'string' ? secretKey(secret) : secret;
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

/** Header value for an outbound delivery or a test: `v1,<base64>`. */
export function signatureHeader(secret: string, id: string, timestamp: number, body: Buffer | string): string {
  return `v1,${sign(secret, id, timestamp, body)}`;
}

/**
 * Throws SignatureError unless one `v1,` signature in the header matches one of `secrets`, and the
 * timestamp is within ±toleranceSec of now.
 */
export function verifyWebhook(headers: WebhookHeaders, body: Buffer, secrets: string[], toleranceSec: number, nowMs = Date.now()): void {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) throw new SignatureError('missing_headers', 'webhook-id, webhook-timestamp and webhook-signature headers are required');
  if (!/^\d{1,12}$/.test(timestamp)) throw new SignatureError('bad_timestamp', 'webhook-timestamp must be unix seconds');
  const ts = Number(timestamp);
  // Whole seconds, like the Standard Webhooks reference: floor(now) − ts > tolerance is too old, ts − floor(now) > tolerance too new.
  const nowSec = Math.floor(nowMs / 1000);
  if (nowSec - ts > toleranceSec || ts - nowSec > toleranceSec) throw new SignatureError('stale_timestamp', `webhook-timestamp is more than ${toleranceSec} s from now`);
  const given: Buffer[] = [];
  for (const part of signature.split(' ')) {
    const [version, value] = part.split(',', 2);
    if (version === 'v1' && value) given.push(Buffer.from(value, 'base64'));
  }
  for (const secret of secrets) {
    const expected = createHmac('sha256', secretKey(secret)).update(`${id}.${timestamp}.`).update(body).digest();
    for (const g of given) if (g.length === expected.length && timingSafeEqual(g, expected)) return;
  }
  throw new SignatureError('bad_signature', 'no valid signature for this partner');
}
