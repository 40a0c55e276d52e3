/**
 * A pinned product whose sku changes (product.updated) is another product on a platform that takes the
 * sku as its product id: Whatnot's lineup holds product ids, TikTok Shop's promotion link is generated
 * for one. The mirror used to see the product as pinned and do nothing: Whatnot kept the old id in the
 * show's lineup, TikTok's promotion stayed the old product's, and the show view said `pinned` (attack as
 * a partner, 2026-12-05). Now the old one is taken back where the platform can (Whatnot) and the new one
 * pinned, each once; the pin records the id it was sent with (`sentAs`).
 * Real service and workers, the Whatnot and TikTok simulators over HTTP, real Redis.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, simTarget, waitForMirror, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const PARTNER = 'psku';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView extends BaseMirrorView {
  pins: { productId: string; state: string }[];
}

simRigPerFile(
  PARTNER,
  (s) => [
    simTarget(s, 'whatnot', { id: 'wn', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, commissionRateBps: 800 }),
    simTarget(s, 'tiktok', { id: 'tt', name: 'TikTok Shop', commissionRateBps: 1000 }),
  ],
  (rig) => ({ sim, svc, secret } = rig),
);

const at = eventClock();
const pinState = (m: MirrorView, productId: string): string | undefined => m.pins.find((p) => p.productId === productId)?.state;
const product = (sku: string) => ({ id: 'a1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/a1', sku });
const fx = async (platform: 'whatnot' | 'tiktok', externalId: string): Promise<string[]> =>
  (await sim.effects(platform)).filter((e) => e.externalId === externalId && e.type.startsWith('product.')).map((e) => `${e.type} ${e.productId}`);

/** The show scheduled with `p`, linked to a show made by hand on Whatnot and a TikTok room, live with `p` pinned on both: their ids. */
async function livePinned(showId: string, p: Record<string, unknown> & { id: string }): Promise<Record<'whatnot' | 'tiktok', string>> {
  const show = sampleShow(showId, { products: [p] });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  const rooms: Record<'whatnot' | 'tiktok', string> = { whatnot: '', tiktok: '' };
  for (const [targetId, platform] of [['wn', 'whatnot'], ['tt', 'tiktok']] as const) {
    await waitForMirror<MirrorView>(svc, PARTNER, showId, (m) => m.state === 'action_required', { targetId });
    rooms[platform] = ((await sim.control('POST', `/_sim/${platform}/shows`, { title: `${showId} ${platform}` })) as { externalId: string }).externalId;
    expect((await svc.api(`/v1/partners/${PARTNER}/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId: rooms[platform] } })).status).toBe(200);
  }
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: [p.id] }, at()))).status).toBe(202);
  for (const targetId of ['wn', 'tt']) await waitForMirror<MirrorView>(svc, PARTNER, showId, (m) => pinState(m, p.id) === 'pinned', { targetId });
  return rooms;
}

test('a pinned product whose sku changes is taken out of the Whatnot lineup and its new sku put in; TikTok promotes the new sku', async () => {
  const rooms = await livePinned('s1', product('LIP-01'));
  await waitFor(async () => (await fx('whatnot', rooms.whatnot)).length === 1 && (await fx('tiktok', rooms.tiktok)).length === 1);

  // The partner corrects the sku of the pinned product.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.updated', occurredAt: at(), data: { showId: 's1', product: product('LIP-02') } })).status).toBe(202);
  await waitFor(async () => (await fx('whatnot', rooms.whatnot)).length === 3 && (await fx('tiktok', rooms.tiktok)).length === 2);
  await settled(syncQueues(svc));
  expect(await fx('whatnot', rooms.whatnot)).toEqual(['product.pinned LIP-01', 'product.unpinned LIP-01', 'product.pinned LIP-02']);
  expect(await fx('tiktok', rooms.tiktok)).toEqual(['product.pinned LIP-01', 'product.pinned LIP-02']);
  for (const targetId of ['wn', 'tt']) {
    expect(pinState(await waitForMirror<MirrorView>(svc, PARTNER, 's1', () => true, { targetId }), 'a1')).toBe('pinned');
    const stored = (await svc.rt.shows.getMirror(PARTNER, 's1', targetId))!.pins['a1'];
    expect(stored).toMatchObject({ state: 'pinned', sentAs: 'LIP-02' });
    expect(stored?.replaced).toBeUndefined();
  }
  // Taken back now: Whatnot removes the product it holds (the new sku), once.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: at(), data: { showId: 's1', productId: 'a1' } })).status).toBe(202);
  await waitFor(async () => (await fx('whatnot', rooms.whatnot)).length === 4);
  await settled(syncQueues(svc));
  expect(await fx('whatnot', rooms.whatnot)).toEqual(['product.pinned LIP-01', 'product.unpinned LIP-01', 'product.pinned LIP-02', 'product.unpinned LIP-02']);
  expect(await fx('tiktok', rooms.tiktok)).toEqual(['product.pinned LIP-01', 'product.pinned LIP-02']);
}, 60_000);

test('a change that leaves the platform-facing id as it was (title, price; an sku equal to the one sent) re-sends nothing', async () => {
  const p = { id: 'b1', title: 'Brush', price: { amount: 900, currency: 'USD' }, url: 'https://shop.example.com/b1', sku: 'BR-1' };
  const rooms = await livePinned('s2', p);
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.updated', occurredAt: at(), data: { showId: 's2', product: { ...p, title: 'Brush (new)', price: { amount: 800, currency: 'USD' } } } })).status).toBe(202);
  await waitFor(async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/shows/s2`);
    return ((await r.json()) as { show: { products: { title: string }[] } }).show.products[0]?.title === 'Brush (new)';
  });
  await settled(syncQueues(svc));
  expect(await fx('whatnot', rooms.whatnot)).toEqual(['product.pinned BR-1']);
  expect(await fx('tiktok', rooms.tiktok)).toEqual(['product.pinned BR-1']);
}, 60_000);
