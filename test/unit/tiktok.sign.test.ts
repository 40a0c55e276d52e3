/**
 * TikTok Shop request/webhook signatures against a worked example computed by hand. The expected
 * hex values were produced outside this code base (`printf '%s' "$BASE" | openssl dgst -sha256
 * -hmac "$APP_SECRET"`) and are rebuilt here step by step with node:crypto, without the adapter.
 * Inputs are the example of TikTok's "Sign your API request" guide (app_secret e59af819cc,
 * /event/202309/webhooks, PACKAGE_UPDATE body).
 */
import { createHmac } from 'node:crypto';
import { signBaseString, signRequest, verifyWebhookSignature, webhookSignature } from '../../src/targets/tiktok/tiktok.sign.js';
import { decimalToMinor, minorToDecimal } from '../../src/targets/decimal-amount.js';

const APP_KEY = '68xu9ks5p4i8';
const APP_SECRET = 'e59af819cc';
const PATH = '/event/202309/webhooks';
const BODY = '{"address":"https://partner.tiktokshop.com","event_type":"PACKAGE_UPDATE"}';
const QUERY = {
  // deliberately not in alphabetical order, and with the two parameters that are never signed
  timestamp: '1696909648',
  sign: 'whatever-was-sent',
  shop_cipher: 'ROW_xkMbgAAAeVAQra0eZWebFQq5aIK',
  access_token: 'TTP_not_part_of_the_sign',
  app_key: APP_KEY,
};
/** openssl dgst -sha256 -hmac e59af819cc over the base string below. */
const EXPECTED_SIGN = 'cd0d6268252f4ba293bf7ea4c0a2873bf9beec600d22530638564ab301435f7a';

describe('TikTok Shop request signature (worked example)', () => {
  it('builds the documented string step by step and HMACs it with the app secret', () => {
    // 1. every query parameter except sign and access_token, sorted by key, as key+value
    const params = 'app_key' + APP_KEY + 'shop_cipher' + QUERY.shop_cipher + 'timestamp' + QUERY.timestamp;
    // 2. the API path in front
    const withPath = PATH + params;
    // 3. the JSON body (exact text) after it
    const withBody = withPath + BODY;
    // 4. wrapped in the app secret
    const base = APP_SECRET + withBody + APP_SECRET;
    // 5. hex HMAC-SHA256 keyed by the app secret
    const byHand = createHmac('sha256', APP_SECRET).update(base, 'utf8').digest('hex');

    expect(byHand).toBe(EXPECTED_SIGN);
    expect(signBaseString({ appSecret: APP_SECRET, path: PATH, query: QUERY, body: BODY })).toBe(base);
    expect(signRequest({ appSecret: APP_SECRET, path: PATH, query: QUERY, body: BODY })).toBe(EXPECTED_SIGN);
  });

  it('is sensitive to every signed part and ignores sign/access_token', () => {
    const sign = (patch: Partial<{ path: string; body: string | undefined; query: Record<string, string>; appSecret: string }>): string =>
      signRequest({ appSecret: APP_SECRET, path: PATH, query: QUERY, body: BODY, ...patch });
    expect(sign({ query: { ...QUERY, sign: 'other', access_token: 'other' } })).toBe(EXPECTED_SIGN);
    expect(sign({ query: { ...QUERY, timestamp: '1696909649' } })).not.toBe(EXPECTED_SIGN);
    expect(sign({ path: '/event/202309/webhooks/' })).not.toBe(EXPECTED_SIGN);
    expect(sign({ body: `${BODY} ` })).not.toBe(EXPECTED_SIGN);
    expect(sign({ appSecret: 'e59af819cd' })).not.toBe(EXPECTED_SIGN);
    // multipart: the body is left out of the base string
    expect(signBaseString({ appSecret: APP_SECRET, path: PATH, query: QUERY, body: undefined })).toBe(
      `${APP_SECRET}${PATH}app_key${APP_KEY}shop_cipher${QUERY.shop_cipher}timestamp${QUERY.timestamp}${APP_SECRET}`,
    );
  });
});

describe('TikTok Shop webhook signature', () => {
  const raw = '{"type":1,"data":{"order_id":"576461413038785752"}}';
  /** openssl dgst -sha256 -hmac e59af819cc over app_key + body. */
  const expected = 'ba2c67bc5df1c3d46ccfff708694c851ec12b0828f3d1caff8428c94d18125f1';

  it('is hex HMAC-SHA256(app_secret, app_key + raw body)', () => {
    expect(createHmac('sha256', APP_SECRET).update(APP_KEY + raw).digest('hex')).toBe(expected);
    expect(webhookSignature(APP_KEY, APP_SECRET, raw)).toBe(expected);
    expect(verifyWebhookSignature(expected, APP_KEY, APP_SECRET, Buffer.from(raw))).toBe(true);
    expect(verifyWebhookSignature(expected.toUpperCase(), APP_KEY, APP_SECRET, Buffer.from(raw))).toBe(true);
  });

  it('refuses a wrong, missing or malformed signature and a changed body', () => {
    expect(verifyWebhookSignature(undefined, APP_KEY, APP_SECRET, Buffer.from(raw))).toBe(false);
    expect(verifyWebhookSignature('abc', APP_KEY, APP_SECRET, Buffer.from(raw))).toBe(false);
    expect(verifyWebhookSignature(expected, APP_KEY, 'other-secret', Buffer.from(raw))).toBe(false);
    expect(verifyWebhookSignature(expected, 'other-key', APP_SECRET, Buffer.from(raw))).toBe(false);
    expect(verifyWebhookSignature(expected, APP_KEY, APP_SECRET, Buffer.from(`${raw} `))).toBe(false);
  });
});

describe('decimal amounts', () => {
  it('converts decimal strings to minor units without floats', () => {
    expect(decimalToMinor('12.34', 'USD')).toBe(1234);
    expect(decimalToMinor('0.1', 'USD')).toBe(10);
    expect(decimalToMinor('19', 'EUR')).toBe(1900);
    expect(decimalToMinor('1000', 'JPY')).toBe(1000);
    // Exact or nothing: digits the minor unit cannot hold are refused (they were rounded: 123, 124).
    expect(decimalToMinor('1.2345', 'USD')).toBeUndefined();
    expect(decimalToMinor('1.235', 'USD')).toBeUndefined();
    expect(decimalToMinor('1.2300', 'USD')).toBe(123);
    expect(decimalToMinor('1.001', 'KWD')).toBe(1001);
    expect(decimalToMinor('-2.50', 'USD')).toBe(-250);
    expect(decimalToMinor('1e3', 'USD')).toBeUndefined();
    expect(decimalToMinor('', 'USD')).toBeUndefined();
    expect(minorToDecimal({ amount: 1234, currency: 'USD' })).toBe('12.34');
    expect(minorToDecimal({ amount: 5, currency: 'USD' })).toBe('0.05');
    expect(minorToDecimal({ amount: 1000, currency: 'JPY' })).toBe('1000');
  });
});
