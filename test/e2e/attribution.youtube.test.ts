/**
 * Attribution over a real mirror on the YouTube simulator: the click on the pinned tracked link
 * attributes a partner order (rule 1), and the broadcast id the mirror reports is indexed by the mirror
 * worker, so a platform order naming that broadcast attributes to the show (rule 2).
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { simRigPerFile, simTarget, waitForMirror, youtubeEncoderNow } from '../helpers/mirrors.js';

let svc: TestService;
let secret: string;

interface MirrorJson {
  state: string;
  externalId: string | null;
  pins: { productId: string; state: string; linkUrl: string | null }[];
}

simRigPerFile('tsl', (s) => [simTarget(s, 'youtube', { id: 'yt1', name: 'YT', commissionRateBps: 1000 })], (rig) => ({ svc, secret } = rig), { prepare: youtubeEncoderNow });

test('a click on the pinned link attributes the partner order; the mirrored broadcast id attributes a platform order', async () => {
  const show = sampleShow('s1');
  expect((await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p2'] }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  const m = await waitForMirror<MirrorJson>(svc, 'tsl', 's1', (x) => x.pins.some((p) => p.productId === 'p2' && p.state === 'pinned'));
  const link = m.pins.find((p) => p.productId === 'p2')!.linkUrl!;

  const click = await fetch(link, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0' } });
  const sclid = new URL(click.headers.get('location')!).searchParams.get('sclid')!;
  const now = new Date().toISOString();
  const order = { type: 'order.created', occurredAt: now, data: { order: { id: 'ord-1', clickId: sclid, createdAt: now, lines: [], total: { amount: 2500, currency: 'USD' } } } };
  expect((await sendEvent(svc, 'tsl', secret, order)).status).toBe(202);
  const view = await waitFor(async () => {
    const r = await svc.api('/v1/partners/tsl/attribution/orders/ord-1');
    return r.status === 200 ? ((await r.json()) as { attribution: unknown; commission: unknown }) : undefined;
  });
  expect(view.attribution).toMatchObject({ attributed: true, via: 'click', showId: 's1', targetId: 'yt1', productId: 'p2' });
  expect(view.commission).toEqual({ amount: 250, currency: 'USD' });

  // Rule 2: the mirror worker indexed the broadcast id the platform will name in its orders.
  const [platformOrder] = await svc.rt.attribution.ingestPlatformOrders(
    'tsl',
    'yt1',
    [{ orderId: 'YT-9', externalShowId: m.externalId!, productId: 'p1', clickId: undefined, createdAt: now, total: { amount: 4000, currency: 'USD' }, refunded: { amount: 0, currency: 'USD' }, status: undefined, commission: undefined }],
    'webhook',
  );
  expect(platformOrder).toMatchObject({ isNew: true, attributed: true });

  const rep = (await (await svc.api('/v1/partners/tsl/attribution')).json()) as unknown;
  expect(rep).toEqual({ totals: [{ showId: 's1', targetId: 'yt1', currency: 'USD', orders: 2, grossAmount: 6500, refundedAmount: 0, commission: 650 }], unattributed: [] });
  const byShow = (await (await svc.api('/v1/partners/tsl/shows/s1/attribution')).json()) as { byProduct: { productId: string; orders: number }[] };
  expect(byShow.byProduct.map((p) => [p.productId, p.orders])).toEqual([
    ['p1', 1],
    ['p2', 1],
  ]);
});
