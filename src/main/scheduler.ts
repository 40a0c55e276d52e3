/**
 * Scheduled work, run through BullMQ job schedulers so that any number of scheduler processes
 * produce each tick once: the mirror sweep, and one reconciliation per partner on its
 * `reconcileCron` (UTC) covering the last `reconcileLookbackDays` (platform data arrives late).
 */
import { DelayedError, Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Keys } from '../store/keys.js';
import { redisNowMs, type RedisClient } from '../store/redis.js';
import type { SweepService } from '../mirror/sweep.service.js';
import type { OrderEventSweep } from '../attribution/order-event.sweep.js';
import type { PartnerRepository } from '../store/partner.repository.js';
import type { ReconcileService } from '../reconcile/reconcile.service.js';
import type { AuditRepository } from '../store/audit.repository.js';
import { connectionErrorSummary, handleWorkerOutages, RedisOutageLog } from '../lib/redis-outage-log.js';
import { CRON_TZ, nextTick, readByBullmq } from '../lib/cron.js';
import { CLOSE_WAIT_MS, closeQueue } from '../queues/close-queue.js';

export const SCHEDULER_QUEUE = 'scheduler';
const RECONCILE_SCHEDULES_EVERY_MS = 60_000;
const READINESS_EVERY_MS = 60_000;
/**
 * How much further off than its interval a fixed scheduler's next tick may be (other schedulers' clocks)
 * before it counts as far off, and how much longer than its interval it may then stay unchanged (a busy
 * scheduler worker) before it is made again.
 */
const FIXED_TICK_SLACK_MS = 5 * 60_000;

export interface SchedulerHandle {
  close(): Promise<void>;
}

export interface SchedulerOptions {
  connection: () => ConnectionOptions;
  keys: Keys;
  sweep: SweepService;
  /** Stored order events attribution has not handled (same tick as the mirror sweep). */
  orderSweep?: OrderEventSweep;
  sweepIntervalMs: number;
  log: Logger;
  /** Reconciliation per partner cron; omitted in tests that only need the sweep. */
  reconcile?: { partners: PartnerRepository; service: ReconcileService };
  /**
   * Audit entries recorded pending with their change (AuditRepository.settle), written every minute
   * (the reconcile-schedules tick) for the key scope and every partner's: a change whose request was
   * never retried after its audit write failed still reaches the log. Needs `reconcile` (its partners).
   */
  audit?: AuditRepository;
  /** Pre-show readiness checks, every READINESS_EVERY_MS. */
  readiness?: { sweep(): Promise<{ checked: number }> };
  /** FIXED_TICK_SLACK_MS unless given (tests shorten it). */
  fixedTickSlackMs?: number;
}

/**
 * Keep one cron job scheduler per partner in step with the partners' settings (the reconcile-schedules
 * tick, every minute). BullMQ's upsert replaces the pending tick with the first one after the upserting
 * process's clock, so the upsert every minute dropped a tick that was due and not yet processed (the
 * scheduler worker busy with a sweep at 03:00, or a scheduler process whose clock runs ahead — by two
 * minutes, every day's run): that day's reconciliation was never run. So one that is there with the
 * partner's cron and its pending tick's job is left alone, unless that tick lies beyond this clock's
 * next one and that one was never produced (a clock that jumped back, or a process whose clock was far
 * ahead, left a tick days away): then it is replaced, since no tick would come until then. A tick
 * produced again is harmless (its run's id comes from the tick: the same run).
 */
export async function syncReconcileSchedules(queue: Queue, partners: { id: string; reconcileCron: string }[], log?: Pick<Logger, 'warn'>): Promise<number> {
  for (const p of partners) {
    const id = `reconcile:${p.id}`;
    // One partner's cron that BullMQ refuses (stored before the partner routes refused it: `H 3 * * *`,
    // src/lib/cron.ts) is checked before any Redis call: its upsert threw and ended the pass (the
    // partners after it kept their old schedule or none, the pending audit entries were never
    // written). Its job scheduler, left on an older cron it had, is removed, so that no run comes on a
    // cron the partner no longer has (the warning says so). Once per process per partner and cron: the
    // pass runs every minute. A Redis error (the remove included) ends the pass: the next tick tries again.
    const next = nextTick(p.reconcileCron, Date.now());
    if (next === null || !readByBullmq(p.reconcileCron)) {
      await queue.removeJobScheduler(id);
      const key = `${p.id}\n${p.reconcileCron}`;
      if (!unschedulableWarned.has(key)) {
        unschedulableWarned.add(key);
        log?.warn({ partnerId: p.id, reconcileCron: p.reconcileCron }, 'reconcileCron cannot be scheduled (not a cron expression BullMQ reads): its job scheduler is removed, no scheduled reconciliation until the partner is given another (PATCH /v1/partners/{id})');
      }
      continue;
    }
    const current = await queue.getJobScheduler(id);
    if (current?.pattern === p.reconcileCron && current.tz === CRON_TZ && current.next !== undefined && (await queue.getJob(`repeat:${id}:${current.next}`))) {
      if (current.next <= next || (await queue.getJob(`repeat:${id}:${next}`))) continue;
    }
    await queue.upsertJobScheduler(
      id,
      { pattern: p.reconcileCron, tz: CRON_TZ },
      { name: 'reconcile-partner', data: { partnerId: p.id }, opts: { removeOnComplete: 100, removeOnFail: 100 } },
    );
  }
  return partners.length;
}

/** (partner id, cron) pairs whose "cannot be scheduled" warning this process has written (syncReconcileSchedules). */
const unschedulableWarned = new Set<string>();

export async function startScheduler(opts: SchedulerOptions): Promise<SchedulerHandle> {
  const prefix = opts.keys.queuePrefix(SCHEDULER_QUEUE);
  const queue = new Queue(SCHEDULER_QUEUE, { connection: opts.connection(), prefix });
  // Once per Redis outage, not once per reconnect attempt (RedisOutageLog).
  const queueOutage = new RedisOutageLog(opts.log, 'scheduler queue');
  queue.on('error', (err) => queueOutage.error(connectionErrorSummary(err), {}, 'scheduler queue connection error'));
  void queue.client.then((c) => c.on('ready', () => queueOutage.recovered()), () => undefined);

  /**
   * The fixed job schedulers (sweep, reconcile-schedules, readiness). They live in Redis, so a Redis
   * that comes back without its data (restarted without persistence, a failover to a replica that
   * had not got them, a FLUSHALL) has none, and BullMQ produces no tick of them again: the sweep,
   * the per-partner reconciliation crons (kept up by the reconcile-schedules tick), the audit settle
   * and the readiness checks all stopped for good while the process ran on healthy. So each
   * scheduler process checks them every sweep interval and puts back a missing one (an upsert of an
   * existing id is what every scheduler does at start, so several processes doing it is harmless).
   */
  const fixed: { id: string; every: number; name: string }[] = [{ id: 'mirror-sweep', every: opts.sweepIntervalMs, name: 'sweep' }];
  if (opts.reconcile) fixed.push({ id: 'reconcile-schedules', every: RECONCILE_SCHEDULES_EVERY_MS, name: 'reconcile-schedules' });
  if (opts.readiness) fixed.push({ id: 'readiness', every: READINESS_EVERY_MS, name: 'readiness' });
  const upsertFixed = async (f: { id: string; every: number; name: string }): Promise<void> => {
    await queue.upsertJobScheduler(f.id, { every: f.every }, { name: f.name, opts: { removeOnComplete: true, removeOnFail: 100 } });
  };
  for (const f of fixed) await upsertFixed(f);
  /**
   * A fixed scheduler whose next tick is further off than its interval (and a margin for other
   * scheduler processes' clocks) was left by a clock that went back (an NTP step, a host clock set
   * wrong and corrected): BullMQ keeps the tick it had on an upsert, so the sweep, reconcile-schedules
   * and readiness stopped until the clock caught up (days, for a clock that had been days ahead). Such
   * a scheduler is made again, due now — once its far tick has stayed the same for longer than its
   * interval and the margin, measured on this process's monotonic clock. A far tick alone does not
   * tell: BullMQ stamps a tick with the clock of the process that produced it, so a healthy scheduler
   * process whose clock runs more than the margin ahead of this one's produces every tick "far off"
   * here, and making them again each check re-ran the sweep, reconcile-schedules and readiness and
   * logged a warning every interval. Its ticks move on every interval though (it processes them on its
   * clock), while a tick left by a clock that went back stays until that clock reaches it. Redis's
   * clock would not tell them apart either: the ticks carry the producers' clocks, not Redis's.
   */
  const slack = opts.fixedTickSlackMs ?? FIXED_TICK_SLACK_MS;
  /** Per fixed scheduler: the far-off next tick seen, and since when (performance.now()). */
  const farSeen = new Map<string, { next: number; since: number }>();
  const stuckFarOff = (next: number | undefined, f: { id: string; every: number }): boolean => {
    if (next === undefined || next <= Date.now() + f.every + slack) {
      farSeen.delete(f.id);
      return false;
    }
    const seen = farSeen.get(f.id);
    if (seen?.next !== next) {
      farSeen.set(f.id, { next, since: performance.now() });
      return false;
    }
    return performance.now() - seen.since > f.every + slack;
  };
  let ensuring = false;
  const ensureFixed = async (): Promise<void> => {
    if (ensuring) return;
    ensuring = true;
    try {
      for (const f of fixed) {
        const current = await queue.getJobScheduler(f.id);
        if (current && !stuckFarOff(current.next, f)) continue;
        if (current) await queue.removeJobScheduler(f.id);
        await upsertFixed(f);
        if (current) opts.log.warn({ jobScheduler: f.id, next: new Date(current.next!).toISOString() }, 'job scheduler next tick far in the future (the clock went back?): made again, due now');
        else opts.log.warn({ jobScheduler: f.id }, 'job scheduler missing from Redis (Redis lost its data?): added again');
      }
    } catch {
      // Redis unavailable: the outage is logged by the queue's error handler; the next check retries.
    } finally {
      ensuring = false;
    }
  };
  await ensureFixed();
  const ensureTimer = setInterval(() => void ensureFixed(), opts.sweepIntervalMs);
  ensureTimer.unref();

  const worker = new Worker(
    SCHEDULER_QUEUE,
    async (job, token) => {
      switch (job.name) {
        case 'sweep': {
          const shows = await opts.sweep.sweep();
          const orders = opts.orderSweep ? await opts.orderSweep.sweep() : null;
          // Reconciliation runs whose job add was lost (ReconcileService.recoverQueued).
          const reconciliations = opts.reconcile ? (await opts.reconcile.service.recoverQueued()).requeued.length : null;
          return { shows, orders, reconciliations };
        }
        case 'readiness':
          return opts.readiness ? (await opts.readiness.sweep()).checked : 0;
        case 'reconcile-schedules': {
          if (!opts.reconcile) return 0;
          const partners = await opts.reconcile.partners.list();
          const n = await syncReconcileSchedules(queue, partners, opts.log);
          if (opts.audit) {
            const { written, failed, scopesFailed } = await opts.audit.settleAll(partners.map((p) => p.id));
            if (written > 0) opts.log.info({ written }, 'pending audit entries written');
            for (const f of failed) opts.log.warn({ err: f.error, pendingAuditId: f.id }, 'pending audit entry is unreadable');
            for (const f of scopesFailed) opts.log.warn({ err: f.error, scope: f.scope }, 'pending audit entries not written (they stay pending: the next tick tries again)');
          }
          return n;
        }
        case 'reconcile-partner': {
          if (!opts.reconcile) return null;
          const { partnerId } = z.object({ partnerId: z.string().min(1) }).parse(job.data);
          const partner = await opts.reconcile.partners.get(partnerId);
          if (!partner) return null;
          // The period ends at the tick (a job scheduler's job id ends with its tick's time), and the
          // job id names the run: the same tick processed again (its worker died mid-job and BullMQ
          // ran it again) finds the run it requested instead of requesting a second one.
          // Ticks that passed while it waited (the service down) are caught up on there (requestScheduled).
          const tick = /:(\d{1,15})$/.exec(job.id ?? '');
          // BullMQ promotes a delayed tick by the clock of the worker that fetches it, so a scheduler
          // process whose clock ran ahead ran the tick early: its period (ending at the tick) was read
          // before it had ended, and with a lookback of a day no later run covered its tail. The tick
          // is run once Redis's clock (the one clock all processes share) has passed it; until then
          // it goes back to the delayed set for the time left by that clock (moveToDelayed takes a
          // time on this process's clock, so the wait is counted from here). The catch-up of ticks
          // that passed meanwhile reads Redis's clock too.
          const redisNow = await redisNowMs((await queue.client) as unknown as RedisClient); // ioredis under BullMQ's client interface
          const tickMs = tick ? Number(tick[1]) : redisNow;
          if (redisNow < tickMs) {
            await job.moveToDelayed(Date.now() + (tickMs - redisNow), token);
            throw new DelayedError();
          }
          const runs = await opts.reconcile.service.requestScheduled(partner, job.id, tickMs, redisNow);
          return runs.map((r) => r.id);
        }
        default:
          return null;
      }
    },
    { connection: opts.connection(), prefix, concurrency: 1 },
  );
  // Redis down: one line per outage (and reminders), not one per reconnect attempt or per job it failed (src/lib/redis-outage-log.ts).
  const outage = new RedisOutageLog(opts.log, 'scheduler worker');
  worker.on('failed', (job, err) => outage.jobFailed(err, { job: job?.name }, 'scheduled job failed'));
  // A full (OOM) or read-only Redis refusing its fetch: asks again once a second, not in a loop; its connection errors into the outage's lines (src/lib/redis-outage-log.ts).
  handleWorkerOutages(worker, outage, {}, 'scheduler worker error');
  return {
    close: async () => {
      clearInterval(ensureTimer);
      await closeQueue(worker, CLOSE_WAIT_MS, false); // its close waits for its running job
      await closeQueue(queue);
    },
  };
}
