/**
 * CONTRACT §9: the simulators "accept any non-empty credentials". An outside test creates a target
 * on each platform with credentials it made up (through the API, against `npm run sim`'s simulators
 * over real HTTP): the credential check passes (201; before, 422 for all but the seeded accounts), a
 * show is mirrored and its effects land on the simulators. Each made-up credential is an account of
 * its own: seeded account a's credentials do not reach what it made.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simRigPerFile, waitForMirror, youtubeEncoderNow } from '../helpers/mirrors.js';
import { ALL_PLATFORMS, CREDENTIALS, PIN_EFFECTS } from '../helpers/platforms.js';
import type { Platform } from '../../src/targets/target.adapter.js';

const PARTNER = 'anyc';

/** Never seen by any simulator: not the seeded accounts', not made with POST /_sim/{platform}/accounts. */
const MADE_UP: Record<Platform, Record<string, string>> = {
  youtube: { clientId: 'outside-test-client.apps.googleusercontent.com', clientSecret: 'outside-client-secret', refreshToken: 'outside-refresh-token' },
  tiktok: { appKey: 'outsideapp42', appSecret: 'outside-app-secret', refreshToken: 'outside-tt-refresh', shopCipher: 'outside-shop-cipher' },
  whatnot: { accessToken: 'outside-whatnot-token' },
  bambuser: { apiKey: 'outside-bambuser-key' },
  facebook: { pageId: '987654321012345', pageAccessToken: 'outside-page-token' },
};

let svc: TestService;
let sim: TestSim;
let secret: string;

simRigPerFile(PARTNER, () => [], (rig) => ({ sim, svc, secret } = rig), {
  timeoutMs: 60_000,
  // YouTube goes live once its bound stream receives data: a simulated encoder stands in for the relay
  // (at once: otherwise the go-live right after the bind waits the sync's 5 s for an inactive stream)
  prepare: youtubeEncoderNow,
});

test('targets with made-up credentials on all five platforms are saved, mirror a show, and the simulators see it', async () => {
  for (const platform of ALL_PLATFORMS) {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets`, {
      json: { id: platform, platform, name: platform, credentials: MADE_UP[platform], baseUrl: sim.base(platform), commissionRateBps: 500 },
    });
    expect([platform, r.status, r.status === 201 ? '' : await r.text()]).toEqual([platform, 201, '']);
  }

  const show = sampleShow('s1');
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, '2026-12-03T17:00:00Z'))).status).toBe(202);
  // TikTok and Whatnot cannot create a show by API: the operator makes it in the app (POST
  // /_sim/{platform}/shows {title}, as the contract has it: no account named) and links it.
  const byHand: Partial<Record<Platform, string>> = {};
  for (const platform of ['tiktok', 'whatnot'] as const) {
    await waitForMirror(svc, PARTNER, 's1', (m) => m.state === 'action_required', { targetId: platform });
    const { externalId } = (await sim.control('POST', `/_sim/${platform}/shows`, { title: `s1 on ${platform}` })) as { externalId: string };
    byHand[platform] = externalId;
    expect((await svc.api(`/v1/partners/${PARTNER}/shows/s1/mirrors/${platform}`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  }
  const externalIds: Partial<Record<Platform, string>> = {};
  for (const platform of ALL_PLATFORMS) {
    const m = await waitForMirror(svc, PARTNER, 's1', (x) => x.externalId !== null && x.state !== 'action_required' && x.state !== 'failed', { targetId: platform, failedIsError: true });
    externalIds[platform] = m.externalId!;
  }
  expect([externalIds.tiktok, externalIds.whatnot]).toEqual([byHand.tiktok, byHand.whatnot]);
  // The platforms whose API creates shows did so, as the made-up accounts.
  for (const platform of ['youtube', 'bambuser', 'facebook'] as const) {
    expect((await sim.effects(platform)).filter((e) => e.type === 'show.created').map((e) => e.externalId)).toEqual([externalIds[platform]]);
  }

  // The show goes live, then a pin reaches every platform, on the made-up account's show.
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, '2026-12-03T17:01:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: '2026-12-03T17:05:00Z', data: { showId: 's1', productId: 'p1' } })).status).toBe(202);
  for (const platform of ALL_PLATFORMS) {
    await waitFor(async () => (await sim.effects(platform)).some((e) => PIN_EFFECTS.has(e.type) && e.externalId === externalIds[platform]), 30_000);
  }

  // Each made-up credential is its own account: seeded account a does not see the show it made.
  const wn = await fetch(`${sim.base('whatnot')}/shows/${externalIds.whatnot!}`, { headers: { authorization: `Bearer ${CREDENTIALS.whatnot.accessToken!}` } });
  expect(wn.status).toBe(404);
  const bb = await fetch(`${sim.base('bambuser')}/v1/shows/${externalIds.bambuser!}`, { headers: { authorization: `Token ${CREDENTIALS.bambuser.apiKey!}` } });
  expect(bb.status).toBe(404);
}, 90_000);
