/**
 * A partner's `reconcileCron`, read the one way: the partner routes' validation, the scheduler's
 * check of a partner's pending tick (src/main/scheduler.ts) and the catch-up run after downtime
 * (src/reconcile/reconcile.service.ts requestScheduled) all go through here, so they cannot read an
 * expression differently (a time zone or option given in one place and not another). BullMQ produces
 * the ticks from the same expression with its own bundled cron-parser, given CRON_TZ from here
 * (docs/libraries.md, `cron-parser`).
 */
import { CronExpressionParser } from 'cron-parser';

/** The time zone of every reconciliation cron (the contract's `reconcileCron` is UTC). */
export const CRON_TZ = 'UTC';

/** The minutes and hours an expression fires at (the partner routes' shortest-gap rule), or null for one it cannot read. */
export function cronTimes(cron: string): { minutes: readonly number[]; hours: readonly number[] } | null {
  try {
    const { fields } = CronExpressionParser.parse(cron, { tz: CRON_TZ });
    return { minutes: fields.minute.values, hours: fields.hour.values };
  } catch {
    return null;
  }
}

/** The cron's first tick strictly after `afterMs` (ms since the epoch), or null for an expression it cannot read. */
export function nextTick(cron: string, afterMs: number): number | null {
  try {
    return CronExpressionParser.parse(cron, { tz: CRON_TZ, currentDate: new Date(afterMs) }).next().getTime();
  } catch {
    return null;
  }
}

/** The cron's latest tick at or before `atMs`, or null for an expression it cannot read. */
export function latestTick(cron: string, atMs: number): number | null {
  try {
    return CronExpressionParser.parse(cron, { tz: CRON_TZ, currentDate: new Date(atMs + 1) }).prev().getTime();
  } catch {
    return null;
  }
}
