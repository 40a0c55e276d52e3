/**
 * A sync run's report (`mirror.updated`) while a target DELETE's "deleting" mark is on the target.
 * Before, the check before the report (SyncService.tell) was an HEXISTS of its own: it saw the target
 * there and the partner was told about a mirror of a target about to be deleted. It is now the one
 * reader every check of a run uses (ShowRepository.checkTarget, the save scripts' rule): the report is
 * held, and not lost: the run comes back (a delayed job) and tells once the DELETE was refused or its
 * mark expired; deleted by then, nothing is told. A run that ends with an error keeps its own wait
 * when it has one (no platform call sooner), else comes back once the mark is over.
 *
 * The mark is written at the moment of the report (inside OutboundService.emitMade, which the report
 * hook calls). Real Redis (one, or the cluster under SYNDICAST_TEST_REDIS=cluster), the YouTube
 * simulator over HTTP; the test plays the runs as BullMQ would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import type { DeletingMark } from '../../src/store/partner.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
const P = 'held';
/** What was told (mirror.updated payloads made), in order. */
const told: { targetId: string; state: string }[] = [];
/** Runs once, at the next report (before anything is checked or stored). */
let atReport: (() => Promise<void>) | undefined;

beforeAll(async () => {
  sim = await startSim();
  // SYNC_MAX_RETRIES=1: a mirror fails at its second failed attempt.
  svc = await startService({ env: { SYNC_MAX_RETRIES: '1' } }); // no workers: the test plays the sync runs
  secret = await createPartner(svc, P);
  expect((await svc.api(`/v1/partners/${P}/endpoints`, { json: { url: 'http://127.0.0.1:9/hook', events: ['mirror.updated'] } })).status).toBe(201);
  const outbound = svc.rt.outbound;
  const emitMade = outbound.emitMade.bind(outbound);
  outbound.emitMade = (async (...[partnerId, type, make, before]: Parameters<typeof emitMade>) => {
    const hook = atReport;
    atReport = undefined;
    await hook?.();
    return emitMade(
      partnerId,
      type,
      () => {
        const made = make();
        told.push(made.data as { targetId: string; state: string });
        return made;
      },
      before,
    );
  }) as typeof outbound.emitMade;
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

async function addTarget(id: string, partnerId = P): Promise<void> {
  const r = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, { json: { id, platform: 'youtube', name: id, credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
}

async function schedule(showId: string, partnerId = P, partnerSecret = secret): Promise<void> {
  expect((await sendEvent(svc, partnerId, partnerSecret, showEvent('show.scheduled', sampleShow(showId, { title: `title ${showId}` }), '2026-11-24T17:00:00Z'))).status).toBe(202);
}

const sync = (showId: string, targetId: string, token: string): Promise<SyncOutcome> => svc.rt.syncService.sync({ partnerId: P, showId, targetId }, { token });
const toldOf = (targetId: string): string[] => told.filter((d) => d.targetId === targetId).map((d) => d.state);

/** Marks the target at the next report, as a DELETE would; the mark, once written. */
function markAtReport(targetId: string, ttlMs: number): { mark: DeletingMark | null } {
  const got: { mark: DeletingMark | null } = { mark: null };
  atReport = async () => {
    got.mark = await svc.rt.partners.markDeleting(P, targetId, `del_${targetId}`, ttlMs);
  };
  return got;
}

test('a report due while a DELETE marks the target is held, and made by the next run once the DELETE was refused', async () => {
  await addTarget('yt1');
  await schedule('s1');
  const marked = markAtReport('yt1', 30_000);
  expect(await sync('s1', 'yt1', 'r1-0')).toMatchObject({ kind: 'delay', reason: 'target being deleted' });
  expect(marked.mark).not.toBeNull();
  // Before: ['ready'], told while the DELETE was checking the target's mirrors.
  expect(toldOf('yt1')).toEqual([]);
  // The DELETE is refused (its show is on the platform): the mark comes off, the next run tells.
  expect(await svc.rt.partners.deletingDone(P, 'yt1', marked.mark!, 'unmark')).toBe('done');
  expect(await sync('s1', 'yt1', 'r1-1')).toMatchObject({ kind: 'done', state: 'ready' });
  expect(toldOf('yt1')).toEqual(['ready']);
  expect((await svc.rt.shows.getMirror(P, 's1', 'yt1'))?.notified).toBeDefined();
}, 60_000);

test('a report held by the mark of a DELETE that then died goes out once the mark expired', async () => {
  await addTarget('yt2');
  await schedule('s2');
  // A mark of 900 ms (it was 400 ms: the run must meet it after its report, before it expires, on a loaded machine too).
  markAtReport('yt2', 900);
  expect(await sync('s2', 'yt2', 'r2-0')).toMatchObject({ kind: 'delay', reason: 'target being deleted' });
  expect(toldOf('yt2')).toEqual([]);
  await sleep(1_000);
  expect(await sync('s2', 'yt2', 'r2-1')).toMatchObject({ kind: 'done', state: 'ready' });
  expect(toldOf('yt2')).toEqual(['ready']);
}, 60_000);

test('a run that ends with an error: its held report keeps the run\'s own wait, or (a failed mirror) comes back once the mark is over, and is made then', async () => {
  await addTarget('yt3');
  await schedule('s3');
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    // A retryable failure: the report (provisioning, retrying) is held, the run's own backoff kept.
    let marked = markAtReport('yt3', 30_000);
    const first = await sync('s3', 'yt3', 'r3');
    expect(first.kind).toBe('delay');
    expect(first).not.toMatchObject({ reason: 'target being deleted' });
    expect(toldOf('yt3')).toEqual([]);
    expect(await svc.rt.partners.deletingDone(P, 'yt3', marked.mark!, 'unmark')).toBe('done');
    // The second failure fails the mirror (SYNC_MAX_RETRIES=1): held again, and back once the mark is over.
    marked = markAtReport('yt3', 30_000);
    expect(await sync('s3', 'yt3', 'r3')).toMatchObject({ kind: 'delay', reason: 'target being deleted' });
    expect((await svc.rt.shows.getMirror(P, 's3', 'yt3'))?.state).toBe('failed');
    // Before: ['provisioning', 'failed'], told while the DELETEs were checking.
    expect(toldOf('yt3')).toEqual([]);
    expect(await svc.rt.partners.deletingDone(P, 'yt3', marked.mark!, 'unmark')).toBe('done');
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  // The run that comes back makes no platform call for a failed mirror, and tells.
  expect(await sync('s3', 'yt3', 'r3-after')).toMatchObject({ kind: 'done', state: 'failed' });
  expect(toldOf('yt3')).toEqual(['failed']);
}, 60_000);

test('a report to nobody for a target deleted in that moment leaves no timeline entry (the save that records it is refused before the entry is appended)', async () => {
  const Q = 'held-quiet'; // no endpoint: nobody is told, so the target is checked only by the save
  const qSecret = await createPartner(svc, Q);
  await addTarget('q-yt', Q);
  await schedule('q1', Q, qSecret);
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  // Deleted as the run reports its error (the report hook runs, nobody subscribes).
  atReport = async () => {
    expect(await svc.rt.partners.deleteTarget(Q, 'q-yt')).toBe(true);
  };
  try {
    expect(await svc.rt.syncService.sync({ partnerId: Q, showId: 'q1', targetId: 'q-yt' }, { token: 'q-0' })).toEqual({ kind: 'done', state: 'none' });
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  expect(atReport).toBeUndefined(); // the target was deleted at the report
  // Before: a `mirror` entry (provisioning, retrying) for the target deleted in that moment.
  expect((await svc.rt.activity.list(Q, 'q1', 50)).filter((e) => e.kind === 'mirror')).toEqual([]);
}, 60_000);
