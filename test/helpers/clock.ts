/**
 * Times relative to the real clock, for tests whose dates the service measures against now: the ops
 * board's day and week around now, the commission hold, the attribution and order windows, the bound
 * on future `occurredAt`. A fixed date there is a time bomb: the test passes until the calendar moves
 * the date across the window, then fails on every run (relay.dead-status did, at 2026-12-01 18:00
 * UTC). Tests of date arithmetic with no "now" in it (day buckets, money, parsing) keep fixed dates.
 */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** The ISO time `offsetMs` from now (negative: in the past). */
export function isoFromNow(offsetMs: number): string {
  return new Date(Date.now() + offsetMs).toISOString();
}

/** An ISO time a little before now (default an hour): inside every window the service measures back from now. */
export function recentIso(agoMs = HOUR_MS): string {
  return isoFromNow(-agoMs);
}

/**
 * Runs `fn` as a process whose clock is `skewMs` off the machine's (and so Redis') clock: its
 * Date.now() only (timers and Redis TIME are unchanged), as a worker on a host whose clock is wrong.
 */
export async function withClockSkew<T>(skewMs: number, fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => real() + skewMs;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}
