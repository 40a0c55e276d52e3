import {
  ActionRequiredError,
  AuthExpiredError,
  PermanentError,
  RateLimitedError,
  RetryableError,
  type TargetError,
} from '../../src/targets/target.errors.js';
import { nextMidnightPacific } from '../../src/targets/quota-reset.js';
import {
  DEFAULT_RATE_LIMIT_DELAY_MS,
  STREAM_INACTIVE_DELAY_MS,
  mapApiFailure,
  mapTokenFailure,
  type YoutubeFailure,
} from '../../src/targets/youtube/youtube.errors.js';
import { parseRetryAfter } from '../../src/targets/target.failure.js';

const NOW = Date.parse('2026-11-24T18:00:00Z');
const target = { id: 'tgt_yt', partnerId: 'ptn_1' };

function google(code: number, reason: string, domain = 'youtube.liveBroadcast', message = `${reason} happened`): YoutubeFailure {
  return { kind: 'http', status: code, body: { error: { code, message, errors: [{ domain, reason, message }] } }, retryAfter: undefined };
}

function http(status: number, body: unknown = '', retryAfter?: string): YoutubeFailure {
  return { kind: 'http', status, body, retryAfter };
}

type ErrorClass = new (...args: never[]) => TargetError;

describe('mapApiFailure', () => {
  const quotaDelay = nextMidnightPacific(NOW) - NOW;

  it.each<[string, YoutubeFailure, ErrorClass, number | undefined, string | undefined]>([
    ['quotaExceeded → until midnight Pacific', google(403, 'quotaExceeded', 'youtube.quota'), RateLimitedError, quotaDelay, 'quotaExceeded'],
    ['dailyLimitExceeded → until midnight Pacific', google(403, 'dailyLimitExceeded', 'usageLimits'), RateLimitedError, quotaDelay, 'dailyLimitExceeded'],
    ['rateLimitExceeded → default pause', google(403, 'rateLimitExceeded', 'usageLimits'), RateLimitedError, DEFAULT_RATE_LIMIT_DELAY_MS, 'rateLimitExceeded'],
    ['userRequestsExceedRateLimit → default pause', google(403, 'userRequestsExceedRateLimit', 'youtube.liveBroadcast'), RateLimitedError, DEFAULT_RATE_LIMIT_DELAY_MS, 'userRequestsExceedRateLimit'],
    ['bare 429 → default pause', http(429), RateLimitedError, DEFAULT_RATE_LIMIT_DELAY_MS, 'http_429'],
    ['429 Retry-After seconds', http(429, '', '12'), RateLimitedError, 12_000, 'http_429'],
    ['429 Retry-After HTTP date', http(429, '', new Date(NOW + 90_000).toUTCString()), RateLimitedError, 90_000, 'http_429'],
    ['429 Retry-After 0 → at least 1 s', http(429, '', '0'), RateLimitedError, 1_000, 'http_429'],
    ['401 authError', google(401, 'authError', 'global'), AuthExpiredError, undefined, 'authError'],
    ['errorStreamInactive → retry in 5 s', google(403, 'errorStreamInactive'), RetryableError, STREAM_INACTIVE_DELAY_MS, 'errorStreamInactive'],
    ['500 backendError', google(500, 'backendError', 'global'), RetryableError, undefined, 'backendError'],
    ['503 with Retry-After', http(503, '<html>down</html>', '7'), RetryableError, 7_000, 'http_503'],
    ['502 with a non-JSON body', http(502, '<html>bad gateway</html>'), RetryableError, undefined, 'http_502'],
    ['liveStreamingNotEnabled', google(403, 'liveStreamingNotEnabled'), PermanentError, undefined, 'liveStreamingNotEnabled'],
    ['liveBroadcastBindingNotAllowed', google(403, 'liveBroadcastBindingNotAllowed'), PermanentError, undefined, 'liveBroadcastBindingNotAllowed'],
    ['404 liveBroadcastNotFound', google(404, 'liveBroadcastNotFound'), PermanentError, undefined, 'liveBroadcastNotFound'],
    ['redundantTransition (success for the transition helper)', google(403, 'redundantTransition'), PermanentError, undefined, 'redundantTransition'],
    ['invalidTransition (resolved by startShow/endShow)', google(403, 'invalidTransition'), PermanentError, undefined, 'invalidTransition'],
    ['400 invalidValue', google(400, 'invalidValue', 'youtube.parameter'), PermanentError, undefined, 'invalidValue'],
    ['404 without a body', http(404), PermanentError, undefined, 'http_404'],
    ['timeout', { kind: 'network', code: 'ECONNABORTED', message: 'timeout of 5000ms exceeded' }, RetryableError, undefined, 'timeout'],
    ['connection refused', { kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, RetryableError, undefined, 'ECONNREFUSED'],
    ['connection reset', { kind: 'network', code: 'ECONNRESET', message: 'socket hang up' }, RetryableError, undefined, 'ECONNRESET'],
  ])('%s', (_name, failure, cls, delayMs, reason) => {
    const { error } = mapApiFailure(failure, NOW);
    expect(error).toBeInstanceOf(cls);
    expect(error.reason).toBe(reason);
    if (error instanceof RateLimitedError || error instanceof RetryableError) expect(error.delayMs).toBe(delayMs);
    expect(error).not.toBeInstanceOf(ActionRequiredError);
  });

  it('asks the limiter to block until midnight Pacific on quotaExceeded', () => {
    const { error, block } = mapApiFailure(google(403, 'quotaExceeded', 'youtube.quota'), NOW);
    expect(block).toEqual({ untilMs: Date.parse('2026-11-25T08:00:00Z'), reason: 'youtube quota' });
    expect((error as RateLimitedError).delayMs).toBe(14 * 3600_000);
  });

  it('a 5xx is a failure that uses the retry budget even with Retry-After; a not-yet state is a wait that does not', () => {
    const down = mapApiFailure(http(503, '<html>down</html>', '7'), NOW).error as RetryableError;
    expect(down.waiting).toBe(false);
    expect((mapApiFailure(http(500, ''), NOW).error as RetryableError).waiting).toBe(false);
    expect((mapApiFailure(google(403, 'errorStreamInactive'), NOW).error as RetryableError).waiting).toBe(true);
  });

  it('asks the limiter to block for the Retry-After of a 429', () => {
    expect(mapApiFailure(http(429, '', '12'), NOW).block).toEqual({ untilMs: NOW + 12_000, reason: 'youtube rate limit' });
  });

  it('does not block the whole account for a 429 without Retry-After', () => {
    expect(mapApiFailure(http(429), NOW).block).toBeUndefined();
    expect(mapApiFailure(google(403, 'rateLimitExceeded', 'usageLimits'), NOW).block).toBeUndefined();
  });

  it('does not block the limiter for ordinary errors', () => {
    expect(mapApiFailure(google(500, 'backendError', 'global'), NOW).block).toBeUndefined();
    expect(mapApiFailure(google(403, 'errorStreamInactive'), NOW).block).toBeUndefined();
  });

  it('explains permanent reasons in words an operator can act on', () => {
    expect(mapApiFailure(google(403, 'liveStreamingNotEnabled'), NOW).error.message).toMatch(/live streaming is not enabled.*YouTube Studio/);
    expect(mapApiFailure(google(403, 'livePermissionBlocked'), NOW).error.message).toMatch(/^YouTube does not let this channel stream live at the moment .*strike.*YouTube Studio/);
    expect(mapApiFailure(google(404, 'liveBroadcastNotFound'), NOW).error.message).toMatch(/deleted on YouTube/);
    expect(mapApiFailure(google(400, 'invalidValue', 'youtube.parameter', 'Invalid value for id'), NOW).error.message).toBe(
      'YouTube API 400 invalidValue: Invalid value for id',
    );
  });

  it('reads the UNAUTHENTICATED status when errors[] is absent', () => {
    const failure = http(401, { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } });
    const { error } = mapApiFailure(failure, NOW);
    expect(error).toBeInstanceOf(AuthExpiredError);
    expect(error.reason).toBe('UNAUTHENTICATED');
  });
});

describe('mapTokenFailure', () => {
  it('invalid_grant → PermanentError telling the operator to re-authorise and patch the target', () => {
    const { error } = mapTokenFailure(http(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }), NOW, target);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.reason).toBe('invalid_grant');
    expect(error.message).toMatch(/Re-authorise the YouTube channel/);
    expect(error.message).toMatch(/7 days/);
    expect(error.message).toContain('PATCH /v1/partners/ptn_1/targets/tgt_yt');
  });

  it.each<[string, YoutubeFailure, ErrorClass, string | undefined]>([
    ['invalid_client', http(401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' }), PermanentError, 'invalid_client'],
    ['unsupported grant', http(400, { error: 'unsupported_grant_type' }), PermanentError, 'unsupported_grant_type'],
    ['500', http(500, { error: 'internal_failure' }), RetryableError, 'internal_failure'],
    ['503 without a body', http(503), RetryableError, 'http_503'],
    ['429', http(429, '', '5'), RateLimitedError, 'http_429'],
    ['timeout', { kind: 'network', code: 'ETIMEDOUT', message: 'timeout' }, RetryableError, 'timeout'],
  ])('%s', (_name, failure, cls, reason) => {
    const { error } = mapTokenFailure(failure, NOW, target);
    expect(error).toBeInstanceOf(cls);
    expect(error.reason).toBe(reason);
  });
});

describe('parseRetryAfter', () => {
  it.each<[string | undefined, number | undefined]>([
    [undefined, undefined],
    ['', undefined],
    ['30', 30_000],
    [' 2 ', 2_000],
    [new Date(NOW + 5_000).toUTCString(), 5_000],
    [new Date(NOW - 5_000).toUTCString(), 0],
    ['soon', undefined],
    // Not an HTTP-date: Date.parse alone read them as 2001 dates, a wait of 0 (asked again at once).
    ['1.5', undefined],
    ['-3', undefined],
    ['2026-11-24T18:00:05', undefined],
  ])('%p → %p', (header, expected) => {
    expect(parseRetryAfter(header, NOW)).toBe(expected);
  });
});
