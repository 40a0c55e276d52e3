/**
 * The marks the store keeps and when they hold: a show's mark in the active set against the sweep's
 * removal, and a target DELETE's "deleting" mark against the clocks of the processes that read it. Once
 * two files (sweep.remove-race, targets.deleting-clock), each of which started its own redis-server and
 * service (CI time: docs/testing.md). One service for both, on startService's defaults, with no
 * workers; each former file is a `describe` of its own, with its own partner (swr, dclock) and targets
 * (yt; dclock-yt, dclock-s1, dclock-s2). The sweep's cases come first: a sweep walks every active show
 * and they count the shows it finished, so theirs are the only shows then. Real redis-server (one, or
 * the cluster under SYNDICAST_TEST_REDIS=cluster).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { newMirror } from '../../src/domain/mirror.js';
import { createLogger } from '../../src/lib/logger.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { TargetDeletingError, type ShowRepository } from '../../src/store/show.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
serviceForFile((started) => (svc = started), {}, 60_000); // no workers: nothing syncs behind the tests' back; they play the sync runs

describe('sweep.remove-race', () => {
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
  const P = 'swr';
  let secret: string;
  let shows: ShowRepository;

  beforeAll(async () => {
    shows = svc.rt.shows;
    secret = await createPartner(svc, P);
    const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, {
      json: { id: 'yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
  }, 60_000);

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
});

describe('targets.deleting-clock', () => {
  /**
   * A target DELETE's "deleting" mark is dated by Redis's clock (PartnerRepository.markDeleting), and a
   * sync run's check of it outside a save script (ShowRepository.checkTarget: a Cluster's save guard, the
   * re-read before a Cluster create, the check before a run tells the partner) compares it with Redis's
   * clock too, as the single-Redis save scripts do. Before, it compared with the worker's own clock: a
   * worker 30 s fast saw a fresh mark as expired (and could create a show the DELETE then orphaned), a
   * slow one saw an expired mark as fresh (and held its syncs back). The worker's clock is moved here by
   * faking Date alone (jest's fake timers; Redis and every timer keep the real clock). Real Redis (one,
   * or the cluster under SYNDICAST_TEST_REDIS=cluster).
   *
   * The same holds for a sync run's first read of its target (SyncService: it asks checkTarget whenever
   * the record carries a mark) and for the clean-up of an expired mark by the target's next change
   * (PartnerRepository.updateTarget: decided in its write's script). Both compared with the worker's
   * clock before: a worker a minute slow waited on a mark that had expired a minute ago (and a PATCH
   * kept it), one a minute fast ran past a fresh mark (and a PATCH took the DELETE's mark off). The sync
   * runs go to the YouTube simulator over HTTP.
   */
  const P = 'dclock';
  const T = 'dclock-yt';
  let sim: TestSim;
  let secret: string;
  /** T's incarnation (a sync run checks its target with the one its mirror is stamped with). */
  let inc: string | undefined;

  beforeAll(async () => {
    sim = await startSim();
    secret = await createPartner(svc, P);
    const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, {
      json: { id: T, platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
    inc = (await svc.rt.partners.getTarget(P, T))!.incarnation;
  }, 60_000);
  afterEach(() => {
    jest.useRealTimers();
  });
  afterAll(async () => {
    await sim?.close();
  });

  /** A YouTube target on the simulator and a scheduled show for it (a sync run's first platform call is its create). */
  async function targetWithShow(targetId: string, showId: string): Promise<void> {
    const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, {
      json: { id: targetId, platform: 'youtube', name: targetId, credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
    });
    expect(r.status).toBe(201);
    expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(showId, { title: `title ${showId}` }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  }

  /**
   * The worker's clock `shiftMs` off (Date only: timers, Redis and sockets keep the real clock).
   * `running`: the shifted clock goes on ticking (a whole sync run measures time), else it stands.
   */
  function clockOff(shiftMs: number, running = false): void {
    jest.useFakeTimers({
      now: Date.now() + shiftMs,
      advanceTimers: running,
      doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
    });
  }

  test('a worker whose clock is a minute fast still sees a fresh mark, and waits about as long as it has left', async () => {
    const mark = await svc.rt.partners.markDeleting(P, T, 'del_fast', 5_000);
    expect(mark).not.toBeNull();
    clockOff(60_000);
    const err = await svc.rt.shows.checkTarget(P, T, inc).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TargetDeletingError);
    // The wait (SyncService) measures the mark's until against this clock: the time left, not a minute past.
    const left = (err as TargetDeletingError).untilMs - Date.now();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(5_000);
    jest.useRealTimers();
    expect(await svc.rt.partners.deletingDone(P, T, mark!, 'unmark')).toBe('done');
    await expect(svc.rt.shows.checkTarget(P, T, inc)).resolves.toBeUndefined();
  });

  test('a worker whose clock is a minute slow sees an expired mark as expired', async () => {
    expect(await svc.rt.partners.markDeleting(P, T, 'del_slow', 300)).not.toBeNull();
    await sleep(600); // expired by Redis's clock (the mark stays on the record: a DELETE that crashed)
    clockOff(-60_000);
    await expect(svc.rt.shows.checkTarget(P, T, inc)).resolves.toBeUndefined();
  });

  test('a deleted target is gone, whatever the clock', async () => {
    clockOff(60_000);
    await expect(svc.rt.shows.checkTarget(P, 'dclock-none', undefined)).rejects.toThrow(`target dclock-none was deleted during the sync`);
    await expect(svc.rt.shows.checkTarget(P, 'dclock-none', undefined)).rejects.not.toBeInstanceOf(TargetDeletingError);
  });

  test('a sync run on a worker a minute slow goes on past a mark that expired by Redis\'s clock', async () => {
    await targetWithShow('dclock-s1', 'dc-s1');
    // A DELETE that died after marking: the mark expired a moment ago (Redis's clock) and stays on the record.
    expect(await svc.rt.partners.markDeleting(P, 'dclock-s1', 'del_crashed', 300)).not.toBeNull();
    await sleep(600);
    clockOff(-60_000, true);
    // Before, the run's first read compared the mark with this clock: it waited ("target being deleted")
    // for the minute its clock is behind.
    const out = await svc.rt.syncService.sync({ partnerId: P, showId: 'dc-s1', targetId: 'dclock-s1' }, { token: 'dc-s1-0' });
    expect(out).toMatchObject({ kind: 'done', state: 'ready' });
    expect((await svc.rt.shows.getMirror(P, 'dc-s1', 'dclock-s1'))?.state).toBe('ready');
  }, 60_000);

  test('a sync run on a worker a minute fast sees a fresh mark at its first read and waits about as long as it has left', async () => {
    await targetWithShow('dclock-s2', 'dc-s2');
    // 900 ms: shorter than DELETING_WAIT_MS (1 s), long enough for the run's first read on a loaded machine (500 ms was tight).
    expect(await svc.rt.partners.markDeleting(P, 'dclock-s2', 'del_checking', 900)).not.toBeNull();
    clockOff(60_000, true);
    const out = await svc.rt.syncService.sync({ partnerId: P, showId: 'dc-s2', targetId: 'dclock-s2' }, { token: 'dc-s2-0' });
    expect(out).toMatchObject({ kind: 'delay', reason: 'target being deleted' });
    // Seen at the first read, with when it ends: before, the run took the mark for expired, went on to
    // its first save (refused by the save's guard, which does not say until when) and waited a whole second.
    expect((out as { delayMs: number }).delayMs).toBeLessThanOrEqual(900);
    expect(await svc.rt.shows.getMirror(P, 'dc-s2', 'dclock-s2')).toBeNull();
  }, 60_000);

  test('a target change on a process a minute slow drops a mark that expired by Redis\'s clock', async () => {
    expect(await svc.rt.partners.markDeleting(P, T, 'del_crashed2', 300)).not.toBeNull();
    await sleep(600);
    clockOff(-60_000);
    const changed = await svc.rt.partners.updateTarget(P, T, (t) => ({ ...t, name: 'renamed slow' }));
    expect(changed?.after.name).toBe('renamed slow');
    expect(changed?.after.deleting).toBeUndefined();
    jest.useRealTimers();
    const stored = await svc.rt.partners.getTarget(P, T);
    expect(stored?.name).toBe('renamed slow');
    expect(stored?.deleting).toBeUndefined();
  });

  test('a target change on a process a minute fast keeps the mark of a DELETE still checking', async () => {
    const mark = await svc.rt.partners.markDeleting(P, T, 'del_live', 5_000);
    expect(mark).not.toBeNull();
    clockOff(60_000);
    const changed = await svc.rt.partners.updateTarget(P, T, (t) => ({ ...t, name: 'renamed fast' }));
    expect(changed?.after.deleting).toBeDefined();
    jest.useRealTimers();
    expect((await svc.rt.partners.getTarget(P, T))?.deleting).toBeDefined();
    // The DELETE still finds its mark and can finish.
    expect(await svc.rt.partners.deletingDone(P, T, mark!, 'unmark')).toBe('done');
  });
});
