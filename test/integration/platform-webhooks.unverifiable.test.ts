/**
 * POST /v1/platform-webhooks/{targetId} to a target that lacks what verifies its webhooks (a Bambuser
 * target without webhookHeaderValue, a Whatnot target without webhookSecret). The caller is not
 * authenticated (the URL is the only address), so the 401 says only that the webhook cannot be
 * verified for this target, as short as the other 401s: the Bambuser one carried the whole PATCH advice
 * (partner id, target id, the names of the target's credential fields), the Whatnot one named
 * credentials.webhookSecret. The advice goes to ops (a warn line), not to the caller.
 * Real redis-server, real HTTP, the simulators.
 */
import { CREDENTIAL_FIELDS as BAMBUSER_FIELDS } from '../../src/targets/bambuser/bambuser.client.js';
import { CREDENTIAL_FIELDS as WHATNOT_FIELDS } from '../../src/targets/whatnot/whatnot.client.js';
import { CREDENTIALS, webhookTargetPerFile } from '../helpers/platforms.js';
import type { TestService } from '../helpers/service.js';

const P = 'pwunv';
let svc: TestService;

const { webhookHeaderName: _n, webhookHeaderValue: _v, ...bambuser } = CREDENTIALS.bambuser;
const { webhookSecret: _s, ...whatnot } = CREDENTIALS.whatnot;

webhookTargetPerFile(P, (s) => ({ id: 'bbx', platform: 'bambuser', name: 'bb', credentials: bambuser, baseUrl: s.base('bambuser') }), async ({ svc: started, sim }) => {
  svc = started;
  const r = await svc.api(`/v1/partners/${P}/targets`, { json: { id: 'wnx', platform: 'whatnot', name: 'wn', credentials: whatnot, baseUrl: sim.base('whatnot'), commissionRateBps: 1000, enabled: false } });
  if (r.status !== 201) throw new Error(`target: ${r.status} ${await r.text()}`);
});

const post = (targetId: string): Promise<Response> => fetch(`${svc.url}/v1/platform-webhooks/${targetId}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-webhook-secret': 'guess' }, body: '{}' });

test.each([
  ['bbx', 'Bambuser', BAMBUSER_FIELDS],
  ['wnx', 'Whatnot', WHATNOT_FIELDS],
])('an unauthenticated webhook to %s, which cannot be verified: a short 401 naming no id or credential field', async (targetId, name, fields) => {
  const r = await post(targetId);
  expect(r.status).toBe(401);
  const text = await r.text();
  expect(JSON.parse(text)).toMatchObject({ status: 401, detail: `${name} webhooks cannot be verified for this target` });
  // Before: the Bambuser 401 held the PATCH (partner, target, apiKey, region, …), the Whatnot one webhookSecret.
  for (const word of [P, targetId, 'PATCH', ...fields]) expect([word, text.includes(word)]).toEqual([word, false]);
});
