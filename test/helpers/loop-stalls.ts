/**
 * This process's event-loop stalls, for time bounds that must not count them: on a loaded CI machine
 * (load 10 on two cores) the test process itself gets the CPU late, and a bound on the service's
 * timing then fails for the test's own delay (the approach of relay.push, which subtracts them from
 * a sink's gaps). A 50 ms interval probe: every tick later than 70 ms records its lateness.
 */
import { pollUntil } from './service.js';

export interface LoopStalls {
  /** Milliseconds this loop spent stalled (beyond the probe's period) since `since` (a Date.now()). */
  since(since: number): number;
  stop(): void;
}

const PERIOD_MS = 50;

export function loopStalls(): LoopStalls {
  const stalls: Array<{ endedAt: number; ms: number }> = [];
  let tick = Date.now();
  const probe = setInterval(() => {
    const now = Date.now();
    if (now - tick > PERIOD_MS + 20) stalls.push({ endedAt: now, ms: now - tick - PERIOD_MS });
    tick = now;
  }, PERIOD_MS);
  probe.unref();
  return {
    since(since) {
      let ms = 0;
      for (const s of stalls) ms += Math.max(0, s.endedAt - Math.max(since, s.endedAt - s.ms));
      // The stall in progress (the probe has not run since).
      const now = Date.now();
      return ms + Math.max(0, now - Math.max(since, tick) - PERIOD_MS - 20);
    },
    stop() {
      clearInterval(probe);
    },
  };
}

/**
 * Polls `fn` until it returns a truthy value, for `budgetMs` of this process's own time: the wall time
 * since `opts.since` (default: now) less the stalls of its event loop meanwhile (`opts.stalls`, a probe
 * started by then; default: one started now). Throws (with the last error) when the budget is spent;
 * an assertion error thrown by `fn` ends the wait at once. Resolves with `fn`'s value.
 */
export async function waitForOwnTime<T>(fn: () => Promise<T | undefined | null | false>, budgetMs: number, opts: { since?: number; stalls?: LoopStalls; stepMs?: number } = {}): Promise<T> {
  const stalls = opts.stalls ?? loopStalls();
  const start = opts.since ?? Date.now();
  const expired = (): string | undefined => {
    const own = ownTime(start, stalls);
    return own > budgetMs ? `waitForOwnTime timed out after ${own} ms of this process's time (${Date.now() - start} ms wall)` : undefined;
  };
  try {
    return await pollUntil(fn, expired, opts.stepMs);
  } finally {
    if (!opts.stalls) stalls.stop();
  }
}

/** Milliseconds since `since` less this process's event-loop stalls meanwhile. */
export function ownTime(since: number, stalls: LoopStalls): number {
  return Date.now() - since - stalls.since(since);
}
