/**
 * Scheduled reconciliation against the clock, as the ops team lives it (real Redis, BullMQ and the
 * scheduler role's worker):
 * - The service down for days, then started: BullMQ processes the tick that was pending when it went
 *   down and produces the next one from the time it is processed, so the cron's ticks that passed
 *   meanwhile were never run, and the days between the stale tick and the next one were covered by no
 *   scheduled run (with the default 3-day lookback, down 3 days left a day uncovered; down longer, more).
 *   Now the stale tick's run is followed by one up to the latest tick that passed, and each scheduled
 *   period reaches back to the end of the previous one.
 * - The reconcile-schedules tick upserted every partner's job scheduler every minute; BullMQ's upsert
 *   replaces the pending tick with the next one after the upserting process's clock, so a scheduler
 *   whose clock was ahead (or whose worker was busy across the tick) dropped the day's run.
 */
import { jest } from '@jest/globals';
import { Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import { SCHEDULER_QUEUE, syncReconcileSchedules } from '../../src/main/scheduler.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';

const DAY = 86_400_000;
let svc: TestService;
let queue: Queue;

beforeAll(async () => {
  svc = await startService({ scheduler: true });
  queue = new Queue(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(SCHEDULER_QUEUE) });
}, 60_000);
afterAll(async () => {
  await queue?.close();
  await svc?.close();
});

/** The latest tick of `cron` (UTC) at or before now. */
const latestTick = (cron: string): number => CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: new Date(Date.now() + 1) }).prev().getTime();

/** A tick of job scheduler `scheduler` (its job's shape: `repeat:<id>:<ms>`), processed by the scheduler role. */
async function processTick(scheduler: string, partnerId: string, tickMs: number): Promise<string[]> {
  const jobId = `repeat:${scheduler}:${tickMs}`;
  const existing = await queue.getJob(jobId);
  const after = existing?.finishedOn ?? 0;
  if (existing) await existing.retry('completed');
  else await queue.add('reconcile-partner', { partnerId }, { jobId });
  return waitFor(async () => {
    const j = await queue.getJob(jobId);
    if (j?.failedReason) throw new Error(`tick failed: ${j.failedReason}`);
    return j?.finishedOn && j.finishedOn > after ? ([] as string[]).concat(j.returnvalue as string | string[]) : undefined;
  }, 20_000, 50);
}

async function periods(partnerId: string): Promise<{ id: string; from: string; to: string; trigger: string }[]> {
  const body = (await (await svc.api(`/v1/partners/${partnerId}/reconciliations`)).json()) as { reconciliations: { id: string; from: string; to: string; trigger: string }[] };
  return body.reconciliations.map(({ id, from, to, trigger }) => ({ id, from, to, trigger })).sort((a, b) => a.to.localeCompare(b.to));
}

const iso = (ms: number): string => new Date(ms).toISOString();

test('a tick processed three days late is followed by a run up to the latest tick that passed; each is made once', async () => {
  await createPartner(svc, 'late', { reconcileCron: '0 3 * * *', reconcileLookbackDays: 1 });
  const now = latestTick('0 3 * * *');
  const stale = now - 3 * DAY; // pending when the service went down
  const runs = await processTick('reconcile-late', 'late', stale);
  expect(await periods('late')).toEqual([
    { id: runs[0], trigger: 'scheduled', from: iso(stale - DAY), to: iso(stale) },
    { id: runs[1], trigger: 'scheduled', from: iso(stale), to: iso(now) },
  ]);
  // Processed again (its worker died mid-job), and the latest tick's own job (a scheduler that did
  // produce it): no run more.
  expect(await processTick('reconcile-late', 'late', stale)).toEqual(runs);
  expect(await processTick('reconcile-late', 'late', now)).toEqual([runs[1]]);
  expect((await periods('late')).map((r) => r.id)).toEqual(runs);
}, 60_000);

test('a tick processed more than 92 days after the previous scheduled period reaches back 92 days only (the longest run there is)', async () => {
  await createPartner(svc, 'long', { reconcileCron: '0 3 * * *', reconcileLookbackDays: 1 });
  const now = latestTick('0 3 * * *');
  const stale = now - 100 * DAY;
  await processTick('reconcile-long', 'long', stale);
  expect((await periods('long')).map(({ from, to }) => ({ from, to }))).toEqual([
    { from: iso(stale - DAY), to: iso(stale) },
    { from: iso(now - 92 * DAY), to: iso(now) },
  ]);
}, 60_000);

test('a scheduled period reaches back to the end of the previous one when ticks were never produced', async () => {
  // A monthly cron on the day of `first`: no tick of it between `first` and now.
  const daily = latestTick('0 3 * * *');
  const first = daily - 3 * DAY;
  await createPartner(svc, 'gap', { reconcileCron: `0 3 ${new Date(first).getUTCDate()} * *`, reconcileLookbackDays: 1 });
  await processTick('reconcile-gap', 'gap', first);
  // The operator makes it daily: BullMQ's next tick is the first after the change; the days between had none.
  expect((await svc.api('/v1/partners/gap', { method: 'PATCH', json: { reconcileCron: '0 3 * * *' } })).status).toBe(200);
  await processTick('reconcile-gap', 'gap', daily);
  expect((await periods('gap')).map(({ from, to }) => ({ from, to }))).toEqual([
    { from: iso(first - DAY), to: iso(first) },
    { from: iso(first), to: iso(daily) },
  ]);
}, 60_000);

test("the every-minute schedule sync keeps a due tick that is not processed yet (a scheduler clock ahead)", async () => {
  const q = new Queue('schedule-sync-test', { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix('schedule-sync-test') });
  try {
    const partners = [{ id: 'ahead', reconcileCron: '0 3 * * *' }];
    await syncReconcileSchedules(q, partners);
    const next = (await q.getJobScheduler('reconcile:ahead'))!.next!;
    expect(next).toBeGreaterThan(Date.now());
    // The next sync runs on a scheduler whose clock is two minutes past that tick.
    const spy = jest.spyOn(Date, 'now').mockReturnValue(next + 120_000);
    try {
      await syncReconcileSchedules(q, partners);
    } finally {
      spy.mockRestore();
    }
    expect((await q.getJobScheduler('reconcile:ahead'))!.next).toBe(next);
    expect(await q.getJob(`repeat:reconcile:ahead:${next}`)).toBeTruthy();
    // A changed cron still takes effect.
    await syncReconcileSchedules(q, [{ id: 'ahead', reconcileCron: '30 4 * * *' }]);
    const changed = await q.getJobScheduler('reconcile:ahead');
    expect(changed?.pattern).toBe('30 4 * * *');
    expect(await q.getJob(`repeat:reconcile:ahead:${next}`)).toBeFalsy();
  } finally {
    await q.obliterate({ force: true });
    await q.close();
  }
}, 30_000);

test('the end of the latest scheduled period only moves forward (a tick processed late does not move it back)', async () => {
  const repo = svc.rt.reconciliations;
  const tick = latestTick('0 3 * * *');
  await repo.advanceScheduledTo('fwd', tick);
  await repo.advanceScheduledTo('fwd', tick - DAY);
  expect(await repo.scheduledTo('fwd')).toBe(tick);
  await repo.advanceScheduledTo('fwd', tick + DAY);
  expect(await repo.scheduledTo('fwd')).toBe(tick + DAY);
});

test("a partner's schedule left days ahead (a clock that went back) is brought back to this clock's next tick", async () => {
  const q = new Queue('schedule-back-test', { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix('schedule-back-test') });
  try {
    const partners = [{ id: 'back', reconcileCron: '0 3 * * *' }];
    const realNow = Date.now;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 3 * DAY);
    try {
      await syncReconcileSchedules(q, partners);
    } finally {
      spy.mockRestore();
    }
    expect((await q.getJobScheduler('reconcile:back'))!.next).toBeGreaterThan(Date.now() + 2 * DAY);
    await syncReconcileSchedules(q, partners);
    const next = CronExpressionParser.parse('0 3 * * *', { tz: 'UTC', currentDate: new Date() }).next().getTime();
    expect((await q.getJobScheduler('reconcile:back'))!.next).toBe(next);
  } finally {
    await q.obliterate({ force: true });
    await q.close();
  }
}, 30_000);

test('the sweep left days ahead by a clock that went back ticks again within a sweep interval', async () => {
  // As a scheduler whose clock was three days ahead left it (BullMQ keeps a scheduler's next tick on an upsert).
  const realNow = Date.now;
  const far = async (): Promise<boolean> => ((await queue.getJobScheduler('mirror-sweep'))?.next ?? 0) > realNow() + 2 * DAY;
  for (let i = 0; i < 5 && !(await far()); i++) {
    await queue.removeJobScheduler('mirror-sweep');
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 3 * DAY);
    try {
      await queue.upsertJobScheduler('mirror-sweep', { every: 1000 }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: 100 } });
    } finally {
      spy.mockRestore();
    }
  }
  expect(await far()).toBe(true);
  await waitFor(async () => ((await queue.getJobScheduler('mirror-sweep'))?.next ?? Infinity) < Date.now() + 60_000 || undefined, 8_000, 100);
}, 30_000);
