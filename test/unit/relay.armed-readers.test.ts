/**
 * The pool of armed readers (src/relay/armed-readers.ts): which live shows nobody publishes to yet get
 * their readers started ahead of the publish. Partners take turns, a whole show per turn, each
 * partner's shows in the order the process took them, so partner A's 150 video-less shows cannot take
 * the whole pool from partner B (they made ≈ 300 idle ffmpeg, and B's show took 75 s to send).
 */
import { armedShows, type WaitingShow } from '../../src/relay/armed-readers.js';

const show = (partnerId: string, n: number, readers = 2): WaitingShow => ({ key: `${partnerId}-${n}`, partnerId, readers, order: n });

test('partners take turns, a whole show each, oldest first', () => {
  const a = Array.from({ length: 150 }, (_, i) => show('a', i));
  const b = [show('b', 500)];
  expect([...armedShows([...a, ...b], 6)].sort()).toEqual(['a-0', 'a-1', 'b-500']);
  // Alone, a partner has the whole pool.
  expect(armedShows(a, 100).size).toBe(50);
});

test('a show that does not fit what is left is passed over for one that does; none over the pool', () => {
  const waiting = [show('a', 1, 5), show('a', 2, 2), show('b', 3, 3), show('b', 4, 1)];
  expect([...armedShows(waiting, 7)].sort()).toEqual(['a-1', 'b-4']); // b-3 (3) no longer fits after a-1 (5)
  expect([...armedShows(waiting, 8)].sort()).toEqual(['a-1', 'b-3']);
  expect([...armedShows(waiting, 9)].sort()).toEqual(['a-1', 'b-3', 'b-4']);
});

test('shows with nothing to arm (published, or no destination) take no place; a pool of 0 arms nothing', () => {
  expect([...armedShows([show('a', 1, 0), show('a', 2)], 2)]).toEqual(['a-2']);
  expect(armedShows([show('a', 1)], 0).size).toBe(0);
});
