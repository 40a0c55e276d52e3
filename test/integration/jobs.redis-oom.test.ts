/**
 * A reconciliation, attribution or sync run refused by a full Redis (`maxmemory` with noeviction: "OOM
 * command not allowed") is handed back as delayed without using up one of its BullMQ attempts, and
 * runs again once Redis has room (src/queues/hand-backs.ts, handBackWhileRedisRefuses). Before, each
 * refused run was one of the job's attempts: a reconciliation (5, backoff from 5 s) was failed for good
 * after about a minute of a full Redis (and marking it failed was refused too, so it stayed `running`),
 * a sync (10 from 1 s) after a quarter of an hour, an attribution (12 from 1 s) after about an hour.
 * Each job here has a single attempt, so the old code fails it on the first refusal (or leaves it
 * active, its failure refused too): it is never delayed.
 *
 * Deterministic: Redis is made full (`CONFIG SET maxmemory 1`) as the worker starts the run, and the
 * run's first write is refused. Real Redis, the service's real workers (one service for the file).
 *
 * The hand-back waits REDIS_REFUSED_RETRY_MS (5 s by default), here 2 s: the test gives Redis room
 * again a few round trips after it sees the job delayed, well before that (a loaded machine has held
 * such a step 800 ms), so each job has one refused run and one that goes through.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RECONCILE_QUEUE } from '../../src/reconcile/reconcile.service.js';
import { ATTRIBUTION_QUEUE } from '../../src/queues/attribution.queue.js';
import { shardOf, syncQueueName } from '../../src/queues/queues.js';
import { createPartner, orderEvent, startService, waitFor, type TestService } from '../helpers/service.js';

/** REDIS_REFUSED_RETRY_MS here: how long a refused run's job waits (docs/testing.md "CI time"). */
const REFUSED_RETRY_MS = 2_000;
let svc: TestService;
let admin: Redis;
const queues: Queue[] = [];

beforeAll(async () => {
  svc = await startService({ workers: true, env: { REDIS_REFUSED_RETRY_MS: String(REFUSED_RETRY_MS) } });
  admin = svc.redis.client() as Redis;
  // One attempt: a refused run that counted as an attempt fails the job for good at once.
  Object.assign(svc.rt.reconcile, { retry: { attempts: 1, backoffMs: 50 } });
  await createPartner(svc, 'room');
}, 60_000);
afterAll(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await Promise.all(queues.map((q) => q.close()));
  await svc?.close();
});

function queue(name: string): Queue {
  const q = new Queue(name, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(name) });
  queues.push(q);
  return q;
}

/**
 * The worker's service `target` (the one the workers call): its first call of `method` makes Redis
 * full first (and, `write`, has a write refused, for a run that might write nothing). Counts the calls.
 */
function fullOnFirstRun<T extends object>(target: T, method: keyof T & string, write = false): { runs: number } {
  const calls = { runs: 0 };
  const original = (target[method] as (...a: unknown[]) => Promise<unknown>).bind(target);
  Object.assign(target, {
    [method]: async (...args: unknown[]) => {
      if (calls.runs++ === 0) {
        await admin.config('SET', 'maxmemory', '1');
        if (write) await svc.rt.redis.set(`${svc.rt.keys.queuePrefix('oom')}:probe`, 'x');
      }
      return original(...args);
    },
  });
  return calls;
}

/** Waits for `jobId` to be handed back (delayed, no attempt used, for REDIS_REFUSED_RETRY_MS), then gives Redis room. */
async function handedBackThenRoom(q: Queue, jobId: string, calls: { runs: number }): Promise<void> {
  await waitFor(async () => calls.runs >= 1 && (await q.getJobState(jobId)) === 'delayed', 20_000, 50);
  const job = await q.getJob(jobId);
  // Before: the job failed (its one attempt used), or stayed active with its failure refused.
  expect(job?.attemptsMade).toBe(0);
  // Delayed by the setting, not the 5 s default.
  expect(job?.delay).toBeGreaterThan(0);
  expect(job?.delay).toBeLessThanOrEqual(REFUSED_RETRY_MS);
  await admin.config('SET', 'maxmemory', '0');
}

test('a reconciliation run refused by a full Redis (OOM) does not count as an attempt, and completes once Redis has room', async () => {
  const calls = fullOnFirstRun(svc.rt.reconcile, 'run');
  const now = Date.now();
  const res = await svc.api('/v1/partners/room/reconciliations', { json: { from: new Date(now - 86_400_000).toISOString(), to: new Date(now).toISOString() } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  await handedBackThenRoom(queue(RECONCILE_QUEUE), id, calls);
  await waitFor(async () => ((await (await svc.api(`/v1/reconciliations/${id}`)).json()) as { status: string }).status === 'completed', 20_000, 100);
  expect(calls.runs).toBe(2);
}, 60_000);

test('an attribution run refused by a full Redis (OOM) does not count as an attempt, and is handled once Redis has room', async () => {
  const calls = fullOnFirstRun(svc.rt.attribution, 'handlePartnerEvent');
  const q = queue(ATTRIBUTION_QUEUE);
  await q.add('event', { partnerId: 'room', eventId: 'ev-oom-1', event: orderEvent('o-oom-1') }, { jobId: 'ev-oom-1', attempts: 1 });
  await handedBackThenRoom(q, 'ev-oom-1', calls);
  await waitFor(async () => (await q.getJobState('ev-oom-1')) === 'completed', 20_000, 100);
  expect(calls.runs).toBe(2);
}, 60_000);

test('a sync run refused by a full Redis (OOM) does not count as an attempt, and runs again once Redis has room', async () => {
  const calls = fullOnFirstRun(svc.rt.syncService, 'sync', true);
  // The runs recorded in the show's activity (src/main/process.ts onRun).
  const recorded: Array<{ outcome?: unknown; error?: unknown }> = [];
  const append = svc.rt.activity.append.bind(svc.rt.activity);
  Object.assign(svc.rt.activity, { append: (...args: Parameters<typeof append>) => (recorded.push(args[2] as { outcome?: unknown; error?: unknown }), append(...args)) });
  const q = queue(syncQueueName('youtube', shardOf('room', 's1', svc.rt.config.syncShards)));
  await q.add('sync', { partnerId: 'room', showId: 's1', targetId: 't1' }, { jobId: 'room-s1', attempts: 1 });
  await handedBackThenRoom(q, 'room-s1', calls);
  // Run again (this show does not exist: what that run comes to is not this test's).
  await waitFor(async () => calls.runs >= 2, 20_000, 100);
  // The hand-back is no run of the show's to record: its record would be refused as well (a warning
  // line per hand-back, every 5 s per job for the whole of a long outage).
  expect(recorded.filter((r) => r.outcome === 'delayed' && /^Redis refused/.test(String(r.error)))).toEqual([]);
}, 60_000);
