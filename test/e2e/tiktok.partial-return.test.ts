/**
 * A partial return on TikTok Shop reverses the commission of what was returned, exact to the cent.
 * TikTok's affiliate order report (the reconciliation source, and what a webhook's order is read from)
 * carries a sku's unit price, its quantity and the units taken back (refunded_quantity /
 * returned_quantity), no refunded amount. Before, a 3-unit order with 1 unit returned stayed in the
 * ledger whole: the simulator reported no unit back until the whole order was, and returned_quantity
 * was not read. Now: 1 unit back (webhook) reverses its commission, a re-read report with the same
 * units adds nothing, and 2 more units (reconciliation only) reverse the rest — the cumulative rule of
 * CONTRACT §5. Real redis-server, the service with its workers, the TikTok simulator over real HTTP.
 */
import type { LedgerEntry } from '../../src/domain/order.js';
import { applyBps } from '../../src/domain/money.js';
import { reconcileAndWait, simServicePerFile } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';

const P = 'ttret';
const RATE = 1000;
const UNIT = 3333; // 33.33 USD a unit
let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig));

interface View {
  total: { amount: number; currency: string };
  refundedAmount: number;
  accrued: number;
  reversed: number;
  commission: { amount: number };
  entries: LedgerEntry[];
}

const view = async (orderId: string): Promise<View | undefined> => {
  const r = await svc.api(`/v1/partners/${P}/attribution/orders/${orderId}?targetId=tt`);
  return r.status === 200 ? ((await r.json()) as View) : undefined;
};
const reversals = (v: View): [string, number, number][] => v.entries.filter((e) => e.kind === 'reversal').map((e) => [e.key, e.base, e.amount]);
/** Commission after `refunded` of `total` was taken back (CONTRACT §5). */
const net = (total: number, refunded: number): number => applyBps(total - refunded, RATE);

test('a 3-unit order: 1 unit returned, then 2 more — each reverses exactly its share of the commission, a re-read adds nothing', async () => {
  const secret = await createPartner(svc, P);
  const t = await svc.api(`/v1/partners/${P}/targets`, { json: { id: 'tt', platform: 'tiktok', name: 'TikTok', credentials: CREDENTIALS.tiktok, baseUrl: sim.base('tiktok'), commissionRateBps: RATE } });
  expect(t.status).toBe(201);
  await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s1'), new Date(Date.now() - 60_000).toISOString()));
  // TikTok has no API for LIVE rooms: the creator goes live in the app, the operator links the room.
  await waitFor(async () => (await svc.rt.shows.getMirror(P, 's1', 'tt'))?.state === 'action_required');
  const { externalId: room } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'Returns live' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${P}/shows/s1/mirrors/tt`, { method: 'PUT', json: { externalId: room } })).status).toBe(200);

  // TikTok notifies the order and its returns (ids only; the service reads the report for the rest).
  await sim.control('PUT', '/_sim/tiktok/webhook', { url: `${svc.url}/v1/platform-webhooks/tt` });
  const total = 3 * UNIT;
  const { orderId } = (await sim.control('POST', '/_sim/tiktok/orders', { externalId: room, productId: 'p1', quantity: 3, total: { amount: total, currency: 'USD' } })) as { orderId: string };
  const placed = await waitFor(() => view(orderId));
  expect(placed).toMatchObject({ total: { amount: total, currency: 'USD' }, refundedAmount: 0, accrued: applyBps(total, RATE), reversed: 0 });
  expect(placed.accrued).toBe(1000); // 99.99 × 10 % = 9.999 → 10.00

  // The buyer returns 1 of the 3 units: TikTok's report now says 1 unit back.
  await sim.control('POST', `/_sim/tiktok/orders/${orderId}/refunds`, { amount: { amount: UNIT, currency: 'USD' } });
  // (the webhook's read of the report is applied while TikTok waits for our answer; a little slack anyway)
  const one = await waitFor(async () => {
    const v = await view(orderId);
    return v && v.refundedAmount > 0 ? v : undefined;
  }, 5_000).catch(async () => (await view(orderId))!);
  expect(one.refundedAmount).toBe(UNIT);
  expect(one.reversed).toBe(applyBps(total, RATE) - net(total, UNIT)); // 1000 − 667 = 333
  expect(one.commission.amount).toBe(667);
  expect(reversals(one)).toEqual([[`reversal:pf:${UNIT}`, UNIT, 333]]);

  // A re-read of the report with the same units adds nothing.
  const period = { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() };
  const rerun = await reconcileAndWait(svc, P, period.from, period.to);
  expect(rerun.status).toBe('completed');
  expect(rerun.discrepancies.filter((d) => d.orderId === orderId)).toEqual([]);
  expect(await view(orderId)).toEqual(one);

  // Two more units come back, and their webhook never reaches us: reconciliation finds them.
  await sim.control('PUT', '/_sim/tiktok/webhook', { url: 'http://127.0.0.1:1/unreachable' });
  await sim.control('POST', `/_sim/tiktok/orders/${orderId}/refunds`, { amount: { amount: 2 * UNIT, currency: 'USD' } });
  const healed = await reconcileAndWait(svc, P, period.from, period.to);
  // (every unit back: the report's status is CANCELLED, so the discrepancy is the status's)
  expect(healed.discrepancies.filter((d) => d.orderId === orderId).map((d) => [d.kind, d.healed])).toEqual([['status_mismatch', true]]);
  const all = (await view(orderId))!;
  expect(all.refundedAmount).toBe(total);
  expect(all.reversed).toBe(all.accrued); // the whole commission, to the cent
  expect(all.commission.amount).toBe(0);
  // Only the difference was added: 667 = round(66.66) − 0, on top of the 333 already reversed.
  expect(reversals(all)).toEqual([
    [`reversal:pf:${UNIT}`, UNIT, 333],
    [`reversal:pf:${total}`, 2 * UNIT, net(total, UNIT) - net(total, total)],
  ]);

  // And once more: nothing new.
  await reconcileAndWait(svc, P, period.from, period.to);
  expect(await view(orderId)).toEqual(all);
}, 90_000);

test('the TikTok simulator sells units of one price and takes any refund (§9), its report counting the whole units refunded', async () => {
  const { externalId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'units' })) as { externalId: string };
  const post = (path: string, body: unknown): Promise<Response> => fetch(`${sim.url}/_sim/tiktok${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect((await post('/orders', { externalId, productId: 'p1', quantity: 3, total: { amount: 1000, currency: 'USD' } })).status).toBe(422);
  const made = await post('/orders', { externalId, productId: 'p1', quantity: 4, total: { amount: 1000, currency: 'USD' } });
  expect(made.status).toBe(201);
  const { orderId } = (await made.json()) as { orderId: string };
  // Part of a unit's price is a refund TikTok Shop allows, and the contract's §9 takes any amount.
  expect((await post(`/orders/${orderId}/refunds`, { amount: { amount: 300, currency: 'USD' } })).status).toBe(201);
  expect((await post(`/orders/${orderId}/refunds`, { amount: { amount: 500, currency: 'USD' } })).status).toBe(201);
});
