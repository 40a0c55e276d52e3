/**
 * Property: the streamed reconciliation of one target (report pages of any size against the ledger
 * on a real Redis, the "named" bookkeeping kept in Redis) finds exactly the discrepancies that
 * comparing the whole report with the whole ledger of the period finds — including orders the report
 * repeats on several pages, ledger orders outside the period and another target's orders.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { AttributionService, VOIDED } from '../../src/attribution/attribution.service.js';
import type { NormalizedOrder } from '../../src/domain/order.js';
import { compareTarget } from '../../src/reconcile/reconcile.compare.js';
import { pagesOf, reconcileTargetStream } from '../../src/reconcile/reconcile.stream.js';
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { Keys } from '../../src/store/keys.js';
import type { Discrepancy } from '../../src/store/reconcile.repository.js';
import type { RedisClient } from '../../src/store/redis.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';
import { keysMatching, runsFor, testRedisClientPerFile } from '../helpers/redis-cluster.js';

const FROM = Date.parse('2026-11-10T00:00:00Z');
const TO = Date.parse('2026-11-13T00:00:00Z');

let client: RedisClient;
testRedisClientPerFile((started) => ({ client } = started));

const scenario = fc.record({
  // One ledger record per order (target + id): a second write of an order is not a new order but a
  // later platform refund floor on it, whose rules ledger.aggregates.property.test.ts covers; this
  // property is about streamed vs whole comparison (CI found the model's 'first write wins' wrong
  // for a repeated order carrying a refund).
  ledger: fc.uniqueArray(
    fc.record({ id: fc.nat(9), target: fc.constantFrom('t1', 't1', 't2'), atH: fc.integer({ min: -30, max: 100 }), gross: fc.integer({ min: 1, max: 5000 }), refunded: fc.nat(3000) }),
    { maxLength: 10, selector: (l) => `${l.target}:${l.id}` },
  ),
  report: fc.array(fc.record({ id: fc.nat(9), gross: fc.integer({ min: 1, max: 5000 }), refunded: fc.nat(3000), status: fc.constantFrom(undefined, 'COMPLETED', 'CANCELLED') }), { maxLength: 12 }),
  pageSize: fc.integer({ min: 1, max: 4 }),
});

let run = 0;
const key = (d: Discrepancy): string => `${d.orderId}|${d.kind}|${d.detail}|${d.healed}`;

test('streamed comparison = whole comparison, for any page size', async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      const partnerId = `rs${run++}`;
      const repo = new AttributionRepository(client, new Keys('rtest'));
      const opts = { nowMs: TO, holdMs: 0 };
      const stored = new Map<string, { orderId: string; currency: string; gross: number; refunded: number; inRange: boolean; target: string }>();
      for (const l of s.ledger) {
        const orderId = `o${l.id}`;
        const createdAt = new Date(FROM + l.atH * 3_600_000).toISOString();
        const order: NormalizedOrder = {
          ref: `@${l.target}:${orderId}`,
          orderId,
          source: 'platform_report',
          targetId: l.target,
          clickId: undefined,
          showId: undefined,
          externalShowId: 'x',
          productId: undefined,
          createdAt,
          total: { amount: l.gross, currency: 'USD' },
          lines: [],
        };
        const floor = l.refunded > 0 ? { refundedFloor: { amount: l.refunded, currency: 'USD', occurredAt: createdAt } } : {};
        await repo.applyOrder(partnerId, order, { attributed: false, reason: 'unknown_show', clickId: undefined }, { ...opts, ...floor });
        // first write wins: what the ledger holds is the first of each ref
        if (!stored.has(order.ref)) {
          const t = Date.parse(createdAt);
          stored.set(order.ref, { orderId, currency: 'USD', gross: l.gross, refunded: l.refunded, inRange: t >= FROM && t < TO, target: l.target });
        }
      }
      const report: PlatformOrder[] = s.report.map((r) => ({
        orderId: `o${r.id}`,
        externalShowId: 'x',
        productId: undefined,
        clickId: undefined,
        createdAt: new Date(FROM).toISOString(),
        total: { amount: r.gross, currency: 'USD' },
        refunded: { amount: r.refunded, currency: 'USD' },
        status: r.status,
        commission: undefined,
      }));
      const ledgerWhole = [...stored.values()].filter((o) => o.target === 't1' && o.inRange).map(({ orderId, currency, gross, refunded }) => ({ orderId, currency, gross, refunded }));
      const expected = compareTarget('t1', report, ledgerWhole, VOIDED).discrepancies.map(key).sort();

      const svc = new AttributionService({ repo, partners: null as never, links: null as never, externalShows: null as never, log: pino({ level: 'silent' }), holdDays: 0 });
      const res = await reconcileTargetStream('t1', pagesOf(report, s.pageSize), svc.targetLedger(partnerId, 't1', { fromMs: FROM, toMs: TO }), VOIDED, async () => undefined);
      expect(res.discrepancies.map(key).sort()).toEqual(expected);
      expect(res.platformOrders).toBe(report.length);
      expect(res.ledgerOrders).toBe(ledgerWhole.length);
      // the run's bookkeeping is gone (on every master of a cluster)
      expect(await keysMatching(client, 'rtest:{lg:' + partnerId + ':*}:rc:*')).toEqual([]);
    }),
    { numRuns: runsFor(80), interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
  );
}, 90_000);

test('a report that fails midway: the pages read are compared and healed, the error comes out, and the run leaves no marks behind', async () => {
  const partnerId = `rs-fail${run++}`;
  const repo = new AttributionRepository(client, new Keys('rtest'));
  const svc = new AttributionService({ repo, partners: null as never, links: null as never, externalShows: null as never, log: pino({ level: 'silent' }), holdDays: 0 });
  const order = (id: string): PlatformOrder => ({
    orderId: id,
    externalShowId: 'x',
    productId: undefined,
    clickId: undefined,
    createdAt: new Date(FROM).toISOString(),
    total: { amount: 100, currency: 'USD' },
    refunded: { amount: 0, currency: 'USD' },
    status: undefined,
    commission: undefined,
  });
  const failure = new Error('page 2 of the report failed');
  let secondAsked = false;
  async function* report(): AsyncGenerator<PlatformOrder[]> {
    yield [order('a1'), order('a2')];
    secondAsked = true;
    throw failure;
  }
  const healedIds: string[] = [];
  const heal = async (cmp: { heal: PlatformOrder[] }): Promise<void> => {
    await new Promise((r) => setTimeout(r, 50)); // still running when the report fails
    healedIds.push(...cmp.heal.map((p) => p.orderId));
  };
  await expect(reconcileTargetStream('t1', report(), svc.targetLedger(partnerId, 't1', { fromMs: FROM, toMs: TO }), VOIDED, heal)).rejects.toBe(failure);
  expect(secondAsked).toBe(true);
  // the first page's comparison finished before the error came out (nothing left running)
  expect(healedIds.sort()).toEqual(['a1', 'a2']);
  expect(await keysMatching(client, 'rtest:{lg:' + partnerId + ':*}:rc:*')).toEqual([]);
});
