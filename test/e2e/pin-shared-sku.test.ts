/**
 * Two products of a show that the partner gives the same sku are one product on a platform that takes
 * the sku as its product id (Whatnot's lineup: `ADD`/`REMOVE` of a product id, set operations). Taking
 * one of them back removed the product from the lineup while the other was still pinned: Whatnot no
 * longer showed it and the mirror said `pinned` (attack on npm start, 2026-12-05: two listings of one
 * variant, a careless partner's catalog). A pin is taken back on the platform only when no other pin
 * of the mirror still holds what it made there (the same ref); the last one to go takes it down.
 * Real service and workers, the Whatnot simulator over HTTP, real Redis.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, simTarget, waitForMirror, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const PARTNER = 'pss';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView extends BaseMirrorView {
  pins: { productId: string; state: string }[];
}

simRigPerFile(PARTNER, (s) => [simTarget(s, 'whatnot', { id: 'wn', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, commissionRateBps: 800 })], (rig) => ({ sim, svc, secret } = rig));

const at = eventClock();
const mirrorWhere = (pred: (m: MirrorView) => boolean): Promise<MirrorView> => waitForMirror<MirrorView>(svc, PARTNER, 's1', pred, { targetId: 'wn' });
const pinState = (m: MirrorView, productId: string): string | undefined => m.pins.find((p) => p.productId === productId)?.state;
const unpinned = async (externalId: string): Promise<number> => (await sim.effects('whatnot')).filter((e) => e.type === 'product.unpinned' && e.externalId === externalId && e.productId === 'LIP-01').length;

test('two products with one sku: unpinning one leaves the product in the Whatnot lineup while the other is pinned', async () => {
  const product = (id: string) => ({ id, title: `Lip Oil ${id}`, price: { amount: 1800, currency: 'USD' }, url: `https://shop.example.com/${id}`, sku: 'LIP-01' });
  const show = sampleShow('s1', { products: [product('a1'), product('a2')] });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  await mirrorWhere((m) => m.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Shared sku show' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/s1/mirrors/wn`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['a1', 'a2'] }, at()))).status).toBe(202);
  await mirrorWhere((m) => pinState(m, 'a1') === 'pinned' && pinState(m, 'a2') === 'pinned');

  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: at(), data: { showId: 's1', productId: 'a1' } })).status).toBe(202);
  await mirrorWhere((m) => pinState(m, 'a1') === 'unpinned');
  await settled(syncQueues(svc));
  expect(pinState(await mirrorWhere(() => true), 'a2')).toBe('pinned');
  expect(await unpinned(externalId)).toBe(0); // a2 still holds it

  // The last one taken back takes it down.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: at(), data: { showId: 's1', productId: 'a2' } })).status).toBe(202);
  await mirrorWhere((m) => pinState(m, 'a2') === 'unpinned');
  await waitFor(async () => (await unpinned(externalId)) === 1);
}, 60_000);
