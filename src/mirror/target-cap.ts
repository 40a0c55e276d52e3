/**
 * Per-target cap on concurrent sync runs (SYNC_TARGET_CONCURRENCY; ARCHITECTURE "a failing target never
 * blocks another"). A platform's sync queues have a fixed number of worker slots; a target whose
 * platform account hangs (every call runs until the platform timeout) and has as many shows syncing as
 * there are slots would hold all of them, and every other target of that platform would wait.
 *
 * So a target that is *slow* — one of its runs has taken half the platform timeout or longer, now or
 * within the last SLOW_TARGET_FOR_MS — may have at most `cap` runs in flight, counted in Redis across
 * every worker process (src/store/target-runs.repository.ts). A target that answers is never held back
 * (a lone partner's burst still uses every slot) and its runs cost no Redis call: each worker process
 * keeps the set of slow targets in memory, read from Redis once a second (one command per process per
 * second, `start()`), and only a run of a target in it is counted (one awaited Lua call before the run,
 * one not awaited after it, a renewal every third of the lease while it lasts). A run that reaches
 * `slowMs` marks its target slow in Redis (one call, not awaited) and in this process at once.
 *
 * Not counted: the runs of a target that were already in flight when it became slow (in another
 * process: until that process's next read, up to a second later). They end within a platform timeout
 * or so, and the runs started after are counted; until then the target can hold more slots than the cap.
 *
 * A run over the cap is not run: its job goes back as a delayed job (its deduplication id kept: never
 * lost, and never two runs of one (show, target) — the mirror lease sees to that anyway) and is
 * *parked* (src/queues/parking.ts, the delivery worker's mechanism): a counted run of the same target
 * ending in this process wakes it, else it runs at the end of its fallback delay (about 5 s). A run's
 * count is a lease (the BullMQ lock's duration, renewed while it runs): a killed worker's runs stop
 * counting once it lapses.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { RedisOutageLog } from '../lib/redis-outage-log.js';
import { PARK_FALLBACK_MS, ParkedJobs } from '../queues/parking.js';
import type { TargetRunRepository } from '../store/target-runs.repository.js';

/** How long a target stays slow after a run of it took half the platform timeout or longer. */
export const SLOW_TARGET_FOR_MS = 5 * 60_000;
/** How often a worker process reads the slow targets from Redis. */
export const SLOW_TARGETS_REFRESH_MS = 1000;

export interface TargetCapOptions {
  /** Runs a slow target may have in flight (≥ 1). */
  cap: number;
  /** A run's lease (the BullMQ job lock). */
  leaseMs: number;
  /** A run this long or longer makes its target slow (half the platform timeout). */
  slowMs: number;
  /**
   * A platform's own slowMs (half its PLATFORM_TIMEOUTS_MS timeout), for the runs of its targets: a
   * platform whose calls end sooner than slowMs would otherwise never have a slow target.
   */
  platformSlowMs?: Partial<Record<string, number>>;
  slowForMs?: number;
  /** Fallback delay of a held-back job (default PARK_FALLBACK_MS, jittered ×0.8–1.2). */
  parkMs?: number;
  /** How often the slow targets are read from Redis (default SLOW_TARGETS_REFRESH_MS). */
  refreshMs?: number;
}

/** A run of a target: `leave()` once it is over (not awaited: the count goes off the hot path). */
export interface CountedRun {
  leave(): void;
}

/** The run of a target that is not slow: not counted; leaving only stops its slow timer. */
class UncountedRun implements CountedRun {
  constructor(private readonly timer: NodeJS.Timeout) {}
  leave(): void {
    clearTimeout(this.timer);
  }
}

export class TargetRunCap {
  private readonly parked: ParkedJobs;
  private readonly outage: RedisOutageLog;
  /** Slow targets known here → until when (this process's clock). */
  private slow = new Map<string, number>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(
    private readonly runs: TargetRunRepository,
    private readonly opts: TargetCapOptions,
    private readonly log: Logger,
  ) {
    this.parked = new ParkedJobs(log, 'a sync');
    this.outage = new RedisOutageLog(log, 'sync target cap');
  }

  /** Reads the slow targets now and then every refreshMs, until close(). */
  start(): void {
    if (this.refreshTimer) return;
    const tick = (): void => {
      this.refresh().catch((err: unknown) => this.log.error({ err }, 'reading the slow sync targets failed'));
    };
    tick();
    this.refreshTimer = setInterval(tick, this.opts.refreshMs ?? SLOW_TARGETS_REFRESH_MS);
    this.refreshTimer.unref();
  }

  /** Stops the reads (the workers are closing). */
  close(): void {
    clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /**
   * One read of the slow targets (skipped while one is in flight). Redis down: the last set is kept,
   * the outage logged without a flood. Returns when the read is over (never rejects).
   */
  refresh(): Promise<void> {
    if (this.refreshing) return Promise.resolve();
    this.refreshing = true;
    return this.runs.slowTargets().then(
      (read) => {
        this.refreshing = false;
        this.outage.recovered();
        const now = Date.now();
        const slow = new Map<string, number>();
        for (const [targetId, ms] of read) slow.set(targetId, now + ms);
        // Marked here since the read was sent: kept until Redis has it.
        for (const [targetId, until] of this.slow) if (until > (slow.get(targetId) ?? now)) slow.set(targetId, until);
        this.slow = slow;
      },
      (err: unknown) => {
        this.refreshing = false;
        this.outage.error(err, {}, 'could not read the slow sync targets (the last ones known are kept)');
      },
    );
  }

  private isSlow(targetId: string): boolean {
    const until = this.slow.get(targetId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.slow.delete(targetId);
    return false;
  }

  /**
   * A run still going after slowMs (its platform's, if it has one) marks its target slow then, not
   * only when it ends (a timeout later).
   */
  private turnsSlow(targetId: string, platform: string | undefined): NodeJS.Timeout {
    const slowMs = (platform === undefined ? undefined : this.opts.platformSlowMs?.[platform]) ?? this.opts.slowMs;
    const t = setTimeout(() => this.markSlow(targetId), slowMs);
    t.unref();
    return t;
  }

  private markSlow(targetId: string): void {
    const slowForMs = this.opts.slowForMs ?? SLOW_TARGET_FOR_MS;
    this.slow.set(targetId, Math.max(this.slow.get(targetId) ?? 0, Date.now() + slowForMs));
    this.runs.markSlow(targetId, slowForMs).catch((err: unknown) => this.outage.error(err, { targetId }, 'could not mark a sync target slow'));
  }

  /**
   * A run of `targetId` (its job's lock token; `platform`, the target's, picks its slowMs): not counted
   * (no Redis call) unless the target is slow; null when it is slow and at its cap.
   */
  async enter(targetId: string, token: string = randomUUID(), platform?: string): Promise<CountedRun | null> {
    const { leaseMs } = this.opts;
    // (Every run comes here: no named closure per run, which tsx's keepNames would rename as it is made.)
    if (!this.isSlow(targetId)) return new UncountedRun(this.turnsSlow(targetId, platform));
    if (!(await this.runs.enter(targetId, token, this.opts.cap, leaseMs))) return null;
    const timer = this.turnsSlow(targetId, platform);
    const renewal = setInterval(
      () => {
        this.runs.renew(targetId, token, leaseMs).catch((err: unknown) => this.outage.error(err, { targetId }, "could not renew a sync run's count (it lapses)"));
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    renewal.unref();
    return {
      leave: () => {
        clearTimeout(timer);
        clearInterval(renewal);
        this.runs.leave(targetId, token).then(
          // A slot of this target freed: a run of it held back in this process may go now.
          () => this.parked.wakeNext((t) => t === targetId),
          (err: unknown) => this.outage.error(err, { targetId }, "could not end a sync run's count (it lapses)"),
        );
      },
    };
  }

  /** A held-back job, delayed until `untilMs` (parkMs from now): woken when a run of its target ends here. */
  park(targetId: string, jobId: string, untilMs: number, wake: () => Promise<boolean>): void {
    this.parked.park(targetId, jobId, untilMs, wake);
  }

  /** A held-back job's fallback delay (PARK_FALLBACK_MS), jittered ×0.8–1.2. */
  parkMs(): number {
    return Math.round((this.opts.parkMs ?? PARK_FALLBACK_MS) * (0.8 + 0.4 * Math.random()));
  }

  /** The workers are closing: held-back jobs run at the end of their delays, on any worker. */
  async unparkAll(): Promise<void> {
    await this.parked.clear();
  }
}
