/**
 * The token record's bookkeeping between processes, over real Redis: the memo a process keeps of the
 * last token (not used in its last MEMO_MARGIN_MS) and the refresh leases (`refreshing`: what another
 * process's dropGrant waits for before it drops a refused grant).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));

const keys = new Keys('tl');
const box = new SecretBox(randomBytes(32).toString('base64'));
const store = (id: string, client: RedisClient = redis): RedisTokenStore => new RedisTokenStore(client, keys, box, id);
/** What `p` settled to within `ms`, or 'pending'. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => Promise.race([p, delay(ms, 'pending' as const, { ref: false })]);

test('a token in its last MEMO_MARGIN_MS is read again from Redis, not reused from the memo: another process refreshed it', async () => {
  const mine = store('tgt_memo');
  await mine.set({ accessToken: 'at_1', expiresAt: Date.now() + 60_000, refreshToken: 'rt_1' });
  const fresh = { accessToken: 'at_2', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt_2' };
  await store('tgt_memo').set(fresh);
  expect(await mine.get()).toEqual(fresh);
});

test('a refresh lease is kept for the refresh timeout plus the margin to store its result, and its set ends with it', async () => {
  const key = keys.targetRefreshing('tgt_lease');
  const done = await store('tgt_lease').refreshing(1_000);
  // The set of leases expires (a process that died mid-refresh leaves nothing for good)...
  const ttl = await redis.pttl(key);
  expect(ttl).toBeGreaterThan(5_000);
  expect(ttl).toBeLessThanOrEqual(6_000);
  // ...and the lease lasts the request's timeout and the store margin, from Redis's clock.
  const [sec, usec] = await redis.time();
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const [score] = await redis.zrange(key, 0, -1, 'WITHSCORES').then((r) => r.slice(1));
  expect(Number(score) - now).toBeGreaterThan(5_000);
  await done();
});

test("a lease that ended (its process died mid-refresh, the set kept alive by others) no longer holds up another process's dropGrant", async () => {
  const id = 'tgt_dead_lease';
  const key = keys.targetRefreshing(id);
  await store(id).set({ accessToken: 'at_1', expiresAt: 0, refreshToken: 'rt_1' });
  const [sec] = await redis.time();
  await redis.zadd(key, (Number(sec) - 10) * 1000, 'died');
  await redis.pexpire(key, 60_000);
  expect(await within(store(id).dropGrant('rt_1'), 3_000)).toBe(true);
  expect(await redis.exists(keys.targetToken(id))).toBe(0);
});

test("a process's own refresh under way does not hold up its own dropGrant (the refused refresh drops the grant inside its lease)", async () => {
  const id = 'tgt_own_lease';
  const mine = store(id);
  await mine.set({ accessToken: 'at_1', expiresAt: 0, refreshToken: 'rt_1' });
  const done = await mine.refreshing(60_000);
  try {
    expect(await within(mine.dropGrant('rt_1'), 3_000)).toBe(true);
  } finally {
    await done();
  }
});

test("a refresh that ended (its lease released) no longer holds up another process's dropGrant", async () => {
  const id = 'tgt_released_lease';
  await store(id).set({ accessToken: 'at_1', expiresAt: 0, refreshToken: 'rt_1' });
  const done = await store(id).refreshing(60_000);
  await done();
  expect(await within(store(id).dropGrant('rt_1'), 3_000)).toBe(true);
});
