/**
 * Order reports (reconciliation) wait for the account's rate limit instead of failing on it. A report
 * is read inside a reconciliation job, often next to other runs and mirror syncs on the same account:
 * our own limiter's full window (a refusal that says "in ~1 s") or the platform's 429 with Retry-After
 * is a wait, not a failure of the report. Failing it used to end a run `failed` ("no target report could
 * be read") when ten runs of a period started at once; and a retry would start the report over.
 *
 * The wait is bounded: a RateLimitedError whose delay does not fit the deadline (a quota block until
 * midnight, a limiter kept busy for longer) is thrown as before, and the target's report fails. The
 * check is per request (per report page), never per order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimitedError } from './target.errors.js';

/** How long one report page may wait for the account's limiter (ours or the platform's) in total. */
export const REPORT_PAGE_WAIT_BUDGET_MS = 60_000;

/** `fn()`, again after each RateLimitedError's delay while that delay ends before `deadline` (epoch ms). */
export async function patiently<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RateLimitedError) || Date.now() + err.delayMs > deadline) throw err;
      await sleep(err.delayMs);
    }
  }
}
