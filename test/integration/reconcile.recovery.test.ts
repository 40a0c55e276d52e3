/**
 * The recovery pass over runs not finished yet (review of today's reconciliation changes):
 * - a run stored but never listed (the request died between the save and the listing; its client got
 *   an error and retries) was run anyway by the pass: a run the partner never got the id of, not in
 *   their list, with no audit entry. A manual one is now dropped; a scheduled one is listed and run.
 * - a run whose job failed for good without the run being marked (both marks failed, the process died
 *   before the failed handler) stayed `queued`/`running` forever: the pass saw its (failed) job and
 *   took it for one waiting its turn. It is marked failed now.
 * - a `running` run whose job is gone was dropped from the index at its start, so nothing looked at it
 *   again. Runs stay marked until finished, and such a run's job is added again.
 * - a request whose job add failed after the run was stored, listed and marked answered 5xx, and the
 *   client's retry requested a second run: it answers 202 (the pass adds the job).
 * No worker in this process: the test plays the worker's part with BullMQ directly. Real Redis.
 */
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { RECONCILE_QUEUE } from '../../src/reconcile/reconcile.service.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { withWrongTypeKey } from '../helpers/wrong-type.js';

let svc: TestService;
let queue: Queue;

beforeAll(async () => {
  svc = await startService({ workers: false });
  queue = new Queue(RECONCILE_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(RECONCILE_QUEUE) });
  await createPartner(svc, 'rcv');
}, 60_000);
afterEach(async () => {
  // Each case starts with no runs pending: jobs and marks of the one before are dropped.
  await queue.obliterate({ force: true });
  await svc.rt.redis.del(svc.rt.keys.reconQueued());
});
afterAll(async () => {
  await queue?.close();
  await svc?.close();
});

const period = (): { from: Date; to: Date } => ({ from: new Date(Date.now() - 86_400_000), to: new Date() });
const listed = async (): Promise<string[]> => ((await (await svc.api('/v1/partners/rcv/reconciliations')).json()) as { reconciliations: { id: string }[] }).reconciliations.map((r) => r.id);

const withBrokenList = <T>(fn: () => Promise<T>): Promise<T> => withWrongTypeKey(svc.rt.redis, svc.rt.keys.partnerReconciliations('rcv'), fn);

test('a manual run that never got listed is not run by the pass; a scheduled one is listed and run', async () => {
  await svc.api('/v1/partners/rcv/reconciliations', { json: { from: period().from.toISOString(), to: period().to.toISOString() } });
  const failedManual = await withBrokenList(() => svc.api('/v1/partners/rcv/reconciliations', { json: { from: period().from.toISOString(), to: period().to.toISOString() } }));
  expect(failedManual.status).toBeGreaterThanOrEqual(500);
  const scheduled = await withBrokenList(() => svc.rt.reconcile.request('rcv', period().from, period().to, 'scheduled', 'tick-1').then(() => null, (e: unknown) => e));
  expect(scheduled).toBeInstanceOf(Error);
  const marked = await svc.rt.redis.zrange(svc.rt.keys.reconQueued(), 0, -1);
  const before = await listed();
  const unlisted = marked.filter((id) => !before.includes(id));
  expect(unlisted).toHaveLength(2);
  const recs = await Promise.all(unlisted.map((id) => svc.rt.reconcile.get(id)));
  const manualId = recs.find((r) => r?.trigger === 'manual')!.id;
  const scheduledId = recs.find((r) => r?.trigger === 'scheduled')!.id;

  const { requeued } = await svc.rt.reconcile.recoverQueued(0);
  expect(requeued).toContain(scheduledId);
  expect(requeued).not.toContain(manualId);
  expect(await queue.getJob(manualId)).toBeUndefined();
  expect(await listed()).toContain(scheduledId);
  expect(await listed()).not.toContain(manualId);
  expect(await svc.rt.redis.zscore(svc.rt.keys.reconQueued(), manualId)).toBeNull();
}, 30_000);

test('a run whose job failed for good without the run being marked is marked failed by the pass', async () => {
  const res = await svc.api('/v1/partners/rcv/reconciliations', { json: { from: period().from.toISOString(), to: period().to.toISOString() } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  // A worker that fails the job for good and never tells the service (as a process dying would).
  const w = new Worker(RECONCILE_QUEUE, async () => { throw new UnrecoverableError('boom'); }, { connection: svc.rt.bullConnection('worker'), prefix: svc.rt.keys.queuePrefix(RECONCILE_QUEUE) });
  try {
    await waitFor(async () => (await (await queue.getJob(id))?.getState()) === 'failed' || undefined, 10_000, 50);
  } finally {
    await w.close();
  }
  expect((await svc.rt.reconcile.get(id))?.status).toBe('queued');
  const pass = await svc.rt.reconcile.recoverQueued(0);
  expect(pass.failed).toEqual([id]);
  expect((await svc.rt.reconcile.get(id))?.status).toBe('failed');
  expect(await svc.rt.redis.zscore(svc.rt.keys.reconQueued(), id)).toBeNull();
}, 30_000);

test('a running run whose job is gone gets its job again', async () => {
  const res = await svc.api('/v1/partners/rcv/reconciliations', { json: { from: period().from.toISOString(), to: period().to.toISOString() } });
  const { id } = (await res.json()) as { id: string };
  const rec = (await svc.rt.reconcile.get(id))!;
  // Started by a worker (the record says running), then its job lost with data.
  await svc.rt.redis.set(svc.rt.keys.reconciliation(id), JSON.stringify({ ...rec, status: 'running', startedAt: new Date().toISOString() }), 'KEEPTTL');
  await (await queue.getJob(id))!.remove();
  const pass = await svc.rt.reconcile.recoverQueued(0);
  expect(pass.requeued).toEqual([id]);
  expect(await queue.getJob(id)).toBeDefined();
}, 30_000);

test('a request whose job add fails after the run is stored and listed answers 202, and the pass adds the job', async () => {
  const q = (svc.rt.reconcile as unknown as { q(): Queue }).q();
  const add = q.add.bind(q);
  q.add = async () => {
    q.add = add;
    throw new Error('Connection is closed.');
  };
  const res = await svc.api('/v1/partners/rcv/reconciliations', { json: { from: period().from.toISOString(), to: period().to.toISOString() } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  expect(await listed()).toContain(id);
  expect(await queue.getJob(id)).toBeUndefined();
  expect((await svc.rt.reconcile.recoverQueued(0)).requeued).toEqual([id]);
  expect(await queue.getJob(id)).toBeDefined();
}, 30_000);

test('a run stored before otherTargetOrders was counted (records are kept 400 days) reads with it 0, through GET and the list', async () => {
  const id = 'recon-old-shape';
  const at = new Date(Date.now() - 3_600_000).toISOString();
  const old = {
    id, partnerId: 'rcv', trigger: 'manual', status: 'completed', from: at, to: at, createdAt: at, startedAt: at, completedAt: at,
    summary: { targets: [{ targetId: 'wn', platform: 'whatnot', platformOrders: 3, ledgerOrders: 3, discrepancies: 0, healed: 0 }], discrepancies: 0, healed: 0, skippedTargets: [] },
    discrepancies: [],
  };
  await svc.rt.redis.set(svc.rt.keys.reconciliation(id), JSON.stringify(old), 'EX', 3600);
  await svc.rt.redis.zadd(svc.rt.keys.partnerReconciliations('rcv'), Date.parse(at), id);
  const one = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as { summary: { targets: { otherTargetOrders?: number }[] } };
  expect(one.summary.targets.map((t) => t.otherTargetOrders)).toEqual([0]);
  const list = (await (await svc.api('/v1/partners/rcv/reconciliations')).json()) as { reconciliations: { id: string; summary: { targets: { otherTargetOrders?: number }[] } | null }[] };
  expect(list.reconciliations.find((r) => r.id === id)?.summary?.targets.map((t) => t.otherTargetOrders)).toEqual([0]);
});
