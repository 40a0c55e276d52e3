/** TikTok Shop envelope codes → typed errors (pure table). */
import { AuthExpiredError, PermanentError, RateLimitedError, RetryableError } from '../../src/targets/target.errors.js';
import { DEFAULT_RATE_LIMIT_DELAY_MS, TOKEN_CODES, mapApiFailure, mapTokenFailure, type TiktokFailure } from '../../src/targets/tiktok/tiktok.errors.js';

const NOW = Date.parse('2026-11-24T18:00:00Z');
const target = { id: 'tgt_tt', partnerId: 'ptn_1' };
const ctx = { scope: 'seller.affiliate_collaboration.write', what: 'generate a promotion link', target };
const api = (status: number, code: number | undefined, message = 'm', retryAfter?: string): TiktokFailure => ({ kind: 'api', status, code, message, retryAfter });

describe('TikTok Shop error mapping', () => {
  it('reads the code, not the HTTP status', () => {
    expect(mapApiFailure(api(200, 106001), NOW, ctx).error).toBeInstanceOf(PermanentError);
    expect(mapApiFailure(api(401, 106001), NOW, ctx).error.reason).toBe('106001');
    expect(mapApiFailure(api(200, 36009003), NOW, ctx).error).toBeInstanceOf(RetryableError);
    expect(mapApiFailure(api(200, 36009002), NOW, ctx).error).toBeInstanceOf(RateLimitedError);
  });

  it('token codes (105001, 105002, 36004001) are refreshed by the client and AuthExpired after that', () => {
    expect([...TOKEN_CODES].sort()).toEqual([105001, 105002, 36004001]);
    for (const code of TOKEN_CODES) expect(mapApiFailure(api(401, code), NOW, ctx).error).toBeInstanceOf(AuthExpiredError);
  });

  it('rate limits block the limiter: Retry-After when given, else the default', () => {
    const m = mapApiFailure(api(429, 36009002), NOW, ctx);
    expect(m.error).toBeInstanceOf(RateLimitedError);
    expect((m.error as RateLimitedError).delayMs).toBe(DEFAULT_RATE_LIMIT_DELAY_MS);
    expect(m.block).toEqual({ untilMs: NOW + DEFAULT_RATE_LIMIT_DELAY_MS, reason: 'tiktok rate limit' });
    const withHeader = mapApiFailure(api(429, undefined, undefined, '7'), NOW, ctx);
    expect((withHeader.error as RateLimitedError).delayMs).toBe(7000);
    expect(withHeader.error.reason).toBe('http_429');
  });

  it('36009004 is a retryable clock problem, 105005 names the scope, 106013 names shopCipher, unknown codes are permanent', () => {
    const clock = mapApiFailure(api(200, 36009004), NOW, ctx).error as RetryableError;
    expect(clock).toBeInstanceOf(RetryableError);
    expect(clock.delayMs).toBe(30_000);
    expect(mapApiFailure(api(200, 105005), NOW, ctx).error.message).toContain('seller.affiliate_collaboration.write');
    expect(mapApiFailure(api(400, 106013), NOW, ctx).error.message).toContain('shopCipher');
    const other = mapApiFailure(api(400, 12019001, 'product not found'), NOW, ctx).error;
    expect(other).toBeInstanceOf(PermanentError);
    expect(other.message).toBe('TikTok Shop API error 12019001 while trying to generate a promotion link: product not found');
    expect(mapApiFailure(api(502, undefined), NOW, ctx).error).toBeInstanceOf(RetryableError);
    expect(mapApiFailure({ kind: 'network', code: 'ECONNABORTED', message: 'timeout' }, NOW, ctx).error.reason).toBe('timeout');
  });

  it('a refused refresh is permanent whatever the code, except throttling and outages', () => {
    for (const code of [36004004, 105003, 1]) {
      const e = mapTokenFailure(api(200, code), NOW, target).error;
      expect(e).toBeInstanceOf(PermanentError);
      expect(e.message).toContain('PATCH /v1/partners/ptn_1/targets/tgt_tt');
    }
    expect(mapTokenFailure(api(429, 36009002), NOW, target).error).toBeInstanceOf(RateLimitedError);
    expect(mapTokenFailure(api(500, 36009003), NOW, target).error).toBeInstanceOf(RetryableError);
    expect(mapTokenFailure({ kind: 'network', code: 'ECONNREFUSED', message: 'x' }, NOW, target).error).toBeInstanceOf(RetryableError);
  });
});
