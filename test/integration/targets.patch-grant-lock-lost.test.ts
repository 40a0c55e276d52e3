/**
 * A target PATCH's grant lock (`{t:<target>}:grant-lock`) going wrong must not cost the target its
 * authorisation or change the PATCH's answer.
 *
 * 1. The lease lost after a check of the same grant: the check refreshed from the token record's
 *    refresh token, which Whatnot rotates; the PATCH answered 409 and wrote nothing, so the record kept
 *    the refresh token Whatnot had just retired (invalid_grant: the authorisation lost). Now the target
 *    is still not written (409), but the record takes the rotated refresh token (compare-and-set).
 *    The lease is taken away here (another holder's nonce put on the key while the check is held at
 *    the token endpoint), as a lease that ran out during a stalled process would be.
 * 2. A release that fails (Redis down at that moment): it answered 503 for a PATCH that took effect
 *    (no audit, no kick), and replaced a 404 with a 5xx. Now releases are best effort (the lease frees
 *    the lock). The failure is made in the verifier's lock object (the service's own, not Redis).
 *
 * 3. The lease renewed while the PATCH runs (RedisTokenStore.lockGrant's timer, every third of a
 *    lease): a check held past its lease keeps the lock, a second PATCH meanwhile waits a lease for it
 *    and answers 409 (nothing changed), and the first saves (200). Without the renewal the lease ran
 *    out under the check: the second took the lock and saved, and the first answered 409. The lease is
 *    made short here (the verifier's lock taken with LEASE_MS; the service's is minutes), not the check
 *    long.
 *
 * Real service, real Redis, the Whatnot simulator (rotating refresh tokens) behind a proxy that holds
 * the check's refresh.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import type { AccessToken } from '../../src/targets/target.adapter.js';
import type { LateProxy } from '../helpers/late-proxy.js';
import { createPartner, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { refreshStatus, startWhatnotGrantRig, tokenRecord, whatnotApp, whsec, type WhatnotGrantRig } from '../helpers/whatnot-grant.js';

let svc: TestService;
let sim: TestSim;
let proxy: LateProxy;
let rig: WhatnotGrantRig | undefined;
beforeAll(async () => {
  rig = await startWhatnotGrantRig(20_000);
  ({ svc, sim, proxy } = rig);
  await createPartner(svc, 'pr');
}, 60_000);
afterAll(() => rig?.close());

const record = (targetId: string): Promise<AccessToken | null> => tokenRecord(svc, targetId);
/** A grant hold's record (`<lease end ms>:<nonce>`, RedisTokenStore.lockGrant): its nonce, and its lease left by Redis's clock. */
const nonceOf = (hold: string | null): string | undefined => hold?.split(':')[1];
async function leaseLeft(key: string): Promise<number> {
  const [s, us] = await svc.rt.redis.time();
  return Number((await svc.rt.redis.get(key))?.split(':')[0]) - (Number(s) * 1000 + Math.floor(Number(us) / 1000));
}
const app = whatnotApp;
const refreshes = (credentials: Record<string, string>, token: AccessToken): Promise<number> => refreshStatus(sim.base('whatnot'), credentials, token);

test('a PATCH of the same grant that lost its lease during the check keeps the rotated refresh token (409, target not written)', async () => {
  const original = app('x');
  const created = await svc.api('/v1/partners/pr/targets', { json: { id: 'wl', platform: 'whatnot', name: 'Whatnot app', credentials: original, baseUrl: proxy.url, commissionRateBps: 800 } });
  expect(created.status).toBe(201);
  const before = await record('wl');
  expect(before?.refreshToken).toMatch(/^wn_sim_refresh_/);

  // The same grant again (a new webhookSecret): its check must refresh from the record (access token refused).
  await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
  const gate = proxy.gateNext((method, path) => method === 'POST' && path.endsWith('/oauth/token'));
  const patch = svc.api('/v1/partners/pr/targets/wl', { method: 'PATCH', json: { credentials: { ...original, webhookSecret: whsec() } } });
  await gate.arrived;
  // The lease gone meanwhile, and the lock someone else's.
  await svc.rt.redis.set(svc.rt.keys.targetGrantLock('wl'), 'another-holder', 'PX', 60_000);
  gate.release();
  const res = await patch;
  expect(res.status).toBe(409);

  // The target was not written (its credentials are the original ones)...
  const target = await svc.rt.partners.getTarget('pr', 'wl');
  expect(svc.rt.partners.openCredentials(target!)).toEqual(original);
  // ...but the token record holds the refresh token Whatnot rotated to, which still refreshes.
  const after = await record('wl');
  expect(after?.refreshToken).toMatch(/^wn_sim_refresh_/);
  expect(after?.refreshToken).not.toBe(before?.refreshToken);
  expect(await refreshes(original, after!)).toBe(200);
  // The other holder's lock is left alone.
  expect(await svc.rt.redis.get(svc.rt.keys.targetGrantLock('wl'))).toBe('another-holder');
  await svc.rt.redis.del(svc.rt.keys.targetGrantLock('wl'));
}, 60_000);

test("a failed release of the grant lock does not change the PATCH's answer", async () => {
  const verifier = svc.rt.credentialVerifier;
  const lockGrant = verifier.lockGrant.bind(verifier);
  verifier.lockGrant = async (targetId, partnerId) => {
    const lock = await lockGrant(targetId, partnerId);
    return lock && { ...lock, release: async () => { await lock.release(); throw new Error('connection lost'); } };
  };
  try {
    const creds = app('r');
    expect((await svc.api('/v1/partners/pr/targets?verify=false', { json: { id: 'wf', platform: 'whatnot', name: 'Whatnot app', credentials: creds, baseUrl: proxy.url, commissionRateBps: 800 } })).status).toBe(201);
    // Took effect: a 200 (and its audit entry), not a 503.
    const next = app('s');
    const ok = await svc.api('/v1/partners/pr/targets/wf?verify=false', { method: 'PATCH', json: { credentials: next } });
    expect(ok.status).toBe(200);
    expect(svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', 'wf'))!)).toEqual(next);
    // Refused for its own reason: that answer, not a 5xx.
    const gone = await svc.api('/v1/partners/pr/targets/nope?verify=false', { method: 'PATCH', json: { credentials: next } });
    expect(gone.status).toBe(404);
  } finally {
    verifier.lockGrant = lockGrant;
  }
}, 60_000);

test('the grant lock is renewed while a check runs past its lease: a second PATCH meanwhile waits a lease and answers 409, the first saves', async () => {
  const LEASE_MS = 3_000;
  const verifier = svc.rt.credentialVerifier;
  const lockGrant = verifier.lockGrant.bind(verifier);
  verifier.lockGrant = (targetId, partnerId) => new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, targetId).lockGrant(LEASE_MS, partnerId);
  const lockKey = svc.rt.keys.targetGrantLock('wn');
  let gate: { arrived: Promise<void>; release: () => void } | undefined;
  try {
    const original = app('n');
    expect((await svc.api('/v1/partners/pr/targets', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot app', credentials: original, baseUrl: proxy.url, commissionRateBps: 800 } })).status).toBe(201);

    // The first PATCH (the same grant, a new webhookSecret) is held at Whatnot's token endpoint...
    await sim.control('POST', '/_sim/whatnot/tokens/expire', {});
    gate = proxy.gateNext((method, path) => method === 'POST' && path.endsWith('/oauth/token'));
    const first = { ...original, webhookSecret: whsec() };
    const patch = svc.api('/v1/partners/pr/targets/wn', { method: 'PATCH', json: { credentials: first } });
    await gate.arrived;
    const holder = await svc.rt.redis.get(lockKey);
    expect(holder).not.toBeNull();
    const taken = Date.now();

    // ...a second one waits for its lock a whole lease, and is refused: nothing changed.
    const second = await svc.api('/v1/partners/pr/targets/wn?verify=false', { method: 'PATCH', json: { credentials: app('m') } });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { detail: string }).detail).toMatch(/being changed by another request/);
    expect(svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', 'wn'))!)).toEqual(original);

    // Past two leases since it was taken, the lock is still the first PATCH's, with a lease to run.
    await sleep(Math.max(0, taken + 2 * LEASE_MS - Date.now()));
    expect(nonceOf(await svc.rt.redis.get(lockKey))).toBe(nonceOf(holder));
    expect(await leaseLeft(lockKey)).toBeGreaterThan(0);

    // The check goes on: the first PATCH saves its credentials and frees the lock.
    gate.release();
    expect((await patch).status).toBe(200);
    expect(svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('pr', 'wn'))!)).toEqual(first);
    // Its lease ended (the record stays, naming it, until the next PATCH takes it).
    expect(nonceOf(await svc.rt.redis.get(lockKey))).toBe(nonceOf(holder));
    expect(await leaseLeft(lockKey)).toBeLessThanOrEqual(0);
  } finally {
    gate?.release();
    verifier.lockGrant = lockGrant;
  }
}, 60_000);
