/**
 * The ledger's aggregate counters are int64 in Redis (HINCRBY) and a sum of amounts, each at most
 * Number.MAX_SAFE_INTEGER, passes int64 after about 1024 of them on one counter. HINCRBY then refused
 * and the order's script failed (every retry again). The scripts carry 2^62 into a second field instead
 * (src/store/attribution.repository.ts `hinc`), and the reader adds it back: the step succeeds and the
 * aggregates stay exact. Real redis-server; the counters are brought near the limit directly (1024
 * orders of the largest amount would say the same, slower).
 */
import type { Attribution, NormalizedOrder } from '../../src/domain/order.js';
import { AttributionRepository, DAY_MS, ledgerBucket } from '../../src/store/attribution.repository.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { startTestRedis } from '../helpers/redis-cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';

const MAX = Number.MAX_SAFE_INTEGER;
const NOW = Date.parse('2026-11-10T12:00:00.000Z');
const OPTS = { nowMs: NOW, holdMs: DAY_MS };
const P = 'ovf';
const keys = new Keys('ovf');

let redis: TestRedis;
let client: RedisClient;
let repo: AttributionRepository;
beforeAll(async () => {
  redis = await startTestRedis();
  client = redis.client();
  repo = new AttributionRepository(client, keys);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.destroy();
});

const order = (ref: string): NormalizedOrder => ({
  ref,
  orderId: ref,
  source: 'partner',
  targetId: undefined,
  clickId: 'c1',
  showId: 's1',
  externalShowId: undefined,
  productId: 'p1',
  createdAt: '2026-11-10T10:00:00.000Z',
  total: { amount: MAX, currency: 'USD' },
  lines: [],
});
const attributed: Attribution = { attributed: true, via: 'click', showId: 's1', targetId: 't1', productId: 'p1', clickId: 'c1', rateBps: 10_000 };

test('an order whose amount takes a counter past int64 is stored, and the aggregates stay exact', async () => {
  // Two refs in the same bucket: the same counters.
  const refs: string[] = [];
  for (let i = 0; refs.length < 2; i++) if (ledgerBucket(`o${i}`) === ledgerBucket('o0')) refs.push(`o${i}`);
  const [first, second] = refs as [string, string];
  const bucket = ledgerBucket(first);
  const day = Math.floor(Date.parse('2026-11-10T10:00:00.000Z') / DAY_MS);
  await repo.applyOrder(P, order(first), attributed, OPTS);

  // As if 1023 more orders of the largest amount had been added: one more passes 2^63 − 1.
  const near = (1n << 63n) - BigInt(MAX);
  for (const key of [keys.ledgerDayAgg(P, bucket, day), keys.ledgerShowAgg(P, bucket, 's1')]) {
    const fields = Object.keys(await client.hgetall(key)).filter((f) => f[0] === 'g' || f[0] === 'c');
    expect(fields).toHaveLength(2);
    for (const f of fields) await client.hset(key, f, String(near));
  }

  await expect(repo.applyOrder(P, order(second), attributed, OPTS)).resolves.toMatchObject({ isNew: true });
  const expected = near + BigInt(MAX); // 2^63: one past int64
  const [row] = await repo.dayAggregates(P, [day]);
  expect(row).toMatchObject({ orders: 2, gross: expected, commission: expected, refunded: 0 });
  const byDay = await repo.showAggregates(P, 's1');
  expect(byDay.get(day)).toEqual([expect.objectContaining({ orders: 2, gross: expected, commission: expected })]);

  // Taking the order's contribution back out (a full refund) goes back through the carry exactly.
  await repo.applyRefund(P, second, { id: 'rf1', amount: MAX, currency: 'USD', createdAt: '2026-11-10T11:00:00.000Z' }, OPTS);
  const [after] = await repo.dayAggregates(P, [day]);
  expect(after).toMatchObject({ orders: 2, gross: expected, refunded: MAX, commission: near });
});
