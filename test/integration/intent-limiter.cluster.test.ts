/**
 * On a Redis Cluster the target's limiter keys are in another slot than the step's intent, so the
 * start cannot take the first request's token in its own Lua step (intent-limiter.test.ts, one
 * Redis). A step whose `run()` begins with a request through the limiter (OnceOptions.limitedRequest)
 * takes that token alongside its start instead (same event-loop turn: one round trip for both, not
 * one more before the platform call); the attempt's first acquire() uses it, and a full window fails
 * the step before run() with the limiter's RateLimitedError and forgets its started record (nothing
 * was sent). Real 3 + 3 cluster (WAIT 1, as the service runs there); runs in `npm run test:cluster`.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';
import { startCluster, testTopology, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startService, type TestService } from '../helpers/service.js';

const onCluster = testTopology() === 'cluster' ? describe : describe.skip;

onCluster('a limited step on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let svc: TestService;
  let n = 0;

  beforeAll(async () => {
    cluster = await startCluster();
    svc = await startService({ redis: cluster, env: { REDIS_WAIT_TIMEOUT_MS: '1000' } }); // no workers: the test plays the runs itself
  });
  afterAll(async () => {
    await svc?.close();
    await cluster?.destroy();
  });

  async function setUp(requests: number) {
    const { intents, shows, redis, keys } = svc.rt;
    const id = `ilc${++n}`;
    const [P, S, T] = ['ilcp', `s-${id}`, `t-${id}`];
    const limiter = new RedisRateLimiter(redis, keys, `lim-${id}`, { requests, windowMs: 60_000 });
    const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
    if (!('lease' in got)) throw new Error('A should own the mirror');
    await shows.saveMirror(P, S, newMirror(T, 'youtube'), got.lease);
    const once = intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { limiter });
    const used = async (): Promise<number> => redis.zcard(keys.targetLimit(`lim-${id}`, 'window'));
    const intent = async (step: string) => redis.get(keys.intent(P, S, T, `g0:pin:p1:1:${step}`));
    return { limiter, once, used, intent };
  }

  test("the first request's token is taken alongside the start; the attempt's acquire() uses it, a second one takes its own", async () => {
    expect(svc.rt.redis.isCluster).toBe(true);
    const { limiter, once, used } = await setUp(5);
    const seen: number[] = [];
    const r = await once(
      'message',
      async () => {
        seen.push(await used()); // taken before run()
        await limiter.acquire(1);
        seen.push(await used());
        await limiter.acquire(1);
        return { id: 'm1' };
      },
      undefined,
      { limitedRequest: true },
    );
    expect(r).toEqual({ id: 'm1' });
    expect(seen).toEqual([1, 1]);
    expect(await used()).toBe(2); // one token per request, none twice
  });

  test('a full window fails the step before run() with the limiter\'s RateLimitedError and forgets its started record', async () => {
    const { limiter, once, used, intent } = await setUp(1);
    await limiter.acquire(1); // the window is full
    let ran = false;
    const err = await once(
      'message',
      async () => {
        ran = true;
        return { id: 'never' };
      },
      undefined,
      { limitedRequest: true },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err).toMatchObject({ reason: 'local_limit' });
    expect((err as RateLimitedError).delayMs).toBeGreaterThan(0);
    expect(ran).toBe(false);
    expect(await intent('message')).toBeNull();
    expect(await used()).toBe(1);
  });

  test('without limitedRequest the start takes no token and the request takes its own', async () => {
    const { limiter, once, used } = await setUp(5);
    const seen: number[] = [];
    await once('message', async () => {
      seen.push(await used());
      await limiter.acquire(1);
      return { id: 'm3' };
    });
    expect(seen).toEqual([0]);
    expect(await used()).toBe(1);
  });
});
