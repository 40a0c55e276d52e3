/**
 * A PATCH that sends a Whatnot app's credentials again (to change webhookSecret, or the same ones)
 * carries the refresh token the seller's authorisation gave at first; Whatnot has rotated it since
 * (the target's token record holds the live one). The check ran with the body's, dead: invalid_grant
 * → 422; with ?verify=false the token record was dropped and the target's authorisation lost for
 * good. Now the same grant keeps its record, and the check starts from it. Real service and workers,
 * real Redis, the Whatnot simulator over HTTP (rotateRefreshTokens).
 */
import { randomBytes } from 'node:crypto';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import type { AccessToken } from '../../src/targets/target.adapter.js';
import { rotatingWhatnotPerFile } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import { NO_TOKEN_RECORD } from '../helpers/whatnot-grant.js';

let svc: TestService;
let sim: TestSim;
rotatingWhatnotPerFile((started) => ({ svc, sim } = started));

const record = (targetId: string): Promise<AccessToken | null> => new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, targetId).get();
const whsec = (): string => `whsec_${randomBytes(24).toString('base64')}`;

/** A Whatnot app target with its own seller (a refresh token the simulator has not seen: a new authorisation). */
async function appTarget(partner: string, id: string): Promise<{ credentials: Record<string, string>; secret: string }> {
  const secret = await createPartner(svc, partner);
  const credentials = { clientId: `app-${id}-${randomBytes(4).toString('hex')}`, clientSecret: 'app-secret', refreshToken: `rt-${randomBytes(12).toString('hex')}`, webhookSecret: whsec() };
  const r = await svc.api(`/v1/partners/${partner}/targets`, { json: { id, platform: 'whatnot', name: 'Whatnot app', credentials, baseUrl: sim.base('whatnot'), commissionRateBps: 800 } });
  expect(r.status).toBe(201);
  // The check at creation refreshed: Whatnot rotated the refresh token, the credentials' one is dead.
  const rotated = (await record(id))?.refreshToken;
  expect(rotated).toMatch(/^wn_sim_refresh_/);
  return { credentials, secret };
}

/** The target still reaches Whatnot: a live show's mirror is linked to a show made there (its access tokens all expired first). */
async function stillSyncs(partner: string, targetId: string, secret: string, showId: string): Promise<void> {
  await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
  expect((await sendEvent(svc, partner, secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  const mirror = () => svc.rt.shows.getMirror(partner, showId, targetId);
  await waitFor(async () => (await mirror())?.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: `${showId} on Whatnot` })) as { externalId: string };
  const linked = await svc.api(`/v1/partners/${partner}/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId } });
  expect(linked.status).toBe(200);
  await waitFor(async () => {
    const m = await mirror();
    expect({ state: m?.state, lastError: m?.lastError }).not.toMatchObject({ state: 'failed' });
    return m?.state === 'live';
  }, 30_000);
  await settled(syncQueues(svc));
  expect((await mirror())?.lastError).toBeNull();
}

test("PATCH with the app's original credentials (a new webhookSecret), checked: 200, the check refreshes with the rotated token, and the target still syncs", async () => {
  const { credentials, secret } = await appTarget('pa', 'wa');
  const rotated = (await record('wa'))!;
  // The check must refresh (its access token is refused): with the rotated refresh token, not the body's.
  await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
  const r = await svc.api('/v1/partners/pa/targets/wa', { method: 'PATCH', json: { credentials: { ...credentials, webhookSecret: whsec() } } });
  expect(r.status).toBe(200);
  const after = (await record('wa'))!;
  expect(after.refreshToken).toMatch(/^wn_sim_refresh_/);
  expect(after.refreshToken).not.toBe(rotated.refreshToken);
  expect(after.accessToken).not.toBe(rotated.accessToken);
  await stillSyncs('pa', 'wa', secret, 'sa');
}, 60_000);

test('PATCH with the same credentials and ?verify=false keeps the token record (the rotated refresh token): the target still syncs', async () => {
  const { credentials, secret } = await appTarget('pb', 'wb');
  const rotated = (await record('wb'))!;
  const r = await svc.api('/v1/partners/pb/targets/wb?verify=false', { method: 'PATCH', json: { credentials } });
  expect(r.status).toBe(200);
  expect((await record('wb'))?.refreshToken).toBe(rotated.refreshToken);
  await stillSyncs('pb', 'wb', secret, 'sb');
}, 60_000);

test('a new grant (another refresh token) replaces the record: the check refreshes with it', async () => {
  const { credentials } = await appTarget('pc', 'wc');
  const rotated = (await record('wc'))!;
  const fresh = `rt-${randomBytes(12).toString('hex')}`;
  const r = await svc.api('/v1/partners/pc/targets/wc', { method: 'PATCH', json: { credentials: { ...credentials, refreshToken: fresh } } });
  expect(r.status).toBe(200);
  const after = (await record('wc'))!;
  // The check refreshed with the new grant's token (Whatnot rotated it in turn); the old record is gone.
  expect(after.refreshToken).toMatch(/^wn_sim_refresh_/);
  expect(after.refreshToken).not.toBe(rotated.refreshToken);
  expect(after.accessToken).not.toBe(rotated.accessToken);
  // Saved unchecked, a new grant starts without a token (the body's refresh token is the live one): the
  // record only names the save (targets.patch-unchecked-grant-refresh.test.ts).
  const unchecked = await svc.api('/v1/partners/pc/targets/wc?verify=false', { method: 'PATCH', json: { credentials: { ...credentials, refreshToken: `rt-${randomBytes(12).toString('hex')}` } } });
  expect(unchecked.status).toBe(200);
  expect(await record('wc')).toEqual(NO_TOKEN_RECORD);
}, 60_000);

test('PATCH of the same grant while a worker rotates it: the check loses the race (invalid_grant), refreshes again with the live refresh token the worker stored, 200, and the target still syncs', async () => {
  // The check refreshed with the refresh token of the record it read; a worker refreshed with the same
  // one meanwhile, Whatnot rotated it, and the check's was invalid_grant: a 422 though nothing was
  // wrong. As the workers do (oauth2.ts), a refused refresh token whose record now holds another one is
  // retried once with that one.
  const { credentials, secret } = await appTarget('pd', 'wd');
  const read = (await record('wd'))!;
  // The check must refresh (its access token is refused), and every request waits a while at Whatnot:
  // the worker's refresh, sent first, is answered before the check's.
  await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
  await sim.control('PUT', '/_sim/whatnot/limits', { latencyMs: 1_000 });
  try {
    const seq = ((await sim.control('GET', '/_sim/whatnot/requests?since=0')) as SimRequestRecord[]).at(-1)?.seq ?? 0;
    const worker = (async () => {
      const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: credentials.clientId!, client_secret: credentials.clientSecret!, refresh_token: read.refreshToken! });
      const res = await fetch(`${sim.base('whatnot')}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      expect(res.status).toBe(200);
      const t = (await res.json()) as { access_token: string; expires_in: number; refresh_token: string };
      await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'wd').set({ accessToken: t.access_token, expiresAt: Date.now() + t.expires_in * 1000, refreshToken: t.refresh_token });
      return t.refresh_token;
    })();
    const patched = svc.api('/v1/partners/pd/targets/wd', { method: 'PATCH', json: { credentials: { ...credentials, webhookSecret: whsec() } } });
    const [workerRefresh, r] = await Promise.all([worker, patched]);
    expect({ status: r.status, body: r.status === 200 ? null : await r.text() }).toEqual({ status: 200, body: null });
    // The race happened: the check's refresh with the token it read was refused (invalid_grant).
    const tokenCalls = ((await sim.control('GET', `/_sim/whatnot/requests?since=${seq}`)) as SimRequestRecord[]).filter((q) => q.path === '/oauth/token');
    expect(tokenCalls.map((q) => q.status)).toEqual([200, 400, 200]);
    const after = (await record('wd'))!;
    // The record holds what the check's second refresh got (rotated from the worker's), not a dead one.
    expect(after.refreshToken).toMatch(/^wn_sim_refresh_/);
    expect([read.refreshToken, workerRefresh]).not.toContain(after.refreshToken);
  } finally {
    await sim.control('PUT', '/_sim/whatnot/limits', { latencyMs: 0 });
  }
  await stillSyncs('pd', 'wd', secret, 'sd');
}, 60_000);

test("TikTok: the app secret rotated in Partner Center is fixed by a PATCH of appSecret alone: the token record (the only live refresh token) survives, checked with the new secret", async () => {
  // Refused app secrets no longer drop the record (the workers keep it), but a PATCH with the new
  // secret was a new grant: checked from the credentials' refresh token (rotated away: 422), and
  // under ?verify=false the record was dropped, the shop's authorisation lost for good.
  const appKey = `6a6pe${randomBytes(4).toString('hex')}`;
  await sim.control('POST', '/_sim/tiktok/apps', { appKey, appSecret: 'first-secret' });
  const shop = (await sim.control('POST', '/_sim/tiktok/accounts', { appKey })) as { refreshToken: string; shopCipher: string };
  const dead = `revoked-ROW_${randomBytes(8).toString('hex')}`;
  await sim.control('POST', '/_sim/tiktok/revocations', { token: dead });
  await createPartner(svc, 'pe');
  const credentials = { appKey, appSecret: 'first-secret', refreshToken: dead, shopCipher: shop.shopCipher };
  const created = await svc.api('/v1/partners/pe/targets?verify=false', { json: { id: 'te', platform: 'tiktok', name: 'TikTok', credentials, baseUrl: sim.base('tiktok'), commissionRateBps: 800 } });
  expect(created.status).toBe(201);
  // TikTok rotated the credentials' refresh token: the live one is in the record only.
  await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, 'te').set({ accessToken: 'TTP_old', expiresAt: Date.now() + 86_400_000, refreshToken: shop.refreshToken });
  await sim.control('POST', '/_sim/tiktok/apps', { appKey, appSecret: 'second-secret' });

  // A wrong secret is refused (checked with it, not passed on the record's access token); the record stays.
  const wrong = await svc.api('/v1/partners/pe/targets/te', { method: 'PATCH', json: { credentials: { ...credentials, appSecret: 'not-the-secret' } } });
  expect(wrong.status).toBe(422);
  expect(await wrong.text()).toContain('app_secret');
  expect((await record('te'))?.refreshToken).toBe(shop.refreshToken);

  // Checked: one refresh from the record's refresh token with the new secret.
  const r = await svc.api('/v1/partners/pe/targets/te', { method: 'PATCH', json: { credentials: { ...credentials, appSecret: 'second-secret' } } });
  expect({ status: r.status, body: r.status === 200 ? null : await r.text() }).toEqual({ status: 200, body: null });
  const after = (await record('te'))!;
  expect(after.refreshToken).toBe(shop.refreshToken);
  expect(after.accessToken).toMatch(/^TTP_/);
  expect(after.accessToken).not.toBe('TTP_old');

  // Rotated again and saved unchecked: the record is left as it is.
  await sim.control('POST', '/_sim/tiktok/apps', { appKey, appSecret: 'third-secret' });
  const unchecked = await svc.api('/v1/partners/pe/targets/te?verify=false', { method: 'PATCH', json: { credentials: { ...credentials, appSecret: 'third-secret' } } });
  expect(unchecked.status).toBe(200);
  expect(await record('te')).toEqual(after);
}, 60_000);
