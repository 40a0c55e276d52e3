/**
 * Platform order refs when target ids contain ':' (contract ids `[A-Za-z0-9_.:-]{1,128}`). The ref was
 * `@<targetId>:<platform order id>`, so one partner's target `t` + order `x:1` and target `t:x` + order
 * `1` were one ledger record (the second order was taken for a duplicate of the first), and
 * reconciliation's ledger of target `t` (refs starting `@t:`) held target `t:y`'s orders too. Now the
 * target is written as keyPart; an order a target with ':' stored under the old ref is found again, by
 * ingest and by reconciliation's ledger of that target (review 2026-12-01 K1: lookup and scan read the new
 * ref only, so the order was "missing" and healed on every run, while target `t`'s scan took it for its
 * own order `z:7`). Real redis-server.
 */
import { legacyPlatformOrderRef, platformOrderRef } from '../../src/domain/order.js';
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService();
  await createPartner(svc, 'rp');
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

const order = (orderId: string, amount: number) => ({
  orderId,
  externalShowId: undefined,
  productId: undefined,
  clickId: undefined,
  createdAt: '2026-11-24T18:00:00.000Z',
  total: { amount, currency: 'USD' },
  refunded: { amount: 0, currency: 'USD' },
  status: 'COMPLETED',
  commission: undefined,
});

test("target t's order x:1 and target t:x's order 1 are two orders", async () => {
  const [a] = await svc.rt.attribution.ingestPlatformOrders('rp', 't', [order('x:1', 1000)], 'webhook');
  const [b] = await svc.rt.attribution.ingestPlatformOrders('rp', 't:x', [order('1', 2000)], 'webhook');
  expect([a?.isNew, b?.isNew]).toEqual([true, true]);
  expect((await svc.rt.attribution.orders('rp')).map((o) => [o.order.targetId, o.order.orderId, o.gross]).sort()).toEqual([
    ['t', 'x:1', 1000],
    ['t:x', '1', 2000],
  ]);
  expect(await svc.rt.attribution.order('rp', 'x:1', 't')).toMatchObject({ orderId: 'x:1', total: { amount: 1000 } });
  expect(await svc.rt.attribution.order('rp', '1', 't:x')).toMatchObject({ orderId: '1', total: { amount: 2000 } });
});

test("reconciliation's ledger of target t holds only target t's orders", async () => {
  await svc.rt.attribution.ingestPlatformOrders('rp', 't:y', [order('5', 3000)], 'webhook');
  const ledger = svc.rt.attribution.targetLedger('rp', 't', { fromMs: 0, toMs: Date.parse('2027-01-01') });
  const seen: string[] = [];
  for await (const page of ledger.scan()) seen.push(...page.map((o) => o.orderId));
  await ledger.close();
  expect(seen).toEqual(['x:1']);
});

test('an order of a target with ":" stored under the ref from before keyPart is found again, not stored twice', async () => {
  // what the previous code stored: ref `@t:z:7`, the order id derived from it
  const legacy = legacyPlatformOrderRef('t:z', '7');
  const o = { ref: legacy, orderId: '7', source: 'platform_webhook' as const, targetId: 't:z', clickId: undefined, showId: undefined, externalShowId: undefined, productId: undefined, createdAt: '2026-11-24T18:00:00.000Z', total: { amount: 700, currency: 'USD' }, lines: [] };
  await new AttributionRepository(svc.rt.redis, svc.rt.keys).applyOrder('rp', o, { attributed: false, reason: 'no_click', clickId: undefined }, { nowMs: Date.now(), holdMs: 0 });
  const [again] = await svc.rt.attribution.ingestPlatformOrders('rp', 't:z', [order('7', 700)], 'report');
  expect(again).toMatchObject({ ref: legacy, isNew: false });
  expect((await svc.rt.attribution.orders('rp')).filter((s) => s.order.targetId === 't:z').map((s) => s.ref)).toEqual([legacy]);
  expect(await svc.rt.attribution.order('rp', '7', 't:z')).toMatchObject({ orderId: '7', ref: legacy });
});

/** What the code before keyPart stored for a platform order of `targetId` (ref `@<targetId>:<orderId>`), or under `ref`. */
async function storeRaw(targetId: string, orderId: string, amount: number, ref = legacyPlatformOrderRef(targetId, orderId)): Promise<void> {
  const o = { ref, orderId, source: 'platform_webhook' as const, targetId, clickId: undefined, showId: undefined, externalShowId: undefined, productId: undefined, createdAt: '2026-11-24T18:00:00.000Z', total: { amount, currency: 'USD' }, lines: [] };
  await new AttributionRepository(svc.rt.redis, svc.rt.keys).applyOrder('rp', o, { attributed: false, reason: 'no_click', clickId: undefined }, { nowMs: Date.now(), holdMs: 0 });
}

const period = { fromMs: 0, toMs: Date.parse('2027-01-01') };

async function reconcileView(targetId: string, lookup: string[]): Promise<{ found: string[]; scanned: string[] }> {
  const ledger = svc.rt.attribution.targetLedger('rp', targetId, period);
  const found = (await ledger.lookup(lookup)).map((f) => f.order.orderId);
  const scanned: string[] = [];
  for await (const page of ledger.scan()) scanned.push(...page.map((o) => o.orderId));
  await ledger.close();
  return { found, scanned };
}

test("reconciliation's ledger of target t:z finds its order stored under the legacy ref, by lookup and by scan", async () => {
  // `@t:z:7` stored by the test above
  expect(await reconcileView('t:z', ['7'])).toEqual({ found: ['7'], scanned: [] });
  expect(await reconcileView('t:z', [])).toEqual({ found: [], scanned: ['7'] });
});

test("reconciliation's ledger of target t takes no legacy order of target t:z (whose ref starts `@t:`)", async () => {
  expect(await reconcileView('t', ['z:7'])).toEqual({ found: [], scanned: ['x:1'] });
});

test('an order stored under both its legacy and its new ref comes back once', async () => {
  // e.g. written by an instance of each version during a rolling upgrade
  await storeRaw('t:w', '9', 900);
  await storeRaw('t:w', '9', 900, platformOrderRef('t:w', '9'));
  expect(await reconcileView('t:w', ['9'])).toEqual({ found: ['9'], scanned: [] });
  expect(await reconcileView('t:w', [])).toEqual({ found: [], scanned: ['9'] });
  expect(await reconcileView('t', [])).toEqual({ found: [], scanned: ['x:1'] });
});
