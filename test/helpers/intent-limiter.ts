/**
 * A step through the target's limiter (IntentRepository.scoped with `limiter`), played by the test
 * as a run would: the scenarios of test/integration/intent-limiter.test.ts (one Redis: the token is
 * taken in the start's Lua step) and intent-limiter.cluster.test.ts (a Cluster: taken alongside the
 * start). Each returns what it saw; the tests assert on it.
 */
import { newMirror } from '../../src/domain/mirror.js';
import type { Runtime } from '../../src/main/runtime.js';
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import type { Once } from '../../src/targets/target.adapter.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';

export interface LimitedStep {
  limiter: RedisRateLimiter;
  once: Once;
  /** Tokens in the limiter's window. */
  used(): Promise<number>;
  /** The intent record of `step`, null when none. */
  intent(step: string): Promise<string | null>;
}

let n = 0;

/**
 * A mirror of its own (partner `${prefix}p`) owned by run A, saved, and a pin-scoped `once` on it
 * whose target allows `requests` per minute.
 */
export async function limitedStep(rt: Runtime, prefix: string, requests: number): Promise<LimitedStep> {
  const { intents, shows, redis, keys } = rt;
  const id = `${prefix}${++n}`;
  const [P, S, T] = [`${prefix}p`, `s-${id}`, `t-${id}`];
  const limiter = new RedisRateLimiter(redis, keys, `lim-${id}`, { requests, windowMs: 60_000 });
  const got = await intents.acquire(P, S, T, 'tok-A', 30_000);
  if (!('lease' in got)) throw new Error('A should own the mirror');
  await shows.saveMirror(P, S, newMirror(T, 'youtube'), got.lease);
  const once = intents.scoped(P, S, T, 'g0:pin:p1:1', got.lease, { limiter });
  const used = async (): Promise<number> => redis.zcard(keys.targetLimit(`lim-${id}`, 'window'));
  const intent = async (step: string): Promise<string | null> => redis.get(keys.intent(P, S, T, `g0:pin:p1:1:${step}`));
  return { limiter, once, used, intent };
}

/**
 * A limited step whose run() makes two requests through the limiter: what it returned, the tokens
 * used as run() began and after its first acquire(), and at the end.
 */
export async function twoRequests({ limiter, once, used }: LimitedStep): Promise<{ result: unknown; seen: number[]; used: number }> {
  const seen: number[] = [];
  const result = await once(
    'message',
    async () => {
      seen.push(await used()); // a token the start took is in the window before run()
      await limiter.acquire(1);
      seen.push(await used());
      await limiter.acquire(1);
      return { id: 'm1' };
    },
    undefined,
    { limitedRequest: true },
  );
  return { result, seen, used: await used() };
}

/** A limited step started with the window full: what it threw, whether run() ran, its intent record, the tokens used. */
export async function fullWindow({ limiter, once, used, intent }: LimitedStep): Promise<{ err: unknown; ran: boolean; intent: string | null; used: number }> {
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
  return { err, ran, intent: await intent('message'), used: await used() };
}

/**
 * fullWindow's outcome as both tests require it: refused before run() with the limiter's
 * RateLimitedError (local_limit, a delay), no intent record left, the window's one token the only one.
 */
export async function expectFullWindowRefused(step: LimitedStep): Promise<void> {
  const { err, ...rest } = await fullWindow(step);
  expect(err).toBeInstanceOf(RateLimitedError);
  expect(err).toMatchObject({ reason: 'local_limit' });
  expect((err as RateLimitedError).delayMs).toBeGreaterThan(0);
  expect(rest).toEqual({ ran: false, intent: null, used: 1 });
}

/** A step without limitedRequest whose run() makes one request: the tokens used as run() began, and at the end. */
export async function unlimitedStart({ limiter, once, used }: LimitedStep): Promise<{ seen: number[]; used: number }> {
  const seen: number[] = [];
  await once('message', async () => {
    seen.push(await used());
    await limiter.acquire(1);
    return { id: 'm3' };
  });
  return { seen, used: await used() };
}
