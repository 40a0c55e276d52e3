import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { SecretBox } from '../../src/lib/crypto.js';

/** A link code as it was made before macCode: createHmac's first 12 bytes, base64url. */
const viaHmac = (key: Buffer, value: string): string => createHmac('sha256', key).update(value).digest().subarray(0, 12).toString('base64url');

test('macCode is the first 12 bytes of HMAC-SHA256 under SECRETS_KEY, for any text (multi-byte, long, one box reused)', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key.toString('base64'));
  // Short and long texts alternate on one box: its message buffer grows and is reused.
  const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', minLength: 200, maxLength: 800 }));
  fc.assert(
    fc.property(text, (value) => {
      expect(box.macCode(value)).toBe(viaHmac(key, value));
    }),
    { numRuns: 200 },
  );
  const link = `link\u0000partner-1\u0000show-1\u0000yt1\u0000p1`;
  expect(box.macCode(link)).toBe(viaHmac(key, link));
  expect(box.macCode('')).toBe(viaHmac(key, ''));
});

test('macCode keys by SECRETS_KEY only (not SECRETS_KEY_PREVIOUS); boxes of other keys give other codes', () => {
  const key = randomBytes(32);
  const previous = randomBytes(32);
  const box = new SecretBox(key.toString('base64'), [previous.toString('base64')]);
  expect(box.macCode('link\u0000a')).toBe(viaHmac(key, 'link\u0000a'));
  expect(new SecretBox(previous.toString('base64')).macCode('link\u0000a')).not.toBe(box.macCode('link\u0000a'));
});
