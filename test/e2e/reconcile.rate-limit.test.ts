/**
 * Reconciliation under the account's rate limit (attack pass: ten runs of one period started at once).
 * A report read that our own per-account limiter refuses for a moment, or that Whatnot answers with a
 * 429 and Retry-After, waits and goes on (src/targets/report-wait.ts): every run completes with the
 * report read, none ends `failed` with "no target report could be read". A report that really cannot be
 * read (Whatnot refuses the token: 401) still fails the run. Real Redis, the Whatnot simulator over HTTP.
 */
import { createPartner, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simServicePerFile } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig));

interface Recon {
  status: string;
  error?: string;
  summary: { targets: { targetId: string; platformOrders: number; error?: string }[] } | null;
  discrepancies: { kind: string; targetId: string; orderId: string; healed: boolean }[];
}

const RUNS = 10;

async function startRuns(partner: string, from: string, to: string): Promise<string[]> {
  const answers = await Promise.all(Array.from({ length: RUNS }, () => svc.api(`/v1/partners/${partner}/reconciliations`, { json: { from, to } })));
  return Promise.all(
    answers.map(async (r) => {
      expect(r.status).toBe(202);
      return ((await r.json()) as { id: string }).id;
    }),
  );
}

async function finished(id: string): Promise<Recon> {
  return waitFor(
    async () => {
      const body = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as Recon;
      return body.status === 'completed' || body.status === 'failed' ? body : undefined;
    },
    60_000,
    100,
  );
}

/** Saved without the credentials check: the account's window may still be busy from the test before. */
async function whatnotTarget(partner: string, id: string, extra: Record<string, unknown>): Promise<void> {
  await createPartner(svc, partner);
  const t = await svc.api(`/v1/partners/${partner}/targets?verify=false`, {
    json: { id, platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, baseUrl: sim.base('whatnot'), commissionRateBps: 1000, ...extra },
  });
  expect(t.status).toBe(201);
}

async function twoOrders(): Promise<void> {
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Rate-limited report' })) as { externalId: string };
  for (const amount of [1500, 2500]) await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount, currency: 'USD' } });
}

function period(): { from: string; to: string } {
  return { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 600_000).toISOString() };
}

test('a report that really cannot be read (Whatnot answers 500) still fails the run, at once', async () => {
  await whatnotTarget('rl3', 'wn-rl3', {});
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['500'] });
  try {
    const { from, to } = period();
    const started = Date.now();
    const id = ((await (await svc.api('/v1/partners/rl3/reconciliations', { json: { from, to } })).json()) as { id: string }).id;
    const run = await finished(id);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('no target report could be read');
    expect(run.summary?.targets[0]?.error).toMatch(/^whatnot: /);
    expect(Date.now() - started).toBeLessThan(15_000);
  } finally {
    await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  }
}, 60_000);

// Ten runs of one period at once, the account's limit well below ten requests at a time: most runs are
// refused at first and wait. The windows are short so that the ten get through in about 2-4 s, not 5-10.
test('ten runs of one period at once, our own limiter allowing 1 request per 200 ms on the account: every run waits for its token and completes', async () => {
  await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: null, quotaPerDay: null });
  await whatnotTarget('rl1', 'wn-rl1', { rateLimit: { requests: 1, windowMs: 200 } });
  await twoOrders();
  const { from, to } = period();
  const runs = await Promise.all((await startRuns('rl1', from, to)).map(finished));
  for (const run of runs) {
    expect(run).toMatchObject({ status: 'completed' });
    expect(run.summary?.targets).toEqual([expect.objectContaining({ targetId: 'wn-rl1', platformOrders: 2 })]);
    expect(run.summary?.targets[0]?.error).toBeUndefined();
  }
  // Ten runs of one period, each on its own (no run is merged into another): all report the same, the
  // two orders the ledger lacked healed once (idempotent by order id).
  expect(runs.map((r) => r.discrepancies)).toEqual(runs.map(() => runs[0]!.discrepancies));
  expect(runs[0]!.discrepancies.map((d) => [d.kind, d.healed])).toEqual([
    ['missing_in_ledger', true],
    ['missing_in_ledger', true],
  ]);
  expect((await svc.rt.attribution.orders('rl1')).length).toBe(2);
}, 90_000);

test("ten runs of one period at once, Whatnot allowing 3 requests/s (429 with Retry-After): every run waits as told and completes", async () => {
  // Our limiter lifted: Whatnot's own window refuses (429, or its RateLimit-Remaining: 0 blocks the account here first).
  // (Whatnot's waits are whole seconds: Retry-After and RateLimit-Reset, 1 s at least.)
  await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: 3, windowMs: 1000, quotaPerDay: null });
  try {
    await whatnotTarget('rl2', 'wn-rl2', { rateLimit: { requests: 10_000, windowMs: 1000 } });
    const { from, to } = period();
    const runs = await Promise.all((await startRuns('rl2', from, to)).map(finished));
    for (const run of runs) {
      expect(run).toMatchObject({ status: 'completed' });
      expect(run.summary?.targets[0]?.error).toBeUndefined();
      expect(run.summary?.targets[0]?.platformOrders).toBe(2); // the first test's orders: one seller account on the simulator
    }
  } finally {
    await sim.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: null, quotaPerDay: null });
  }
}, 90_000);
