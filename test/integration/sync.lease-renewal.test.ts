/**
 * The renewal of a sync run's mirror lease (SyncService.sync): once a renewal finds the lease no
 * longer this run's, the run stops renewing for good and never takes the lease back — not when the
 * run that took it over releases it, not after the run ends — and its next write fails fast with
 * LeaseLostError. Real redis-server and the YouTube simulator over HTTP.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { keysMatching } from '../helpers/redis-cluster.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const LEASE_MS = 1000; // renewed every ~333 ms

let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  sim = await startSim();
  // PLATFORM_SETTLE_MS 500 (the tests' default is 2 s): the run after a lost lease waits out its started
  // step's deadline and the settle window before it looks the show up (CI time, docs/testing.md); the
  // simulator acts on a request when it gets it, long before the deadline.
  svc = await startService({ dispatch: false, env: { WORKER_LOCK_MS: String(LEASE_MS), PLATFORM_SETTLE_MS: '500' } }); // the test plays the runs itself
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

/** A partner with a YouTube target on the simulator and a scheduled show: the job of its mirror. */
async function scheduledShow(partnerId: string, showId: string): Promise<{ partnerId: string; showId: string; targetId: string }> {
  const secret = await createPartner(svc, partnerId);
  const targetId = `${partnerId}-yt`;
  const r = await svc.api(`/v1/partners/${partnerId}/targets`, {
    json: { id: targetId, platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'))).status).toBe(202);
  return { partnerId, showId, targetId };
}

test('a run whose renewal finds its lease taken stops renewing, never takes it back, and writes nothing more', async () => {
  const job = await scheduledShow('rl', 'rs1');
  const leaseKey = svc.rt.keys.mirrorLease('rl', 'rs1', 'rl-yt');
  const renew = jest.spyOn(svc.rt.intents, 'renew');
  await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 1200 });
  let runA: Promise<SyncOutcome> | undefined;
  try {
    runA = svc.rt.syncService.sync(job, { token: 'job-token-A' });
    // A is inside its first platform call (its intent is started).
    await waitFor(async () => (await keysMatching(svc.rt.redis, `${svc.rt.keys.showTag('rl', 'rs1')}:intent:*`)).length > 0, 10_000, 20);
    expect(await svc.rt.redis.get(leaseKey)).toBe('job-token-A');
    // Run B takes the mirror over (A's lease lapsed while A stalled; B's job lock is newer).
    await svc.rt.redis.set(leaseKey, 'job-token-B', 'PX', 60_000);
    const seen = renew.mock.calls.length;
    await waitFor(async () => renew.mock.calls.length >= seen + 1, 5_000, 20); // A's renewal saw it
    // ...and was answered (the run decides on the answer, before this wait ends). A fixed 50 ms was not
    // enough on a loaded machine: the answer could come after the DEL below, and the renewal timer (every
    // ~333 ms) call once more after `stoppedAt` was read.
    await Promise.resolve(renew.mock.results[seen]!.value).catch(() => undefined);
    expect(await svc.rt.redis.get(leaseKey)).toBe('job-token-B');
    // B finishes and lets the mirror go: A's renewal must not take it back.
    await svc.rt.redis.del(leaseKey);
    const stoppedAt = renew.mock.calls.length;
    await sleep(LEASE_MS * 1.2); // more than three renewal periods
    expect(renew.mock.calls.length).toBe(stoppedAt); // A stopped renewing for good
    expect(await svc.rt.redis.exists(leaseKey)).toBe(0);
    // Run C takes the mirror and keeps it while A is still in its call and after A ended.
    const c = await svc.rt.intents.acquire('rl', 'rs1', 'rl-yt', 'job-token-C', 60_000);
    expect('lease' in c).toBe(true);
    const outcomeA = await runA;
    expect(outcomeA).toMatchObject({ kind: 'delay', reason: 'lease lost' });
    expect(await svc.rt.redis.get(leaseKey)).toBe('job-token-C');
    expect(await svc.rt.redis.pttl(leaseKey)).toBeGreaterThan(50_000);
    await sleep(LEASE_MS);
    expect(await svc.rt.redis.get(leaseKey)).toBe('job-token-C');
    expect(renew.mock.calls.length).toBe(stoppedAt);
    // A's call completed on the platform, but A recorded nothing: neither its intent nor the mirror.
    const m = await svc.rt.shows.getMirror('rl', 'rs1', 'rl-yt');
    expect(m?.remote).toBeFalsy();
    if ('lease' in c) await svc.rt.intents.release(c.lease);
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 0 });
    await runA?.catch(() => undefined);
    renew.mockRestore();
  }
});

test('a run whose renewal finds its lease lapsed (nobody took it) does not re-create it and stops at its next write', async () => {
  const job = await scheduledShow('rl2', 'rs2');
  const leaseKey = svc.rt.keys.mirrorLease('rl2', 'rs2', 'rl2-yt');
  const renew = jest.spyOn(svc.rt.intents, 'renew');
  await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 1200 });
  let runA: Promise<SyncOutcome> | undefined;
  try {
    runA = svc.rt.syncService.sync(job, { token: 'job-token-A' });
    await waitFor(async () => (await keysMatching(svc.rt.redis, `${svc.rt.keys.showTag('rl2', 'rs2')}:intent:*`)).length > 0, 10_000, 20);
    await svc.rt.redis.del(leaseKey); // A's lease lapsed
    const seen = renew.mock.calls.length;
    await waitFor(async () => renew.mock.calls.length >= seen + 1, 5_000, 20);
    await Promise.resolve(renew.mock.results[seen]!.value).catch(() => undefined); // answered: the run has decided
    await sleep(LEASE_MS * 0.8);
    expect(await svc.rt.redis.exists(leaseKey)).toBe(0);
    expect(await runA).toMatchObject({ kind: 'delay', reason: 'lease lost' });
    expect(await svc.rt.redis.exists(leaseKey)).toBe(0); // nothing of A's lingers after its run
    expect((await svc.rt.shows.getMirror('rl2', 'rs2', 'rl2-yt'))?.remote).toBeFalsy();
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 0 });
    await runA?.catch(() => undefined);
    renew.mockRestore();
  }
  // The next run syncs the mirror: one show on YouTube.
  let outcome: SyncOutcome | undefined;
  for (let i = 0; i < 20; i++) {
    outcome = await svc.rt.syncService.sync(job, { token: `job-token-N${i}` });
    if (outcome.kind !== 'delay') break;
    await sleep(Math.min(outcome.delayMs, 1000));
  }
  expect(outcome).toEqual({ kind: 'done', state: 'ready' });
  // One Redis with REDIS_WAIT_REPLICAS=auto: no WAIT before the platform calls (nor any other).
  if (svc.redis.topology === 'single') {
    expect(svc.rt.replicaAck.active).toBe(false);
    expect(svc.rt.replicaAck.stats).toEqual({ waits: 0, confirms: 0 });
  }
});

test('renewals that fail (Redis trouble) do not make the run give up: its fenced writes still decide, so a call that succeeded is recorded', async () => {
  const job = await scheduledShow('rl3', 'rs3');
  // Every renewal fails for longer than a lease while the first platform call is on the wire; nobody
  // else takes the mirror. A fenced write finds no other holder, so the run's results count.
  const renew = jest.spyOn(svc.rt.intents, 'renew').mockRejectedValue(new Error('connection lost'));
  await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 1500 });
  try {
    const outcome = await svc.rt.syncService.sync(job, { token: 'job-token-E' });
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(3); // renewals ran (and failed) for over a lease
    expect(outcome).toMatchObject({ kind: 'done' });
    const m = await svc.rt.shows.getMirror('rl3', 'rs3', 'rl3-yt');
    expect(m?.remote?.externalId).toBeTruthy();
    expect(await svc.rt.redis.exists(svc.rt.keys.mirrorLease('rl3', 'rs3', 'rl3-yt'))).toBe(0); // released at the end
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 0 });
    renew.mockRestore();
  }
}, 30_000);
