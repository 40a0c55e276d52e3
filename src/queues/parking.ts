/**
 * Jobs held back for a slot of their group (a partner's delivery share, a target's sync runs) and
 * *parked*: each is a delayed job that a slot of its group freeing in this process wakes (promotes),
 * one job per slot that frees, groups in turn. The delayed job itself is the record: after a crash, or
 * a wake-up that never comes (the slot freed in another process), it runs at the end of its delay (the
 * fallback); a job that ran meanwhile (its delay ended, something else promoted it) is not woken, and
 * the next one is. Used by the delivery worker (src/outbound/delivery.service.ts) and the sync workers
 * (src/mirror/target-cap.ts).
 */
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { promoteIfDelayed } from './promote.js';
import { handBack, type HandBacks } from './hand-backs.js';

/**
 * How long a held-back job waits when no slot of its group frees in this process first: a slot freeing
 * wakes it at once, this delay is what is left after a crash, for a wake-up this process missed, or for
 * another process's free slots.
 */
export const PARK_FALLBACK_MS = 5_000;

/** A held-back job waiting for a slot of its group: `wake` runs it now (false when it was no longer waiting). */
interface ParkedJob {
  untilMs: number;
  wake: () => Promise<boolean>;
}

export class ParkedJobs {
  /** group (next to wake first) → job id → job. */
  private readonly parked = new Map<string, Map<string, ParkedJob>>();
  private readonly waking = new Set<Promise<void>>();

  /** `what`: the jobs' name in the warning of a wake-up that failed ("a delivery", "a sync"). */
  constructor(
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  /** Registers a job deferred until `untilMs` (already delayed until then) to wait for a slot of `group`. */
  park(group: string, jobId: string, untilMs: number, wake: () => Promise<boolean>): void {
    const nowMs = Date.now();
    let jobs = this.parked.get(group);
    if (!jobs) this.parked.set(group, (jobs = new Map()));
    for (const [id, p] of jobs) {
      if (p.untilMs > nowMs) break;
      jobs.delete(id); // ran at the end of its delay
    }
    jobs.delete(jobId);
    jobs.set(jobId, { untilMs, wake });
  }

  /** A slot freed: wakes one parked job of the first group (in turn) that `mayStart` says may start one now. */
  wakeNext(mayStart: (group: string) => boolean): void {
    const nowMs = Date.now();
    for (const [group, jobs] of this.parked) {
      if (!mayStart(group)) continue;
      for (const [jobId, p] of jobs) {
        jobs.delete(jobId);
        if (p.untilMs <= nowMs) continue; // its delay is over: it runs anyway
        // The group goes behind the others for the next slot that frees.
        this.parked.delete(group);
        if (jobs.size > 0) this.parked.set(group, jobs);
        const woken: Promise<void> = p
          .wake()
          .then(
            (woke) => {
              if (!woke) this.wakeNext(mayStart); // it had run already: the slot is still free
            },
            (err: unknown) => this.log.warn({ err, group, jobId }, `could not wake ${this.what} waiting for a slot (it runs at the end of its delay)`),
          )
          .finally(() => this.waking.delete(woken));
        this.waking.add(woken);
        return;
      }
      this.parked.delete(group);
    }
  }

  /** Forgets the parked jobs (the worker is closing): they run at the end of their delays, on any worker. */
  async clear(): Promise<void> {
    this.parked.clear();
    await Promise.all([...this.waking]);
  }
}

/**
 * Hands a job back as delayed until `untilMs` (its lock `token`) and, with `park`, parks it to be woken
 * (promoted) before then when a slot frees; then throws BullMQ's DelayedError, so that the run does
 * not complete it. The delivery worker (a partner's share of attempts) and the sync worker (a slow
 * target's cap) both hold jobs back this way; `handBacks`: the worker's (src/queues/hand-backs.ts).
 */
export async function delayParked(
  job: Job,
  token: string | undefined,
  untilMs: number,
  reason: string,
  park?: (jobId: string, wake: () => Promise<boolean>) => void,
  handBacks?: HandBacks,
): Promise<never> {
  // Through the worker's HandBacks: a lock renewal that races this move is not reported as a lost lock.
  await handBack(job, untilMs, token, handBacks);
  if (park && job.id !== undefined) park(job.id, () => promoteIfDelayed(job));
  throw new DelayedError(reason);
}
