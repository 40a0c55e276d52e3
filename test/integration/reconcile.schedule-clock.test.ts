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
 * - The fixed schedulers (sweep, reconcile-schedules, readiness) are made again when a clock that went
 *   back left their next tick far off; a scheduler process whose clock was more than the margin behind
 *   another's saw each of the other's ticks far off and made them again every check (extra sweeps and
 *   a warning each interval): only a far tick that does not move is made again now.
 */
import { jest } from '@jest/globals';
import { Queue } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { latestTick, nextTick } from '../../src/lib/cron.js';
import { SCHEDULER_QUEUE, startScheduler, syncReconcileSchedules } from '../../src/main/scheduler.js';
import type { SweepService } from '../../src/mirror/sweep.service.js';
import { Keys } from '../../src/store/keys.js';
import { logSink } from '../helpers/log-sink.js';
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
const latestTickNow = (cron: string): number => latestTick(cron, Date.now())!;

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
  const now = latestTickNow('0 3 * * *');
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
  const now = latestTickNow('0 3 * * *');
  const stale = now - 100 * DAY;
  await processTick('reconcile-long', 'long', stale);
  expect((await periods('long')).map(({ from, to }) => ({ from, to }))).toEqual([
    { from: iso(stale - DAY), to: iso(stale) },
    { from: iso(now - 92 * DAY), to: iso(now) },
  ]);
}, 60_000);

test('a scheduled period reaches back to the end of the previous one when ticks were never produced', async () => {
  // A monthly cron on the day of `first`: no tick of it between `first` and now.
  const daily = latestTickNow('0 3 * * *');
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

test("a partner cron BullMQ cannot read fails its own schedule only, not the partners after it", async () => {
  // `H 3 * * *` (a hashed minute) was accepted by the partner routes (cron-parser 5 reads it, BullMQ's
  // bundled 4.9 does not; they refuse it now: reconcile-cron.test.ts): its upsert threw and the pass
  // ended there, so the partner listed after it was never given a job scheduler.
  const q = new Queue('schedule-hash-test', { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix('schedule-hash-test') });
  const { log, lines } = logSink<{ msg: string; partnerId?: string }>('warn');
  try {
    const partners = [{ id: 'hashed', reconcileCron: 'H 3 * * *' }, { id: 'after', reconcileCron: '0 4 * * *' }];
    expect(await syncReconcileSchedules(q, partners, log)).toBe(2);
    expect((await q.getJobScheduler('reconcile:after'))?.next).toBe(nextTick('0 4 * * *', Date.now()));
    expect((await q.getJobScheduler('reconcile:hashed'))?.next ?? null).toBeNull();
    expect(lines.filter((l) => l.partnerId === 'hashed' && l.msg.includes('cannot be scheduled'))).toHaveLength(1);
  } finally {
    await q.obliterate({ force: true });
    await q.close();
  }
}, 30_000);

test('a partner cron BullMQ cannot read is warned about once per process, and its job scheduler on an older cron is removed', async () => {
  // The pass runs every minute: it warned every minute, per such partner, for ever. And a partner whose
  // cron became one BullMQ cannot read (stored before the routes refused it) kept its job scheduler on
  // its old cron, firing, while the warning said there was no scheduled reconciliation.
  const q = new Queue('schedule-unschedulable-test', { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix('schedule-unschedulable-test') });
  const { log, lines } = logSink<{ msg: string; partnerId?: string }>('warn');
  try {
    await syncReconcileSchedules(q, [{ id: 'was-daily', reconcileCron: '0 2 * * *' }], log);
    expect((await q.getJobScheduler('reconcile:was-daily'))?.pattern).toBe('0 2 * * *');
    for (let pass = 0; pass < 2; pass++) await syncReconcileSchedules(q, [{ id: 'was-daily', reconcileCron: 'H 2 * * *' }], log);
    const left = await q.getJobScheduler('reconcile:was-daily');
    expect({ pattern: left?.pattern ?? null, next: left?.next ?? null, delayed: await q.getDelayedCount() }).toEqual({ pattern: null, next: null, delayed: 0 });
    expect(lines.filter((l) => l.partnerId === 'was-daily' && l.msg.includes('cannot be scheduled'))).toHaveLength(1);
  } finally {
    await q.obliterate({ force: true });
    await q.close();
  }
}, 30_000);

test('the end of the latest scheduled period only moves forward (a tick processed late does not move it back)', async () => {
  const repo = svc.rt.reconciliations;
  const tick = latestTickNow('0 3 * * *');
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
    const next = nextTick('0 3 * * *', Date.now());
    expect((await q.getJobScheduler('reconcile:back'))!.next).toBe(next);
  } finally {
    await q.obliterate({ force: true });
    await q.close();
  }
}, 30_000);

/**
 * A scheduler process of its own (its own key prefix, on this Redis): only the sweep, checked every
 * 300 ms, with a 1.5 s margin for other clocks (5 min in production); its warnings and sweeps.
 */
async function ownScheduler(): Promise<{ queue: Queue; farWarnings: () => number; close(): Promise<void> }> {
  const keys = new Keys(`${svc.rt.keys.prefix}-own${++owned}`);
  const { log, lines } = logSink<{ msg: string }>('warn');
  const handle = await startScheduler({
    connection: () => svc.rt.bullConnection('worker'),
    keys,
    sweep: { sweep: async () => ({ shows: 0, enqueued: 0, finished: 0 }) } as unknown as SweepService,
    sweepIntervalMs: 300,
    log,
    fixedTickSlackMs: 1500,
  });
  const q = new Queue(SCHEDULER_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: keys.queuePrefix(SCHEDULER_QUEUE) });
  return {
    queue: q,
    farWarnings: () => lines.filter((l) => l.msg.includes('far in the future')).length,
    close: async () => {
      await handle.close();
      await q.obliterate({ force: true });
      await q.close();
    },
  };
}
let owned = 0;

/** The sweep's next tick put at `at`, as another scheduler process whose clock reads `at` one interval before it leaves it. */
async function sweepTickAt(q: Queue, at: number): Promise<void> {
  await q.removeJobScheduler('mirror-sweep');
  await q.upsertJobScheduler('mirror-sweep', { every: 300, startDate: at }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: 100 } });
}

test('the sweep left days ahead by a clock that went back ticks again once that tick has not moved for its interval and the margin', async () => {
  const s = await ownScheduler();
  try {
    await sweepTickAt(s.queue, Date.now() + 3 * DAY);
    expect((await s.queue.getJobScheduler('mirror-sweep'))!.next).toBeGreaterThan(Date.now() + 2 * DAY);
    await waitFor(async () => ((await s.queue.getJobScheduler('mirror-sweep'))?.next ?? Infinity) < Date.now() + 60_000 || undefined, 8_000, 100);
    expect(s.farWarnings()).toBe(1);
  } finally {
    await s.close();
  }
}, 30_000);

test("a scheduler process whose clock is behind another's leaves the other's ticks alone (no sweep made again every check)", async () => {
  const s = await ownScheduler();
  try {
    // The other process's clock is 10 minutes ahead: each tick it produces (one per interval, as it
    // processes the last) is 10 minutes off by this process's clock, but they move on.
    const ahead = Date.now() + 10 * 60_000;
    for (let i = 1; i <= 12; i++) {
      await sweepTickAt(s.queue, ahead + i * 300);
      await sleep(300);
    }
    expect((await s.queue.getJobScheduler('mirror-sweep'))!.next).toBeGreaterThan(Date.now() + 5 * 60_000);
    expect(s.farWarnings()).toBe(0);
  } finally {
    await s.close();
  }
}, 30_000);
