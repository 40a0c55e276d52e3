/**
 * A sync run whose platform call is refused even with a fresh token (AuthExpiredError) made the next
 * run refresh by deleting the target's whole token record: with a platform that rotates refresh tokens
 * (a Whatnot app), the rotated refresh token went with it, the next refresh sent the credentials' one
 * (already rotated away: invalid_grant) and the mirror failed for good ("authorisation lost"). Now only
 * the stored access token is marked expired. Real service and workers, real Redis, the Whatnot
 * simulator over HTTP (rotateRefreshTokens, the token_expired fault).
 */
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { addWhatnotAppTarget, rotatingWhatnotPerFile } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
rotatingWhatnotPerFile((started) => ({ svc, sim } = started));

test('after a run refused even with a fresh token, the next run refreshes with the rotated refresh token and pins (the mirror does not fail)', async () => {
  const secret = await createPartner(svc, 'ar');
  await addWhatnotAppTarget(svc, sim, 'ar', 'wn');
  const mirror = () => svc.rt.shows.getMirror('ar', 'a1', 'wn');

  expect((await sendEvent(svc, 'ar', secret, showEvent('show.live', sampleShow('a1', { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  await waitFor(async () => (await mirror())?.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Rotating app' })) as { externalId: string };
  expect((await svc.api('/v1/partners/ar/shows/a1/mirrors/wn', { method: 'PUT', json: { externalId } })).status).toBe(200);
  await waitFor(async () => (await mirror())?.state === 'live');
  await settled(syncQueues(svc));
  // Whatnot rotated the refresh token: the credentials' one is dead, the record holds the live one.
  const rotated = (await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'wn').get())?.refreshToken;
  expect(rotated).toMatch(/^wn_sim_refresh_/);

  // Every access token refused: the pin's run refreshes once, is refused again (AuthExpiredError), and is retried.
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['token_expired'] });
  try {
    expect((await sendEvent(svc, 'ar', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 'a1', productId: 'p1' } })).status).toBe(202);
    await waitFor(async () => /refused the access token even after a refresh/.test((await mirror())?.lastError ?? ''), 20_000, 10);
  } finally {
    await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  }
  const stored = await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'wn').get();
  expect(stored?.refreshToken).toMatch(/^wn_sim_refresh_/);

  // The retry refreshes with the rotated refresh token (old code: the credentials' one, invalid_grant → failed).
  await waitFor(async () => {
    const m = await mirror();
    expect({ state: m?.state, lastError: m?.lastError }).not.toMatchObject({ state: 'failed' });
    return m?.pins['p1']?.state === 'pinned';
  }, 30_000);
  await settled(syncQueues(svc));
  const m = (await mirror())!;
  expect(m.state).toBe('live');
  expect(m.lastError).toBeNull();
  expect((await sim.effects('whatnot')).filter((e) => e.type === 'product.pinned' && e.externalId === externalId && e.productId === 'p1')).toHaveLength(1);
}, 60_000);
