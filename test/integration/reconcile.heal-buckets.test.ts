/**
 * Remembered heals (issue 12: ten million orders, 1M-order reconciliations): they were one hash per
 * partner, never expiring, read whole (HVALS) by every run and filtered by createdAtMs, so every run
 * read every heal the partner ever had. They are bucketed by the UTC day of the order's createdAtMs
 * (kept 400 days) and a run reads only the days its period overlaps, plus the legacy hash written
 * before the buckets (rolling deploy: it no longer grows). Real Redis.
 */
import { Keys } from '../../src/store/keys.js';
import { ReconcileRepository, type Discrepancy } from '../../src/store/reconcile.repository.js';
import type { RedisClient } from '../../src/store/redis.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

const DAY = 86_400_000;
const D0 = Date.parse('2026-11-10T00:00:00Z');
const keys = new Keys('hbtest');

let client: RedisClient;
testRedisClientPerFile((started) => ({ client } = started));

const heal = (orderId: string, detail = 'healed', targetId = 't1'): Discrepancy => ({ kind: 'missing_in_ledger', targetId, orderId, detail, healed: true });
const ids = (ds: Discrepancy[]): string[] => ds.map((d) => `${d.orderId}:${d.detail}`).sort();

/** The client, counting the hash values it hands out (HVALS/HGETALL/HSCAN replies) and the hashes it read. */
function counting(c: RedisClient): { client: RedisClient; values: () => number; hashes: string[] } {
  let values = 0;
  const hashes: string[] = [];
  const proxy = new Proxy(c, {
    get(t, p) {
      const v: unknown = Reflect.get(t, p, t);
      if (p === 'hvals' || p === 'hgetall' || p === 'hscan' || p === 'hmget' || p === 'hget') {
        return async (...args: unknown[]) => {
          hashes.push(String(args[0]));
          const r: unknown = await (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          values += Array.isArray(r) ? r.length : r && typeof r === 'object' ? Object.keys(r).length : 1;
          return r;
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  return { client: proxy, values: () => values, hashes };
}

test('heals are reported for the periods that cover their day; the latest wins; legacy-hash heals still appear', async () => {
  const repo = new ReconcileRepository(client, keys);
  await repo.rememberHeal('p1', heal('a'), D0 + 3_600_000, 'rec_test'); // day 0
  await repo.rememberHeal('p1', heal('b'), D0 + DAY + 60_000, 'rec_test'); // day 1
  await repo.rememberHeal('p1', heal('c'), D0 + 5 * DAY, 'rec_test'); // day 5
  // The same (target, order, kind) healed again for another createdAtMs (a later day): the latest wins.
  await repo.rememberHeal('p1', heal('d', 'first'), D0 + 10_000, 'rec_test');
  await repo.rememberHeal('p1', heal('d', 'second'), D0 + 2 * DAY + 10_000, 'rec_test');
  // Written by the old code (one hash per partner): still reported.
  await client.hset(keys.reconHealed('p1'), 't1\u0000legacy\u0000missing_in_ledger', JSON.stringify({ ...heal('legacy'), createdAtMs: D0 + DAY + 5 }));
  await client.hset(keys.reconHealed('p1'), 't1\u0000d\u0000missing_in_ledger', JSON.stringify({ ...heal('d', 'legacy'), createdAtMs: D0 + 5 }));
  // another partner's heals are not ours
  await repo.rememberHeal('p2', heal('x'), D0 + 100, 'rec_test');

  expect(ids(await repo.heals('p1', D0, D0 + DAY))).toEqual(['a:healed', 'd:first']);
  expect(ids(await repo.heals('p1', D0 + DAY, D0 + 2 * DAY))).toEqual(['b:healed', 'legacy:healed']);
  expect(ids(await repo.heals('p1', D0, D0 + 3 * DAY))).toEqual(['a:healed', 'b:healed', 'd:second', 'legacy:healed']);
  expect(ids(await repo.heals('p1', D0 + 3 * DAY, D0 + 5 * DAY))).toEqual([]);
  expect(ids(await repo.heals('p1', D0 + 5 * DAY, D0 + 5 * DAY + 1))).toEqual(['c:healed']);
  // a period that starts and ends mid-day: createdAtMs decides, not the bucket
  expect(ids(await repo.heals('p1', D0 + 2 * 3_600_000, D0 + DAY + 120_000))).toEqual(['b:healed', 'legacy:healed']);
  // the bucket expires like the reconciliation records (400 days)
  const ttl = await client.ttl(keys.reconHealedDay('p1', Math.floor((D0 + DAY) / DAY)));
  expect(ttl).toBeGreaterThan(399 * 86_400);
  expect(ttl).toBeLessThanOrEqual(400 * 86_400);
});

test('a run reads only the buckets of its period, not the heals of other days', async () => {
  const writer = new ReconcileRepository(client, keys);
  // 2000 heals spread over 200 days before the period, and 3 in it
  for (let i = 0; i < 2000; i++) await writer.rememberHeal('big', heal(`old-${i}`), D0 - 300 * DAY + (i % 200) * DAY + i, 'rec_test');
  for (let i = 0; i < 3; i++) await writer.rememberHeal('big', heal(`in-${i}`), D0 + i * DAY, 'rec_test');
  const c = counting(client);
  const repo = new ReconcileRepository(c.client, keys);
  expect(ids(await repo.heals('big', D0, D0 + 3 * DAY))).toEqual(['in-0:healed', 'in-1:healed', 'in-2:healed']);
  expect(c.values()).toBe(3);
  // the legacy hash and the three days of the period, nothing else
  expect(c.hashes.filter((k) => k !== keys.reconHealed('big')).sort()).toEqual([0, 1, 2].map((i) => keys.reconHealedDay('big', D0 / DAY + i)).sort());
}, 60_000);

// Review of 5fce89f: the legacy hash was never migrated nor expired, so every run of a partner that had
// it still read every heal the partner ever had. The first run that finds it moves it into the buckets.
test('the legacy hash is moved into the day buckets by the first read; later reads see the same heals without it', async () => {
  const repo = new ReconcileRepository(client, keys);
  const legacy = keys.reconHealed('mig');
  const old = (orderId: string, createdAtMs: number, detail = 'legacy'): [string, string] => [`t1\u0000${orderId}\u0000missing_in_ledger`, JSON.stringify({ ...heal(orderId, detail), createdAtMs })];
  await client.hset(legacy, ...old('m1', D0 + 10), ...old('m2', D0 + DAY + 10), ...old('ancient', Date.now() - 401 * DAY));
  await repo.rememberHeal('mig', heal('m2', 'bucket'), D0 + DAY + 10, 'rec_test'); // newer than the legacy one: kept
  const before = ids(await repo.heals('mig', D0, D0 + 2 * DAY));
  expect(before).toEqual(['m1:legacy', 'm2:bucket']);
  expect(await client.exists(legacy)).toBe(0);
  expect(await client.hkeys(keys.reconHealedDay('mig', D0 / DAY))).toEqual(['t1\u0000m1\u0000missing_in_ledger']);
  expect(await client.ttl(keys.reconHealedDay('mig', D0 / DAY))).toBeGreaterThan(399 * 86_400);
  const c = counting(client);
  expect(ids(await new ReconcileRepository(c.client, keys).heals('mig', D0, D0 + 2 * DAY))).toEqual(before);
  expect(c.values()).toBe(2);
});

test('a heal Redis refuses to store fails the call (it was silently not remembered)', async () => {
  const repo = new ReconcileRepository(client, keys);
  await client.set(keys.reconHealedDay('wt', D0 / DAY), 'not a hash');
  await expect(repo.rememberHeal('wt', heal('w1'), D0 + 1, 'rec_test')).rejects.toThrow(/WRONGTYPE/);
});
