/**
 * YouTube's daily quota resets at midnight Pacific time (America/Los_Angeles, PST/PDT). A quota error
 * means "stay away until then", so the limiter needs the exact instant of that midnight, DST included.
 * Pure: the time zone rules come from the runtime's ICU data via Intl, no library and no clock.
 */
const ZONE = 'America/Los_Angeles';

const formatter = new Intl.DateTimeFormat('en-US', {
  timeZone: ZONE,
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
});

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function wallClock(ms: number): WallClock {
  const parts: Record<string, number> = {};
  for (const p of formatter.formatToParts(new Date(ms))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    year: parts.year ?? NaN,
    month: parts.month ?? NaN,
    day: parts.day ?? NaN,
    hour: parts.hour ?? NaN,
    minute: parts.minute ?? NaN,
    second: parts.second ?? NaN,
  };
}

/** Offset of Pacific wall-clock time from UTC at instant `ms`, in ms (−8 h in winter, −7 h in summer). */
function offsetAt(ms: number): number {
  const w = wallClock(ms);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - (ms - (((ms % 1000) + 1000) % 1000));
}

/** Epoch ms of the first midnight in America/Los_Angeles strictly after `nowMs`. */
export function nextMidnightPacific(nowMs: number): number {
  const today = wallClock(nowMs);
  // Date.UTC normalises day overflow (31 Jan + 1 → 1 Feb, 31 Dec + 1 → 1 Jan).
  const localMidnightAsUtc = Date.UTC(today.year, today.month - 1, today.day + 1);
  // Midnight never falls in a DST gap or overlap in this zone (changes happen at 02:00), so the offset
  // at the answer is unique; the second pass corrects a first guess taken on the other side of a change.
  const guess = localMidnightAsUtc - offsetAt(localMidnightAsUtc);
  return localMidnightAsUtc - offsetAt(guess);
}
