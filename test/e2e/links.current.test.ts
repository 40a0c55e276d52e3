/**
 * Tracked links always lead to the product's current URL (the external contract §4): a `product.updated` (or a
 * newer show snapshot) that changes it takes effect on the very next click, while an older update
 * cannot roll it back. And a link that is shown works: every `linkUrl` the show view lists answers
 * 302, also for pins the platform has not received yet (pin delay, sync not run yet).
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simRigPerFile, simTarget, youtubeEncoderNow } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface ShowDoc {
  mirrors: { targetId: string; state: string; pins: { productId: string; state: string; linkUrl: string | null }[] }[];
}

async function view(showId: string): Promise<ShowDoc> {
  return (await (await svc.api(`/v1/partners/lk/shows/${showId}`)).json()) as ShowDoc;
}

async function follow(link: string): Promise<string> {
  const r = await fetch(link, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0' } });
  expect(r.status).toBe(302);
  const u = new URL(r.headers.get('location')!);
  return u.origin + u.pathname;
}

simRigPerFile('lk', (s) => [simTarget(s, 'youtube', { id: 'yt', name: 'YT', commissionRateBps: 500 })], (rig) => ({ sim, svc, secret } = rig), { prepare: youtubeEncoderNow });

test('after product.updated the tracked link redirects to the new URL at once; an older update does not roll it back', async () => {
  const show = sampleShow('c1', { state: 'live', pinnedProductIds: ['p1'] });
  expect((await sendEvent(svc, 'lk', secret, showEvent('show.live', show, '2026-11-24T18:00:00Z'))).status).toBe(202);
  const pin = await waitFor(async () => (await view('c1')).mirrors[0]?.pins.find((p) => p.productId === 'p1' && p.state === 'pinned'));
  const link = pin.linkUrl!;
  expect(await follow(link)).toBe('https://shop.example.com/p1');

  const p1 = { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' } };
  const updated = { type: 'product.updated', occurredAt: '2026-11-24T18:10:00Z', data: { showId: 'c1', product: { ...p1, url: 'https://shop.example.com/p1-new' } } };
  expect((await sendEvent(svc, 'lk', secret, updated)).status).toBe(202);
  expect(await follow(link)).toBe('https://shop.example.com/p1-new');
  // Clicked again with nothing changed: the click's Lua step answers "the product you hold is
  // current" (no payload) and the API's held product is the one it goes to.
  expect(await follow(link)).toBe('https://shop.example.com/p1-new');
  expect(await follow(link)).toBe('https://shop.example.com/p1-new');

  const stale = { type: 'product.updated', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 'c1', product: { ...p1, url: 'https://shop.example.com/p1-stale' } } };
  expect((await sendEvent(svc, 'lk', secret, stale)).status).toBe(202);
  expect(await follow(link)).toBe('https://shop.example.com/p1-new');

  // A newer full snapshot with another URL wins over the older product update.
  const products = (show['products'] as { id: string; url: string }[]).map((p) => (p.id === 'p1' ? { ...p, url: 'https://shop.example.com/p1-snap' } : p));
  expect((await sendEvent(svc, 'lk', secret, showEvent('show.updated', { ...show, products }, '2026-11-24T18:20:00Z'))).status).toBe(202);
  expect(await follow(link)).toBe('https://shop.example.com/p1-snap');
  // The pin on the platform still carries the same tracked link.
  expect((await view('c1')).mirrors[0]!.pins.find((p) => p.productId === 'p1')!.linkUrl).toBe(link);
});

test('every linkUrl the show view lists works, also for pins that have not reached the platform', async () => {
  const r = await svc.api('/v1/partners/lk/targets', {
    json: { id: 'yt-slow', platform: 'youtube', name: 'YT delayed', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500, pinDelayMs: 120_000 },
  });
  expect(r.status).toBe(201);
  const show = sampleShow('c2', { state: 'live' });
  expect((await sendEvent(svc, 'lk', secret, showEvent('show.live', show, '2026-11-24T18:00:00Z'))).status).toBe(202);
  await waitFor(async () => (await view('c2')).mirrors.every((m) => m.state === 'live'));

  // The workers are away: the partner pins p1, no sync has taken it up yet.
  await svc.stopWorkers();
  expect((await sendEvent(svc, 'lk', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: 'c2', productId: 'p1' } })).status).toBe(202);
  const before = await view('c2');
  for (const m of before.mirrors) {
    const p1 = m.pins.find((p) => p.productId === 'p1');
    expect(p1?.state).toBe('pending');
    if (p1?.linkUrl) expect(await follow(p1.linkUrl)).toBe('https://shop.example.com/p1');
  }

  // Back at work: the delayed target holds the pin for two minutes, yet its link is listed and works.
  await svc.startWorkers();
  const held = await waitFor(async () => (await view('c2')).mirrors.find((m) => m.targetId === 'yt-slow')?.pins.find((p) => p.productId === 'p1' && p.linkUrl));
  expect(held.state).toBe('pending');
  expect(await follow(held.linkUrl!)).toBe('https://shop.example.com/p1');
  const all = await waitFor(async () => {
    const d = await view('c2');
    return d.mirrors.find((m) => m.targetId === 'yt')?.pins.find((p) => p.productId === 'p1' && p.state === 'pinned') ? d : undefined;
  });
  for (const m of all.mirrors) for (const p of m.pins) if (p.linkUrl) expect(await follow(p.linkUrl)).toBe('https://shop.example.com/p1');
});
