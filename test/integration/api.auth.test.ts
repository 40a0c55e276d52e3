/**
 * Operator API authentication and roles (the external contract §2): bearer keys, admin-only key creation, keys
 * stored hashed (the raw key appears nowhere in Redis), and what each role may do. Real redis-server,
 * real HTTP.
 */
import { dumpRedis } from '../helpers/redis-dump.js';
import { ADMIN_KEY, startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  for (const id of ['pa', 'pb']) {
    const r = await svc.api('/v1/partners', { json: { id, name: `Partner ${id}` } });
    expect(r.status).toBe(201);
  }
  const t = await svc.api('/v1/partners/pa/targets?verify=false', { json: { id: 'pa-yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'rt-pa' }, commissionRateBps: 500 } });
  expect(t.status).toBe(201);
});
afterAll(async () => {
  await svc.close();
});

async function createKey(role: string, partnerId?: string): Promise<{ id: string; key: string }> {
  const r = await svc.api('/v1/api-keys', { json: { role, ...(partnerId ? { partnerId } : {}) } });
  expect(r.status).toBe(201);
  const j = (await r.json()) as { id: string; key: string; role: string };
  expect(j.role).toBe(role);
  return j;
}

async function expectProblem(r: Response, status: number): Promise<void> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(await r.json()).toMatchObject({ status });
}

describe('authentication', () => {
  test('no key, a malformed header and an unknown key are 401', async () => {
    await expectProblem(await svc.api('/v1/partners', { key: null }), 401);
    await expectProblem(await svc.api('/v1/partners', { key: null, headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }), 401);
    await expectProblem(await svc.api('/v1/partners', { key: null, headers: { authorization: 'Bearer' } }), 401);
    await expectProblem(await svc.api('/v1/partners', { key: 'sk_admin_not_a_real_key' }), 401);
    await expectProblem(await svc.api('/v1/partners', { key: ADMIN_KEY + 'x' }), 401);
    await expectProblem(await svc.api('/v1/partners', { json: { id: 'px', name: 'x' }, key: 'nope' }), 401);
    expect(await svc.rt.partners.get('px')).toBeNull();
  });

  test('the admin key works', async () => {
    const r = await svc.api('/v1/partners');
    expect(r.status).toBe(200);
    const ids = ((await r.json()) as { partners: { id: string }[] }).partners.map((p) => p.id);
    expect(ids).toEqual(['pa', 'pb']);
  });
});

describe('API keys', () => {
  test('only admin may create keys: operator, viewer and partner keys get 403', async () => {
    const op = await createKey('operator');
    const viewer = await createKey('viewer');
    const partner = await createKey('partner', 'pa');
    for (const k of [op, viewer, partner]) {
      await expectProblem(await svc.api('/v1/api-keys', { key: k.key, json: { role: 'viewer' } }), 403);
      await expectProblem(await svc.api('/v1/api-keys', { key: k.key, json: { role: 'admin' } }), 403);
    }
    await expectProblem(await svc.api('/v1/api-keys', { key: null, json: { role: 'viewer' } }), 401);
  });

  test('invalid key requests are 400/404', async () => {
    const bad = await svc.api('/v1/api-keys', { json: { role: 'root' } });
    await expectProblem(bad, 400);
    const noPartner = await svc.api('/v1/api-keys', { json: { role: 'partner' } });
    expect(noPartner.status).toBe(400);
    expect(((await noPartner.json()) as { errors: { path: string }[] }).errors.map((e) => e.path).join(' ')).toMatch(/partnerId/);
    await expectProblem(await svc.api('/v1/api-keys', { json: { role: 'viewer', partnerId: 'pa' } }), 400);
    await expectProblem(await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId: 'nosuch' } }), 404);
  });

  test('an expiresAt whose offset carries it past 9999 in UTC is a 400 naming it, and no key is made (it was answered and listed as "+010000-01-01T13:59:59.000Z")', async () => {
    const before = ((await (await svc.api('/v1/api-keys')).json()) as { keys: unknown[] }).keys.length;
    const r = await svc.api('/v1/api-keys', { json: { role: 'viewer', expiresAt: '9999-12-31T23:59:59-14:00' } });
    await expectProblem(r.clone(), 400);
    expect(((await r.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(['body.expiresAt']);
    expect(((await (await svc.api('/v1/api-keys')).json()) as { keys: unknown[] }).keys).toHaveLength(before);
    // The last instant a four-digit year writes is still a valid expiry.
    const last = await svc.api('/v1/api-keys', { json: { role: 'viewer', expiresAt: '9999-12-31T23:59:59.999Z' } });
    expect(last.status).toBe(201);
    expect(((await last.json()) as { expiresAt: string }).expiresAt).toBe('9999-12-31T23:59:59.999Z');
  });

  test('created keys work, are distinct, and are stored hashed (the raw key is nowhere in Redis)', async () => {
    const a = await createKey('viewer');
    const b = await createKey('viewer');
    expect(a.key).not.toBe(b.key);
    expect(a.id).not.toBe(b.id);
    expect(a.key.length).toBeGreaterThanOrEqual(32);
    for (const k of [a, b]) expect((await svc.api('/v1/partners', { key: k.key })).status).toBe(200);

    const dump = await dumpRedis(svc.rt.redis);
    expect(dump.length).toBeGreaterThan(0);
    // The dump does hold the keys' records (so the search below looks in the right place)...
    expect(dump).toContain(a.id);
    expect(dump).toContain(b.id);
    // ...but never the keys themselves, nor their random part, nor the admin key.
    for (const k of [a, b]) {
      expect(dump).not.toContain(k.key);
      expect(dump).not.toContain(k.key.slice(-32));
    }
    expect(dump).not.toContain(ADMIN_KEY);
  });
});

describe('roles', () => {
  test('viewer can read but not create partners or targets', async () => {
    const { key } = await createKey('viewer');
    expect((await svc.api('/v1/partners', { key })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa', { key })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa/targets', { key })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa/shows', { key })).status).toBe(200);
    await expectProblem(await svc.api('/v1/partners', { key, json: { id: 'pv', name: 'Viewer made' } }), 403);
    await expectProblem(await svc.api('/v1/partners/pa/targets?verify=false', { key, json: { platform: 'youtube', name: 'x', credentials: { a: 'b' }, commissionRateBps: 1 } }), 403);
    await expectProblem(await svc.api('/v1/partners/pa/webhook-secret/rotate', { key, method: 'POST' }), 403);
    await expectProblem(await svc.api('/v1/partners/pa/targets/pa-yt', { key, method: 'DELETE' }), 403);
    expect(await svc.rt.partners.get('pv')).toBeNull();
    expect(await svc.rt.partners.getTarget('pa', 'pa-yt')).not.toBeNull();
  });

  test("a partner key reads its own partner's data and gets 403 for another partner", async () => {
    const { key } = await createKey('partner', 'pa');
    expect((await svc.api('/v1/partners/pa', { key })).status).toBe(200);
    const targets = await svc.api('/v1/partners/pa/targets', { key });
    expect(targets.status).toBe(200);
    expect(((await targets.json()) as { targets: { id: string }[] }).targets.map((t) => t.id)).toEqual(['pa-yt']);
    const shows = await svc.api('/v1/partners/pa/shows', { key });
    expect(shows.status).toBe(200);
    expect(await shows.json()).toMatchObject({ shows: [], total: 0 });

    await expectProblem(await svc.api('/v1/partners/pb', { key }), 403);
    await expectProblem(await svc.api('/v1/partners/pb/targets', { key }), 403);
    await expectProblem(await svc.api('/v1/partners/pb/shows', { key }), 403);
    await expectProblem(await svc.api('/v1/partners/pb/shows/anything', { key }), 403);

    // The partner list is narrowed to its own partner.
    const list = (await (await svc.api('/v1/partners', { key })).json()) as { partners: { id: string }[] };
    expect(list.partners.map((p) => p.id)).toEqual(['pa']);

    // Read only, even for its own partner.
    await expectProblem(await svc.api('/v1/partners/pa/targets?verify=false', { key, json: { platform: 'youtube', name: 'x', credentials: { a: 'b' }, commissionRateBps: 1 } }), 403);
    await expectProblem(await svc.api('/v1/partners/pa/webhook-secret/rotate', { key, method: 'POST' }), 403);
    await expectProblem(await svc.api('/v1/partners', { key, json: { id: 'pp', name: 'x' } }), 403);
  });

  test('operator can create partners and targets', async () => {
    const { key } = await createKey('operator');
    const p = await svc.api('/v1/partners', { key, json: { id: 'pop', name: 'Operator made' } });
    expect(p.status).toBe(201);
    expect(await p.json()).toMatchObject({ id: 'pop', name: 'Operator made', attributionWindowHours: 168, webhookSecret: expect.stringMatching(/^whsec_/) });
    const t = await svc.api('/v1/partners/pop/targets?verify=false', { key, json: { platform: 'tiktok', name: 'TT', credentials: { appKey: 'k' }, commissionRateBps: 800 } });
    expect(t.status).toBe(201);
    const tj = (await t.json()) as { id: string; platform: string };
    expect(tj.platform).toBe('tiktok');
    expect(await svc.rt.partners.getTarget('pop', tj.id)).toMatchObject({ platform: 'tiktok', commissionRateBps: 800 });
    expect((await svc.api('/v1/partners/pop/webhook-secret/rotate', { key, method: 'POST' })).status).toBe(200);
    // An operator is not scoped to a partner.
    expect((await svc.api('/v1/partners/pb/targets', { key })).status).toBe(200);
  });
});
