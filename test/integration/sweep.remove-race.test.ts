/**
 * The sweep drops a show from the active set once every mirror of it is done, and an operator's resync
 * or link (POST …/resync, PUT …/mirrors/{target}) puts the show back (markActive) before it changes the
 * mirror. Before, the sweep's removal was a plain ZREM: a sweep that had read the failed mirror just
 * before a resync dropped the show right after the resync put it back, and a target DELETE (which walks
 * the set) no longer saw the mirror the resync made pending (an orphaned platform show). Now the removal
 * holds only while the show's score is the one the sweep read (every mark changes it), and a resync or
 * link marks the show again after its change too (for a sweep that read the show after the first mark
 * but the mirror before the change).
 *
 * The interleavings are forced by wrapping the ShowRepository methods the sweep and the routes call.
 * Real Redis (one, or the cluster under SYNDICAST_TEST_REDIS=cluster); no workers, no platform calls.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { createLogger } from '../../src/lib/logger.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import type { ShowRepository } from '../../src/store/show.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const P = 'swr';
let svc: TestService;
let secret: string;
let shows: ShowRepository;

beforeAll(async () => {
  svc = await startService(); // no workers: nothing syncs behind the test's back
  shows = svc.rt.shows;
  secret = await createPartner(svc, P);
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, {
    json: { id: 'yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

const sweeper = (): SweepService => new SweepService(shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'));
const active = async (showId: string): Promise<boolean> => (await shows.activeShows()).some(([p, s]) => p === P && s === showId);

/** A show that ended, in the active set, with a mirror that failed at the show's current version: done, for the sweep. */
async function endedWithFailedMirror(showId: string): Promise<void> {
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', sampleShow(showId, { state: 'ended' }), '2026-11-24T19:00:00Z'))).status).toBe(202);
  const version = await shows.version(P, showId);
  await shows.updateMirror(P, showId, 'yt', () => newMirror('yt', 'youtube'), (m) => {
    m.state = 'failed';
    m.lastError = 'youtube: gave up';
    m.syncedVersion = version;
    return true;
  });
  expect(await active(showId)).toBe(true);
}

/** Runs `hook` once, right after the sweep's read of the show's mirrors (before it decides and removes). */
function afterSweepRead(hook: () => Promise<void>): void {
  const orig = shows.getMirrors.bind(shows);
  shows.getMirrors = async (...args: Parameters<ShowRepository['getMirrors']>) => {
    const read = await orig(...args);
    shows.getMirrors = orig;
    await hook();
    return read;
  };
}

test('a resync between the sweep\'s read of a failed mirror and its removal keeps the show active', async () => {
  await endedWithFailedMirror('r1');
  afterSweepRead(async () => {
    expect((await svc.api(`/v1/partners/${P}/shows/r1/mirrors/yt/resync`, { method: 'POST' })).status).toBe(202);
  });
  const r = await sweeper().sweep();
  expect(r.finished).toBe(0);
  expect((await shows.getMirror(P, 'r1', 'yt'))?.state).toBe('pending');
  // Still in the set: the next sweep sees the retried mirror (and a DELETE of the target sees it too).
  expect(await active('r1')).toBe(true);
  expect((await sweeper().sweep()).enqueued).toBeGreaterThanOrEqual(1);
  expect(await active('r1')).toBe(true);
}, 60_000);

test('a bare markActive between the sweep\'s read and its removal keeps the show; with none the sweep drops it', async () => {
  await endedWithFailedMirror('r2');
  afterSweepRead(() => shows.markActive(P, 'r2'));
  expect((await sweeper().sweep()).finished).toBe(0);
  expect(await active('r2')).toBe(true);
  // Nothing marked it since: the next sweep drops it (the mirror is still failed and current).
  expect((await sweeper().sweep()).finished).toBe(1);
  expect(await active('r2')).toBe(false);
}, 60_000);

/**
 * Runs `request` (a route that marks the show, changes its mirror, then marks it again) and a sweep so
 * that the route's first markActive is done, then the sweep walks the set and reads the (still failed)
 * mirror, and the route changes the mirror after that read, before the sweep removes the show.
 */
async function changeAfterSweepRead(request: () => Promise<Response>): Promise<{ status: number; finished: number }> {
  let releaseChange!: () => void;
  const sweepRead = new Promise<void>((res) => (releaseChange = res));
  let changed!: () => void;
  const mirrorChanged = new Promise<void>((res) => (changed = res));
  let firstMark!: () => void;
  const marked = new Promise<void>((res) => (firstMark = res));
  const origMark = shows.markActive.bind(shows);
  shows.markActive = async (...args: Parameters<ShowRepository['markActive']>) => {
    await origMark(...args);
    shows.markActive = origMark;
    firstMark();
  };
  const origUpdate = shows.updateMirror.bind(shows);
  shows.updateMirror = async (...args: Parameters<ShowRepository['updateMirror']>) => {
    shows.updateMirror = origUpdate;
    await sweepRead;
    const m = await origUpdate(...args);
    changed();
    return m;
  };
  const answer = request();
  await marked;
  afterSweepRead(async () => {
    releaseChange();
    await mirrorChanged;
  });
  const r = await sweeper().sweep();
  return { status: (await answer).status, finished: r.finished };
}

test('a link whose first mark came before the sweep\'s walk and whose change came after its read leaves the show active', async () => {
  await endedWithFailedMirror('r3');
  const { status, finished } = await changeAfterSweepRead(() => svc.api(`/v1/partners/${P}/shows/r3/mirrors/yt`, { method: 'PUT', json: { externalId: 'yt-by-handA' } }));
  expect(status).toBe(200);
  expect(finished).toBeLessThanOrEqual(1); // removed, then marked again by the link; or kept
  expect((await shows.getMirror(P, 'r3', 'yt'))?.remote?.externalId).toBe('yt-by-handA');
  expect(await active('r3')).toBe(true);
}, 60_000);

test('a resync whose first mark came before the sweep\'s walk and whose retry came after its read leaves the show active', async () => {
  await endedWithFailedMirror('r6');
  const { status, finished } = await changeAfterSweepRead(() => svc.api(`/v1/partners/${P}/shows/r6/mirrors/yt/resync`, { method: 'POST' }));
  expect(status).toBe(202);
  expect(finished).toBeLessThanOrEqual(1); // removed, then marked again by the resync; or kept
  expect((await shows.getMirror(P, 'r6', 'yt'))?.state).toBe('pending');
  expect(await active('r6')).toBe(true);
}, 60_000);

test('every mark changes the show\'s score, also two in the same millisecond', async () => {
  const score = async (): Promise<string | null> => svc.rt.redis.zscore(svc.rt.keys.activeShows(), JSON.stringify([P, 'r4']));
  await Promise.all([shows.markActive(P, 'r4'), shows.markActive(P, 'r4')]);
  const a = await score();
  await shows.markActive(P, 'r4');
  const b = await score();
  expect(Number(b)).toBeGreaterThan(Number(a));
  // A removal with a score read before the last mark leaves the show; with the current one it removes it.
  expect(await shows.markInactive(P, 'r4', a!)).toBe(false);
  expect(await shows.markInactive(P, 'r4', b!)).toBe(true);
  expect(await active('r4')).toBe(false);
});

test('marks in one transaction (the same millisecond of Redis\'s clock) each raise the score', async () => {
  // The two marks above may fall in different milliseconds; twenty in one MULTI fall in one (or few):
  // a score of Redis's clock alone would repeat, and a sweep that read it would remove the show marked after.
  const key = svc.rt.keys.activeShows();
  const member = JSON.stringify([P, 'r5']);
  const tx = svc.rt.redis.multi();
  for (let i = 0; i < 20; i++) tx.scMarkActive(key, member).zscore(key, member);
  const res = (await tx.exec()) ?? [];
  expect(res).toHaveLength(40);
  const scores = res.filter((_, i) => i % 2 === 1).map(([err, s]) => {
    expect(err).toBeNull();
    return Number(s);
  });
  for (let i = 1; i < scores.length; i++) expect(scores[i]).toBeGreaterThan(scores[i - 1]!);
  expect(await shows.markInactive(P, 'r5', String(scores[scores.length - 1]))).toBe(true);
});
