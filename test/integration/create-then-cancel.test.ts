/**
 * A create whose answer never came (timeout, crash) may have made the show on the platform. When the
 * partner cancels (or ends) the show before a retry found it, the mirror must still look for what the
 * create made and take it down: marked cancelled without a remote show, it left a scheduled broadcast
 * on the partner's channel for good. Likewise a title changed meanwhile must reach the show the create
 * made: the retry adopted it and recorded the new title as written, so it kept the first one.
 *
 * Real redis-server, the real SyncService and adapters, the simulators behind a proxy that delivers
 * the create late (after its caller timed out), as in intent-late-request.test.ts. Targets are saved
 * with ?verify=false: the credentials check would run under this file's 400 ms PLATFORM_TIMEOUT_MS,
 * and on a loaded CI machine it timed out (a 503 at target creation, fresh-clone CI of 50da21c); the
 * check is not what this file tests.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { CREATE_PATHS } from '../helpers/late-proxy.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';
import { useLateRig } from '../helpers/late-rig.js';

const TIMEOUT_MS = 400;
const HOLD_MS = 800;

// no workers: the test plays the runs, as BullMQ would
const rig = useLateRig({
  limits: { youtube: { requestsPerWindow: null, quotaPerDay: null }, facebook: { requestsPerWindow: null, quotaPerDay: null }, bambuser: { requestsPerWindow: null, quotaPerDay: null } },
  env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS) },
  partnerId: 'cc',
});

const CREATE = CREATE_PATHS;

test.each([
  ['youtube', 'show.cancelled'],
  ['facebook', 'show.cancelled'],
  ['bambuser', 'show.cancelled'],
  ['youtube', 'show.ended'],
] as const)('%s: a create that took effect after its caller gave up is taken down when the show is then %s', async (platform, type) => {
  const targetId = `cc-${platform}-${type}`;
  const r = await rig.svc.api('/v1/partners/cc/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${rig.proxy.url}/${platform}`, commissionRateBps: 500, rateLimit: { requests: 1000, windowMs: 1000 } },
  });
  expect(r.status).toBe(201);
  const showId = `show-${platform}-${type}`;
  const title = `Gone ${platform} ${type}`;
  const show = sampleShow(showId, { title });
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'cc', showId, targetId };

  // Run A: its create reaches the platform late; A times out first.
  rig.proxy.holdNext((method, path) => method === 'POST' && CREATE[platform]!.test(path), HOLD_MS);
  const a = await rig.svc.rt.syncService.sync(job, { token: `A-${targetId}` });
  expect(a).toMatchObject({ kind: 'delay' });
  await rig.proxy.idle(); // the create has taken effect on the platform

  // The partner calls the show off before any retry ran.
  const state = type === 'show.cancelled' ? 'cancelled' : 'ended';
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent(type, { ...show, state }, '2026-11-24T17:30:00Z'))).status).toBe(202);

  let outcome: SyncOutcome = { kind: 'delay', delayMs: 0, reason: 'start' };
  for (let i = 0; outcome.kind === 'delay' && i < 20; i++) {
    if (i > 0) await sleep(outcome.delayMs);
    outcome = await rig.svc.rt.syncService.sync(job, { token: `R${i}-${targetId}` });
  }
  expect(outcome).toMatchObject({ kind: 'done', state: type === 'show.cancelled' ? 'cancelled' : 'ended' });

  const effects = await rig.sim.effects(platform);
  const created = effects.filter((e) => e.type === 'show.created' && e.title === title);
  expect(created).toHaveLength(1);
  const mine = effects.filter((e) => e.externalId === created[0]!.externalId).map((e) => e.type);
  // What the platform does with a show taken down before it aired: deleted (show.cancelled) or ended.
  expect(mine.length).toBeGreaterThan(1);
  expect(['show.cancelled', 'show.ended']).toContain(mine.at(-1));
  const m = (await rig.svc.rt.shows.getMirror('cc', showId, targetId))!;
  expect(m.remote?.externalId).toBe(created[0]!.externalId);
}, 30_000);

test('a create that never reached the platform is not made when the show is cancelled, and nothing waits on it', async () => {
  const targetId = 'cc-dropped';
  const r = await rig.svc.api('/v1/partners/cc/targets?verify=false', {
    json: { id: targetId, platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: `${rig.proxy.url}/youtube`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const show = sampleShow('dropped', { title: 'Never made' });
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'cc', showId: 'dropped', targetId };
  rig.proxy.dropNext((method, path) => method === 'POST' && CREATE['youtube']!.test(path));
  expect(await rig.svc.rt.syncService.sync(job, { token: 'A-dropped' })).toMatchObject({ kind: 'delay' });
  expect(rig.proxy.dropped).toHaveLength(1);
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  let outcome: SyncOutcome = { kind: 'delay', delayMs: 0, reason: 'start' };
  for (let i = 0; outcome.kind === 'delay' && i < 20; i++) {
    if (i > 0) await sleep(outcome.delayMs);
    outcome = await rig.svc.rt.syncService.sync(job, { token: `R${i}-dropped` });
  }
  expect(outcome).toMatchObject({ kind: 'done', state: 'cancelled' });
  expect((await rig.sim.effects('youtube')).filter((e) => e.title === 'Never made')).toEqual([]);
  expect((await rig.svc.rt.shows.getMirror('cc', 'dropped', targetId))!.remote).toBeUndefined();
}, 30_000);

test.each(['youtube', 'facebook', 'bambuser'] as const)('%s: a title changed while the create\'s outcome was unknown reaches the show the create made', async (platform) => {
  const targetId = `ct-${platform}`;
  const r = await rig.svc.api('/v1/partners/cc/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${rig.proxy.url}/${platform}`, commissionRateBps: 500, rateLimit: { requests: 1000, windowMs: 1000 } },
  });
  expect(r.status).toBe(201);
  const showId = `retitled-${platform}`;
  const show = sampleShow(showId, { title: `First title ${platform}` });
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'cc', showId, targetId };
  rig.proxy.holdNext((method, path) => method === 'POST' && CREATE[platform]!.test(path), HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: `A-${targetId}` })).toMatchObject({ kind: 'delay' });
  await rig.proxy.idle(); // made, with the first title
  const retitled = `Second title ${platform}`;
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.updated', { ...show, title: retitled }, '2026-11-24T17:10:00Z'))).status).toBe(202);

  let outcome: SyncOutcome = { kind: 'delay', delayMs: 0, reason: 'start' };
  for (let i = 0; outcome.kind === 'delay' && i < 20; i++) {
    if (i > 0) await sleep(outcome.delayMs);
    outcome = await rig.svc.rt.syncService.sync(job, { token: `R${i}-${targetId}` });
  }
  expect(outcome).toEqual({ kind: 'done', state: 'ready' });
  const m = (await rig.svc.rt.shows.getMirror('cc', showId, targetId))!;
  const titles = (await rig.sim.effects(platform)).filter((e) => e.externalId === m.remote!.externalId && e.title !== undefined).map((e) => e.title);
  expect(titles[0]).toContain('First title');
  expect(titles.at(-1)).toContain(retitled);
}, 30_000);

test('a mirror that failed while its create\'s outcome was unknown, then retried by an operator, still takes down what the create made when the show is cancelled', async () => {
  const targetId = 'cc-failed';
  const r = await rig.svc.api('/v1/partners/cc/targets?verify=false', {
    json: { id: targetId, platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: `${rig.proxy.url}/youtube`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const show = sampleShow('failed-then-retried', { title: 'Failed then retried' });
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'cc', showId: 'failed-then-retried', targetId };
  rig.proxy.holdNext((method, path) => method === 'POST' && CREATE['youtube']!.test(path), HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 'A-failed' })).toMatchObject({ kind: 'delay' });
  await rig.proxy.idle();
  // The retry budget ran out meanwhile (as after SYNC_MAX_RETRIES failed attempts): the mirror failed.
  await rig.svc.rt.shows.updateMirror('cc', 'failed-then-retried', targetId, () => { throw new Error('mirror expected'); }, (m) => {
    m.state = 'failed';
    m.lastError = 'gave up';
    return true;
  });
  // The operator retries it, and the partner cancels the show.
  expect((await rig.svc.api(`/v1/partners/cc/shows/failed-then-retried/mirrors/${targetId}/resync`, { method: 'POST' })).status).toBe(202);
  expect((await rig.svc.rt.shows.getMirror('cc', 'failed-then-retried', targetId))!.state).toBe('pending');
  expect((await sendEvent(rig.svc, 'cc', rig.secret, showEvent('show.cancelled', { ...show, state: 'cancelled' }, '2026-11-24T17:30:00Z'))).status).toBe(202);
  let outcome: SyncOutcome = { kind: 'delay', delayMs: 0, reason: 'start' };
  for (let i = 0; outcome.kind === 'delay' && i < 20; i++) {
    if (i > 0) await sleep(outcome.delayMs);
    outcome = await rig.svc.rt.syncService.sync(job, { token: `R${i}-failed` });
  }
  expect(outcome).toMatchObject({ kind: 'done', state: 'cancelled' });
  const effects = await rig.sim.effects('youtube');
  const created = effects.filter((e) => e.type === 'show.created' && e.title === 'Failed then retried');
  expect(created).toHaveLength(1);
  expect(effects.filter((e) => e.externalId === created[0]!.externalId).map((e) => e.type)).toEqual(['show.created', 'show.cancelled']);
}, 30_000);
