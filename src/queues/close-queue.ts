/**
 * Closing a BullMQ handle (Queue, QueueEvents, FlowProducer, Worker) whose start-up may still be under
 * way, without an unhandled 'error'.
 *
 * BullMQ 5.81 (dist/esm/classes/redis-connection.js): each handle's RedisConnection starts with
 * `this.initializing = this.init(); this.initializing.catch(err => this.emit('error', err))`, and its
 * close() on a shared connection (an ioredis client passed in: all of ours) neither waits for init()
 * nor disconnects, but ends with `this.removeAllListeners()` — the handle's error forwarding included.
 * A handle closed right after it was made (a process stopped at once after its start) therefore had
 * its init() still waiting on Redis (its INFO, or the client's 'ready'); the runtime then ends the
 * shared client (runtime.close()), that init() fails ("Connection is closed.", on a Cluster "Cluster
 * isn't ready and enableOfflineQueue options is false"), and the RedisConnection emits 'error' with no
 * listener: EventEmitter throws it from that catch, an unhandled rejection that ends the process
 * (CI, test/integration/links.test.ts on the Cluster).
 */
import type { EventEmitter } from 'node:events';

/** How long a close waits for a handle's start-up to end, then (bounded: see closeQueue) for its close. */
export const CLOSE_WAIT_MS = 1000;

/** The promise's value, or null when it fails or takes longer than `ms` (the promise is left to finish alone). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
    timer.unref();
  });
  return Promise.race([p.catch(() => null), late]).finally(() => clearTimeout(timer));
}

/** What closeQueue needs of a BullMQ Queue, QueueEvents, FlowProducer or Worker. */
export interface BullHandle {
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

const ignore = (): void => undefined;

/**
 * Closes a BullMQ handle: first waits (at most `boundMs`; a failure is ignored) for its start-up to end,
 * so that a start-up failing now is forwarded to the handle (which has an error listener from here on)
 * rather than after the close removed the forwarding; then closes it, within `boundMs` too (defensive: BullMQ
 * 5.81's close of a handle on a shared connection neither sends QUIT nor waits, so it cannot hang today;
 * the bound keeps a later version's from holding a shutdown) unless `boundClose` is false (a Worker: its close waits for its running jobs, as long as they
 * take). A start-up still waiting after `boundMs` (Redis not answering) may fail only after the close:
 * its connection objects get an error listener once the close removed theirs. BullMQ's close on a shared
 * connection ends within the same turn, so nothing can fail in between.
 */
export async function closeQueue(handle: BullHandle, boundMs = CLOSE_WAIT_MS, boundClose = true): Promise<void> {
  handle.on('error', ignore);
  try {
    await within(handle.waitUntilReady(), boundMs);
    if (boundClose) await within(handle.close(), boundMs);
    else await handle.close();
  } finally {
    // BullMQ's own objects (QueueBase.connection; a Worker's blockingConnection too): not in its typings' public part.
    const inner = handle as unknown as { connection?: EventEmitter; blockingConnection?: EventEmitter };
    for (const c of [inner.connection, inner.blockingConnection]) c?.on('error', ignore);
  }
}
