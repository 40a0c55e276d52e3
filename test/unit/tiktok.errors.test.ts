/** TikTok Shop envelope codes → typed errors (pure table). */
import { AuthExpiredError, PermanentError, RateLimitedError, RetryableError } from '../../src/targets/target.errors.js';
import { DEFAULT_RATE_LIMIT_DELAY_MS, TOKEN_CODES, isTokenRejection, mapApiFailure, mapTokenFailure, type TiktokFailure } from '../../src/targets/tiktok/tiktok.errors.js';

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

  it('token rejections (101000, 105002, a 36009004 naming the access token…) are refreshed by the client; after that, expired → AuthExpired, invalid → re-authorise', () => {
    expect([...TOKEN_CODES].sort()).toEqual([101000, 105001, 105002, 36004001]);
    // Messages of the common-errors page (partner.tiktokshop.com/docv2/page/common-errors).
    expect(isTokenRejection(36009004, 'Invalid credentials. The `x-tts-access-token` header is invalid.')).toBe(true);
    expect(isTokenRejection(36009004, 'Invalid credentials. The `access_token` header is invalid.')).toBe(true);
    expect(isTokenRejection(101000, 'Invalid query or header. The `category_asset_cipher` query parameter or `x-tts-access-token` header is invalid.')).toBe(true);
    expect(isTokenRejection(36009004, 'Invalid credentials. Invalid `app_key` query parameter.')).toBe(false);
    expect(isTokenRejection(36009004, 'Invalid timestamp. The value of the `timestamp` query parameter must not be earlier than 5 minutes before the current time.')).toBe(false);

    expect(mapApiFailure(api(401, 105002), NOW, ctx).error).toBeInstanceOf(AuthExpiredError);
    for (const [code, message] of [
      [101000, 'Invalid query or header. The `category_asset_cipher` query parameter or `x-tts-access-token` header is invalid.'],
      [36009004, 'Invalid credentials. The `x-tts-access-token` header is invalid.'],
      [105001, 'Invalid access token'],
    ] as const) {
      const e = mapApiFailure(api(401, code, message), NOW, ctx).error;
      expect(e).toBeInstanceOf(PermanentError);
      expect(e.reason).toBe('token_invalid');
      expect(e.message).toContain('Re-authorise the app');
    }
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

  it('36009004 is read by its message: clock → retry later; app_key, signature, shop identifier, version → permanent with what to do; anything else is quoted', () => {
    const ts = (m: string) => mapApiFailure(api(200, 36009004, m), NOW, ctx).error;
    for (const m of [
      'Invalid timestamp. The value of the `timestamp` query parameter must not be earlier than 5 minutes before the current time.',
      'Invalid timestamp. The value of the `timestamp` query parameter must not exceed the current time by more than 30 seconds.',
    ]) {
      const clock = ts(m) as RetryableError;
      expect(clock).toBeInstanceOf(RetryableError);
      expect(clock.delayMs).toBe(30_000);
      expect(clock.message).toMatch(/clock of this host/);
    }
    const cases: [string, string, RegExp][] = [
      ['Invalid credentials. Invalid `app_key` query parameter.', 'invalid_app_key', /appKey.*PATCH \/v1\/partners\/ptn_1\/targets\/tgt_tt/],
      ['Missing credentials. The request does not include a required signature in the query.', 'missing_signature', /signing/],
      ['Unexpected identifier. The `shop_cipher` query parameter is not required for this request.', 'invalid_identifier', /shopCipher/],
      ['Invalid identifier. The `shop_id` query parameter is invalid.', 'invalid_identifier', /shopCipher/],
      ['Invalid API version. The `version` value is invalid or unsupported.', 'invalid_version', /API version/],
      ['invalid param error', '36009004', /generate a promotion link \(36009004: "invalid param error"\)/],
    ];
    for (const [m, reason, text] of cases) {
      const e = ts(m);
      expect(e).toBeInstanceOf(PermanentError);
      expect(e.reason).toBe(reason);
      expect(e.message).toMatch(text);
    }
    expect(ts('').reason).toBe('36009004'); // no message: nothing is guessed
  });

  it('36009007 (request timeout) is retried, not permanent', () => {
    const e = mapApiFailure(api(200, 36009007, 'Request timeout. The request to the endpoint timed out.'), NOW, ctx).error;
    expect(e).toBeInstanceOf(RetryableError);
    expect(e.reason).toBe('36009007');
  });

  it('105005 names the scope, 106013 names shopCipher, unknown codes are permanent', () => {
    expect(mapApiFailure(api(200, 105005), NOW, ctx).error.message).toContain('seller.affiliate_collaboration.write');
    expect(mapApiFailure(api(400, 106013), NOW, ctx).error.message).toContain('shopCipher');
    // The PATCH with the whole set: "set credentials.shopCipher" alone had the operator send that field only.
    const fields = { ...ctx, target: { ...target, fields: ['appKey', 'appSecret', 'refreshToken', 'creatorUsername'] } };
    expect(mapApiFailure(api(400, 106013), NOW, fields).error.message).toContain(
      'PATCH /v1/partners/ptn_1/targets/tgt_tt {"credentials": {"appKey": "…", "appSecret": "…", "refreshToken": "…", "creatorUsername": "…", "shopCipher": "<new>"}}',
    );
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

  it('only a refused refresh token is refresh_refused (the client drops the token record for it alone); a refused app secret, or an answer not told apart, is not', () => {
    const reason = (code: number, message?: string): string | undefined => mapTokenFailure(api(200, code, message), NOW, target).error.reason;
    expect(reason(36004005, 'can not find related auth record')).toBe('refresh_refused');
    expect(reason(36004005)).toBe('refresh_refused');
    expect(reason(36004099, 'refresh_token is expired')).toBe('refresh_refused');
    expect(reason(36004002, 'Invalid credentials. The `app_secret` does not match the `app_key`.')).toBe('app_credentials_refused');
    expect(reason(36004099, 'invalid app key')).toBe('app_credentials_refused');
    expect(reason(36004004, 'invalid auth code')).toBe('36004004');
    expect(reason(1)).toBe('1');
    const app = mapTokenFailure(api(200, 36004002, 'app_secret mismatch'), NOW, target).error;
    expect(app.message).toContain("The shop's authorisation is kept");
    expect(app.message).toContain('appSecret');
  });
});
