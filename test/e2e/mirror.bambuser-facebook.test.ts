/**
 * Bambuser and Facebook Live end to end with the real service and workers: one partner show mirrored
 * to both. Facebook is driven through its whole lifecycle by API (scheduled live video with an RTMPS
 * ingest → LIVE_NOW → pin comment → ended); Bambuser gets its show and a product highlight, while its
 * live state is the host's broadcast (lifecycle false: no start/end calls, no ingest). A Facebook target
 * whose token may use Live Shopping gets a product pin that the worker takes down again (issue 9).
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simRigPerFile, simTarget, waitForMirror, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const PARTNER = 'bfp';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView extends BaseMirrorView {
  ingest?: { url: string; streamKey: string };
  pins: { productId: string; state: string; linkUrl: string | null }[];
}

const mirrorWhere = (showId: string, targetId: string, pred: (m: MirrorView) => boolean, partner = PARTNER): Promise<MirrorView> =>
  waitForMirror(svc, partner, showId, pred, { targetId, failedIsError: true });

// FACEBOOK_GRAPH_VERSION reaches the adapter through config → runtime → sync service.
simRigPerFile(
  PARTNER,
  (s) => [
    simTarget(s, 'bambuser', { id: 'bmb', name: 'Bambuser', credentials: { apiKey: CREDENTIALS.bambuser.apiKey! }, commissionRateBps: 1000 }),
    simTarget(s, 'facebook', { id: 'fb', name: 'Facebook Page', commissionRateBps: 1000 }),
  ],
  (rig) => ({ sim, svc, secret } = rig),
  { service: { workers: true, env: { FACEBOOK_GRAPH_VERSION: 'v26.0' } } },
);

test('scheduled → live → pinned → ended on Bambuser and Facebook Live', async () => {
  const show = sampleShow('bf1', { scheduledAt: new Date(Date.now() + 3 * 3600_000).toISOString() });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, new Date().toISOString()))).status).toBe(202);

  const fbReady = await mirrorWhere('bf1', 'fb', (m) => m.state === 'ready');
  expect(fbReady.ingest).toEqual({ url: `${sim.rtmpUrl}/facebook/`, streamKey: expect.stringMatching(/^FB-/) });
  expect(fbReady.url).toMatch(new RegExp(`^https://www\\.facebook\\.com/${CREDENTIALS.facebook.pageId!}/videos/`));
  const bmbReady = await mirrorWhere('bf1', 'bmb', (m) => m.state === 'ready');
  expect(bmbReady.ingest).toBeUndefined();

  const liveAt = new Date(Date.now() + 1000).toISOString();
  await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, liveAt));
  const pinned = (m: MirrorView): boolean => m.state === 'live' && m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned');
  const fbLive = await mirrorWhere('bf1', 'fb', pinned);
  const bmbLive = await mirrorWhere('bf1', 'bmb', pinned);

  await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, state: 'ended', pinnedProductIds: ['p1'] }, new Date(Date.now() + 2000).toISOString()));
  await mirrorWhere('bf1', 'fb', (m) => m.state === 'ended' && m.lastError === null);
  await mirrorWhere('bf1', 'bmb', (m) => m.state === 'ended' && m.lastError === null);

  const fb = (await sim.effects('facebook')).filter((e) => e.externalId === fbReady.externalId);
  expect(fb.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted', 'show.ended']);
  expect(fb[2]?.url).toBe(fbLive.pins.find((p) => p.productId === 'p1')?.linkUrl);

  const bmb = (await sim.effects('bambuser')).filter((e) => e.externalId === bmbReady.externalId);
  expect(bmb.map((e) => e.type)).toEqual(['show.created', 'product.pinned']); // live/ended follow the host's broadcast
  expect(bmb[1]).toMatchObject({ productId: 'p1', url: bmbLive.pins.find((p) => p.productId === 'p1')?.linkUrl });
});

test('Facebook Live Shopping: a target whose token may pin products gets a product pin, and the worker unpins it', async () => {
  const partner = 'bfls';
  const sec = await createPartner(svc, partner);
  // A Page of its own, with a token whose admin granted live_shopping_manage_video.
  const { pageId, pageAccessToken: token } = (await sim.control('POST', '/_sim/facebook/accounts', {})) as { pageId: string; pageAccessToken: string };
  await sim.control('PUT', '/_sim/facebook/permissions', {
    token,
    granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
  });
  await sim.control('PUT', '/_sim/facebook/catalog', { items: [{ retailer_id: 'p1', name: 'Lip Oil' }] });
  const t = { id: 'fbls', platform: 'facebook', name: 'Facebook Page (Live Shopping)', credentials: { pageId, pageAccessToken: token }, baseUrl: sim.base('facebook') };
  expect((await svc.api(`/v1/partners/${partner}/targets`, { json: { ...t, commissionRateBps: 1000 } })).status).toBe(201);

  const show = sampleShow('ls1', { scheduledAt: new Date(Date.now() + 3 * 3600_000).toISOString() });
  await sendEvent(svc, partner, sec, showEvent('show.scheduled', show, new Date().toISOString()));
  const ready = await mirrorWhere('ls1', 'fbls', (m) => m.state === 'ready', partner);
  await sendEvent(svc, partner, sec, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, new Date(Date.now() + 1000).toISOString()));
  await mirrorWhere('ls1', 'fbls', (m) => m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'), partner);
  await sendEvent(svc, partner, sec, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: [] }, new Date(Date.now() + 2000).toISOString()));
  await mirrorWhere('ls1', 'fbls', (m) => m.pins.some((p) => p.productId === 'p1' && p.state === 'unpinned'), partner);

  const fx = (await sim.effects('facebook')).filter((e) => e.externalId === ready.externalId);
  expect(fx.map((e) => `${e.type}${e.productId ? `:${e.productId}` : ''}`)).toEqual(['show.created', 'show.started', 'product.pinned:p1', 'product.unpinned:p1']);
  const paths = ((await sim.control('GET', '/_sim/facebook/requests')) as { path: string }[]).map((r) => r.path);
  expect(paths.length).toBeGreaterThan(0);
  expect(paths.filter((p) => !p.startsWith('/v26.0/'))).toEqual([]);
});

test('Facebook Live Shopping: a pinned product whose sku changes is unpinned and pinned again as the catalog item of the new sku', async () => {
  const partner = 'bfsku';
  const sec = await createPartner(svc, partner);
  const { pageId, pageAccessToken: token } = (await sim.control('POST', '/_sim/facebook/accounts', {})) as { pageId: string; pageAccessToken: string };
  await sim.control('PUT', '/_sim/facebook/permissions', {
    token,
    granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
  });
  await sim.control('PUT', '/_sim/facebook/catalog', { items: [{ retailer_id: 'p1', name: 'Lip Oil' }, { retailer_id: 'LIP-2', name: 'Lip Oil (new shade)' }] });
  const t = { id: 'fbsku', platform: 'facebook', name: 'Facebook Page (Live Shopping)', credentials: { pageId, pageAccessToken: token }, baseUrl: sim.base('facebook') };
  expect((await svc.api(`/v1/partners/${partner}/targets`, { json: { ...t, commissionRateBps: 1000 } })).status).toBe(201);

  const show = sampleShow('sku1', { scheduledAt: new Date(Date.now() + 3 * 3600_000).toISOString() });
  await sendEvent(svc, partner, sec, showEvent('show.scheduled', show, new Date().toISOString()));
  const ready = await mirrorWhere('sku1', 'fbsku', (m) => m.state === 'ready', partner);
  await sendEvent(svc, partner, sec, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, new Date(Date.now() + 1000).toISOString()));
  await mirrorWhere('sku1', 'fbsku', (m) => m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'), partner);
  const p1 = (show['products'] as { id: string }[]).find((p) => p.id === 'p1')!;
  await sendEvent(svc, partner, sec, { type: 'product.updated', occurredAt: new Date(Date.now() + 2000).toISOString(), data: { showId: 'sku1', product: { ...p1, sku: 'LIP-2' } } });
  const fxOf = async (): Promise<string[]> => (await sim.effects('facebook')).filter((e) => e.externalId === ready.externalId && e.type.startsWith('product.')).map((e) => `${e.type}:${e.productId}`);
  await waitFor(async () => (await fxOf()).length >= 3);
  await mirrorWhere('sku1', 'fbsku', (m) => m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'), partner);
  expect(await fxOf()).toEqual(['product.pinned:p1', 'product.unpinned:p1', 'product.pinned:LIP-2']);
  expect((await svc.rt.shows.getMirror(partner, 'sku1', 'fbsku'))!.pins['p1']).toMatchObject({ state: 'pinned', sentAs: 'LIP-2' });
});
