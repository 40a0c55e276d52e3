/**
 * One product the platform refuses must not stop a live mirror. The partner's product schema allows
 * any sku up to 128 characters; Whatnot takes a product id of `[A-Za-z0-9_.:-]` only and answers 422
 * (`param: product_id`) for one with a space. That refusal was a PermanentError of the whole run: the
 * mirror went `failed` and every other pin of the show (and its end) stopped being mirrored, until the
 * partner happened to unpin that product and an operator retried. Now only that pin is `failed`, with
 * the platform's reason; the show's other pins go on, nothing retries the refused pin until the
 * product changes or the partner pins it again, and the show ends as usual. TikTok the same: its
 * promotion link answers 36009001 "Invalid product_id" for a sku with a space, '/', '?', '#', '%' or an
 * emoji (sent percent-encoded in the path), and a product id '.' or '..' (no sku), which a URL would
 * resolve away, is refused before anything is sent.
 * Real service and workers, Whatnot and TikTok simulators over HTTP, real Redis.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { SimEffectView, TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, waitForMirror, whatnotAndTiktok, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';

const PARTNER = 'prf';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView extends BaseMirrorView {
  pins: { productId: string; state: string; linkUrl: string | null; reason?: string }[];
}

simRigPerFile(
  PARTNER,
  whatnotAndTiktok,
  (rig) => ({ sim, svc, secret } = rig),
);

const at = eventClock();
const mirrorWhere = (pred: (m: MirrorView) => boolean): Promise<MirrorView> => waitForMirror<MirrorView>(svc, PARTNER, 's1', pred, { targetId: 'wn' });
const pin = (m: MirrorView, productId: string) => m.pins.find((p) => p.productId === productId);
/** The merchandising requests Whatnot got for a product id as sent (encoded in the path). */
async function merchRequests(productId: string): Promise<{ status: number }[]> {
  const all = (await sim.control('GET', '/_sim/whatnot/requests')) as { method: string; path: string; status: number }[];
  return all.filter((r) => r.method === 'POST' && r.path.split('?')[0] === `/merchandising/products/${encodeURIComponent(productId)}`);
}
const pinned = (fx: SimEffectView[], externalId: string, productId: string): SimEffectView[] => fx.filter((e) => e.type === 'product.pinned' && e.externalId === externalId && e.productId === productId);

test('a pin Whatnot refuses (422 product_id) fails that pin only: the other pins and the end are mirrored', async () => {
  const products = [
    { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', sku: 'LIP OIL 01' },
    { id: 'p2', title: 'Blush', price: { amount: 2500, currency: 'USD' }, url: 'https://shop.example.com/p2', sku: 'BLUSH-02' },
  ];
  const show = sampleShow('s1', { products });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  await mirrorWhere((m) => m.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Refused pin show' })) as { externalId: string };
  const r = await svc.api(`/v1/partners/${PARTNER}/shows/s1/mirrors/wn`, { method: 'PUT', json: { externalId } });
  expect(r.status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, at()))).status).toBe(202);
  await mirrorWhere((m) => m.state === 'live');

  // p1 first (refused), then p2: p2 must still reach Whatnot.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's1', productId: 'p1' } })).status).toBe(202);
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's1', productId: 'p2' } })).status).toBe(202);
  const m = await mirrorWhere((x) => pin(x, 'p2')?.state === 'pinned' || x.state === 'failed');
  expect(m.state).toBe('live');
  expect(pin(m, 'p2')?.state).toBe('pinned');
  expect(pin(m, 'p1')?.state).toBe('failed');
  expect(pin(m, 'p1')?.reason).toMatch(/Whatnot refused .*product_id/);
  await waitFor(async () => pinned(await sim.effects('whatnot'), externalId, 'BLUSH-02').length === 1);

  // Nothing keeps retrying the refused pin: the queues settle, the mirror stays live with p1 failed.
  await settled(syncQueues(svc));
  const quiet = await mirrorWhere(() => true);
  expect(quiet.state).toBe('live');
  expect(pin(quiet, 'p1')?.state).toBe('failed');
  expect((await merchRequests('LIP OIL 01')).map((r) => r.status)).toEqual([422]);
  // Another event of the show (p2 taken back) syncs it again: the refused product is not asked again.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: at(), data: { showId: 's1', productId: 'p2' } })).status).toBe(202);
  await mirrorWhere((x) => pin(x, 'p2')?.state === 'unpinned');
  await settled(syncQueues(svc));
  expect((await merchRequests('LIP OIL 01')).map((r) => r.status)).toEqual([422]);

  // The partner fixes the sku: the pin is tried again with the new product, and lands.
  const fixed = { ...products[0]!, sku: 'LIP-OIL-01' };
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.updated', occurredAt: at(), data: { showId: 's1', product: fixed } })).status).toBe(202);
  const again = await mirrorWhere((x) => pin(x, 'p1')?.state === 'pinned' || x.state === 'failed');
  expect(again.state).toBe('live');
  expect(pin(again, 'p1')?.reason).toBeUndefined();
  await waitFor(async () => pinned(await sim.effects('whatnot'), externalId, 'LIP-OIL-01').length === 1);

  // And the show ends as usual.
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, products: [fixed, products[1]], state: 'ended' }, at()))).status).toBe(202);
  const ended = await mirrorWhere((x) => x.state === 'ended' || x.state === 'failed');
  expect(ended.state).toBe('ended');
  expect(ended.lastError).toBeNull();
}, 60_000);

test('a refused pin the partner takes back is no longer failed; pinned again, or resynced, it is tried again', async () => {
  const products = [{ id: 'q1', title: 'Mascara', price: { amount: 1500, currency: 'USD' }, url: 'https://shop.example.com/q1', sku: 'MASCARA 9' }];
  const show = sampleShow('s2', { products, state: 'live' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', { ...show, state: 'scheduled' }, at()))).status).toBe(202);
  await waitForMirror<MirrorView>(svc, PARTNER, 's2', (m) => m.state === 'action_required', { targetId: 'wn' });
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Refused pin show 2' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/s2/mirrors/wn`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', show, at()))).status).toBe(202);
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's2', productId: 'q1' } })).status).toBe(202);
  const where = (pred: (m: MirrorView) => boolean) => waitForMirror<MirrorView>(svc, PARTNER, 's2', pred, { targetId: 'wn' });
  const failed = await where((x) => pin(x, 'q1')?.state === 'failed' || x.state === 'failed');
  expect(failed.state).toBe('live');

  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: at(), data: { showId: 's2', productId: 'q1' } })).status).toBe(202);
  const taken = await where((x) => pin(x, 'q1')?.state !== 'failed');
  expect(pin(taken, 'q1')?.state ?? 'gone').not.toBe('pending');
  expect(taken.state).toBe('live');

  expect((await merchRequests('MASCARA 9')).map((r) => r.status)).toEqual([422]);

  // Pinned again (the same product): a new attempt, refused again, still only that pin.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's2', productId: 'q1' } })).status).toBe(202);
  const again = await where((x) => (pin(x, 'q1')?.state === 'failed' && pin(x, 'q1')?.reason !== undefined) || x.state === 'failed');
  expect(again.state).toBe('live');
  await settled(syncQueues(svc));
  expect((await merchRequests('MASCARA 9')).map((r) => r.status)).toEqual([422, 422]);

  // An operator's resync asks again (the product may have been fixed on the platform), once.
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/s2/mirrors/wn/resync`, { method: 'POST' })).status).toBe(202);
  await waitFor(async () => (await merchRequests('MASCARA 9')).length === 3);
  await settled(syncQueues(svc));
  expect((await merchRequests('MASCARA 9')).map((r) => r.status)).toEqual([422, 422, 422]);
  const resynced = await where(() => true);
  expect(resynced.state).toBe('live');
  expect(pin(resynced, 'q1')?.state).toBe('failed');
}, 60_000);

test('TikTok: a product id it cannot take (36009001), or one no URL path can carry, fails that pin only; the others are pinned', async () => {
  const product = (id: string, sku?: string) => ({ id, title: `Product ${id}`, price: { amount: 1200, currency: 'USD' }, url: `https://shop.example.com/${id}`, ...(sku !== undefined ? { sku } : {}) });
  const products = [product('t1', 'LIP OIL 01'), product('t2', 'a/b?c#d%e'), product('t3', '\u{1F389}'), product('.'), product('..'), product('t6', 'BLUSH-02'), product('t7')];
  const ids = products.map((p) => p.id);
  const show = sampleShow('s3', { products, state: 'live' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', { ...show, state: 'scheduled' }, at()))).status).toBe(202);
  const where = (pred: (m: MirrorView) => boolean) => waitForMirror<MirrorView>(svc, PARTNER, 's3', pred, { targetId: 'tt' });
  await where((m) => m.state === 'action_required');
  const { externalId: roomId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'Refused pins (TikTok LIVE)' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/s3/mirrors/tt`, { method: 'PUT', json: { externalId: roomId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, pinnedProductIds: ids }, at()))).status).toBe(202);
  const m = await where((x) => x.state === 'failed' || ids.every((id) => ['pinned', 'failed'].includes(pin(x, id)?.state ?? '')));
  expect(m.state).toBe('live');
  expect(m.lastError).toBeNull();
  expect(Object.fromEntries(ids.map((id) => [id, pin(m, id)?.state]))).toEqual({ t1: 'failed', t2: 'failed', t3: 'failed', '.': 'failed', '..': 'failed', t6: 'pinned', t7: 'pinned' });
  for (const id of ['t1', 't2', 't3']) expect(pin(m, id)?.reason).toMatch(/TikTok Shop refused to generate a promotion link .*36009001.*Invalid product_id/);
  for (const id of ['.', '..']) expect(pin(m, id)?.reason).toMatch(/cannot be sent the product id .*not sent/);

  // Each refused sku was asked once, percent-encoded in the path (nothing else, no second try); '.' and '..' never.
  await settled(syncQueues(svc));
  const requests = (await sim.control('GET', '/_sim/tiktok/requests')) as { method: string; path: string; status: number }[];
  const links = requests.filter((r) => r.method === 'POST' && r.path.includes('/promotion_link/'));
  const asked = (id: string) => links.filter((r) => r.path === `/affiliate_seller/202405/products/${encodeURIComponent(id)}/promotion_link/generate`).map((r) => r.status);
  expect(asked('LIP OIL 01')).toEqual([400]);
  expect(asked('a/b?c#d%e')).toEqual([400]);
  expect(asked('\u{1F389}')).toEqual([400]);
  expect(links.filter((r) => !/^\/affiliate_seller\/202405\/products\/[^/]+\/promotion_link\/generate$/.test(r.path))).toEqual([]);
  expect(links).toHaveLength(5);
  const fx = await sim.effects('tiktok');
  expect(fx.filter((e) => e.type === 'product.pinned').map((e) => e.productId).sort()).toEqual(['BLUSH-02', 't7']);
  const quiet = await where(() => true);
  expect(quiet.state).toBe('live');
}, 60_000);

test("Whatnot: a pin after the seller ended the show in the app (409 show-not-editable) makes the mirror over, not failed: action_required while the show is live, ended with it", async () => {
  const product = (id: string) => ({ id, title: `Product ${id}`, price: { amount: 900, currency: 'USD' }, url: `https://shop.example.com/${id}`, sku: `SKU-${id}` });
  const products = [product('r1'), product('r2'), product('r3')];
  const show = sampleShow('s4', { products });
  const where = (pred: (m: MirrorView) => boolean) => waitForMirror<MirrorView>(svc, PARTNER, 's4', pred, { targetId: 'wn' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  await where((m) => m.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Ended in the app' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/s4/mirrors/wn`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, at()))).status).toBe(202);
  await sim.control('PUT', `/_sim/whatnot/shows/${externalId}/status`, { status: 'live' });
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's4', productId: 'r1' } })).status).toBe(202);
  await where((m) => pin(m, 'r1')?.state === 'pinned');

  // The seller ends the show in the Whatnot app; the partner's show goes on and pins another product.
  await sim.control('PUT', `/_sim/whatnot/shows/${externalId}/status`, { status: 'ended' });
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's4', productId: 'r2' } })).status).toBe(202);
  const over = await where((m) => m.state !== 'live');
  expect(over.state).toBe('action_required');
  expect(over.lastError).toMatch(new RegExp(`^whatnot: the Whatnot show ${externalId} \\("Ended in the app"\\) was ended on Whatnot \\(by its seller, in the app\\).* while the show is live: nothing more is mirrored to whatnot .*link it with PUT /v1/partners/${PARTNER}/shows/s4/mirrors/wn .*; once the show is over the mirror is ended$`));
  expect([pin(over, 'r1')?.state, pin(over, 'r2')?.state]).toEqual(['failed', 'failed']);
  await settled(syncQueues(svc));
  expect((await merchRequests('SKU-r2')).map((r) => r.status)).toEqual([409]);

  // Nothing more is sent to the ended show (another pin fails at once), and the message stays.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's4', productId: 'r3' } })).status).toBe(202);
  const still = await where((m) => pin(m, 'r3')?.state === 'failed');
  expect(still.state).toBe('action_required');
  expect(still.lastError).toBe(over.lastError);
  await settled(syncQueues(svc));
  expect(await merchRequests('SKU-r3')).toEqual([]);
  expect((await merchRequests('SKU-r2')).map((r) => r.status)).toEqual([409]);

  // The partner's show ends: the mirror is ended, without an error.
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, state: 'ended' }, at()))).status).toBe(202);
  const ended = await where((m) => m.state === 'ended' || m.state === 'failed');
  expect(ended.state).toBe('ended');
  expect(ended.lastError).toBeNull();
}, 60_000);
