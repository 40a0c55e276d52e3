/**
 * A target whose stored credentials no key opens any more (SECRETS_KEY_PREVIOUS removed too early,
 * docs/operations.md "Rotating it in place") is repaired by a PATCH of its credentials. The same-grant
 * comparison (sameGrant, for the token record) opened the stored credentials for every credentials
 * PATCH, so that repair answered 500 and saved nothing. Now credentials that cannot be opened are not
 * the same grant: the PATCH saves the new ones. A checked PATCH of baseUrl alone has nothing to check
 * the new host with: 409 (it was a 500). Real service, real Redis.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { startService, type TestService } from '../helpers/service.js';
import { NO_TOKEN_RECORD, tokenRecord } from '../helpers/whatnot-grant.js';

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

const YOUTUBE = ['youtube', { clientId: 'cid', clientSecret: 'csecret', refreshToken: 'rt-original' }] as const;
const WHATNOT = ['whatnot', { clientId: 'app', clientSecret: 'app-secret', refreshToken: 'rt-original' }] as const;
const FACEBOOK = ['facebook', { pageId: '1234567890', pageAccessToken: 'page-token' }] as const;

/** Target `id` with `credentials` and a cached token record, its credentials then sealed under a lost key. */
async function unopenableTarget(id: string, platform: string, credentials: Record<string, string>): Promise<void> {
  const created = await svc.api(`/v1/partners/pu/targets?verify=false`, { json: { id, platform, name: id, credentials, commissionRateBps: 500 } });
  expect(created.status).toBe(201);
  await new RedisTokenStore(svc.rt.redis, svc.rt.keys, svc.rt.box, id).set({ accessToken: 'at', expiresAt: Date.now() + 3_600_000, refreshToken: 'rt-rotated' });
  await sealWithLostKey(id, credentials);
}

test.each([YOUTUBE, WHATNOT, FACEBOOK])('%s: a PATCH of credentials that no key opened saves the new ones (200, not 500)', async (platform, credentials) => {
  const id = `t-${platform}`;
  // A cached token record, also under the lost key: it goes with the repair (not the same grant, as far as anyone can tell): no token is left.
  await unopenableTarget(id, platform, credentials);

  const r = await svc.api(`/v1/partners/pu/targets/${id}?verify=false`, { method: 'PATCH', json: { credentials } });
  expect(r.status).toBe(200);
  const after = await svc.rt.partners.getTarget('pu', id);
  expect(svc.rt.partners.openCredentials(after!)).toEqual(credentials);
  expect(await tokenRecord(svc, id)).toEqual(NO_TOKEN_RECORD);
});

/**
 * A checked PATCH of baseUrl alone is checked with the stored credentials; when no key opens them there
 * is nothing to check the new host with. It answered 500 (the open threw): now 409, nothing changed, the
 * detail telling the operator to PATCH new credentials (with the baseUrl) or save it with ?verify=false,
 * which saves it (the token record, of the old host, goes: no token is left).
 */
test.each([YOUTUBE, FACEBOOK])('%s: a checked PATCH of baseUrl alone, of credentials that no key opens: 409 naming the repair, nothing changed; with ?verify=false it is saved', async (platform, credentials) => {
  const id = `b-${platform}`;
  await unopenableTarget(id, platform, credentials);
  const before = await svc.rt.partners.getTarget('pu', id);
  const token = await svc.rt.redis.get(svc.rt.keys.targetToken(id));

  const baseUrl = 'http://127.0.0.1:9/platform';
  const r = await svc.api(`/v1/partners/pu/targets/${id}`, { method: 'PATCH', json: { baseUrl } });
  expect(r.status).toBe(409);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = (await r.json()) as { detail: string; errors: { path: string }[] };
  expect(problem.detail).toMatch(/cannot be opened.*PATCH new credentials.*\?verify=false/);
  expect(problem.errors).toEqual([expect.objectContaining({ path: 'body.credentials' })]);
  expect(await svc.rt.partners.getTarget('pu', id)).toEqual(before);
  expect(await svc.rt.redis.get(svc.rt.keys.targetToken(id))).toBe(token);

  const unchecked = await svc.api(`/v1/partners/pu/targets/${id}?verify=false`, { method: 'PATCH', json: { baseUrl } });
  expect(unchecked.status).toBe(200);
  expect((await svc.rt.partners.getTarget('pu', id))?.baseUrl).toBe(baseUrl);
  expect(await tokenRecord(svc, id)).toEqual(NO_TOKEN_RECORD);
});
