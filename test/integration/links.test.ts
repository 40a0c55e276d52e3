/**
 * Tracked links and clicks (the external contract §4): `GET /l/{code}` records a click and redirects (302) with
 * sclid + utm parameters; the click is attributed to (partner, show, target, product) and stores no
 * raw IP; HEAD requests and crawlers are redirected without a click; unknown codes are 404; click ids
 * are unique and time-sortable. Real redis-server, real HTTP.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { redirectUrl } from '../../src/links/link.service.js';
import { startRoles } from '../../src/main/process.js';
import { masters } from '../../src/store/redis.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;
const PARTNER = 'lp';
const link = { partnerId: PARTNER, showId: 'show-42', targetId: 'tt-main', platform: 'tiktok' as const, productId: 'p1', url: 'https://shop.example.com/products/p1?color=red' };
let trackedUrl: string;
let code: string;

beforeAll(async () => {
  svc = await startService();
  trackedUrl = await svc.rt.links.ensure(link);
  code = trackedUrl.split('/l/')[1]!;
});
afterAll(async () => {
  await svc.close();
});

/** Clicks stored: the click keys in this file's Redis (every master of a cluster). */
async function clicksLen(): Promise<number> {
  const client = svc.rt.redis;
  let n = 0;
  for (const node of masters(client)) {
    for await (const keys of node.scanStream({ match: svc.rt.keys.click('*'), count: 1000 }) as AsyncIterable<string[]>) n += keys.length;
  }
  return n;
}

async function hit(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', ...init });
}

test('ensure() gives a stable tracked URL on this service, unique per (show, target, product)', async () => {
  expect(trackedUrl).toBe(`${svc.url}/l/${code}`);
  expect(code).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
  expect(await svc.rt.links.ensure(link)).toBe(trackedUrl);
  const others = await Promise.all([
    svc.rt.links.ensure({ ...link, productId: 'p2' }),
    svc.rt.links.ensure({ ...link, targetId: 'yt-main', platform: 'youtube' }),
    svc.rt.links.ensure({ ...link, showId: 'show-43' }),
  ]);
  expect(new Set([trackedUrl, ...others]).size).toBe(4);
});

test("an API process makes its links on PUBLIC_BASE_URL when it is set, else on http://localhost:{the port it bound} (PORT=0)", async () => {
  const set = await startRoles(['api'], { ...svc.config, publicBaseUrl: 'https://go.example.com/shop', publicBaseUrlFollowsPort: false }, { logger: false });
  try {
    expect(set.runtime.links.urlFor(code)).toBe(`https://go.example.com/shop/l/${code}`);
  } finally {
    await set.stop();
  }
  const unset = await startRoles(['api'], { ...svc.config, publicBaseUrl: 'http://localhost:0', publicBaseUrlFollowsPort: true }, { logger: false });
  try {
    expect(unset.runtime.links.urlFor(code)).toBe(`http://localhost:${new URL(unset.url!).port}/l/${code}`);
  } finally {
    await unset.stop();
  }
});

test('GET /l/{code} → 302 to the product with sclid and utm, and the click is recorded', async () => {
  const before = await clicksLen();
  const r = await hit(trackedUrl);
  expect(r.status).toBe(302);
  expect(r.headers.get('cache-control')).toMatch(/no-store/);
  const loc = new URL(r.headers.get('location')!);
  expect(`${loc.origin}${loc.pathname}`).toBe('https://shop.example.com/products/p1');
  expect(loc.searchParams.get('color')).toBe('red');
  expect(loc.searchParams.get('utm_source')).toBe('tiktok');
  expect(loc.searchParams.get('utm_medium')).toBe('live');
  expect(loc.searchParams.get('utm_campaign')).toBe('show-42');
  const clickId = loc.searchParams.get('sclid');
  expect(clickId).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);

  const click = await svc.rt.links.findClick(clickId!);
  expect(click).toMatchObject({ id: clickId, code, partnerId: PARTNER, showId: 'show-42', targetId: 'tt-main', platform: 'tiktok', productId: 'p1' });
  expect(Math.abs(Date.parse(click!.at) - Date.now())).toBeLessThan(10_000);
  expect(await clicksLen()).toBe(before + 1);

  // No raw IP anywhere in what was stored for this click.
  const raw = await svc.rt.redis.get(svc.rt.keys.click(clickId!));
  expect(raw).toBeTruthy();
  expect(raw).not.toContain('127.0.0.1');
  expect(raw).not.toMatch(/::1|::ffff:/);
  // A forwarded client address is not stored either (a proxy on this host is trusted: TRUST_PROXY's default).
  const fwd = await hit(trackedUrl, { headers: { 'x-forwarded-for': '203.0.113.77' } });
  const fwdId = new URL(fwd.headers.get('location')!).searchParams.get('sclid')!;
  expect(await svc.rt.redis.get(svc.rt.keys.click(fwdId))).not.toContain('203.0.113.77');
});

test('HEAD and crawlers are redirected without recording a click', async () => {
  const before = await clicksLen();
  const head = await hit(trackedUrl, { method: 'HEAD' });
  expect(head.status).toBe(302);
  const headLoc = new URL(head.headers.get('location')!);
  expect(headLoc.searchParams.get('sclid')).toBeNull();
  expect(headLoc.searchParams.get('utm_campaign')).toBe('show-42');

  for (const ua of ['facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)', 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'Slackbot-LinkExpanding 1.0', 'WhatsApp/2.23']) {
    const r = await hit(trackedUrl, { headers: { 'user-agent': ua } });
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(loc.searchParams.get('sclid')).toBeNull();
    expect(loc.searchParams.get('utm_source')).toBe('tiktok');
  }
  // A browser prefetch is not a click either.
  const pre = await hit(trackedUrl, { headers: { 'sec-purpose': 'prefetch' } });
  expect(pre.status).toBe(302);
  expect(new URL(pre.headers.get('location')!).searchParams.get('sclid')).toBeNull();

  expect(await clicksLen()).toBe(before);

  // A browser user agent does count (the checks above could not pass by recording nothing at all).
  const human = await hit(trackedUrl, { headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148' } });
  expect(new URL(human.headers.get('location')!).searchParams.get('sclid')).toBeTruthy();
  expect(await clicksLen()).toBe(before + 1);
});

test('a GET from a plain HTTP client (curl, Wget, python-requests, Go) is a click with sclid, as the contract §4 says of every GET: only unfurlers, crawlers and prefetches are not', async () => {
  // They fetch a link only when someone runs them (a partner's test suite, a script): unlike a chat
  // app's unfurler they do not fetch every link posted. Counting them as bots left such a caller
  // without the sclid its order needs, so the click could never attribute.
  for (const ua of ['curl/8.5.0', 'Wget/1.21.4', 'python-requests/2.31.0', 'Go-http-client/1.1']) {
    const before = await clicksLen();
    const r = await hit(trackedUrl, { headers: { 'user-agent': ua } });
    expect(r.status).toBe(302);
    expect({ ua, sclid: new URL(r.headers.get('location')!).searchParams.get('sclid') }).toEqual({ ua, sclid: expect.stringMatching(/^clk_/) });
    expect(await clicksLen()).toBe(before + 1);
  }
});

/** One GET of the tracked link as `ua`: the sclid its redirect carries and how many clicks it stored. */
async function getAs(ua: string): Promise<{ ua: string; sclid: string | null; clicks: number }> {
  const before = await clicksLen();
  const r = await hit(trackedUrl, { headers: { 'user-agent': ua } });
  expect(r.status).toBe(302);
  return { ua, sclid: new URL(r.headers.get('location')!).searchParams.get('sclid'), clicks: (await clicksLen()) - before };
}

test('a headless browser (HeadlessChrome, Playwright) is a click with sclid; a crawler (Googlebot, Bingbot) in the same browser engine is not', async () => {
  // A headless browser is driven by someone (an end-to-end test, an automation): §4 gives its GET a
  // click like any other. Only unfurlers, crawlers and prefetches go without one.
  for (const ua of [
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 Safari/537.36',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36 Playwright/1.49.0',
  ]) {
    const got = await getAs(ua);
    expect(got).toEqual({ ua, sclid: expect.stringMatching(/^clk_/), clicks: 1 });
    expect((await svc.rt.links.findClick(got.sclid!))?.code).toBe(code);
  }
  for (const ua of [
    'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.33 Safari/537.36',
    'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36',
  ]) {
    expect(await getAs(ua)).toEqual({ ua, sclid: null, clicks: 0 });
  }
});

test('an unknown or malformed code is 404 problem+json and records nothing', async () => {
  const before = await clicksLen();
  for (const c of ['AAAAAAAAAAAAAAAA', 'zz', encodeURIComponent('../../etc/passwd'), encodeURIComponent('bad code!')]) {
    const r = await hit(`${svc.url}/l/${c}`);
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.headers.get('location')).toBeNull();
    expect(await r.json()).toMatchObject({ status: 404 });
  }
  expect(await clicksLen()).toBe(before);
});

test("every answer of /l/ carries its request id (the caller's when it is a plain id, else a new one); the route runs no hook but the request id's", async () => {
  const cached = await hit(trackedUrl, { headers: { 'x-request-id': 'click-rid-1' } });
  expect(cached.status).toBe(302);
  expect(cached.headers.get('x-request-id')).toBe('click-rid-1');
  const made = await hit(trackedUrl, { headers: { 'x-request-id': 'not a plain id' } });
  expect(made.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9_-]{12}$/);
  const head = await hit(trackedUrl, { method: 'HEAD', headers: { 'x-request-id': 'click-rid-2' } });
  expect([head.status, head.headers.get('x-request-id')]).toEqual([302, 'click-rid-2']);
  const unknown = await hit(`${svc.url}/l/AAAAAAAAAAAAAAAA`, { headers: { 'x-request-id': 'click-rid-3' } });
  expect([unknown.status, unknown.headers.get('x-request-id')]).toEqual([404, 'click-rid-3']);
  // A first click (link not cached in this process) goes the async way.
  const fresh = await svc.rt.links.ensure({ ...link, productId: 'p-rid' });
  const first = await hit(fresh, { headers: { 'x-request-id': 'click-rid-4' } });
  expect([first.status, first.headers.get('x-request-id')]).toEqual([302, 'click-rid-4']);
  // The redirect (a request per click: the API's hottest path) runs one onRequest hook (the request
  // id) and no preValidation step; the routes that take a body keep theirs (Unicode bodies).
  const lines = svc.app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n');
  /** The route's hooks, by lifecycle step, and how many functions each step runs. */
  const hooksOf = (route: string): Record<string, number> => {
    const at = lines.findIndex((l) => l.includes(route));
    expect(at).toBeGreaterThanOrEqual(0);
    const out: Record<string, number> = {};
    for (const l of lines.slice(at + 1)) {
      const m = /• \((\w+)\) (\[.*\])/.exec(l);
      if (!m) break;
      out[m[1]!] = (JSON.parse(m[2]!) as unknown[]).length;
    }
    return out;
  };
  const redirectHooks = hooksOf('l/:code (GET, HEAD)');
  expect(redirectHooks['onRequest']).toBe(1);
  expect(redirectHooks['preValidation']).toBeUndefined();
  // (and on a Cluster the replica ack's onSend, which every route has: app.ts)
  expect(Object.keys(redirectHooks).filter((h) => h !== 'onRequest' && h !== 'onSend')).toEqual([]);
  expect(Object.keys(hooksOf('events (POST)'))).toEqual(expect.arrayContaining(['onRequest', 'preValidation', 'preHandler']));
});

test('click ids are unique and sortable: a later click sorts after an earlier one', async () => {
  const idOf = async (): Promise<string> => new URL((await hit(trackedUrl)).headers.get('location')!).searchParams.get('sclid')!;
  const first = await idOf();
  await sleep(5); // ids are time-ordered to the millisecond
  const second = await idOf();
  expect(second).not.toBe(first);
  expect(second > first).toBe(true);
  const [c1, c2] = await Promise.all([svc.rt.links.findClick(first), svc.rt.links.findClick(second)]);
  expect(Date.parse(c2!.at)).toBeGreaterThan(Date.parse(c1!.at));

  // A burst of concurrent clicks: all distinct, all recorded, sorted ids follow their timestamps.
  const before = await clicksLen();
  const ids = await Promise.all(Array.from({ length: 40 }, () => idOf()));
  expect(new Set(ids).size).toBe(ids.length);
  expect(await clicksLen()).toBe(before + ids.length);
  const clicks = await Promise.all([...ids].sort().map((id) => svc.rt.links.findClick(id)));
  const times = clicks.map((c) => Date.parse(c!.at));
  for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
});

test('refreshing a link with a new product URL redirects there', async () => {
  const l2 = { ...link, productId: 'p9', url: 'https://shop.example.com/p9' };
  const u = await svc.rt.links.ensure(l2);
  expect(new URL((await hit(u)).headers.get('location')!).pathname).toBe('/p9');
  expect(await svc.rt.links.ensure({ ...l2, url: 'https://shop.example.com/p9-v2' })).toBe(u);
  const r = await hit(u);
  const loc = new URL(r.headers.get('location')!);
  expect(loc.pathname).toBe('/p9-v2');
  expect(await svc.rt.links.findClick(loc.searchParams.get('sclid')!)).toMatchObject({ productId: 'p9', showId: 'show-42' });
});

test('a stored click is the JSON of its record without its id (same keys, same order) in the click key that names it, its only copy', async () => {
  const r = await hit(trackedUrl);
  const id = new URL(r.headers.get('location')!).searchParams.get('sclid')!;
  const raw = (await svc.rt.redis.get(svc.rt.keys.click(id)))!;
  const parsed = JSON.parse(raw) as Record<string, string>;
  expect(Object.keys(parsed)).toEqual(['code', 'partnerId', 'showId', 'targetId', 'platform', 'productId', 'at', 'ipHash']);
  expect(raw).toBe(JSON.stringify(parsed));
  expect(parsed).toMatchObject({ code, partnerId: PARTNER, showId: 'show-42', targetId: 'tt-main', platform: 'tiktok', productId: 'p1' });
  // findClick puts the id (the key's) back
  expect(await svc.rt.links.findClick(id)).toEqual({ ...parsed, id });
  expect(new Date(parsed['at']!).toISOString()).toBe(parsed['at']);
  expect(parsed['ipHash']).toMatch(/^[A-Za-z0-9_-]{16,}$/);
  // kept 400 days (CLICK_TTL_SEC; docs/operations.md "Growth is bounded")
  const ttl = await svc.rt.redis.ttl(svc.rt.keys.click(id));
  expect(ttl).toBeGreaterThan(399 * 24 * 3600);
  expect(ttl).toBeLessThanOrEqual(400 * 24 * 3600);
});

test('clicks of one moment go to Redis together: every click is stored with its own record, also past one call (64)', async () => {
  const links = await Promise.all(Array.from({ length: 150 }, (_, i) => svc.rt.links.ensure({ ...link, showId: `burst-${i % 7}`, productId: `bp${i}`, url: `https://shop.example.com/bp${i}` })));
  const records = await Promise.all(links.map((u) => svc.rt.links.find(u.split('/l/')[1]!)));
  const before = await clicksLen();
  const results = await Promise.all(records.map((l, i) => svc.rt.links.click(l!, `198.51.100.${i % 250}`, true)));
  expect(await clicksLen()).toBe(before + 150);
  const stored = await Promise.all(results.map((r) => svc.rt.links.findClick(r.click!.id)));
  results.forEach((r, i) => {
    expect(stored[i]).toEqual(r.click);
    expect(r.click).toMatchObject({ productId: `bp${i}`, showId: `burst-${i % 7}` });
    expect(r.product).toBeUndefined(); // these shows have no snapshot: the link's stored URL serves
    expect(r.location).toBe(redirectUrl(records[i]!, r.click!.id, `https://shop.example.com/bp${i}`));
  });
  // a bot's read: no click, the same URL without sclid
  const bot = await svc.rt.links.click(records[0]!, '198.51.100.1', false);
  expect(bot.click).toBeUndefined();
  expect(bot.location).toBe(redirectUrl(records[0]!, undefined, 'https://shop.example.com/bp0'));
});

test('click lookups of one moment each get their own click (unknown ids: none), also past one MGET (256)', async () => {
  const l = (await svc.rt.links.find((await svc.rt.links.ensure({ ...link, showId: 'lookup-show', productId: 'lp' })).split('/l/')[1]!))!;
  const clicks = await Promise.all(Array.from({ length: 200 }, (_, i) => svc.rt.links.recordClick(l, `203.0.113.${i % 250}`)));
  const ids = clicks.flatMap((c, i) => [c.id, `clk_unknown_${i}`]);
  const found = await Promise.all(ids.map((id) => svc.rt.links.findClick(id)));
  found.forEach((f, i) => expect(f).toEqual(i % 2 === 0 ? clicks[i / 2] : null));
});

test('link records read at one moment go in one MGET on one Redis (not a GET each), each answered with its own record', async () => {
  const urls = await Promise.all(Array.from({ length: 40 }, (_, i) => svc.rt.links.ensure({ ...link, showId: 'read-burst', productId: `rb${i}`, url: `https://shop.example.com/rb${i}` })));
  const calls = async (cmd: string): Promise<number> => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(await svc.rt.redis.info('commandstats'))?.[1] ?? 0);
  const [get0, mget0] = [await calls('get'), await calls('mget')];
  // none of them in this process' link cache yet (ensure() does not add them): each is read from Redis
  const found = await Promise.all([...urls.map((u) => svc.rt.links.find(u.split('/l/')[1]!)), svc.rt.links.find('unknownCode123')]);
  found.slice(0, -1).forEach((l, i) => expect(l).toMatchObject({ showId: 'read-burst', productId: `rb${i}`, url: `https://shop.example.com/rb${i}` }));
  expect(found.at(-1)).toBeNull();
  if (!(svc.rt.redis instanceof Redis)) return; // (a Cluster reads them in one call per master: links.cluster.test.ts)
  expect((await calls('get')) - get0).toBe(0);
  expect((await calls('mget')) - mget0).toBe(1);
});

test('a link cached longer than LINK_CACHE_MS still serves its click at once while its record is read again; a record read again replaces it, a record gone drops it (404)', async () => {
  const cache = (svc.rt.links as unknown as { cache: Map<string, { at: number }> }).cache;
  const age = (c: string, ms: number): void => void (cache.get(c)!.at = Date.now() - ms);
  const c1 = (await svc.rt.links.ensure({ ...link, showId: 'stale-show', productId: 'st1', url: 'https://shop.example.com/st1-old' })).split('/l/')[1]!;
  await svc.rt.links.find(c1); // in this process' cache
  // another process refreshes the record (its fallback URL); this process' entry is 6 s old
  await svc.rt.redis.set(svc.rt.keys.link(c1), JSON.stringify({ ...link, code: c1, showId: 'stale-show', productId: 'st1', url: 'https://shop.example.com/st1-new' }));
  age(c1, 6000);
  const clicks0 = await clicksLen();
  // served from the cache entry: the click leaves without waiting for a link read (was false: the caller read the link first)
  const r = await new Promise<{ served: boolean; click: unknown; location: string }>((resolve, reject) => {
    const served = svc.rt.links.clickCached(c1, '192.0.2.9', true, (err, res) => (err ? reject(err) : resolve({ served, click: res!.click, location: res!.location })));
    if (!served) resolve({ served, click: undefined, location: '' });
  });
  expect(r.served).toBe(true);
  expect(r.click).toMatchObject({ code: c1, showId: 'stale-show', productId: 'st1' });
  expect(await clicksLen()).toBe(clicks0 + 1);
  // ... and the record was read again meanwhile: the entry is fresh, with the new fallback URL
  for (let i = 0; i < 500 && svc.rt.links.cached(c1)?.url !== 'https://shop.example.com/st1-new'; i++) await sleep(10);
  expect(svc.rt.links.cached(c1)?.url).toBe('https://shop.example.com/st1-new');
  expect(new URL((await hit(`${svc.url}/l/${c1}`)).headers.get('location')!).pathname).toBe('/st1-new');
  // an entry past LINK_STALE_MS (a link not clicked here for a minute, or a re-read that never came back) is not used: the link is read first
  age(c1, 61_000);
  expect(svc.rt.links.clickCached(c1, '192.0.2.9', true, () => undefined)).toBe(false);
  // a record no longer in Redis: the stale entry serves the click that finds it stale, then is dropped (404 after)
  await svc.rt.links.find(c1);
  await svc.rt.redis.del(svc.rt.keys.link(c1));
  age(c1, 6000);
  expect((await hit(`${svc.url}/l/${c1}`)).status).toBe(302);
  for (let i = 0; i < 500 && cache.has(c1); i++) await sleep(10);
  expect((await hit(`${svc.url}/l/${c1}`)).status).toBe(404);
});

test("a click that Redis refuses fails on its own: the other clicks sent with it are stored and answered", async () => {
  const bad = { ...link, showId: 'broken-show', productId: 'pb' };
  const good = { ...link, showId: 'fine-show', productId: 'pg' };
  const [badRec, goodRec] = await Promise.all([bad, good].map(async (l) => svc.rt.links.find((await svc.rt.links.ensure(l)).split('/l/')[1]!)));
  // The show's desired-state key holds a string: reading it as a hash fails (WRONGTYPE).
  await svc.rt.redis.set(svc.rt.keys.desired(PARTNER, 'broken-show'), 'not a hash');
  try {
    const before = await clicksLen();
    const [b, g] = await Promise.allSettled([svc.rt.links.click(badRec!, '192.0.2.1', true), svc.rt.links.click(goodRec!, '192.0.2.2', true)]);
    expect(b.status).toBe('rejected');
    expect(String((b as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(g.status).toBe('fulfilled');
    const click = (g as PromiseFulfilledResult<Awaited<ReturnType<typeof svc.rt.links.click>>>).value.click!;
    expect(await svc.rt.links.findClick(click.id)).toEqual(click);
    expect(await clicksLen()).toBeGreaterThanOrEqual(before + 1);
    // And over HTTP the refused click is no redirect.
    const r = await hit((await svc.rt.links.ensure(bad)));
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.headers.get('location')).toBeNull();
  } finally {
    await svc.rt.redis.del(svc.rt.keys.desired(PARTNER, 'broken-show'));
  }
});

test('syndicast_link_clicks_total counts human and bot hits once each, whenever it is scraped', async () => {
  const count = async (kind: 'human' | 'bot'): Promise<number> => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const m = new RegExp(`^syndicast_link_clicks_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  const [human0, bot0] = [await count('human'), await count('bot')];
  const browser = { headers: { 'user-agent': 'Mozilla/5.0 (Macintosh) Safari/605.1.15' } };
  expect((await hit(trackedUrl, browser)).status).toBe(302);
  expect((await hit(trackedUrl, browser)).status).toBe(302);
  expect((await hit(trackedUrl, { headers: { 'user-agent': 'Slackbot-LinkExpanding 1.0' } })).status).toBe(302);
  expect(await count('human')).toBe(human0 + 2);
  expect(await count('bot')).toBe(bot0 + 1);
  // read again with no hits in between: nothing counted twice
  expect(await count('human')).toBe(human0 + 2);
  expect(await count('bot')).toBe(bot0 + 1);
  expect((await hit(trackedUrl, browser)).status).toBe(302);
  expect(await count('human')).toBe(human0 + 3);
});

test('a click after Redis lost its scripts (SCRIPT FLUSH, as after a restart) is still stored before its 302', async () => {
  const client = svc.rt.redis;
  for (const node of masters(client)) await node.script('FLUSH');
  const before = await clicksLen();
  const first = await hit(trackedUrl);
  expect(first.status).toBe(302);
  const id = new URL(first.headers.get('location')!).searchParams.get('sclid');
  expect(id).toMatch(/^clk_/);
  expect(await svc.rt.redis.get(svc.rt.keys.click(id!))).toContain('"productId":"p1"');
  // and the next one (the script loaded again by the first) too
  const second = await hit(trackedUrl);
  expect(second.status).toBe(302);
  expect(await clicksLen()).toBe(before + 2);
});

test('syndicast_http_request_duration_seconds counts every answer of /l/ once, with its status (first click, cached click, HEAD, 404, Redis down), and requests no route took as unmatched', async () => {
  const count = async (labels: string): Promise<number> => {
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`syndicast_http_request_duration_seconds_count{${labels}}`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const redirects = 'method="GET",route="/l/:code",status="302"';
  const heads = 'method="HEAD",route="/l/:code",status="302"';
  const notFound = 'method="GET",route="/l/:code",status="404"';
  const unavailable = 'method="GET",route="/l/:code",status="503"';
  const unmatched = 'method="GET",route="unmatched",status="404"';
  const before = { redirects: await count(redirects), heads: await count(heads), notFound: await count(notFound), unavailable: await count(unavailable), unmatched: await count(unmatched) };
  // a link this process has not read yet (the first click's async way), then the cached one's callback way
  const fresh = await svc.rt.links.ensure({ ...link, productId: 'p-metrics' });
  expect((await hit(fresh)).status).toBe(302);
  expect((await hit(fresh)).status).toBe(302);
  expect((await hit(fresh, { method: 'HEAD' })).status).toBe(302);
  expect((await hit(`${svc.url}/l/nope-metrics-0`)).status).toBe(404);
  expect((await hit(`${svc.url}/nowhere-metrics`)).status).toBe(404);
  // the click's own error (Redis refuses the write): the cached link's callback way answers 503
  const client = svc.rt.redis;
  const nodes = masters(client);
  for (const node of nodes) await node.config('SET', 'maxmemory', '1', 'maxmemory-policy', 'noeviction');
  try {
    expect((await hit(fresh)).status).toBe(503);
  } finally {
    for (const node of nodes) await node.config('SET', 'maxmemory', '0');
  }
  // observed once sent: the last answer may still be on its way into the histogram
  await sleep(50);
  expect({ redirects: await count(redirects), heads: await count(heads), notFound: await count(notFound), unavailable: await count(unavailable), unmatched: await count(unmatched) }).toEqual({
    redirects: before.redirects + 2,
    heads: before.heads + 1,
    notFound: before.notFound + 1,
    unavailable: before.unavailable + 1,
    unmatched: before.unmatched + 1,
  });
});
