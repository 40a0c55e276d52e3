/**
 * A step whose `run()` begins with a request through the target's limiter (OnceOptions.limitedRequest)
 * takes that request's token in its start's Lua step (IntentRepository.scoped with the limiter,
 * INTENT_START): the attempt's first acquire() uses it instead of a round trip of its own, and the
 * limit is kept exactly — a step found done takes no token, a full window refuses the start with the
 * limiter's RateLimitedError and writes nothing, later requests of the attempt take tokens as always.
 * Real redis-server.
 */
import { expectFullWindowRefused, limitedStep, twoRequests, unlimitedStart } from '../helpers/intent-limiter.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the runs itself
});
afterAll(async () => {
  await svc?.close();
});

const setUp = (requests: number) => limitedStep(svc.rt, 'il', requests);

test('the start takes the first request\'s token; the attempt\'s acquire() uses it, a second one takes its own', async () => {
  // The token was taken by the start, before run(); one token per request, none twice.
  expect(await twoRequests(await setUp(5))).toEqual({ result: { id: 'm1' }, seen: [1, 1], used: 2 });
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
  await expectFullWindowRefused(await setUp(1));
});

test('without limitedRequest the start takes no token and the request takes its own', async () => {
  expect(await unlimitedStart(await setUp(5))).toEqual({ seen: [0], used: 1 });
});
