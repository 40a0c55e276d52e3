/**
 * A scheduled reconciliation tick requests one run, however often BullMQ processes it. A job whose
 * worker died mid-run (SIGKILL, a stall) is processed again; the tick requested its run with a fresh
 * id and `to = now`, so the second processing made a second run of the period (issue 12 §2: exactly
 * one reconciliation run per period). The run's id now comes from the tick's job id and its period
 * ends at the tick. Real Redis and BullMQ: the tick is the scheduler's own job shape (`repeat:<scheduler
 * id>:<tick ms>`), added to the scheduler's queue and processed by the scheduler role; "processed again"
 * is the same job id processed a second time.
 */
import { Queue } from 'bullmq';
import { SCHEDULER_QUEUE } from '../../src/main/scheduler.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
let queue: Queue;

beforeAll(async () => {
  svc = await startService({ workers: true, scheduler: true });
  await createPartner(svc, 'once', { reconcileLookbackDays: 1 });
  queue = new Queue(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
});
afterAll(async () => {
  await queue?.close();
  await svc?.close();
});

async function completedTick(after = 0): Promise<{ id: string; run: string; finishedOn: number }> {
  return waitFor(async () => {
    const jobs = await queue.getJobs(['completed', 'failed']);
    const j = jobs.find((x) => x.name === 'reconcile-partner' && (x.finishedOn ?? 0) > after);
    if (j?.failedReason) throw new Error(`tick failed: ${j.failedReason}`);
    return j?.returnvalue ? { id: j.id!, run: String(j.returnvalue), finishedOn: j.finishedOn! } : undefined;
  }, 20_000, 50);
}

test('the same tick processed twice requests one run, whose period ends at the tick', async () => {
  // A job scheduler of the scheduler's own shape (as syncReconcileSchedules makes per partner, under
  // another id so that it does not replace it): its first tick is due at once.
  await queue.upsertJobScheduler('reconcile-test:once', { every: 3_600_000 }, { name: 'reconcile-partner', data: { partnerId: 'once' } });
  const first = await completedTick();
  await queue.removeJobScheduler('reconcile-test:once');
  const tickMs = Number(/:(\d+)$/.exec(first.id)![1]);
  expect(first.id).toBe(`repeat:reconcile-test:once:${tickMs}`);
  // The same job processed again, as BullMQ does when its worker died mid-run.
  await (await queue.getJob(first.id))!.retry('completed');
  const second = await completedTick(first.finishedOn);
  expect(second.id).toBe(first.id);
  expect(second.run).toBe(first.run);
  const list = (await (await svc.api('/v1/partners/once/reconciliations')).json()) as { reconciliations: { id: string; to: string; from: string; trigger: string }[] };
  expect(list.reconciliations.map((r) => r.id)).toEqual([first.run]);
  expect(list.reconciliations[0]).toMatchObject({ trigger: 'scheduled', to: new Date(tickMs).toISOString(), from: new Date(tickMs - 86_400_000).toISOString() });
  expect(await waitFor(async () => ((await (await svc.api(`/v1/reconciliations/${first.run}`)).json()) as { status: string }).status === 'completed' || undefined, 20_000, 50)).toBe(true);
}, 60_000);
