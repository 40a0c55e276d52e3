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

simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: youtubeEncoderNow });

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
