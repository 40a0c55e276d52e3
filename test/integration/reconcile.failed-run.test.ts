/**
 * A reconciliation run whose job fails for good. run() throwing something that is no target's report
 * error (a Redis reply, a bug) on every attempt left the run `running` forever: GET never showed the
 * failure and the partner never heard. The last attempt now marks the run `failed` (a fixed, non-secret
 * `error`, `completedAt`) and emits `reconciliation.completed` with status `failed`; the write compares
 * on the stored status, so a run that finished meanwhile is never overwritten, and the event is keyed by
 * run id (one message however often it is told). A scheduled tick processed again (request() with
 * `once`) that finds its run finished returns it without adding its job again (the old job may be gone
 * through removeOnComplete/removeOnFail, and the period would run once more).
 *
 * Real Redis, real BullMQ worker (the worker role in this process), real outbound delivery to a local
 * receiver. The failure is real too: the partner's legacy heal hash is a string, so the run's heal read
 * (HVALS) gets a WRONGTYPE reply on every attempt. The job's retries are shortened through the service's
 * `retry` (2 attempts, 50 ms backoff; 5 from 5 s by default).
 */
import { createServer, type Server } from 'node:http';
import { Queue } from 'bullmq';
import { RECONCILE_QUEUE } from '../../src/reconcile/reconcile.service.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let queue: Queue;
let receiver: Server;
const received: { id: string; status: string; error?: string }[] = [];

type Run = { id: string; status: string; error?: string; completedAt?: string; summary: unknown };

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const msg = JSON.parse(body) as { type: string; data: { id: string; status: string; error?: string } };
      if (msg.type === 'reconciliation.completed') received.push(msg.data);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  svc = await startService({ workers: true });
  // Shorter retries for this test (a field of the service read when a job is added).
  Object.assign(svc.rt.reconcile, { retry: { attempts: 2, backoffMs: 50 } });
  queue = new Queue(RECONCILE_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(RECONCILE_QUEUE) });
  const port = (receiver.address() as { port: number }).port;
  for (const p of ['doomed', 'fine']) {
    await createPartner(svc, p);
    const ep = await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: `http://127.0.0.1:${port}/${p}`, events: ['reconciliation.completed'] } });
    expect(ep.status).toBe(201);
  }
  // Every run of 'doomed' throws a non-target error when it reads the heals it remembered.
  await svc.rt.redis.set(svc.rt.keys.reconHealed('doomed'), 'not a hash');
}, 60_000);
afterAll(async () => {
  await queue?.close();
  await svc?.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

const run = async (id: string): Promise<Run> => (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as Run;
const period = (): { from: string; to: string } => ({ from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date().toISOString() });

test('a run whose job fails on every attempt becomes failed, with an error, and the partner is told', async () => {
  const res = await svc.api('/v1/partners/doomed/reconciliations', { json: period() });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };

  const failed = await waitFor(async () => {
    const r = await run(id);
    return r.status === 'failed' ? r : undefined;
  }, 20_000, 50);
  expect(failed.error).toEqual(expect.any(String));
  expect(failed.error).not.toMatch(/WRONGTYPE|hash|at .*\.ts/); // the cause is logged, not shown
  expect(Date.parse(failed.completedAt!)).toBeGreaterThan(0);
  // Its job failed after both attempts (the run is marked on the last one, just before the job fails).
  const job = await waitFor(async () => {
    const j = await queue.getJob(id);
    return j?.finishedOn ? j : undefined;
  }, 20_000, 50);
  expect(await job.getState()).toBe('failed');
  expect(job.attemptsMade).toBe(2);

  const hook = await waitFor(async () => received.find((d) => d.id === id), 20_000, 50);
  expect(hook).toMatchObject({ id, status: 'failed', error: failed.error });
  const list = (await (await svc.api('/v1/partners/doomed/reconciliations')).json()) as { reconciliations: Run[] };
  expect(list.reconciliations.find((r) => r.id === id)).toMatchObject({ status: 'failed', error: failed.error });
  expect(await svc.rt.redis.zscore(svc.rt.keys.reconQueued(), id)).toBeNull();
}, 60_000);

test('a run whose job BullMQ fails for stalling too often (its processor never called) becomes failed', async () => {
  // A run whose worker died mid-run again and again: the record says running, and BullMQ's stall check
  // marked its job to fail when next taken (the `defa` field moveStalledJobsToWait sets past
  // maxStalledCount). The worker fails it without calling the processor; the failed handler marks the run.
  const now = new Date().toISOString();
  const stalled = { id: 'rec_stalled', partnerId: 'fine', trigger: 'manual', status: 'running', ...period(), createdAt: now, startedAt: now, summary: null, discrepancies: [] };
  await svc.rt.redis.set(svc.rt.keys.reconciliation(stalled.id), JSON.stringify(stalled));
  await queue.add('reconcile', { id: stalled.id }, { jobId: stalled.id, delay: 300, attempts: 5 });
  await svc.rt.redis.hset(queue.toKey(stalled.id), 'defa', 'job stalled more than allowable limit');
  const failed = await waitFor(async () => {
    const r = await run(stalled.id);
    return r.status === 'failed' ? r : undefined;
  }, 20_000, 50);
  expect(failed.error).toEqual(expect.any(String));
  expect((await queue.getJob(stalled.id))?.failedReason).toBe('job stalled more than allowable limit');
  const hook = await waitFor(async () => received.find((d) => d.id === stalled.id), 20_000, 50);
  expect(hook).toMatchObject({ status: 'failed' });
}, 60_000);

test('marking a run failed compares on its status: a completed run stays completed, a failed one keeps its first failure and one event', async () => {
  const res = await svc.api('/v1/partners/fine/reconciliations', { json: period() });
  const { id } = (await res.json()) as { id: string };
  const completed = await waitFor(async () => {
    const r = await run(id);
    return r.status === 'completed' ? r : undefined;
  }, 20_000, 50);
  // The failed handler arriving late (or twice) for a run that completed meanwhile.
  expect((await svc.rt.reconcile.fail(id))?.status).toBe('completed');
  expect(await run(id)).toEqual(completed);

  // A failed run marked again (the failed handler after the last attempt's own call, or twice): its
  // first failure stands, and the partner got one reconciliation.completed message.
  const { from, to } = period();
  const rec = await svc.rt.reconcile.request('doomed', new Date(from), new Date(to), 'manual');
  const first = await waitFor(async () => {
    const r = await run(rec.id);
    return r.status === 'failed' ? r : undefined;
  }, 20_000, 50);
  await waitFor(async () => received.some((d) => d.id === rec.id), 20_000, 50);
  await svc.rt.reconcile.fail(rec.id, 'another reason');
  await svc.rt.reconcile.fail(rec.id);
  expect(await run(rec.id)).toEqual(first);
  await new Promise((r) => setTimeout(r, 500));
  expect(received.filter((d) => d.id === rec.id)).toHaveLength(1);
}, 60_000);

test('a scheduled tick processed again finds its run finished and does not queue it again', async () => {
  const { from, to } = period();
  for (const [partner, status] of [
    ['fine', 'completed'],
    ['doomed', 'failed'],
  ] as const) {
    const once = `repeat:reconcile:${partner}:${Date.parse(to)}`;
    const rec = await svc.rt.reconcile.request(partner, new Date(from), new Date(to), 'scheduled', once);
    const done = await waitFor(async () => {
      const r = await run(rec.id);
      return r.status === status ? r : undefined;
    }, 20_000, 50);
    // Its job trimmed away by removeOnFail/removeOnComplete, as it is after 1000 later runs.
    await waitFor(async () => (await queue.getJob(rec.id))?.finishedOn, 20_000, 50);
    await (await queue.getJob(rec.id))!.remove();

    const again = await svc.rt.reconcile.request(partner, new Date(from), new Date(to), 'scheduled', once);
    expect(again).toMatchObject({ id: rec.id, status });
    expect(await queue.getJob(rec.id)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(await run(rec.id)).toEqual(done);
  }
}, 60_000);
