/**
 * One access-token refresh serves every call of an adapter that needs a token at that moment (the
 * calls of many shows' syncs on one account). It ran inside the attempt of the call that happened to
 * start it (src/targets/attempt-deadline.ts: AsyncLocalStorage), so that call's deadline bounded the
 * refresh: a step close to its deadline cut the refresh short, or had it refused before it was sent,
 * and every other show's call waiting on the same refresh failed with "Google OAuth timed out" (or
 * "the attempt ran out of time") and counted a failure against its mirror's retry budget. Under CPU
 * load, where attempts run close to their deadlines, this multiplied one step's lateness into failures
 * of every show syncing at that moment. The refresh is no step's request: it runs outside any attempt
 * with the client's own timeout; each caller's next request still keeps its own deadline.
 *
 * The YouTube and TikTok Shop adapters against the simulators behind a proxy that answers the token
 * refresh a little late.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { withAttemptDeadline } from '../../src/targets/attempt-deadline.js';
import { RetryableError } from '../../src/targets/target.errors.js';
import { createTiktokAdapter } from '../../src/targets/tiktok/tiktok.adapter.js';
import { createYoutubeAdapter } from '../../src/targets/youtube/youtube.adapter.js';
import type { AdapterFactory } from '../../src/targets/target.adapter.js';
import { buildAdapterContext } from '../helpers/adapter-context.js';
import { startLateProxy, type LateProxy } from '../helpers/late-proxy.js';

let sim: StartedSimulators;
let proxy: LateProxy;

beforeAll(async () => {
  sim = await startSimulators({ port: 0 });
  proxy = await startLateProxy(sim.url);
});
afterAll(async () => {
  await proxy?.close();
  await sim?.close();
});

const CASES: { platform: 'youtube' | 'tiktok'; factory: AdapterFactory; refresh: RegExp }[] = [
  { platform: 'youtube', factory: createYoutubeAdapter, refresh: /\/token$/ },
  { platform: 'tiktok', factory: createTiktokAdapter, refresh: /\/token\/refresh$/ },
];

test.each(CASES)('$platform: a refresh started by a call near its attempt deadline still serves the calls that wait on it', async ({ platform, factory, refresh }) => {
  // No access token at hand (TikTok: none in the credentials either), so both calls need the refresh.
  const credentials = simTargetCredentials(platform, 'a');
  const t = buildAdapterContext({ platform, baseUrl: `${proxy.url}/${platform}`, credentials, timeoutMs: 3_000 });
  const adapter = factory(t.ctx);
  // The refresh takes 300 ms to answer: longer than what is left of A's attempt, well within the timeout.
  proxy.holdNext((method, path) => refresh.test(path), 300);

  // A: a step's attempt with 100 ms left; its call starts the refresh.
  const a = withAttemptDeadline(Date.now() + 100, () => adapter.verifyCredentials!());
  const aSettled = a.then(
    () => null,
    (err: unknown) => err,
  );
  await sleep(20);
  // B: another show's call (no attempt, or one with time to spare) needs a token too and joins that refresh.
  const b = withAttemptDeadline(Date.now() + 5_000, () => adapter.verifyCredentials!());

  await expect(b).resolves.not.toBeInstanceOf(Error);
  // A itself ran out of its own time: its request was not sent after its deadline.
  const errA = await aSettled;
  expect(errA).toBeInstanceOf(RetryableError);
  expect((errA as RetryableError).reason).toBe('attempt_deadline');
  expect(proxy.held.filter((h) => refresh.test(h.path.split('?')[0]!))).toHaveLength(1);
}, 30_000);
