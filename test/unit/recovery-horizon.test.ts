/**
 * recoveryHorizon (src/targets/recovery-horizon.ts): a recovery lookup stops reading a newest-first
 * list only once it has passed the uncertain attempt's start less the clock margin, and never when
 * the list turns out not to be newest first.
 */
import { recoveryHorizon } from '../../src/targets/recovery-horizon.js';

const MIN = 60_000;
const at = (ms: number): string => new Date(ms).toISOString();
const T = Date.parse('2026-11-30T23:00:00Z');

test('newest first: stops after the page that ends before the start less the margin, not before', () => {
  const passed = recoveryHorizon(at(T), 15 * MIN);
  expect(passed([at(T + 5 * MIN), at(T + MIN)])).toBe(false);
  expect(passed([at(T - MIN), at(T - 14 * MIN)])).toBe(false); // within the margin: could be ours, on a skewed clock
  expect(passed([at(T - 15 * MIN), at(T - 16 * MIN)])).toBe(true);
});

test('Graph times (+0000) read like ISO ones', () => {
  expect(recoveryHorizon(at(T), 15 * MIN)(['2026-11-30T22:40:00+0000'])).toBe(true);
});

test('a list that is not newest first, or a time it cannot read, is read to its end', () => {
  const ascending = recoveryHorizon(at(T), 15 * MIN);
  expect(ascending([at(T - 60 * MIN), at(T - 50 * MIN)])).toBe(false); // older first: ours may come later
  expect(ascending([at(T - 40 * MIN)])).toBe(false);
  const unreadable = recoveryHorizon(at(T), 15 * MIN);
  expect(unreadable([null, at(T - 60 * MIN)])).toBe(false);
  // Date.parse read these as dates (2001-01-05, 2001-03-01, local midnight): older than the attempt, so it stopped
  for (const odd of ['1.5', '-3', '2026-11-30', 'Nov 1 2026 10:00', '2026-11-30T22:00:00']) {
    expect(recoveryHorizon(at(T), 15 * MIN)([odd])).toBe(false);
    expect(recoveryHorizon(at(T), 15 * MIN)([at(T - 20 * MIN), odd])).toBe(false);
  }
  const acrossPages = recoveryHorizon(at(T), 15 * MIN);
  expect(acrossPages([at(T - 30 * MIN)])).toBe(true);
  const laterPageNewer = recoveryHorizon(at(T), 15 * MIN);
  expect(laterPageNewer([at(T + MIN)])).toBe(false);
  expect(laterPageNewer([at(T + 2 * MIN), at(T - 60 * MIN)])).toBe(false);
});

test('without a start (an attempt recorded before it was kept): never stops early', () => {
  const passed = recoveryHorizon(undefined, 15 * MIN);
  expect(passed([at(0), at(-1)])).toBe(false);
});
