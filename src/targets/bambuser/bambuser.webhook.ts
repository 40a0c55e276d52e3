/**
 * Bambuser webhooks carry no signature: the only proof of origin is the custom header(s) registered
 * with the webhook (`POST /webhooks {name, url, topics, headers}`, or in BamHub → Settings →
 * Integrations → Webhooks). We register one secret header and compare it in constant time.
 * (Bambuser also lets a receiver re-fetch an event with `GET /webhooks/{eventId}`; we do not, because
 * each re-fetch spends one of the key's 5 requests per 10 s.)
 *
 * Deliveries are retried until they get a 200, so the same `eventId` can arrive more than once; the
 * events carry no orders (topics: show, product, user, product-highlight, broadcast), so nothing here
 * needs deduplicating — order data comes from the stats report (listOrders).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { credentialsPatch, type AdviceTarget } from '../credentials-advice.js';
import { WebhookAuthError } from '../target.errors.js';
import { PermanentError } from '../target.errors.js';
import { WebhookEventSchema, type BambuserWebhookEvent } from './bambuser.schemas.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time equality that does not leak the expected length either (both sides hashed first). */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * Throws WebhookAuthError unless `headers[name]` equals the configured value. `advice`: the target's ids
 * and credential field names, for the PATCH that stores the header when none is configured: in the
 * error's `advice` (ops' warn line), not its message (the 401 an unauthenticated caller reads; it held
 * the PATCH, ids and field names included).
 */
export function verifyWebhookHeader(headers: Record<string, string | undefined>, name: string, expected: string | undefined, advice: AdviceTarget): void {
  if (expected === undefined) {
    throw new WebhookAuthError(
      'Bambuser webhooks cannot be verified for this target',
      `store the custom header registered with the Bambuser webhook with ${credentialsPatch(advice, ['webhookHeaderValue'])} ` +
        `(webhookHeaderValue: the header's value; webhookHeaderName: its name, default x-webhook-secret)`,
    );
  }
  const presented = headers[name.toLowerCase()];
  if (presented === undefined || !sameSecret(presented, expected)) {
    // Not the header's name: it is the target's configuration (webhookHeaderName).
    throw new WebhookAuthError('Bambuser webhook without the expected header value');
  }
}

export function parseWebhookEvent(raw: Buffer): BambuserWebhookEvent {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new PermanentError('Bambuser webhook body is not JSON', 'malformed_webhook');
  }
  const parsed = WebhookEventSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PermanentError(`Bambuser webhook body is not a webhook event (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'})`, 'malformed_webhook');
  }
  return parsed.data;
}
