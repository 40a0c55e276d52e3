/**
 * sha256 (src/lib/crypto.ts): Node's one-shot digest where it has one, createHash elsewhere. The digests
 * it makes are stored or sent (a pin's episode tag at the end of its chat message, the op marker a
 * lookup matches, API key hashes), so they must stay what createHash made for every text: UTF-8 of the
 * text, lone surrogates included (both encode them as U+FFFD).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sha256, sha256Hex } from '../../src/lib/crypto.js';
import { pinTag } from '../../src/targets/pin-tag.js';

const reference = (s: string, encoding: 'hex' | 'base64url'): string => createHash('sha256').update(s).digest(encoding);

test('equals createHash for any text, in hex and base64url', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) })), (s) => {
      expect(sha256(s, 'hex')).toBe(reference(s, 'hex'));
      expect(sha256(s, 'base64url')).toBe(reference(s, 'base64url'));
      expect(sha256Hex(s)).toBe(reference(s, 'hex'));
    }),
    { numRuns: 500 },
  );
});

test('known vectors: the empty text, "abc", and the pin tag of a marker (posted messages carry it)', () => {
  expect(sha256('', 'hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  expect(sha256('abc', 'hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect(sha256('abc', 'base64url')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  expect(pinTag('abc')).toBe('ba7816bf');
});
