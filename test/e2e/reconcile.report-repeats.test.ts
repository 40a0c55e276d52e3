/**
 * An order id that Whatnot's order list or Bambuser's order stats name twice, through whole
 * reconciliation runs against the simulators (real service and workers, HTTP; the simulators list an
 * order again with `POST /_sim/{platform}/orders/{id}/copies`). The same data twice is one order; other
 * data is an invalid_order, never healed: on one page (one Bambuser show's report) the order is the
 * invalid one, on a later page (a later show's report) the later copy is a `repeat` note, reported the
 * same on every run, the order counted once. Both adapters kept the first read silently (the wrong
 * amount could be healed or compared), as TikTok's did (reconcile.tiktok-repeat.test.ts). Bambuser's
 * report is per show: the same id under two shows is the same rule (docs/platforms.md).
 */
import { createPartner, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { addTarget, reconcileAndWait, simServicePerFile, simTarget, type ReconRun } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

// The platforms' request limits lifted: these runs read dozens of orders' items (Whatnot) and several shows (Bambuser).
simServicePerFile((rig) => ({ sim, svc } = rig), {
  prepare: async (s) => {
    await s.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: 10_000 });
    await s.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null });
  },
});

const RATE = { rateLimit: { requests: 10_000, windowMs: 1000 } };
const usd = (amount: number): { amount: number; currency: string } => ({ amount, currency: 'USD' });
const from = (): string => new Date(Date.now() - 3600_000).toISOString();
const to = (): string => new Date(Date.now() + 60_000).toISOString();
type Discrepancy = ReconRun['discrepancies'][number] & { detail?: string };

async function order(platform: string, externalId: string, amount: number, createdAt: string): Promise<string> {
  return ((await sim.control('POST', `/_sim/${platform}/orders`, { externalId, productId: 'p1', total: usd(amount), createdAt })) as { orderId: string }).orderId;
}
const copy = (platform: string, orderId: string, changes: Record<string, unknown>): Promise<unknown> => sim.control('POST', `/_sim/${platform}/orders/${orderId}/copies`, changes);

/** [orderId, kind, reason, healed, detail] of the run's discrepancies of `ids`. */
const findings = (run: ReconRun, ids: string[]): unknown[] =>
  (run.discrepancies as Discrepancy[]).filter((d) => ids.includes(d.orderId)).map((d) => [d.orderId, d.kind, d.reason, d.healed, d.detail]);

test('Whatnot: an id listed twice with the same data is one order; in other data on one page the invalid order, on a later page a repeat note; a re-run reports the same', async () => {
  const P = 'wnrep';
  await createPartner(svc, P);
  await addTarget(svc, P, simTarget(sim, 'whatnot', { id: 'wn', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, commissionRateBps: 1000, ...RATE }));
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Repeats' })) as { externalId: string };
  const t0 = Date.now() - 600_000;
  const at = (s: number): string => new Date(t0 + s * 1000).toISOString();
  const same = await order('whatnot', externalId, 2000, at(0));
  await copy('whatnot', same, {});
  const onePage = await order('whatnot', externalId, 3000, at(1));
  await copy('whatnot', onePage, { total: usd(3500) });
  const twoPages = await order('whatnot', externalId, 4000, at(2));
  // 50 orders (the adapter's page) between the order and its copy: the copy is on the list's second page.
  for (let i = 0; i < 50; i++) await order('whatnot', externalId, 100, at(3 + i));
  await copy('whatnot', twoPages, { total: usd(4500), createdAt: at(100) });

  const run1 = await reconcileAndWait(svc, P, from(), to());
  expect(run1.status).toBe('completed');
  expect(findings(run1, [same, onePage, twoPages])).toEqual([
    [same, 'missing_in_ledger', undefined, true, 'platform reports 2000 USD; added to the ledger'],
    [onePage, 'missing_in_ledger', 'invalid_order', false, `platform reports order "${onePage}" twice, with different data: not added to the ledger`],
    [twoPages, 'amount_mismatch', 'invalid_order', false, `platform reports order "${twoPages}" twice, with different data: only its first copy is compared with the ledger`],
    [twoPages, 'missing_in_ledger', undefined, true, 'platform reports 4000 USD; added to the ledger'],
  ]);
  // Each order once: 3 + the 50 others.
  expect(run1.summary.targets).toEqual([expect.objectContaining({ targetId: 'wn', platformOrders: 53, healed: 52 })]);
  const stored = (await svc.rt.attribution.orders(P)).map((o) => o.order.orderId);
  expect([stored.length, stored.includes(onePage)]).toEqual([52, false]);

  const run2 = await reconcileAndWait(svc, P, from(), to());
  expect([run2.discrepancies, run2.summary.targets[0]?.platformOrders]).toEqual([run1.discrepancies, 53]);
}, 60_000);

test('Bambuser: an id under two shows, or twice in one show\'s report, with other data is an invalid order (a repeat note for the later show), the same data one order; a re-run reports the same', async () => {
  const P = 'bmbrep';
  await createPartner(svc, P);
  await addTarget(svc, P, simTarget(sim, 'bambuser', { id: 'bmb', name: 'Bambuser', commissionRateBps: 1000, ...RATE }));
  // The show list is newest first: s2's report is read before s1's.
  const s1 = ((await sim.control('POST', '/_sim/bambuser/shows', { title: 'Repeats one' })) as { externalId: string }).externalId;
  const s2 = ((await sim.control('POST', '/_sim/bambuser/shows', { title: 'Repeats two' })) as { externalId: string }).externalId;
  const at = new Date(Date.now() - 600_000).toISOString();
  const bothShows = await order('bambuser', s1, 2000, at);
  await copy('bambuser', bothShows, { externalId: s2 });
  const twoShows = await order('bambuser', s1, 3000, at);
  await copy('bambuser', twoShows, { externalId: s2, total: usd(3500) });
  const oneShow = await order('bambuser', s1, 4000, at);
  await copy('bambuser', oneShow, { total: usd(4500) });

  const run1 = await reconcileAndWait(svc, P, from(), to());
  expect(run1.status).toBe('completed');
  expect(findings(run1, [bothShows, twoShows, oneShow])).toEqual([
    [bothShows, 'missing_in_ledger', undefined, true, 'platform reports 2000 USD; added to the ledger'],
    [twoShows, 'amount_mismatch', 'invalid_order', false, `platform reports order "${twoShows}" twice, with different data: only its first copy is compared with the ledger`],
    [twoShows, 'missing_in_ledger', undefined, true, 'platform reports 3500 USD; added to the ledger'],
    [oneShow, 'missing_in_ledger', 'invalid_order', false, `platform reports order "${oneShow}" twice, with different data: not added to the ledger`],
  ]);
  expect(run1.summary.targets).toEqual([expect.objectContaining({ targetId: 'bmb', platformOrders: 3, healed: 2 })]);
  const stored = (await svc.rt.attribution.orders(P)).map((o) => [o.order.orderId, o.order.total.amount]);
  expect(stored.sort()).toEqual([[bothShows, 2000], [twoShows, 3500]].sort());

  const run2 = await reconcileAndWait(svc, P, from(), to());
  expect([run2.discrepancies, run2.summary.targets[0]?.platformOrders]).toEqual([run1.discrepancies, 3]);
}, 60_000);

test('Bambuser: two copies of an order dated on either side of a period\'s bound are compared in either period\'s run: the first copy read is the order, in its period; the later a note in its own, the same on every run', async () => {
  const P = 'bmbbound';
  await createPartner(svc, P);
  // An organisation of its own: the orders of the test above are not this target's account's.
  const org = (await sim.control('POST', '/_sim/bambuser/accounts', {})) as { orgId: string; credentials: { apiKey: string } };
  await addTarget(svc, P, simTarget(sim, 'bambuser', { id: 'bmb-bound', name: 'Bambuser', credentials: { ...CREDENTIALS.bambuser, ...org.credentials }, commissionRateBps: 1000, ...RATE }));
  const show = async (title: string): Promise<string> => ((await sim.control('POST', '/_sim/bambuser/shows', { title, account: org.orgId })) as { externalId: string }).externalId;
  const s1 = await show('Older copy');
  const s2 = await show('First read'); // newest: its report is read first
  const now = Date.now();
  const x = await order('bambuser', s2, 3000, new Date(now - 600_000).toISOString());
  await copy('bambuser', x, { externalId: s1, total: usd(3500), createdAt: new Date(now - 7200_000).toISOString() });
  const older = (): Promise<ReconRun> => reconcileAndWait(svc, P, new Date(now - 3 * 3600_000).toISOString(), new Date(now - 5400_000).toISOString());
  const note = [x, 'amount_mismatch', 'invalid_order', false, `platform reports order "${x}" twice, with different data: only its first copy is compared with the ledger`];
  const stored = async (): Promise<unknown[]> => (await svc.rt.attribution.orders(P)).map((o) => [o.order.orderId, o.order.total.amount]);

  // The later copy's period first: a note, nothing healed (it healed the later copy, 3500, never compared).
  const run1 = await older();
  expect(run1.status).toBe('completed');
  expect([findings(run1, [x]), await stored()]).toEqual([[note], []]);
  const run2 = await reconcileAndWait(svc, P, from(), to());
  expect([findings(run2, [x]), await stored()]).toEqual([[[x, 'missing_in_ledger', undefined, true, 'platform reports 3000 USD; added to the ledger']], [[x, 3000]]]);
  const run3 = await older();
  expect([findings(run3, [x]), await stored()]).toEqual([[note], [[x, 3000]]]);
}, 60_000);
