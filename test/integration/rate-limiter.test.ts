/**
 * The shared per-account limiter (src/store/rate-limiter.ts) against a real redis-server: a block
 * never gets shorter, and time comes from Redis, so workers whose clocks disagree still share one
 * window and one block. A worker with a skewed clock is played by shifting Date.now in this process
 * while that worker's call runs.
 */
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis, type RedisClient } from '../../src/store/redis.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';
import { caught } from '../helpers/adapter-context.js';
import { withClockSkew } from '../helpers/clock.js';
import { withAttemptDeadline } from '../../src/targets/attempt-deadline.js';
import { withRunTokens } from '../../src/lib/request-context.js';

let server: TestRedis;
let redis: RedisClient;
const keys = new Keys('rl');
let n = 0;

beforeAll(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url }, 'worker');
});
afterAll(async () => {
  redis.disconnect();
  await server.destroy();
});

/** The wait the limiter asks for, or 0 when the slot was granted. */
async function waitOf(limiter: RedisRateLimiter): Promise<number> {
  try {
    await limiter.acquire();
    return 0;
  } catch (err) {
    if (!(err instanceof RateLimitedError)) throw err;
    return err.delayMs;
  }
}

const HOUR = 3_600_000;

test('a shorter block never shortens a longer one; a longer one extends it', async () => {
  const limiter = new RedisRateLimiter(redis, keys, `t${++n}`, undefined);
  await limiter.blockUntil(Date.now() + 60_000, 'quota');
  await limiter.blockUntil(Date.now() + 1_000, 'retry-after 1 s');
  const wait = await waitOf(limiter);
  expect(wait).toBeGreaterThan(55_000);
  expect(await redis.get(keys.targetLimit(`t${n}`, 'blocked-reason'))).toBe('quota');
  await limiter.blockUntil(Date.now() + 120_000, 'quota 2');
  expect(await waitOf(limiter)).toBeGreaterThan(115_000);
  expect(await redis.get(keys.targetLimit(`t${n}`, 'blocked-reason'))).toBe('quota 2');
});

test('the window is measured on the Redis clock: a worker whose clock runs an hour ahead gets no extra slot', async () => {
  const id = `t${++n}`;
  const onTime = new RedisRateLimiter(redis, keys, id, { requests: 1, windowMs: 10_000 });
  const ahead = new RedisRateLimiter(redis, keys, id, { requests: 1, windowMs: 10_000 });
  expect(await waitOf(onTime)).toBe(0);
  const wait = await withClockSkew(HOUR, () => waitOf(ahead));
  expect(wait).toBeGreaterThan(0);
  expect(wait).toBeLessThanOrEqual(10_000);
  // …and one whose clock is behind is not told to wait for an hour.
  const behind = await withClockSkew(-HOUR, () => waitOf(new RedisRateLimiter(redis, keys, id, { requests: 1, windowMs: 10_000 })));
  expect(behind).toBeGreaterThan(0);
  expect(behind).toBeLessThanOrEqual(10_000);
});

test('a block holds on the Redis clock whichever worker set it and whichever worker asks', async () => {
  const id = `t${++n}`;
  const onTime = new RedisRateLimiter(redis, keys, id, undefined);
  await onTime.blockUntil(Date.now() + 60_000, 'retry-after 60 s');
  const askedByFast = await withClockSkew(HOUR, () => waitOf(new RedisRateLimiter(redis, keys, id, undefined)));
  expect(askedByFast).toBeGreaterThan(55_000);
  expect(askedByFast).toBeLessThanOrEqual(60_000);

  const id2 = `t${++n}`;
  // A worker an hour ahead says "Retry-After: 30": that is 30 s for everybody, not an hour and 30 s.
  await withClockSkew(HOUR, () => new RedisRateLimiter(redis, keys, id2, undefined).blockUntil(Date.now() + 30_000, 'retry-after 30 s'));
  const wait = await waitOf(new RedisRateLimiter(redis, keys, id2, undefined));
  expect(wait).toBeGreaterThan(25_000);
  expect(wait).toBeLessThanOrEqual(30_000);
});

test('a take sent again with its own member (a batched call that failed as a whole after it ran) is granted once, not charged twice', async () => {
  // nodeTake's `fail` path re-sends each token's ACQUIRE with the same arguments through scAcquire;
  // NODE_ACQUIRE_LUA may have taken it already. With limit 1 that retry waited a whole window.
  const targetId = `t${++n}`;
  const limiter = new RedisRateLimiter(redis, keys, targetId, { requests: 1, windowMs: 60_000 });
  const args = limiter.prepay().args;
  const win = keys.targetLimit(targetId, 'window');
  const block = keys.targetLimit(targetId, 'blocked');
  const useCases = keys.targetLimit(targetId, 'blocked-use-cases');
  expect(await redis.scAcquire(win, block, useCases, ...args)).toBe(0);
  expect(await redis.scAcquire(win, block, useCases, ...args)).toBe(0); // the same take: granted, nothing more taken
  expect(await redis.zcard(win)).toBe(1);
  // Another take (its own member) still finds the window full.
  expect(await waitOf(limiter)).toBeGreaterThan(55_000);
  const other = limiter.prepay().args;
  expect(other[3]).not.toBe(args[3]); // members are unique per take
  expect(await redis.scAcquire(win, block, useCases, ...other)).toBeGreaterThan(55_000);
  expect(await redis.zcard(win)).toBe(1);
});

test("a use case's block holds the calls naming it (the longest of several named); a block whose time is over is deleted, not kept alive by a later one", async () => {
  const id = `t${++n}`;
  const limiter = new RedisRateLimiter(redis, keys, id, undefined);
  const hash = keys.targetLimit(id, 'blocked-use-cases');
  await limiter.blockUntil(Date.now() + 60_000, 'facebook throttling (pages)', 'pages');
  await limiter.blockUntil(Date.now() + 50, 'facebook throttling (ads_management)', 'ads_management');
  await waitFor(() => limiter.acquire(1, 'ads_management').then(() => true, () => false), 5_000, 10);
  await limiter.blockUntil(Date.now() + 120_000, 'facebook throttling (catalog_management)', 'catalog_management');
  expect(Object.keys(await redis.hgetall(hash)).sort()).toEqual(['catalog_management', 'pages']);
  expect(await caught(limiter.acquire(1, 'pages'))).toMatchObject({ delayMs: expect.any(Number) });
  const both = await caught(limiter.acquire(1, ['pages', 'catalog_management']));
  expect((both as RateLimitedError).delayMs).toBeGreaterThan(115_000);
  await limiter.acquire(1, 'instagram');
});

/** Round trips (EVALSHA/EVAL calls) and HGETs this file's redis-server ran while `fn` ran. */
async function commandsOf(fn: () => Promise<unknown>): Promise<{ trips: number; hget: number }> {
  await redis.config('RESETSTAT');
  await fn();
  const info = await redis.info('commandstats');
  const calls = (cmd: string): number => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { trips: calls('evalsha') + calls('eval'), hget: calls('hget') };
}

test('an acquire is one round trip, a Facebook one that names use cases too (their blocks are read in the acquire script); a call that names none reads no use case', async () => {
  const id = `t${++n}`;
  const limiter = new RedisRateLimiter(redis, keys, id, { requests: 100, windowMs: 60_000 });
  const win = keys.targetLimit(id, 'window');
  // The scripts loaded first (a script's first EVALSHA is answered NOSCRIPT and sent again as EVAL).
  await limiter.acquire(1, ['pages']);
  await withAttemptDeadline(Date.now() + 60_000, () => limiter.acquire(1, ['pages']), win);
  expect(await commandsOf(() => limiter.acquire(1, ['pages', 'catalog_management']))).toEqual({ trips: 1, hget: 2 });
  expect(await commandsOf(() => limiter.acquire())).toEqual({ trips: 1, hget: 0 });
  // The step's start took the token (IntentRepository.scoped): only the use cases' blocks are read.
  expect(await commandsOf(() => withAttemptDeadline(Date.now() + 60_000, () => limiter.acquire(1, 'pages'), win))).toEqual({ trips: 1, hget: 1 });
  expect(await redis.zcard(win)).toBe(3);
  // A use case's block refuses in that one call, and takes no token.
  await limiter.blockUntil(Date.now() + 60_000, 'facebook throttling (pages)', 'pages');
  let refused: unknown;
  expect(await commandsOf(async () => (refused = await caught(limiter.acquire(1, ['catalog_management', 'pages']))))).toEqual({ trips: 1, hget: 2 });
  expect((refused as RateLimitedError).delayMs).toBeGreaterThan(55_000);
  expect(await redis.zcard(win)).toBe(3);
});

test('a sync run refused after it took k tokens waits until k + 1 are free, not until the oldest entry leaves (which freed one: the run spent it on its first request and was refused the next, for ever)', async () => {
  const id = `t${++n}`;
  const limiter = new RedisRateLimiter(redis, keys, id, { requests: 2, windowMs: 60_000 });
  const win = keys.targetLimit(id, 'window');
  const [sec] = await redis.time();
  // Another run's request, 30 s ago: it leaves the window in ~30 s.
  await redis.zadd(win, Number(sec) * 1000 - 30_000, 'other:1');
  const run = await withRunTokens(async () => [await waitOf(limiter), await waitOf(limiter)]);
  // The run's read took the free token; its write is refused until the read's token leaves too (~60 s),
  // when the run can send both again. Until the other run's entry leaves (~30 s) freed only one.
  expect(run[0]).toBe(0);
  expect(run[1]).toBeGreaterThan(55_000);
  // Outside a run (and a run's first refusal) the wait is unchanged: until the oldest entry leaves.
  expect(await waitOf(limiter)).toBeLessThan(35_000);
  expect(await withRunTokens(() => waitOf(limiter))).toBeLessThan(35_000);
  // A token the step's start took for the run's request (IntentRepository: prepaid) is the run's too.
  const id2 = `t${++n}`;
  const stepped = new RedisRateLimiter(redis, keys, id2, { requests: 2, windowMs: 60_000 });
  const win2 = keys.targetLimit(id2, 'window');
  const [sec2] = await redis.time();
  await redis.zadd(win2, Number(sec2) * 1000 - 30_000, 'other:1', Number(sec2) * 1000, 'step:1');
  const afterStep = await withRunTokens(async () => {
    await withAttemptDeadline(Date.now() + 60_000, () => stepped.acquire(), win2);
    return waitOf(stepped);
  });
  expect(afterStep).toBeGreaterThan(55_000);
});

test('a window holding more entries than the limit (a limit lowered) waits until enough of them leave, not until the oldest does', async () => {
  const id = `t${++n}`;
  const limiter = new RedisRateLimiter(redis, keys, id, { requests: 2, windowMs: 60_000 });
  const win = keys.targetLimit(id, 'window');
  const [sec] = await redis.time();
  const now = Number(sec) * 1000;
  // Four entries under a limit of two (taken under a higher one): 50, 40, 30 and 20 s old.
  await redis.zadd(win, now - 50_000, 'a:1', now - 40_000, 'b:1', now - 30_000, 'c:1', now - 20_000, 'd:1');
  // One token is free once three have left (the 30 s old one: ~30 s); the oldest leaving (~10 s) frees none.
  const wait = await waitOf(limiter);
  expect(wait).toBeGreaterThan(25_000);
  expect(wait).toBeLessThanOrEqual(31_000);
});
