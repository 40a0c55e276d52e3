/**
 * A pin's tracked-link write fails inside a full sync (the level above intent-before.test.ts): the
 * link's SET goes out with the pin step's intent start, and the step waits for it (`before`). Here
 * Redis really refuses that one write — an ACL that lets the service's user read every key and write
 * every key but the link's (NOPERM) — while everything else the run writes goes through. The run must
 * send nothing to the platform for the pin (neither the post nor the recovery lookup), fail in a way
 * BullMQ retries (not a platform error that fails or parks the mirror), and once the write works
 * again the retry pins exactly once. Real redis-server, real workers, the YouTube simulator.
 */
import type { Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let admin: Redis | Cluster;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  svc = await startService({ workers: true });
  admin = svc.redis.client();
});
afterAll(async () => {
  if (admin) {
    await allowAllWrites().catch(() => undefined);
    admin.disconnect();
  }
  await svc?.close();
  await sim?.close();
});

/** Redis glob patterns matching every key except `key` (a key that differs at some position, or is longer, or shorter). */
function everyKeyBut(key: string): string[] {
  const esc = (s: string): string => s.replace(/[*?[\]\\^-]/g, (c) => `\\${c}`);
  const out: string[] = [];
  for (let i = 0; i < key.length; i++) {
    out.push(`${esc(key.slice(0, i))}[^${esc(key[i]!)}]*`);
    if (i > 0) out.push(esc(key.slice(0, i)));
  }
  out.push(`${esc(key)}?*`);
  return out;
}

const nodes = (): (Redis | Cluster)[] => ('nodes' in admin ? admin.nodes('all') : [admin]);

/**
 * The default user (every connection of the service) may read and write every key but `key`, and only
 * read that one. (A command's key must match one pattern that grants all it needs: a script's keys
 * need read and write, so `%R~*` plus write patterns would refuse them all.)
 */
async function refuseWritesTo(key: string): Promise<void> {
  for (const n of nodes()) await n.call('ACL', 'SETUSER', 'default', 'resetkeys', ...everyKeyBut(key).map((p) => `~${p}`), `%R~${key.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}`);
}
async function allowAllWrites(): Promise<void> {
  for (const n of nodes()) await n.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
}

test("a refused link write fails the run before the pin reaches the platform; BullMQ's retry after the fault pins once", async () => {
  const secret = await createPartner(svc, 'lw');
  const r = await svc.api('/v1/partners/lw/targets', { json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
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

  await refuseWritesTo(linkKey);
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
    // The mirror is not failed or parked on it (a Redis error is no platform error): the pin is still to do.
    const m = (await svc.rt.shows.getMirror('lw', 'w1', 'yt'))!;
    expect([m.state, m.lastError]).toEqual(['live', null]);
    expect(m.pins['p1']?.state).not.toBe('pinned');
    expect(await admin.exists(linkKey)).toBe(0);
  } finally {
    await allowAllWrites();
  }

  // BullMQ's next attempt (backoff ~1 s) writes the link, finds no earlier message, and posts one.
  await waitFor(async () => (await svc.rt.shows.getMirror('lw', 'w1', 'yt'))?.pins['p1']?.state === 'pinned', 30_000);
  await settled(syncQueues(svc));
  const posted = (await sim.effects('youtube')).filter((e) => e.type === 'message.posted' && e.externalId === externalId);
  expect(posted).toHaveLength(1);
  expect((await chat()).filter((q) => q.method === 'POST')).toHaveLength(1);
  expect(JSON.parse((await admin.get(linkKey))!)).toMatchObject({ code, productId: 'p1', url: 'https://shop.example.com/p1' });
  const click = await fetch(`${svc.url}/l/${code}`, { redirect: 'manual' });
  expect(click.status).toBe(302);
}, 60_000);
