/**
 * A full Redis (`maxmemory` reached with `maxmemory-policy noeviction`) refuses BullMQ's fetch of the
 * next job (moveToActive: "OOM command not allowed"). BullMQ fetches again at once after any error that
 * is not a connection error, so every worker with a job due spun: under `npm start` the scheduler's
 * worker alone sent ~2,000 refused scripts a second (57,000 error lines in 30 s). Now a refused fetch
 * waits a second (src/lib/redis-outage-log.ts, pauseFetchWhileRedisRefuses), and the workers take their jobs again once Redis has
 * room. Counted on the server: Redis's own `errorstat_OOM`. Real Redis, the service's workers and
 * scheduler (SWEEP_INTERVAL_MS 1000: a sweep tick is due every second).
 */
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { SCHEDULER_QUEUE } from '../../src/main/scheduler.js';
import { startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let admin: Redis;

beforeAll(async () => {
  svc = await startService({ workers: true, scheduler: true });
  admin = svc.redis.client() as Redis;
});
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await svc?.close();
});

async function oomErrors(): Promise<number> {
  const m = /errorstat_OOM:count=(\d+)/.exec(await admin.info('errorstats'));
  return m ? Number(m[1]) : 0;
}

test('workers facing a full Redis ask again about once a second, not in a loop, and process their jobs once it has room', async () => {
  // Redis fills up between jobs, not during one: a job whose completion Redis refuses stays active until
  // its lock lapses and the stalled check hands it back (≈ 30–60 s, docs/operations.md "Redis"), and the
  // scheduler's next sweep tick is made only when it completes. On this machine the first sweep was
  // often taken within ms of the start, before the test filled Redis, and it completed 60 s later.
  const first = new QueueEvents(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  try {
    await first.waitUntilReady();
    await new Promise<void>((resolve) => first.on('completed', ({ jobId }) => jobId.startsWith('repeat:mirror-sweep:') && resolve()));
  } finally {
    await first.close();
  }
  await admin.config('SET', 'maxmemory', '1');
  try {
    // A sweep tick falls due meanwhile (every second): the scheduler's worker cannot take it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const before = await oomErrors();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const perSecond = ((await oomErrors()) - before) / 3;
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
    await waitFor(async () => (await svc.api('/health/ready')).status === 200, 5_000, 100);
  } finally {
    await events.close();
  }
}, 60_000);
