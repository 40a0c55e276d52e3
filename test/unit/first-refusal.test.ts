/**
 * firstRefusalArray (src/lib/first-refusal.ts): an unpaged platform answer's array is read to its first
 * refused element. z.array kept every refused element's issues (~2 KiB each): a million `{}` would have
 * been 2 GiB of them.
 */
import { z } from 'zod';
import { firstRefusalArray } from '../../src/lib/first-refusal.js';

const Item = z.object({ id: z.string(), n: z.number() });
const Answer = z.object({ items: firstRefusalArray(Item) });

test('valid elements are parsed as z.array parses them (unknown fields dropped)', () => {
  expect(Answer.parse({ items: [{ id: 'a', n: 1, extra: true }, { id: 'b', n: 2 }] })).toEqual({ items: [{ id: 'a', n: 1 }, { id: 'b', n: 2 }] });
  expect(Answer.parse({ items: [] })).toEqual({ items: [] });
});

test('only the first refused element has issues, under its index; the elements after it are not read', () => {
  const read: unknown[] = [];
  const Spy = z.object({ items: firstRefusalArray(z.unknown().refine((v) => (read.push(v), typeof v === 'number'), 'a number')) });
  expect(Spy.safeParse({ items: [1, 'x', 'y', 2] }).error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['items.1', 'a number']]);
  expect(read).toEqual([1, 'x']);
  const r = Answer.safeParse({ items: [{ id: 'a', n: 1 }, {}, {}, {}] });
  expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['items.1.id', 'items.1.n']);
});

test('not an array: refused as z.array refuses it', () => {
  expect(Answer.safeParse({ items: 'x' }).error?.issues.map((i) => [i.path.join('.'), i.code])).toEqual([['items', 'invalid_type']]);
});
