import fc from 'fast-check';
import { sortableId } from '../../src/lib/ids.js';

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
