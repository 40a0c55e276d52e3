/**
 * The external-show index converges (issue 8, item 3): if its write fails after a mirror got its
 * platform show (here: the entry is deleted right after the sync wrote it, as if the write had failed
 * or the process had died between the two steps), platform orders naming that show are stored
 * unattributed; the next sync of the mirror writes the entry again and those orders are attributed
 * after all — with new ledger entries, the old ones untouched, exactly once however often it runs.
 * Real HTTP: the Whatnot simulator sends its order webhooks to the service. Syncs are run directly
 * (no workers) so that each step is deterministic.
 */
import fc from 'fast-check';
import { applyBps } from '../../src/domain/money.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import type { LedgerEntry } from '../../src/domain/order.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const WEBHOOK_SECRET = 'whsec_' + Buffer.from('reindex-test-whatnot-secret').toString('base64');
let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  sim = await startSim();
  svc = await startService();
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

interface OrderView {
  attribution: { attributed: boolean; via?: string; showId?: string; reason?: string };
  commission: { amount: number; currency: string };
  entries: LedgerEntry[];
}
interface Report {
  totals: { showId: string; targetId: string; orders: number; grossAmount: number; refundedAmount: number; commission: number }[];
  unattributed: { orders: number; grossAmount: number }[];
}

test('orders stored unattributed because the index write was lost are attributed when a later sync re-asserts it', async () => {
  const secret = await createPartner(svc, 'ri');
  const t = await svc.api('/v1/partners/ri/targets', {
    json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken!, webhookSecret: WEBHOOK_SECRET }, baseUrl: sim.base('whatnot'), commissionRateBps: 1000 },
  });
  expect(t.status).toBe(201);
  const show = sampleShow('r1');
  expect((await sendEvent(svc, 'ri', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'ri', showId: 'r1', targetId: 'wn' };
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Reindex show' })) as { externalId: string };
  expect((await svc.api('/v1/partners/ri/shows/r1/mirrors/wn', { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect(await svc.rt.syncService.sync(job)).toEqual({ kind: 'done', state: 'live' });
  const indexKey = svc.rt.keys.targetExternalShow('wn', externalId);
  expect(await svc.rt.redis.get(indexKey)).toBe('r1');

  // The index write is lost.
  await svc.rt.redis.del(indexKey);

  // Two platform orders arrive by webhook; one of them is partly refunded.
  await sim.control('PUT', '/_sim/whatnot/webhook', { url: `${svc.url}/v1/platform-webhooks/wn`, secret: WEBHOOK_SECRET });
  const o1 = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 4000, currency: 'USD' } })) as { orderId: string };
  const o2 = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p2', total: { amount: 2500, currency: 'USD' } })) as { orderId: string };
  await sim.control('POST', `/_sim/whatnot/orders/${o2.orderId}/refunds`, { amount: { amount: 1000, currency: 'USD' } });
  const order = async (id: string): Promise<OrderView> => (await (await svc.api(`/v1/partners/ri/attribution/orders/${id}?targetId=wn`)).json()) as OrderView;
  await waitFor(async () => (await svc.rt.attribution.order('ri', o1.orderId, 'wn')) !== null);
  await waitFor(async () => (await svc.rt.attribution.order('ri', o2.orderId, 'wn'))?.refundedAmount === 1000);

  for (const id of [o1.orderId, o2.orderId]) {
    const v = await order(id);
    expect(v.attribution).toMatchObject({ attributed: false, reason: 'unknown_show' });
    expect(v.commission.amount).toBe(0);
    expect(v.entries).toEqual([]);
  }
  const before = (await (await svc.api('/v1/partners/ri/attribution')).json()) as Report;
  expect(before.totals).toEqual([]);
  expect(before.unattributed).toEqual([{ currency: 'USD', orders: 2, grossAmount: 6500 }]);

  // A later sync of the mirror (any change, a resync, the sweep) writes the entry again …
  expect(await svc.rt.syncService.sync(job)).toEqual({ kind: 'done', state: 'live' });
  expect(await svc.rt.redis.get(indexKey)).toBe('r1');
  // … and the waiting orders are attributed to the show, with new ledger entries only.
  const v1 = await order(o1.orderId);
  expect(v1.attribution).toMatchObject({ attributed: true, via: 'platform_show', showId: 'r1' });
  expect(v1.commission).toEqual({ amount: 400, currency: 'USD' });
  expect(v1.entries.map((e) => [e.seq, e.kind, e.amount])).toEqual([[1, 'accrual', 400]]);
  const v2 = await order(o2.orderId);
  expect(v2.commission).toEqual({ amount: 150, currency: 'USD' }); // 10 % of 2500 − 1000
  expect(v2.entries.map((e) => [e.seq, e.kind, e.amount])).toEqual([
    [1, 'accrual', 250],
    [2, 'reversal', 100],
  ]);
  const after = (await (await svc.api('/v1/partners/ri/attribution')).json()) as Report;
  expect(after.totals).toEqual([{ showId: 'r1', targetId: 'wn', currency: 'USD', orders: 2, grossAmount: 6500, refundedAmount: 1000, commission: 550 }]);
  expect(after.unattributed).toEqual([]);

  // Exactly once: more syncs, a webhook redelivery and a reconciliation change nothing.
  expect(await svc.rt.syncService.sync(job)).toEqual({ kind: 'done', state: 'live' });
  await svc.rt.attribution.ingestPlatformOrders('ri', 'wn', [
    { orderId: o1.orderId, externalShowId: externalId, productId: 'p1', clickId: undefined, createdAt: new Date().toISOString(), total: { amount: 4000, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined },
  ], 'webhook');
  expect((await order(o1.orderId)).entries).toEqual(v1.entries);
  expect((await order(o2.orderId)).entries).toEqual(v2.entries);
  expect((await (await svc.api('/v1/partners/ri/attribution')).json()) as Report).toEqual(after);
  expect(await svc.rt.redis.scard(svc.rt.keys.targetExternalShowWaiting('wn', externalId))).toBe(0);
});

test('an order that arrives while the entry is missing and is delivered again after it is back is attributed on that delivery', async () => {
  const secret = await createPartner(svc, 'ri2');
  const t = await svc.api('/v1/partners/ri2/targets', {
    json: { id: 'wn2', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken!, webhookSecret: WEBHOOK_SECRET }, baseUrl: sim.base('whatnot'), commissionRateBps: 500 },
  });
  expect(t.status).toBe(201);
  await sendEvent(svc, 'ri2', secret, showEvent('show.scheduled', sampleShow('r2'), '2026-11-24T17:00:00Z'));
  const platformOrder = { orderId: 'late-1', externalShowId: 'room-x', productId: undefined, clickId: undefined, createdAt: new Date().toISOString(), total: { amount: 1000, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined };
  const [first] = await svc.rt.attribution.ingestPlatformOrders('ri2', 'wn2', [platformOrder], 'webhook');
  expect(first).toMatchObject({ isNew: true, attributed: false });
  // The entry appears without a sync telling attribution (e.g. written by a sync that crashed before it could).
  await svc.rt.redis.set(svc.rt.keys.targetExternalShow('wn2', 'room-x'), 'r2');
  const [again] = await svc.rt.attribution.ingestPlatformOrders('ri2', 'wn2', [platformOrder], 'webhook');
  expect(again).toMatchObject({ isNew: false, attributed: true });
  const v = await svc.rt.attribution.order('ri2', 'late-1', 'wn2');
  expect(v!.entries.map((e) => [e.kind, e.amount])).toEqual([['accrual', 50]]);
});

test('property: re-attribution keeps accrued − reversed = round-half-up(net × rate) through later refunds, and runs once', async () => {
  await createPartner(svc, 'rp');
  const t = await svc.api('/v1/partners/rp/targets', {
    json: { id: 'wnp', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, baseUrl: sim.base('whatnot'), commissionRateBps: 1 },
  });
  expect(t.status).toBe(201);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 10 ** 9 }),
      fc.integer({ min: 0, max: 10_000 }),
      fc.array(fc.integer({ min: 0, max: 10 ** 9 }), { maxLength: 3 }),
      fc.integer({ min: 1, max: 3 }),
      async (gross, rate, refundSteps, runs) => {
        await svc.api('/v1/partners/rp/targets/wnp', { method: 'PATCH', json: { commissionRateBps: rate } });
        const room = `room-${++n}`;
        const id = `o-${n}`;
        const po = (refunded: number) => ({ orderId: id, externalShowId: room, productId: undefined, clickId: undefined, createdAt: new Date().toISOString(), total: { amount: gross, currency: 'USD' }, refunded: { amount: refunded, currency: 'USD' }, status: undefined, commission: undefined });
        // Cumulative refunds: some before the show is indexed, the rest after.
        const cumulative = refundSteps.reduce<number[]>((acc, x) => [...acc, (acc.at(-1) ?? 0) + x], []);
        const split = Math.floor(cumulative.length / 2);
        await svc.rt.attribution.ingestPlatformOrders('rp', 'wnp', [po(0)], 'webhook');
        for (const r of cumulative.slice(0, split)) await svc.rt.attribution.ingestPlatformOrders('rp', 'wnp', [po(r)], 'webhook');
        await svc.rt.redis.set(svc.rt.keys.targetExternalShow('wnp', room), 'show-p');
        for (let i = 0; i < runs; i++) await svc.rt.attribution.attributeWaiting('rp', 'wnp', room);
        for (const r of cumulative.slice(split)) await svc.rt.attribution.ingestPlatformOrders('rp', 'wnp', [po(r)], 'webhook');
        const v = (await svc.rt.attribution.order('rp', id, 'wnp'))!;
        expect(v.attribution).toMatchObject({ attributed: true, showId: 'show-p' });
        expect(v.accrued - v.reversed).toBe(applyBps(Math.max(gross - (cumulative.at(-1) ?? 0), 0), rate));
        expect(v.entries.filter((e) => e.kind === 'accrual')).toHaveLength(1);
        expect(v.entries.map((e) => e.seq)).toEqual(v.entries.map((_, i) => i + 1));
      },
    ),
    { numRuns: 40 },
  );
});
