/**
 * A reconciliation run refused by a full Redis (`maxmemory` with noeviction: "OOM command not allowed")
 * is handed back as delayed without using up one of its BullMQ attempts, and runs to completion once
 * Redis has room. Before, each refused run was one of the job's 5 attempts (backoff from 5 s): about a
 * minute of a full Redis failed the run for good (and marking it failed was refused too, so it stayed
 * `running`). Here the job has a single attempt, so the old code fails it on the first refusal.
 *
 * Deterministic: Redis is made full (`CONFIG SET maxmemory 1`) as the worker starts the run, so the
 * run's first write is refused. Real Redis, the service's real reconcile worker.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RECONCILE_QUEUE } from '../../src/reconcile/reconcile.service.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let admin: Redis;
let queue: Queue;

beforeAll(async () => {
  svc = await startService({ workers: true });
  admin = svc.redis.client() as Redis;
  // One attempt: a refused run that counted as an attempt fails the job for good at once.
  Object.assign(svc.rt.reconcile, { retry: { attempts: 1, backoffMs: 50 } });
  queue = new Queue(RECONCILE_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(RECONCILE_QUEUE) });
  await createPartner(svc, 'room');
}, 60_000);
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await queue?.close();
  await svc?.close();
});

test('a reconciliation run refused by a full Redis (OOM) does not count as an attempt, and completes once Redis has room', async () => {
  const service = svc.rt.reconcile;
  const run = service.run.bind(service);
  let runs = 0;
  // The worker's service is this one: its first run finds Redis full.
  Object.assign(service, {
    run: async (...args: Parameters<typeof run>) => {
      if (runs++ === 0) await admin.config('SET', 'maxmemory', '1');
      return run(...args);
    },
  });
  const now = Date.now();
  const res = await svc.api('/v1/partners/room/reconciliations', { json: { from: new Date(now - 86_400_000).toISOString(), to: new Date(now).toISOString() } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };

  await waitFor(async () => runs >= 1 && (await queue.getJobState(id)) === 'delayed', 20_000, 50);
  // Before: the job failed (its one attempt used), or stayed active with its failure refused.
  expect((await queue.getJob(id))?.attemptsMade).toBe(0);

  await admin.config('SET', 'maxmemory', '0');
  await waitFor(async () => {
    const r = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as { status: string };
    return r.status === 'completed';
  }, 20_000, 100);
  expect(runs).toBe(2);
}, 60_000);
