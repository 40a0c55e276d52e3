/**
 * The simulators' request window and daily quota (src/simulators/sim.platform.ts SimPlatform), as the
 * platform tests read them through 429s and RateLimit-* headers: a full window's state is the caller's
 * window (its Retry-After counts from that caller's oldest request), a reset empties every window, and
 * a day's quota use is not reported on the next day. A mutant hunt found each unchecked.
 */
import { SimPlatform } from '../../src/simulators/sim.platform.js';

test("a full window's state is the caller's own: its limit, nothing left, and the wait until that caller's oldest request leaves", () => {
  const sim = new SimPlatform('whatnot', { limits: { requestsPerWindow: 2, windowMs: 10_000 }, windowPerCaller: true });
  const t0 = 1_000_000;
  expect(sim.takeWindowSlot(t0, 'seller-a')).toBeUndefined();
  expect(sim.takeWindowSlot(t0 + 1_000, 'seller-a')).toBeUndefined();
  expect(sim.takeWindowSlot(t0 + 2_000, 'seller-b')).toBeUndefined(); // another caller's window
  expect(sim.takeWindowSlot(t0 + 4_000, 'seller-a')).toEqual({ limit: 2, remaining: 0, windowMs: 10_000, resetMs: 6_000 });
  expect(sim.windowState(t0 + 4_000, 'seller-b')).toEqual({ limit: 2, remaining: 1, windowMs: 10_000, resetMs: 8_000 });
  // Once the oldest left, a slot is free again.
  expect(sim.takeWindowSlot(t0 + 10_001, 'seller-a')).toBeUndefined();
});

test('a reset empties every request window (POST /_sim/reset: a test starts with all its requests)', () => {
  const sim = new SimPlatform('bambuser', { limits: { requestsPerWindow: 1, windowMs: 60_000 } });
  const now = Date.now();
  expect(sim.takeWindowSlot(now)).toBeUndefined();
  expect(sim.takeWindowSlot(now)).toMatchObject({ remaining: 0 });
  sim.reset();
  expect(sim.windowState(now)).toMatchObject({ remaining: 1, resetMs: 0 });
  expect(sim.takeWindowSlot(now)).toBeUndefined();
});

test("the quota used on one day is not reported, nor counted, on the next", () => {
  const sim = new SimPlatform('youtube', { limits: { quotaPerDay: 100 }, quotaTimeZone: 'UTC' });
  const day1 = Date.parse('2026-12-07T10:00:00Z');
  const day2 = Date.parse('2026-12-08T10:00:00Z');
  expect(sim.tryConsumeQuota(60, day1)).toBe(true);
  expect(sim.quotaUsage(day1)).toMatchObject({ day: '2026-12-07', used: 60, limit: 100 });
  expect(sim.quotaUsage(day2)).toMatchObject({ day: '2026-12-08', used: 0 });
  expect(sim.tryConsumeQuota(100, day2)).toBe(true);
});
