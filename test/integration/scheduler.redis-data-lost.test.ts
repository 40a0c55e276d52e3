/**
 * A Redis that comes back without its data (restarted without persistence, a failover to a replica
 * that had not got the keys, a FLUSHALL) has none of the scheduler's BullMQ job schedulers. They were
 * added only when the scheduler process started, so from then on the running scheduler produced no
 * tick at all — no mirror sweep, no reconcile-schedules (so no per-partner reconciliation cron and
 * no audit settle), no readiness check — until someone restarted it, while it looked healthy. Found
 * by stopping the Redis of a running `npm start` (shutdown nosave) and starting it again: the API and
 * the workers recovered, `{q:scheduler}:scheduler:repeat:*` never came back. Real Redis and BullMQ.
 */
import { Queue, QueueEvents } from 'bullmq';
import { SCHEDULER_QUEUE } from '../../src/main/scheduler.js';
import { masterNodes } from '../helpers/redis-cluster.js';
import { startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let queue: Queue;
let events: QueueEvents | undefined;

beforeAll(async () => {
  svc = await startService({ workers: true, scheduler: true }); // SWEEP_INTERVAL_MS 1000
  queue = new Queue(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
});
afterAll(async () => {
  await events?.close();
  await queue?.close();
  await svc?.close();
});

const FIXED = ['mirror-sweep', 'reconcile-schedules', 'readiness'];

async function present(): Promise<string[]> {
  const out: string[] = [];
  for (const id of FIXED) if (await queue.getJobScheduler(id)) out.push(id);
  return out;
}

test('the scheduler puts its job schedulers back after Redis lost its data, and the sweep ticks again', async () => {
  expect(await present()).toEqual(FIXED);
  const admin = svc.redis.client();
  try {
    for (const node of await masterNodes(admin)) await node.flushall(); // every master of a cluster
  } finally {
    admin.disconnect();
  }
  expect(await present()).toEqual([]);
  // Within a few sweep intervals every fixed job scheduler is back...
  await waitFor(async () => (await present()).length === FIXED.length || undefined, 15_000, 100);
  // ...and its ticks are processed again.
  events = new QueueEvents(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  await events.waitUntilReady();
  const swept = new Promise<string>((resolve) => {
    events!.on('completed', ({ jobId }) => {
      if (jobId.startsWith('repeat:mirror-sweep:')) resolve(jobId);
    });
  });
  await expect(Promise.race([swept, new Promise((_, reject) => setTimeout(() => reject(new Error('no sweep tick after the flush')), 10_000).unref())])).resolves.toMatch(/^repeat:mirror-sweep:/);
}, 60_000);
