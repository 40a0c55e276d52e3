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
 *
 * The step is repeatable (OnceOptions.repeatable): any error forgets it. Forgotten only when refused,
 * the usual first answer (errorStreamInactive: the relay has just started pushing) left it started,
 * and the next run waited out the attempt and the settle window (about 50 s with the defaults, as
 * here) instead of the 5 s errorStreamInactive asks for. And it is only the transition: the state
 * read after an invalid one (a broadcast on air already) is not in it, so a run whose read the
 * limiter refused does not send the transition again on the next run's one token.
 *
 * A run that needs two requests in one go (YouTube's update: the broadcast read, then the update;
 * Bambuser's cancel: the show, its orders, then the delete) was starved by a wait that freed one token:
 * it spent it on the first request and was refused the next, again and again. A refused run that took
 * k tokens now waits until k + 1 are free (src/store/rate-limiter.ts). Time passing between the runs
 * is played by making the window's entries older by the run's delay.
 */
import type { Redis } from 'ioredis';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import { limiterId } from '../../src/targets/target.registry.js';
import { keysMatching } from '../helpers/redis-cluster.js';
import { oneTokenRuns as runWithOneToken } from '../helpers/one-token.js';
import { startLateProxy } from '../helpers/late-proxy.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null, simulatedEncoder: 1, streamActivationMs: 0 });
  // no workers: the test plays the runs; the production defaults of the platform timings (a step an
  // error left started is waited out for 2 × 10 s + 30 s)
  svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '10000', PLATFORM_SETTLE_MS: '30000' } });
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

const requests = async (since = 0): Promise<SimRequestRecord[]> => (await sim.control('GET', `/_sim/youtube/requests?since=${since}`)) as SimRequestRecord[];
const lastSeq = async (): Promise<number> => (await requests()).at(-1)?.seq ?? 0;
/** The transitions the service asked for since `seq`, e.g. `testing 403`. */
const transitionsSince = async (seq: number): Promise<string[]> =>
  (await requests(seq)).filter((r) => r.path.endsWith('/liveBroadcasts/transition')).map((r) => `${String(r.query['broadcastStatus'])} ${r.status}`);

/** An access token of the seller's own (YouTube Studio's calls, not the service's). */
async function studioToken(): Promise<{ access_token: string }> {
  const { clientId, clientSecret, refreshToken } = CREDENTIALS.youtube as Record<string, string>;
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId!, client_secret: clientSecret!, refresh_token: refreshToken! });
  return (await (await fetch(`${sim.base('youtube')}/token`, { method: 'POST', body: form })).json()) as { access_token: string };
}

/** A transition made in YouTube Studio (not through the service's limiter). */
async function studioTransition(id: string, broadcastStatus: 'testing' | 'live'): Promise<void> {
  const token = await studioToken();
  const r = await fetch(`${sim.base('youtube')}/youtube/v3/liveBroadcasts/transition?${new URLSearchParams({ broadcastStatus, id, part: 'id,status' })}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.access_token}` },
  });
  expect(r.status).toBe(200);
}

test('one request per run, the broadcast on air already (started in Studio): a run whose state read was refused does not send the transition to testing again', async () => {
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  expect((await sendEvent(svc, 'one', secret, showEvent('show.scheduled', sampleShow('s3', { title: 'Started in Studio' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'one', showId: 's3', targetId: 'yt' };
  const windows = svc.rt.keys.targetLimit('*', 'window');
  const oneToken = async (token: string) => {
    for (const k of await keysMatching(svc.rt.redis, windows)) await svc.rt.redis.del(k);
    return svc.rt.syncService.sync(job, { token });
  };
  // Broadcast, stream, bind: one request a run.
  for (let run = 0; run < 6 && (await svc.rt.shows.getMirror('one', 's3', 'yt'))?.state !== 'ready'; run++) await oneToken(`made-${run}`);
  const m = await svc.rt.shows.getMirror('one', 's3', 'yt');
  expect(m?.state).toBe('ready');
  const id = m!.remote!.externalId;
  await studioTransition(id, 'testing');
  await studioTransition(id, 'live');
  expect((await sendEvent(svc, 'one', secret, showEvent('show.live', sampleShow('s3', { state: 'live', title: 'Started in Studio' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  const before = await lastSeq();
  // The transition to testing (invalid: on air), then the state read: one request a run.
  for (let run = 0; run < 6; run++) if ((await oneToken(`start-${run}`)).kind === 'done') break;
  expect((await svc.rt.shows.getMirror('one', 's3', 'yt'))?.state).toBe('live');
  expect(await transitionsSince(before)).toEqual(['testing 403']);
}, 30_000);

test('a transition to testing that met an error (errorStreamInactive) is sent again by the next run, after that error\'s own delay, not after a settle wait', async () => {
  // The stream stays inactive (no encoder, no video): every transition to testing is refused so.
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 0 });
  const secret2 = await createPartner(svc, 'two');
  const r = await svc.api('/v1/partners/two/targets?verify=false', {
    json: { id: 'yt2', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, 'two', secret2, showEvent('show.live', sampleShow('s2', { state: 'live', title: 'Inactive stream' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'two', showId: 's2', targetId: 'yt2' };
  const before = await lastSeq();
  const outcomes = [];
  for (let run = 0; run < 2; run++) outcomes.push(await svc.rt.syncService.sync(job, { token: `inactive-${run}` }));
  // Both runs sent it and were told the stream is not active yet (5 s); a step left started made the
  // second wait out the first's attempt and settle window (intent_settling, about 50 s).
  expect(outcomes).toEqual([expect.objectContaining({ kind: 'delay', reason: 'errorStreamInactive' }), expect.objectContaining({ kind: 'delay', reason: 'errorStreamInactive' })]);
  expect(await transitionsSince(before)).toEqual(['testing 403', 'testing 403']);
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
}, 30_000);

/** `ms` passing for the limiters: every window entry made that much older (no waiting). */
async function passes(ms: number): Promise<void> {
  for (const k of await keysMatching(svc.rt.redis, svc.rt.keys.targetLimit('*', 'window'))) {
    const flat = await svc.rt.redis.zrange(k, 0, -1, 'WITHSCORES');
    for (let i = 0; i < flat.length; i += 2) await svc.rt.redis.zadd(k, Number(flat[i + 1]) - ms, flat[i]!);
  }
}

/** Up to 10 runs of the job, each after the delay the one before asked for has passed; the delays' reasons. */
async function runsUntilDone(job: { partnerId: string; showId: string; targetId: string }, name: string): Promise<string[]> {
  const reasons: string[] = [];
  for (let run = 0; run < 10; run++) {
    const outcome = await svc.rt.syncService.sync(job, { token: `${name}-${run}` });
    if (outcome.kind === 'done') break;
    reasons.push(outcome.reason);
    if (outcome.kind === 'delay') await passes(outcome.delayMs);
  }
  return reasons;
}

test('two requests per window, one token left by another run: a title change and show.live go through (a refused run waits until its own tokens are free again, not until one is)', async () => {
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, simulatedEncoder: 1, streamActivationMs: 0 });
  const secret3 = await createPartner(svc, 'three');
  const r = await svc.api('/v1/partners/three/targets?verify=false', {
    json: { id: 'yt3', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500, rateLimit: { requests: 2, windowMs: 60_000 } },
  });
  expect(r.status).toBe(201);
  const job = { partnerId: 'three', showId: 's4', targetId: 'yt3' };
  const windows = svc.rt.keys.targetLimit('*', 'window');
  const emptied = async () => {
    for (const k of await keysMatching(svc.rt.redis, windows)) await svc.rt.redis.del(k);
  };
  expect((await sendEvent(svc, 'three', secret3, showEvent('show.scheduled', sampleShow('s4', { title: 'Old title' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  for (let run = 0; run < 6 && (await svc.rt.shows.getMirror('three', 's4', 'yt3'))?.state !== 'ready'; run++) {
    await emptied();
    await svc.rt.syncService.sync(job, { token: `made-${run}` });
  }
  expect((await svc.rt.shows.getMirror('three', 's4', 'yt3'))?.state).toBe('ready');
  expect((await sendEvent(svc, 'three', secret3, showEvent('show.live', sampleShow('s4', { state: 'live', title: 'New title' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  // Another run's request 30 s ago holds one of the two tokens: the first run gets one (the read
  // of the broadcast before its update), and is refused the update.
  await emptied();
  const [sec] = await svc.rt.redis.time();
  const win = svc.rt.keys.targetLimit(limiterId('youtube', CREDENTIALS.youtube as Record<string, string>, 'yt3'), 'window');
  await svc.rt.redis.zadd(win, Number(sec) * 1000 - 30_000, 'other:1');
  const reasons = await runsUntilDone(job, 'live');
  const m = await svc.rt.shows.getMirror('three', 's4', 'yt3');
  expect({ state: m?.state, reasons }).toEqual({ state: 'live', reasons: Array(reasons.length).fill('rate_limited') });
  // The title went out (once), before the broadcast went live.
  const updates = (await requests()).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts') && q.status === 200 && q.body.includes('New title'));
  expect(updates).toHaveLength(1);
}, 30_000);

test('Bambuser (5 requests per 11 s), one token left by other runs: a cancel (the show read, its orders read, then the delete) goes through', async () => {
  await sim.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null, quotaPerDay: null });
  const secret4 = await createPartner(svc, 'four');
  const r = await svc.api('/v1/partners/four/targets?verify=false', {
    json: { id: 'bb', platform: 'bambuser', name: 'BB', credentials: CREDENTIALS.bambuser, baseUrl: sim.base('bambuser'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const job = { partnerId: 'four', showId: 's5', targetId: 'bb' };
  const win = svc.rt.keys.targetLimit(limiterId('bambuser', CREDENTIALS.bambuser as Record<string, string>, 'bb'), 'window');
  const show = sampleShow('s5', { title: 'Called off' });
  expect((await sendEvent(svc, 'four', secret4, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  for (let run = 0; run < 6 && (await svc.rt.shows.getMirror('four', 's5', 'bb'))?.state !== 'ready'; run++) {
    await svc.rt.redis.del(win);
    await svc.rt.syncService.sync(job, { token: `made-${run}` });
  }
  expect((await svc.rt.shows.getMirror('four', 's5', 'bb'))?.state).toBe('ready');
  expect((await sendEvent(svc, 'four', secret4, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  // Four requests of other runs, 10 s to 7 s ago: one token free, then one more each second.
  await svc.rt.redis.del(win);
  const [sec] = await svc.rt.redis.time();
  for (let i = 0; i < 4; i++) await svc.rt.redis.zadd(win, Number(sec) * 1000 - 10_000 + i * 1000, `other-${i}:1`);
  const reasons = await runsUntilDone(job, 'cancel');
  const m = await svc.rt.shows.getMirror('four', 's5', 'bb');
  expect({ state: m?.state, reasons }).toEqual({ state: 'cancelled', reasons: Array(reasons.length).fill('rate_limited') });
}, 30_000);

/** A change of the broadcast's settings in YouTube Studio: its monitor stream on or off. */
async function studioMonitorStream(id: string, enableMonitorStream: boolean): Promise<void> {
  const token = await studioToken();
  const r = await fetch(`${sim.base('youtube')}/youtube/v3/liveBroadcasts?part=contentDetails`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id, contentDetails: { monitorStream: { enableMonitorStream } } }),
  });
  expect(r.status).toBe(200);
}

test('a remembered invalid transition to testing (the monitor stream was off) is sent again by a retry once the state allows it: the broadcast goes live', async () => {
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  const secret5 = await createPartner(svc, 'five');
  const r = await svc.api('/v1/partners/five/targets?verify=false', {
    json: { id: 'yt4', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, 'five', secret5, showEvent('show.scheduled', sampleShow('s4', { title: 'Monitor off' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'five', showId: 's4', targetId: 'yt4' };
  for (let run = 0; run < 3 && (await svc.rt.shows.getMirror('five', 's4', 'yt4'))?.state !== 'ready'; run++) await svc.rt.syncService.sync(job, { token: `made4-${run}` });
  const id = (await svc.rt.shows.getMirror('five', 's4', 'yt4'))!.remote!.externalId;
  // Turned off in Studio: testing answers invalid from ready, and the start is refused.
  await studioMonitorStream(id, false);
  expect((await sendEvent(svc, 'five', secret5, showEvent('show.live', sampleShow('s4', { state: 'live', title: 'Monitor off' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  let before = await lastSeq();
  await svc.rt.syncService.sync(job, { token: 'off-0' });
  expect((await svc.rt.shows.getMirror('five', 's4', 'yt4'))?.state).toBe('failed');
  expect(await transitionsSince(before)).toEqual(['testing 403']);
  // Turned on again; the operator's retry keeps the intents, the remembered invalid among them.
  await studioMonitorStream(id, true);
  expect((await svc.api('/v1/partners/five/shows/s4/mirrors/yt4/resync', { method: 'POST' })).status).toBe(202);
  before = await lastSeq();
  for (let run = 0; run < 3; run++) if ((await svc.rt.syncService.sync(job, { token: `on-${run}` })).kind === 'done') break;
  expect((await svc.rt.shows.getMirror('five', 's4', 'yt4'))?.state).toBe('live');
  expect(await transitionsSince(before)).toEqual(['testing 200', 'live 200']);
}, 30_000);

type Job = { partnerId: string; showId: string; targetId: string };

/** Partner `partnerId` with YouTube target `targetId` (on the simulator), its `rateLimit` if given; the partner's secret. */
async function youtubeTarget(partnerId: string, targetId: string, rateLimit?: { requests: number; windowMs: number }): Promise<string> {
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, simulatedEncoder: 1, streamActivationMs: 0 });
  const partnerSecret = await createPartner(svc, partnerId);
  const r = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, {
    json: { id: targetId, platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500, ...(rateLimit ? { rateLimit } : {}) },
  });
  expect(r.status).toBe(201);
  return partnerSecret;
}

/** Up to `max` runs of the job, each with one token, until one is done; the delays' reasons (test/helpers/one-token.ts). */
const oneTokenRuns = (job: Job, name: string, max: number): Promise<string[]> => runWithOneToken(svc, job, name, max, 'window');

test('one request per run: a title change reaches the broadcast, scheduled and then live (the read before the update is a recorded step, not sent again by the run after a refused update)', async () => {
  const secret6 = await youtubeTarget('six', 'yt6', { requests: 1, windowMs: 60_000 });
  const job = { partnerId: 'six', showId: 's6', targetId: 'yt6' };
  const updated = async (title: string) =>
    (await requests()).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts') && q.status === 200 && q.body.includes(title)).length;
  expect((await sendEvent(svc, 'six', secret6, showEvent('show.scheduled', sampleShow('s6', { title: 'First title' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await oneTokenRuns(job, 'made', 6);
  expect((await svc.rt.shows.getMirror('six', 's6', 'yt6'))?.state).toBe('ready');
  // Scheduled, retitled: the read, then the update, one run each.
  expect((await sendEvent(svc, 'six', secret6, showEvent('show.updated', sampleShow('s6', { title: 'Second title' }), '2026-11-24T17:10:00Z'))).status).toBe(202);
  const scheduled = await oneTokenRuns(job, 'retitled', 4);
  expect({ reasons: scheduled, updates: await updated('Second title') }).toEqual({ reasons: ['rate_limited'], updates: 1 });
  // Live, retitled: the read, the update, then the transitions to testing and to live.
  expect((await sendEvent(svc, 'six', secret6, showEvent('show.live', sampleShow('s6', { state: 'live', title: 'Third title' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  const live = await oneTokenRuns(job, 'live', 8);
  const m = await svc.rt.shows.getMirror('six', 's6', 'yt6');
  expect({ state: m?.state, reasons: live, updates: await updated('Third title') }).toEqual({ state: 'live', reasons: Array(3).fill('rate_limited'), updates: 1 });
}, 30_000);

test('a title changed back (a spec updated to before) reads the broadcast again: once live, it keeps the start time it has (not the one an earlier update of that spec read as upcoming)', async () => {
  const secret7 = await youtubeTarget('seven', 'yt7');
  const job = { partnerId: 'seven', showId: 's7', targetId: 'yt7' };
  const events: [string, Record<string, unknown>][] = [
    ['show.scheduled', { title: 'Title zero' }],
    ['show.updated', { title: 'Title A' }], // the update of spec A, the broadcast upcoming: start 18:00
    ['show.updated', { title: 'Title B', scheduledAt: '2026-11-24T19:00:00Z' }], // moved to 19:00
    ['show.live', { state: 'live', title: 'Title B', scheduledAt: '2026-11-24T19:00:00Z' }],
    ['show.live', { state: 'live', title: 'Title A' }], // spec A again, the broadcast live
  ];
  for (const [i, [type, fields]] of events.entries()) {
    expect((await sendEvent(svc, 'seven', secret7, showEvent(type, sampleShow('s7', fields), `2026-11-24T17:0${i}:00Z`))).status).toBe(202);
    for (let run = 0; run < 3; run++) if ((await svc.rt.syncService.sync(job, { token: `seven-${i}-${run}` })).kind === 'done') break;
  }
  expect((await svc.rt.shows.getMirror('seven', 's7', 'yt7'))?.state).toBe('live');
  const last = (await requests()).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts') && q.status === 200).at(-1);
  const snippet = (JSON.parse(last!.body) as { snippet: { title: string; scheduledStartTime: string } }).snippet;
  expect({ title: snippet.title, start: Date.parse(snippet.scheduledStartTime) }).toEqual({ title: 'Title A', start: Date.parse('2026-11-24T19:00:00Z') });
}, 30_000);

test('one request per run, a remembered invalid transition to testing (the monitor stream was off): the retry goes live once the state allows it', async () => {
  const secret8 = await youtubeTarget('eight', 'yt8', { requests: 1, windowMs: 60_000 });
  const job = { partnerId: 'eight', showId: 's8', targetId: 'yt8' };
  expect((await sendEvent(svc, 'eight', secret8, showEvent('show.scheduled', sampleShow('s8', { title: 'Monitor off' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await oneTokenRuns(job, 'made', 6);
  const id = (await svc.rt.shows.getMirror('eight', 's8', 'yt8'))!.remote!.externalId;
  await studioMonitorStream(id, false);
  expect((await sendEvent(svc, 'eight', secret8, showEvent('show.live', sampleShow('s8', { state: 'live', title: 'Monitor off' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  let before = await lastSeq();
  // The transition (invalid), then the state read (ready): the start is refused.
  await oneTokenRuns(job, 'off', 4);
  expect((await svc.rt.shows.getMirror('eight', 's8', 'yt8'))?.state).toBe('failed');
  expect(await transitionsSince(before)).toEqual(['testing 403']);
  await studioMonitorStream(id, true);
  expect((await svc.api('/v1/partners/eight/shows/s8/mirrors/yt8/resync', { method: 'POST' })).status).toBe(202);
  before = await lastSeq();
  // The transition sent again (now allowed), then the one to live: one run each.
  const reasons = await oneTokenRuns(job, 'on', 6);
  expect({ state: (await svc.rt.shows.getMirror('eight', 's8', 'yt8'))?.state, reasons }).toEqual({ state: 'live', reasons: ['rate_limited'] });
  expect(await transitionsSince(before)).toEqual(['testing 200', 'live 200']);
}, 30_000);

test('a reverted update: its read (the broadcast upcoming) is not sent later to the live broadcast by an update of the same spec (it keeps its start time)', async () => {
  const secret9 = await youtubeTarget('nine', 'yt9', { requests: 1, windowMs: 60_000 });
  const job = { partnerId: 'nine', showId: 's9', targetId: 'yt9' };
  const event = async (type: string, fields: Record<string, unknown>, at: string) =>
    expect((await sendEvent(svc, 'nine', secret9, showEvent(type, sampleShow('s9', fields), at))).status).toBe(202);
  await event('show.scheduled', { title: 'Title zero' }, '2026-11-24T17:00:00Z');
  await oneTokenRuns(job, 'made', 6);
  expect((await svc.rt.shows.getMirror('nine', 's9', 'yt9'))?.state).toBe('ready');
  // Spec A (moved to 19:00): the read (the broadcast upcoming), then the update refused by the limiter.
  await event('show.updated', { title: 'Title A', scheduledAt: '2026-11-24T19:00:00Z' }, '2026-11-24T17:01:00Z');
  expect(await oneTokenRuns(job, 'a', 1)).toEqual(['rate_limited']);
  // Back to what was applied: no update; then live.
  await event('show.updated', { title: 'Title zero' }, '2026-11-24T17:02:00Z');
  await oneTokenRuns(job, 'back', 2);
  await event('show.live', { state: 'live', title: 'Title zero' }, '2026-11-24T17:03:00Z');
  await oneTokenRuns(job, 'live', 4);
  expect((await svc.rt.shows.getMirror('nine', 's9', 'yt9'))?.state).toBe('live');
  // Spec A again, the broadcast live: read again, its start time (18:00) kept.
  await event('show.live', { state: 'live', title: 'Title A', scheduledAt: '2026-11-24T19:00:00Z' }, '2026-11-24T17:04:00Z');
  await oneTokenRuns(job, 'again', 4);
  const last = (await requests()).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts') && q.status === 200).at(-1);
  const snippet = (JSON.parse(last!.body) as { snippet: { title: string; scheduledStartTime: string } }).snippet;
  expect({ title: snippet.title, start: Date.parse(snippet.scheduledStartTime) }).toEqual({ title: 'Title A', start: Date.parse('2026-11-24T18:00:00Z') });
}, 30_000);

test('a remembered invalid transition to testing kept by the version before (a `testing` step, no state step): the retry sends the transition again and goes live', async () => {
  const secret10 = await youtubeTarget('ten', 'yt10');
  const job = { partnerId: 'ten', showId: 's10', targetId: 'yt10' };
  expect((await sendEvent(svc, 'ten', secret10, showEvent('show.scheduled', sampleShow('s10', { title: 'Upgraded' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  for (let run = 0; run < 3 && (await svc.rt.shows.getMirror('ten', 's10', 'yt10'))?.state !== 'ready'; run++) await svc.rt.syncService.sync(job, { token: `made10-${run}` });
  const id = (await svc.rt.shows.getMirror('ten', 's10', 'yt10'))!.remote!.externalId;
  await studioMonitorStream(id, false);
  expect((await sendEvent(svc, 'ten', secret10, showEvent('show.live', sampleShow('s10', { state: 'live', title: 'Upgraded' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  await svc.rt.syncService.sync(job, { token: 'off10' });
  expect((await svc.rt.shows.getMirror('ten', 's10', 'yt10'))?.state).toBe('failed');
  // What the version before kept: the invalid transition as `start:testing`, the state read in the run (no step).
  for (const k of await keysMatching(svc.rt.redis, svc.rt.keys.intent('ten', 's10', 'yt10', 'g*:start:*'))) {
    if (/:start:state(:0)?$/.test(k)) await svc.rt.redis.del(k);
    else if (k.endsWith(':start:testing:0')) await svc.rt.redis.rename(k, k.slice(0, -':0'.length));
  }
  await studioMonitorStream(id, true);
  expect((await svc.api('/v1/partners/ten/shows/s10/mirrors/yt10/resync', { method: 'POST' })).status).toBe(202);
  const before = await lastSeq();
  for (let run = 0; run < 3; run++) if ((await svc.rt.syncService.sync(job, { token: `on10-${run}` })).kind === 'done') break;
  expect((await svc.rt.shows.getMirror('ten', 's10', 'yt10'))?.state).toBe('live');
  expect(await transitionsSince(before)).toEqual(['testing 200', 'live 200']);
}, 30_000);

/** The last PUT of the broadcast YouTube answered (no fault), since `seq`: its snippet. */
async function lastSnippetSince(seq: number): Promise<{ title: string; start: number } | undefined> {
  const put = (await requests(seq)).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts') && q.status === 200 && q.fault === undefined).at(-1);
  if (!put) return undefined;
  const { snippet } = JSON.parse(put.body) as { snippet: { title: string; scheduledStartTime: string } };
  return { title: snippet.title, start: Date.parse(snippet.scheduledStartTime) };
}

/**
 * From the review of the dropped-update count: an update whose write reached YouTube while its answer
 * never came (a timeout; a crash after the call) and whose spec then went back to what was applied left
 * YouTube with the dropped title for good (nothing sent: the spec equalled `applied`).
 */
test('an update whose write went through unanswered and whose spec then went back: what was applied is sent again', async () => {
  const secret11 = await youtubeTarget('eleven', 'yt11', { requests: 1, windowMs: 60_000 });
  const job = { partnerId: 'eleven', showId: 's11', targetId: 'yt11' };
  const event = async (fields: Record<string, unknown>, type: string, at: string) =>
    expect((await sendEvent(svc, 'eleven', secret11, showEvent(type, sampleShow('s11', fields), at))).status).toBe(202);
  await event({ title: 'Title zero' }, 'show.scheduled', '2026-11-24T17:00:00Z');
  await oneTokenRuns(job, 'made', 6);
  expect((await svc.rt.shows.getMirror('eleven', 's11', 'yt11'))?.state).toBe('ready');
  await event({ title: 'Title A' }, 'show.updated', '2026-11-24T17:01:00Z');
  expect(await oneTokenRuns(job, 'a', 1)).toEqual(['rate_limited']); // the read; the write refused
  // The write goes through, its answer never comes (the socket reset after 300 ms).
  const beforeWrite = await lastSeq();
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['timeout'], hangMs: 300 });
  try {
    for (const k of await keysMatching(svc.rt.redis, svc.rt.keys.targetLimit('*', 'window'))) await svc.rt.redis.del(k);
    await svc.rt.syncService.sync(job, { token: 'lost' }).catch(() => undefined);
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  const lost = (await requests(beforeWrite)).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts'));
  expect(lost.map((q) => ({ fault: q.fault, status: q.status, title: (JSON.parse(q.body) as { snippet: { title: string } }).snippet.title }))).toEqual([{ fault: 'timeout', status: 200, title: 'Title A' }]);
  // Back to what was applied: YouTube holds Title A, so Title zero is sent again.
  const before = await lastSeq();
  await event({ title: 'Title zero' }, 'show.updated', '2026-11-24T17:02:00Z');
  await oneTokenRuns(job, 'back', 4);
  expect(await lastSnippetSince(before)).toEqual({ title: 'Title zero', start: Date.parse('2026-11-24T18:00:00Z') });
}, 30_000);

/** The seller renames the broadcast in YouTube Studio (not through the service's limiter). */
async function studioRename(id: string, title: string): Promise<void> {
  const token = await studioToken();
  const r = await fetch(`${sim.base('youtube')}/youtube/v3/liveBroadcasts?part=snippet`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id, snippet: { title, scheduledStartTime: '2026-11-24T18:00:00Z' } }),
  });
  expect(r.status).toBe(200);
}

/**
 * Partner `name` at one request per window, its show `show` scheduled ("Title zero") and made on YouTube
 * one token a run: the job, a sender of the show's events, the broadcast's id.
 */
async function madeAtOneToken(name: string, show: string) {
  const targetId = `yt-${name}`;
  const partnerSecret = await youtubeTarget(name, targetId, { requests: 1, windowMs: 60_000 });
  const job = { partnerId: name, showId: show, targetId };
  const event = async (fields: Record<string, unknown>, type: string, at: string) =>
    expect((await sendEvent(svc, name, partnerSecret, showEvent(type, sampleShow(show, fields), at))).status).toBe(202);
  await event({ title: 'Title zero' }, 'show.scheduled', '2026-11-24T17:00:00Z');
  await oneTokenRuns(job, 'made', 6);
  const id = (await svc.rt.shows.getMirror(name, show, targetId))!.remote!.externalId;
  return { job, event, id };
}

/**
 * An update dropped twice: A refused after its read (the broadcast upcoming), the spec back to what was
 * applied (sent again, as the seller renamed the broadcast in Studio: its read, its write refused), then
 * A again after the seller started the broadcast in Studio. The dropped attempt's count names the next
 * update's scope, so A is read again: the read from when the broadcast was upcoming would send its old
 * start time to the live broadcast.
 */
test('an update dropped twice: the live broadcast keeps its start time', async () => {
  const { job, event, id } = await madeAtOneToken('twelve', 's12');
  await studioRename(id, 'Renamed in Studio');
  await event({ title: 'Title A', scheduledAt: '2026-11-24T19:00:00Z' }, 'show.updated', '2026-11-24T17:01:00Z');
  expect(await oneTokenRuns(job, 'a', 1)).toEqual(['rate_limited']);
  await event({ title: 'Title zero' }, 'show.updated', '2026-11-24T17:02:00Z');
  expect(await oneTokenRuns(job, 'back', 1)).toEqual(['rate_limited']);
  await studioTransition(id, 'testing');
  await studioTransition(id, 'live');
  const before = await lastSeq();
  await event({ title: 'Title A', scheduledAt: '2026-11-24T19:00:00Z' }, 'show.updated', '2026-11-24T17:03:00Z');
  await oneTokenRuns(job, 'again', 4);
  expect(await lastSnippetSince(before)).toEqual({ title: 'Title A', start: Date.parse('2026-11-24T18:00:00Z') });
}, 30_000);

/**
 * `ms` passing for the reads the mirror's updates recorded (YouTube's updateShow, the step `read` and
 * its successors): each record's `readAt` made that much older (no waiting).
 */
async function readsAge(job: Job, ms: number): Promise<number> {
  let aged = 0;
  for (const k of await keysMatching(svc.rt.redis, svc.rt.keys.intent(job.partnerId, job.showId, job.targetId, 'g*:update:*:read*'))) {
    const rec = JSON.parse((await svc.rt.redis.get(k))!) as { result?: { readAt?: string } };
    if (rec.result?.readAt === undefined) continue;
    rec.result.readAt = new Date(Date.parse(rec.result.readAt) - ms).toISOString();
    await svc.rt.redis.set(k, JSON.stringify(rec), 'KEEPTTL');
    aged++;
  }
  return aged;
}

/**
 * From the review of the recorded read: after an update's read, its write failed (a 5xx), and the
 * run that sent it again came long after (a backoff, a quota block until midnight Pacific, an
 * operator's retry): meanwhile the seller started the broadcast in Studio. The read, made while it was
 * upcoming, sent its start time to the live broadcast. A read older than three windows is made again (one
 * run's token), and the update goes with the next run's.
 */
test('a recorded read too old to use: after a failed update and the broadcast started in Studio, the update reads it again (the live broadcast keeps its start time)', async () => {
  const { job, event, id } = await madeAtOneToken('thirteen', 's13');
  // Spec A (moved to 19:00): the read (the broadcast upcoming), the update refused by the limiter.
  await event({ title: 'Title A', scheduledAt: '2026-11-24T19:00:00Z' }, 'show.updated', '2026-11-24T17:01:00Z');
  expect(await oneTokenRuns(job, 'a', 1)).toEqual(['rate_limited']);
  // The next run's update meets a 5xx.
  const beforeFault = await lastSeq();
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    await oneTokenRuns(job, 'fault', 1);
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  expect((await requests(beforeFault)).filter((q) => q.method === 'PUT' && q.path.endsWith('/liveBroadcasts')).map((q) => q.status)).toEqual([500]);
  // The seller starts the broadcast in Studio; four minutes pass (beyond three windows of 60 s).
  await studioTransition(id, 'testing');
  await studioTransition(id, 'live');
  await readsAge(job, 4 * 60_000);
  const before = await lastSeq();
  // The read again (one run's token), then the update.
  const reasons = await oneTokenRuns(job, 'later', 4);
  expect({ reasons, snippet: await lastSnippetSince(before) }).toEqual({ reasons: ['rate_limited'], snippet: { title: 'Title A', start: Date.parse('2026-11-24T18:00:00Z') } });
  const reads = (await requests(before)).filter((q) => q.method === 'GET' && q.path.endsWith('/liveBroadcasts'));
  expect(reads).toHaveLength(1);
}, 30_000);

/** A broadcast the seller made in YouTube Studio (not through the service), with a stream of theirs bound to it when `withStream`: its id and that stream's key. */
async function studioBroadcast(title: string, withStream: boolean): Promise<{ id: string; streamKey?: string }> {
  const { externalId } = (await sim.control('POST', '/_sim/youtube/shows', { title })) as { externalId: string };
  if (!withStream) return { id: externalId };
  return { id: externalId, streamKey: await studioStream(externalId) };
}

/** A stream of the seller's made in Studio and bound to broadcast `externalId` (instead of the one it had): its key. */
async function studioStream(externalId: string): Promise<string> {
  const token = await studioToken();
  const headers = { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' };
  const made = await fetch(`${sim.base('youtube')}/youtube/v3/liveStreams?part=id,snippet,cdn,contentDetails`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ snippet: { title: 'studio encoder' }, cdn: { ingestionType: 'rtmp', resolution: '720p', frameRate: '30fps' }, contentDetails: { isReusable: true } }),
  });
  expect(made.status).toBe(200);
  const stream = (await made.json()) as { id: string; cdn: { ingestionInfo: { streamName: string } } };
  const bound = await fetch(`${sim.base('youtube')}/youtube/v3/liveBroadcasts/bind?${new URLSearchParams({ id: externalId, streamId: stream.id, part: 'id,contentDetails' })}`, { method: 'POST', headers });
  expect(bound.status).toBe(200);
  return stream.cdn.ingestionInfo.streamName;
}

/**
 * From the review of the recorded read: an operator's link of a broadcast made in Studio is its read,
 * then its bound stream's read (or, without one, a stream made and bound): at one request per window
 * every run spent its token on the broadcast's read and was refused the next, for ever. The read is a
 * recorded step there: the stream's read goes with the next run's token.
 */
/**
 * Partner `name` at one request per window, its show `show` linked by an operator to a broadcast made in
 * Studio (its own stream bound when `withStream`), then up to `maxRuns` runs of one token each: the
 * delays' reasons, the mirror after them, the Studio broadcast, and the simulator's requests since the link.
 */
async function linkedInStudio(name: string, show: string, withStream: boolean, maxRuns: number) {
  const partnerSecret = await youtubeTarget(name, `yt-${name}`, { requests: 1, windowMs: 60_000 });
  const job = { partnerId: name, showId: show, targetId: `yt-${name}` };
  expect((await sendEvent(svc, name, partnerSecret, showEvent('show.scheduled', sampleShow(show, { title: 'Made in Studio' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const studio = await studioBroadcast('Made in Studio', withStream);
  expect((await svc.api(`/v1/partners/${name}/shows/${show}/mirrors/${job.targetId}`, { method: 'PUT', json: { externalId: studio.id } })).status).toBe(200);
  const before = await lastSeq();
  const reasons = await oneTokenRuns(job, 'link', maxRuns);
  const m = await svc.rt.shows.getMirror(name, show, job.targetId);
  return { reasons, studio, sent: await requests(before), linked: { state: m?.state, attach: m?.remote?.data['attach'], ownStream: m?.remote?.data['ownStream'], streamKey: m?.remote?.ingest?.streamKey } };
}

test('one request per run: an operator link of a broadcast made in Studio, its own stream bound, completes (the broadcast read a recorded step)', async () => {
  // The broadcast's read, the stream's; then the update (the spec onto the linked broadcast): its read, the write.
  const { reasons, studio, sent, linked } = await linkedInStudio('fourteen', 's14', true, 8);
  expect({ reasons, linked }).toEqual({ reasons: Array(3).fill('rate_limited'), linked: { state: 'ready', attach: undefined, ownStream: '0', streamKey: studio.streamKey } });
  expect(sent.filter((q) => q.method === 'GET' && q.path.endsWith('/liveBroadcasts'))).toHaveLength(2); // the link's and the update's
}, 30_000);

test('one request per run: an operator link of a broadcast made in Studio without a stream completes (a stream made and bound, once)', async () => {
  // The broadcast's read, the stream made, the bind; then the update's read and write.
  const { reasons, sent, linked } = await linkedInStudio('fifteen', 's15', false, 10);
  expect({ reasons, linked }).toEqual({ reasons: Array(4).fill('rate_limited'), linked: { state: 'ready', attach: undefined, ownStream: '1', streamKey: expect.any(String) } });
  expect(sent.filter((q) => q.method === 'POST' && q.path.startsWith('/youtube/v3/') && q.status === 200).map((q) => q.path)).toEqual(['/youtube/v3/liveStreams', '/youtube/v3/liveBroadcasts/bind']);
}, 30_000);

/**
 * From the review of the linked read: a re-link of the same broadcast keeps the generation, and so
 * the attach scope; at one request per window its recorded read (`linked`) was the link before's,
 * fresh for three windows: a stream the seller bound in Studio meanwhile was never seen, and the
 * mirror kept the old stream's key. The step is named by the link's nonce (`data.link`).
 */
test('one request per run: a re-link of the same broadcast reads it again (the stream the seller bound in Studio since is the one used)', async () => {
  const { studio, linked } = await linkedInStudio('seventeen', 's17', true, 8);
  expect(linked.streamKey).toBe(studio.streamKey);
  const job = { partnerId: 'seventeen', showId: 's17', targetId: 'yt-seventeen' };
  const other = await studioStream(studio.id);
  expect((await svc.api(`/v1/partners/seventeen/shows/s17/mirrors/${job.targetId}`, { method: 'PUT', json: { externalId: studio.id } })).status).toBe(200);
  const reasons = await oneTokenRuns(job, 'relink', 8);
  const m = await svc.rt.shows.getMirror('seventeen', 's17', job.targetId);
  expect({ reasons, attach: m?.remote?.data['attach'], streamKey: m?.remote?.ingest?.streamKey }).toEqual({ reasons: ['rate_limited'], attach: undefined, streamKey: other });
}, 30_000);

/**
 * From the review of the recorded read: a read made again (the recorded one too old) counted as
 * progress and reset the mirror's retries. With no window (reads expire after 30 s) and an update that
 * fails with a 5xx every time, each run after the read aged read again first: the retries never
 * reached the limit, and the mirror never failed. The read made again is no progress
 * (OnceOptions.notProgress): each failed update counts.
 */
test('an update failing with a 5xx every time uses up the retries, also when each run reads the broadcast again (a read made again is no progress)', async () => {
  const proxy = await startLateProxy(sim.url);
  try {
    await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, simulatedEncoder: 1, streamActivationMs: 0 });
    const partnerSecret = await createPartner(svc, 'eighteen');
    const r = await svc.api('/v1/partners/eighteen/targets?verify=false', {
      json: { id: 'yt-eighteen', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: `${proxy.url}/youtube`, commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
    const job = { partnerId: 'eighteen', showId: 's18', targetId: 'yt-eighteen' };
    const event = async (title: string, type: string, at: string) =>
      expect((await sendEvent(svc, 'eighteen', partnerSecret, showEvent(type, sampleShow('s18', { title }), at))).status).toBe(202);
    await event('Title zero', 'show.scheduled', '2026-11-24T17:00:00Z');
    await oneTokenRuns(job, 'made', 3);
    expect((await svc.rt.shows.getMirror('eighteen', 's18', job.targetId))?.state).toBe('ready');
    await event('Title A', 'show.updated', '2026-11-24T17:01:00Z');
    const retries: number[] = [];
    const reads: number[] = [];
    for (let run = 0; run < 4; run++) {
      if (run > 0) expect(await readsAge(job, 31_000)).toBeGreaterThan(0); // beyond 30 s: read again
      const before = await lastSeq();
      proxy.replyNext((method, path) => method === 'PUT' && path.endsWith('/liveBroadcasts'), 500, { error: { code: 500, message: 'Backend Error', errors: [{ domain: 'global', reason: 'backendError', message: 'Backend Error' }] } });
      expect((await svc.rt.syncService.sync(job, { token: `fail-${run}` })).kind).toBe('delay');
      retries.push((await svc.rt.shows.getMirror('eighteen', 's18', job.targetId))!.retries);
      reads.push((await requests(before)).filter((q) => q.method === 'GET' && q.path.endsWith('/liveBroadcasts')).length);
    }
    expect({ retries, reads }).toEqual({ retries: [1, 2, 3, 4], reads: [1, 1, 1, 1] });
  } finally {
    proxy.clearRules();
    await proxy.close();
  }
}, 30_000);

/**
 * From the review of the recorded read's names: a read made again is named by the max-ages since the
 * first (`read:<n>`), and a run looked at its own name's alone. At 1 request per 60 s (a max-age of
 * 180 s), a read made again 150 s into its name was usable for 30 s: the run a window later, under the
 * next name, read again on its token and the update waited another window. The name before's read is
 * used while it is fresh.
 */
test('one request per run: a read made again late under its name is used by the run a window later, under the next name (the update goes out, no read)', async () => {
  const { job, event } = await madeAtOneToken('nineteen', 's19');
  const reads = async (seq: number): Promise<number> => (await requests(seq)).filter((q) => q.method === 'GET' && q.path.endsWith('/liveBroadcasts')).length;
  await event({ title: 'Title A' }, 'show.updated', '2026-11-24T17:01:00Z');
  expect(await oneTokenRuns(job, 'a', 1)).toEqual(['rate_limited']); // the read; the update refused
  // 330 s later (150 s into the second max-age since the read): read again (`read:1`), the update refused.
  expect(await readsAge(job, 330_000)).toBe(1);
  const again = await lastSeq();
  expect({ reasons: await oneTokenRuns(job, 'b', 1), reads: await reads(again) }).toEqual({ reasons: ['rate_limited'], reads: 1 });
  // A window later: the first read 390 s old (the third max-age: `read:2`), the one made again 60 s old.
  expect(await readsAge(job, 60_000)).toBe(2);
  const later = await lastSeq();
  const reasons = await oneTokenRuns(job, 'c', 1);
  expect({ reasons, reads: await reads(later), title: (await lastSnippetSince(later))?.title }).toEqual({ reasons: [], reads: 0, title: 'Title A' });
}, 30_000);

/**
 * From the review of the intent store: the look at the read made under the name before went through
 * `once` with a run() that refused at once, so each look wrote a start record and deleted it again
 * (two scripts, and a replica WAIT where it is on). OpContext.recorded looks only: here the name before
 * (`read:1`) has no read (no run during the second max-age), and the run's one command on its key is a GET.
 */
test('one request per run: the look at the read under the name before writes nothing (one GET of its record, no start record made and deleted)', async () => {
  const { job, event } = await madeAtOneToken('twenty', 's20');
  await event({ title: 'Title A' }, 'show.updated', '2026-11-24T17:01:00Z');
  expect(await oneTokenRuns(job, 'a', 1)).toEqual(['rate_limited']); // the read; the update refused
  // 390 s later, no run between (the third max-age of 180 s: `read:2`, the name before `read:1` never read).
  expect(await readsAge(job, 390_000)).toBe(1);
  const monitor = await (svc.rt.redis as Redis).monitor(); // (one Redis here, not a Cluster)
  const onPrevious: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((a) => a.includes(':intent:') && a.endsWith(':read:1'))) onPrevious.push(String(args[0]).toLowerCase());
  });
  try {
    const again = await lastSeq();
    const reasons = await oneTokenRuns(job, 'b', 1); // read again (`read:2`), the update refused
    const reads = (await requests(again)).filter((q) => q.method === 'GET' && q.path.endsWith('/liveBroadcasts')).length;
    await svc.rt.redis.ping(); // (MONITOR's lines of the run are in before this one's reply)
    expect({ reasons, reads, onPrevious }).toEqual({ reasons: ['rate_limited'], reads: 1, onPrevious: ['get'] });
  } finally {
    monitor.disconnect();
  }
  // The update goes with the next run's token, on the read made again.
  const later = await lastSeq();
  expect({ reasons: await oneTokenRuns(job, 'c', 1), title: (await lastSnippetSince(later))?.title }).toEqual({ reasons: [], title: 'Title A' });
}, 30_000);
