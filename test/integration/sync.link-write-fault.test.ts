/**
 * A pin's tracked-link write fails inside a full sync (the level above store.sync-saves.test.ts › intent-before): the
 * link's SET goes out with the pin step's intent start, and the step waits for it (`before`). Here
 * Redis really refuses that one write — an ACL that lets the service's user read every key and write
 * every key but the link's (NOPERM) — while everything else the run writes goes through. The run must
 * send nothing to the platform for the pin (neither the post nor the recovery lookup), fail in a way
 * BullMQ retries (not a platform error that fails or parks the mirror) with the reason in the mirror's
 * lastError, and once the write works again the retry pins exactly once (and clears it). Real
 * redis-server, real workers, the YouTube simulator.
 *
 * The second test: a run's non-platform error used to leave no trace on the mirror at all (an operator
 * saw a mirror stuck `pending` or `provisioning` with no reason); here the refused write is the
 * target's OAuth token, which a first run fetches and stores before its first platform call.
 */
import type { Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { allowAllWrites, refuseWritesTo } from '../helpers/acl.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, retryingUnavailable, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let admin: Redis | Cluster;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  // A retry that waits out a failed run's started step waits an attempt (2 × 1.5 s) and 0.5 s more to
  // settle, not the test default's 4 s and 2 s: the simulator answers at once.
  svc = await startService({ workers: true, env: { PLATFORM_TIMEOUT_MS: '1500', PLATFORM_SETTLE_MS: '500' } });
  admin = svc.redis.client();
});
afterAll(async () => {
  if (admin) {
    await allowAllWrites(admin).catch(() => undefined);
    admin.disconnect();
  }
  await svc?.close();
  await sim?.close();
});

test("a refused link write fails the run before the pin reaches the platform; BullMQ's retry after the fault pins once", async () => {
  const secret = await createPartner(svc, 'lw');
  const r = await retryingUnavailable(() => svc.api('/v1/partners/lw/targets', { json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } }));
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, 'lw', secret, showEvent('show.live', sampleShow('w1', { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('lw', 'w1', 'yt'))?.state === 'live');
  await settled(syncQueues(svc));
  const externalId = (await svc.rt.shows.getMirror('lw', 'w1', 'yt'))!.remote!.externalId;
  const code = svc.rt.links.code('lw', 'w1', 'yt', 'p1');
  const linkKey = svc.rt.keys.link(code);
  expect(await admin.exists(linkKey)).toBe(0);

  const failures: { err: Error; job: Job | undefined }[] = [];
  for (const w of svc.workers) w.on('failed', (job, err) => failures.push({ job, err }));
  const chat = async (): Promise<{ method: string; path: string }[]> =>
    ((await sim.control('GET', '/_sim/youtube/requests')) as { method: string; path: string }[]).filter((q) => q.path.endsWith('/liveChat/messages'));

  await refuseWritesTo(admin, linkKey);
  try {
    // The fault is the one write: the same connection still writes other keys.
    await expect(admin.set(linkKey, 'x')).rejects.toThrow(/NOPERM/);
    await admin.set(`${svc.rt.keys.prefix}:acl-probe`, '1');

    expect((await sendEvent(svc, 'lw', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: 'w1', productId: 'p1' } })).status).toBe(202);
    const failed = await waitFor(async () => failures.find((f) => /NOPERM/.test(f.err.message)), 20_000);
    // Retryable: the job goes back to wait out its backoff with attempts left, not to the failed set.
    expect(failed.job!.attemptsMade).toBeLessThan(failed.job!.opts.attempts!);
    expect(await failed.job!.getState()).toMatch(/^(delayed|waiting|active)$/);
    // Nothing reached the platform for the pin, not even the lookup of an earlier attempt's message.
    expect(await chat()).toEqual([]);
    expect((await sim.effects('youtube')).filter((e) => e.type === 'message.posted')).toEqual([]);
    // The mirror is not failed or parked on it (a Redis error is no platform error): the pin is still to
    // do, and its lastError says why the run is retried (it said nothing before).
    const m = (await svc.rt.shows.getMirror('lw', 'w1', 'yt'))!;
    expect(m.state).toBe('live');
    expect(m.lastError).toMatch(/^retrying: internal error: \w+: NOPERM [^\n]*$/);
    expect(m.pins['p1']?.state).not.toBe('pinned');
    expect(await admin.exists(linkKey)).toBe(0);
  } finally {
    await allowAllWrites(admin);
  }

  // BullMQ's next attempt (backoff ~1 s) writes the link, finds no earlier message, and posts one.
  await waitFor(async () => (await svc.rt.shows.getMirror('lw', 'w1', 'yt'))?.pins['p1']?.state === 'pinned', 30_000);
  await settled(syncQueues(svc));
  expect((await svc.rt.shows.getMirror('lw', 'w1', 'yt'))?.lastError).toBeNull();
  const posted = (await sim.effects('youtube')).filter((e) => e.type === 'message.posted' && e.externalId === externalId);
  expect(posted).toHaveLength(1);
  expect((await chat()).filter((q) => q.method === 'POST')).toHaveLength(1);
  expect(JSON.parse((await admin.get(linkKey))!)).toMatchObject({ code, productId: 'p1', url: 'https://shop.example.com/p1' });
  const click = await fetch(`${svc.url}/l/${code}`, { redirect: 'manual' });
  expect(click.status).toBe(302);
}, 60_000);

interface View {
  state: string;
  lastError: string | null;
}
async function mirrorView(): Promise<View | undefined> {
  const r = await svc.api('/v1/partners/ie/shows/ie1');
  return r.status === 200 ? ((await r.json()) as { mirrors: View[] }).mirrors[0] : undefined;
}

test("a run that fails on Redis shows the reason in the mirror's lastError while it is retried, and clears it once through", async () => {
  const secret = await createPartner(svc, 'ie');
  const r = await retryingUnavailable(() => svc.api('/v1/partners/ie/targets', { json: { id: 'ie-yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } }));
  expect(r.status).toBe(201);
  // The target's check stored a token: gone, so that the run fetches one and stores it (refused).
  const tokenKey = svc.rt.keys.targetToken('ie-yt');
  await admin.del(tokenKey);
  await refuseWritesTo(admin, tokenKey);
  const failures: Error[] = [];
  for (const w of svc.workers) w.on('failed', (_job, err) => failures.push(err));
  try {
    expect((await sendEvent(svc, 'ie', secret, showEvent('show.scheduled', sampleShow('ie1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    // Read as the run fails (its retry, ~1 s later, waits for what the failed run started and says so).
    await waitFor(async () => failures.some((err) => /NOPERM/.test(err.message)), 20_000, 10);
    const m = (await mirrorView())!;
    expect(m.state).not.toBe('failed');
    expect(m.lastError).toMatch(/^retrying: internal error: \w+: NOPERM /);
    expect(m.lastError).not.toContain('\n'); // no stack
    expect(m.lastError!.length).toBeLessThanOrEqual(240);
    expect((await sim.effects('youtube')).filter((e) => e.type === 'show.created' && e.title === 'Show ie1')).toEqual([]);
  } finally {
    await allowAllWrites(admin);
  }
  // BullMQ's next attempt gets through: the mirror moves on and the error is gone.
  const after = await waitFor(async () => {
    const v = await mirrorView();
    return v && v.lastError === null && v.state !== 'pending' ? v : undefined;
  }, 30_000);
  expect(after.state).not.toBe('failed');
}, 60_000);
