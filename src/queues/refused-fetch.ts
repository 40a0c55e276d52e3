/**
 * A BullMQ worker whose fetch of the next job Redis refuses spins. Worker.mainLoop takes the next job
 * through moveToActive (a Lua script whose first write, the LMOVE of the job to active, is refused by a
 * Redis at `maxmemory` with noeviction: "OOM command not allowed"; likewise READONLY on a replica,
 * MISCONF). BullMQ retries a connection error after `runRetryDelay`, but any other error it emits and
 * fetches again at once (worker.js, retryIfFailed with onlyEmitError): with a job due, a full Redis
 * drove the scheduler's worker through ~2,000 refused scripts and error lines a second under `npm
 * start` (57,000 in 30 s), a core of CPU for the process and for Redis. Now a fetch that Redis refused
 * or did not answer (isRedisUnavailable) waits REFUSED_FETCH_PAUSE_MS before it reports the error, so
 * the worker asks again about once a second and takes its jobs as soon as Redis has room. A closing
 * worker ends the wait at once.
 */
import type { Worker } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRedisUnavailable } from '../store/redis.js';

export const REFUSED_FETCH_PAUSE_MS = 1_000;

type Fetch = (...args: unknown[]) => Promise<unknown>;

export function pauseFetchWhileRedisRefuses<W extends Worker>(worker: W): W {
  const w = worker as unknown as { moveToActive: Fetch };
  const fetch = w.moveToActive.bind(worker) as Fetch;
  const closing = new AbortController();
  worker.on('closing', () => closing.abort());
  w.moveToActive = async (...args: unknown[]): Promise<unknown> => {
    try {
      return await fetch(...args);
    } catch (err) {
      if (isRedisUnavailable(err) && !closing.signal.aborted) await sleep(REFUSED_FETCH_PAUSE_MS, undefined, { signal: closing.signal }).catch(() => undefined);
      throw err;
    }
  };
  return worker;
}
