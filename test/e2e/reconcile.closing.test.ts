/**
 * A reconciliation waiting out the platform's rate limit (src/targets/report-wait.ts: up to a minute
 * per report page) does not hold up the reconcile worker's close (SIGTERM). Before, close() waited for
 * the wait to end and the page to be read. Now the wait ends when the worker starts closing: the job
 * goes back to waiting (no attempt spent, no 'failed' run) and a worker started later runs it again
 * and completes it. Real Redis, the Whatnot simulator over HTTP (its window answers 429 + Retry-After).
 */
import { Queue } from 'bullmq';
import { RECONCILE_QUEUE } from '../../src/reconcile/reconcile.service.js';
import { limiterId } from '../../src/targets/target.registry.js';
import { createPartner, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simServicePerFile } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig));

interface Recon {
  status: string;
  summary: { targets: { targetId: string; platformOrders: number; error?: string }[] } | null;
}

const recon = async (id: string): Promise<Recon> => (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as Recon;
const finished = (id: string): Promise<Recon> =>
  waitFor(
    async () => {
      const body = await recon(id);
      return body.status === 'completed' || body.status === 'failed' ? body : undefined;
    },
    60_000,
    100,
  );
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test("closing the worker ends a run's wait for the platform's rate limit: the job is handed back, not failed, and completes on the next worker", async () => {
  await createPartner(svc, 'cl1');
  // Checked when saved (before the limits below): Whatnot names the seller then, and the runs make no call to learn it.
  const t = await svc.api('/v1/partners/cl1/targets', {
    json: { id: 'wn-cl1', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, baseUrl: sim.base('whatnot'), commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } },
  });
  expect(t.status).toBe(201);
  // A fresh request window: the check's two requests were in it (Whatnot's default window counts every
  // request), so with the limit below the first run's report page was refused and it waited the 40 s out.
  await sim.control('POST', '/_sim/whatnot/reset');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Report read while closing' })) as { externalId: string };
  await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 1500, currency: 'USD' } });
  const period = { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 600_000).toISOString() };
  const start = async (): Promise<string> => ((await (await svc.api('/v1/partners/cl1/reconciliations', { json: period })).json()) as { id: string }).id;

  // Whatnot allows two requests per 40 s (from the reset above): the first run reads the report's one page and its order's
  // items (two requests: RateLimit-Remaining 0 then, and our limiter blocks the account for the rest of
  // the window), the second waits ~40 s. (With one request per window the first run itself waited the
  // 40 s out for its second request: most of this file's time.)
  await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: 2, windowMs: 40_000, quotaPerDay: null });
  const queue = new Queue(RECONCILE_QUEUE, { connection: svc.rt.bullConnection('api'), prefix: svc.rt.keys.queuePrefix(RECONCILE_QUEUE) });
  try {
    expect((await finished(await start())).status).toBe('completed');
    const id = await start();
    await waitFor(async () => (await recon(id)).status === 'running', 10_000, 50);
    await sleep(1_500); // its report page refused: waiting for the window

    const closing = Date.now();
    await svc.stopWorkers();
    expect(Date.now() - closing).toBeLessThan(10_000); // before: the rest of the 40 s window, then the page
    expect((await recon(id)).status).toBe('running'); // not failed: it runs again
    const job = await queue.getJob(id);
    expect(await job?.getState()).toBe('waiting');
    expect(job?.attemptsMade).toBe(0);

    // The window ends: Whatnot's limit lifted, and our limiter's block of the account (from the first
    // run's RateLimit-Remaining: 0, until the 40 s window resets) taken away as its end would, instead
    // of the next worker waiting out the rest of it (most of this test's time).
    await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: null, quotaPerDay: null });
    const account = limiterId('whatnot', { accessToken: CREDENTIALS.whatnot.accessToken! }, 'wn-cl1');
    expect(await svc.rt.redis.del(svc.rt.keys.targetLimit(account, 'blocked'))).toBe(1);
    await svc.startWorkers();
    const run = await finished(id);
    expect(run.status).toBe('completed');
    expect(run.summary?.targets).toEqual([expect.objectContaining({ targetId: 'wn-cl1', platformOrders: 1 })]);
  } finally {
    await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: null, quotaPerDay: null });
    await queue.close();
  }
}, 120_000);
