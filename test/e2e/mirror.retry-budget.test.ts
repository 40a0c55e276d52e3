/**
 * Issue 11 follow-ups on the error taxonomy (docs/architecture.md "Error taxonomy"), YouTube
 * simulator over real HTTP with real Redis:
 * - every YouTube request answering 500: each attempt counts against SYNC_MAX_RETRIES and the mirror
 *   ends `failed` with the reason (a save before the create used to reset the count on every run),
 *   and keeps it when a later event syncs the show again (that run used to erase it: the ops board
 *   then said "failed" with no error, as did the partner's mirror.updated);
 * - YouTube allowing one request per 2 s: provisioning completes, slowly (a refused insert used to
 *   leave its intent "started", so every run spent its one request on the recovery lookup and the
 *   insert was refused again, forever).
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { addTarget, simServicePerFile, simTarget, youtubeEncoderNow } from '../helpers/mirrors.js';

let svc: TestService;
let sim: TestSim;
// A 500 leaves its step's outcome unknown: the retry waits out the attempt (2 × PLATFORM_TIMEOUT_MS) and
// PLATFORM_SETTLE_MS before it looks the step up, 6 s a retry at the tests' default 2 s each; 2.5 s here.
simServicePerFile((rig) => ({ sim, svc } = rig), { service: { workers: true, env: { SYNC_MAX_RETRIES: '3', PLATFORM_TIMEOUT_MS: '1000', PLATFORM_SETTLE_MS: '500' } }, prepare: youtubeEncoderNow, timeoutMs: 60_000 });

test('a YouTube 500 on every request: retries are counted and the mirror fails with the reason, which a later sync keeps', async () => {
  const secret = await createPartner(svc, 'rb');
  await addTarget(svc, 'rb', simTarget(sim, 'youtube', { id: 'rb-yt', name: 'YT', commissionRateBps: 100 }));
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    expect((await sendEvent(svc, 'rb', secret, showEvent('show.scheduled', sampleShow('rb1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    const seen = new Set<number>();
    const m = await waitFor(async () => {
      const got = await svc.rt.shows.getMirror('rb', 'rb1', 'rb-yt');
      if (got) seen.add(got.retries);
      return got?.state === 'failed' ? got : null;
    }, 60_000, 20);
    expect(m.lastError).toMatch(/gave up after 3 retries: youtube: .*500/);
    expect(Math.max(...seen)).toBeGreaterThanOrEqual(2);

    // A later event: its run passes over the failed mirror (no platform call) and must keep the reason.
    expect((await sendEvent(svc, 'rb', secret, showEvent('show.scheduled', sampleShow('rb1', { title: 'Renamed' }), '2026-11-24T17:05:00Z'))).status).toBe(202);
    const version = (await svc.rt.shows.desired('rb', 'rb1'))!.version;
    expect(version).toBeGreaterThan(m.syncedVersion);
    const after = await waitFor(async () => {
      const got = await svc.rt.shows.getMirror('rb', 'rb1', 'rb-yt');
      return got && got.syncedVersion >= version ? got : null;
    }, 30_000, 20);
    expect(after.state).toBe('failed');
    expect(after.lastError).toBe(m.lastError);
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
}, 90_000);

test('YouTube allowing 1 request per 2 s: provisioning completes, slowly', async () => {
  const secret = await createPartner(svc, 'rl');
  await addTarget(svc, 'rl', simTarget(sim, 'youtube', { id: 'rl-yt', name: 'YT', commissionRateBps: 100 }));
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: 1, windowMs: 2000 });
  try {
    expect((await sendEvent(svc, 'rl', secret, showEvent('show.scheduled', sampleShow('rl1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    const m = await waitFor(async () => {
      const got = await svc.rt.shows.getMirror('rl', 'rl1', 'rl-yt');
      return got?.state === 'ready' ? got : null;
    }, 60_000, 100);
    expect(m.remote?.externalId).toBeTruthy();
    const effects = await sim.effects('youtube');
    expect(effects.filter((e) => e.type === 'show.created' && e.externalId === m.remote!.externalId)).toHaveLength(1);
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null });
  }
}, 90_000);
