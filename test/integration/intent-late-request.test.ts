/**
 * The second `show.created` of the scale-out test (issue 12 §2), at the smallest level that shows it.
 *
 * A run's create call times out (or its worker dies, or stalls) while the request is still on its way:
 * the platform acts on it a little LATER. The retry that finds the intent `started` looks the object up
 * by its marker — and when it looked before the late request took effect, it found nothing and
 * created a second show. The intent now records until when its attempt may still reach the platform
 * (the owner cannot send after that: src/targets/attempt-deadline.ts), and a retry does not look the
 * object up before then plus the time the platform takes to act (src/store/intent.repository.ts).
 *
 * Real redis-server, the real SyncService and adapters, the simulators behind a proxy that delivers
 * the first create `HOLD_MS` late (longer than the platform timeout, shorter than the settle time).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { withAttemptDeadline } from '../../src/targets/attempt-deadline.js';
import { createPlatformHttp } from '../../src/targets/platform-http.js';
import type { AdapterContext } from '../../src/targets/target.adapter.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { CREATE_PATHS } from '../helpers/late-proxy.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';
import { useLateRig } from '../helpers/late-rig.js';

/** PLATFORM_TIMEOUT_MS of this service: an attempt may send for 2× this, a retry waits 1× more. */
const TIMEOUT_MS = 400;
const HOLD_MS = 800;

// no workers: the test plays the runs, as BullMQ would
const rig = useLateRig({
  limits: { youtube: { requestsPerWindow: null, quotaPerDay: null }, facebook: { requestsPerWindow: null, quotaPerDay: null }, bambuser: { requestsPerWindow: null, quotaPerDay: null } },
  env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS) },
  partnerId: 'late',
});

const CREATE = CREATE_PATHS;

type Platform = 'youtube' | 'facebook' | 'bambuser';

/** Adds target `targetId` of `platform` for partner `late`, its API behind the late proxy. */
async function addLateTarget(platform: Platform, targetId: string): Promise<void> {
  const r = await rig.svc.api('/v1/partners/late/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${rig.proxy.url}/${platform}`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
}

/** The sequence number of the last request `platform`'s simulator received. */
async function lastRequest(platform: Platform): Promise<number> {
  return ((await rig.sim.control('GET', `/_sim/${platform}/requests`)) as { seq: number }[]).at(-1)?.seq ?? 0;
}

/** The requests `platform` received after request `seq`, but for the late create (it arrives whenever the proxy lets it go). */
async function sentSince(platform: Platform, seq: number): Promise<string[]> {
  const requests = (await rig.sim.control('GET', `/_sim/${platform}/requests?since=${seq}`)) as { method: string; path: string }[];
  return requests.filter((r) => !(r.method === 'POST' && CREATE[platform]!.test(`/${platform}${r.path}`))).map((r) => `${r.method} ${r.path}`);
}

test.each(['youtube', 'facebook', 'bambuser'] as const)('%s: a create that reaches the platform after its caller timed out is adopted by the retry, not made twice', async (platform) => {
  const targetId = `late-${platform}`;
  await addLateTarget(platform, targetId);
  const showId = `show-${platform}`;
  expect((await sendEvent(rig.svc, 'late', rig.secret, showEvent('show.scheduled', sampleShow(showId, { title: `Late ${platform}` }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'late', showId, targetId };

  // Run A: its create reaches the platform HOLD_MS late; A times out first and hands the job back.
  rig.proxy.holdNext((method, path) => method === 'POST' && CREATE[platform]!.test(path), HOLD_MS);
  const a = await rig.svc.rt.syncService.sync(job, { token: `A-${platform}` });
  expect(a).toMatchObject({ kind: 'delay' });
  expect(rig.proxy.held).toContainEqual(expect.objectContaining({ method: 'POST' }));

  // The first retry comes at once (a stalled job is taken over at once too). A's create may still reach
  // the platform: the retry waits, and sends nothing meanwhile, not even its look for what A made (a
  // look then finds nothing that can be trusted, costs a request, and puts the adoption off a settle
  // window: the next look would wait for until + 2 x settle, not until + settle).
  const seen = await lastRequest(platform);
  let outcome = await rig.svc.rt.syncService.sync(job, { token: `R0-${platform}` });
  expect(outcome).toMatchObject({ kind: 'delay' });
  expect(await sentSince(platform, seen)).toEqual([]);
  // The retries, as BullMQ would run them (each a new job token, after the delay), until the mirror is done.
  for (let i = 1; outcome.kind === 'delay' && i < 20; i++) {
    await sleep(outcome.delayMs);
    outcome = await rig.svc.rt.syncService.sync(job, { token: `R${i}-${platform}` });
  }
  expect(outcome).toEqual({ kind: 'done', state: 'ready' });
  await rig.proxy.idle(); // the late request has taken effect by now, whatever the runs did

  const m = (await rig.svc.rt.shows.getMirror('late', showId, targetId))!;
  const created = (await rig.sim.effects(platform)).filter((e) => e.type === 'show.created' && e.title === `Late ${platform}`);
  expect(created.map((e) => e.externalId)).toEqual([m.remote!.externalId]);
}, 30_000);

test('an attempt sends nothing once its deadline has passed, and a request still on its way is cut at the deadline', async () => {
  const http = createPlatformHttp({ target: { id: 't', partnerId: 'p', platform: 'youtube', credentials: {} } } as unknown as AdapterContext, { timeout: 10_000 });
  const list = '/youtube/youtube/v3/liveBroadcasts';
  const requests = async (): Promise<number> => ((await rig.sim.control('GET', '/_sim/youtube/requests')) as unknown[]).length;
  const before = await requests();
  // A stalled owner wakes up after its deadline: the request is refused before it is sent.
  await expect(withAttemptDeadline(Date.now() - 1, () => http.get(`${rig.sim.url}${list}`))).rejects.toMatchObject({ kind: 'retryable', reason: 'attempt_deadline' });
  expect(await requests()).toBe(before);
  // Outside an attempt nothing changes.
  expect((await http.get(`${rig.sim.url}${list}`, { validateStatus: () => true })).status).toBeGreaterThan(0);
  // A request on its way when the deadline comes is abandoned then, not at the client's 10 s timeout:
  // the rig.proxy still holds it (2 s) when the call has already failed.
  rig.proxy.holdNext((method, path) => method === 'GET' && path === list, 2000);
  await expect(withAttemptDeadline(Date.now() + 300, () => http.get(`${rig.proxy.url}${list}`))).rejects.toMatchObject({ code: 'ECONNABORTED' });
  expect(rig.proxy.held.at(-1)).toMatchObject({ method: 'GET', path: list });
  expect(rig.proxy.held.at(-1)!.forwardedAt).toBeUndefined();
  await rig.proxy.idle();
});

test('a retry that finds an earlier attempt still settling waits without using up the retry budget, and the sweep may bring it forward', async () => {
  const targetId = 'settling-budget';
  await addLateTarget('youtube', targetId);
  const showId = 'show-settling-budget';
  expect((await sendEvent(rig.svc, 'late', rig.secret, showEvent('show.scheduled', sampleShow(showId, { title: 'Settling budget' }), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'late', showId, targetId };

  // Run A: its create is cut off at the attempt deadline (a failure: counted).
  rig.proxy.holdNext((method, path) => method === 'POST' && CREATE['youtube']!.test(path), HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 'budget-A' })).toMatchObject({ kind: 'delay' });
  const afterA = (await rig.svc.rt.shows.getMirror('late', showId, targetId))!;

  // The retry at once: A's create may still reach the platform, so it waits (an expected wait).
  const settling = await rig.svc.rt.syncService.sync(job, { token: 'budget-R' });
  expect(settling).toMatchObject({ kind: 'delay' });
  const m = (await rig.svc.rt.shows.getMirror('late', showId, targetId))!;
  expect(m.lastError).toMatch(/may still reach the platform/);
  expect(m.retries).toBe(afterA.retries);
  // Marked as waiting at the show's version: a change of the show lets the sweep run it sooner.
  expect(m.waiting).toBe((await rig.svc.rt.shows.desired('late', showId))!.version);

  expect(await rig.converge(job, 'budget-C')).toEqual({ kind: 'done', state: 'ready' });
  await rig.proxy.idle();
}, 30_000);
