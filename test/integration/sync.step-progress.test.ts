/**
 * A step an attempt completed is progress: the next failure starts a fresh backoff.
 *
 * YouTube's create is one adapter call of three steps (broadcast, stream, bind), and the mirror is
 * saved only once all of them are done. A run that made one step and then met a transient error on
 * the next counted as one more failure in a row, so a create that advanced a step per attempt
 * through a few 5xx/timeouts waited as if nothing had worked: 16–32 s, then 32–64 s, then 64–128 s
 * (backoffMs) before its next step. In the 50-show fault test (test/e2e/mirror.faults.test.ts) under
 * CPU load one mirror's create made its stream, then its broadcast met a 500, a 500 and a timeout on
 * top of the earlier failures, and the mirror sat in `provisioning` for most of a minute.
 *
 * Real redis-server, the real SyncService and YouTube adapter, the simulator behind a proxy that drops
 * chosen requests (the connection is reset: a transient failure whose outcome the client cannot know).
 * The test plays the runs as BullMQ would (a new token each, waiting each delay).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CLEANUP_TRIES, SyncService, type SyncDeps, type SyncOutcome } from '../../src/mirror/sync.service.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createLogger } from '../../src/lib/logger.js';
import { intentRecordsUnreadable } from '../../src/lib/metrics.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { logSink } from '../helpers/log-sink.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { startLateProxy, type LateProxy } from '../helpers/late-proxy.js';
import { createPartner, retryingUnavailable, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let proxy: LateProxy;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null });
  proxy = await startLateProxy(sim.url);
  // no workers: the test plays the runs; short attempts so that a dropped step settles fast, and a
  // back-off of a fifth of the default (SYNC_BACKOFF_BASE_MS: the delays the runs return show it is used)
  svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '400', PLATFORM_SETTLE_MS: '300', SYNC_BACKOFF_BASE_MS: '200' } });
});
afterAll(async () => {
  await svc?.close();
  await proxy?.close();
  await sim?.close();
});

const STREAM = (method: string, path: string): boolean => method === 'POST' && /\/v3\/liveStreams$/.test(path);
const BROADCAST = (method: string, path: string): boolean => method === 'POST' && /\/v3\/liveBroadcasts$/.test(path);

test('a create that makes a step per attempt between transient failures starts its backoff afresh after each step', async () => {
  const secret = await youtubeTarget('prog', 'yt');
  expect((await sendEvent(svc, 'prog', secret, showEvent('show.scheduled', sampleShow('s1', { title: 'Progress' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'prog', showId: 's1', targetId: 'yt' };
  const mirror = async () => (await svc.rt.shows.getMirror('prog', 's1', 'yt'))!;
  let n = 0;
  let outcome: SyncOutcome | undefined;
  /** Runs the job (waiting each delay, as BullMQ would) until `dropped` requests were dropped in all, or it is done. */
  const runUntil = async (dropped: number): Promise<void> => {
    for (let i = 0; proxy.dropped.length < dropped && i < 20; i++) {
      if (outcome?.kind === 'delay') await sleep(outcome.delayMs);
      outcome = await svc.rt.syncService.sync(job, { token: `run-${n++}` });
      if (outcome.kind === 'done') return;
    }
  };

  // 1. The broadcast's insert fails: nothing made, the first failure.
  proxy.dropNext(BROADCAST);
  await runUntil(1);
  expect(proxy.dropped).toHaveLength(1);
  expect(await mirror()).toMatchObject({ state: 'provisioning', retries: 1 });
  // The first failure waits half to all of SYNC_BACKOFF_BASE_MS (the default 1 s: 500–1000 ms).
  expect(outcome).toMatchObject({ kind: 'delay' });
  expect((outcome as { delayMs: number }).delayMs).toBeLessThanOrEqual(200);

  // 2. The next attempt makes the broadcast (after its lookup found nothing), then the stream's insert
  //    fails: a step was done in between, so this is the first failure since, not the second in a row.
  proxy.dropNext(STREAM);
  await runUntil(2);
  expect(proxy.dropped).toHaveLength(2);
  const afterStream = await mirror();
  expect(afterStream).toMatchObject({ state: 'provisioning', retries: 1 });
  expect(afterStream.lastError).toMatch(/^retrying in 1 s: /);

  // 3. The stream fails again and nothing was done in between: that one counts on (no reset per attempt).
  proxy.dropNext(STREAM);
  await runUntil(3);
  expect(proxy.dropped).toHaveLength(3);
  expect(await mirror()).toMatchObject({ state: 'provisioning', retries: 2 });

  // 4. The rest goes through: one stream, one broadcast, the mirror ready with a clean slate.
  await runUntil(Infinity);
  expect(outcome).toEqual({ kind: 'done', state: 'ready' });
  expect(await mirror()).toMatchObject({ state: 'ready', retries: 0, lastError: null });
  const created = (await sim.effects('youtube')).filter((e) => e.type === 'show.created');
  expect(created.map((e) => e.externalId)).toEqual([(await mirror()).remote!.externalId]);
}, 60_000);

test('a step whose one request was never sent (its token refresh failed) is forgotten: the next attempt sends it at once, without a settle wait or a lookup', async () => {
  const secret = await youtubeTarget('uns', 'yt-uns');
  expect((await sendEvent(svc, 'uns', secret, showEvent('show.scheduled', sampleShow('s2', { title: 'Unsent' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'uns', showId: 's2', targetId: 'yt-uns' };
  // The credential check cached an access token: gone, so the first call needs a refresh.
  await svc.rt.redis.del(svc.rt.keys.targetToken('yt-uns'));
  const seqBefore = ((await sim.control('GET', '/_sim/youtube/requests')) as { seq: number }[]).length;

  // The broadcast step (the first) starts; the token refresh its insert needs first fails (the connection is reset).
  const dropped = proxy.dropped.length;
  proxy.dropNext((method, path) => method === 'POST' && /\/token$/.test(path));
  expect(await svc.rt.syncService.sync(job, { token: 'uns-1' })).toMatchObject({ kind: 'delay' });
  expect(proxy.dropped.slice(dropped)).toEqual([expect.objectContaining({ method: 'POST' })]);
  // Nothing of the step reached YouTube: it is not left `started` for the next attempt to wait out and look up.
  expect(await svc.rt.redis.get(svc.rt.keys.intent('uns', 's2', 'yt-uns', 'g0:create:broadcast'))).toBeNull();

  // The next attempt (at once) creates the show: no settle wait, no lookup of the broadcast (or stream) list.
  expect(await svc.rt.syncService.sync(job, { token: 'uns-2' })).toEqual({ kind: 'done', state: 'ready' });
  const reqs = ((await sim.control('GET', '/_sim/youtube/requests')) as { method: string; path: string }[]).slice(seqBefore);
  expect(reqs.filter((q) => q.method === 'GET' && q.path.startsWith('/youtube/v3/liveStreams'))).toEqual([]);
  expect(reqs.filter((q) => q.method === 'GET' && q.path === '/youtube/v3/liveBroadcasts')).toEqual([]);
  expect(reqs.filter((q) => q.method === 'POST' && q.path === '/youtube/v3/liveStreams')).toHaveLength(1);
}, 60_000);

test('a broadcast insert refused for good because the channel may not stream live (livePermissionBlocked) is not left started (a resync after the block would page the broadcast list first)', async () => {
  // It was left `started`: every resync paged the whole broadcast list first (recovery), and on a channel
  // with more than MAX_RECOVERY_PAGES pages ended recovery_inconclusive though nothing had been made.
  const secret = await youtubeTarget('blk', 'yt-blk');
  expect((await sendEvent(svc, 'blk', secret, showEvent('show.scheduled', sampleShow('s3', { title: 'Blocked' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'blk', showId: 's3', targetId: 'yt-blk' };
  await sim.control('PUT', '/_sim/youtube/live-streaming', { enabled: true, blocked: true });
  try {
    expect(await svc.rt.syncService.sync(job, { token: 'blk-1' })).toMatchObject({ kind: 'done', state: 'failed' });
  } finally {
    await sim.control('PUT', '/_sim/youtube/live-streaming', { enabled: true });
  }
  // Nothing was made: the step is forgotten, so the resync after the block sends the insert without a lookup first.
  expect(await svc.rt.redis.get(svc.rt.keys.intent('blk', 's3', 'yt-blk', 'g0:create:broadcast'))).toBeNull();
}, 60_000);

/** Runs the job as BullMQ would (a new token each, waiting each delay) until it is done or `stop()` says so, at most 30 runs. */
async function runJob(job: { partnerId: string; showId: string; targetId: string }, name: string, stop: () => boolean = () => false): Promise<SyncOutcome> {
  let outcome = await svc.rt.syncService.sync(job, { token: `${name}-0` });
  for (let i = 1; outcome.kind === 'delay' && !stop() && i < 30; i++) {
    await sleep(outcome.delayMs);
    outcome = await svc.rt.syncService.sync(job, { token: `${name}-${i}` });
  }
  return outcome;
}

/** A partner and its YouTube target through the proxy (the add's credential check under the file's 400 ms timeout: a 503 sent again). */
async function youtubeTarget(partnerId: string, targetId: string): Promise<string> {
  const secret = await createPartner(svc, partnerId);
  const r = await retryingUnavailable(() => svc.api(`/v1/partners/${partnerId}/targets`, {
    json: { id: targetId, platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: `${proxy.url}/youtube`, commissionRateBps: 500 },
  }));
  expect(r.status).toBe(201);
  return secret;
}

const simRequests = async (): Promise<{ method: string; path: string; query: Record<string, string>; status: number }[]> =>
  (await sim.control('GET', '/_sim/youtube/requests?since=0')) as { method: string; path: string; query: Record<string, string>; status: number }[];
/**
 * One sweep as production runs it (no job waiting: the ones the events left are dropped first), then
 * whether it queued a sync of the show and whether the show is still in the active set.
 */
async function sweepFor(partnerId: string, showId: string): Promise<{ queued: number; active: boolean }> {
  const queues = svc.rt.syncProducer.allQueues();
  for (const q of queues) await q.obliterate({ force: true });
  await new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent')).sweep();
  const jobs = (await Promise.all(queues.map((q) => q.getJobs(['waiting', 'delayed', 'prioritized'])))).flat();
  let active = false;
  for await (const page of svc.rt.shows.activeShowEntries(500)) active ||= page.some((e) => e.partnerId === partnerId && e.showId === showId);
  return { queued: jobs.filter((j) => (j.data as { partnerId: string; showId: string }).partnerId === partnerId && (j.data as { showId: string }).showId === showId).length, active };
}

const channelStreams = async (): Promise<{ id: string; boundBroadcastId: string | null }[]> =>
  ((await sim.control('GET', '/_sim/youtube/live-streams')) as { streams: { id: string; boundBroadcastId: string | null }[] }).streams;

test('a broadcast insert refused for good (nothing made) after an earlier attempt whose outcome was unknown and a lookup that lagged is not forgotten: the next attempt looks again and adopts the broadcast', async () => {
  // The refusal (livePermissionBlocked, insufficientPermissions…: "nothing made") forgot the step though the
  // earlier attempt may have made the broadcast and the list had not shown it yet: the attempt after the
  // block sent the insert without a lookup, and the channel had two broadcasts for the show.
  const secret = await youtubeTarget('lag', 'yt-lag');
  const show = sampleShow('s4', { title: 'Lagged' });
  expect((await sendEvent(svc, 'lag', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'lag', showId: 's4', targetId: 'yt-lag' };
  // The insert reaches YouTube after its caller gave up (PLATFORM_TIMEOUT_MS 400).
  proxy.holdNext(BROADCAST, 1_000);
  expect(await svc.rt.syncService.sync(job, { token: 'lag-a' })).toMatchObject({ kind: 'delay' });
  await proxy.idle();
  // Past the point from which a look that finds nothing is trusted (until + 2 × settle: 800 + 600 ms
  // after lag-a's start; a sooner one is asked again a settle window later, and would find it).
  await sleep(2 * 300 + 100);
  // The next attempt's lookup lags behind it (the list shows no broadcast yet), and the insert is refused.
  const lagging = proxy.holdAnswerNext((method, path) => method === 'GET' && /\/v3\/liveBroadcasts$/.test(path), (body) => JSON.stringify({ ...(JSON.parse(body) as object), items: [] }));
  lagging.release();
  await sim.control('PUT', '/_sim/youtube/live-streaming', { enabled: true, blocked: true });
  try {
    expect(await runJob(job, 'lag-b')).toMatchObject({ kind: 'done', state: 'failed' });
  } finally {
    await sim.control('PUT', '/_sim/youtube/live-streaming', { enabled: true });
  }
  expect(await svc.rt.redis.get(svc.rt.keys.intent('lag', 's4', 'yt-lag', 'g0:create:broadcast'))).toMatch(/"status":"started"/);
  // Retried once the block is lifted: the lookup finds the first broadcast, and no second one is made.
  expect((await svc.api('/v1/partners/lag/shows/s4/mirrors/yt-lag/resync', { method: 'POST' })).status).toBe(202);
  expect(await runJob(job, 'lag-c')).toEqual({ kind: 'done', state: 'ready' });
  expect((await sim.effects('youtube')).filter((e) => e.type === 'show.created' && e.title === 'Lagged')).toHaveLength(1);
}, 60_000);

test('a stream delete that fails for now after the withdraw (5xx, quota, a reset connection) is tried again by a later run of the cancelled mirror, without a second broadcast delete', async () => {
  // It was only logged: the stream stayed on the channel for good.
  const secret = await youtubeTarget('cln', 'yt-cln');
  const show = sampleShow('s5', { title: 'Clean-up' });
  expect((await sendEvent(svc, 'cln', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'cln', showId: 's5', targetId: 'yt-cln' };
  expect(await runJob(job, 'cln-a')).toEqual({ kind: 'done', state: 'ready' });
  const { remote } = (await svc.rt.shows.getMirror('cln', 's5', 'yt-cln'))!;
  const streamId = remote!.data.streamId!;
  proxy.dropNext((method, path) => method === 'DELETE' && /\/v3\/liveStreams$/.test(path));
  expect((await sendEvent(svc, 'cln', secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  expect(await runJob(job, 'cln-b')).toEqual({ kind: 'done', state: 'cancelled' });
  const cancelled = (await svc.rt.shows.getMirror('cln', 's5', 'yt-cln'))!;
  expect({ lastError: cancelled.lastError, cleanup: cancelled.remote?.data.cleanup }).toEqual({ lastError: null, cleanup: 'cancel' });
  expect((await channelStreams()).map((s) => s.id)).toContain(streamId);
  // No event comes for the cancelled show and its run ended well: the sweep is what runs it again (it
  // skipped the finished mirror and dropped the show from the active set, so no later run came).
  expect(await sweepFor('cln', 's5')).toEqual({ queued: 1, active: true });
  // That run deletes the stream; the broadcast's delete is not sent again.
  expect(await runJob(job, 'cln-c')).toEqual({ kind: 'done', state: 'cancelled' });
  expect((await channelStreams()).map((s) => s.id)).not.toContain(streamId);
  expect((await svc.rt.shows.getMirror('cln', 's5', 'yt-cln'))!.remote?.data.cleanup).toBeUndefined();
  // Nothing left: the sweep runs it no more, and the show leaves the active set.
  expect(await sweepFor('cln', 's5')).toEqual({ queued: 0, active: false });
  const deletes = (await simRequests()).filter((q) => q.method === 'DELETE' && q.path === '/youtube/v3/liveBroadcasts' && q.query.id === remote!.externalId);
  expect(deletes).toHaveLength(1);
}, 60_000);

test('a withdraw clean-up that keeps failing is given up after a bounded number of sweep-started runs (best effort), and the show leaves the active set', async () => {
  const { secret, show, job, streamId } = await readyMirror('cln2', 's7', 'yt-cln2', 'Clean-up for good', 'cl2-a');
  proxy.dropNext(STREAM_DELETE);
  expect((await sendEvent(svc, 'cln2', secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  expect(await runJob(job, 'cl2-b')).toEqual({ kind: 'done', state: 'cancelled' });
  for (let i = 0; i < CLEANUP_TRIES; i++) {
    expect(await sweepFor('cln2', 's7')).toEqual({ queued: 1, active: true });
    proxy.dropNext(STREAM_DELETE);
    expect(await runJob(job, `cl2-c${i}`)).toEqual({ kind: 'done', state: 'cancelled' });
  }
  const m = (await svc.rt.shows.getMirror('cln2', 's7', 'yt-cln2'))!;
  expect({ state: m.state, lastError: m.lastError, cleanup: m.remote?.data.cleanup }).toEqual({ state: 'cancelled', lastError: null, cleanup: undefined });
  expect((await channelStreams()).map((s) => s.id)).toContain(streamId); // left on the channel
  expect(await sweepFor('cln2', 's7')).toEqual({ queued: 0, active: false });
}, 60_000);

test('a show back on after a look-up-only create adopted its broadcast (called off mid-create, the withdraw not through yet) gets its stream made and bound, and goes live', async () => {
  // The look-up-only create neither makes nor binds: the mirror was left `ready` with a broadcast and no
  // stream, and the revived show failed at its start (invalidTransition: nothing bound), with no ingest.
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  const secret = await youtubeTarget('rev', 'yt-rev');
  const show = sampleShow('s6', { title: 'Revived' });
  expect((await sendEvent(svc, 'rev', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'rev', showId: 's6', targetId: 'yt-rev' };
  proxy.holdNext(BROADCAST, 1_000);
  expect(await svc.rt.syncService.sync(job, { token: 'rev-a' })).toMatchObject({ kind: 'delay' });
  await proxy.idle(); // the broadcast is made; its stream never was
  expect((await sendEvent(svc, 'rev', secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  // The look-up-only create finds the broadcast; its delete fails for now (the connection is reset).
  const dropped = proxy.dropped.length;
  proxy.dropNext((method, path) => method === 'DELETE' && /\/v3\/liveBroadcasts$/.test(path));
  expect(await runJob(job, 'rev-b', () => proxy.dropped.length > dropped)).toMatchObject({ kind: 'delay' });
  const found = (await svc.rt.shows.getMirror('rev', 's6', 'yt-rev'))!;
  expect({ state: found.state, ingest: found.remote?.ingest }).toEqual({ state: 'ready', ingest: undefined });
  // The partner puts the show back on before the withdraw is retried.
  expect((await sendEvent(svc, 'rev', secret, showEvent('show.updated', { ...show, state: 'scheduled' }, '2026-11-24T17:40:00Z'))).status).toBe(202);
  expect(await runJob(job, 'rev-c')).toEqual({ kind: 'done', state: 'ready' });
  const ready = (await svc.rt.shows.getMirror('rev', 's6', 'yt-rev'))!;
  expect(ready.remote?.externalId).toBe(found.remote?.externalId);
  expect(ready.remote?.ingest).toEqual({ url: expect.any(String), streamKey: expect.any(String) });
  expect((await channelStreams()).filter((s) => s.boundBroadcastId === ready.remote?.externalId).map((s) => s.id)).toEqual([ready.remote?.data.streamId]);
  expect((await sendEvent(svc, 'rev', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect(await runJob(job, 'rev-d')).toEqual({ kind: 'done', state: 'live' });
  expect((await sim.effects('youtube')).filter((e) => e.externalId === ready.remote?.externalId).map((e) => e.type)).toEqual(['show.created', 'show.started']);
}, 60_000);

test('a recovery lookup that fails (a 5xx, a reset connection) sent nothing that makes a broadcast: the settle window is not renewed, and the next attempt looks again at once', async () => {
  // The run that took the step over to look it up wrote its own `started` record (a new `until`); when the
  // lookup itself failed, that record stayed, and every later run waited out a whole settle window again
  // (2 × PLATFORM_TIMEOUT_MS + PLATFORM_SETTLE_MS: 36 s in the fault fuzz of npm-start.worker-sequences)
  // before it looked once more, though nothing had been sent that could have made a broadcast since.
  const secret = await youtubeTarget('lku', 'yt-lku');
  expect((await sendEvent(svc, 'lku', secret, showEvent('show.scheduled', sampleShow('s9', { title: 'Lookup' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'lku', showId: 's9', targetId: 'yt-lku' };
  const intentKey = svc.rt.keys.intent('lku', 's9', 'yt-lku', 'g0:create:broadcast');
  // 1. The broadcast's insert: its outcome unknown (the connection is reset), the step left started.
  proxy.dropNext(BROADCAST);
  expect(await svc.rt.syncService.sync(job, { token: 'lku-a' })).toMatchObject({ kind: 'delay' });
  const earlier = (await svc.rt.redis.get(intentKey))!;
  expect(earlier).toMatch(/"status":"started"/);
  // 2. Once a look that finds nothing may be trusted (its `until` + 2 × PLATFORM_SETTLE_MS), a run takes the
  // step over to look it up, and the lookup fails. (Taken over at `until` + 1 × settle, as it was, the next
  // attempt below could come before that point after the failure's back-off and be told to settle: flaky.)
  await sleep(Math.max(0, (JSON.parse(earlier) as { until: number }).until + 2 * 300 - Date.now()) + 50);
  const dropped = proxy.dropped.length;
  proxy.dropNext((method, path) => method === 'GET' && /\/v3\/liveBroadcasts$/.test(path));
  const failed = await svc.rt.syncService.sync(job, { token: 'lku-b' });
  expect(proxy.dropped.slice(dropped)).toEqual([expect.objectContaining({ method: 'GET' })]);
  expect(failed).toMatchObject({ kind: 'delay' });
  // The earlier attempt's record is back: the window it left is over already.
  expect(await svc.rt.redis.get(intentKey)).toBe(earlier);
  // 3. The next attempt (after the back-off of that failure) looks again and creates, without another settle wait.
  await sleep((failed as { delayMs: number }).delayMs);
  expect(await svc.rt.syncService.sync(job, { token: 'lku-c' })).toEqual({ kind: 'done', state: 'ready' });
  expect((await sim.effects('youtube')).filter((e) => e.type === 'show.created' && e.title === 'Lookup')).toHaveLength(1);
}, 60_000);

/**
 * A show scheduled on a new YouTube target, mirrored, then cancelled with its stream delete dropped:
 * the cancelled mirror with its clean-up left for a later run. Returns the job and its broadcast.
 */
async function cancelledWithCleanUp(partnerId: string, showId: string, targetId: string): Promise<{ job: { partnerId: string; showId: string; targetId: string }; broadcastId: string; generation: number }> {
  const secret = await youtubeTarget(partnerId, targetId);
  const show = sampleShow(showId, { title: `Clean-up ${showId}` });
  expect((await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId, showId, targetId };
  expect(await runJob(job, `${showId}-a`)).toEqual({ kind: 'done', state: 'ready' });
  proxy.dropNext((method, path) => method === 'DELETE' && /\/v3\/liveStreams$/.test(path));
  expect((await sendEvent(svc, partnerId, secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  expect(await runJob(job, `${showId}-b`)).toEqual({ kind: 'done', state: 'cancelled' });
  const m = (await svc.rt.shows.getMirror(partnerId, showId, targetId))!;
  expect(m.remote?.data.cleanup).toBe('cancel');
  return { job, broadcastId: m.remote!.externalId, generation: m.generation };
}

/** The runtime's SyncService with its log lines kept (level info and up). */
function loggedSyncService(): { service: SyncService; lines: { level: number; msg: string }[] } {
  const { log, lines } = logSink<{ level: number; msg: string }>();
  const deps = (svc.rt.syncService as unknown as { deps: SyncDeps }).deps;
  return { service: new SyncService({ ...deps, log }), lines };
}

const BROADCAST_READ = (method: string, path: string): boolean => method === 'GET' && /\/v3\/liveBroadcasts$/.test(path);
const STREAM_DELETE = (method: string, path: string): boolean => method === 'DELETE' && /\/v3\/liveStreams$/.test(path);

/** A show scheduled on a new YouTube target and mirrored (`ready`): its secret, show, job and stream id. */
async function readyMirror(partnerId: string, showId: string, targetId: string, title: string, token: string) {
  const secret = await youtubeTarget(partnerId, targetId);
  const show = sampleShow(showId, { title });
  expect((await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId, showId, targetId };
  expect(await runJob(job, token)).toEqual({ kind: 'done', state: 'ready' });
  const streamId = (await svc.rt.shows.getMirror(partnerId, showId, targetId))!.remote!.data.streamId!;
  return { secret, show, job, streamId };
}

test('a withdraw clean-up refused even with a fresh access token (401 after the refresh) marks the target\'s access token expired, as any other call does, and the cancelled mirror stays cancelled', async () => {
  // The clean-up logged it at info and kept the refused token: cached in the adapter and stored as valid.
  const { job } = await cancelledWithCleanUp('cln4', 's9', 'yt-cln4');
  const refused = { error: { code: 401, message: 'Request had invalid authentication credentials.', errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError' }], status: 'UNAUTHENTICATED' } };
  proxy.replyNext(BROADCAST_READ, 401, refused);
  proxy.replyNext(BROADCAST_READ, 401, refused); // the retry with a fresh token
  const { service, lines } = loggedSyncService();
  expect(await service.sync(job, { token: 'cl4-c' })).toEqual({ kind: 'done', state: 'cancelled' });
  const m = (await svc.rt.shows.getMirror('cln4', 's9', 'yt-cln4'))!;
  expect({ state: m.state, lastError: m.lastError, cleanup: m.remote?.data.cleanup, tries: m.remote?.data.cleanupTries }).toEqual({ state: 'cancelled', lastError: null, cleanup: 'cancel', tries: '1' });
  expect((await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'yt-cln4').current())?.expiresAt).toBe(0);
  expect(lines.filter((l) => l.level === 40 && /fresh access token/.test(l.msg))).toHaveLength(1);
  // The next run refreshes and cleans up.
  expect(await service.sync(job, { token: 'cl4-d' })).toEqual({ kind: 'done', state: 'cancelled' });
  expect((await svc.rt.shows.getMirror('cln4', 's9', 'yt-cln4'))!.remote?.data.cleanup).toBeUndefined();
}, 60_000);

test('a stream delete refused even with a fresh access token (401 after the refresh) marks the target\'s access token expired, on the cancel and on its clean-up; the cancelled mirror stays cancelled and the clean-up pending', async () => {
  // dropStream said only "later": the refused token stayed cached in the adapter and stored as valid.
  const { secret, show, job, streamId } = await readyMirror('cln6', 's11', 'yt-cln6', 'Clean-up s11', 's11-a');
  const refused = { error: { code: 401, message: 'Request had invalid authentication credentials.', errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError' }], status: 'UNAUTHENTICATED' } };
  const refuseDelete = (): void => {
    proxy.replyNext(STREAM_DELETE, 401, refused);
    proxy.replyNext(STREAM_DELETE, 401, refused); // the retry with a fresh token
  };
  const expiresAt = async (): Promise<number | undefined> => (await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'yt-cln6').current())?.expiresAt;
  const { service, lines } = loggedSyncService();
  refuseDelete();
  expect((await sendEvent(svc, 'cln6', secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  expect(await service.sync(job, { token: 's11-b' })).toEqual({ kind: 'done', state: 'cancelled' });
  const m = async () => (await svc.rt.shows.getMirror('cln6', 's11', 'yt-cln6'))!;
  expect({ state: (await m()).state, cleanup: (await m()).remote?.data.cleanup }).toEqual({ state: 'cancelled', cleanup: 'cancel' });
  expect(await expiresAt()).toBe(0);
  // The clean-up run refreshes, and is refused again: marked expired again, one try counted.
  refuseDelete();
  expect(await service.sync(job, { token: 's11-c' })).toEqual({ kind: 'done', state: 'cancelled' });
  expect({ state: (await m()).state, lastError: (await m()).lastError, cleanup: (await m()).remote?.data.cleanup, tries: (await m()).remote?.data.cleanupTries }).toEqual({ state: 'cancelled', lastError: null, cleanup: 'cancel', tries: '1' });
  expect(await expiresAt()).toBe(0);
  expect(lines.filter((l) => l.level === 40 && /fresh access token/.test(l.msg))).toHaveLength(2);
  // The next run deletes the stream.
  expect(await service.sync(job, { token: 's11-d' })).toEqual({ kind: 'done', state: 'cancelled' });
  expect((await m()).remote?.data.cleanup).toBeUndefined();
  expect((await channelStreams()).map((s) => s.id)).not.toContain(streamId);
}, 60_000);

test('a withdraw clean-up that finds a step\'s intent record unreadable logs it at error level and counts it, and the cancelled mirror stays cancelled', async () => {
  // It was logged at info ("left for a later run") and given up after CLEANUP_TRIES: nobody was told.
  const { job, broadcastId, generation } = await cancelledWithCleanUp('cln5', 's10', 'yt-cln5');
  await svc.rt.redis.set(svc.rt.keys.intent('cln5', 's10', 'yt-cln5', `g${generation}:cancel:delete:${broadcastId}`), '{"status":"do');
  // The clean-up's read still lists the broadcast (a read lagging behind its delete): the recorded delete step is asked.
  proxy.replyNext(BROADCAST_READ, 200, { items: [{ id: broadcastId, snippet: { title: 'Clean-up s10' }, status: { lifeCycleStatus: 'ready' } }] });
  const counted = async (): Promise<number> => (await intentRecordsUnreadable.get()).values.find((v) => v.labels.platform === 'youtube' && v.labels.during === 'cleanup')?.value ?? 0;
  const before = await counted();
  const { service, lines } = loggedSyncService();
  expect(await service.sync(job, { token: 'cl5-c' })).toEqual({ kind: 'done', state: 'cancelled' });
  const m = (await svc.rt.shows.getMirror('cln5', 's10', 'yt-cln5'))!;
  expect({ state: m.state, lastError: m.lastError }).toEqual({ state: 'cancelled', lastError: null });
  expect(await counted()).toBe(before + 1);
  expect(lines.filter((l) => l.level === 50 && /intent record is unreadable/.test(l.msg))).toHaveLength(1);
}, 60_000);

test('a stream delete after a refused bind, refused even with a fresh access token (401 after the refresh), marks the token expired and the create runs again once it is renewed: the stream is deleted then, and the mirror fails with the bind\'s refusal', async () => {
  // The 401 was only logged: the bind's refusal failed the mirror at once, the refused token stayed cached
  // and stored as valid, and the stream made for the broadcast stayed on the channel, unbound, for good.
  const secret = await youtubeTarget('bnd', 'yt-bnd');
  expect((await sendEvent(svc, 'bnd', secret, showEvent('show.scheduled', sampleShow('s12', { title: 'Unbindable s12' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'bnd', showId: 's12', targetId: 'yt-bnd' };
  const earlier = new Set((await channelStreams()).map((s) => s.id));
  const refused = { error: { code: 401, message: 'Request had invalid authentication credentials.', errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError' }], status: 'UNAUTHENTICATED' } };
  proxy.replyNext(STREAM_DELETE, 401, refused);
  proxy.replyNext(STREAM_DELETE, 401, refused); // the retry with a fresh token
  // The channel owner deletes the new broadcast in YouTube Studio before the bind reaches YouTube.
  const bind = proxy.gateNext((method, path) => method === 'POST' && /\/v3\/liveBroadcasts\/bind$/.test(path));
  const { service } = loggedSyncService();
  const first = service.sync(job, { token: 'bnd-a' });
  await bind.arrived;
  const made = ((await sim.control('GET', '/_sim/youtube/effects')) as { type: string; externalId: string; title?: string }[]).find((e) => e.type === 'show.created' && e.title === 'Unbindable s12')!.externalId;
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: CREDENTIALS.youtube.clientId!, client_secret: CREDENTIALS.youtube.clientSecret!, refresh_token: CREDENTIALS.youtube.refreshToken! });
  const { access_token: token } = (await (await fetch(`${sim.url}/youtube/token`, { method: 'POST', body: form })).json()) as { access_token: string };
  expect((await fetch(`${sim.url}/youtube/youtube/v3/liveBroadcasts?id=${made}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
  bind.release();
  expect(await first).toMatchObject({ kind: 'delay' });
  const m = async () => (await svc.rt.shows.getMirror('bnd', 's12', 'yt-bnd'))!;
  expect((await m()).state).not.toBe('failed');
  expect((await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'yt-bnd').current())?.expiresAt).toBe(0);
  const ours = (await channelStreams()).filter((s) => !earlier.has(s.id));
  expect(ours).toEqual([expect.objectContaining({ boundBroadcastId: null })]);
  // The next run (a fresh token) reuses the recorded steps, is refused the bind again and deletes the stream.
  expect(await service.sync(job, { token: 'bnd-b' })).toEqual({ kind: 'done', state: 'failed' });
  expect((await m()).lastError).toMatch(/liveBroadcastNotFound|not found/i);
  expect((await channelStreams()).filter((s) => !earlier.has(s.id))).toEqual([]); // deleted, and none made again
}, 60_000);

// Last in the file: the quota block it sets holds the YouTube account every test here shares.
test('a withdraw clean-up held by the quota (refused until midnight Pacific) is not given up: the refusals to wait are not tries', async () => {
  // Counted as tries, the sweep's runs (one per SWEEP_INTERVAL_MS) gave it up within a minute, and the
  // stream stayed on the channel for good though the quota came back that night.
  const secret = await youtubeTarget('cln3', 'yt-cln3');
  const show = sampleShow('s8', { title: 'Clean-up over quota' });
  expect((await sendEvent(svc, 'cln3', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'cln3', showId: 's8', targetId: 'yt-cln3' };
  expect(await runJob(job, 'cl3-a')).toEqual({ kind: 'done', state: 'ready' });
  const streamId = (await svc.rt.shows.getMirror('cln3', 's8', 'yt-cln3'))!.remote!.data.streamId!;
  proxy.dropNext((method, path) => method === 'DELETE' && /\/v3\/liveStreams$/.test(path));
  expect((await sendEvent(svc, 'cln3', secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  expect(await runJob(job, 'cl3-b')).toEqual({ kind: 'done', state: 'cancelled' });
  // The day's quota is spent: the first sweep-started run's stream delete is refused quotaExceeded, the
  // later ones are held by the limiter's block until midnight Pacific.
  await sim.control('PUT', '/_sim/youtube/limits', { quotaPerDay: 1 });
  try {
    for (let i = 0; i <= CLEANUP_TRIES; i++) {
      expect(await sweepFor('cln3', 's8')).toEqual({ queued: 1, active: true });
      expect(await svc.rt.syncService.sync(job, { token: `cl3-c${i}` })).toEqual({ kind: 'done', state: 'cancelled' });
    }
    const m = (await svc.rt.shows.getMirror('cln3', 's8', 'yt-cln3'))!;
    expect({ state: m.state, lastError: m.lastError, cleanup: m.remote?.data.cleanup }).toEqual({ state: 'cancelled', lastError: null, cleanup: 'cancel' });
    expect((await simRequests()).some((q) => q.status === 403)).toBe(true); // quotaExceeded, then the limiter's block
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { quotaPerDay: null });
  }
  expect((await channelStreams()).map((s) => s.id)).toContain(streamId); // still to be removed, after the block
  expect(await sweepFor('cln3', 's8')).toEqual({ queued: 1, active: true });
}, 60_000);
