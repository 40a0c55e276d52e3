import { jittered, MAX_RETRY_AFTER_MS, maxAttempts, parseRetryAfter, RETRY_JITTER, RETRY_SCHEDULE_MS, retryDelayMs, scheduleSpanMs } from '../../src/outbound/retry-schedule.js';

const H = 3_600_000;

describe('retry schedule', () => {
  test('is 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over at least 24 h', () => {
    expect(RETRY_SCHEDULE_MS).toEqual([5_000, 300_000, 1_800_000, 2 * H, 5 * H, 10 * H, 10 * H]);
    expect(maxAttempts()).toBe(8);
    expect(scheduleSpanMs()).toBeGreaterThanOrEqual(24 * H);
    expect(scheduleSpanMs() * (1 - RETRY_JITTER)).toBeGreaterThanOrEqual(24 * H); // even with the shortest jitter
  });

  test('delay after attempt n is schedule[n-1]; null once exhausted', () => {
    const mid = () => 0.5; // no jitter
    RETRY_SCHEDULE_MS.forEach((d, i) => expect(retryDelayMs(i + 1, { rand: mid })).toBe(d));
    expect(retryDelayMs(8, { rand: mid })).toBeNull();
    expect(retryDelayMs(0, { rand: mid })).toBeNull();
  });

  test('jitter stays within ±10 % and covers both sides', () => {
    expect(jittered(10_000, 0.1, () => 0)).toBe(9_000);
    expect(jittered(10_000, 0.1, () => 0.999999)).toBe(11_000);
    for (let i = 0; i < 1000; i++) {
      const d = retryDelayMs(2)!;
      expect(d).toBeGreaterThanOrEqual(270_000);
      expect(d).toBeLessThanOrEqual(330_000);
    }
  });

  test('a custom (scaled) schedule replaces the default', () => {
    const schedule = [50, 50, 50];
    expect(retryDelayMs(3, { schedule, rand: () => 0.5 })).toBe(50);
    expect(retryDelayMs(4, { schedule, rand: () => 0.5 })).toBeNull();
  });

  test('Retry-After wins only when longer, and is clamped to 24 h', () => {
    expect(retryDelayMs(1, { rand: () => 0.5, retryAfterMs: 60_000 })).toBe(60_000);
    expect(retryDelayMs(3, { rand: () => 0.5, retryAfterMs: 60_000 })).toBe(30 * 60_000);
    expect(retryDelayMs(1, { rand: () => 0.5, retryAfterMs: 72 * H })).toBe(MAX_RETRY_AFTER_MS);
    expect(retryDelayMs(7, { rand: () => 0.5, retryAfterMs: 72 * H })).toBe(24 * H);
    expect(retryDelayMs(8, { retryAfterMs: 60_000 })).toBeNull(); // never extends an exhausted schedule
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-24T18:00:00Z');
  test('delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7_000);
  });
  test('delay-seconds of any length: a wait too long for a number is the longest wait, not none (RFC 9111 §1.2.2)', () => {
    // An endpoint that said to stay away for 3,170 years (or past any double) was tried again 5 s later.
    for (const v of ['99999999999', '99999999999999999999', '9'.repeat(400)]) {
      expect(parseRetryAfter(v, now)).toBeGreaterThanOrEqual(MAX_RETRY_AFTER_MS);
      expect(retryDelayMs(1, { rand: () => 0.5, retryAfterMs: parseRetryAfter(v, now) })).toBe(MAX_RETRY_AFTER_MS);
    }
  });
  test('HTTP-date (IMF-fixdate, RFC 850, asctime)', () => {
    expect(parseRetryAfter('Tue, 24 Nov 2026 18:05:00 GMT', now)).toBe(300_000);
    expect(parseRetryAfter('Tuesday, 24-Nov-26 18:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Tue Nov 24 18:00:30 2026', now)).toBe(30_000);
  });
  test('a date in the past is 0', () => {
    expect(parseRetryAfter('Tue, 24 Nov 2026 17:00:00 GMT', now)).toBe(0);
  });
  test('absent or garbage is null', () => {
    for (const v of [undefined, null, '', 'soon', '1.5', '-3', '1e3', '2026-11-24T18:05:00Z']) expect(parseRetryAfter(v, now)).toBeNull();
  });
});
