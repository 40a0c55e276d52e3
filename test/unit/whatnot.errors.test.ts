/** Whatnot problem+json → typed errors, and the proactive RateLimit-* reading (pure). */
import { PermanentError, RateLimitedError, RetryableError } from '../../src/targets/target.errors.js';
import { adviceTarget } from '../../src/targets/credentials-advice.js';
import { CREDENTIAL_FIELDS, CREDENTIAL_KINDS } from '../../src/targets/whatnot/whatnot.client.js';
import { mapFailure, mapTokenFailure, proactiveBlock, type WhatnotFailure } from '../../src/targets/whatnot/whatnot.errors.js';

const NOW = Date.parse('2026-11-24T18:00:00Z');
const ctx = { what: 'add product P to show S', target: { id: 'tgt_wn', partnerId: 'ptn_1' } };
const http = (status: number, body: unknown = {}, retryAfter?: string): WhatnotFailure => ({ kind: 'http', status, body, retryAfter });

describe('Whatnot error mapping', () => {
  it('429 honours Retry-After and blocks the limiter', () => {
    const m = mapFailure(http(429, { type: 'rate-limited', title: 'Too many requests', status: 429 }, '3'), NOW, ctx);
    expect(m.error).toBeInstanceOf(RateLimitedError);
    expect((m.error as RateLimitedError).delayMs).toBe(3000);
    expect(m.error.reason).toBe('rate-limited');
    expect(m.block).toEqual({ untilMs: NOW + 3000, reason: 'whatnot rate limit' });
    expect((mapFailure(http(429), NOW, ctx).error as RateLimitedError).delayMs).toBe(1000);
  });

  it('a 5xx with Retry-After comes back when Whatnot said, not on the backoff schedule', () => {
    expect(mapFailure(http(503, { type: 'unavailable' }, '7'), NOW, ctx).error).toMatchObject({ reason: 'unavailable', delayMs: 7000 });
    expect((mapFailure(http(503, { type: 'unavailable' }), NOW, ctx).error as RetryableError).delayMs).toBeUndefined();
  });

  it('problem types become typed errors with the operator action', () => {
    expect(mapFailure(http(500, { type: 'internal-error' }), NOW, ctx).error).toBeInstanceOf(RetryableError);
    const auth = mapFailure(http(401, { type: 'unauthorized' }), NOW, ctx).error;
    expect(auth).toBeInstanceOf(PermanentError);
    expect(auth.message).toContain('PATCH /v1/partners/ptn_1/targets/tgt_wn');
    const scope = mapFailure(http(403, { type: 'forbidden', required_scopes: ['write:merchandising'] }), NOW, ctx).error;
    expect(scope.message).toContain('write:merchandising');
    expect(scope.message).toContain('add product P to show S');
    const invalid = mapFailure(http(422, { type: 'validation-error', detail: 'show_ids must be UUIDs', param: 'shows.show_ids' }), NOW, ctx).error;
    expect(invalid.message).toBe('Whatnot refused to add product P to show S (HTTP 422, shows.show_ids): show_ids must be UUIDs');
    expect(invalid.reason).toBe('validation-error');
    expect(mapFailure({ kind: 'network', code: 'ETIMEDOUT', message: 't' }, NOW, ctx).error.reason).toBe('timeout');
  });

  it('RateLimit-Remaining: 0 blocks until RateLimit-Reset (at least one second); anything else does not', () => {
    expect(proactiveBlock({ 'ratelimit-remaining': '0', 'ratelimit-reset': '1' }, NOW)).toEqual({ untilMs: NOW + 1000, reason: 'whatnot rate limit window used up' });
    expect(proactiveBlock({ 'ratelimit-remaining': '0', 'ratelimit-reset': '0' }, NOW)?.untilMs).toBe(NOW + 1000);
    expect(proactiveBlock({ 'ratelimit-remaining': '0, 5;w=60', 'ratelimit-reset': '4' }, NOW)?.untilMs).toBe(NOW + 4000);
    expect(proactiveBlock({ 'ratelimit-remaining': '0' }, NOW)?.untilMs).toBe(NOW + 1000);
    expect(proactiveBlock({ 'ratelimit-remaining': '3', 'ratelimit-reset': '1' }, NOW)).toBeUndefined();
    expect(proactiveBlock({}, NOW)).toBeUndefined();
  });

  // Found reviewing the advice after a refused PATCH: it named the stored credentials' fields too, also
  // those of the kind the PATCH switched away from (an OAuth app → a personal token, or back): following
  // it undid the switch.
  it("the advice after a refused PATCH that switches the kind of credentials names no stored field of the kind it leaves", () => {
    const app = ['clientId', 'clientSecret', 'refreshToken', 'webhookSecret'];
    const toToken = adviceTarget({ id: 'tgt_wn', partnerId: 'ptn_1', credentials: { accessToken: 'a', webhookSecret: 'w' }, heldFields: app }, CREDENTIAL_FIELDS, CREDENTIAL_KINDS);
    const auth = mapFailure(http(401, { type: 'unauthorized' }), NOW, { what: 'list shows', target: toToken }).error!.message;
    expect(auth).toContain('{"credentials": {"accessToken": "<new>", "webhookSecret": "…"}}');
    expect(auth).not.toMatch(/clientId|clientSecret|refreshToken/);

    const toApp = adviceTarget({ id: 'tgt_wn', partnerId: 'ptn_1', credentials: { clientId: 'c', clientSecret: 's', refreshToken: 'r' }, heldFields: ['accessToken', 'webhookSecret'] }, CREDENTIAL_FIELDS, CREDENTIAL_KINDS);
    const client = mapTokenFailure(http(401, { error: 'invalid_client' }), NOW, toApp).error!.message;
    expect(client).toContain('{"credentials": {"clientId": "<new>", "clientSecret": "<new>", "refreshToken": "…", "webhookSecret": "…"}}');
    expect(client).not.toContain('accessToken');

    // A PATCH of the same kind (or of neither: a webhookSecret alone) still gets every stored field.
    const same = adviceTarget({ id: 'tgt_wn', partnerId: 'ptn_1', credentials: { webhookSecret: 'w2' }, heldFields: app }, CREDENTIAL_FIELDS, CREDENTIAL_KINDS);
    expect(same.fields).toEqual(['webhookSecret', 'clientId', 'clientSecret', 'refreshToken']);
  });
});
