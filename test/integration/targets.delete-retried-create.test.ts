/**
 * A target DELETE without ?force refuses (409) while a mirror of it may hold a show on the platform.
 * Before, it counted a remote show or a create in flight (`provisioning`) only: a mirror that failed
 * during its create (a timeout: the platform may have made the show) and that an operator then retried
 * is `pending` with its create's outcome still unknown (`creating`: its next run looks for that show
 * first), and the DELETE answered 204, leaving such a show with no credentials to end it. The sweep
 * keeps such a mirror's show in the active set (which the DELETE reads) also for a disabled target, and
 * the operator's retry puts the show back there (the sweep dropped it once the show ended with the
 * mirror failed); so does an operator's link of a platform show (`PUT …/mirrors/{target}`) to a mirror
 * of a show that ended and left the set.
 *
 * Real Redis (one, or the cluster under SYNDICAST_TEST_REDIS=cluster), the YouTube simulator over HTTP
 * (its fault switch fails the create); the test plays the sync runs.
 */
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createLogger } from '../../src/lib/logger.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
const P = 'delc';

beforeAll(async () => {
  sim = await startSim();
  // SYNC_MAX_RETRIES=1: a mirror fails at its second failed attempt.
  svc = await startService({ env: { SYNC_MAX_RETRIES: '1' } }); // no workers: the test plays the sync runs
  secret = await createPartner(svc, P);
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

const sync = (showId: string, targetId: string, token: string): Promise<SyncOutcome> => svc.rt.syncService.sync({ partnerId: P, showId, targetId }, { token });

test('a target DELETE is refused while a mirror of it is pending with its create\'s outcome unknown (failed during the create, retried by an operator)', async () => {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt5', platform: 'youtube', name: 'yt5', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s5'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    expect((await sync('s5', 'yt5', 'r5')).kind).toBe('delay');
    expect(await sync('s5', 'yt5', 'r5')).toMatchObject({ kind: 'done', state: 'failed' });
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  expect((await svc.rt.shows.getMirror(P, 's5', 'yt5'))?.creating).toBeDefined();
  // A failed mirror is over for the DELETE (nothing retries it): 409 only once an operator retries it.
  // The operator retries it: `pending`, the create's mark kept (its next run looks for that show first).
  expect((await svc.api(`/v1/partners/${P}/shows/s5/mirrors/yt5/resync`, { method: 'POST' })).status).toBe(202);
  const retried = await svc.rt.shows.getMirror(P, 's5', 'yt5');
  expect(retried?.state).toBe('pending');
  expect(retried?.creating).toBeDefined();
  expect(retried?.remote).toBeUndefined();
  // Before: 204, and a show the timed-out create made there was left with no credentials to end it.
  const refused = await svc.api(`/v1/partners/${P}/targets/yt5`, { method: 'DELETE' });
  expect(refused.status).toBe(409);
  expect(((await refused.json()) as { detail: string }).detail).toContain('s5');
  const kept = await svc.rt.partners.getTarget(P, 'yt5');
  expect(kept).not.toBeNull();
  expect(kept?.deleting).toBeUndefined();
  // ?force deletes it anyway.
  expect((await svc.api(`/v1/partners/${P}/targets/yt5?force=true`, { method: 'DELETE' })).status).toBe(204);
  expect(await svc.rt.partners.getTarget(P, 'yt5')).toBeNull();
}, 60_000);

test('such a mirror of a disabled target keeps its show in the active set once the show ended, so the DELETE still sees it', async () => {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt6', platform: 'youtube', name: 'yt6', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s6'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    expect((await sync('s6', 'yt6', 'r6')).kind).toBe('delay');
    expect(await sync('s6', 'yt6', 'r6')).toMatchObject({ kind: 'done', state: 'failed' });
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  expect((await svc.api(`/v1/partners/${P}/shows/s6/mirrors/yt6/resync`, { method: 'POST' })).status).toBe(202);
  expect((await svc.api(`/v1/partners/${P}/targets/yt6?verify=false`, { method: 'PATCH', json: { enabled: false } })).status).toBe(200);
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...sampleShow('s6'), state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'));
  await sweep.sweep();
  // Before: the show left the active set (nothing remote on a disabled target), and the DELETE answered 204.
  expect(await svc.rt.shows.activeShows()).toContainEqual([P, 's6']);
  expect((await svc.api(`/v1/partners/${P}/targets/yt6`, { method: 'DELETE' })).status).toBe(409);
}, 60_000);

test('an operator\'s retry of such a mirror after its show ended and left the active set puts the show back, so the DELETE sees it', async () => {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt7', platform: 'youtube', name: 'yt7', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s7'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  try {
    expect((await sync('s7', 'yt7', 'r7')).kind).toBe('delay');
    expect(await sync('s7', 'yt7', 'r7')).toMatchObject({ kind: 'done', state: 'failed' });
  } finally {
    await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  }
  expect((await svc.rt.shows.getMirror(P, 's7', 'yt7'))?.creating).toBeDefined();
  // The show ends; its only mirror failed (over for the sweep once a run saw the end): the sweep drops
  // the show from the active set.
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...sampleShow('s7'), state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  expect(await sync('s7', 'yt7', 'r7b')).toMatchObject({ kind: 'done', state: 'failed' });
  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'));
  await sweep.sweep();
  expect(await svc.rt.shows.activeShows()).not.toContainEqual([P, 's7']);
  // The operator retries it: `pending` with the create's outcome still unknown, and its show active again.
  expect((await svc.api(`/v1/partners/${P}/shows/s7/mirrors/yt7/resync`, { method: 'POST' })).status).toBe(202);
  const retried = await svc.rt.shows.getMirror(P, 's7', 'yt7');
  expect(retried?.state).toBe('pending');
  expect(retried?.creating).toBeDefined();
  expect(await svc.rt.shows.activeShows()).toContainEqual([P, 's7']);
  // Before: the show stayed out of the set, the DELETE (which walks it) answered 204, and a show the
  // timed-out create made was left with no credentials to end it.
  const refused = await svc.api(`/v1/partners/${P}/targets/yt7`, { method: 'DELETE' });
  expect(refused.status).toBe(409);
  expect(((await refused.json()) as { detail: string }).detail).toContain('s7');
  expect(await svc.rt.partners.getTarget(P, 'yt7')).not.toBeNull();
}, 60_000);

test('an operator\'s link of a platform show to a mirror after its show ended and left the active set puts the show back, so the DELETE sees it', async () => {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt8', platform: 'youtube', name: 'yt8', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s8'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  // The show ends before any platform show was made for it; once a run saw the end its mirror is over
  // and the sweep drops the show from the active set.
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...sampleShow('s8'), state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  // (Every enabled target of the partner: the earlier tests' too, or the show is not done for the sweep.)
  for (const t of (await svc.rt.partners.bundle(P))!.targets.filter((t) => t.enabled)) expect((await sync('s8', t.id, `r8-${t.id}`)).kind).toBe('done');
  expect((await svc.rt.shows.getMirror(P, 's8', 'yt8'))?.remote).toBeUndefined();
  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'));
  await sweep.sweep();
  expect(await svc.rt.shows.activeShows()).not.toContainEqual([P, 's8']);
  // The operator links a broadcast made by hand: the mirror has a show on the platform, its show active again.
  expect((await svc.api(`/v1/partners/${P}/shows/s8/mirrors/yt8`, { method: 'PUT', json: { externalId: 'bcByHandxx8' } })).status).toBe(200);
  const linked = await svc.rt.shows.getMirror(P, 's8', 'yt8');
  expect(linked?.remote?.externalId).toBe('bcByHandxx8');
  expect(await svc.rt.shows.activeShows()).toContainEqual([P, 's8']);
  // Before: the show stayed out of the set, the DELETE (which walks it) answered 204, and the linked
  // platform show was left with no credentials to end it.
  const refused = await svc.api(`/v1/partners/${P}/targets/yt8`, { method: 'DELETE' });
  expect(refused.status).toBe(409);
  expect(((await refused.json()) as { detail: string }).detail).toContain('s8');
  expect(await svc.rt.partners.getTarget(P, 'yt8')).not.toBeNull();
}, 60_000);

// A platform show linked after the show was over is recorded only (README, link: never retitled, ended
// or deleted by this service, on purpose: a mistyped id would take down someone's broadcast). Its
// mirror does not hold a target DELETE: the target's credentials are not what would end that show, and
// held, nothing would ever release it (no run looks at that platform show again), so every DELETE
// without force would be refused for good. (Held in be6030a for a few hours, reverted after review.)
test('a platform show linked after its show ended does not hold the target DELETE: the sweep drops the show, the DELETE is 204, the platform show is left as it was', async () => {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt9', platform: 'youtube', name: 'yt9', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s9'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...sampleShow('s9'), state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  const enabled = (await svc.rt.partners.bundle(P))!.targets.filter((t) => t.enabled);
  for (const t of enabled) expect((await sync('s9', t.id, `r9-${t.id}`)).kind).toBe('done');
  const { externalId } = (await sim.control('POST', '/_sim/youtube/shows', { title: 'Made by hand 9' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${P}/shows/s9/mirrors/yt9`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect(await sync('s9', 'yt9', 'r9-link')).toEqual({ kind: 'done', state: 'ended' });
  expect(await svc.rt.shows.getMirror(P, 's9', 'yt9')).toMatchObject({ state: 'ended', linkedAfterEnd: true, remote: { externalId } });
  await new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent')).sweep();
  expect(await svc.rt.shows.activeShows()).not.toContainEqual([P, 's9']);
  expect((await svc.api(`/v1/partners/${P}/targets/yt9`, { method: 'DELETE' })).status).toBe(204);
  expect((await sim.effects('youtube')).filter((e) => e.externalId === externalId && e.type !== 'show.created')).toEqual([]);
}, 60_000);

// The 409 names the held shows, the first 20 of them (sorted) and how many in all: a target that holds
// hundreds made a detail of every id, an answer (and a log line) as long as the list.
test('a target DELETE refused for 21 held shows names the first 20 and the count, not the 21st', async () => {
  const r = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'yt21', platform: 'youtube', name: 'yt21', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  const ids = Array.from({ length: 21 }, (_, i) => `held${String(i + 1).padStart(2, '0')}`);
  for (const id of ids) {
    expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
    // A platform show linked to its mirror: held (the target's credentials are what would end it).
    expect((await svc.api(`/v1/partners/${P}/shows/${id}/mirrors/yt21`, { method: 'PUT', json: { externalId: `bcHeld${id.slice(4)}xx8` } })).status).toBe(200);
  }
  const refused = await svc.api(`/v1/partners/${P}/targets/yt21`, { method: 'DELETE' });
  expect(refused.status).toBe(409);
  const { detail } = (await refused.json()) as { detail: string };
  expect(detail.match(/held\d\d/g)).toEqual(ids.slice(0, 20));
  expect(detail).toContain('… (21 in all)');
  expect(await svc.rt.partners.getTarget(P, 'yt21')).not.toBeNull();
}, 60_000);
