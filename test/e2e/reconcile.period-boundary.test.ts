/**
 * Reconciliation across a period boundary (docs/attribution.md "Periods and clock skew"): the ledger
 * and the platform's report date an order on different sides of the boundary between two periods P1
 * and P2 (clock skew, a time zone). Each run reads the report over its period widened by
 * RECONCILE_CLOCK_SKEW_MS (5 minutes by default) and the order belongs to the period the ledger dates
 * it in: it is compared there only, counted in that run's ledgerOrders only, and never reported missing
 * on either side. Dated further apart than the margin, it is `missing_in_platform` in the ledger's
 * period (and not compared in the report's). Against the Whatnot simulator's report, through the API.
 * A period at either end of the years 0000-9999 reads its report within them.
 */
import { createPartner, retryingUnavailable, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simServicePerFile } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;
simServicePerFile((rig) => ({ sim, svc } = rig));

interface Recon {
  status: string;
  summary: { targets: { targetId: string; platformOrders: number; ledgerOrders: number; discrepancies: number }[] };
  discrepancies: { kind: string; targetId: string; orderId: string; healed: boolean }[];
}

const P1 = { from: '2026-11-30T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' };
const P2 = { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' };

async function reconcile(partnerId: string, period: { from: string; to: string }): Promise<Recon> {
  const r = await svc.api(`/v1/partners/${partnerId}/reconciliations`, { json: period });
  expect(r.status).toBe(202);
  const { id } = (await r.json()) as { id: string };
  return waitFor(async () => {
    const body = (await (await svc.api(`/v1/reconciliations/${id}`)).json()) as Recon;
    return body.status === 'completed' || body.status === 'failed' ? body : undefined;
  });
}

/** A partner with a Whatnot target on the simulator's seller a; a show of that seller on the platform (its id). */
async function whatnotPartner(partnerId: string, targetId: string): Promise<string> {
  await createPartner(svc, partnerId);
  // (a 503 sent again: the target's credential check may time out under CI load)
  const t = await retryingUnavailable(() =>
    svc.api(`/v1/partners/${partnerId}/targets`, {
      json: { id: targetId, platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, baseUrl: sim.base('whatnot'), commissionRateBps: 1000 },
    }),
  );
  expect(t.status).toBe(201);
  return ((await sim.control('POST', '/_sim/whatnot/shows', { title: `${partnerId} show` })) as { externalId: string }).externalId;
}

test('an order the ledger and the report date on two sides of a boundary (either way) is compared and counted in one period only, never missing; dated further apart than the margin, it is compared in the report\'s period (its refund healed) and missing_in_platform in the ledger\'s', async () => {
  const externalId = await whatnotPartner('pb', 'wn');
  // [platform's date, ledger's date, platform's total, ledger's total]
  const cases: Record<string, [string, string, number, number]> = {
    // the ledger dates it at the end of P1, the platform at the start of P2
    late: ['2026-12-01T00:00:01.000Z', '2026-11-30T23:59:58.000Z', 1000, 1000],
    // the ledger dates it at the start of P2, the platform at the end of P1
    early: ['2026-11-30T23:59:58.000Z', '2026-12-01T00:00:01.000Z', 2000, 2000],
    // straddling with another total: one amount_mismatch, in the ledger's period (P1)
    differs: ['2026-12-01T00:00:02.000Z', '2026-11-30T23:59:59.000Z', 3500, 3000],
    // 20 minutes apart (the margin is 5): the platform's P1 report (widened) does not name it; P2's run
    // compares it (it was left to P1's, which never compared it: the platform's refund was never healed)
    far: ['2026-12-01T00:10:00.000Z', '2026-11-30T23:50:00.000Z', 4000, 4000],
    // the same with another total: P2 reports the amount_mismatch
    farDiffers: ['2026-12-01T00:08:00.000Z', '2026-11-30T23:52:00.000Z', 4200, 4000],
    // straddling, with a refund on the platform the ledger lacks: healed by P1's run, remembered under P1
    refunded: ['2026-12-01T00:00:04.000Z', '2026-11-30T23:59:57.000Z', 2500, 2500],
  };
  const ids: Record<string, string> = {};
  for (const [name, [platformAt, ledgerAt, platformTotal, ledgerTotal]] of Object.entries(cases)) {
    const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: platformTotal, currency: 'USD' }, createdAt: platformAt })) as { orderId: string };
    ids[orderId] = name;
    await svc.rt.attribution.ingestPlatformOrders('pb', 'wn', [
      { orderId, externalShowId: externalId, productId: 'p1', clickId: undefined, createdAt: ledgerAt, total: { amount: ledgerTotal, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined },
    ], 'webhook');
  }
  const idOf = (name: string): string => Object.keys(ids).find((id) => ids[id] === name)!;
  await sim.control('POST', `/_sim/whatnot/orders/${idOf('refunded')}/refunds`, { amount: { amount: 500, currency: 'USD' } });
  await sim.control('POST', `/_sim/whatnot/orders/${idOf('far')}/refunds`, { amount: { amount: 1000, currency: 'USD' } });
  const found = (r: Recon): string[] => r.discrepancies.map((d) => `${ids[d.orderId] ?? d.orderId}:${d.kind}`).sort();

  const run1 = await reconcile('pb', P1);
  const run2 = await reconcile('pb', P2);
  expect(run1.status).toBe('completed');
  expect(run2.status).toBe('completed');
  const inP1 = ['differs:amount_mismatch', 'far:missing_in_platform', 'farDiffers:missing_in_platform', 'refunded:amount_mismatch'];
  const inP2 = ['far:amount_mismatch', 'farDiffers:amount_mismatch'];
  expect(found(run1)).toEqual(inP1);
  expect(run1.discrepancies.filter((d) => d.healed).map((d) => ids[d.orderId])).toEqual(['refunded']);
  expect(found(run2)).toEqual(inP2);
  expect(run2.discrepancies.filter((d) => d.healed).map((d) => ids[d.orderId])).toEqual(['far']);
  const farRow = (await svc.rt.attribution.orders('pb')).find((o) => o.order.orderId === idOf('far'))!;
  expect(farRow.refunded).toBe(1000);
  // Both counts by the period each order is compared in (late, differs, refunded in P1; early, far,
  // farDiffers in P2), the ledger's also by what the scan reports missing (far, farDiffers in P1)
  expect(run1.summary.targets[0]).toMatchObject({ platformOrders: 3, ledgerOrders: 5, discrepancies: 4 });
  expect(run2.summary.targets[0]).toMatchObject({ platformOrders: 3, ledgerOrders: 3, discrepancies: 2 });
  // nothing was added to the ledger (every order was held)
  expect((await svc.rt.attribution.orders('pb')).length).toBe(6);

  // Re-runs give the same result (§6), either order of the two periods: the refund's heal is P1's
  // (remembered under the ledger's date, not the report's in P2), far's P2's (the report's)
  expect(found(await reconcile('pb', P2))).toEqual(inP2);
  expect(found(await reconcile('pb', P1))).toEqual(inP1);
});

test("an order only the platform reports, dated in the margin after the period, is left to the next period's run: not healed, reported nor counted by this one", async () => {
  const externalId = await whatnotPartner('pm', 'wm');
  // (periods of their own: the first test's orders are on the same simulated seller)
  const Q1 = { from: '2026-12-02T00:00:00.000Z', to: '2026-12-03T00:00:00.000Z' };
  const Q2 = { from: '2026-12-03T00:00:00.000Z', to: '2026-12-04T00:00:00.000Z' };
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 1500, currency: 'USD' }, createdAt: '2026-12-03T00:00:03.000Z' })) as { orderId: string };
  const run1 = await reconcile('pm', Q1);
  expect(run1.discrepancies).toEqual([]);
  expect(run1.summary.targets[0]).toMatchObject({ platformOrders: 0, ledgerOrders: 0 });
  expect(await svc.rt.attribution.orders('pm')).toEqual([]);
  const run2 = await reconcile('pm', Q2);
  expect(run2.discrepancies.map((d) => [d.orderId, d.kind, d.healed])).toEqual([[orderId, 'missing_in_ledger', true]]);
  expect(run2.summary.targets[0]).toMatchObject({ platformOrders: 1, ledgerOrders: 0 });
});

test('a missing_in_ledger heal is remembered under the date the ledger stored the order with: a webhook that stored it meanwhile, dated in the period before within the margin, makes it that period\'s', async () => {
  const externalId = await whatnotPartner('ph', 'wh');
  // (periods of their own: the other tests' orders are on the same simulated seller)
  const R0 = { from: '2026-12-04T00:00:00.000Z', to: '2026-12-05T00:00:00.000Z' };
  const R1 = { from: '2026-12-05T00:00:00.000Z', to: '2026-12-06T00:00:00.000Z' };
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 1700, currency: 'USD' }, createdAt: '2026-12-05T00:01:00.000Z' })) as { orderId: string };
  // Between R1's lookup (the ledger lacks the order) and its heal, the order's webhook stores it dated 2 minutes earlier, in R0.
  const attribution = svc.rt.attribution;
  const ingest = attribution.ingestPlatformOrders.bind(attribution);
  Object.assign(attribution, {
    ingestPlatformOrders: async (...args: Parameters<typeof ingest>) => {
      const [partnerId, targetId, orders, source] = args;
      const p = orders.find((o) => o.orderId === orderId);
      if (source === 'report' && p) await ingest(partnerId, targetId, [{ ...p, createdAt: '2026-12-04T23:59:00.000Z' }], 'webhook');
      return ingest(...args);
    },
  });
  let run1;
  try {
    run1 = await reconcile('ph', R1);
  } finally {
    Reflect.deleteProperty(attribution, 'ingestPlatformOrders');
  }
  expect(run1.discrepancies.map((d) => [d.orderId, d.kind, d.healed])).toEqual([[orderId, 'missing_in_ledger', true]]);
  const held = await svc.rt.attribution.orders('ph');
  expect(held.map((o) => [o.order.orderId, o.order.createdAt])).toEqual([[orderId, '2026-12-04T23:59:00.000Z']]);
  // The order is R0's (the ledger's date, the report's 2 minutes from it): so is its heal. Remembered
  // under the report's date, R1's re-runs listed a heal of an order R1 no longer compares.
  expect((await reconcile('ph', R1)).discrepancies).toEqual([]);
  expect((await reconcile('ph', R0)).discrepancies.map((d) => [d.orderId, d.kind, d.healed])).toEqual([[orderId, 'missing_in_ledger', true]]);
});

// A period at either end of the years the API takes: the report is read over it widened by the margin,
// which went past year 0000 (`-000001-12-31T23:55:00.000Z`, no RFC 3339 date-time: Whatnot's 400, the run
// failed) or 9999. The widened bounds stay within 0000-9999: both runs complete.
test('a reconciliation of a period in year 0000, or ending at 9999-12-31, completes against a Whatnot target: its widened report bounds stay within 0000-9999', async () => {
  await whatnotPartner('py0', 'wn0');
  for (const period of [{ from: '0000-01-01T00:00:00Z', to: '0000-01-02T00:00:00Z' }, { from: '9999-12-30T00:00:00Z', to: '9999-12-31T23:59:59Z' }]) {
    const r = (await reconcile('py0', period)) as Recon & { error?: string; summary: { targets: { error?: string }[] } };
    expect(r.status).toBe('completed');
    expect(r.summary.targets).toEqual([expect.objectContaining({ targetId: 'wn0', platformOrders: 0 })]);
    expect(r.summary.targets[0]!.error).toBeUndefined();
  }
}, 60_000);
