/**
 * Target credentials are checked with the platform when a target is saved (issue 11 item 7), against
 * the simulators (a credential works only for its own account, src/simulators/sim.accounts.ts; ones
 * never seen are a new account, CONTRACT §9; a known identity with a wrong secret, or a revoked one, is
 * refused):
 * accepted → 201; refused → 422 problem+json with the platform's reason and nothing saved; the
 * platform unreachable or failing → 503 with Retry-After and nothing saved; `?verify=false` saves
 * without asking. Real HTTP and Redis.
 */
import { createServer } from 'node:net';
import { createPartner, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { ALL_PLATFORMS, CREDENTIALS, OTHER_CREDENTIALS } from '../helpers/platforms.js';
import type { Platform } from '../../src/targets/target.adapter.js';

let svc: TestService;
let sim: TestSim;
beforeAll(async () => {
  sim = await startSim();
  svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '2000' } });
  await createPartner(svc, 'cv');
  await sim.control('POST', '/_sim/whatnot/revocations', { token: 'wn_revoked_token' });
  await sim.control('POST', '/_sim/bambuser/revocations', { token: 'bmb_revoked_key' });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

interface Problem {
  status: number;
  detail: string;
  errors?: { path: string; message: string }[];
}
const create = (platform: Platform, id: string, credentials: Record<string, string>, opts: { baseUrl?: string; query?: string } = {}): Promise<Response> =>
  svc.api(`/v1/partners/cv/targets${opts.query ?? ''}`, { json: { id, platform, name: id, credentials, baseUrl: opts.baseUrl ?? sim.base(platform), commissionRateBps: 100 } });

/** Credentials the platform refuses, each in its own way: a known identity with a wrong secret, or a revoked credential. */
const BAD: Record<Platform, { credentials: Record<string, string>; reason: RegExp }> = {
  youtube: { credentials: { ...CREDENTIALS.youtube, clientSecret: 'GOCSPX-not-the-secret' }, reason: /YouTube refused these credentials: / },
  tiktok: { credentials: { ...CREDENTIALS.tiktok, appSecret: 'not-the-app-secret' }, reason: /TikTok Shop refused these credentials: / },
  whatnot: { credentials: { accessToken: 'wn_revoked_token' }, reason: /Whatnot refused these credentials: / },
  bambuser: { credentials: { apiKey: 'bmb_revoked_key' }, reason: /Bambuser refused these credentials: / },
  facebook: { credentials: { pageId: CREDENTIALS.facebook.pageId!, pageAccessToken: 'EAAGmadeUpToken' }, reason: /Facebook refused these credentials: / },
};

test.each(ALL_PLATFORMS)('%s: credentials the platform accepts are saved (201)', async (platform) => {
  const r = await create(platform, `ok-${platform}`, CREDENTIALS[platform]);
  expect(r.status).toBe(201);
});

test.each(ALL_PLATFORMS)('%s: credentials the platform refuses answer 422 with its reason, and nothing is saved', async (platform) => {
  const r = await create(platform, `bad-${platform}`, BAD[platform].credentials);
  expect(r.status).toBe(422);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await r.json()) as Problem;
  expect(body.detail).toMatch(BAD[platform].reason);
  expect(body.errors?.[0]?.path).toBe('body.credentials');
  expect(JSON.stringify(body)).not.toContain(Object.values(BAD[platform].credentials).at(-1)!);
  expect((await svc.api(`/v1/partners/cv/targets/bad-${platform}`, { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);
});

test('a credential of another account is refused: a TikTok token for shop b with shop a’s cipher, a Facebook Page b token for Page a', async () => {
  const tt = await create('tiktok', 'tt-mixed', { ...OTHER_CREDENTIALS.tiktok, shopCipher: CREDENTIALS.tiktok.shopCipher! });
  expect(tt.status).toBe(422);
  expect(((await tt.json()) as Problem).detail).toMatch(/does not cover the shop with shopCipher/);
  const fb = await create('facebook', 'fb-mixed', { pageId: CREDENTIALS.facebook.pageId!, pageAccessToken: OTHER_CREDENTIALS.facebook.pageAccessToken! });
  expect(fb.status).toBe(422);
});

test('the platform failing (500) or unreachable: 503 with Retry-After and nothing saved; ?verify=false saves anyway', async () => {
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['500'] });
  try {
    const r = await create('whatnot', 'wn-down', CREDENTIALS.whatnot);
    expect(r.status).toBe(503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await r.json()) as Problem).detail).toMatch(/could not check the credentials with Whatnot .*\?verify=false/);
    expect((await svc.api('/v1/partners/cv/targets/wn-down', { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);
  } finally {
    await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  }
  // A port nobody listens on.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const down = await create('bambuser', 'bb-down', CREDENTIALS.bambuser, { baseUrl: `http://127.0.0.1:${port}` });
  expect(down.status).toBe(503);
  const saved = await create('bambuser', 'bb-down', CREDENTIALS.bambuser, { baseUrl: `http://127.0.0.1:${port}`, query: '?verify=false' });
  expect(saved.status).toBe(201);
  const audit = (await (await svc.api('/v1/audit?action=target.created&partnerId=cv')).json()) as { entries: { targetId: string; detail?: Record<string, unknown> }[] };
  expect(audit.entries.find((e) => e.targetId === 'bb-down')?.detail).toMatchObject({ credentialsChecked: false });
  expect(audit.entries.find((e) => e.targetId === 'ok-whatnot')?.detail).toMatchObject({ credentialsChecked: true });
});

test("PATCH: a refusal's advice names the fields the target holds, also those the request left out", async () => {
  // A PATCH with the access token alone, refused: its advice named {"accessToken"} only, "as the target
  // has it", and an operator who followed it removed the target's webhookSecret.
  expect((await create('whatnot', 'wn-advice', CREDENTIALS.whatnot)).status).toBe(201);
  const r = await svc.api('/v1/partners/cv/targets/wn-advice', { method: 'PATCH', json: { credentials: { accessToken: 'wn_revoked_token' } } });
  expect(r.status).toBe(422);
  const { detail } = (await r.json()) as Problem;
  expect(detail).toContain('{"credentials": {"accessToken": "<new>", "webhookSecret": "…"}} ("…": as the target has it now, or as in your request');
  expect(detail).not.toContain(CREDENTIALS.whatnot.webhookSecret!);
});

test('?verify=false asks the platform nothing at the save: not even which account the credentials are (the target\'s webhooks and next run ask)', async () => {
  const before = ((await sim.control('GET', '/_sim/whatnot/requests')) as unknown[]).length;
  expect((await create('whatnot', 'wn-unchecked', CREDENTIALS.whatnot, { query: '?verify=false' })).status).toBe(201);
  expect(((await sim.control('GET', '/_sim/whatnot/requests')) as unknown[]).length).toBe(before);
});

test('PATCH: new credentials are checked (422 keeps the old ones); other changes ask nothing', async () => {
  expect((await create('youtube', 'yt-rot', CREDENTIALS.youtube)).status).toBe(201);
  const before = (await sim.control('GET', '/_sim/youtube/requests')) as unknown[];
  const bad = await svc.api('/v1/partners/cv/targets/yt-rot', { method: 'PATCH', json: { credentials: BAD.youtube.credentials } });
  expect(bad.status).toBe(422);
  const target = (await svc.rt.partners.getTarget('cv', 'yt-rot'))!;
  expect(svc.rt.partners.openCredentials(target)).toEqual(CREDENTIALS.youtube);
  const n = ((await sim.control('GET', '/_sim/youtube/requests')) as unknown[]).length;
  expect(n).toBeGreaterThan(before.length);
  expect((await svc.api('/v1/partners/cv/targets/yt-rot', { method: 'PATCH', json: { name: 'renamed', pinDelayMs: 1000 } })).status).toBe(200);
  expect(((await sim.control('GET', '/_sim/youtube/requests')) as unknown[]).length).toBe(n);
  expect((await svc.api('/v1/partners/cv/targets/yt-rot', { method: 'PATCH', json: { credentials: OTHER_CREDENTIALS.youtube } })).status).toBe(200);
});
