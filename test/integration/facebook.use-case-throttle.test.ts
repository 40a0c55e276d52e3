/**
 * Facebook throttles each Business Use Case on its own: the adapter on the shared Redis limiter
 * (src/store/rate-limiter.ts, a real redis-server) against the Facebook simulator over real HTTP. A
 * catalog (Live Shopping) throttle, 80009 with X-Business-Use-Case-Usage, holds the catalog calls for
 * the catalog's own estimate; the live video's end (a Page call) goes on. It held the whole target
 * for the largest estimate of the header.
 */
import axios from 'axios';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis, type RedisClient } from '../../src/store/redis.js';
import { createFacebookAdapter } from '../../src/targets/facebook/facebook.adapter.js';
import { RateLimitedError } from '../../src/targets/target.errors.js';
import { DEFAULT_FACEBOOK_GRAPH_VERSION } from '../../src/config/config.js';
import { buildAdapterContext, buildOpContext, caught } from '../helpers/adapter-context.js';
import { LINEN_PIN, useSimulators } from '../helpers/adapter-harness.js';
import { platformSim } from '../helpers/adapter-sim.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const PAGE_ID = SIM_ACCOUNTS.facebook[0]!.pageId;
const HOUR = 3600_000;
const sim = useSimulators();
const { control, requests, lastSeq } = platformSim(() => sim.url, 'facebook');

let server: TestRedis;
let redis: RedisClient;
beforeAll(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url }, 'worker');
});
afterAll(async () => {
  redis.disconnect();
  await server.destroy();
});

test('a catalog throttle (80009) holds the catalog calls for its own estimate; the live video is still ended and the Page read answers', async () => {
  const { pageAccessToken } = (await control('POST', '/accounts', { pageId: PAGE_ID })) as { pageAccessToken: string };
  await control('PUT', '/permissions', {
    token: pageAccessToken,
    granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
  });
  await control('PUT', '/catalog', { items: [{ retailer_id: LINEN_PIN.platformProductId, name: 'Linen shirt' }, { retailer_id: 'sku-denim', name: 'Denim jacket' }] });
  const t = buildAdapterContext({ platform: 'facebook', baseUrl: `${sim.url}/facebook`, credentials: { pageId: PAGE_ID, pageAccessToken }, targetId: 'tgt_buc' });
  t.ctx.limiter = new RedisRateLimiter(redis, new Keys('buc'), 'tgt_buc', undefined);
  const adapter = createFacebookAdapter(t.ctx);
  const remote = await adapter.createShow({ title: 'Spring drop', description: 'Live', scheduledAt: new Date(Date.now() + HOUR).toISOString() }, buildOpContext('mk-buc'));
  await adapter.startShow(remote, buildOpContext('start'));
  await adapter.pin(remote, LINEN_PIN, buildOpContext('mk-buc-1'));

  // One request per window and use case: the catalog read takes the catalog's, the pin is throttled.
  await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 170_000 });
  const before = await lastSeq();
  const err = await caught(adapter.pin(remote, { ...LINEN_PIN, productId: 'prod-denim', platformProductId: 'sku-denim' }, buildOpContext('mk-buc-2')));
  expect(err).toBeInstanceOf(RateLimitedError);
  expect((err as RateLimitedError).reason).toBe('code_80009');
  expect((err as RateLimitedError).delayMs).toBe(3 * 60_000); // the catalog's estimate
  expect((await requests(before)).map((r) => `${r.method} ${r.path.split('/').at(-1)} ${r.status}`)).toEqual(['GET pinnable_products 200', 'POST pinned_product 400']);

  // What Graph says, straight: the catalog is throttled for 3 minutes, the Page is not (estimate 0),
  // and the Page's calls are counted apart, so a Page read answers.
  const get = (path: string, fields: string): Promise<{ status: number; headers: Record<string, unknown> }> =>
    axios.get(`${sim.url}/facebook/${DEFAULT_FACEBOOK_GRAPH_VERSION}/${path}`, { headers: { authorization: `Bearer ${pageAccessToken}` }, params: { fields }, validateStatus: () => true });
  const catalog = await get(`${remote.externalId}/pinnable_products`, 'id');
  expect(catalog.status).toBe(400);
  const usage = JSON.parse(String(catalog.headers['x-business-use-case-usage'])) as Record<string, { type: string; estimated_time_to_regain_access: number }[]>;
  expect(usage[PAGE_ID]?.map((u) => [u.type, u.estimated_time_to_regain_access])).toEqual([
    ['pages', 0],
    ['catalog_management', 3],
  ]);
  expect((await get(remote.externalId, 'id,status')).status).toBe(200);

  // Our limiter holds the catalog calls (nothing sent) but not the Page's: the show ends.
  await control('PUT', '/limits', { requestsPerWindow: null });
  const held = await lastSeq();
  const again = await caught(adapter.pin(remote, { ...LINEN_PIN, productId: 'prod-denim', platformProductId: 'sku-denim' }, buildOpContext('mk-buc-3')));
  expect(again).toBeInstanceOf(RateLimitedError);
  expect((again as RateLimitedError).reason).toBe('local_limit');
  expect((again as RateLimitedError).delayMs).toBeGreaterThan(2 * 60_000);
  expect(await requests(held)).toEqual([]);
  await adapter.endShow(remote, buildOpContext('end'));
  expect((await requests(held)).map((r) => `${r.method} ${r.status}`)).toContain('POST 200');
});

test("a pin Graph throttles under pages (80001) waits on the pages block for the code's estimate, and a pages block holds the Page's calls", async () => {
  const { pageAccessToken } = (await control('POST', '/accounts', { pageId: PAGE_ID })) as { pageAccessToken: string };
  await control('PUT', '/permissions', {
    token: pageAccessToken,
    granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
  });
  await control('PUT', '/catalog', { items: [{ retailer_id: LINEN_PIN.platformProductId, name: 'Linen shirt' }] });
  const t = buildAdapterContext({ platform: 'facebook', baseUrl: `${sim.url}/facebook`, credentials: { pageId: PAGE_ID, pageAccessToken }, targetId: 'tgt_buc_pages' });
  t.ctx.limiter = new RedisRateLimiter(redis, new Keys('buc'), 'tgt_buc_pages', undefined);
  const adapter = createFacebookAdapter(t.ctx);
  const remote = await adapter.createShow({ title: 'Spring drop', description: 'Live', scheduledAt: new Date(Date.now() + HOUR).toISOString() }, buildOpContext('mk-bucp'));
  await adapter.startShow(remote, buildOpContext('start'));

  // Graph counts the Live Shopping edges under pages here: the pin's catalog read is refused with 80001.
  await control('PUT', '/use-cases', { liveShopping: 'pages' });
  await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 170_000 });
  const err = await caught(adapter.pin(remote, LINEN_PIN, buildOpContext('mk-bucp-1')));
  expect(err).toBeInstanceOf(RateLimitedError);
  expect((err as RateLimitedError).reason).toBe('code_80001');
  expect((err as RateLimitedError).delayMs).toBe(3 * 60_000); // the pages estimate, not the catalog's default minute

  // Retried after a minute (the limit lifted, so nothing else throttles): still held by pages, nothing sent.
  await control('PUT', '/limits', { requestsPerWindow: null });
  const held = await lastSeq();
  const again = await caught(adapter.pin(remote, LINEN_PIN, buildOpContext('mk-bucp-2')));
  expect(again).toBeInstanceOf(RateLimitedError);
  expect((again as RateLimitedError).reason).toBe('local_limit');
  expect((again as RateLimitedError).delayMs).toBeGreaterThan(2 * 60_000);
  // The pages block holds the Page's calls: a plain one (the end) and a reserved write (the update).
  const pageCalls = [(): Promise<void> => adapter.endShow(remote, buildOpContext('end')), (): Promise<void> => adapter.updateShow(remote, { title: 'Spring drop 2', description: 'Live', scheduledAt: new Date(Date.now() + HOUR).toISOString() }, buildOpContext('upd'))];
  for (const call of pageCalls) {
    const refused = await caught(call());
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect((refused as RateLimitedError).reason).toBe('local_limit');
  }
  expect(await requests(held)).toEqual([]);
});
