/**
 * A TikTok pin (the promotion link: one request) whose access-token refresh failed was never sent, and
 * the next attempt sends it at once. The TikTok client let the refresh's RetryableError through as it
 * was, not marked `unsent` (YouTube's client marks it), and the step was not a single-request one: it
 * stayed `started`, and the next attempt waited out PLATFORM_SETTLE_MS (about 50 s in production) for
 * a request that never left.
 *
 * Real redis-server, the real SyncService and TikTok adapter, the TikTok simulator behind a proxy that
 * resets the connection of the token refresh (a transient failure). The test plays the runs as BullMQ
 * would.
 */
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { useLateRig } from '../helpers/late-rig.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';

/** Far above the test's runs: an attempt that waits it out shows as a delay, not as a slow pass. */
const SETTLE_MS = 30_000;

const rig = useLateRig({
  limits: { tiktok: { requestsPerWindow: null } },
  env: { PLATFORM_TIMEOUT_MS: '2000', PLATFORM_SETTLE_MS: String(SETTLE_MS) },
  partnerId: 'ttu',
});

test('a promotion link whose token refresh failed is sent at once by the next attempt, without a settle wait', async () => {
  const { svc, sim, proxy } = rig;
  const r = await svc.api('/v1/partners/ttu/targets', {
    json: { id: 'tt', platform: 'tiktok', name: 'TikTok', credentials: CREDENTIALS.tiktok, baseUrl: `${proxy.url}/tiktok`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const showId = 'tt-live';
  const job = { partnerId: 'ttu', showId, targetId: 'tt' };
  expect((await sendEvent(svc, 'ttu', rig.secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect(await rig.converge(job, 'create')).toEqual({ kind: 'done', state: 'action_required' });
  const { externalId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'room' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/ttu/shows/${showId}/mirrors/tt`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect(await rig.converge(job, 'link')).toMatchObject({ kind: 'done' });

  // The credential check cached an access token: gone, so the pin's call needs a refresh first.
  await svc.rt.redis.del(svc.rt.keys.targetToken('tt'));
  expect((await sendEvent(svc, 'ttu', rig.secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId, productId: 'p1' } })).status).toBe(202);
  const dropped = proxy.dropped.length;
  proxy.dropNext((method, path) => method === 'GET' && path === '/tiktok/api/v2/token/refresh');
  expect(await svc.rt.syncService.sync(job, { token: 'pin-1' })).toMatchObject({ kind: 'delay' });
  expect(proxy.dropped.slice(dropped)).toEqual([expect.objectContaining({ method: 'GET' })]);
  expect(await sim.effects('tiktok')).not.toContainEqual(expect.objectContaining({ type: 'product.pinned' }));

  // The next attempt, at once: the link is generated, no settle wait before it.
  const next = await svc.rt.syncService.sync(job, { token: 'pin-2' });
  expect(next).toMatchObject({ kind: 'done' });
  const m = (await svc.rt.shows.getMirror('ttu', showId, 'tt'))!;
  expect(m.pins['p1']?.state).toBe('pinned');
  expect((await sim.effects('tiktok')).filter((e) => e.type === 'product.pinned')).toHaveLength(1);
}, 60_000);

// The other half: TikTok refuses the cached access token (revoked), and the refresh after that refusal
// fails. The refused request did nothing, so the call is as unsent as one whose first refresh failed.
test('a promotion link whose token TikTok refused, and whose refresh then failed, is sent at once by the next attempt', async () => {
  const { svc, sim, proxy } = rig;
  const r = await svc.api('/v1/partners/ttu/targets', {
    json: { id: 'tt2', platform: 'tiktok', name: 'TikTok 2', credentials: CREDENTIALS.tiktok, baseUrl: `${proxy.url}/tiktok`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const showId = 'tt-live-2';
  const job = { partnerId: 'ttu', showId, targetId: 'tt2' };
  expect((await sendEvent(svc, 'ttu', rig.secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect(await rig.converge(job, 'create2')).toEqual({ kind: 'done', state: 'action_required' });
  const { externalId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'room 2' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/ttu/shows/${showId}/mirrors/tt2`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect(await rig.converge(job, 'link2')).toMatchObject({ kind: 'done' });

  // A cached token TikTok does not know (revoked): the pin's call is refused for it, then refreshes.
  const tokens = new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'tt2');
  const cached = await tokens.get();
  await tokens.set({ accessToken: 'TTP_revoked_by_test', expiresAt: Date.now() + 3_600_000, ...(cached?.refreshToken ? { refreshToken: cached.refreshToken } : {}) });
  expect((await sendEvent(svc, 'ttu', rig.secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId, productId: 'p2' } })).status).toBe(202);
  const dropped = proxy.dropped.length;
  proxy.dropNext((method, path) => method === 'GET' && path === '/tiktok/api/v2/token/refresh');
  expect(await svc.rt.syncService.sync(job, { token: 'pin2-1' })).toMatchObject({ kind: 'delay' });
  expect(proxy.dropped.slice(dropped)).toEqual([expect.objectContaining({ method: 'GET' })]);
  expect(await sim.effects('tiktok')).not.toContainEqual(expect.objectContaining({ type: 'product.pinned', productId: 'p2' }));

  const next = await svc.rt.syncService.sync(job, { token: 'pin2-2' });
  expect(next).toMatchObject({ kind: 'done' });
  expect((await svc.rt.shows.getMirror('ttu', showId, 'tt2'))!.pins['p2']?.state).toBe('pinned');
}, 60_000);

// A refresh that fails for good (a dead refresh token: TikTok answers "can not find related auth
// record", a PermanentError for the mirror) sent nothing either. Before, only a RetryableError was
// marked unsent: the promotion_link step stayed started, so once the operator had re-authorised and
// resynced, the first attempt waited out PLATFORM_SETTLE_MS for a request that never left.
test('a promotion link whose token refresh was refused for good is sent at once after the operator re-authorises and resyncs', async () => {
  const { svc, sim } = rig;
  const r = await svc.api('/v1/partners/ttu/targets', {
    json: { id: 'tt3', platform: 'tiktok', name: 'TikTok 3', credentials: CREDENTIALS.tiktok, baseUrl: `${sim.url}/tiktok`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const showId = 'tt-live-3';
  const job = { partnerId: 'ttu', showId, targetId: 'tt3' };
  expect((await sendEvent(svc, 'ttu', rig.secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect(await rig.converge(job, 'create3')).toEqual({ kind: 'done', state: 'action_required' });
  const { externalId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'room 3' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/ttu/shows/${showId}/mirrors/tt3`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect(await rig.converge(job, 'link3')).toMatchObject({ kind: 'done' });

  // The cached access token is about to expire (the client refreshes it first: 5 min early) and its
  // refresh token is one TikTok no longer accepts.
  const tokens = new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'tt3');
  await sim.control('POST', '/_sim/tiktok/revocations', { token: 'ROW_revoked_by_the_seller' });
  await tokens.set({ accessToken: 'TTP_expiring_by_test', expiresAt: Date.now() + 60_000, refreshToken: 'ROW_revoked_by_the_seller' });
  expect((await sendEvent(svc, 'ttu', rig.secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId, productId: 'p1' } })).status).toBe(202);
  expect(await svc.rt.syncService.sync(job, { token: 'pin3-1' })).toEqual({ kind: 'done', state: 'failed' });
  const failed = (await svc.rt.shows.getMirror('ttu', showId, 'tt3'))!;
  expect(failed.lastError).toMatch(/authorisation lost: the token refresh was refused/);
  expect(await sim.effects('tiktok')).not.toContainEqual(expect.objectContaining({ type: 'product.pinned', externalId }));

  // The operator re-authorises (the shop's credentials again) and resyncs: the pin goes out at once.
  expect((await svc.api('/v1/partners/ttu/targets/tt3', { method: 'PATCH', json: { credentials: CREDENTIALS.tiktok } })).status).toBe(200);
  expect((await svc.api(`/v1/partners/ttu/shows/${showId}/mirrors/tt3/resync`, { method: 'POST' })).status).toBe(202);
  const t0 = Date.now();
  const next = await svc.rt.syncService.sync(job, { token: 'pin3-2' });
  expect(next).toMatchObject({ kind: 'done' });
  expect(Date.now() - t0).toBeLessThan(SETTLE_MS / 2);
  expect((await svc.rt.shows.getMirror('ttu', showId, 'tt3'))!.pins['p1']?.state).toBe('pinned');
  expect((await sim.effects('tiktok')).filter((e) => e.type === 'product.pinned' && e.externalId === externalId)).toHaveLength(1);
}, 60_000);
