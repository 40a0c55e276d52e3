/**
 * A scheduler process whose clock runs ahead (libfaketime, an hour) against Redis and an API on the
 * real clock. BullMQ promotes a delayed job by the clock of the worker that fetches it, so that
 * process ran a partner's reconcile tick as soon as its own clock passed the tick: the run's period
 * (ending at the tick) was read before it had ended, and with `reconcileLookbackDays: 1` no later run
 * covered its tail. Now the tick runs once Redis's clock (TIME, the one all processes share) has
 * passed it. A real workers/scheduler.ts child process; redis-server on the real clock.
 */
import { existsSync } from 'node:fs';
import { Queue } from 'bullmq';
import { SCHEDULER_QUEUE } from '../../src/main/scheduler.js';
import { serviceEnv } from '../helpers/npm-start.js';
import { testPort } from '../helpers/ports.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) => existsSync(p));

let svc: TestService;
let child: WorkerProcess | undefined;
let queue: Queue;

beforeAll(async () => {
  expect(LIBFAKETIME).toBeDefined(); // Debian's libfaketime (docs/testing.md, "Dates")
  svc = await startService();
  queue = new Queue(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  child = spawnWorker(
    serviceEnv(svc.redis.env, await testPort(), { KEY_PREFIX: svc.config.keyPrefix, LD_PRELOAD: LIBFAKETIME!, FAKETIME: '+1h', FAKETIME_DONT_FAKE_MONOTONIC: '1' }),
    'workers/scheduler.ts',
  );
  // Started once its fixed job schedulers are there (its worker is made right after).
  await waitFor(async () => (await queue.getJobScheduler('mirror-sweep')) ?? undefined, 60_000, 200);
}, 90_000);
afterAll(async () => {
  await child?.kill('SIGKILL');
  await queue?.close();
  await svc?.close();
});

async function redisNow(): Promise<number> {
  const [s, us] = await svc.rt.redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

test("a partner's tick fetched early by a scheduler whose clock runs an hour ahead is run once Redis's clock has passed it", async () => {
  await createPartner(svc, 'ahead', { reconcileCron: '0 3 * * *', reconcileLookbackDays: 1 });
  // A tick a few seconds away by Redis's clock, as BullMQ's job scheduler leaves it (a delayed job
  // `repeat:<scheduler>:<tick>`; one colon less here, as BullMQ allows a custom id): the child's clock
  // has passed it by an hour.
  const tick = (await redisNow()) + 4000;
  await queue.add('reconcile-partner', { partnerId: 'ahead' }, { jobId: `repeat:reconcile-ahead:${tick}`, delay: 4000, removeOnComplete: 100, removeOnFail: 100 });
  const listed = await waitFor(async () => {
    const { items } = await svc.rt.reconcile.list('ahead', undefined, 10);
    return items.length > 0 ? items : undefined;
  }, 30_000, 50);
  // Requested no earlier than its period's end by the shared clock (before: at once, 4 s before it).
  expect(await redisNow()).toBeGreaterThanOrEqual(tick);
  expect(listed.map((r) => ({ trigger: r.trigger, from: r.from, to: r.to }))).toEqual([{ trigger: 'scheduled', from: new Date(tick - 86_400_000).toISOString(), to: new Date(tick).toISOString() }]);
  const job = await waitFor(async () => {
    const j = await queue.getJob(`repeat:reconcile-ahead:${tick}`);
    return j?.finishedOn ? j : undefined;
  }, 10_000, 50);
  expect({ failed: job.failedReason ?? null, runs: job.returnvalue as unknown }).toEqual({ failed: null, runs: [listed[0]!.id] });
}, 60_000);
