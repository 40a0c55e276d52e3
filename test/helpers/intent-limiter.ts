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
import type { RedisClient } from '../../src/store/redis.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';
import { mapApiFailure } from '../../src/targets/youtube/youtube.errors.js';
import { mapFailure as mapWhatnotFailure } from '../../src/targets/whatnot/whatnot.errors.js';

export interface LimitedStep {
  limiter: RedisRateLimiter;
  once: Once;
  /** Tokens in the limiter's window. */
  used(): Promise<number>;
  /** The intent record of `step`, null when none. */
  intent(step: string): Promise<string | null>;
  /** Writes `record` as the intent record of `step`. */
  setIntent(step: string, record: string): Promise<void>;
  /** The limiter's window (zset) and use-case block (hash) keys. */
  limitKeys: { window: string; useCases: string };
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
  const setIntent = async (step: string, record: string): Promise<void> => {
    await redis.set(keys.intent(P, S, T, `g0:pin:p1:1:${step}`), record, 'EX', 86_400);
  };
  const limitKeys = { window: keys.targetLimit(`lim-${id}`, 'window'), useCases: keys.targetLimit(`lim-${id}`, 'blocked-use-cases') };
  return { limiter, once, used, intent, setIntent, limitKeys };
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

/**
 * A write step (limitedRequest, singleRequest, a lookup) that an earlier attempt left started and that
 * settled long ago (a look that finds nothing is trusted at once). This run's look finds nothing; then
 * our own limiter refuses the write before it is sent: `token`, the write's token (the window full:
 * a Cluster's token taken alongside the start; the look takes none here, so that the refusal does not
 * hang on the order in which the take and the look reach Redis), or `use-case`, a block of the write's use case met once its token was granted (a
 * throttle another run met while this one looked; the window allows 2), or `own-look`, a step whose
 * start takes no token (no limitedRequest: YouTube's broadcast insert), at one request per window:
 * the look took the window's token, the write's own is refused. Or the platform refuses the write once
 * it was sent on its token (the window allows 2): `platform-429`, a bare HTTP 429, or `platform-quota`,
 * a 403 quotaExceeded (RateLimitedErrors as YouTube's adapter maps them, not our limiter's
 * 'local_limit'), or `platform-local_limit`, a Whatnot 429 whose problem `type` is `local_limit` (Whatnot's
 * adapter takes the reason from it: our limiter's reason text, not its refusal). Returns the refusal's reason, whether the step was forgotten (else the earlier record
 * is still there), and the next run's requests (the limits emptied first; the platform accepts them).
 */
export async function refusedAfterTrustedLook(
  step: LimitedStep,
  redis: RedisClient,
  how: 'token' | 'use-case' | 'own-look' | 'platform-429' | 'platform-quota' | 'platform-local_limit',
): Promise<{ reason: unknown; left: string; next: string[] }> {
  const { limiter, once, intent, setIntent, limitKeys } = step;
  const [sec] = await redis.time();
  const now = Number(sec) * 1000;
  const earlier = JSON.stringify({ status: 'started', owner: 'job-token-earlier', startedAt: new Date(now - 60_000).toISOString(), until: now - 30_000 });
  await setIntent('message', earlier);
  if (how === 'token') await redis.zadd(limitKeys.window, now, 'other-0:1'); // the window's one token is another run's
  const sent: string[] = [];
  let platformRefuses = how === 'platform-429' || how === 'platform-quota' || how === 'platform-local_limit';
  const write = async (): Promise<{ id: string }> => {
    await limiter.acquire(1, 'pages');
    sent.push('write');
    if (platformRefuses) {
      platformRefuses = false;
      if (how === 'platform-local_limit') {
        const problem = { type: 'local_limit', title: 'Too Many Requests', status: 429 };
        throw mapWhatnotFailure({ kind: 'http', status: 429, body: problem, retryAfter: '1' }, Date.now(), { what: 'add the product', target: { id: 'tgt', partnerId: 'ptn' } }).error;
      }
      const body = how === 'platform-quota' ? { error: { code: 403, message: 'quota', errors: [{ reason: 'quotaExceeded' }] } } : { error: { code: 429, message: 'slow down' } };
      throw mapApiFailure({ kind: 'http', status: how === 'platform-quota' ? 403 : 429, body, retryAfter: undefined }, Date.now()).error;
    }
    return { id: 'm-made' };
  };
  const look = async (): Promise<{ id: string } | null> => {
    if (how !== 'token') await limiter.acquire(1, 'pages');
    sent.push('look');
    if (how === 'use-case') await limiter.blockUntil(Date.now() + 60_000, 'throttled', 'pages');
    return null;
  };
  const opts = { limitedRequest: how !== 'own-look', singleRequest: true };
  const err = await once('message', write, look, opts).catch((e: unknown) => e);
  const reason = err instanceof RateLimitedError ? err.reason : err;
  const rec = await intent('message');
  const left = rec === null ? 'forgotten' : rec === earlier ? 'put back' : rec;
  // The next run: the window free, no block.
  await redis.del(limitKeys.window, limitKeys.useCases);
  sent.length = 0;
  await once('message', write, look, opts).catch((e: unknown) => sent.push(e instanceof RateLimitedError ? `refused: ${e.reason}` : String(e)));
  return { reason, left, next: [...sent] };
}
