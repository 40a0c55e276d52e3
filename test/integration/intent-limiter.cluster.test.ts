/**
 * On a Redis Cluster the target's limiter keys are in another slot than the step's intent, so the
 * start cannot take the first request's token in its own Lua step (intent-limiter.test.ts, one
 * Redis). A step whose `run()` begins with a request through the limiter (OnceOptions.limitedRequest)
 * takes that token alongside its start instead (same event-loop turn: one round trip for both, not
 * one more before the platform call); the attempt's first acquire() uses it, and a full window fails
 * the step before run() with the limiter's RateLimitedError and forgets its started record (nothing
 * was sent). Real 3 + 3 cluster (WAIT 1, as the service runs there), started by this file on either
 * topology (in `npm test` too: the known mutant intent-cluster-refused-token-put-back must be killed
 * by a plain run; it ran only under `npm run test:cluster` before).
 */
import { expectFullWindowRefused, limitedStep, refusedAfterTrustedLook, twoRequests, unlimitedStart } from '../helpers/intent-limiter.js';
import { startCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { startService, type TestService } from '../helpers/service.js';

describe('a limited step on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let svc: TestService;

  beforeAll(async () => {
    cluster = await startCluster();
    svc = await startService({ redis: cluster, env: { REDIS_WAIT_TIMEOUT_MS: '1000' } }); // no workers: the test plays the runs itself
  });
  afterAll(async () => {
    await svc?.close();
    await cluster?.destroy();
  });

  const setUp = (requests: number) => limitedStep(svc.rt, 'ilc', requests);

  test("the first request's token is taken alongside the start; the attempt's acquire() uses it, a second one takes its own", async () => {
    expect(svc.rt.redis.isCluster).toBe(true);
    // Taken before run(); one token per request, none twice.
    expect(await twoRequests(await setUp(5))).toEqual({ result: { id: 'm1' }, seen: [1, 1], used: 2 });
  });

  test('a full window fails the step before run() with the limiter\'s RateLimitedError and forgets its started record', async () => {
    await expectFullWindowRefused(await setUp(1));
  });

  test('without limitedRequest the start takes no token and the request takes its own', async () => {
    expect(await unlimitedStart(await setUp(5))).toEqual({ seen: [0], used: 1 });
  });

  // From the review of the forgetting after a trusted look: one Redis forgets a write refused its token
  // after a trusted look that found nothing (startAfterLook); a Cluster put the earlier attempt's record
  // back, and its next run looked again first, refused the write again whenever other runs took the
  // token taken alongside its start.
  test('a write whose token, taken alongside the start, was refused is forgotten after a trusted look that found nothing: the next run sends it without a second look', async () => {
    expect(await refusedAfterTrustedLook(await setUp(1), svc.rt.redis, 'token')).toEqual({ reason: 'local_limit', left: 'forgotten', next: ['write'] });
  });
});
