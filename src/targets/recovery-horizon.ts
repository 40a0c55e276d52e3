import { listedTimeMs } from '../lib/timestamp.js';

/**
 * The skew allowed between our clock (an attempt's `since`) and a platform's creation times: a lookup
 * adopts or reads back to objects made no earlier than `since` less this. One value for every
 * platform: it is about our processes' clocks as much as theirs.
 */
export const RECOVERY_CLOCK_MARGIN_MS = 15 * 60_000;

/** The oldest creation time (ms) an object of the uncertain attempts can have: `since` less `marginMs`; -Infinity without a `since`. */
export function recoveryOldest(since: string | undefined, marginMs: number): number {
  const sinceMs = since === undefined ? NaN : Date.parse(since);
  return Number.isNaN(sinceMs) ? -Infinity : sinceMs - marginMs;
}

/**
 * How far back a recovery lookup reads a platform's list of objects (src/store/intent.repository.ts:
 * `recover()` is told `since`, the start of the first attempt whose outcome is unknown). A list read
 * newest first can stop once it has passed `since` less `marginMs` (the skew between our clock and
 * the platform's): whatever comes further down was made before the attempt. It stops only while the
 * list has come in descending creation order all along, with every time readable (`listedTimeMs`) — a list in any other
 * order (an assumption about a platform that turned out wrong) is read to its end instead, never cut
 * short before the object.
 *
 * Returns a function to call with each page's creation times in list order; it answers whether the
 * rest of the list can only hold older objects.
 */
export function recoveryHorizon(since: string | undefined, marginMs: number): (createdTimes: (string | null | undefined)[]) => boolean {
  const oldest = recoveryOldest(since, marginMs);
  let previous = Infinity;
  let descending = true;
  return (createdTimes) => {
    for (const t of createdTimes) {
      // Strict (listedTimeMs): Date.parse read "1.5" as 2001-01-05, an object older than the attempt, and
      // the lookup stopped before the page that held the attempt's own object.
      const ms = listedTimeMs(t);
      if (ms === undefined || ms > previous) descending = false;
      else previous = ms;
    }
    return descending && previous < oldest;
  };
}
