/**
 * A target deleted with ?force=true and created again with the same id (here on another account) starts
 * clean: its mirrors are the new target's, not the deleted one's. Before, mirror records (kept per show
 * and target id) outlived the delete: the new target showed the old one's external id, its `failed`
 * state and `lastError`, and its sync went on from the OLD platform show (a show another account made,
 * which the new credentials do not reach) instead of creating its own. Real Redis (a Cluster under
 * SYNDICAST_TEST_REDIS=cluster), the YouTube simulator over HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { showMirrors, simServicePerFile, youtubeEncoderNow, type MirrorView } from '../helpers/mirrors.js';
import { CREDENTIALS, OTHER_CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

// PLATFORM_TIMEOUT_MS above the simulator's latency in the test that holds a call in flight (the call succeeds).
simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: youtubeEncoderNow, service: { workers: true, env: { PLATFORM_TIMEOUT_MS: '6000' } } });

async function mirrorOf(partner: string, showId: string, targetId: string): Promise<MirrorView | undefined> {
  return (await showMirrors(svc, partner, showId))?.find((m) => m.targetId === targetId);
}

test('a target re-created with the id of a force-deleted one shows none of its mirrors and makes its own platform shows', async () => {
  const secret = await createPartner(svc, 'trc');
  const path = '/v1/partners/trc/targets/wn';
  const body = { id: 'wn', platform: 'youtube', name: 'YT', baseUrl: sim.base('youtube'), commissionRateBps: 500 };
  expect((await svc.api('/v1/partners/trc/targets', { json: { ...body, credentials: CREDENTIALS.youtube } })).status).toBe(201);

  // Show a: a broadcast on account a (the mirror's external id).
  expect((await sendEvent(svc, 'trc', secret, showEvent('show.scheduled', sampleShow('a'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const old = await waitFor(async () => {
    const m = await mirrorOf('trc', 'a', 'wn');
    return m?.state === 'ready' && m.externalId ? m : undefined;
  });
  // Show b: a mirror failed with the old credentials' error (their grant revoked on the platform).
  await sim.control('POST', '/_sim/youtube/revocations', { token: 'revoked-rc' });
  expect((await svc.api(`${path}?verify=false`, { method: 'PATCH', json: { credentials: { ...CREDENTIALS.youtube, refreshToken: 'revoked-rc' } } })).status).toBe(200);
  expect((await sendEvent(svc, 'trc', secret, showEvent('show.scheduled', sampleShow('b'), '2026-11-24T17:00:01Z'))).status).toBe(202);
  const failed = await waitFor(async () => {
    const m = await mirrorOf('trc', 'b', 'wn');
    return m?.state === 'failed' ? m : undefined;
  });
  expect(failed.lastError).toMatch(/re-?authori[sz]e/i);

  // Forced: show a's broadcast is left on account a.
  expect((await svc.api(`${path}?force=true`, { method: 'DELETE' })).status).toBe(204);
  const effectsBefore = (await sim.effects('youtube')).length;

  // The same id again, on account b.
  expect((await svc.api('/v1/partners/trc/targets', { json: { ...body, credentials: OTHER_CREDENTIALS.youtube } })).status).toBe(201);
  // At once: nothing of the deleted target shows (whatever the new target's first sync has done yet).
  const a0 = await mirrorOf('trc', 'a', 'wn');
  expect(a0).toBeDefined();
  expect(a0!.externalId).not.toBe(old.externalId);
  const b0 = await mirrorOf('trc', 'b', 'wn');
  expect(b0).toBeDefined();
  expect(b0!.state).not.toBe('failed');
  expect(b0!.lastError ?? '').not.toMatch(/re-?authori[sz]e/i);

  // Its sync makes a broadcast of its own for each show (on account b), and never acts on account a's.
  const [a1, b1] = await Promise.all(
    ['a', 'b'].map((showId) =>
      waitFor(async () => {
        const m = await mirrorOf('trc', showId, 'wn');
        return m?.state === 'ready' && m.externalId ? m : undefined;
      }),
    ),
  );
  expect(a1!.externalId).not.toBe(old.externalId);
  expect(b1!.externalId).not.toBe(a1!.externalId);
  // A change of show a goes to the new broadcast.
  expect((await sendEvent(svc, 'trc', secret, showEvent('show.updated', sampleShow('a', { title: 'Show a, renamed' }), '2026-11-24T17:00:02Z'))).status).toBe(202);
  await waitFor(async () => (await sim.effects('youtube')).some((e) => e.type === 'show.updated' && e.externalId === a1!.externalId && e.title === 'Show a, renamed'));
  const after = (await sim.effects('youtube')).slice(effectsBefore);
  expect(after.filter((e) => e.externalId === old.externalId)).toEqual([]);
  expect(after.filter((e) => e.type === 'show.created').map((e) => e.externalId).sort()).toEqual([a1!.externalId, b1!.externalId].sort());
});

test("the deleted target's platform shows do not hold the delete of the new one (no 409 naming them)", async () => {
  const secret = await createPartner(svc, 'trc2');
  const path = '/v1/partners/trc2/targets/wn2';
  const body = { id: 'wn2', platform: 'youtube', name: 'YT', baseUrl: sim.base('youtube'), credentials: CREDENTIALS.youtube, commissionRateBps: 500 };
  expect((await svc.api('/v1/partners/trc2/targets', { json: body })).status).toBe(201);
  expect((await sendEvent(svc, 'trc2', secret, showEvent('show.scheduled', sampleShow('held'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await waitFor(async () => {
    const m = await mirrorOf('trc2', 'held', 'wn2');
    return m?.state === 'ready' && m.externalId ? m : undefined;
  });
  expect((await svc.api(path, { method: 'DELETE' })).status).toBe(409);
  expect((await svc.api(`${path}?force=true`, { method: 'DELETE' })).status).toBe(204);
  // Created again, disabled: it has made nothing on the platform, so nothing holds its delete.
  expect((await svc.api('/v1/partners/trc2/targets', { json: { ...body, enabled: false } })).status).toBe(201);
  const m = await mirrorOf('trc2', 'held', 'wn2');
  expect(m?.externalId).toBeNull();
  expect((await svc.api(path, { method: 'DELETE' })).status).toBe(204);
});

test("a run of a target created before incarnations, force-deleted and created again mid-create: its late save is not the new target's", async () => {
  // Before, the save scripts' target guard only asked whether a record of the id was there: the run's
  // save after the create call returned passed the new target's guard and wrote a record without an
  // incarnation (its target had none), dated after the new target's createdAt, which the new target
  // then took as its own (the createdAt rule, ownMirror): the deleted target's platform show, made
  // with the old credentials, shown and synced as the new target's.
  const secret = await createPartner(svc, 'trl');
  const path = '/v1/partners/trl/targets';
  const body = { id: 'wl', platform: 'youtube', name: 'YT', baseUrl: sim.base('youtube'), commissionRateBps: 500 };
  expect((await svc.api(path, { json: { ...body, credentials: CREDENTIALS.youtube } })).status).toBe(201);
  // Made a target of before incarnations: its record without one (as an earlier version stored it).
  const { key, field } = svc.rt.partners.targetField('trl', 'wl');
  const { incarnation: _dropped, ...legacy } = JSON.parse((await svc.rt.redis.hget(key, field))!) as Record<string, unknown>;
  await svc.rt.redis.hset(key, field, JSON.stringify(legacy));
  const effectsBefore = (await sim.effects('youtube')).length;

  // Each platform call answered after 2 s (within PLATFORM_TIMEOUT_MS: the call in flight succeeds).
  await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 2_000 });
  try {
    expect((await sendEvent(svc, 'trl', secret, showEvent('show.scheduled', sampleShow('late'), '2026-11-24T17:00:00Z'))).status).toBe(202);
    // The run saved `provisioning` (no incarnation: its target has none) and its create call is in flight.
    await waitFor(async () => (await svc.rt.shows.getMirror('trl', 'late', 'wl'))?.state === 'provisioning', 20_000, 20);
    expect((await svc.api(`${path}/wl?force=true`, { method: 'DELETE' })).status).toBe(204);
    expect((await svc.api(`${path}?verify=false`, { json: { ...body, credentials: OTHER_CREDENTIALS.youtube } })).status).toBe(201);
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 0 });
  }
  const incarnation = (await svc.rt.partners.getTarget('trl', 'wl'))!.incarnation;
  expect(incarnation).toBeDefined();

  // The create in flight returns (a show on the old account, which the operator ends by hand: ?force).
  const oldId = await waitFor(async () => (await sim.effects('youtube')).slice(effectsBefore).find((e) => e.type === 'show.created')?.externalId);
  // The new target has a broadcast of its own, not that one.
  const own = await waitFor(async () => {
    const m = await mirrorOf('trl', 'late', 'wl');
    return m?.state === 'ready' && m.externalId ? m : undefined;
  });
  expect(own.externalId).not.toBe(oldId);
  // What is stored is the new target's mirror (stamped), and nothing but the create touched the old show.
  const stored = await svc.rt.shows.getMirror('trl', 'late', 'wl');
  expect(stored).toMatchObject({ incarnation, remote: { externalId: own.externalId } });
  const after = (await sim.effects('youtube')).slice(effectsBefore);
  expect(after.filter((e) => e.externalId === oldId).map((e) => e.type)).toEqual(['show.created']);
  expect(after.filter((e) => e.type === 'show.created').map((e) => e.externalId)).toEqual([oldId, own.externalId]);
}, 60_000);
