/**
 * The pre-show readiness check's fix for a refused authorization named the PATCH with a body of
 * `{"credentials": {…}}`: an operator who sent only the renewed token removed the target's other
 * fields (a PATCH's credentials replace the whole set: src/targets/credentials-advice.ts), as the
 * platforms' own advice texts already said. Now the action is the whole PATCH: every field the target
 * holds, the renewed one(s) `<new>`, the access token a new grant makes stale left out. The check is
 * called directly (a failed mirror, no adapter call), on a real Redis.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { DesiredShow } from '../../src/domain/desired-state.js';
import { newMirror } from '../../src/domain/mirror.js';
import { SecretBox } from '../../src/lib/crypto.js';
import { ReadinessService } from '../../src/mirror/readiness.service.js';
import type { OutboundService } from '../../src/outbound/outbound.service.js';
import { Keys } from '../../src/store/keys.js';
import { PartnerRepository, type TargetRecord } from '../../src/store/partner.repository.js';
import type { RedisClient } from '../../src/store/redis.js';
import { ShowRepository } from '../../src/store/show.repository.js';
import type { Platform } from '../../src/targets/target.adapter.js';
import { renewedAuthorizationPatch } from '../../src/targets/target.registry.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let client: RedisClient;
testRedisClientPerFile((started) => ({ client } = started));

const keys = new Keys('rca');
const box = new SecretBox(randomBytes(32).toString('base64'));
const now = new Date().toISOString();

const desired: DesiredShow = {
  showId: 'soon',
  version: 1,
  title: 'Soon',
  description: undefined,
  scheduledAt: new Date(Date.now() + 10 * 60_000).toISOString(),
  state: 'scheduled',
  sourceUrl: undefined,
  products: new Map(),
  pinned: new Set(),
  pinUniverse: new Set(),
};

/** Times the readiness checks opened a target's credentials (PartnerRepository.credentialsIfOpen). */
let opened = 0;

/** The `token` check's action for a target whose mirror is `state` (failed: `refused`), its credentials `credentials`. */
async function tokenAction(platform: Platform, credentials: Record<string, string>, state: 'failed' | 'pending' = 'failed'): Promise<string | null> {
  const partners = new PartnerRepository(client, keys, box);
  const open = partners.credentialsIfOpen.bind(partners);
  partners.credentialsIfOpen = (t) => {
    opened += 1;
    return open(t);
  };
  const readiness = new ReadinessService({
    redis: client,
    keys,
    box,
    shows: new ShowRepository(client, keys, 86_400, box),
    partners,
    // check() sends nothing (publish does): no outbound service is reached.
    outbound: undefined as unknown as OutboundService,
    adapterFor: () => null,
    log: pino({ level: 'silent' }),
  });
  const t: TargetRecord = { id: `rc-${platform}`, partnerId: 'rc', platform, name: platform, baseUrl: undefined, commissionRateBps: 0, enabled: true, pinDelayMs: 0, credentialsSealed: partners.sealCredentials(credentials), createdAt: now, updatedAt: now };
  const m = { ...newMirror(t.id, platform), state, lastError: state === 'failed' ? 'refused' : null };
  const r = await readiness.check(desired, t, m);
  return r.checks.find((c) => c.name === 'token')!.action;
}

test('a refused YouTube authorization: the action is the whole PATCH, the refresh token renewed, every other field as it is', async () => {
  const action = await tokenAction('youtube', { clientId: 'cid', clientSecret: 'csecret', refreshToken: 'rt-old', privacyStatus: 'unlisted' });
  expect(action).toContain('Renew the YouTube authorization of target rc-youtube and save it: PATCH /v1/partners/rc/targets/rc-youtube {"credentials": {"clientId": "…", "clientSecret": "…", "refreshToken": "<new>", "privacyStatus": "…"}}');
  expect(action).toContain('a PATCH replaces all of a target\'s credentials');
  expect(action).toMatch(/; then POST \/v1\/partners\/rc\/shows\/soon\/mirrors\/rc-youtube\/resync$/);
  for (const secret of ['csecret', 'rt-old']) expect(action).not.toContain(secret);
});

test('each platform renews its own authorization field; a stale access token is left out', async () => {
  expect(await tokenAction('tiktok', { appKey: 'k', appSecret: 's', refreshToken: 'r', shopCipher: 'c', accessToken: 'a' })).toContain('{"credentials": {"appKey": "…", "appSecret": "…", "refreshToken": "<new>", "shopCipher": "…"}}');
  expect(await tokenAction('whatnot', { clientId: 'i', clientSecret: 's', refreshToken: 'r', accessToken: 'a', webhookSecret: 'w' })).toContain('{"credentials": {"clientId": "…", "clientSecret": "…", "refreshToken": "<new>", "webhookSecret": "…"}}');
  // A Whatnot personal access token is itself the authorization.
  expect(await tokenAction('whatnot', { accessToken: 'a', webhookSecret: 'w' })).toContain('{"credentials": {"accessToken": "<new>", "webhookSecret": "…"}}');
  expect(await tokenAction('facebook', { pageId: '123', pageAccessToken: 'p' })).toContain('{"credentials": {"pageId": "…", "pageAccessToken": "<new>"}}');
  expect(await tokenAction('bambuser', { apiKey: 'k', region: 'eu', webhookHeaderValue: 'h' })).toContain('{"credentials": {"apiKey": "<new>", "region": "…", "webhookHeaderValue": "…"}}');
});

test('credentials that cannot be opened: the renewed field, and the others to be sent as they are', () => {
  expect(renewedAuthorizationPatch({ id: 't', partnerId: 'p', platform: 'youtube' }, undefined)).toBe(
    'PATCH /v1/partners/p/targets/t {"credentials": {"refreshToken": "<new>"}} (with every other field the target has, as it is: a PATCH replaces all of a target\'s credentials, and a field it leaves out is removed)',
  );
});

/**
 * A Whatnot target's credentials are of one of two kinds (an app the seller connected, renewed by its
 * refresh token; or a personal access token, itself the authorization). Credentials that cannot be
 * opened do not say which: the advice named the refresh token only, wrong for a personal-token target.
 */
test("a Whatnot target's credentials that cannot be opened: the PATCH for each kind", () => {
  const advice = renewedAuthorizationPatch({ id: 't', partnerId: 'p', platform: 'whatnot' }, undefined);
  expect(advice).toContain('PATCH /v1/partners/p/targets/t {"credentials": {"refreshToken": "<new>"}} (with every other field the target has, as it is: a PATCH replaces all of a target\'s credentials, and a field it leaves out is removed) for an app the seller connected, or ');
  expect(advice).toMatch(/, or PATCH \/v1\/partners\/p\/targets\/t \{"credentials": \{"accessToken": "<new>"\}\} \(with every other field the target has, as it is: [^)]*\) for a personal access token$/);
});

/** The fix is made where a failed check needs it: a check that passes opened the credentials (a decryption) for nothing, on every readiness pass. */
test("a readiness check with nothing to fix does not open the target's credentials; a failed one opens them once", async () => {
  opened = 0;
  expect(await tokenAction('youtube', { clientId: 'cid', clientSecret: 'cs', refreshToken: 'rt' }, 'pending')).toBeNull();
  // Before: 1.
  expect(opened).toBe(0);
  expect(await tokenAction('youtube', { clientId: 'cid', clientSecret: 'cs', refreshToken: 'rt' })).toContain('"refreshToken": "<new>"');
  expect(opened).toBe(1);
});
