/**
 * Ids with ':' (the contract allows `[A-Za-z0-9_.:-]{1,128}`) through the whole path: partner `a:b`,
 * show `c:d`, target `yt:1`, product `p:1` — event → sweep (the show's sync job was lost) → mirror
 * on the YouTube simulator → live → pin with a tracked link → show view. Partner `a` has a show
 * `b:c:d` at the same time: before keyPart (src/store/keys.ts) both shows were one key
 * (`{s:a:b:c:d}`), so the two partners read and wrote each other's show.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { queuesIdle, syncQueues } from '../helpers/settle.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createLogger } from '../../src/lib/logger.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

interface ShowDoc {
  show: { id: string; title: string; state: string };
  mirrors: { targetId: string; state: string; externalId: string | null; pins: { productId: string; state: string; linkUrl: string | null }[] }[];
}

async function showDoc(partnerId: string, showId: string): Promise<ShowDoc> {
  const r = await svc.api(`/v1/partners/${partnerId}/shows/${showId}`);
  expect(r.status).toBe(200);
  return (await r.json()) as ShowDoc;
}

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  svc = await startService();
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('a show whose partner, show, target and product ids contain ":" is swept, mirrored, pinned and shown, apart from another partner\'s show', async () => {
  const secretAB = await createPartner(svc, 'a:b');
  const secretA = await createPartner(svc, 'a');
  const t = await svc.api('/v1/partners/a:b/targets', {
    json: { id: 'yt:1', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(t.status).toBe(201);
  const products = [{ id: 'p:1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1' }];
  const show = sampleShow('c:d', { title: 'show of a:b', state: 'live', products });
  expect((await sendEvent(svc, 'a:b', secretAB, showEvent('show.live', show, '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, 'a', secretA, showEvent('show.scheduled', sampleShow('b:c:d', { title: 'show of a' }), '2026-11-24T19:00:00Z'))).status).toBe(202);

  // The sync job was lost (the process died between the write and the enqueue): the sweep finds the show.
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  expect(await queuesIdle(syncQueues(svc))).toBe(true);
  expect(await svc.rt.shows.activeShows()).toEqual(expect.arrayContaining([['a:b', 'c:d'], ['a', 'b:c:d']]));
  await svc.startWorkers();
  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'));
  expect((await sweep.sweep()).enqueued).toBe(1);
  const live = await waitFor(async () => (await showDoc('a:b', 'c:d')).mirrors.find((m) => m.targetId === 'yt:1' && m.state === 'live'), 20_000);
  expect(live.externalId).toBeTruthy();

  expect((await sendEvent(svc, 'a:b', secretAB, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 'c:d', productId: 'p:1' } })).status).toBe(202);
  const pinned = await waitFor(async () => (await showDoc('a:b', 'c:d')).mirrors[0]?.pins.find((p) => p.productId === 'p:1' && p.state === 'pinned'), 20_000);
  const click = await fetch(pinned.linkUrl!, { redirect: 'manual' });
  expect(click.status).toBe(302);
  expect(new URL(click.headers.get('location')!).pathname).toBe('/p1');

  // The other partner's show is its own: its title, its state, no mirror of a:b's target.
  const ab = await showDoc('a:b', 'c:d');
  expect(ab.show).toMatchObject({ id: 'c:d', title: 'show of a:b', state: 'live' });
  const a = await showDoc('a', 'b:c:d');
  expect(a.show).toMatchObject({ id: 'b:c:d', title: 'show of a', state: 'scheduled' });
  expect(a.mirrors).toEqual([]);
  expect((await svc.api('/v1/partners/a/shows/c:d')).status).toBe(404);
  expect((await svc.api('/v1/partners/a:b/shows/b:c:d')).status).toBe(404);
}, 90_000);
