/**
 * The deadline of one attempt at a non-idempotent platform call (an intent step, src/store/intent.repository.ts).
 *
 * A retry that finds a step `started` by an earlier attempt looks for what that attempt may have made
 * before making it again — but a request the earlier attempt still had on its way would land AFTER the
 * lookup, and the step would happen twice. So an attempt may send only until its deadline: every
 * platform request made inside `withAttemptDeadline` (src/targets/platform-http.ts) is refused once
 * the deadline has passed — before anything goes on the wire — and otherwise times out at the deadline
 * at the latest. The intent records the same deadline, and a retry does not look before it (plus the
 * time the platform takes to act on a request) has passed.
 */
import { currentAttempt, withAttempt } from '../lib/request-context.js';

// The attempt lives in the request context's AsyncLocalStorage (src/lib/request-context.ts: one
// storage for both, one store copy per promise on Node 20). Its `prepaid`: the limiter (its window
// key) from which the step's start already took one request's token, in the same Lua step
// (IntentRepository.scoped, OnceOptions.limitedRequest): the attempt's first acquire() of that
// limiter uses it instead of taking another (takePrepaid).

/** Runs `fn` so that the platform requests it makes cannot be sent after `deadline` (epoch ms, this process's clock). */
export function withAttemptDeadline<T>(deadline: number, fn: () => Promise<T>, prepaid?: string): Promise<T> {
  return withAttempt(prepaid === undefined ? { deadline } : { deadline, prepaid }, fn);
}

/**
 * Runs `fn` (a step's recovery lookup, which sends nothing that makes an object: no deadline) with the
 * token its start took (`attempt.prepaid`, a limiter's window key) for its first acquire() of that
 * limiter. `attempt.prepaid` is cleared once that token is taken (takePrepaid, on this very object:
 * withAttempt stores it, not a copy): the caller sees whether it was.
 */
export function withPrepaid<T>(attempt: { prepaid?: string | undefined }, fn: () => Promise<T>): Promise<T> {
  return withAttempt(attempt, fn);
}

/**
 * Runs `fn` outside any attempt: the requests it makes have no attempt deadline (only their own
 * timeout) and take no prepaid token. For work one call starts on behalf of every caller that joins
 * it (an access-token refresh): bound to the starter's deadline, it failed every caller the moment
 * that one ran out of time. Each caller's own next request still keeps its own deadline.
 */
export function outsideAttempt<T>(fn: () => Promise<T>): Promise<T> {
  return withAttempt(undefined, fn);
}

/**
 * `fn` run once for every caller that asks while it runs (an access-token refresh: concurrent calls
 * of an adapter share one instead of racing several), outside any attempt (outsideAttempt): it serves
 * every caller waiting on it, other shows' steps too, so no one caller's deadline may cut it short.
 */
export function sharedOutsideAttempt<T>(fn: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () =>
    (running ??= outsideAttempt(fn).finally(() => {
      running = undefined;
    }));
}

/** The deadline of the attempt this code runs in, if any. */
export function attemptDeadline(): number | undefined {
  return currentAttempt()?.deadline;
}

/** True while the step's start's token of the limiter with this window key is there for takePrepaid (not taken). */
export function hasPrepaid(limiterKey: string): boolean {
  return currentAttempt()?.prepaid === limiterKey;
}

/** True (once per attempt) when the step's start took a token of the limiter with this window key for this attempt. */
export function takePrepaid(limiterKey: string): boolean {
  const a = currentAttempt();
  if (a?.prepaid !== limiterKey) return false;
  a.prepaid = undefined;
  return true;
}
