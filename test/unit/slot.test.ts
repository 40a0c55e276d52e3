/** keySlot: Redis Cluster's hash slot rule (CRC16-XMODEM mod 16384, first non-empty {hash tag}). */
import { keySlot } from '../../src/store/slot.js';

test('known slots (redis.io cluster spec, CLUSTER KEYSLOT)', () => {
  expect(keySlot('123456789')).toBe(0x31c3 % 16384); // the spec's CRC16 check value
  expect(keySlot('foo')).toBe(12182);
  expect(keySlot('somekey')).toBe(11058);
  expect(keySlot('hello')).toBe(866);
});

test('hash tags: the first non-empty {...} decides; an empty {} or an unclosed { is no tag', () => {
  expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
  expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
  expect(keySlot('x{a}{b}')).toBe(keySlot('a'));
  expect(keySlot('a{}b')).toBe(13694); // "{}" is empty: the whole key is hashed
  expect(keySlot('foo{bar')).toBe(15278); // unclosed: the whole key
});

test('non-ASCII keys hash their UTF-8 bytes', () => {
  expect(keySlot('é{ü}')).toBe(9552);
});
