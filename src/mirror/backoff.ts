/** Exponential backoff with full jitter, capped (ARCHITECTURE "backoff with jitter"). */
export function backoffMs(attempt: number, baseMs = 1000, capMs = 5 * 60_000, rand: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + rand() * (exp / 2));
}

/** Adds up to `fraction` of random jitter to a platform-given delay so that retries do not stampede. */
export function withJitter(delayMs: number, fraction = 0.1, rand: () => number = Math.random): number {
  return Math.round(delayMs + rand() * delayMs * fraction);
}
