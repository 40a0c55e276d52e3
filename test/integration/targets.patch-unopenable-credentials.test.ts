/**
 * A target whose stored credentials no key opens any more (SECRETS_KEY_PREVIOUS removed too early,
 * docs/operations.md "Rotating it in place") is repaired by a PATCH of its credentials. The same-grant
 * comparison (sameGrant, for the token record) opened the stored credentials for every credentials
 * PATCH, so that repair answered 500 and saved nothing. Now credentials that cannot be opened are not
 * the same grant: the PATCH saves the new ones. Real service, real Redis.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService();
  expect((await svc.api('/v1/partners', { json: { id: 'pu', name: 'Unopenable' } })).status).toBe(201);
});
afterAll(async () => {
  await svc.close();
});

/** Seals the target's credentials under a key this service does not have (one removed since). */
async function sealWithLostKey(targetId: string, credentials: Record<string, string>): Promise<void> {
  const lost = new SecretBox(randomBytes(32).toString('base64'));
  const r = await svc.rt.partners.updateTarget('pu', targetId, (t) => ({ ...t, credentialsSealed: lost.encrypt(JSON.stringify(credentials)) }));
  expect(r).not.toBeNull();
  expect(() => svc.rt.partners.openCredentials(r!.after)).toThrow();
}

test.each([
  ['youtube', { clientId: 'cid', clientSecret: 'csecret', refreshToken: 'rt-original' }],
  ['whatnot', { clientId: 'app', clientSecret: 'app-secret', refreshToken: 'rt-original' }],
  ['facebook', { pageId: '1234567890', pageAccessToken: 'page-token' }],
] as const)('%s: a PATCH of credentials that no key opened saves the new ones (200, not 500)', async (platform, credentials) => {
  const id = `t-${platform}`;
  const created = await svc.api(`/v1/partners/pu/targets?verify=false`, { json: { id, platform, name: id, credentials, commissionRateBps: 500 } });
  expect(created.status).toBe(201);
  // A cached token record, also under the lost key: it goes with the repair (not the same grant, as far as anyone can tell).
  await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, id).set({ accessToken: 'at', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt-rotated' });
  await sealWithLostKey(id, credentials);

  const r = await svc.api(`/v1/partners/pu/targets/${id}?verify=false`, { method: 'PATCH', json: { credentials } });
  expect(r.status).toBe(200);
  const after = await svc.rt.partners.getTarget('pu', id);
  expect(svc.rt.partners.openCredentials(after!)).toEqual(credentials);
  expect(await svc.rt.redis.get(svc.rt.keys.targetToken(id))).toBeNull();
});
