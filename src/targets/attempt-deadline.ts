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
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<number>();

/** Runs `fn` so that the platform requests it makes cannot be sent after `deadline` (epoch ms, this process's clock). */
export function withAttemptDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  return current.run(deadline, fn);
}

/** The deadline of the attempt this code runs in, if any. */
export function attemptDeadline(): number | undefined {
  return current.getStore();
}
