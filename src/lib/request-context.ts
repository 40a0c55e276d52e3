/**
 * Request ids that follow an HTTP request into the work it causes. The API takes the caller's
 * `x-request-id` (when it is a plain id) or makes one, answers it in `x-request-id`, and runs the
 * request inside an AsyncLocalStorage context; producers copy the current id into the job data
 * (`requestId`), and workers run each job inside a context with the job's id. Every log line written
 * from a logger made by createLogger (src/lib/logger.ts) inside such a context carries `requestId`,
 * so one id finds the request, its sync / attribution / delivery / reconciliation jobs, and the jobs
 * those cause (a mirror.updated delivery carries the id of the sync that emitted it).
 *
 * Coalesced sync jobs: the ingest writes the request id into the show's sync-dispatch entry, and the
 * dispatcher (src/mirror/sync.dispatcher.ts) gives each job the id of the first event of its batch for
 * that show; an event whose sync was merged into a job already waiting keeps that job's id (BullMQ
 * deduplication keeps the first job's data). The dispatcher's debug line lists each job with the
 * request ids of the events it covers.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Logger } from 'pino';

/** The platform-request attempt the code runs in (src/targets/attempt-deadline.ts, which owns its meaning). */
export interface AttemptContext {
  /** Undefined: no deadline (a recovery lookup that only takes its step's prepaid token: withPrepaid). */
  deadline?: number | undefined;
  prepaid?: string | undefined;
}

/**
 * What the current work runs with: its request id, and inside an intent step's attempt the attempt
 * (src/targets/attempt-deadline.ts). One AsyncLocalStorage for both: on Node 20 every enabled
 * AsyncLocalStorage copies its store onto every promise made anywhere in the process (a promise hook
 * per storage), so two storages were two copies per promise — ≈ 1.7 % of a mirror worker's busy time
 * per pin sync in a profile. Each `run` makes a new object, a copy of the current one with one field
 * replaced (withAttempt, withRequestId, withRunTokens); an entered one is never changed, except the
 * attempt's `prepaid` (used once) and the counts in the sync run's `runTokens` map.
 */
interface Context {
  readonly requestId?: string | undefined;
  readonly attempt?: AttemptContext | undefined;
  /** The window-limiter tokens of the current sync run (src/store/rate-limiter.ts, which owns its meaning). */
  readonly runTokens?: RunTokens | undefined;
}

/** Tokens one sync run took, per limiter (its window key): filled in as the run's acquires are granted. */
export type RunTokens = Map<string, number>;

const storage = new AsyncLocalStorage<Context>();

/** The attempt of the current context, if any (attempt-deadline.ts). */
export function currentAttempt(): AttemptContext | undefined {
  return storage.getStore()?.attempt;
}

/**
 * Runs `fn` with `attempt` as the current attempt (undefined: none), the request id kept (attempt-deadline.ts).
 * The object itself is stored, not a copy: withPrepaid's caller (IntentRepository.lookUp) reads
 * whether the token in its `prepaid` was used from that object once `fn` is done.
 */
export function withAttempt<T>(attempt: AttemptContext | undefined, fn: () => T): T {
  const cur = storage.getStore();
  if (!cur?.attempt && !attempt) return fn();
  return storage.run({ ...cur, attempt }, fn);
}

/** The limiter tokens of the current sync run, if `fn` runs in one (withRunTokens). */
export function currentRunTokens(): RunTokens | undefined {
  return storage.getStore()?.runTokens;
}

/** Runs `fn` as one sync run for the limiters: its tokens are counted from none (the request id and attempt kept). */
export function withRunTokens<T>(fn: () => T): T {
  return storage.run({ ...storage.getStore(), runTokens: new Map() }, fn);
}

/** What the API accepts from a caller's `x-request-id`; anything else is replaced by a new id. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Random bytes for request ids, drawn 9 at a time from a pool refilled 512 ids at once: one
 * randomBytes call per request was a visible part of a redirect's CPU.
 */
const ID_BYTES = 9;
let pool = Buffer.alloc(0);
let poolAt = 0;
export function newRequestId(): string {
  if (poolAt + ID_BYTES > pool.length) {
    pool = randomBytes(ID_BYTES * 512);
    poolAt = 0;
  }
  const id = pool.toString('base64url', poolAt, poolAt + ID_BYTES);
  poolAt += ID_BYTES;
  return `req_${id}`;
}

export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** Runs `fn` with `requestId` as the current id (no context when undefined), the current attempt kept. */
export function withRequestId<T>(requestId: string | undefined, fn: () => T): T {
  if (!requestId) return fn();
  return storage.run({ ...storage.getStore(), requestId }, fn);
}

/** `data` with the current request id added (unchanged outside a request or job context). */
export function withCurrentRequestId<T extends object>(data: T): T & { requestId?: string } {
  const requestId = currentRequestId();
  return requestId ? { ...data, requestId } : data;
}

/** The request id a job carries (set by the producer), if it is a plain id. */
export function jobRequestId(job: Pick<Job, 'data'>): string | undefined {
  const id = (job.data as { requestId?: unknown } | undefined)?.requestId;
  return typeof id === 'string' && REQUEST_ID_PATTERN.test(id) ? id : undefined;
}

/**
 * A BullMQ processor run in its job's request context, with a debug line when a job starts and
 * ends (queue, job id, attempt; the request id through the logger's mixin).
 */
export function traced<J extends Job, R>(log: Logger, processor: (job: J, token?: string) => Promise<R>): (job: J, token?: string) => Promise<R> {
  return (job, token) =>
    withRequestId(jobRequestId(job), () => {
      // Without debug lines the job runs as it is: no line objects and no extra async frame per job.
      if (!log.isLevelEnabled('debug')) return processor(job, token);
      return debugged(log, job, () => processor(job, token));
    });
}

async function debugged<R>(log: Logger, job: Job, run: () => Promise<R>): Promise<R> {
  const at = { queue: job.queueName, jobId: job.id, attempt: job.attemptsMade + 1 };
  log.debug(at, 'job started');
  try {
    const result = await run();
    log.debug({ ...at, result }, 'job finished');
    return result;
  } catch (err) {
    log.debug({ ...at, err: { message: (err as Error).message, name: (err as Error).name } }, 'job did not finish');
    throw err;
  }
}
