/**
 * Giving up a start part-way on a stop signal: src/main/stop-signals.ts aborts the start's AbortSignal,
 * and each wait of the start (for Redis above all) ends with StartupStopped.
 */

/** A start given up because a stop signal came (exit 0 after what had started is closed). */
export class StartupStopped extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`${signal} during start-up`);
  }
}

/** Throws StartupStopped once `signal` (catchStopSignals') is aborted. */
export function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StartupStopped(signal.reason as NodeJS.Signals);
}

/** `p`, or StartupStopped as soon as `signal` is aborted (what `p` waits for goes on; the caller closes it). */
export function unlessStopped<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  // Given up before it began: what `p` waits for goes on alone and may fail later (waitForRedis times
  // out after 15 s), which must not be an unhandled rejection (Promise.race handles it otherwise).
  if (signal.aborted) p.catch(() => undefined);
  throwIfStopped(signal);
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new StartupStopped(signal.reason as NodeJS.Signals));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([p, stopped]).finally(() => signal.removeEventListener('abort', onAbort!));
}
