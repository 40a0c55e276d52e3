/**
 * A target DELETE's "deleting" mark is dated by Redis's clock (PartnerRepository.markDeleting), and a
 * sync run's check of it outside a save script (ShowRepository.checkTarget: a Cluster's save guard, the
 * re-read before a Cluster create, the check before a run tells the partner) compares it with Redis's
 * clock too, as the single-Redis save scripts do. Before, it compared with the worker's own clock: a
 * worker 30 s fast saw a fresh mark as expired (and could create a show the DELETE then orphaned), a
 * slow one saw an expired mark as fresh (and held its syncs back). The worker's clock is moved here by
 * faking Date alone (jest's fake timers; Redis and every timer keep the real clock). Real Redis (one,
 * or the cluster under SYNDICAST_TEST_REDIS=cluster).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { TargetDeletingError } from '../../src/store/show.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, startService, type TestService } from '../helpers/service.js';

const P = 'dclock';
const T = 'dclock-yt';
let svc: TestService;

beforeAll(async () => {
  svc = await startService(); // no workers: the test makes the checks
  await createPartner(svc, P);
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, {
    json: { id: T, platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
}, 60_000);
afterEach(() => {
  jest.useRealTimers();
});
afterAll(async () => {
  await svc?.close();
});

/** The worker's clock `shiftMs` off (Date only: timers, Redis and sockets keep the real clock). */
function clockOff(shiftMs: number): void {
  jest.useFakeTimers({
    now: Date.now() + shiftMs,
    doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
  });
}

test('a worker whose clock is a minute fast still sees a fresh mark, and waits about as long as it has left', async () => {
  const mark = await svc.rt.partners.markDeleting(P, T, 'del_fast', 5_000);
  expect(mark).not.toBeNull();
  clockOff(60_000);
  const err = await svc.rt.shows.checkTarget(P, T).then(
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
  await expect(svc.rt.shows.checkTarget(P, T)).resolves.toBeUndefined();
});

test('a worker whose clock is a minute slow sees an expired mark as expired', async () => {
  expect(await svc.rt.partners.markDeleting(P, T, 'del_slow', 300)).not.toBeNull();
  await sleep(600); // expired by Redis's clock (the mark stays on the record: a DELETE that crashed)
  clockOff(-60_000);
  await expect(svc.rt.shows.checkTarget(P, T)).resolves.toBeUndefined();
});

test('a deleted target is gone, whatever the clock', async () => {
  clockOff(60_000);
  await expect(svc.rt.shows.checkTarget(P, 'dclock-none')).rejects.toThrow(`target dclock-none was deleted during the sync`);
  await expect(svc.rt.shows.checkTarget(P, 'dclock-none')).rejects.not.toBeInstanceOf(TargetDeletingError);
});
