/** Runs reconciliation jobs (worker role). */
import { traced } from '../lib/request-context.js';
import { DelayedError, Worker, WaitingError, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Keys } from '../store/keys.js';
import { RECONCILE_QUEUE, type ReconcileService } from './reconcile.service.js';
import { handleWorkerOutages, RedisOutageLog } from '../lib/redis-outage-log.js';
import { handBackWhileRedisRefuses, HandBacks } from '../queues/hand-backs.js';

/** BullMQ's default lock duration, named for HandBacks. */
const LOCK_MS = 30_000;

const JobData = z.object({ id: z.string().min(1) });

/** The reason the worker's signal aborts with: it is closing. */
class WorkerClosing extends Error {
  constructor() {
    super('the reconcile worker is closing');
    this.name = 'WorkerClosing';
  }
}

/**
 * A run waiting out a platform's rate limit (report-wait.ts, up to a minute per report page) stops
 * waiting once the worker closes (SIGTERM): the job goes back to waiting (not failed, no attempt
 * spent) and the run stays `running` until a worker — another one, or this process restarted — runs
 * it again from the start (ReconcileService.run is safe to run again).
 */
export function startReconcileWorker(service: ReconcileService, opts: { connection: ConnectionOptions; keys: Keys; log: Logger; refusedRetryMs?: number }): Worker {
  const closing = new AbortController();
  // A lock renewal that came after the run's own move to delayed is not a lost lock (src/queues/hand-backs.ts).
  const handBacks = new HandBacks(LOCK_MS, opts.refusedRetryMs);
  const w = new Worker(
    RECONCILE_QUEUE,
    traced(opts.log, async (job: Job, token?: string) => {
      const { id } = JobData.parse(job.data);
      try {
        // Redis full or refusing (OOM, READONLY, …): the job waits and runs again from the start (run()
        // is safe to run again: it only reads the platforms), its attempts untouched. Before, each such
        // run was one of its 5 attempts (backoff from 5 s): about a minute of a full Redis failed it for good.
        const rec = await handBackWhileRedisRefuses(job, token, handBacks, () => service.run(id, closing.signal));
        return rec.status;
      } catch (err) {
        if (err instanceof DelayedError) throw err;
        if (err instanceof WorkerClosing) {
          // Not a failed attempt whatever happens: a hand-back that fails (lock lost, Redis gone during
          // the shutdown) leaves the job active, and stall detection runs it again.
          await job.moveToWait(token).then(
            () => opts.log.info({ reconciliationId: id }, 'reconciliation handed back: the worker is closing'),
            (e: unknown) => opts.log.warn({ err: e, reconciliationId: id }, 'reconciliation not handed back (it runs again once its lock expires)'),
          );
          throw new WaitingError();
        }
        // The last attempt: the run is marked failed (and the partner told) before the job fails, so a
        // process that dies in between leaves the job active; stall detection runs it again and run()
        // finds the run failed. attemptsMade counts the attempts that failed before this one.
        if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
          opts.log.error({ err, reconciliationId: id }, 'reconciliation failed on its last attempt');
          // A failed write (Redis gone) is tried again by the failed handler below; the job fails with its own error.
          await service.fail(id).catch((e: unknown) => opts.log.warn({ err: e, reconciliationId: id }, 'could not mark reconciliation failed'));
        }
        throw err;
      }
    }),
    { connection: opts.connection, prefix: opts.keys.queuePrefix(RECONCILE_QUEUE), concurrency: 2, lockDuration: LOCK_MS },
  );
  w.on('closing', () => closing.abort(new WorkerClosing()));
  // Redis down: one line per outage (and reminders), not one per reconnect attempt or per job it failed (src/lib/redis-outage-log.ts).
  const outage = new RedisOutageLog(opts.log, 'reconcile worker');
  w.on('failed', (job, err) => {
    outage.jobFailed(err, { reconciliationId: job?.id, attemptsMade: job?.attemptsMade }, 'reconciliation failed');
    // Failed for good: after its last attempt (the processor marked the run already; this repeats it in
    // case that write failed), or without reaching the processor (stalled more than allowed: BullMQ fails
    // it as an UnrecoverableError). fail() is idempotent.
    if (!job || !(job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError')) return;
    const parsed = JobData.safeParse(job.data);
    if (!parsed.success) return;
    service.fail(parsed.data.id).catch((e: unknown) => opts.log.warn({ err: e, reconciliationId: parsed.data.id }, 'could not mark reconciliation failed'));
  });
  // A full (OOM) or read-only Redis refusing its fetch: asks again once a second, not in a loop; its connection errors into the outage's lines (src/lib/redis-outage-log.ts).
  handleWorkerOutages(w, outage, {}, 'reconcile worker error', (err) => handBacks.staleRenewal(err, RECONCILE_QUEUE, opts.log));
  return w;
}
