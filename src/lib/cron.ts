/**
 * A partner's `reconcileCron`, read the one way: the partner routes' validation, the scheduler's
 * check of a partner's pending tick (src/main/scheduler.ts) and the catch-up run after downtime
 * (src/reconcile/reconcile.service.ts requestScheduled) all go through here, so they cannot read an
 * expression differently (a time zone or option given in one place and not another). BullMQ produces
 * the ticks from the same expression with its own bundled cron-parser (4.9), given CRON_TZ from here
 * (docs/libraries.md, `cron-parser`): an expression that parser cannot read is refused by the partner
 * routes (cronRefusal) and left unscheduled by the scheduler (readByBullmq).
 */
import { defaultRepeatStrategy } from 'bullmq';
import { CronExpressionParser, type CronExpression } from 'cron-parser';

/** The time zone of every reconciliation cron (the contract's `reconcileCron` is UTC). */
export const CRON_TZ = 'UTC';

/**
 * Ours (cron-parser 5), refusing a hashed `H` field: 5.x reads one (`H 3 * * *`) as a minute picked at
 * random on every parse, so it has no tick to compute, and BullMQ's bundled 4.9 cannot read it at all
 * (the one such difference that reaches ours: `?` in the minute field is another, refused by
 * readByBullmq in cronRefusal and the scheduler). No month or day name holds an H but THU.
 * Cheap: nextTick, latestTick and cronTimes run on every scheduled tick and every partner of the
 * minute's schedule sync; BullMQ's own reading (readByBullmq) is asked only where a cron is taken
 * (the partner routes) or a job scheduler is made of it (the scheduler).
 */
function parse(cron: string, currentDate?: Date): CronExpression {
  if (/H/i.test(cron.replace(/THU/gi, ''))) throw new Error('a hashed (H) field has no fixed tick');
  return CronExpressionParser.parse(cron, { tz: CRON_TZ, ...(currentDate ? { currentDate } : {}) });
}

/**
 * Whether BullMQ's bundled cron-parser 4.9, which produces the ticks, reads the expression (it throws
 * on one it cannot; upsertJobScheduler then throws too). Ask ours first (nextTick, cronRefusal): an
 * expression that never fires (`0 0 31 2,4 *`) ours refuses in a fraction of a millisecond, while
 * BullMQ's strategy searches ≈ 250 ms for it (its loop limit) and gives up without a throw.
 */
export function readByBullmq(cron: string): boolean {
  try {
    defaultRepeatStrategy(0, { pattern: cron, tz: CRON_TZ });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the partner routes refuse an expression our parser and BullMQ's both read, or null. With both
 * day-of-month and day-of-week restricted (neither `*` nor `?`) the two parsers pick different days:
 * 5.x fires when either matches (`0 3 1,15 * 1#2`: the 1st, the 15th and the second Monday), 4.9 applies
 * a `#` to every day (that Monday only), counts a day-of-week of all eight values (`0-7`, or `*` stepped by 1) or a
 * day-of-month of all the month's days as `*`. The scheduler's check of a pending tick and the
 * catch-up run read ticks BullMQ never produces (a schedule made again every minute, a due tick
 * dropped, a catch-up run after a tick that never came). Restricting one of the two fields is
 * read the same by both.
 */
export function cronRefusal(cron: string): string | null {
  let expr: CronExpression;
  try {
    expr = parse(cron);
  } catch {
    return 'not a valid cron expression';
  }
  if (!readByBullmq(cron)) return 'not a valid cron expression';
  if (!expr.fields.dayOfMonth.isWildcard && !expr.fields.dayOfWeek.isWildcard) {
    return 'day-of-month and day-of-week are both restricted: restrict only one of them (* in the other), since cron readers disagree on whether a day must match either or both';
  }
  return null;
}

/** The minutes and hours an expression fires at (the partner routes' shortest-gap rule), or null for one it cannot read. */
export function cronTimes(cron: string): { minutes: readonly number[]; hours: readonly number[] } | null {
  try {
    const { fields } = parse(cron);
    return { minutes: fields.minute.values, hours: fields.hour.values };
  } catch {
    return null;
  }
}

/** The cron's first tick strictly after `afterMs` (ms since the epoch), or null for an expression it cannot read. */
export function nextTick(cron: string, afterMs: number): number | null {
  try {
    return parse(cron, new Date(afterMs)).next().getTime();
  } catch {
    return null;
  }
}

/** The cron's latest tick at or before `atMs`, or null for an expression it cannot read. */
export function latestTick(cron: string, atMs: number): number | null {
  try {
    return parse(cron, new Date(atMs + 1)).prev().getTime();
  } catch {
    return null;
  }
}
