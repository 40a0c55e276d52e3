/**
 * Logging a Redis outage without a flood. While Redis is down every BullMQ worker emits an `error` on
 * each reconnect attempt of each of its connections: stopping Redis under `npm start` gave ~35 error
 * lines a second from the sync workers alone. An error that says Redis cannot be reached
 * (isRedisUnreachable) is logged once when the outage starts, then at most once per `intervalMs` with
 * the number of repeats left out, and once when Redis answers again (`recovered()`: the workers' `ready`
 * event, or, for a Redis that only refused and so never reconnects, the next fetch or stalled check
 * Redis runs; pauseFetchWhileRedisRefuses). Any other error is logged as it comes.
 *
 * A job that failed because Redis could not be reached (jobFailed) is counted, not an error line of its
 * own: in-flight jobs whose Redis calls fail during an outage are failed by BullMQ only once Redis
 * answers again (the failure is written to Redis), so they came as one 'sync job failed' line per job
 * right after the recovery line (20 jobs in flight, 20 lines), and so did those of a frozen Redis
 * (commands timed out) that no connection error reported. Those that come during a reported outage are
 * in its count (its recovery line's `jobsFailed`); the others in one line per burst, `settleMs` after
 * its first, at most one such line per `intervalMs`; each counted line names the first jobs' ids. Any
 * other job failure is logged as it comes, also one whose error came from a platform or partner call
 * with the same socket codes (isOutboundCallError).
 */
import type { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { isRedisRefusalReply } from './redis-refusals.js';

/** Socket-level error codes that mean "Redis cannot be reached" (not "Redis refused this command"). */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'ENOTCONN']);
// `Command timed out`: a Redis that is there but does not answer (frozen: SIGSTOP, a stalled VM, a long
// fork) fails every command after its commandTimeout (src/store/redis.ts); left out, each one was an
// error line of its own (the sync target cap's read every 3 s, the relay's pass every second).
const UNREACHABLE_MESSAGE = /Connection is closed|Stream isn't writeable|Command timed out|MaxRetriesPerRequest|Reached the max retries|connect ETIMEDOUT|ECONNREFUSED|ECONNRESET|Cluster isn't ready|CLUSTERDOWN|None of startup nodes is available|^LOADING /;

/**
 * A Cluster node's slots refresh that got no answer: ioredis's `timeout` (slotsRefreshTimeout ran out: a
 * node that accepts connections but never answers, a SIGSTOP'd Redis) or `Node is disconnected`, both
 * without a code. Only as a ClusterAllFailedError's last node error: a bare "timeout" may be a
 * platform's, which keeps its own line.
 */
const SILENT_CLUSTER_NODE = /^(timeout|Node is disconnected)$/;
function isSilentClusterNode(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string' && SILENT_CLUSTER_NODE.test((err as { message: string }).message);
}

/**
 * Redis cannot be reached (the connection, not a reply: a Redis that answers and refuses is
 * isRedisUnreachableOrRefusing; an error that is a 503 is src/store/redis.ts' isRedisUnavailable). Read
 * by shape, not `instanceof Error`: an error from another realm (a vm context, a test runner) counts too.
 */
export function isRedisUnreachable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  // A Redis Cluster client whose every node failed its slots refresh ("Failed to refresh slots cache."),
  // on each reconnect (4 a second): unavailable when the last node's failure says so (every seed down),
  // or when it tried no node. A node that answered with a refusal (WRONGPASS) keeps its own lines.
  if (e.name === 'ClusterAllFailedError') {
    const last = (err as { lastNodeError?: unknown }).lastNodeError;
    return last === null || last === undefined || isRedisUnreachable(last) || isSilentClusterNode(last);
  }
  if (typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message)) return true;
  const errors = (err as { errors?: unknown }).errors; // AggregateError (IPv4 and IPv6 both refused)
  return Array.isArray(errors) && errors.length > 0 && errors.every(isRedisUnreachable);
}

/**
 * isRedisUnreachable, or a Redis that answers and refuses for now: full (`OOM` at `maxmemory` with
 * noeviction), a read-only replica, one that cannot persist (`MISCONF`), one loading its data or
 * running a long script (pauseFetchWhileRedisRefuses, below).
 */
export function isRedisUnreachableOrRefusing(err: unknown): boolean {
  return isRedisUnreachable(err) || isRedisRefusalError(err);
}

/** An error whose message is one of Redis's refusals (isRedisRefusalReply): a Redis that answers and takes no writes for now. */
function isRedisRefusalError(err: unknown): boolean {
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof message === 'string' && isRedisRefusalReply(message);
}

/**
 * An error of a platform or partner call rather than of Redis: an axios error (`isAxiosError`, or the
 * request's `config` with a `response` or `request`), or a platform error of src/targets (its `kind`).
 * Such an error can carry the same socket codes and words (a platform's ECONNREFUSED, "connect
 * ETIMEDOUT") and must not be folded into a Redis outage as a job failure: it keeps its own line.
 */
export function isOutboundCallError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { isAxiosError?: unknown; config?: unknown; response?: unknown; request?: unknown; kind?: unknown };
  if (e.isAxiosError === true) return true;
  if (typeof e.config === 'object' && e.config !== null && (e.response !== undefined || e.request !== undefined)) return true;
  return typeof e.kind === 'string' && ['retryable', 'rate_limited', 'auth_expired', 'permanent', 'action_required'].includes(e.kind);
}

/** How many failed jobs' ids a counted line names (the first ones), so that no job is left unnamed in a short burst. */
const JOB_IDS_NAMED = 10;

/** The job a failure's `fields` name (jobId, reconciliationId or job), if any. */
function jobOf(fields: Record<string, unknown>): string | undefined {
  const id = fields['jobId'] ?? fields['reconciliationId'] ?? fields['job'];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

/**
 * What of a connection error may be logged: name, message, code (and those of an AggregateError's
 * parts), so isRedisUnreachable still reads it. Not the error itself: an ioredis ReplyError carries
 * the command it answered, arguments included (an AUTH's password).
 */
export function connectionErrorSummary(err: unknown): { name?: string; message: string; code?: string; errors?: unknown[]; lastNodeError?: unknown } {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as { name?: unknown; message?: unknown; code?: unknown; errors?: unknown; lastNodeError?: unknown };
  return {
    ...(typeof e.name === 'string' ? { name: e.name } : {}),
    message: typeof e.message === 'string' ? e.message : String(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(Array.isArray(e.errors) ? { errors: e.errors.map(connectionErrorSummary) } : {}),
    // A Cluster client's "Failed to refresh slots cache." says why only in its last node's error.
    ...(typeof e.lastNodeError === 'object' && e.lastNodeError !== null ? { lastNodeError: connectionErrorSummary(e.lastNodeError) } : {}),
  };
}

export interface RedisOutageLogOptions {
  /** At most one reminder per this many ms while the outage lasts (default 15 s). */
  intervalMs?: number;
  /** How long after the first of them the jobs that failed just after a recovery are counted before their line (default 1 s). */
  settleMs?: number;
  now?: () => number;
}

export class RedisOutageLog {
  private since: number | undefined;
  private lastLogged = 0;
  private suppressed = 0;
  private total = 0;
  /** Jobs that failed because Redis was unavailable, during the outage being reported (and the first ones' ids). */
  private jobsFailed = 0;
  private jobIds: string[] = [];
  /** Jobs that failed because Redis was unavailable outside a reported outage: counted until their line. */
  private burst: { count: number; lastError: string; jobIds: string[]; timer: NodeJS.Timeout } | undefined;
  /** When the last burst line was logged. */
  private burstLoggedAt: number | undefined;
  private readonly intervalMs: number;
  private readonly settleMs: number;
  private readonly now: () => number;

  /** `what` names the component in the lines (e.g. "sync workers"). */
  constructor(
    private readonly log: Pick<Logger, 'error' | 'info'>,
    private readonly what: string,
    opts: RedisOutageLogOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 15_000;
    this.settleMs = opts.settleMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /** Is an outage being reported (between its first error and recovered())? */
  get down(): boolean {
    return this.since !== undefined;
  }

  /**
   * Logs `err` with `fields` and `msg`; a Redis-unavailable error is folded into the outage's lines.
   */
  error(err: unknown, fields: Record<string, unknown>, msg: string): void {
    // A Redis that answers and refuses (OOM at maxmemory, READONLY, MISCONF): folded in as well. Before,
    // each refused fetch of each worker was a line of its own, one a second per worker for the whole of it.
    if (!isRedisUnreachableOrRefusing(err)) {
      this.log.error({ err, ...fields }, msg);
      return;
    }
    const now = this.now();
    if (this.since === undefined) {
      this.since = now;
      this.lastLogged = now;
      this.suppressed = 0;
      this.total = 1;
      // What the error says, not its stack: an outage is an expected condition, and the workers' lines
      // (BullMQ's connection errors) carried ioredis's stack where the relay's and the API's did not.
      this.log.error({ err: connectionErrorSummary(err), ...fields }, `${this.what}: Redis unavailable (repeats are logged at most every ${Math.round(this.intervalMs / 1000)} s)`);
      return;
    }
    this.total++;
    const message = String((err as { message?: unknown }).message ?? err);
    if (now - this.lastLogged < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.log.error({ lastError: message, suppressed: this.suppressed, downForMs: now - this.since, ...fields }, `${this.what}: Redis still unavailable`);
    this.lastLogged = now;
    this.suppressed = 0;
  }

  /**
   * A job failed with `err`: one that says Redis cannot be reached is counted into the outage (see the
   * class comment); any other is logged with `fields` and `msg`, as it comes.
   */
  jobFailed(err: unknown, fields: Record<string, unknown>, msg: string): void {
    if (!isRedisUnreachableOrRefusing(err) || isOutboundCallError(err)) {
      this.log.error({ err, ...fields }, msg);
      return;
    }
    const job = jobOf(fields);
    if (this.since !== undefined) {
      this.jobsFailed++;
      if (job !== undefined && this.jobIds.length < JOB_IDS_NAMED) this.jobIds.push(job);
      this.error(err, fields, msg);
      return;
    }
    const lastError = String((err as { message?: unknown }).message ?? err);
    if (this.burst) {
      this.burst.count++;
      this.burst.lastError = lastError;
      if (job !== undefined && this.burst.jobIds.length < JOB_IDS_NAMED) this.burst.jobIds.push(job);
      return;
    }
    // Its line after settleMs (the rest of the burst comes within milliseconds), and one per intervalMs at most.
    const wait = Math.max(this.settleMs, this.burstLoggedAt === undefined ? 0 : this.burstLoggedAt + this.intervalMs - this.now());
    const timer = setTimeout(() => this.reportBurst(), wait);
    timer.unref();
    this.burst = { count: 1, lastError, jobIds: job === undefined ? [] : [job], timer };
  }

  private reportBurst(): void {
    const burst = this.burst;
    if (!burst) return;
    clearTimeout(burst.timer);
    this.burst = undefined;
    this.burstLoggedAt = this.now();
    this.log.error({ jobsFailed: burst.count, jobIds: burst.jobIds, lastError: burst.lastError }, `${this.what}: ${burst.count} job(s) failed because Redis was unavailable or did not answer`);
  }

  /** Redis answers again: one line if an outage was reported. */
  recovered(): void {
    if (this.since === undefined) return;
    this.log.info({ downForMs: this.now() - this.since, suppressed: this.suppressed, errors: this.total, ...(this.jobsFailed > 0 ? { jobsFailed: this.jobsFailed, jobIds: this.jobIds } : {}) }, `${this.what}: Redis reachable again`);
    this.since = undefined;
    this.suppressed = 0;
    this.total = 0;
    this.jobsFailed = 0;
    this.jobIds = [];
  }

  /** The line of a burst of failed jobs still being counted, now (a worker that closed: before the process ends). */
  flush(): void {
    this.reportBurst();
  }
}

/** The events of a BullMQ Worker this reads (structurally: no bullmq import here). */
interface WorkerEvents {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'ready' | 'closed', listener: () => void): unknown;
}

/**
 * A BullMQ worker's outage reporting: its connection errors into `outage` (with `fields`, as `msg` when
 * not Redis being unreachable), its (re)connection as the recovery, and when it has closed the line of
 * a burst of failed jobs still being counted. Its `failed` handler calls outage.jobFailed itself.
 * `handled`: true for an error the caller has reported itself, as HandBacks.staleRenewal does (src/queues/hand-backs.ts).
 */
export function reportWorkerOutages(w: WorkerEvents, outage: RedisOutageLog, fields: Record<string, unknown>, msg: string, handled?: (err: Error) => boolean): void {
  w.on('error', (err) => {
    if (handled?.(err)) return;
    outage.error(err, fields, msg);
  });
  w.on('ready', () => outage.recovered());
  w.on('closed', () => outage.flush());
}

/**
 * pauseFetchWhileRedisRefuses: a BullMQ worker whose fetch of the next job Redis refuses spins.
 * Worker.mainLoop takes the next job through moveToActive (a Lua script whose first write, the LMOVE
 * of the job to active, is refused by a Redis at `maxmemory` with noeviction: "OOM command not
 * allowed"; likewise READONLY on a replica, MISCONF). BullMQ retries a connection error after
 * `runRetryDelay`, but any other error it emits and fetches again at once (worker.js, retryIfFailed
 * with onlyEmitError): with a job due, a full Redis drove the scheduler's worker through ~2,000 refused
 * scripts and error lines a second under `npm start` (57,000 in 30 s), a core of CPU for the process
 * and for Redis. Now a fetch that Redis refused or did not answer (isRedisUnreachableOrRefusing) waits
 * REFUSED_FETCH_PAUSE_MS before it reports the error, so the worker asks again about once a second and
 * takes its jobs as soon as Redis has room. A closing worker ends the wait at once. (Here, not in a
 * module of its own: a new module imported by all five worker modules, which process.ts imports at
 * once, made jest's ESM loader fail them with "request for … is not in cache".)
 */
export const REFUSED_FETCH_PAUSE_MS = 1_000;

type Fetch = (...args: unknown[]) => Promise<unknown>;

/** Resolves after `ms`, or at once when `signal` aborts (not node:timers/promises: the same jest race). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A write this worker's Redis node must accept before a stalled check may end an outage: the check can
 * succeed without writing (its script returns before its first write while the queue's stalled-check
 * key, which any worker of the queue sets, still exists), so its success alone does not say that Redis
 * takes writes again. A key beside the queue's own (same hash tag, so the same Cluster node), 1 s long.
 */
async function writeAccepted(worker: Worker): Promise<boolean> {
  const w = worker as unknown as { client: Promise<{ set: (k: string, v: string, px: 'PX', ms: number) => Promise<unknown> }>; keys: Record<string, string> };
  try {
    await (await w.client).set(`${w.keys['stalled-check']}:write-probe`, '1', 'PX', 1_000);
    return true;
  } catch {
    return false;
  }
}

/** How long, at most, a refused next tick is asked for again: half of this worker's lock (BullMQ's default 30 s). */
function nextTickRetryMs(worker: Worker): number {
  const lock = (worker as unknown as { opts?: { lockDuration?: unknown } }).opts?.lockDuration;
  return (typeof lock === 'number' && lock > 0 ? lock : 30_000) / 2;
}

type Upserter = { upsertJobScheduler: Fetch };

/**
 * A job scheduler's tick that a full Redis let the worker take: Redis runs a script that declares no
 * flags (each of BullMQ's) once its first write has gone through, and a write that frees memory (the
 * ZREM of a due tick from the delayed set, in the fetch) is not refused at `maxmemory`, so a tick that
 * falls due while Redis is full is moved to active and locked all the same. BullMQ 5 then makes the
 * scheduler's next tick (JobScheduler.upsertJobScheduler, producerId the taken tick), whose first
 * write (a ZADD) is refused; it emits "Failed to add repeatable job for next iteration" and leaves the
 * taken tick in active unprocessed, with no next tick: that scheduler (the sweep, every second in the
 * tests) produced nothing until its lock lapsed and a stalled check handed the tick back, 30–60 s after
 * the take, however soon Redis had room (test/integration/workers.redis-oom.test.ts failed on it in
 * fresh-clone CI whenever the sweep was the only tick due during its 5 s of OOM). Now a refused next
 * tick is asked for again once a second, like a refused fetch, for at most half of the taken tick's lock
 * (the lock manager renews it once the tick runs, so it runs with its lock held); a closing worker, an
 * error that is no refusal, or a longer refusal end the retries, and BullMQ's stalled check hands the
 * tick back as before. Each refusal is the worker's error (folded into its outage's lines).
 */
function retryNextTickWhileRedisRefuses(worker: Worker, closing: AbortSignal, onRefused: () => void): void {
  // Worker.jobScheduler: a getter (on BullMQ's prototype) of a promise of the worker's own JobScheduler,
  // made on first use; only nextJobFromJobData uses it (the next tick of a taken tick).
  let getter: (() => unknown) | undefined;
  for (let p: unknown = Object.getPrototypeOf(worker); p && !getter; p = Object.getPrototypeOf(p)) getter = Object.getOwnPropertyDescriptor(p, 'jobScheduler')?.get;
  if (!getter) return;
  const original = getter;
  const wrapped = new WeakSet<object>();
  const retryMs = nextTickRetryMs(worker);
  Object.defineProperty(worker, 'jobScheduler', {
    configurable: true,
    get: async (): Promise<unknown> => {
      const scheduler = (await original.call(worker)) as Upserter;
      if (wrapped.has(scheduler)) return scheduler;
      wrapped.add(scheduler);
      const upsert = scheduler.upsertJobScheduler.bind(scheduler) as Fetch;
      scheduler.upsertJobScheduler = async (...args: unknown[]): Promise<unknown> => {
        const since = performance.now();
        for (;;) {
          try {
            return await upsert(...args);
          } catch (err) {
            if (!isRedisRefusalError(err) || closing.aborted || performance.now() - since + REFUSED_FETCH_PAUSE_MS > retryMs) throw err;
            onRefused();
            worker.emit('error', err as Error);
            await pause(REFUSED_FETCH_PAUSE_MS, closing);
            if (closing.aborted) throw err;
          }
        }
      };
      return scheduler;
    },
  });
}

export function pauseFetchWhileRedisRefuses<W extends Worker>(worker: W, outage?: Pick<RedisOutageLog, 'recovered'>): W {
  const w = worker as unknown as { moveToActive: Fetch };
  const fetch = w.moveToActive.bind(worker) as Fetch;
  const closing = new AbortController();
  worker.on('closing', () => closing.abort());
  // This worker met a refusal (its fetch or its stalled check): only then may it end the outage. The
  // log can be shared (the sync shards' workers share one, and on a Redis Cluster their queues sit on
  // different nodes): a healthy shard's job or check says nothing of a full or read-only node's.
  let refused = false;
  const ended = (): void => {
    refused = false;
    outage?.recovered();
  };
  w.moveToActive = async (...args: unknown[]): Promise<unknown> => {
    try {
      const job = await fetch(...args);
      // A job taken (its move to active was written on this queue's node): Redis takes writes again, the
      // outage's end line (a Redis that refused writes never reconnects, so the worker's `ready` does not
      // come for it). Not a fetch that took none: a paused or rate-limited queue's writes nothing, and a
      // full Redis runs it.
      if (job && refused) ended();
      return job;
    } catch (err) {
      if (isRedisUnreachableOrRefusing(err)) {
        refused = true;
        if (!closing.signal.aborted) await pause(REFUSED_FETCH_PAUSE_MS, closing.signal);
      }
      throw err;
    }
  };
  retryNextTickWhileRedisRefuses(worker, closing.signal, () => {
    refused = true;
  });
  // An idle worker takes no job, but BullMQ's stalled check, a write script every stalledInterval (30 s),
  // is refused with the rest (OOM, READONLY) and opens the outage: a later check that Redis runs, and a
  // probe write that it accepts, end it (writeAccepted: the check alone can succeed without writing).
  // Before, nothing did (no end line ever, the next outage got no first line) unless a fetch had been
  // refused and a job was then taken.
  const s = worker as unknown as { moveStalledJobsToWait: () => Promise<void> };
  const check = s.moveStalledJobsToWait.bind(worker);
  s.moveStalledJobsToWait = async (): Promise<void> => {
    try {
      await check();
    } catch (err) {
      if (isRedisUnreachableOrRefusing(err)) refused = true;
      throw err;
    }
    if (refused && (await writeAccepted(worker))) ended();
  };
  return worker;
}

/**
 * A BullMQ worker's Redis outage handling, as each of the five workers has it: its fetch (and stalled
 * check, and a taken job scheduler tick's next tick: retryNextTickWhileRedisRefuses) paused while Redis
 * refuses (pauseFetchWhileRedisRefuses, which ends the outage once Redis takes
 * writes again), and its connection errors and reconnection reported into `outage` (reportWorkerOutages,
 * with the same `fields`, `msg` and `handled`).
 */
export function handleWorkerOutages<W extends Worker>(w: W, outage: RedisOutageLog, fields: Record<string, unknown>, msg: string, handled?: (err: Error) => boolean): void {
  pauseFetchWhileRedisRefuses(w, outage);
  reportWorkerOutages(w, outage, fields, msg, handled);
}
