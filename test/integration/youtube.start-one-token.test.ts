/**
 * A YouTube account whose limiter lets each sync run send one request: a run refused part-way resumes
 * where it was refused. The start of a broadcast is two transitions (testing, then live); the run
 * after one refused before the second sent the first again (YouTube answers it "redundant"), which
 * took the run's one token every time, and the transition to live never got one: the broadcast stayed
 * in testing while its job was delayed again and again. At 2 requests a second the same happened
 * whenever a wait freed one token (the metrics test's 60 s wait for a live mirror timed out under
 * CPU load); at one request per window it never ends. Real redis-server, the real SyncService and
 * YouTube adapter, the simulator. The runs are played here, as BullMQ would run the delayed job; the
 * window's passing between two runs is played by emptying it (no waiting, no timing).
 */
import { keysMatching } from '../helpers/redis-cluster.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null, simulatedEncoder: 1, streamActivationMs: 0 });
  // no workers: the test plays the runs
  svc = await startService();
  secret = await createPartner(svc, 'one');
  const r = await svc.api('/v1/partners/one/targets?verify=false', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500, rateLimit: { requests: 1, windowMs: 60_000 } },
  });
  expect(r.status).toBe(201);
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('one request per run: the broadcast goes live (a run refused before the transition to live does not send the one to testing again)', async () => {
  expect((await sendEvent(svc, 'one', secret, showEvent('show.live', sampleShow('s1', { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'one', showId: 's1', targetId: 'yt' };
  const windows = svc.rt.keys.targetLimit('*', 'window');
  const reasons: string[] = [];
  // Broadcast, stream, bind, testing, live: one request each, so five runs (a few more allowed).
  for (let run = 0; run < 8; run++) {
    // The window has passed: this run has one token.
    for (const k of await keysMatching(svc.rt.redis, windows)) await svc.rt.redis.del(k);
    const outcome = await svc.rt.syncService.sync(job, { token: `run-${run}` });
    if (outcome.kind === 'done') break;
    reasons.push(outcome.reason);
  }
  const m = await svc.rt.shows.getMirror('one', 's1', 'yt');
  expect({ state: m?.state, reasons }).toEqual({ state: 'live', reasons: Array(reasons.length).fill('rate_limited') });
  const transitions = (await sim.effects('youtube')).filter((e) => e.type === 'show.started');
  expect(transitions).toHaveLength(1);
}, 30_000);
