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
 * How long one target's whole report may wait for rate limits (all its pages together). The waits run
 * inside a reconciliation job, and the reconcile worker runs two at a time for every partner: a report
 * of many pages on an account kept busy (a 429 with Retry-After ≤ 60 s on every page) held a slot for
 * as long as its pages lasted, an hour or more, and every other partner's run waited behind it. Past
 * this budget the target's report fails (the run reports it, others go on), as a quota block does.
 */
export const REPORT_WAIT_BUDGET_MS = 300_000;

/** What a report has left to wait, shared by its pages (`patiently`'s `budget`). */
export interface WaitBudget {
  leftMs: number;
}

export function reportWaitBudget(ms = REPORT_WAIT_BUDGET_MS): WaitBudget {
  return { leftMs: ms };
}

/**
 * `fn()`, again after each RateLimitedError's delay while that delay ends before `deadline` (epoch ms)
 * and fits what `budget` (the whole report's) has left; the time waited is taken from `budget`.
 * An aborted `signal` ends a wait (or prevents one) with `signal.reason`; a call in flight is not cut.
 */
export async function patiently<T>(deadline: number, fn: () => Promise<T>, signal?: AbortSignal, budget?: WaitBudget): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RateLimitedError) || Date.now() + err.delayMs > deadline) throw err;
      if (budget && err.delayMs > budget.leftMs) throw err;
      signal?.throwIfAborted();
      const started = Date.now();
      try {
        await sleep(err.delayMs, undefined, signal ? { signal } : undefined);
      } catch (waitErr) {
        signal?.throwIfAborted();
        throw waitErr;
      } finally {
        if (budget) budget.leftMs -= Math.max(0, Date.now() - started);
      }
    }
  }
}
