/**
 * A sync run whose Redis write a full Redis refused (`maxmemory` with noeviction: "OOM command not
 * allowed") is handed back as delayed without using up one of its BullMQ attempts (10, backoff from
 * 1 s: a quarter of an hour of a full Redis failed it for good before), and runs again once Redis has
 * room. The job has a single attempt here, so the old code fails it on the first refusal.
 * Deterministic: the run's first write is made as Redis is made full. Real Redis, the service's real
 * sync workers.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { shardOf, syncQueueName } from '../../src/queues/queues.js';
import { startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let admin: Redis;
let queue: Queue;

beforeAll(async () => {
  svc = await startService({ workers: true });
  admin = svc.redis.client() as Redis;
  const name = syncQueueName('youtube', shardOf('soom', 's1', svc.rt.config.syncShards));
  queue = new Queue(name, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(name) });
}, 60_000);
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await queue?.close();
  await svc?.close();
});

test('a sync run refused by a full Redis (OOM) does not count as an attempt, and runs again once Redis has room', async () => {
  const service = svc.rt.syncService;
  const sync = service.sync.bind(service);
  let runs = 0;
  // The workers' service is this one: its first run's write finds Redis full.
  Object.assign(service, {
    sync: async (...args: Parameters<typeof sync>) => {
      if (runs++ === 0) {
        await admin.config('SET', 'maxmemory', '1');
        await svc.rt.redis.set(`${svc.rt.keys.queuePrefix('x')}:oom-probe`, 'x');
      }
      return sync(...args);
    },
  });
  const job = await queue.add('sync', { partnerId: 'soom', showId: 's1', targetId: 't1' }, { jobId: 'soom-1', attempts: 1 });

  await waitFor(async () => runs >= 1 && (await queue.getJobState(job.id!)) === 'delayed', 20_000, 50);
  // Before: the job failed (its one attempt used), or stayed active with its failure refused.
  expect((await queue.getJob(job.id!))?.attemptsMade).toBe(0);

  await admin.config('SET', 'maxmemory', '0');
  // Run again (this show does not exist: what that run comes to is not this test's).
  await waitFor(async () => runs >= 2, 20_000, 100);
}, 60_000);
