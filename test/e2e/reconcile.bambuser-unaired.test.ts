/**
 * Reconciliation (the external contract §6) of a Bambuser target reads the order report of every
 * mirrored show, aired or not: a show sells before it goes on air (pre-show sales through the player),
 * and Bambuser's per-show order stats are the only place its orders are. The run used to ask only
 * shows that had aired, so it reported 0 platform orders for such a show and never healed its sales;
 * and a show cancelled before it aired was deleted on Bambuser, its order stats with it.
 * Real service and workers, Bambuser simulator over HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { addTarget, reconcileAndWait, simServicePerFile, simTarget, waitForMirror, type ReconRun } from '../helpers/mirrors.js';
import { isoFromNow } from '../helpers/clock.js';
import { OTHER_CREDENTIALS } from '../helpers/platforms.js';

const P = 'bmbpre';
let svc: TestService;
let sim: TestSim;

// Bambuser allows 5 requests per 10 s per key; lifted here (this test is about what the run reads).
simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: (s) => s.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null }) });

const reconcile = (from: string, to: string): Promise<ReconRun> => reconcileAndWait(svc, P, from, to);

test('the orders of a mirrored Bambuser show that has not aired are read, healed and attributed; a re-run adds nothing', async () => {
  const secret = await createPartner(svc, P);
  await addTarget(svc, P, simTarget(sim, 'bambuser', { id: 'bmb', name: 'Bambuser', commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } }));
  const show = sampleShow('pre1', { scheduledAt: isoFromNow(3 * 3600_000) });
  await sendEvent(svc, P, secret, showEvent('show.scheduled', show, new Date().toISOString()));
  const mirror = await waitForMirror(svc, P, 'pre1', (m) => m.state === 'ready' && m.externalId !== null, { targetId: 'bmb', failedIsError: true });

  // The show is still scheduled on Bambuser (no broadcast yet) when a viewer buys from its product list.
  const order = (await sim.control('POST', '/_sim/bambuser/orders', { externalId: mirror.externalId, productId: 'p1', total: { amount: 1800, currency: 'USD' } })) as { orderId: string };
  expect((await sim.effects('bambuser')).map((e) => e.type)).not.toContain('show.started');

  const from = new Date(Date.now() - 3600_000).toISOString();
  const to = new Date(Date.now() + 60_000).toISOString();
  const run1 = await reconcile(from, to);
  expect(run1.status).toBe('completed');
  expect(run1.summary.targets).toEqual([expect.objectContaining({ targetId: 'bmb', platformOrders: 1, ledgerOrders: 0, healed: 1 })]);
  expect(run1.discrepancies).toEqual([expect.objectContaining({ kind: 'missing_in_ledger', targetId: 'bmb', orderId: order.orderId, healed: true })]);

  // healed into the ledger, attributed to the show and target that named it (contract §5 rule 2)
  const report = (await (await svc.api(`/v1/partners/${P}/attribution`)).json()) as { totals: { showId: string; targetId: string; orders: number; grossAmount: number; commission: number }[] };
  expect(report.totals).toEqual([expect.objectContaining({ showId: 'pre1', targetId: 'bmb', orders: 1, grossAmount: 1800, commission: 180 })]);

  const run2 = await reconcile(from, to);
  expect(run2.discrepancies).toEqual(run1.discrepancies);
  expect(run2.summary.targets).toEqual([expect.objectContaining({ targetId: 'bmb', platformOrders: 1, ledgerOrders: 1 })]);
  expect((await (await svc.api(`/v1/partners/${P}/attribution`)).json()) as unknown).toEqual(report);
}, 60_000);

test('a Bambuser show cancelled before it aired keeps the orders it took meanwhile: the mirror is cancelled, the run reads and heals them', async () => {
  const P2 = `${P}2`;
  const secret = await createPartner(svc, P2);
  // Another Bambuser organisation than the first test's: a report covers every show of the account.
  await addTarget(svc, P2, { ...simTarget(sim, 'bambuser', { id: 'bmb2', name: 'Bambuser', commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } }), credentials: OTHER_CREDENTIALS.bambuser });
  const show = sampleShow('pre2', { scheduledAt: isoFromNow(3 * 3600_000), pinnedProductIds: ['p1'] });
  await sendEvent(svc, P2, secret, showEvent('show.scheduled', show, new Date().toISOString()));
  const mirror = await waitForMirror(svc, P2, 'pre2', (m) => m.state === 'ready' && m.externalId !== null, { targetId: 'bmb2', failedIsError: true });
  const order = (await sim.control('POST', '/_sim/bambuser/orders', { externalId: mirror.externalId, productId: 'p1', total: { amount: 2500, currency: 'USD' } })) as { orderId: string };

  await sendEvent(svc, P2, secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, new Date(Date.now() + 1000).toISOString()));
  await waitForMirror(svc, P2, 'pre2', (m) => m.state === 'cancelled', { targetId: 'bmb2', failedIsError: true });
  // Not deleted on Bambuser (that would delete its order stats): unpublished.
  const mine = (await sim.effects('bambuser')).filter((e) => e.externalId === mirror.externalId).map((e) => e.type);
  expect(mine).not.toContain('show.cancelled');

  const r = await svc.api(`/v1/partners/${P2}/reconciliations`, { json: { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() } });
  const { id } = (await r.json()) as { id: string };
  const run = await waitFor(async () => {
    const body = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as ReconRun;
    return body.status === 'completed' || body.status === 'failed' ? body : undefined;
  }, 30_000);
  expect(run.summary.targets).toEqual([expect.objectContaining({ targetId: 'bmb2', platformOrders: 1, healed: 1 })]);
  expect(run.discrepancies).toEqual([expect.objectContaining({ kind: 'missing_in_ledger', orderId: order.orderId, healed: true })]);
}, 60_000);
