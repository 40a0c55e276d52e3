/**
 * A DELETE without ?force refuses (409) while a show of the target is on the platform. Before, it checked
 * the target's mirrors and then deleted the target: a sync run in between could save `provisioning`
 * and create the show on the platform, which was then left there with no credentials to end it, though
 * the operator had not forced anything. Now the DELETE marks the target "being deleted" (in its
 * record) before it checks again: a run that sees the mark (first read or next save) makes no platform
 * call and waits, and a show a run made before the mark is seen by that check (409, mark taken off).
 *
 * The interleaving is forced by running a sync run (as BullMQ would) at the end of the DELETE's walk over
 * the active shows (ShowRepository.activeShowPages of the service's runtime, which the route uses).
 * Real Redis (one, or the cluster under SYNDICAST_TEST_REDIS=cluster), the YouTube simulator over HTTP.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { newMirror } from '../../src/domain/mirror.js';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { TargetDeletingError, TargetGoneError } from '../../src/store/show.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
const P = 'delr';

beforeAll(async () => {
  sim = await startSim();
  svc = await startService(); // no workers: the test plays the sync runs
  secret = await createPartner(svc, P);
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

async function addTarget(id: string): Promise<void> {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id, platform: 'youtube', name: id, credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
}

async function schedule(showId: string): Promise<void> {
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(showId, { title: `title ${showId}` }), '2026-11-24T17:00:00Z'))).status).toBe(202);
}

/** Runs `hook` at the end of each walk of the active shows (the DELETE's check of the target's mirrors). */
function afterEachWalk(hook: () => Promise<void>): () => void {
  const shows = svc.rt.shows;
  const orig = shows.activeShowPages.bind(shows);
  shows.activeShowPages = async function* (pageSize: number) {
    yield* orig(pageSize);
    await hook();
  };
  return () => {
    shows.activeShowPages = orig;
  };
}

const created = async (title: string): Promise<number> => (await sim.effects('youtube')).filter((e) => e.type === 'show.created' && e.title === title).length;

test('a sync run that creates the show between the check and the delete: the DELETE is refused, nothing is left orphaned', async () => {
  await addTarget('yt1');
  await schedule('s1');
  const outcomes: SyncOutcome[] = [];
  const restore = afterEachWalk(async () => {
    outcomes.push(await svc.rt.syncService.sync({ partnerId: P, showId: 's1', targetId: 'yt1' }, { token: `r1-${outcomes.length}` }));
  });
  let status: number;
  let body: { detail?: string };
  try {
    const r = await svc.api(`/v1/partners/${P}/targets/yt1`, { method: 'DELETE' });
    status = r.status;
    body = (await r.json().catch(() => ({}))) as { detail?: string };
  } finally {
    restore();
  }
  // The run in the window made the platform show (the first walk saw no mirror of it).
  expect(outcomes[0]).toMatchObject({ kind: 'done', state: 'ready' });
  expect(await created('title s1')).toBe(1);
  // Before: 204, and that YouTube broadcast was left there with no target to end it.
  expect(status).toBe(409);
  expect(body.detail).toContain('s1');
  const target = await svc.rt.partners.getTarget(P, 'yt1');
  expect(target).not.toBeNull();
  expect(target?.deleting).toBeUndefined(); // the mark was taken off: the target's runs go on
  const mirror = await svc.rt.shows.getMirror(P, 's1', 'yt1');
  expect(mirror?.state).toBe('ready');
  expect(mirror?.remote?.externalId).toBeTruthy();
  expect(await svc.rt.syncService.sync({ partnerId: P, showId: 's1', targetId: 'yt1' }, { token: 'r1-after' })).toMatchObject({ kind: 'done' });
}, 60_000);

test('a sync run that starts while the DELETE holds its mark makes no platform call: the target is deleted, nothing on the platform', async () => {
  await addTarget('yt2');
  await schedule('s2');
  const outcomes: SyncOutcome[] = [];
  const restore = afterEachWalk(async () => {
    // Only once the target carries the DELETE's mark (after its first check).
    if (!(await svc.rt.partners.getTarget(P, 'yt2'))?.deleting) return;
    outcomes.push(await svc.rt.syncService.sync({ partnerId: P, showId: 's2', targetId: 'yt2' }, { token: `r2-${outcomes.length}` }));
  });
  try {
    expect((await svc.api(`/v1/partners/${P}/targets/yt2`, { method: 'DELETE' })).status).toBe(204);
  } finally {
    restore();
  }
  expect(outcomes).toEqual([expect.objectContaining({ kind: 'delay', reason: 'target being deleted' })]);
  expect(await created('title s2')).toBe(0);
  expect((await svc.rt.shows.getMirror(P, 's2', 'yt2'))?.state ?? 'none').not.toBe('provisioning');
  expect(await svc.rt.partners.getTarget(P, 'yt2')).toBeNull();
  // The run that comes back finds the target gone.
  expect(await svc.rt.syncService.sync({ partnerId: P, showId: 's2', targetId: 'yt2' }, { token: 'r2-after' })).toEqual({ kind: 'done', state: 'none' });
}, 60_000);

test('a run that read the target before the mark: its next save is refused while the mark holds, and allowed once it is off', async () => {
  await addTarget('yt3');
  await schedule('s3');
  const got = await svc.rt.intents.acquireAndRead(P, 's3', 'yt3', 'r3', 30_000);
  if (!('lease' in got)) throw new Error('lease not taken');
  const lease = got.lease;
  lease.target = svc.rt.partners.targetField(P, 'yt3');
  const mark = await svc.rt.partners.markDeleting(P, 'yt3', 'del_test3', 30_000);
  expect(mark).not.toBeNull();
  const m = newMirror('yt3', 'youtube', (await svc.rt.partners.getTarget(P, 'yt3'))!.incarnation);
  m.state = 'provisioning';
  await expect(svc.rt.shows.saveMirror(P, 's3', m, lease)).rejects.toBeInstanceOf(TargetDeletingError);
  await expect(svc.rt.shows.saveMirrorFinal(P, 's3', m, lease, 1)).rejects.toBeInstanceOf(TargetDeletingError);
  expect(await svc.rt.shows.getMirror(P, 's3', 'yt3')).toBeNull();
  // The DELETE refused: its mark is taken off, and the save goes through.
  expect(await svc.rt.partners.deletingDone(P, 'yt3', mark!, 'unmark')).toBe('done');
  await svc.rt.shows.saveMirror(P, 's3', m, lease);
  expect((await svc.rt.shows.getMirror(P, 's3', 'yt3'))?.state).toBe('provisioning');
  await svc.rt.intents.release(lease);
}, 60_000);

test('a mark a crashed DELETE left: syncs go on once it expired and the next PATCH drops it', async () => {
  await addTarget('yt4');
  await schedule('s4');
  // A DELETE that died after marking (a short mark, to see it expire: 1 s, so that the first run reads
  // it before it expires on a loaded machine; it had 300 ms).
  await svc.rt.partners.markDeleting(P, 'yt4', 'del_crashed', 1_000);
  const markedAt = Date.now(); // the mark expires by now + 1 s (it was written before this)
  expect(await svc.rt.syncService.sync({ partnerId: P, showId: 's4', targetId: 'yt4' }, { token: 'r4-0' })).toMatchObject({ kind: 'delay', reason: 'target being deleted' });
  await sleep(Math.max(0, markedAt + 1_200 - Date.now()));
  expect(await svc.rt.syncService.sync({ partnerId: P, showId: 's4', targetId: 'yt4' }, { token: 'r4-1' })).toMatchObject({ kind: 'done', state: 'ready' });
  expect((await svc.rt.partners.getTarget(P, 'yt4'))?.deleting).toBeDefined();
  const patched = await svc.api(`/v1/partners/${P}/targets/yt4?verify=false`, { method: 'PATCH', json: { name: 'renamed' } });
  expect(patched.status).toBe(200);
  expect(JSON.stringify(await patched.json())).not.toContain('deleting');
  expect((await svc.rt.partners.getTarget(P, 'yt4'))?.deleting).toBeUndefined();
  // Its show is on the platform: refused as always (no mark needed for that).
  expect((await svc.api(`/v1/partners/${P}/targets/yt4`, { method: 'DELETE' })).status).toBe(409);
  expect((await svc.rt.partners.getTarget(P, 'yt4'))?.deleting).toBeUndefined();
}, 60_000);

test('a run that finds the mark at its first read waits until the mark expires, not a fixed second', async () => {
  await addTarget('yt6');
  await schedule('s6');
  // A mark shorter than DELETING_WAIT_MS (1 s), but not so short that it expires before the run's first
  // read on a loaded machine (300 ms did; the run then went on and made the show).
  await svc.rt.partners.markDeleting(P, 'yt6', 'del_short', 900);
  const out = await svc.rt.syncService.sync({ partnerId: P, showId: 's6', targetId: 'yt6' }, { token: 'r6-0' });
  expect(out).toMatchObject({ kind: 'delay', reason: 'target being deleted' });
  // The first read knows when the mark ends. A run that went past it to its first save (refused by the
  // save's target guard, which does not say until when) waited a whole DELETING_WAIT_MS (1 s).
  expect((out as { delayMs: number }).delayMs).toBeLessThanOrEqual(900);
  expect(await svc.rt.shows.getMirror(P, 's6', 'yt6')).toBeNull();
  expect(await created('title s6')).toBe(0);
}, 60_000);

test('no show of the target on the platform: the DELETE answers 204 as always (also over a live mark a crashed DELETE left), and its mark goes with the target', async () => {
  await addTarget('yt5');
  await svc.rt.partners.markDeleting(P, 'yt5', 'del_crashed2', 30_000);
  const listed = await svc.api(`/v1/partners/${P}/targets`);
  expect(JSON.stringify(await listed.json())).not.toContain('deleting');
  expect((await svc.api(`/v1/partners/${P}/targets/yt5`, { method: 'DELETE' })).status).toBe(204);
  expect(await svc.rt.partners.getTarget(P, 'yt5')).toBeNull();
  expect(await svc.rt.redis.hget(...(Object.values(svc.rt.partners.targetField(P, 'yt5')) as [string, string]))).toBeNull();
  // A target created again with the same id starts without a mark.
  await addTarget('yt5');
  expect((await svc.rt.partners.getTarget(P, 'yt5'))?.deleting).toBeUndefined();
}, 60_000);

/**
 * An operator's link (PUT …/mirrors/{target}) or retry (POST …/resync) while the DELETE holds its mark,
 * after its check of the target's mirrors (run at the end of that walk, as afterEachWalk does for a
 * sync run). Before, neither had the target guard: the link or retry was saved (200/202), the DELETE
 * deleted the target (204), and a mirror holding a show on the platform — the DELETE's own reason to
 * refuse — was left linked (or retried) for a target that no longer exists.
 */
test("an operator's link or retry while the DELETE holds its mark is refused (409): no mirror of a show on the platform is left for the deleted target", async () => {
  await addTarget('yt7');
  await schedule('s7');
  await addTarget('yt8');
  await schedule('s8');
  const { externalId } = (await sim.control('POST', '/_sim/youtube/shows', { title: 'by hand' })) as { externalId: string };
  // s8's mirror failed on a show it had linked: not on the platform by the DELETE's rule until retried.
  const failed = newMirror('yt8', 'youtube', (await svc.rt.partners.getTarget(P, 'yt8'))!.incarnation);
  failed.state = 'failed';
  failed.remote = { externalId, url: undefined, ingest: undefined, data: {} };
  await svc.rt.shows.saveMirror(P, 's8', failed);

  const answers: number[] = [];
  for (const [targetId, act] of [
    ['yt7', () => svc.api(`/v1/partners/${P}/shows/s7/mirrors/yt7`, { method: 'PUT', json: { externalId } })],
    ['yt8', () => svc.api(`/v1/partners/${P}/shows/s8/mirrors/yt8/resync`, { method: 'POST' })],
  ] as const) {
    const restore = afterEachWalk(async () => {
      if ((await svc.rt.partners.getTarget(P, targetId))?.deleting && answers.length < (targetId === 'yt7' ? 1 : 2)) answers.push((await act()).status);
    });
    try {
      expect((await svc.api(`/v1/partners/${P}/targets/${targetId}`, { method: 'DELETE' })).status).toBe(204);
    } finally {
      restore();
    }
    expect(await svc.rt.partners.getTarget(P, targetId)).toBeNull();
  }
  // Before: 200 and 202, and the deleted targets' mirrors linked (`ready`) and retried (`ready`).
  expect(answers).toEqual([409, 409]);
  expect(await svc.rt.shows.getMirror(P, 's7', 'yt7')).toBeNull();
  expect((await svc.rt.shows.getMirror(P, 's8', 'yt8'))?.state).toBe('failed');
  // Once the target is gone: 404, and a save of a request that read the target before the delete is refused.
  expect((await svc.api(`/v1/partners/${P}/shows/s7/mirrors/yt7`, { method: 'PUT', json: { externalId } })).status).toBe(404);
  const owner = { id: 'yt8', platform: 'youtube' as const, incarnation: failed.incarnation };
  await expect(svc.rt.shows.updateMirror(P, 's8', owner, () => newMirror('yt8', 'youtube', failed.incarnation), (m) => ((m.state = 'ready'), true))).rejects.toBeInstanceOf(TargetGoneError);
  expect((await svc.rt.shows.getMirror(P, 's8', 'yt8'))?.state).toBe('failed');
}, 60_000);

/**
 * An operator's link whose target is deleted after the request read it (between its checks and its
 * save: run here from the route's markActive, just before the save): 404, and deleted and created
 * again meanwhile: 409 (try again); nothing of it saved either way.
 */
test("an operator's link whose target was deleted (or deleted and created again) after the request read it: 404 (409), nothing linked", async () => {
  await addTarget('yt9');
  await schedule('s9');
  const { externalId } = (await sim.control('POST', '/_sim/youtube/shows', { title: 'by hand 9' })) as { externalId: string };
  const shows = svc.rt.shows;
  const orig = shows.markActive.bind(shows);
  let between: (() => Promise<void>) | undefined;
  shows.markActive = async (...args: Parameters<typeof orig>) => {
    const run = between;
    between = undefined;
    await run?.();
    return orig(...args);
  };
  const link = async (): Promise<number> => (await svc.api(`/v1/partners/${P}/shows/s9/mirrors/yt9`, { method: 'PUT', json: { externalId } })).status;
  const deleted = async (): Promise<void> => expect((await svc.api(`/v1/partners/${P}/targets/yt9`, { method: 'DELETE' })).status).toBe(204);
  try {
    between = deleted;
    expect(await link()).toBe(404);
    await addTarget('yt9');
    between = async () => {
      await deleted();
      await addTarget('yt9');
    };
    expect(await link()).toBe(409);
  } finally {
    shows.markActive = orig;
  }
  expect((await svc.rt.shows.getMirror(P, 's9', 'yt9'))?.remote).toBeUndefined();
}, 60_000);
