/**
 * A reconciliation request stores its run, lists it, then adds its BullMQ job. When the add failed
 * (Redis gone between the steps, the API process killed after the save) the run stayed `queued`
 * forever: listed, never run. Runs not started yet are indexed (a ZSET by createdAt, removed when the
 * run starts); the scheduler's periodic sweep calls recoverQueued(), which adds the job again for a
 * run still `queued` a minute later without a job (run() is safe to repeat). Real Redis and BullMQ;
 * the lost add is the queue's add throwing once, as it does when its connection is gone.
 */
import { QueueEvents, type Queue } from 'bullmq';
import { SCHEDULER_QUEUE } from '../../src/main/scheduler.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService({ workers: true, scheduler: true });
  await createPartner(svc, 'lost');
});
afterAll(async () => {
  await svc?.close();
});

const status = async (id: string): Promise<string> => ((await (await svc.api(`/v1/reconciliations/${id}`)).json()) as { status: string }).status;

test('a run whose job add failed is listed queued, and the recovery pass queues it and it completes', async () => {
  const queue = (svc.rt.reconcile as unknown as { q(): Queue }).q();
  const add = queue.add.bind(queue);
  let failed = 0;
  queue.add = async () => {
    failed++;
    queue.add = add;
    throw new Error('Connection is closed.');
  };
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const to = new Date().toISOString();
  const res = await svc.api('/v1/partners/lost/reconciliations', { json: { from, to } });
  expect(failed).toBe(1);
  expect(res.status).toBe(202); // stored, listed and marked: the pass adds the job (a 5xx made clients request it again)
  const list = (await (await svc.api('/v1/partners/lost/reconciliations')).json()) as { reconciliations: { id: string; status: string }[] };
  expect(list.reconciliations).toHaveLength(1);
  const id = list.reconciliations[0]!.id;
  expect(list.reconciliations[0]!.status).toBe('queued');
  expect(await queue.getJob(id)).toBeUndefined();

  // Younger than the minimum age: left alone (its add may still be under way).
  expect((await svc.rt.reconcile.recoverQueued()).requeued).toEqual([]);
  expect(await status(id)).toBe('queued');
  // Old enough: its job is added again and the run completes.
  expect((await svc.rt.reconcile.recoverQueued(0)).requeued).toEqual([id]);
  expect(await waitFor(async () => (await status(id)) === 'completed' || undefined, 20_000, 50)).toBe(true);
  // Started runs leave the index: the next pass has nothing to do.
  expect((await svc.rt.reconcile.recoverQueued(0)).requeued).toEqual([]);
  expect(await svc.rt.redis.zcard(svc.rt.keys.reconQueued())).toBe(0);
}, 60_000);

test('a run waiting for its job is not queued again, and a normal request leaves nothing in the index once it ran', async () => {
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const res = await svc.api('/v1/partners/lost/reconciliations', { json: { from, to: new Date().toISOString() } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  expect(await waitFor(async () => (await status(id)) === 'completed' || undefined, 20_000, 50)).toBe(true);
  expect((await svc.rt.reconcile.recoverQueued(0)).requeued).toEqual([]);
  expect(await svc.rt.redis.zcard(svc.rt.keys.reconQueued())).toBe(0);
}, 60_000);

test("the scheduler's periodic sweep runs the recovery pass", async () => {
  const events = new QueueEvents(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
  try {
    await events.waitUntilReady();
    // The sweep's jobs are removed on completion: its result is read from the queue's completed event.
    const result = await new Promise<unknown>((resolve) =>
      events.on('completed', ({ returnvalue }) => {
        const v: unknown = typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue;
        if (v && typeof v === 'object' && 'shows' in v) resolve(v); // the sweep's, not another scheduled job's
      }),
    );
    expect(result).toMatchObject({ reconciliations: 0 });
  } finally {
    await events.close();
  }
}, 30_000);

// Review of 01fd3fc: the run was marked after it was stored and listed, so a lost mark (the mark's
// node failing, the API killed between the steps) left a listed `queued` run no pass would look at.
test('a request whose mark fails stores nothing: no run is listed that no pass would recover', async () => {
  await createPartner(svc, 'lost-mark');
  const marks = svc.rt.keys.reconQueued();
  const saved = await svc.rt.redis.zrange(marks, 0, -1, 'WITHSCORES');
  await svc.rt.redis.del(marks);
  await svc.rt.redis.set(marks, 'not a zset'); // every ZADD to it fails
  try {
    const res = await svc.api('/v1/partners/lost-mark/reconciliations', { json: { from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date().toISOString() } });
    expect(res.status).toBeGreaterThanOrEqual(500);
  } finally {
    await svc.rt.redis.del(marks);
    if (saved.length > 0) await svc.rt.redis.zadd(marks, ...saved.flatMap((v, i) => (i % 2 === 0 ? [saved[i + 1]!, v] : [])));
  }
  const list = (await (await svc.api('/v1/partners/lost-mark/reconciliations')).json()) as { reconciliations: unknown[] };
  expect(list.reconciliations).toEqual([]);
}, 30_000);

// Review of 01fd3fc: the pass read the oldest `limit` marked runs and skipped those whose job exists,
// which stayed at the head: behind a backlog of runs waiting their turn, a run that lost its job was
// never looked at until the backlog drained.
test('runs waiting their turn are looked at after the others: one that lost its job behind them is recovered', async () => {
  await createPartner(svc, 'lost-behind');
  const queue = (svc.rt.reconcile as unknown as { q(): Queue }).q();
  await queue.pause(); // the runs with jobs wait their turn
  try {
    const ask = () => svc.api('/v1/partners/lost-behind/reconciliations', { json: { from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date().toISOString() } });
    const waiting = (await (await ask()).json()) as { id: string };
    expect(await queue.getJob(waiting.id)).toBeDefined();
    await new Promise((r) => setTimeout(r, 5)); // a later createdAt
    const add = queue.add.bind(queue);
    queue.add = async () => {
      queue.add = add;
      throw new Error('Connection is closed.');
    };
    expect((await ask()).status).toBe(202); // stored, listed, marked: the pass adds the job
    const list = (await (await svc.api('/v1/partners/lost-behind/reconciliations')).json()) as { reconciliations: { id: string }[] };
    const lost = list.reconciliations.map((r) => r.id).find((id) => id !== waiting.id)!;
    expect(await queue.getJob(lost)).toBeUndefined();
    // One run per pass: the first looks at the waiting one, the next at the one behind it.
    const passes = [(await svc.rt.reconcile.recoverQueued(0, 1)).requeued, (await svc.rt.reconcile.recoverQueued(0, 1)).requeued];
    expect(passes.flat()).toEqual([lost]);
    expect(await queue.getJob(lost)).toBeDefined();
  } finally {
    await queue.resume();
  }
  const status = async (id: string): Promise<string> => ((await (await svc.api(`/v1/reconciliations/${id}`)).json()) as { status: string }).status;
  const ids = ((await (await svc.api('/v1/partners/lost-behind/reconciliations')).json()) as { reconciliations: { id: string }[] }).reconciliations.map((r) => r.id);
  for (const id of ids) expect(await waitFor(async () => (await status(id)) === 'completed' || undefined, 20_000, 50)).toBe(true);
}, 60_000);
