/**
 * Targets (the external contract §2): create, list, patch (disable, rotate credentials), delete; credentials are
 * never returned and are stored encrypted; validation, conflicts, and the SSRF guard on baseUrl when
 * ALLOW_PRIVATE_DESTINATIONS is false. Real redis-server, real HTTP. The credentials here are made up and
 * no platform runs, so targets are saved with `?verify=false`; the check itself is test/e2e/targets.verify.test.ts.
 */
import { hostLookup } from '../../src/lib/ssrf.js';
import { dumpRedis } from '../helpers/redis-dump.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
const PARTNER = 'tp';
const SECRET_1 = 'refresh-token-PLAINTEXT-0a1b2c3d4e5f';
const SECRET_2 = 'client-secret-PLAINTEXT-9z8y7x6w5v';
const ROTATED = 'refresh-token-ROTATED-ffeeddccbbaa';

beforeAll(async () => {
  svc = await startService();
  const r = await svc.api('/v1/partners', { json: { id: PARTNER, name: 'Targets partner' } });
  expect(r.status).toBe(201);
  expect((await svc.api('/v1/partners', { json: { id: 'tp2', name: 'Other partner' } })).status).toBe(201);
});
afterAll(async () => {
  await svc.close();
});

async function expectProblem(r: Response, status: number): Promise<{ errors?: { path: string; message: string }[]; detail?: string }> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = (await r.json()) as { status: number; errors?: { path: string; message: string }[]; detail?: string };
  expect(p.status).toBe(status);
  return p;
}

/** Reads the body as text, checks no credential leaks, returns the parsed JSON. */
async function noCredentials(r: Response): Promise<Record<string, unknown>> {
  const text = await r.text();
  for (const s of [SECRET_1, SECRET_2, ROTATED]) expect(text).not.toContain(s);
  expect(text).not.toMatch(/credentials"\s*:|credentialsSealed/);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

const newTarget = { id: 'yt-main', platform: 'youtube', name: 'YouTube main', credentials: { refreshToken: SECRET_1, clientSecret: SECRET_2 }, commissionRateBps: 750 };

describe('target lifecycle', () => {
  test('create → 201 without credentials; stored encrypted', async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: newTarget });
    expect(r.status).toBe(201);
    const t = await noCredentials(r);
    expect(t).toMatchObject({ id: 'yt-main', partnerId: PARTNER, platform: 'youtube', name: 'YouTube main', commissionRateBps: 750, enabled: true, hasCredentials: true });

    const dump = await dumpRedis(svc.rt.redis);
    expect(dump).toContain('yt-main'); // the target is in there...
    expect(dump).not.toContain(SECRET_1); // ...its credentials are not, in clear
    expect(dump).not.toContain(SECRET_2);
    expect(dump).not.toContain(Buffer.from(SECRET_1).toString('base64'));
    // ...but they are there, sealed, and open to the service's key.
    const rec = await svc.rt.partners.getTarget(PARTNER, 'yt-main');
    expect(rec?.credentialsSealed).toMatch(/^v1\./);
    expect(svc.rt.partners.openCredentials(rec!)).toEqual(newTarget.credentials);
  });

  test('GET list has the target and no credentials', async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets`);
    expect(r.status).toBe(200);
    const j = (await noCredentials(r)) as { targets: { id: string; enabled: boolean }[] };
    expect(j.targets).toHaveLength(1);
    expect(j.targets[0]).toMatchObject({ id: 'yt-main', enabled: true });
    const other = await svc.api(`/v1/partners/tp2/targets`);
    expect(((await other.json()) as { targets: unknown[] }).targets).toEqual([]);
  });

  test('PATCH disables and renames; PATCH rotates credentials (sealed again, never echoed)', async () => {
    const before = await svc.rt.partners.getTarget(PARTNER, 'yt-main');
    const d = await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'PATCH', json: { enabled: false, name: 'YouTube (paused)' } });
    expect(d.status).toBe(200);
    expect(await noCredentials(d)).toMatchObject({ id: 'yt-main', enabled: false, name: 'YouTube (paused)', commissionRateBps: 750 });
    const afterDisable = await svc.rt.partners.getTarget(PARTNER, 'yt-main');
    expect(afterDisable).toMatchObject({ enabled: false, name: 'YouTube (paused)' });
    expect(afterDisable?.credentialsSealed).toBe(before?.credentialsSealed); // untouched

    const rot = await svc.api(`/v1/partners/${PARTNER}/targets/yt-main?verify=false`, { method: 'PATCH', json: { credentials: { refreshToken: ROTATED } } });
    expect(rot.status).toBe(200);
    expect(await noCredentials(rot)).toMatchObject({ id: 'yt-main', enabled: false });
    const afterRotate = await svc.rt.partners.getTarget(PARTNER, 'yt-main');
    expect(afterRotate?.credentialsSealed).not.toBe(before?.credentialsSealed);
    expect(svc.rt.partners.openCredentials(afterRotate!)).toEqual({ refreshToken: ROTATED });

    const dump = await dumpRedis(svc.rt.redis);
    for (const s of [SECRET_1, SECRET_2, ROTATED]) expect(dump).not.toContain(s);

    const en = await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'PATCH', json: { enabled: true } });
    expect(en.status).toBe(200);
    expect(await noCredentials(en)).toMatchObject({ enabled: true });
    const list = (await (await svc.api(`/v1/partners/${PARTNER}/targets`)).json()) as { targets: { enabled: boolean; name: string }[] };
    expect(list.targets[0]).toMatchObject({ enabled: true, name: 'YouTube (paused)' });
    // The audit names what each PATCH did: disabled, updated (the credentials), enabled again.
    const audit = (await (await svc.api('/v1/audit?targetId=yt-main')).json()) as { entries: { action: string }[] };
    const actions = audit.entries.map((e) => e.action).reverse();
    expect(actions.slice(actions.indexOf('target.disabled'))).toEqual(['target.disabled', 'target.updated', 'target.enabled']);
  });

  test('PATCH validation: empty credentials and a bad rate are 400', async () => {
    const p1 = await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'PATCH', json: { credentials: {} } }), 400);
    expect(p1.errors?.map((e) => e.path).join(' ')).toMatch(/credentials/);
    await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'PATCH', json: { commissionRateBps: 12.5 } }), 400);
    await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/nosuch`, { method: 'PATCH', json: { enabled: false } }), 404);
    // Fields a target cannot change are refused, not ignored (the target stays a YouTube target named as before).
    for (const json of [{ platform: 'tiktok' }, { id: 'other' }, { name: 'renamed', platform: 'tiktok' }]) {
      const p = await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'PATCH', json }), 400);
      expect(JSON.stringify(p.errors)).toMatch(/platform|id/);
    }
    expect(await svc.rt.partners.getTarget(PARTNER, 'yt-main')).toMatchObject({ platform: 'youtube', name: 'YouTube (paused)' });
    expect(svc.rt.partners.openCredentials((await svc.rt.partners.getTarget(PARTNER, 'yt-main'))!)).toEqual({ refreshToken: ROTATED });
  });

  test('DELETE → 204, then 404, and the target is gone', async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    expect(await r.text()).toBe('');
    await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'DELETE' }), 404);
    await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/yt-main`, { method: 'PATCH', json: { enabled: true } }), 404);
    const list = (await (await svc.api(`/v1/partners/${PARTNER}/targets`)).json()) as { targets: unknown[] };
    expect(list.targets).toEqual([]);
    expect(await svc.rt.partners.getTarget(PARTNER, 'yt-main')).toBeNull();
    // Its id is free again.
    const again = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: newTarget });
    expect(again.status).toBe(201);
  });
});

describe('target validation', () => {
  test('an invalid platform is 400 with a field error', async () => {
    const p = await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...newTarget, id: 'bad-plat', platform: 'myspace' } }), 400);
    expect(p.errors?.map((e) => e.path)).toContain('body.platform');
    expect(await svc.rt.partners.getTarget(PARTNER, 'bad-plat')).toBeNull();
  });

  test('other invalid fields are 400', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...newTarget, id: 'v1', credentials: {} }, 'body.credentials'],
      [{ ...newTarget, id: 'v2', commissionRateBps: 10_001 }, 'body.commissionRateBps'],
      [{ ...newTarget, id: 'v3', commissionRateBps: 7.5 }, 'body.commissionRateBps'],
      [{ ...newTarget, id: 'v4', baseUrl: 'ftp://example.com' }, 'body.baseUrl'],
      [{ ...newTarget, id: 'bad id' }, 'body.id'],
      [{ ...newTarget, id: 'v5', name: '' }, 'body.name'],
    ];
    for (const [body, path] of cases) {
      const p = await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: body }), 400);
      expect(p.errors?.map((e) => e.path)).toContain(path);
    }
    const list = (await (await svc.api(`/v1/partners/${PARTNER}/targets`)).json()) as { targets: { id: string }[] };
    expect(list.targets.map((t) => t.id)).toEqual(['yt-main']);
  });

  test('a duplicate target id is 409, also under another partner, and the original is untouched', async () => {
    const dup = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...newTarget, name: 'Dup', credentials: { refreshToken: 'other' } } });
    await expectProblem(dup, 409);
    const cross = await svc.api(`/v1/partners/tp2/targets?verify=false`, { json: { ...newTarget, name: 'Dup elsewhere' } });
    await expectProblem(cross, 409);
    expect(await svc.rt.partners.getTarget('tp2', 'yt-main')).toBeNull();
    // Nor can another partner's path reach it.
    await expectProblem(await svc.api(`/v1/partners/tp2/targets/yt-main`, { method: 'PATCH', json: { enabled: false } }), 404);
    await expectProblem(await svc.api(`/v1/partners/tp2/targets/yt-main`, { method: 'DELETE' }), 404);
    const rec = await svc.rt.partners.getTarget(PARTNER, 'yt-main');
    expect(rec?.name).toBe('YouTube main');
    expect(svc.rt.partners.openCredentials(rec!)).toEqual(newTarget.credentials);
  });

  test('a target without an id gets one; an unknown partner is 404', async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { platform: 'whatnot', name: 'WN', credentials: { apiKey: 'k' }, commissionRateBps: 0 } });
    expect(r.status).toBe(201);
    const j = await noCredentials(r);
    expect(j['id']).toEqual(expect.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/));
    await expectProblem(await svc.api(`/v1/partners/ghost/targets?verify=false`, { json: newTarget }), 404);
  });

  test('a loopback baseUrl (an address or localhost) is accepted while ALLOW_PRIVATE_DESTINATIONS is true (tests, demo)', async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...newTarget, id: 'sim-yt', baseUrl: 'http://127.0.0.1:4100/youtube' } });
    expect(r.status).toBe(201);
    expect(await r.json()).toMatchObject({ baseUrl: 'http://127.0.0.1:4100/youtube' });
    // And by the name: looked up (a name that does not exist is refused) but not refused as a loopback name.
    const named = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...newTarget, id: 'sim-yt-named', baseUrl: 'http://localhost:4100/youtube' } });
    expect(named.status).toBe(201);
  });

  test('a baseUrl whose host does not exist is a 400 naming baseUrl while ALLOW_PRIVATE_DESTINATIONS is true; one DNS cannot look up now a 503', async () => {
    // `.invalid` names do not exist (RFC 6761 §6.4): answered so here whether or not this machine has a
    // resolver (no lookup leaves it); `dns-down.invalid` stands for a name whose name servers fail now.
    const system = hostLookup.lookup;
    hostLookup.lookup = async (host) => {
      if (host === 'dns-down.invalid') throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${host}`), { code: 'EAI_AGAIN' });
      if (host.endsWith('.invalid')) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return system(host);
    };
    try {
      const wn = { platform: 'whatnot', name: 'WN', credentials: { accessToken: 'wn_x' }, commissionRateBps: 0 };
      // Checked with the platform (it was the check's "Whatnot API unreachable (ENOTFOUND)", a 503 to retry), and unchecked.
      for (const query of ['', '?verify=false']) {
        const p = await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets${query}`, { json: { ...wn, id: 'typo-wn', baseUrl: 'https://api.typo.invalid/v1' } }), 400);
        expect(p.errors).toEqual([{ path: 'body.baseUrl', message: 'api.typo.invalid does not resolve' }]);
        expect(await svc.rt.partners.getTarget(PARTNER, 'typo-wn')).toBeNull();
      }
      expect((await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...wn, id: 'typo-wn', baseUrl: 'http://127.0.0.1:9/v1' } })).status).toBe(201);
      const p = await expectProblem(await svc.api(`/v1/partners/${PARTNER}/targets/typo-wn`, { method: 'PATCH', json: { baseUrl: 'https://api.typo.invalid/v1' } }), 400);
      expect(p.errors?.[0]?.path).toBe('body.baseUrl');
      expect((await svc.rt.partners.getTarget(PARTNER, 'typo-wn'))?.baseUrl).toBe('http://127.0.0.1:9/v1');
      // A lookup that cannot be made now says nothing about the name: 503, retry later.
      const down = await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...wn, id: 'down-wn', baseUrl: 'https://dns-down.invalid/v1' } });
      expect((await expectProblem(down, 503)).detail).toMatch(/could not be looked up now \(DNS EAI_AGAIN\)/);
      expect(down.headers.get('retry-after')).toBe('5');
    } finally {
      hostLookup.lookup = system;
    }
  });

  test('concurrent PATCHes of different fields all land (no lost update); a PATCH never revives a deleted target', async () => {
    const id = 'race-yt';
    expect((await svc.api(`/v1/partners/${PARTNER}/targets?verify=false`, { json: { ...newTarget, id } })).status).toBe(201);
    const path = `/v1/partners/${PARTNER}/targets/${id}`;
    const patches = [{ name: 'Renamed' }, { enabled: false }, { commissionRateBps: 777 }, { pinDelayMs: 1234 }, { rateLimit: { requests: 9, windowMs: 9000 } }, { credentials: { refreshToken: ROTATED } }];
    const rs = await Promise.all(patches.map((json) => svc.api(`${path}?verify=false`, { method: 'PATCH', json })));
    expect(rs.map((r) => r.status)).toEqual(patches.map(() => 200));
    const t = (await svc.rt.partners.getTarget(PARTNER, id))!;
    expect(t).toMatchObject({ name: 'Renamed', enabled: false, commissionRateBps: 777, pinDelayMs: 1234, rateLimit: { requests: 9, windowMs: 9000 } });
    expect(svc.rt.partners.openCredentials(t)).toEqual({ refreshToken: ROTATED });

    const [del, patch] = await Promise.all([svc.api(path, { method: 'DELETE' }), svc.api(path, { method: 'PATCH', json: { name: 'Late' } })]);
    expect(del.status).toBe(204);
    expect([200, 404]).toContain(patch.status);
    expect(await svc.rt.partners.getTarget(PARTNER, id)).toBeNull();
  });
});

describe('ALLOW_PRIVATE_DESTINATIONS=false', () => {
  let strict: TestService;
  beforeAll(async () => {
    strict = await startService({ redis: svc.redis, env: { ALLOW_PRIVATE_DESTINATIONS: 'false' } });
    expect(strict.config.allowPrivateDestinations).toBe(false);
    expect((await strict.api('/v1/partners', { json: { id: 'sp', name: 'Strict' } })).status).toBe(201);
  });
  afterAll(async () => {
    await strict.close();
  });

  test.each([
    'http://127.0.0.1:4100/youtube',
    'http://localhost:4100/',
    'http://10.0.0.5/',
    'http://192.168.1.10/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]:8080/',
    'http://[::ffff:127.0.0.1]/',
    'http://2130706433/',
  ])('baseUrl %s is refused (400)', async (baseUrl) => {
    const p = await expectProblem(await strict.api('/v1/partners/sp/targets?verify=false', { json: { ...newTarget, id: 'strict-yt', baseUrl } }), 400);
    expect(p.errors?.map((e) => e.path)).toContain('body.baseUrl');
    expect(await strict.rt.partners.getTarget('sp', 'strict-yt')).toBeNull();
  });

  test('a public baseUrl is accepted, and PATCHing it to a private one is refused', async () => {
    const r = await strict.api('/v1/partners/sp/targets?verify=false', { json: { ...newTarget, id: 'strict-pub', baseUrl: 'https://93.184.216.34/youtube' } });
    expect(r.status).toBe(201);
    const p = await expectProblem(await strict.api('/v1/partners/sp/targets/strict-pub', { method: 'PATCH', json: { baseUrl: 'http://127.0.0.1:4100/youtube' } }), 400);
    expect(p.errors?.map((e) => e.path)).toContain('body.baseUrl');
    expect((await strict.rt.partners.getTarget('sp', 'strict-pub'))?.baseUrl).toBe('https://93.184.216.34/youtube');
  });
});
