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
 *
 * The wait also ends when `signal` aborts (the reconcile worker is closing: SIGTERM would otherwise
 * wait up to a minute per page): `patiently` then throws the signal's reason, and the worker hands the
 * job back (reconcile.worker.ts) instead of failing the run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimitedError } from './target.errors.js';

/** How long one report page may wait for the account's limiter (ours or the platform's) in total. */
export const REPORT_PAGE_WAIT_BUDGET_MS = 60_000;

/**
 * `fn()`, again after each RateLimitedError's delay while that delay ends before `deadline` (epoch ms).
 * An aborted `signal` ends a wait (or prevents one) with `signal.reason`; a call in flight is not cut.
 */
export async function patiently<T>(deadline: number, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RateLimitedError) || Date.now() + err.delayMs > deadline) throw err;
      signal?.throwIfAborted();
      try {
        await sleep(err.delayMs, undefined, signal ? { signal } : undefined);
      } catch (waitErr) {
        signal?.throwIfAborted();
        throw waitErr;
      }
    }
  }
}
