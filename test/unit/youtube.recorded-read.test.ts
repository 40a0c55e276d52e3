/**
 * How long YouTube's recorded read of a broadcast stays usable (src/targets/youtube/youtube.adapter.ts
 * recordedReadMaxAgeMs, readFresh, reReadStep). From the review of the recorded read: the bound grew
 * with the window whatever the limit (a window of a day kept a read for two days at 200 requests a
 * day), a read a whole max-age ahead of this clock counted as fresh, and the integration tests empty
 * the limiter's window between runs, so the window rule was never exercised. From its second review: a
 * run looked at its own name's read alone, so a read made late under the name before was not used
 * (test/integration/youtube.start-one-token.test.ts, "a read made again late under its name").
 */
import { previousReReadStep, readFresh, recordedReadMaxAgeMs, reReadStep } from '../../src/targets/youtube/youtube.adapter.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
const NOW = Date.parse('2026-11-24T18:00:00Z');
const ago = (ms: number): string => new Date(NOW - ms).toISOString();

test('at 1 request per window a read stays usable three windows (at least 30 s); with 2 or more, or no window, 30 s whatever the window', () => {
  expect(recordedReadMaxAgeMs({ requests: 1, windowMs: MINUTE })).toBe(3 * MINUTE);
  expect(recordedReadMaxAgeMs({ requests: 1, windowMs: DAY })).toBe(3 * DAY);
  expect(recordedReadMaxAgeMs({ requests: 1, windowMs: 100 })).toBe(30_000);
  expect(recordedReadMaxAgeMs({ requests: 2, windowMs: MINUTE })).toBe(30_000);
  expect(recordedReadMaxAgeMs({ requests: 200, windowMs: DAY })).toBe(30_000);
  expect(recordedReadMaxAgeMs(undefined)).toBe(30_000);
});

test('at 1 request per minute a read 2.5 windows old is used, one 3.5 windows old is read again (the window rule, on the clock)', () => {
  const maxAge = recordedReadMaxAgeMs({ requests: 1, windowMs: MINUTE });
  expect(readFresh(ago(2.5 * MINUTE), maxAge, NOW)).toBe(true);
  expect(readFresh(ago(3.5 * MINUTE), maxAge, NOW)).toBe(false);
  // At 200 requests a day, a read of two minutes ago is too old.
  expect(readFresh(ago(2 * MINUTE), recordedReadMaxAgeMs({ requests: 200, windowMs: DAY }), NOW)).toBe(false);
});

test('a read ahead of this clock is fresh only within a few seconds (clocks of two workers), not a whole max-age; one without a time never', () => {
  const maxAge = recordedReadMaxAgeMs({ requests: 1, windowMs: MINUTE });
  expect(readFresh(ago(-2_000), maxAge, NOW)).toBe(true);
  expect(readFresh(ago(-10_000), maxAge, NOW)).toBe(false);
  expect(readFresh(ago(-MINUTE), maxAge, NOW)).toBe(false);
  expect(readFresh(undefined, maxAge, NOW)).toBe(false);
});

test('the read made again is named by the max-ages since the first: the same name within one, the next after (two steps a run, not every earlier read)', () => {
  const first = ago(0);
  const maxAge = 30_000;
  expect(reReadStep('read', first, maxAge, NOW + 31_000)).toBe('read:1');
  expect(reReadStep('read', first, maxAge, NOW + 59_000)).toBe('read:1');
  expect(reReadStep('read', first, maxAge, NOW + 61_000)).toBe('read:2');
  expect(reReadStep('read', first, maxAge, NOW + 10 * DAY)).toBe(`read:${(10 * DAY) / maxAge}`);
});

test('the name before is looked at from the second name on (a read is made again only past one max-age, never as `read:0`)', () => {
  const first = ago(0);
  const maxAge = 30_000;
  expect(previousReReadStep('read', first, maxAge, NOW + 31_000)).toBeUndefined();
  expect(previousReReadStep('read', first, maxAge, NOW + 61_000)).toBe('read:1');
  expect(previousReReadStep('read', first, maxAge, NOW + 10 * DAY)).toBe(`read:${(10 * DAY) / maxAge - 1}`);
  // A first read ahead of this clock (a worker whose clock ran fast): named `read:-1`, nothing before it.
  expect(previousReReadStep('read', ago(-10_000), maxAge, NOW)).toBeUndefined();
});
