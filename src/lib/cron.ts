/**
 * A partner's `reconcileCron`, read the one way: the partner routes' validation, the scheduler's
 * check of a partner's pending tick (src/main/scheduler.ts) and the catch-up run after downtime
 * (src/reconcile/reconcile.service.ts requestScheduled) all go through here, so they cannot read an
 * expression differently (a time zone or option given in one place and not another). BullMQ produces
 * the ticks from the same expression with its own bundled cron-parser (4.9), given CRON_TZ from here
 * (docs/libraries.md, `cron-parser`): an expression that parser cannot read is no cron here either.
 */
import { defaultRepeatStrategy } from 'bullmq';
import { CronExpressionParser, type CronExpression } from 'cron-parser';

/** The time zone of every reconciliation cron (the contract's `reconcileCron` is UTC). */
export const CRON_TZ = 'UTC';

/**
 * Ours, for an expression BullMQ's bundled cron-parser 4.9 reads too (it throws on one it cannot).
 * Ours (5.x) reads a hashed `H` field (`H 3 * * *`: a minute picked at random on every parse) that 4.9
 * refuses: such a cron was accepted (201), then every upsert of its job scheduler threw, so the partner
 * had no scheduled run, and the minute's reconcile-schedules pass ended there, before the partners
 * listed after it (their new or changed crons) and the pending audit entries.
 * Ours first: it refuses in a fraction of a millisecond an expression that never fires (`0 0 31 2,4 *`),
 * which BullMQ's strategy searches for ≈ 250 ms (its loop limit) before giving up without a throw.
 */
function parse(cron: string, currentDate?: Date): CronExpression {
  const expr = CronExpressionParser.parse(cron, { tz: CRON_TZ, ...(currentDate ? { currentDate } : {}) });
  defaultRepeatStrategy(0, { pattern: cron, tz: CRON_TZ });
  return expr;
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
