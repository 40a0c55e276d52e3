/**
 * asUnsent (review of 0cea36e): a refresh's error is shared by every caller that waited on the same
 * refresh, and each caller marks its own request unsent. The copy keeps the class (callers branch on
 * instanceof and kind), message, reason, delay and stack; the shared original stays as it was.
 */
import { ActionRequiredError, AuthExpiredError, PermanentError, RateLimitedError, RetryableError, asUnsent, type TargetError } from '../../src/targets/target.errors.js';

const cases: Array<[string, () => TargetError]> = [
  ['retryable', () => new RetryableError('try later', { reason: 'timeout', delayMs: 1234 })],
  ['rate_limited', () => new RateLimitedError('slow down', 5000, 'quota')],
  ['auth_expired', () => new AuthExpiredError('token expired', 'expired')],
  ['permanent', () => new PermanentError('refresh refused', 'refresh_refused')],
  ['action_required', () => new ActionRequiredError('re-authorise', 'reauthorize')],
];

test.each(cases)('%s: a copy of the same class and fields, marked unsent; the original is not changed', (kind, make) => {
  const original = make();
  const copy = asUnsent(original) as TargetError;
  expect(copy).not.toBe(original);
  expect(Object.getPrototypeOf(copy)).toBe(Object.getPrototypeOf(original));
  expect({ kind: copy.kind, message: copy.message, reason: copy.reason, name: copy.name, stack: copy.stack, delayMs: (copy as { delayMs?: number }).delayMs, unsent: copy.unsent }).toEqual({
    kind,
    message: original.message,
    reason: original.reason,
    name: original.name,
    stack: original.stack,
    delayMs: (original as { delayMs?: number }).delayMs,
    unsent: true,
  });
  expect(original.unsent).toBe(false);
  expect(asUnsent(copy)).toBe(copy); // already unsent: as it is
});

test('anything that is not a TargetError is returned as it is', () => {
  const e = new Error('redis gone');
  expect(asUnsent(e)).toBe(e);
  expect(asUnsent('x')).toBe('x');
});
