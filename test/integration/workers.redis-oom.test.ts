/**
 * A full Redis (`maxmemory` reached with `maxmemory-policy noeviction`) refuses BullMQ's fetch of the
 * next job (moveToActive: "OOM command not allowed"). BullMQ fetches again at once after any error that
 * is not a connection error, so every worker with a job due spun: under `npm start` the scheduler's
 * worker alone sent ~2,000 refused scripts a second (57,000 error lines in 30 s). Now a refused fetch
 * waits a second (src/lib/redis-outage-log.ts, pauseFetchWhileRedisRefuses), and the workers take their jobs again once Redis has
 * room. Counted on the server: Redis's own `errorstat_OOM`. Real Redis, the service's workers and
 * scheduler (SWEEP_INTERVAL_MS 1000: a sweep tick is due every second).
 *
 * A tick that falls due while Redis is full is taken all the same (Redis lets BullMQ's fetch script
 * finish once its first write, the ZREM of the due tick, has gone through: a write that frees memory is
 * not refused), and the making of its next tick is refused: BullMQ left the taken tick in active
 * unprocessed with no next tick, so the sweep paused until the stalled check handed it back, 30–60 s
 * after the take; now the worker asks for that next tick again once a second and runs the tick as soon
 * as Redis has room (src/lib/redis-outage-log.ts, retryNextTickWhileRedisRefuses). This test passed only
 * when another tick due at the start (readiness, reconcile-schedules: every minute, the first at once)
 * was taken in the same fetch as the sweep's, which then waited in `wait`, where the fetch's first write
 * is refused; it failed in fresh-clone CI when those had run before Redis filled up. It fills Redis once
 * they have run, so the sweep's tick is the one taken while Redis is full, every run.
 *
 * That taken tick holds the scheduler's worker in the retry of its next tick (a fetch that never fails),
 * so no fetch of a service worker is refused in that timeline, and the refused-fetch pause went untested
 * (mutant refused-fetch-no-pause survived). A worker wired as the services' are (handleWorkerOutages),
 * started once Redis is full with a job already in `wait`, meets the refusal every run: its fetch's first
 * write, the LMOVE of that job to active, is refused.
 */
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { handleWorkerOutages, RedisOutageLog } from '../../src/lib/redis-outage-log.js';
import { SCHEDULER_QUEUE } from '../../src/main/scheduler.js';
import { logSink } from '../helpers/log-sink.js';
import { startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let admin: Redis;
/** What a test started of its own (waitingJob's worker and queue): closed after it, also when it failed. */
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  svc = await startService({ workers: true, scheduler: true });
  admin = svc.redis.client() as Redis;
});
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  for (const close of closers) await close().catch(() => undefined);
  admin?.disconnect();
  await svc?.close();
});

async function oomErrors(): Promise<number> {
  const m = /errorstat_OOM:count=(\d+)/.exec(await admin.info('errorstats'));
  return m ? Number(m[1]) : 0;
}

test('workers facing a full Redis ask again about once a second, not in a loop, and process their jobs once it has room', async () => {
  // The first ticks of the minute schedulers (due at the start) run before Redis fills up: the sweep's
  // is then the only tick that falls due while Redis is full (see the file's comment).
  const queue = new Queue(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  try {
    await waitFor(async () => {
      for (const id of ['readiness', 'reconcile-schedules']) if (((await queue.getJobScheduler(id))?.next ?? 0) < Date.now() + 30_000) return false;
      return (await queue.getActiveCount()) === 0;
    }, 20_000, 50);
  } finally {
    await queue.close();
  }
  // Then Redis fills up between sweeps (after one completed), so the one taken while it is full is a tick
  // that fell due meanwhile.
  const first = new QueueEvents(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  try {
    await first.waitUntilReady();
    await new Promise<void>((resolve) => first.on('completed', ({ jobId }) => jobId.startsWith('repeat:mirror-sweep:') && resolve()));
  } finally {
    await first.close();
  }
  // A job already waiting when Redis fills up, for a worker that starts fetching once it is full.
  const waiting = await waitingJob();
  await admin.config('SET', 'maxmemory', '1');
  try {
    waiting.start();
    // A sweep tick falls due meanwhile (every second): the scheduler's worker cannot take it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const before = await oomErrors();
    const refusedBefore = waiting.refused();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const perSecond = ((await oomErrors()) - before) / 3;
    // That worker's fetch, refused each time: about once a second (3 or 4 in 3 s), not at once again
    // (thousands).
    expect(waiting.refused() - refusedBefore).toBeLessThan(8);
    // Before: over a thousand a second. Now about one per worker with a job due, plus the few other
    // writes the processes try on their timers.
    expect(perSecond).toBeLessThan(30);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  const events = new QueueEvents(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  try {
    await events.waitUntilReady();
    const swept = new Promise<string>((resolve) => events.on('completed', ({ jobId }) => jobId.startsWith('repeat:mirror-sweep:') && resolve(jobId)));
    await expect(Promise.race([swept, new Promise((_, reject) => setTimeout(() => reject(new Error('no sweep tick once Redis had room')), 10_000).unref())])).resolves.toMatch(/^repeat:mirror-sweep:/);
    // Bounded as the sweep above (10 s; before, the tick waited 30–60 s for the stalled check): a loaded
    // machine may take a few seconds more than the second it takes otherwise.
    await waitFor(async () => (await svc.api('/health/ready')).status === 200, 10_000, 100);
    // The waiting job is taken within about a second too (its worker asks again once a second).
    await waitFor(async () => (await waiting.job.getState()) === 'completed', 10_000, 100);
  } finally {
    await events.close();
  }
}, 60_000);

/**
 * A job in `wait` of a queue of its own, and a worker of that queue wired as the services' are (not
 * fetching until `start()`); `refused()`: how many of its errors were Redis' OOM refusals so far.
 */
async function waitingJob(): Promise<{ job: Awaited<ReturnType<Queue['add']>>; start: () => void; refused: () => number }> {
  const name = 'oom-waiting';
  const opts = { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(name) };
  const queue = new Queue(name, opts);
  const worker = new Worker(name, async () => 'done', { ...opts, autorun: false });
  handleWorkerOutages(worker, new RedisOutageLog(logSink('error').log, name), {}, `${name} worker error`);
  let refused = 0;
  worker.on('error', (err) => {
    if (/OOM command not allowed/.test(err.message)) refused++;
  });
  await worker.waitUntilReady();
  const job = await queue.add('j', {});
  let running: Promise<void> | undefined;
  closers.push(async () => {
    await worker.close();
    await running;
    await queue.close();
  });
  return {
    job,
    start: () => {
      running = worker.run().catch(() => undefined);
    },
    refused: () => refused,
  };
}
