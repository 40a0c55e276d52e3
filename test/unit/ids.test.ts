import fc from 'fast-check';
import { encode80, sortableId } from '../../src/lib/ids.js';

test('sortable ids: fixed shape, time-ordered, unique', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => sortableId('clk_', 1_795_000_000_000 + i));
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(id).toMatch(/^clk_[0-9A-HJKMNP-TV-Z]{26}$/);
  expect([...ids].sort()).toEqual(ids);
});

test('the time prefix orders ids by millisecond', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 47 }), fc.integer({ min: 1, max: 10_000 }), (t, d) => sortableId('', t).slice(0, 10) < sortableId('', t + d).slice(0, 10)),
  );
});

test('the random part uses the whole alphabet (no stuck bits)', () => {
  const chars = new Set(Array.from({ length: 2000 }, () => sortableId('', 0).slice(10)).join(''));
  expect(chars.size).toBe(32);
});

test('the random part is the 80 bits in base32, most significant first (same as two 40-bit numbers)', () => {
  const reference = (b: Buffer): string => {
    let out = '';
    for (const at of [0, 5]) {
      let v = b[at]! * 2 ** 32 + b.readUInt32BE(at + 1);
      let part = '';
      for (let i = 0; i < 8; i++) {
        part = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[v % 32]! + part;
        v = Math.floor(v / 32);
      }
      out += part;
    }
    return out;
  };
  fc.assert(fc.property(fc.uint8Array({ minLength: 10, maxLength: 10 }), (bytes) => encode80(Buffer.from(bytes)) === reference(Buffer.from(bytes))));
  expect(encode80(Buffer.alloc(10, 0xff))).toBe('Z'.repeat(16));
  expect(encode80(Buffer.alloc(10, 0))).toBe('0'.repeat(16));
});

test('ids of one millisecond share the time part and still differ', () => {
  const a = sortableId('clk_', 1_795_000_000_123);
  const b = sortableId('clk_', 1_795_000_000_123);
  expect(a.slice(0, 14)).toBe(b.slice(0, 14));
  expect(a).not.toBe(b);
  expect(sortableId('', 1_795_000_000_124).slice(0, 10) > a.slice(4, 14)).toBe(true);
});

test('encode80 at an offset reads the same 10 bytes as encode80 of them alone (sortableId reads its pool in place)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 10, maxLength: 64 }), fc.nat(), (bytes, k) => {
      const buf = Buffer.from(bytes);
      const at = k % (buf.length - 9);
      return encode80(buf, at) === encode80(Buffer.from(buf.subarray(at, at + 10)));
    }),
  );
});
