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
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { TargetDeletingError } from '../../src/store/show.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

const P = 'dclock';
const T = 'dclock-yt';
let svc: TestService;
let sim: TestSim;
let secret: string;
/** T's incarnation (a sync run checks its target with the one its mirror is stamped with). */
let inc: string | undefined;

beforeAll(async () => {
  sim = await startSim();
  svc = await startService(); // no workers: the test makes the checks and plays the sync runs
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
  await svc?.close();
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
