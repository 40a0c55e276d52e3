/**
 * The pre-show readiness check refreshes the target's token now (not at go-live). It did so by
 * deleting the token record: with a platform that rotates refresh tokens (a Whatnot app), the rotated
 * refresh token went with it, the check's refresh sent the credentials' one (already rotated away:
 * invalid_grant), and the target lost its authorisation for good. Now it marks only the access token
 * expired. Real service and workers, real Redis, the Whatnot simulator over HTTP (rotateRefreshTokens).
 */
import type { Readiness } from '../../src/mirror/readiness.service.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { addWhatnotAppTarget, rotatingWhatnotPerFile } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
rotatingWhatnotPerFile((started) => ({ svc, sim } = started));

test("the readiness check's refresh uses the rotated refresh token: the token check passes and the target keeps its authorisation", async () => {
  const secret = await createPartner(svc, 'rr');
  await addWhatnotAppTarget(svc, sim, 'rr', 'wn');
  const soon = new Date(Date.now() + 20 * 60_000).toISOString();
  expect((await sendEvent(svc, 'rr', secret, showEvent('show.scheduled', sampleShow('r1', { scheduledAt: soon }), new Date().toISOString()))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('rr', 'r1', 'wn'))?.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Rotating app' })) as { externalId: string };
  expect((await svc.api('/v1/partners/rr/shows/r1/mirrors/wn', { method: 'PUT', json: { externalId } })).status).toBe(200);
  await waitFor(async () => (await svc.rt.shows.getMirror('rr', 'r1', 'wn'))?.state === 'ready');
  await settled(syncQueues(svc));
  const store = (): RedisTokenStore => new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'wn');
  const before = await store().get();
  expect(before?.refreshToken).toMatch(/^wn_sim_refresh_/);

  expect(await svc.rt.readiness.sweep()).toEqual({ checked: 1 });
  const view = (await (await svc.api('/v1/partners/rr/shows/r1')).json()) as { mirrors: { targetId: string; readiness?: Readiness }[] };
  const readiness = view.mirrors.find((m) => m.targetId === 'wn')!.readiness!;
  expect(readiness.checks.find((c) => c.name === 'token')).toMatchObject({ ok: true });
  // Refreshed by the check (with the rotated refresh token, which Whatnot rotated once more).
  const after = await store().get();
  expect(after?.accessToken).not.toBe(before?.accessToken);
  expect(after?.refreshToken).toMatch(/^wn_sim_refresh_/);
  expect(after?.refreshToken).not.toBe(before?.refreshToken);
  expect((await svc.rt.shows.getMirror('rr', 'r1', 'wn'))?.state).toBe('ready');
}, 60_000);
