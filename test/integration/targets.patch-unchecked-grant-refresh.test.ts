/**
 * A target PATCH that saves new credentials with `?verify=false` while a worker's refresh of the OLD
 * grant is under way. The PATCH deleted the token record (it had no token of the new grant to put
 * there); the refresh, answered after it, found no record and took that for its own case ("the record
 * went while this refresh was under way": RedisTokenStore.refreshed), and stored the old grant's fresh
 * access token and rotated refresh token over the new credentials: the workers went on with the old
 * seller's grant (its access token for its hour), and the new credentials were not used. Now the PATCH
 * leaves a record that names its save (no token), and only a refresh that started from that record is
 * stored over it (compare-and-set on the record). Both starts: the old grant's record (a checked
 * create), and no token record at all (an unchecked create: the worker's first refresh).
 * That record is no cached token: an access token given with the credentials is still used first. And
 * a PATCH of baseUrl alone leaves the same record (documented: the host is the token endpoint too, so
 * the old host's tokens are not carried to the new one; README "The same OAuth grant sent again").
 *
 * Real service, real Redis, the Whatnot simulator (rotating refresh tokens) over HTTP behind a proxy
 * that holds the worker's refresh; the worker is a Whatnot adapter on the service's token store.
 */
import type { AccessToken } from '../../src/targets/target.adapter.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { buildWhatnotAdapter } from '../../src/targets/whatnot/whatnot.adapter.js';
import { buildAdapterContext } from '../helpers/adapter-context.js';
import { NO_TOKEN_RECORD, refreshStatus, tokenRecord, whatnotApp, whatnotGrantRigPerFile } from '../helpers/whatnot-grant.js';

const PLATFORM_TIMEOUT_MS = 10_000;

const rig = whatnotGrantRigPerFile(PLATFORM_TIMEOUT_MS, 'pr');

const record = (targetId: string): Promise<AccessToken | null> => tokenRecord(rig.svc, targetId);

/** A worker process's Whatnot adapter for the target with `credentials`, its tokens in the service's Redis. */
function worker(targetId: string, credentials: Record<string, string>) {
  const t = buildAdapterContext({ platform: 'whatnot', baseUrl: rig.proxy.url, credentials, targetId, partnerId: 'pr', timeoutMs: PLATFORM_TIMEOUT_MS });
  t.ctx.tokens = new RedisTokenStore(rig.svc.rt.redis, rig.svc.rt.keys, rig.svc.rt.box, targetId);
  return buildWhatnotAdapter(t.ctx);
}

test.each([
  ['the old grant has a token record (a checked create)', 'wc', 'true'],
  ['the old grant has no token record yet (an unchecked create: the first refresh)', 'wu', 'false'],
])("a refresh of the old grant answered after a ?verify=false PATCH of a new grant is not stored over it: %s", async (_name, id, verify) => {
  const old = whatnotApp('old');
  const created = await rig.svc.api(`/v1/partners/pr/targets?verify=${verify}`, { json: { id, platform: 'whatnot', name: 'Whatnot app', credentials: old, baseUrl: rig.proxy.url, commissionRateBps: 800 } });
  expect(created.status).toBe(201);
  const before = await record(id);
  if (verify === 'true') {
    expect(before?.refreshToken).toMatch(/^wn_sim_refresh_/);
    // Its access token is due: the worker's next call refreshes first.
    await new RedisTokenStore(rig.svc.rt.redis, rig.svc.rt.keys, rig.svc.rt.box, id).expireAccess();
  }

  // A worker of the old grant refreshes; its refresh is held at the token endpoint...
  const gate = rig.proxy.gateNext((method, path) => method === 'POST' && path.endsWith('/oauth/token'));
  const call = worker(id, old).verifyCredentials!();
  await gate.arrived;
  // ...while the operator saves another app's grant, unchecked.
  const next = whatnotApp('new');
  const patched = await rig.svc.api(`/v1/partners/pr/targets/${id}?verify=false`, { method: 'PATCH', json: { credentials: next } });
  expect(patched.status).toBe(200);
  // The old grant's refresh is answered (Whatnot rotates its refresh token) and the worker's call goes on.
  gate.release();
  await expect(call).resolves.toBeInstanceOf(Object);

  // The record holds none of the old grant's tokens (before: the refresh token it rotated to, and a
  // fresh access token of the old seller's)...
  const after = await record(id);
  expect(after?.refreshToken).toBeUndefined();
  expect(after?.expiresAt ?? 0).toBeLessThanOrEqual(Date.now());
  // ...and a worker of the new credentials works with them: it refreshes with the new grant, and
  // what it stores refreshes with the new app (the old grant's record: its access token was used,
  // and its refresh token is another app's, invalid_grant).
  await expect(worker(id, next).verifyCredentials!()).resolves.toEqual({ accountId: expect.any(String) });
  const kept = await record(id);
  expect(kept?.refreshToken).toMatch(/^wn_sim_refresh_/);
  expect(await refreshStatus(rig.sim.base('whatnot'), next, kept!)).toBe(200);
}, 60_000);

test('the record that names credentials saved unchecked is no cached token: the access token given with them is used first', async () => {
  // An access token of the app's grant, given with its credentials (Whatnot: `accessToken` beside the
  // OAuth fields, used until Whatnot refuses it).
  const creds = whatnotApp('given');
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: creds.clientId!, client_secret: creds.clientSecret!, refresh_token: creds.refreshToken! });
  const issued = (await (await fetch(`${rig.sim.base('whatnot')}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).json()) as { access_token: string; refresh_token?: string };
  const credentials = { ...creds, accessToken: issued.access_token, refreshToken: issued.refresh_token ?? creds.refreshToken! };
  const created = await rig.svc.api('/v1/partners/pr/targets?verify=false', { json: { id: 'wg', platform: 'whatnot', name: 'Whatnot app', credentials, baseUrl: rig.proxy.url, commissionRateBps: 800 } });
  expect(created.status).toBe(201);
  const saved = await record('wg');
  expect(saved?.accessToken).toBe('');

  // The worker's call goes out with the given token, no refresh: the record is left as it was.
  await expect(worker('wg', credentials).verifyCredentials!()).resolves.toEqual({ accountId: expect.any(String) });
  expect(await record('wg')).toEqual(saved);
}, 60_000);

test("a PATCH of baseUrl alone starts from the credentials (as documented): the old host's tokens are not carried to the new one", async () => {
  // The old host (the proxy) rotated the app's refresh token; the new host is the same simulator at
  // another address, where the credentials' refresh token is dead by then.
  const creds = whatnotApp('host');
  expect((await rig.svc.api('/v1/partners/pr/targets', { json: { id: 'wb', platform: 'whatnot', name: 'Whatnot app', credentials: creds, baseUrl: rig.proxy.url, commissionRateBps: 800 } })).status).toBe(201);
  const before = await record('wb');
  expect(before?.refreshToken).toMatch(/^wn_sim_refresh_/);

  // Checked: from the credentials' refresh token, refused (422), nothing changed.
  const checked = await rig.svc.api('/v1/partners/pr/targets/wb', { method: 'PATCH', json: { baseUrl: rig.sim.base('whatnot') } });
  expect(checked.status).toBe(422);
  expect((await rig.svc.rt.partners.getTarget('pr', 'wb'))?.baseUrl).toBe(rig.proxy.url);
  expect(await record('wb')).toEqual(before);
  // Unchecked: saved, and the record holds no token of the old host.
  const unchecked = await rig.svc.api('/v1/partners/pr/targets/wb?verify=false', { method: 'PATCH', json: { baseUrl: rig.sim.base('whatnot') } });
  expect(unchecked.status).toBe(200);
  expect(await record('wb')).toEqual(NO_TOKEN_RECORD);
}, 60_000);
