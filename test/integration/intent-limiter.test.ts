/**
 * A step whose `run()` begins with a request through the target's limiter (OnceOptions.limitedRequest)
 * takes that request's token in its start's Lua step (IntentRepository.scoped with the limiter,
 * INTENT_START): the attempt's first acquire() uses it instead of a round trip of its own, and the
 * limit is kept exactly — a step found done takes no token, a full window refuses the start with the
 * limiter's RateLimitedError and writes nothing, later requests of the attempt take tokens as always.
 * Real redis-server.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let n = 0;

beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the runs itself
});
afterAll(async () => {
  await svc?.close();
});

async function setUp(requests: number) {
  const { intents, shows, redis, keys } = svc.rt;
  const id = `il${++n}`;
  const [P, S, T] = ['ilp', `s-${id}`, `t-${id}`];
  const limiter = new RedisRateLimiter(redis, keys, `lim-${id}`, { requests, windowMs: 60_000 });
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  await shows.saveMirror(P, S, newMirror(T, 'youtube'), got.lease);
  const once = intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { limiter });
  const used = async (): Promise<number> => redis.zcard(keys.targetLimit(`lim-${id}`, 'window'));
  const intent = async (step: string) => redis.get(keys.intent(P, S, T, `g0:pin:p1:1:${step}`));
  return { limiter, once, used, intent };
}

test('the start takes the first request\'s token; the attempt\'s acquire() uses it, a second one takes its own', async () => {
  const { limiter, once, used } = await setUp(5);
  const sent: number[] = [];
  const r = await once(
    'message',
    async () => {
      sent.push(await used()); // the token was taken by the start, before run()
      await limiter.acquire(1);
      sent.push(await used());
      await limiter.acquire(1);
      return { id: 'm1' };
    },
    undefined,
    { limitedRequest: true },
  );
  expect(r).toEqual({ id: 'm1' });
  expect(sent).toEqual([1, 1]);
  expect(await used()).toBe(2); // one token per request, none twice
});

test('a step found done takes no token', async () => {
  const { limiter, once, used } = await setUp(5);
  const run = async () => {
    await limiter.acquire(1);
    return { id: 'm2' };
  };
  await once('message', run, undefined, { limitedRequest: true });
  expect(await used()).toBe(1);
  expect(await once('message', run, undefined, { limitedRequest: true })).toEqual({ id: 'm2' });
  expect(await used()).toBe(1);
});

test('a full window refuses the start with the limiter\'s RateLimitedError and writes nothing', async () => {
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
