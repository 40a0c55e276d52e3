/**
 * What a partner's reads and repairs return: a show's pull source as each role sees it, a target whose
 * stored credentials no key opens any more, an outbound endpoint's url as each role sees it, a filtered
 * show list of a partner with many shows. Once three files (show-view.source-secrets,
 * targets.patch-unopenable-credentials, shows.filtered-list-bounded), each of which started its own
 * redis-server and service (CI time: docs/testing.md). One service for all, on startService's defaults;
 * each is a `describe` of its own, with its own partners (pv, pu, pe, big and small) and targets,
 * shows.filtered-list-bounded last (its afterAll closes an app of its own). Real redis-server, real HTTP.
 */
import { randomBytes } from 'node:crypto';
import { buildApp } from '../../src/api/app.js';
import { SecretBox } from '../../src/lib/crypto.js';
import { RedisTokenStore } from '../../src/store/token.repository.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';
import { NO_TOKEN_RECORD, tokenRecord } from '../helpers/whatnot-grant.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('show-view.source-secrets', () => {
  /**
   * A show's pull source (`sourceUrl`, §10) carries the partner's stream credentials (the RTMP key in the
   * path, an HLS/SRT token or passphrase in the query, user:password). The show view hides the show's own
   * stream key from viewer keys; it showed the source's key to them in plain text (found against
   * `npm start`). A viewer now sees the source masked as the relay masks it in `lastError`; the partner
   * and operators, who set it, see it whole.
   */
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'pv');
  });

  const keyFor = async (json: Record<string, unknown>): Promise<string> => {
    const r = await svc.api('/v1/api-keys', { json, key: ADMIN_KEY });
    expect(r.status).toBe(201);
    return ((await r.json()) as { key: string }).key;
  };
  const sourceSeenBy = async (key: string, showId: string): Promise<string | undefined> => {
    const r = await svc.api(`/v1/partners/pv/shows/${showId}`, { key });
    expect(r.status).toBe(200);
    return ((await r.json()) as { show: { sourceUrl?: string } }).show.sourceUrl;
  };

  test.each([
    ['rtmp', 'rtmp://media.example.com/live/RTMPKEY0123456789', 'RTMPKEY0123456789'],
    ['hls', 'https://cdn.example.com/hls/index.m3u8?token=HLSTOKEN0123456789', 'HLSTOKEN0123456789'],
    ['srt', 'srt://media.example.com:9000?streamid=publish/SRTKEY0123456789&passphrase=SRTPASS0123456789', 'SRTPASS0123456789'],
    ['userinfo', 'https://enc:USERPASS0123456789@cdn.example.com/hls/index.m3u8', 'USERPASS0123456789'],
  ])('%s source: a viewer sees it without its credential; partner, operator and admin see it whole', async (name, sourceUrl, credential) => {
    const showId = `src-${name}`;
    expect((await sendEvent(svc, 'pv', secret, showEvent('show.scheduled', sampleShow(showId, { sourceUrl }), new Date().toISOString()))).status).toBe(202);
    const viewer = await sourceSeenBy(await keyFor({ role: 'viewer' }), showId);
    expect(viewer).toBeDefined();
    expect(viewer).not.toContain(credential);
    expect(viewer).toContain('example.com');
    for (const key of [ADMIN_KEY, await keyFor({ role: 'operator' }), await keyFor({ role: 'partner', partnerId: 'pv' })]) expect(await sourceSeenBy(key, showId)).toBe(sourceUrl);
  });
});

describe('targets.patch-unopenable-credentials', () => {
  /**
   * A target whose stored credentials no key opens any more (SECRETS_KEY_PREVIOUS removed too early,
   * docs/operations.md "Rotating it in place") is repaired by a PATCH of its credentials. The same-grant
   * comparison (sameGrant, for the token record) opened the stored credentials for every credentials
   * PATCH, so that repair answered 500 and saved nothing. Now credentials that cannot be opened are not
   * the same grant: the PATCH saves the new ones. A checked PATCH of baseUrl alone has nothing to check
   * the new host with: 409 (it was a 500). Real service, real Redis.
   */
  beforeAll(async () => {
    expect((await svc.api('/v1/partners', { json: { id: 'pu', name: 'Unopenable' } })).status).toBe(201);
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
});

describe('endpoints.url-viewer-mask', () => {
  /**
   * An outbound webhook endpoint's `url` may carry the receiver's secret (`?token=…`, user:password,
   * or in the path: Slack's `/services/T…/B…/<secret>`, Discord's `/api/webhooks/<id>/<token>`). A
   * viewer key read it whole on GET …/endpoints, GET …/endpoints/{e} and the ops console's
   * GET /v1/ops/endpoints (attack, 2026-12-07). A viewer now gets it masked (maskUrl, `path: 'hidden'`:
   * user:password, query values, the whole path but a bare `/`, token-like host labels as `***`:
   * Pipedream's `eo….m.pipedream.net` kept its token in the host, webhook.site its UUID in the path, as
   * viewers read them; scheme, port, registrable host and query keys kept). The path's shape is not shown:
   * a short all-letter secret in a middle segment (`/abcdefgh/in`) looks like a word. Operator, admin and
   * the partner's own key get it whole (as registered), on every one of those routes.
   */
  const P = 'pe';
  const TOKEN = 'ENDPOINTTOKEN0123456789';
  const PASSWORD = 'ENDPOINTPASS0123456789';
  const QUERY_URL = `https://hooks.example.com/in?token=${TOKEN}&v=2`;
  const USERINFO_URL = `https://hook:${PASSWORD}@hooks.example.com/in`;
  const SLACK_SECRET = 'SLACKSECRET0123456789';
  const PATH_URL = `https://hooks.example.com/services/T0000/B0000/${SLACK_SECRET}`;
  const WORD_SECRET = 'abcdefgh';
  const WORD_URL = `https://hooks.example.com/${WORD_SECRET}/in`;
  const HOST_TOKEN = 'eo3jwbzqd6ltmxx';
  const HOST_URL = `https://${HOST_TOKEN}.m.pipedream.net/`;
  const UUID = '0f3c2b1a-1234-4abc-9def-0123456789ab';
  const UUID_URL = `https://webhook.site/${UUID}`;
  const keys: Record<string, string> = {};
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    await createPartner(svc, P);
    const keyFor = async (json: Record<string, unknown>): Promise<string> => {
      const r = await svc.api('/v1/api-keys', { json, key: ADMIN_KEY });
      expect(r.status).toBe(201);
      return ((await r.json()) as { key: string }).key;
    };
    keys['viewer'] = await keyFor({ role: 'viewer' });
    keys['operator'] = await keyFor({ role: 'operator' });
    keys['partner'] = await keyFor({ role: 'partner', partnerId: P });
    keys['admin'] = ADMIN_KEY;
    const create = async (url: string): Promise<string> => {
      const r = await svc.api(`/v1/partners/${P}/endpoints`, { key: ADMIN_KEY, json: { url, events: ['mirror.updated'] } });
      expect(r.status).toBe(201);
      const body = (await r.json()) as { id: string; url: string };
      expect(body.url).toBe(url);
      return body.id;
    };
    ids['query'] = await create(QUERY_URL);
    ids['path'] = await create(PATH_URL);
    ids['word'] = await create(WORD_URL);
    // user:password is refused in a new url (assertPublicDestination); one stored before that check is still read.
    ids['userinfo'] = await create('https://hooks.example.com/in');
    expect(await svc.rt.outbound.endpoints.update(P, ids['userinfo'], { url: USERINFO_URL })).toBe(true);
    // Hosts the test's DNS does not know: stored as registered ones are.
    for (const [name, url] of [['host', HOST_URL], ['uuid', UUID_URL]] as const) {
      ids[name] = await create('https://hooks.example.com/in');
      expect(await svc.rt.outbound.endpoints.update(P, ids[name], { url })).toBe(true);
    }
  });

  /** The url of each endpoint of P as `key` reads it on each route, by route. */
  const urlsSeenBy = async (key: string): Promise<Record<string, Record<string, string>>> => {
    const read = async <T>(path: string): Promise<T> => {
      const r = await svc.api(path, { key });
      expect(r.status).toBe(200);
      return (await r.json()) as T;
    };
    const byId = (list: { id: string; partnerId: string; url: string }[]): Record<string, string> => Object.fromEntries(list.filter((e) => e.partnerId === P).map((e) => [e.id, e.url]));
    const one = async (id: string): Promise<[string, string]> => [id, (await read<{ url: string }>(`/v1/partners/${P}/endpoints/${id}`)).url];
    return {
      list: byId((await read<{ endpoints: { id: string; partnerId: string; url: string }[] }>(`/v1/partners/${P}/endpoints`)).endpoints),
      get: Object.fromEntries(await Promise.all(Object.values(ids).map(one))),
      ops: byId((await read<{ endpoints: { id: string; partnerId: string; url: string }[] }>('/v1/ops/endpoints?limit=100')).endpoints),
    };
  };

  test('a viewer key gets the url without its query values, path token, host token and user:password on every route', async () => {
    const masked = {
      [ids['query']!]: 'https://hooks.example.com/***?token=***&v=***',
      [ids['path']!]: 'https://hooks.example.com/***',
      [ids['word']!]: 'https://hooks.example.com/***',
      [ids['userinfo']!]: 'https://***@hooks.example.com/***',
      [ids['host']!]: 'https://***.m.pipedream.net/',
      [ids['uuid']!]: 'https://webhook.site/***',
    };
    const seen = await urlsSeenBy(keys['viewer']!);
    expect(seen).toEqual({ list: masked, get: masked, ops: masked });
    for (const secret of [TOKEN, PASSWORD, SLACK_SECRET, WORD_SECRET, HOST_TOKEN, UUID]) expect(JSON.stringify(seen)).not.toContain(secret);
  });

  test("a target's baseUrl: masked for a viewer key, whole for the others", async () => {
    const BASE = `https://${HOST_TOKEN}.m.pipedream.net/api?key=${TOKEN}`;
    const created = await svc.api(`/v1/partners/${P}/targets?verify=false`, { key: ADMIN_KEY, json: { id: 'pe-wn', platform: 'whatnot', name: 'w', credentials: { accessToken: 'wn-token-pe' }, commissionRateBps: 100 } });
    expect(created.status).toBe(201);
    // A host the test's DNS does not know: stored as a checked one is.
    expect(await svc.rt.partners.updateTarget(P, 'pe-wn', (t) => ({ ...t, baseUrl: BASE }))).not.toBeNull();
    const baseSeenBy = async (key: string): Promise<string | undefined> => {
      const r = await svc.api(`/v1/partners/${P}/targets`, { key });
      expect(r.status).toBe(200);
      return ((await r.json()) as { targets: { id: string; baseUrl?: string }[] }).targets.find((t) => t.id === 'pe-wn')?.baseUrl;
    };
    expect(await baseSeenBy(keys['viewer']!)).toBe('https://***.m.pipedream.net/***?key=***');
    for (const role of ['operator', 'admin', 'partner']) expect(await baseSeenBy(keys[role]!)).toBe(BASE);
  });

  test.each(['operator', 'admin', 'partner'])('the %s key gets the url whole on every route', async (role) => {
    const whole = { [ids['query']!]: QUERY_URL, [ids['path']!]: PATH_URL, [ids['word']!]: WORD_URL, [ids['userinfo']!]: USERINFO_URL, [ids['host']!]: HOST_URL, [ids['uuid']!]: UUID_URL };
    expect(await urlsSeenBy(keys[role]!)).toEqual({ list: whole, get: whole, ops: whole });
  });
});

describe('shows.filtered-list-bounded', () => {
  /**
   * `GET /v1/partners/{p}/shows?state=…` of a partner with many shows. The filter is no index: the list
   * read every show the partner ever had on every request (to count `total`), whatever `limit` and
   * `cursor` said. Against `npm start` with one partner of 10,000 shows, one `?state=live&limit=1` took
   * 3.3 s, and twenty at once from that partner's own key took 30 s and held every other request of the
   * API for seconds (another partner's unfiltered list: 5.6 s). Now a request reads at most
   * SHOW_FILTER_SCAN_MAX shows (20 here) from its cursor on: a page may hold fewer than `limit` shows,
   * even none, `nextCursor` reads on from where it stopped, and `total` is null; paging to the end gives
   * every matching show once, in order. A partner with at most that many shows is listed as before.
   * Real Redis, real HTTP (an app on the service's runtime with a small scan bound).
   */
  const SCAN_MAX = 20;

  let app: Awaited<ReturnType<typeof buildApp>>;
  let base: string;
  let occurred = 0;

  type ShowPage = { shows: { id: string; state: string }[]; nextCursor: string | null; total: number | null };

  /** Show `n` of a partner, scheduled `n` hours after a fixed day: a higher `n` lists first. */
  const at = (n: number): string => new Date(Date.parse('2026-10-01T00:00:00Z') + n * 3_600_000).toISOString();

  async function send(partnerId: string, secret: string, type: string, show: Record<string, unknown>): Promise<void> {
    occurred += 1;
    const when = new Date(Date.parse('2026-11-20T10:00:00Z') + occurred * 1000).toISOString();
    expect((await sendEvent(svc, partnerId, secret, showEvent(type, show, when))).status).toBe(202);
  }

  beforeAll(async () => {
    const big = await createPartner(svc, 'big');
    // 60 shows: the 10 oldest ended (positions 50-59 of the list), the 50 newer scheduled.
    for (let n = 0; n < 60; n++) {
      if (n < 10) await send('big', big, 'show.ended', sampleShow(`e${n}`, { scheduledAt: at(n), state: 'ended' }));
      else await send('big', big, 'show.scheduled', sampleShow(`s${n}`, { scheduledAt: at(n) }));
    }
    const small = await createPartner(svc, 'small');
    for (let n = 0; n < 8; n++) await send('small', small, n % 2 ? 'show.ended' : 'show.scheduled', sampleShow(`m${n}`, { scheduledAt: at(n), state: n % 2 ? 'ended' : 'scheduled' }));
    app = await buildApp(svc.rt, { logger: false, dashboard: false, showFilterScanMax: SCAN_MAX });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
  });

  async function page(path: string): Promise<ShowPage> {
    const r = await fetch(base + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(r.status).toBe(200);
    return (await r.json()) as ShowPage;
  }

  /** Every page of `list` from `cursor` on (the cursor of each page to the next); at most 50 pages. */
  async function pages(list: string, cursor?: string): Promise<ShowPage[]> {
    const out = [await page(cursor === undefined ? list : `${list}&cursor=${cursor}`)];
    while (out.at(-1)!.nextCursor !== null && out.length < 50) out.push(await page(`${list}&cursor=${encodeURIComponent(out.at(-1)!.nextCursor!)}`));
    return out;
  }

  const ids = (ps: ShowPage[]): string[] => ps.flatMap((p) => p.shows.map((s) => s.id));

  test('a request reads at most the bound: the ended shows past it are not on the first page, paging on gives each once, in order', async () => {
    const first = await page('/v1/partners/big/shows?state=ended&limit=5');
    // The 10 ended shows are the 51st to 60th of the list: a request that reads 20 shows finds none.
    expect(first).toEqual({ shows: [], nextCursor: expect.any(String), total: null });
    const all = await pages('/v1/partners/big/shows?state=ended&limit=5');
    expect(ids(all)).toEqual(['e9', 'e8', 'e7', 'e6', 'e5', 'e4', 'e3', 'e2', 'e1', 'e0']);
    expect(all.every((p) => p.shows.length <= 5 && p.shows.every((s) => s.state === 'ended'))).toBe(true);
    expect(all.length).toBeGreaterThanOrEqual(4); // 20 shows a request at most: 60 shows need 3 requests before the last ended ones
  });

  test('a page that fills up before the bound goes on right after its last show', async () => {
    const all = await pages('/v1/partners/big/shows?state=scheduled&limit=7');
    expect(ids(all)).toEqual(Array.from({ length: 50 }, (_, i) => `s${59 - i}`));
    expect(all[0]!.shows).toHaveLength(7);
  });

  test('an old numeric cursor is a position in the whole list: shows may repeat, none is skipped', async () => {
    const all = await pages('/v1/partners/big/shows?state=ended&limit=5', '3');
    expect(ids(all)).toEqual(['e9', 'e8', 'e7', 'e6', 'e5', 'e4', 'e3', 'e2', 'e1', 'e0']);
  });

  test('a partner with no more shows than the bound is listed whole: exact total, full pages', async () => {
    const first = await page('/v1/partners/small/shows?state=ended&limit=3');
    expect(first.total).toBe(4);
    expect(ids(await pages('/v1/partners/small/shows?state=ended&limit=3'))).toEqual(['m7', 'm5', 'm3', 'm1']);
  });
});
