/**
 * A report's rate-limit waits share one budget (review: each page had its own 60 s, so a report of
 * many pages on a busy account held one of the reconcile worker's two slots for as long as its pages
 * lasted). `patiently` takes each wait from the budget and gives up, with the platform's error, once a
 * wait no longer fits it. Real timers (tens of ms).
 */
import { patiently, reportWaitBudget } from '../../src/targets/report-wait.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';

const limited = (delayMs: number): RateLimitedError => new RateLimitedError('slow down', delayMs, 'rate_limited');

test('waits are taken from the budget, and a wait that no longer fits it throws the rate limit', async () => {
  const budget = reportWaitBudget(250);
  let calls = 0;
  // Page 1: two waits of 100 ms, then it answers.
  const page1 = await patiently(Date.now() + 60_000, async () => (++calls <= 2 ? Promise.reject(limited(100)) : 'one'), undefined, budget);
  expect(page1).toBe('one');
  expect(budget.leftMs).toBeLessThanOrEqual(55); // a 100 ms timer may fire when Date.now() moved 99 ms
  // Page 2: a wait of 100 ms no longer fits (its own 60 s deadline would have allowed it).
  calls = 0;
  const left = budget.leftMs;
  await expect(patiently(Date.now() + 60_000, async () => (++calls <= 1 ? Promise.reject(limited(100)) : 'two'), undefined, budget)).rejects.toBeInstanceOf(RateLimitedError);
  expect(calls).toBe(1);
  // Thrown without a wait: nothing taken from the budget. (It was a bound of 100 ms on the call, which a
  // stall of the test's own event loop on a busy CI machine can pass; a wait is taken from the budget.)
  expect(budget.leftMs).toBe(left);
});

test('without a budget only the page deadline bounds the waits', async () => {
  let calls = 0;
  expect(await patiently(Date.now() + 60_000, async () => (++calls <= 3 ? Promise.reject(limited(20)) : 'ok'))).toBe('ok');
  expect(calls).toBe(4);
  await expect(patiently(Date.now() + 10, async () => Promise.reject(limited(50)))).rejects.toBeInstanceOf(RateLimitedError);
});
