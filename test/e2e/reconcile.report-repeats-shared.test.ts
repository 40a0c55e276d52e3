/**
 * An order id Whatnot's order list names twice in other data, on ONE seller shared by two partners'
 * targets (docs/attribution.md "Targets that share a platform account"), through whole reconciliation
 * runs against the simulator. The copy read first decides whose the order is (its show): on one page
 * the invalid order keeps the first copy's show, on a later page the repeat note is reported by that
 * order's target alone, and never claims the order. A note claimed its order for the run's target: the
 * other partner's target, holding the order's show, then left it to the claim, and the first partner's
 * next run healed the sale under the wrong partner (its two runs differed). On one page the invalid
 * order took the second copy's show, and a target holding neither reported it as well.
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { reconcileAndWait, simServicePerFile, type ReconRun } from '../helpers/mirrors.js';

let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig), {
  prepare: async (s) => {
    await s.control('PUT', '/_sim/whatnot/limits', { requestsPerWindow: null, quotaPerDay: null });
    await s.control('PUT', '/_sim/whatnot/webhook', { url: 'http://127.0.0.1:1/unreachable' }); // no order arrives by webhook
  },
});

type Discrepancy = ReconRun['discrepancies'][number] & { detail?: string; reason?: string };
const usd = (amount: number): { amount: number; currency: string } => ({ amount, currency: 'USD' });

/** The time `s` seconds after `t0`. */
const secondsFrom = (t0: number) => (s: number): string => new Date(t0 + s * 1000).toISOString();
/** A simulated Whatnot order of show `externalId`: its id. */
const order = async (externalId: string, amount: number, createdAt: string): Promise<string> =>
  ((await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: usd(amount), createdAt })) as { orderId: string }).orderId;

/**
 * One Whatnot seller, two partners' targets on it: `holder`'s target holds platform show xHeld (its show
 * `holder[2]` mirrored there), the other's none; x3 is a show of the seller no target holds.
 */
async function twoPartnersOneSeller(plain: [string, string], holder: [string, string, string]): Promise<{ from: string; to: string; xHeld: string; x3: string }> {
  const seller = (await sim.control('POST', '/_sim/whatnot/accounts')) as { sellerId: string; accessToken: string };
  const target = async (partnerId: string, targetId: string): Promise<void> => {
    const t = await svc.api(`/v1/partners/${partnerId}/targets`, { json: { id: targetId, platform: 'whatnot', name: targetId, credentials: { accessToken: seller.accessToken }, baseUrl: sim.base('whatnot'), commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } } });
    expect(t.status).toBe(201);
  };
  const show = async (title: string): Promise<string> => ((await sim.control('POST', '/_sim/whatnot/shows', { title, account: seller.sellerId })) as { externalId: string }).externalId;
  const [pa, ta] = plain;
  const [pb, tb, sb] = holder;
  await createPartner(svc, pa);
  await target(pa, ta);
  const secretB = await createPartner(svc, pb);
  await target(pb, tb);
  await sendEvent(svc, pb, secretB, showEvent('show.scheduled', sampleShow(sb), '2026-11-24T17:00:00Z'));
  await waitFor(async () => (await svc.rt.shows.getMirror(pb, sb, tb))?.state === 'action_required');
  const xHeld = await show(`held by ${tb}`);
  expect((await svc.api(`/v1/partners/${pb}/shows/${sb}/mirrors/${tb}`, { method: 'PUT', json: { externalId: xHeld } })).status).toBe(200);
  const x3 = await show('held by no target');
  return { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString(), xHeld, x3 };
}

test('one Whatnot seller, two partners: an order listed again under another show is reported by the target holding its first copy\'s show, healed under it, never claimed by the other; the same on every run', async () => {
  const { from, to, xHeld: xB, x3 } = await twoPartnersOneSeller(['pa', 'wn-a'], ['pb', 'wn-b', 'sb']);

  const at = secondsFrom(Date.now() - 600_000);
  const copy = (orderId: string, changes: Record<string, unknown>): Promise<unknown> => sim.control('POST', `/_sim/whatnot/orders/${orderId}/copies`, changes);
  // The list is by time: Y and its copy on page 1; X on page 1, its copy after 50 orders of x3, on page 2.
  const y = await order(xB, 2000, at(0));
  await copy(y, { externalId: x3, total: usd(2500) });
  const x = await order(xB, 1000, at(1));
  for (let i = 0; i < 50; i++) await order(x3, 100, at(2 + i));
  await copy(x, { externalId: x3, total: usd(1500), createdAt: at(100) });

  const findings = (run: ReconRun): unknown[] => (run.discrepancies as Discrepancy[]).filter((d) => [x, y].includes(d.orderId)).map((d) => [d.targetId, d.orderId, d.kind, d.reason, d.healed, d.detail]);
  const stored = async (partnerId: string): Promise<Record<string, [string | undefined, number]>> =>
    Object.fromEntries((await svc.rt.attribution.orders(partnerId)).map((o) => [o.order.orderId, [o.order.targetId, o.gross]]));
  const counts = (run: ReconRun): unknown => (run.summary.targets as unknown as { targetId: string; platformOrders: number; otherTargetOrders: number }[]).map((s) => [s.targetId, s.platformOrders, s.otherTargetOrders]);

  // pa first: X and Y are of xB's (wn-b's), its note of X included; the 50 of x3 it claims and heals.
  const pa1 = await reconcileAndWait(svc, 'pa', from, to);
  expect(pa1.status).toBe('completed');
  expect([findings(pa1), counts(pa1)]).toEqual([[], [['wn-a', 52, 2]]]);
  const pb1 = await reconcileAndWait(svc, 'pb', from, to);
  expect(pb1.status).toBe('completed');
  expect([findings(pb1), counts(pb1)]).toEqual([
    [
      ['wn-b', y, 'missing_in_ledger', 'invalid_order', false, `platform reports order "${y}" twice, with different data: not added to the ledger`],
      ['wn-b', x, 'amount_mismatch', 'invalid_order', false, `platform reports order "${x}" twice, with different data: only its first copy is compared with the ledger`],
      ['wn-b', x, 'missing_in_ledger', undefined, true, 'platform reports 1000 USD; added to the ledger'],
    ],
    [['wn-b', 52, 50]],
  ]);
  expect(await stored('pb')).toEqual({ [x]: ['wn-b', 1000] });
  const pa = await stored('pa');
  expect([Object.keys(pa).length, pa[x], pa[y]]).toEqual([50, undefined, undefined]);

  // Re-runs: the same, nothing more stored under either partner.
  const [pa2, pb2] = [await reconcileAndWait(svc, 'pa', from, to), await reconcileAndWait(svc, 'pb', from, to)];
  expect([pa2.discrepancies, counts(pa2), pb2.discrepancies, counts(pb2)]).toEqual([pa1.discrepancies, counts(pa1), pb1.discrepancies, counts(pb1)]);
  expect([Object.keys(await stored('pa')).length, await stored('pb')]).toEqual([50, { [x]: ['wn-b', 1000] }]);
}, 90_000);

test('the same with the show holder\'s run first: its note is its own, the other partner\'s runs report nothing of the order (the note is placed by its first copy\'s show, not by the set of orders the run left)', async () => {
  const { from, to, xHeld: xD, x3 } = await twoPartnersOneSeller(['pc', 'wn-c'], ['pd', 'wn-d', 'sd']);
  const at = secondsFrom(Date.now() - 600_000);
  // X under xD on page 1, its copy under x3 after 50 orders of x3, on page 2.
  const x = await order(xD, 1000, at(1));
  for (let i = 0; i < 50; i++) await order(x3, 100, at(2 + i));
  await sim.control('POST', `/_sim/whatnot/orders/${x}/copies`, { externalId: x3, total: usd(1500), createdAt: at(100) });
  const findings = (run: ReconRun): unknown[] => (run.discrepancies as Discrepancy[]).filter((d) => d.orderId === x).map((d) => [d.targetId, d.kind, d.reason, d.healed]);
  const note = ['wn-d', 'amount_mismatch', 'invalid_order', false];
  const d1 = await reconcileAndWait(svc, 'pd', from, to);
  expect(findings(d1)).toEqual([note, ['wn-d', 'missing_in_ledger', undefined, true]]);
  const c1 = await reconcileAndWait(svc, 'pc', from, to);
  expect([c1.status, findings(c1)]).toEqual(['completed', []]);
  const [d2, c2] = [await reconcileAndWait(svc, 'pd', from, to), await reconcileAndWait(svc, 'pc', from, to)];
  expect([findings(d2), findings(c2)]).toEqual([findings(d1), []]);
  expect((await svc.rt.attribution.orders('pc')).map((o) => o.order.orderId)).not.toContain(x);
}, 90_000);
