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
 */
function parse(cron: string, currentDate?: Date): CronExpression {
  defaultRepeatStrategy(0, { pattern: cron, tz: CRON_TZ });
  return CronExpressionParser.parse(cron, { tz: CRON_TZ, ...(currentDate ? { currentDate } : {}) });
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
