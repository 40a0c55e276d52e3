/**
 * Standard Webhooks signing and verification (src/sources/signature.ts), checked against the
 * `standardwebhooks` reference library in both directions, plus tolerance, multi-secret and
 * multi-signature rules.
 */
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { newWebhookSecret, secretKey, sign, signatureHeader, SignatureError, verifyWebhook, type VerifyFailure } from '../../src/sources/signature.js';

const NOW = Date.parse('2026-11-24T18:00:00Z');
const TS = NOW / 1000;

function failure(fn: () => void): VerifyFailure | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (err instanceof SignatureError) return err.reason;
    throw err;
  }
}

describe('secrets', () => {
  test('newWebhookSecret is whsec_ + base64 of 24 random bytes', () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(a).not.toBe(b);
    expect(secretKey(a)).toHaveLength(24);
  });

  test('secretKey accepts the secret with or without its whsec_ prefix', () => {
    const raw = randomBytes(32);
    expect(secretKey('whsec_' + raw.toString('base64')).equals(raw)).toBe(true);
    expect(secretKey(raw.toString('base64')).equals(raw)).toBe(true);
  });
});

describe('sign', () => {
  test('is base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the decoded secret', () => {
    const secret = newWebhookSecret();
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update('msg_1.1700000000.{"a":1}').digest('base64');
    expect(sign(secret, 'msg_1', 1700000000, '{"a":1}')).toBe(expected);
    expect(sign(secret, 'msg_1', '1700000000', Buffer.from('{"a":1}'))).toBe(expected);
    expect(signatureHeader(secret, 'msg_1', 1700000000, '{"a":1}')).toBe(`v1,${expected}`);
    // An already decoded key (a Buffer) is used as it is.
    expect(sign(secretKey(secret), 'msg_1', 1700000000, '{"a":1}')).toBe(expected);
    // Every input is covered.
    expect(sign(secret, 'msg_2', 1700000000, '{"a":1}')).not.toBe(expected);
    expect(sign(secret, 'msg_1', 1700000001, '{"a":1}')).not.toBe(expected);
    expect(sign(secret, 'msg_1', 1700000000, '{"a":2}')).not.toBe(expected);
    expect(sign(newWebhookSecret(), 'msg_1', 1700000000, '{"a":1}')).not.toBe(expected);
  });

  test('matches the standardwebhooks library byte for byte (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 64 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), fc.integer({ min: 1, max: 4_000_000_000 }), fc.string({ unit: 'binary', maxLength: 200 }), (key, id, ts, body) => {
        const secret = 'whsec_' + Buffer.from(key).toString('base64');
        expect(signatureHeader(secret, id, ts, body)).toBe(new Webhook(secret).sign(id, new Date(ts * 1000), body));
      }),
      { numRuns: 100 },
    );
  });
});

describe('verifyWebhook', () => {
  const secret = newWebhookSecret();
  const body = Buffer.from(JSON.stringify({ type: 'show.live', occurredAt: '2026-11-24T18:00:00Z', data: {} }));
  const headers = (over: Partial<{ id: string; timestamp: string; signature: string }> = {}) => ({
    id: 'msg_x',
    timestamp: String(TS),
    signature: signatureHeader(secret, 'msg_x', TS, body),
    ...over,
  });

  test('accepts a valid signature', () => {
    expect(failure(() => verifyWebhook(headers(), body, [secret], 300, NOW))).toBe('no error');
  });

  test('accepts what the standardwebhooks library signs, and the library accepts what we sign', () => {
    const wh = new Webhook(secret);
    const at = new Date(NOW);
    const theirs = wh.sign('msg_lib', at, body.toString());
    expect(failure(() => verifyWebhook({ id: 'msg_lib', timestamp: String(TS), signature: theirs }, body, [secret], 300, NOW))).toBe('no error');
    // The library checks the timestamp against the real clock, so sign ours with the current time.
    const now = Math.floor(Date.now() / 1000);
    const ours = signatureHeader(secret, 'msg_ours', now, body);
    expect(() => wh.verify(body.toString(), { 'webhook-id': 'msg_ours', 'webhook-timestamp': String(now), 'webhook-signature': ours })).not.toThrow();
  });

  test('rejects a wrong secret, a changed body, id or timestamp', () => {
    expect(failure(() => verifyWebhook(headers(), body, [newWebhookSecret()], 300, NOW))).toBe('bad_signature');
    expect(failure(() => verifyWebhook(headers(), Buffer.concat([body, Buffer.from(' ')]), [secret], 300, NOW))).toBe('bad_signature');
    expect(failure(() => verifyWebhook(headers({ id: 'msg_y' }), body, [secret], 300, NOW))).toBe('bad_signature');
    expect(failure(() => verifyWebhook(headers({ timestamp: String(TS + 1) }), body, [secret], 300, NOW))).toBe('bad_signature');
    expect(failure(() => verifyWebhook(headers(), body, [], 300, NOW))).toBe('bad_signature');
  });

  test('timestamp tolerance is ±toleranceSec inclusive', () => {
    const at = (delta: number) => {
      const ts = TS + delta;
      return failure(() => verifyWebhook({ id: 'm', timestamp: String(ts), signature: signatureHeader(secret, 'm', ts, body) }, body, [secret], 300, NOW));
    };
    expect(at(-300)).toBe('no error');
    expect(at(300)).toBe('no error');
    expect(at(-299)).toBe('no error');
    expect(at(299)).toBe('no error');
    expect(at(-301)).toBe('stale_timestamp');
    expect(at(301)).toBe('stale_timestamp');
    expect(at(-86_400)).toBe('stale_timestamp');
  });

  test('missing headers and non-numeric timestamps', () => {
    expect(failure(() => verifyWebhook(headers({ id: '' }), body, [secret], 300, NOW))).toBe('missing_headers');
    expect(failure(() => verifyWebhook({ ...headers(), signature: undefined }, body, [secret], 300, NOW))).toBe('missing_headers');
    expect(failure(() => verifyWebhook({ ...headers(), timestamp: undefined }, body, [secret], 300, NOW))).toBe('missing_headers');
    for (const ts of ['1.7e9', '-1', '2026-11-24T18:00:00Z', ' 1795543200', '0x6b0e0e00']) {
      expect(failure(() => verifyWebhook(headers({ timestamp: ts }), body, [secret], 300, NOW))).toBe('bad_timestamp');
    }
  });

  test('each refusal says what is wrong (the message reaches the sender: problem detail, WebhookAuthError)', () => {
    const message = (fn: () => void): string => {
      try {
        fn();
      } catch (err) {
        if (err instanceof SignatureError) return err.message;
        throw err;
      }
      return 'no error';
    };
    expect(message(() => verifyWebhook(headers({ id: '' }), body, [secret], 300, NOW))).toBe('webhook-id, webhook-timestamp and webhook-signature headers are required');
    expect(message(() => verifyWebhook(headers({ timestamp: 'soon' }), body, [secret], 300, NOW))).toBe('webhook-timestamp must be unix seconds');
    expect(message(() => verifyWebhook(headers({ timestamp: String(TS - 301) }), body, [secret], 300, NOW))).toBe('webhook-timestamp is more than 300 s from now');
    expect(message(() => verifyWebhook(headers(), body, [newWebhookSecret()], 300, NOW))).toBe('no valid signature for this partner');
  });

  test('any secret of the list may match (rotation grace)', () => {
    const old = newWebhookSecret();
    const other = newWebhookSecret();
    const sig = signatureHeader(old, 'msg_x', TS, body);
    expect(failure(() => verifyWebhook(headers({ signature: sig }), body, [secret, old], 300, NOW))).toBe('no error');
    expect(failure(() => verifyWebhook(headers({ signature: sig }), body, [old, secret], 300, NOW))).toBe('no error');
    expect(failure(() => verifyWebhook(headers({ signature: sig }), body, [secret, other], 300, NOW))).toBe('bad_signature');
  });

  test('space-separated signatures: one good v1 is enough; other versions and junk are ignored', () => {
    const good = sign(secret, 'msg_x', TS, body);
    const bad = Buffer.alloc(32).toString('base64');
    const v = (signature: string) => failure(() => verifyWebhook(headers({ signature }), body, [secret], 300, NOW));
    expect(v(`v1,${bad} v1,${good}`)).toBe('no error');
    expect(v(`v1,${good} v1,${bad}`)).toBe('no error');
    expect(v(`v1,${bad} v1,${bad}`)).toBe('bad_signature');
    expect(v(`v2,${good}`)).toBe('bad_signature');
    expect(v(`v1a,${good} v1,${good}`)).toBe('no error');
    expect(v(`v1a,${good} v1,${good.slice(0, -4)}`)).toBe('bad_signature');
    expect(v(`garbage v1, v1,${good}`)).toBe('no error');
    expect(v(`v1,`)).toBe('bad_signature');
    // A truncated signature never matches (no prefix comparison).
    expect(v(`v1,${Buffer.from(good, 'base64').subarray(0, 16).toString('base64')}`)).toBe('bad_signature');
  });

  test('random single-byte changes to the body are always rejected (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: body.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const changed = Buffer.from(body);
        changed[i] = changed[i]! ^ x;
        expect(failure(() => verifyWebhook(headers(), changed, [secret], 300, NOW))).toBe('bad_signature');
      }),
      { numRuns: 100 },
    );
  });
});
