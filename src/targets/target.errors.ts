/**
 * The error taxonomy every adapter speaks (ARCHITECTURE.md "Error taxonomy").
 * Adapters turn HTTP / platform errors into one of these; the mirror worker decides what to do from
 * the class, never from message strings (compare bullmq's UnrecoverableError / RateLimitError).
 */
import type { z } from 'zod';

export type TargetErrorKind = 'retryable' | 'rate_limited' | 'auth_expired' | 'permanent' | 'action_required';

export abstract class TargetError extends Error {
  abstract readonly kind: TargetErrorKind;
  /** Platform reason/code when there is one (e.g. `errorStreamInactive`, `105002`). */
  readonly reason: string | undefined;
  /**
   * Nothing of the call reached the platform: its request was never sent (the access-token refresh
   * it needed first failed, whatever the class of that failure, or the attempt's deadline had
   * passed). A step of one request (OnceOptions.singleRequest) is forgotten then, as after a 429 or
   * a 401, so the next attempt (after a retry, or a resync once the operator re-authorised) sends it
   * at once. See asUnsent.
   */
  readonly unsent: boolean;
  constructor(message: string, reason?: string, opts: { unsent?: boolean } = {}) {
    super(message);
    this.name = new.target.name;
    this.reason = reason;
    this.unsent = opts.unsent ?? false;
  }
}

/** 5xx, timeouts, "not yet" states (stream inactive): try again later, optionally after `delayMs`. */
export class RetryableError extends TargetError {
  readonly kind = 'retryable' as const;
  readonly delayMs: number | undefined;
  /**
   * An expected wait, not a failure (the stream is not active yet, a transition is under way, the
   * show is too far ahead): it does not use up the retry budget. A 5xx or a timeout is a failure and
   * counts, even when the platform says when to come back (`Retry-After`).
   */
  readonly waiting: boolean;
  constructor(message: string, opts: { reason?: string; delayMs?: number; waiting?: boolean; unsent?: boolean } = {}) {
    super(message, opts.reason, { unsent: opts.unsent ?? false });
    this.delayMs = opts.delayMs;
    this.waiting = opts.waiting ?? false;
  }
}

/**
 * `err` as the failure of a call whose request was never sent (TargetError.unsent): a copy of the same
 * class, message, reason and fields (a shared refresh's error reaches every caller that waited on it:
 * it is not changed itself); anything else as it is.
 */
export function asUnsent(err: unknown): unknown {
  if (!(err instanceof TargetError) || err.unsent) return err;
  const copy = Object.create(Object.getPrototypeOf(err) as object) as TargetError;
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(err));
  Object.defineProperty(copy, 'unsent', { value: true, enumerable: true, writable: false, configurable: true });
  return copy;
}

/** 429 / quota: do not call this account again before `delayMs` has passed. */
export class RateLimitedError extends TargetError {
  readonly kind = 'rate_limited' as const;
  constructor(
    message: string,
    readonly delayMs: number,
    reason?: string,
  ) {
    super(message, reason);
  }
}

/** Access token rejected even after a refresh: drop the cached token and retry. */
export class AuthExpiredError extends TargetError {
  readonly kind = 'auth_expired' as const;
}

/** Will not succeed by retrying (revoked grant, invalid request): the mirror goes `failed`. */
export class PermanentError extends TargetError {
  readonly kind = 'permanent' as const;
}

/**
 * The platform refused the product a pin named (its id, title or price: a validation error about it),
 * not the account, the token or the show. Permanent for that product as it is, so only the pin fails
 * (`failed`, with this message as its reason) and the mirror goes on with the show's other pins and
 * its end; the pin is tried again once the product changes or the partner pins it again (and, `mendable`,
 * with a back-off while the show is live). Anything
 * that is not a PinRefusedError fails the mirror as a PermanentError does.
 */
export class PinRefusedError extends PermanentError {
  /**
   * What the platform missed is the seller's to mend there, outside Syndicast: the product is none of
   * the seller's listings (Whatnot's 404), not in the shop (TikTok's 36009004 naming `product_id`), out of
   * stock or discontinued in the Page's catalog (Facebook's code 100 naming `product_id`; an item not in
   * the catalog is not refused: the adapter pins it as a comment), or a product id an earlier run read
   * or made and the show's products read again show gone (Bambuser's highlight: the seller removed that
   * product since; the new episode adds it again). The same request
   * succeeds once the seller made the listing, so the sync asks again with a back-off while the show is
   * live and the pin wanted (PIN_REFUSED_RETRY_BASE_MS). Not a refusal of what we sent (a malformed id,
   * a text, a title): that one waits for the product to change, as before.
   */
  readonly mendable: boolean;
  constructor(message: string, reason?: string, opts: { mendable?: boolean; unsent?: boolean } = {}) {
    super(message, reason, opts.unsent === undefined ? {} : { unsent: opts.unsent });
    this.mendable = opts.mendable ?? false;
  }
}

/**
 * The platform show is over on the platform itself: its owner ended (or cancelled) it there, in the
 * platform's own app, and the platform refuses to change it (a Whatnot seller ended the show and the
 * lineup of an ended show no longer changes: 409 `show-not-editable`). Nothing more can be mirrored to
 * it, and retrying cannot change that; but it is no failure of the mirror: the sync takes the mirror as
 * over (`over`: ended or cancelled, as when it ended the show itself), `action_required` while the
 * partner's show is still live (an operator may link a new platform show) and `ended` (or `cancelled`)
 * once the show is over. Anything that does not know it fails the mirror as a PermanentError does.
 */
export class ShowOverError extends PermanentError {
  constructor(
    message: string,
    reason: string,
    readonly over: 'ended' | 'cancelled',
  ) {
    super(message, reason);
  }
}

/** Whether `id`, percent-encoded, stays one URL path segment: not empty, '.' or '..' (resolved away by the URL). */
export function sendableSegment(id: string): boolean {
  return id !== '' && id !== '.' && id !== '..';
}

/**
 * A platform's product id as one URL path segment (TikTok's promotion link, Whatnot's merchandising):
 * percent-encoded, so a '/', '?', '#', '%', a space or an emoji in a partner's sku stays in the segment
 * and the platform judges it (and refuses it: PinRefusedError). An empty id, '.' or '..' cannot be sent
 * as a segment at all (the URL resolves the dot segments away, an empty one is another path): a
 * different resource would be asked, so the pin is refused here, before anything is sent.
 */
export function productPathSegment(productId: string, platform: string): string {
  if (!sendableSegment(productId)) {
    throw new PinRefusedError(`${platform} cannot be sent the product id ${JSON.stringify(productId)}: it is no URL path segment (not sent)`, 'product_id_unsendable');
  }
  return encodeURIComponent(productId);
}

/** An answer that does not match its schema: `malformed response from <what>: ` and its first three issues, by path. */
export function malformedResponse(what: string, error: z.ZodError): PermanentError {
  const issues = error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return new PermanentError(`malformed response from ${what}: ${issues}`, 'malformed_response');
}

/** The platform cannot do the next step by API: an operator must act (mirror `action_required`). */
export class ActionRequiredError extends TargetError {
  readonly kind = 'action_required' as const;
}

export function isTargetError(err: unknown): err is TargetError {
  return err instanceof TargetError;
}

/**
 * A look-up-only step (OpContext.findOnly) found nothing: no earlier attempt made the object, or none
 * was ever started. Not a TargetError: the caller decides what nothing made means.
 */
export class NotMadeError extends Error {
  override readonly name = 'NotMadeError';
}

/**
 * A platform webhook whose signature / auth header does not verify (→ 401). Its message is the 401's
 * detail, read by whoever called the URL (anyone: the URL is the only address): it says what failed and
 * nothing of the target's configuration. `advice`: for a target that lacks what verifies its webhooks,
 * the fix (the PATCH with the target's ids and credential field names), for ops only (a warn line).
 */
export class WebhookAuthError extends Error {
  override readonly name = 'WebhookAuthError';
  constructor(
    message: string,
    readonly advice?: string,
  ) {
    super(message);
  }
}
