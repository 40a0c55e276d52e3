/**
 * "could not renew lock for job X" after a job was handed back by its own run: a harmless race.
 *
 * A handler that retries by itself (the delivery worker, the sync workers) moves its job to delayed
 * (job.moveToDelayed with its lock token, which deletes the lock) and throws DelayedError. BullMQ's
 * lock manager (node_modules/bullmq/dist/esm/classes/lock-manager.js) keeps renewing the job until the
 * handler has returned: Worker.processJob untracks it only then (worker.js, `untrackJob` in the catch
 * and finally of processJob). Its renewal timer takes the tracked jobs, then sends `extendLocks` for
 * them; one sent while the handler's moveToDelayed is in flight reaches Redis after it, finds no lock
 * (extendLocks-1.lua: no key, or another token) and BullMQ emits `lockRenewalFailed` and an `error`
 * "could not renew lock for job X". BullMQ itself untracks a job before moveToCompleted/moveToFailed,
 * so only a handler's own moveToDelayed has this race. Nothing is lost: the job is delayed as asked,
 * and its next run (any worker's) takes a new lock.
 *
 * The window is one Redis round trip per hand-back of a job that ran past half of BullMQ's renewal
 * period (a slow receiver answering 5xx/410 or timing out): rare, more frequent as Redis gets slow
 * under load. A real lost lock (the lock expired because this process could not renew it in time, and
 * another worker may take the job for stalled and run it again) still comes as an error.
 *
 * HandBacks marks a job *before* its run's moveToDelayed is sent, so a renewal failure that comes
 * after is known to be this race. A mark counts for one lock duration: a later run of the same job (on
 * any worker) holds a lock of its own, which cannot be found missing before it has gone unrenewed for
 * a whole lock duration, so a real loss of that run is reported as one.
 */
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { isRedisUnavailable } from '../store/redis.js';
import { isOutboundCallError } from '../lib/redis-outage-log.js';

const RENEWAL_FAILED = /^could not renew lock for job (.+)$/;

export class HandBacks {
  /** queue and job id → when its run started handing it back (insertion order = time order). */
  private readonly marks = new Map<string, number>();

  /**
   * `lockMs`: the worker's lock duration; `refusedRetryMs`: how long a job whose run Redis refused
   * waits before its next run (REDIS_REFUSED_RETRY_MS, handBackWhileRedisRefuses).
   */
  constructor(
    private readonly lockMs: number,
    readonly refusedRetryMs: number = REDIS_REFUSED_RETRY_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Hands the job back as delayed until `untilMs` (its run's lock `token`), marked first (see the file comment). */
  async moveToDelayed(job: Job, untilMs: number, token: string | undefined): Promise<void> {
    const key = job.id === undefined ? undefined : keyOf(job.queueName, job.id);
    if (key !== undefined) this.mark(key);
    try {
      await job.moveToDelayed(untilMs, token);
    } catch (err) {
      // Not handed back (its lock was lost, Redis failed): a renewal failure is not this race.
      if (key !== undefined) this.marks.delete(key);
      throw err;
    }
  }

  /** Was job `jobId` of `queue` handed back by a run of this worker within the last lock duration? */
  handedBack(queue: string, jobId: string): boolean {
    const at = this.marks.get(keyOf(queue, jobId));
    return at !== undefined && this.now() - at <= this.lockMs;
  }

  /**
   * A worker `error` of `queue` that is a lock renewal failure of a job this worker had just handed
   * back: logged at debug on `log` (true); any other error is the caller's to report (false).
   */
  staleRenewal(err: unknown, queue: string, log: Pick<Logger, 'debug'>): boolean {
    const message = (err as { message?: unknown } | null)?.message;
    const jobId = typeof message === 'string' ? RENEWAL_FAILED.exec(message)?.[1] : undefined;
    if (jobId === undefined || !this.handedBack(queue, jobId)) return false;
    log.debug({ queue, jobId }, 'lock renewal of a job this worker had just moved to delayed came after the move (harmless: the job waits for its next run)');
    return true;
  }

  private mark(key: string): void {
    const now = this.now();
    for (const [old, at] of this.marks) {
      if (now - at <= this.lockMs) break;
      this.marks.delete(old);
    }
    this.marks.delete(key);
    this.marks.set(key, now);
  }
}

/** Moves `job` to delayed until `untilMs` (its run's lock `token`), through the worker's `handBacks` when given. */
export async function handBack(job: Job, untilMs: number, token: string | undefined, handBacks?: HandBacks): Promise<void> {
  if (handBacks) await handBacks.moveToDelayed(job, untilMs, token);
  else await job.moveToDelayed(untilMs, token);
}

const keyOf = (queue: string, jobId: string): string => `${queue}\u0000${jobId}`;

/**
 * How long a job whose run Redis refused or did not answer waits before its next run (not counted as
 * an attempt), unless its worker's HandBacks says otherwise (the REDIS_REFUSED_RETRY_MS setting, whose
 * default this is; tests shorten it).
 */
export const REDIS_REFUSED_RETRY_MS = 5_000;

/**
 * Runs a job's work; when Redis refused it or did not answer (isRedisUnavailable: a Redis at
 * `maxmemory` with noeviction answering OOM, MISCONF, READONLY, LOADING, a dropped connection), hands
 * the job back as delayed by `handBacks.refusedRetryMs` (REDIS_REFUSED_RETRY_MS without one) and throws BullMQ's DelayedError: the run is not
 * one of the job's attempts. Before, such a run failed the job as BullMQ does any error, and each
 * counted: a delivery (5 attempts, backoff from 2 s) was failed for good after about half a minute of
 * a full Redis, its message left `pending` for ever with nothing to send it again. The hand-back works
 * under OOM too (its script's first write is the lock's DEL, which Redis allows, and a script that has
 * written may go on). When the hand-back fails as well, the first error is the job's, as before.
 */
export async function handBackWhileRedisRefuses<T>(job: Job, token: string | undefined, handBacks: HandBacks | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    // (A platform's or receiver's ECONNREFUSED reads like Redis's: not this.)
    if (!isRedisUnavailable(err) || isOutboundCallError(err)) throw err;
    const retryMs = handBacks?.refusedRetryMs ?? REDIS_REFUSED_RETRY_MS;
    try {
      await handBack(job, Date.now() + retryMs, token, handBacks);
    } catch {
      throw err;
    }
    throw new RedisRefusedHandBack(`Redis refused or did not answer (${(err as Error).message.split('\n')[0]!.slice(0, 200)}): again in ${retryMs / 1000} s`);
  }
}

/** The DelayedError of a run handed back by handBackWhileRedisRefuses (Redis refused it or did not answer); to BullMQ (and by name) any DelayedError. */
export class RedisRefusedHandBack extends DelayedError {
  constructor(message: string) {
    super(message);
    this.name = 'DelayedError';
  }
}
