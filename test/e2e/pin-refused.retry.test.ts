/**
 * A pin the platform refused for a reason the seller can mend there is asked again while the show is
 * live. Whatnot answers 404 for a product id that is none of the seller's listings (a partner's sku the
 * seller has not listed yet): the pin failed, and stayed failed until the partner changed the product
 * or an operator resynced — the seller making the listing during the show changed nothing. Now the
 * sweep starts another attempt once its wait (PIN_REFUSED_RETRY_BASE_MS, doubled at each refusal,
 * capped at 5 min) is over: the listing made, the pin lands with no partner event, once, and the
 * partner gets its mirror.updated. The attempts stop when the pin is taken back or the show ends.
 * TikTok the same for a 36009004 naming product_id (a product the shop has not opened to affiliates:
 * the simulator's `PUT /_sim/tiktok/products`).
 * Real service, workers and sweep, the Whatnot simulator over HTTP, real Redis.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { SimEffectView, TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, waitForMirror, whatnotAndTiktok, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';
import { startEndpoint, type TestEndpoint } from '../helpers/endpoint.js';

const PARTNER = 'prr';
const BASE_MS = 400;

let svc: TestService;
let sim: TestSim;
let secret: string;
let endpoint: TestEndpoint | undefined;

interface MirrorView extends BaseMirrorView {
  pins: { productId: string; state: string; linkUrl: string | null; reason?: string }[];
}
interface Msg {
  data: { showId: string; targetId: string; state: string; pins: { productId: string; state: string; reason?: string }[]; lastError: string | null };
}
const received: Msg[] = [];

simRigPerFile(
  PARTNER,
  whatnotAndTiktok,
  (rig) => ({ sim, svc, secret } = rig),
  // SYNC_BACKOFF_BASE_MS: the mirror's own retry after a simulated 5xx waits 1.5–3 s (the fault is off by then).
  { service: { workers: true, scheduler: true, env: { PIN_REFUSED_RETRY_BASE_MS: String(BASE_MS), SWEEP_INTERVAL_MS: '100', SYNC_BACKOFF_BASE_MS: '3000' } } },
);
beforeAll(async () => {
  endpoint = await startEndpoint(svc, PARTNER, ['mirror.updated'], (m) => received.push(m as Msg));
});
afterAll(() => endpoint?.close());

const at = eventClock();
const pin = (m: { pins: { productId: string; state: string; reason?: string }[] }, productId: string) => m.pins.find((p) => p.productId === productId);
/** The lineup ADDs Whatnot got for a product id, with their answers' status. */
async function adds(productId: string): Promise<{ status: number; at: string }[]> {
  const all = (await sim.control('GET', '/_sim/whatnot/requests')) as { method: string; path: string; status: number; body: string; at: string }[];
  return all.filter((r) => r.method === 'POST' && r.path.split('?')[0] === `/merchandising/products/${encodeURIComponent(productId)}` && r.body.includes('"ADD"'));
}
const pinned = (fx: SimEffectView[], externalId: string, productId: string): SimEffectView[] => fx.filter((e) => e.type === 'product.pinned' && e.externalId === externalId && e.productId === productId);
const listings = (productIds: string[]) => sim.control('PUT', '/_sim/whatnot/products', { productIds });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Long enough to see the attempt that would follow `tries` refusals, were it still made: its wait (BASE_MS
 * doubled at each refusal after the first) and 4 × BASE_MS more (the sweep's 100 ms, the job's start, a loaded machine's delay: a retry it held past a shorter slack would come after the count).
 * Counted from now, after the last attempt: so past the time that attempt was due.
 */
const pastNextAttempt = (tries: number) => sleep(BASE_MS * 2 ** Math.max(0, tries - 1) + 4 * BASE_MS);

/** A live show s linked to a fresh Whatnot show, with `sku` pinned (none of the seller's listings): its pin failed. */
async function refusedPin(showId: string, sku: string) {
  const product = { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', sku };
  const show = sampleShow(showId, { products: [product] });
  const where = (pred: (m: MirrorView) => boolean) => waitForMirror<MirrorView>(svc, PARTNER, showId, pred, { targetId: 'wn' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  await where((m) => m.state === 'action_required');
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: `Refused retry ${showId}` })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/${showId}/mirrors/wn`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, at()))).status).toBe(202);
  await where((m) => m.state === 'live');
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId, productId: 'p1' } })).status).toBe(202);
  const failed = await where((m) => pin(m, 'p1')?.state === 'failed' || m.state === 'failed');
  expect(failed.state).toBe('live');
  expect(pin(failed, 'p1')?.reason).toMatch(/no product .* among the seller's listings.*while the show is live the pin is tried again/);
  return { show, product, externalId, where };
}

test("a pin refused as none of the seller's listings is asked again with a growing wait; the seller lists it and the pin lands, once, with no partner event", async () => {
  await listings(['SOMETHING-ELSE']);
  const { show, product, externalId, where } = await refusedPin('r1', 'LIP-OIL-01');

  // Asked again without any partner event, each wait longer than the one before (400, 800, 1600 ms…).
  await waitFor(async () => (await adds('LIP-OIL-01')).length >= 4, 20_000, 50);
  const tries = await adds('LIP-OIL-01');
  expect(tries.every((r) => r.status === 404)).toBe(true);
  const gaps = tries.slice(1, 4).map((r, i) => Date.parse(r.at) - Date.parse(tries[i]!.at));
  expect(gaps[0]!).toBeGreaterThanOrEqual(BASE_MS - 50);
  expect(gaps[1]!).toBeGreaterThanOrEqual(2 * BASE_MS - 50);
  expect(gaps[2]!).toBeGreaterThanOrEqual(4 * BASE_MS - 50);
  // Meanwhile the view still says refused, with the platform's reason; no update told the partner otherwise.
  const meanwhile = await where(() => true);
  expect(pin(meanwhile, 'p1')?.state).toBe('failed');
  expect(received.filter((m) => m.data.showId === 'r1' && pin(m.data, 'p1')?.state === 'pinned')).toEqual([]);

  // The seller lists it on Whatnot: the next attempt lands, with no event from the partner.
  await listings(['SOMETHING-ELSE', 'LIP-OIL-01']);
  const landed = await where((m) => pin(m, 'p1')?.state === 'pinned' || m.state === 'failed');
  expect(landed.state).toBe('live');
  expect(pin(landed, 'p1')?.reason).toBeUndefined();
  await waitFor(async () => pinned(await sim.effects('whatnot'), externalId, 'LIP-OIL-01').length === 1);
  // The partner is told, as for any pin.
  await waitFor(async () => received.some((m) => m.data.showId === 'r1' && m.data.targetId === 'wn' && pin(m.data, 'p1')?.state === 'pinned'), 10_000, 20);

  // Pinned once: no attempt after it, no second ADD, no second lineup entry.
  const count = (await adds('LIP-OIL-01')).length;
  await sleep(6 * BASE_MS);
  expect((await adds('LIP-OIL-01')).map((r) => r.status).filter((s) => s < 300)).toHaveLength(1);
  expect((await adds('LIP-OIL-01')).length).toBe(count);
  expect(pinned(await sim.effects('whatnot'), externalId, 'LIP-OIL-01')).toHaveLength(1);

  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, products: [product], state: 'ended' }, at()))).status).toBe(202);
  expect((await where((m) => m.state === 'ended' || m.state === 'failed')).state).toBe('ended');
}, 60_000);

test('the attempts stop once the partner takes the pin back, and once the show ends', async () => {
  await listings(['SOMETHING-ELSE']);
  // Taken back: unpinned, no further attempt.
  const a = await refusedPin('r2', 'MASCARA-09');
  await waitFor(async () => (await adds('MASCARA-09')).length >= 2, 10_000, 50);
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: at(), data: { showId: 'r2', productId: 'p1' } })).status).toBe(202);
  await a.where((m) => pin(m, 'p1')?.state === 'unpinned');
  const afterUnpin = (await adds('MASCARA-09')).length;
  await pastNextAttempt(afterUnpin); // (was 10 × BASE_MS, 4 s, whatever the count: 2.4 s after two refusals)
  expect((await adds('MASCARA-09')).length).toBe(afterUnpin);

  // The show ends: no further attempt either, even once the seller lists the product.
  const b = await refusedPin('r3', 'BLUSH-02');
  await waitFor(async () => (await adds('BLUSH-02')).length >= 2, 10_000, 50);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...b.show, state: 'ended' }, at()))).status).toBe(202);
  await b.where((m) => m.state === 'ended');
  const afterEnd = (await adds('BLUSH-02')).length;
  await listings(['SOMETHING-ELSE', 'BLUSH-02', 'MASCARA-09']);
  await pastNextAttempt(afterEnd);
  expect((await adds('BLUSH-02')).length).toBe(afterEnd);
  expect((await adds('MASCARA-09')).length).toBe(afterUnpin);
  expect(pinned(await sim.effects('whatnot'), b.externalId, 'BLUSH-02')).toHaveLength(0);
}, 60_000);

test('TikTok: a promotion link refused for a product the shop has not listed (36009004 naming product_id) is asked again; listed, it lands once', async () => {
  await sim.control('PUT', '/_sim/tiktok/products', { productIds: ['OTHER-1'] });
  const product = { id: 'p1', title: 'Serum', price: { amount: 2400, currency: 'USD' }, url: 'https://shop.example.com/serum', sku: 'SERUM-05' };
  const show = sampleShow('t1', { products: [product] });
  const where = (pred: (m: MirrorView) => boolean) => waitForMirror<MirrorView>(svc, PARTNER, 't1', pred, { targetId: 'tt' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  await where((m) => m.state === 'action_required');
  const { externalId: roomId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'Refused retry (TikTok LIVE)' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/t1/mirrors/tt`, { method: 'PUT', json: { externalId: roomId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, at()))).status).toBe(202);
  await where((m) => m.state === 'live');
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 't1', productId: 'p1' } })).status).toBe(202);
  const failed = await where((m) => pin(m, 'p1')?.state === 'failed' || m.state === 'failed');
  expect(failed.state).toBe('live');
  expect(pin(failed, 'p1')?.reason).toMatch(/36009004.*product_id.*while the show is live the pin is tried again/);

  const links = async () => ((await sim.control('GET', '/_sim/tiktok/requests')) as { method: string; path: string; status: number }[]).filter((r) => r.method === 'POST' && r.path.split('?')[0] === '/affiliate_seller/202405/products/SERUM-05/promotion_link/generate');
  await waitFor(async () => (await links()).length >= 2, 10_000, 50);
  await sim.control('PUT', '/_sim/tiktok/products', { productIds: ['OTHER-1', 'SERUM-05'] });
  const landed = await where((m) => pin(m, 'p1')?.state === 'pinned' || m.state === 'failed');
  expect(landed.state).toBe('live');
  const count = (await links()).length;
  await sleep(6 * BASE_MS);
  expect((await links()).length).toBe(count);
  expect((await sim.effects('tiktok')).filter((e) => e.type === 'product.pinned' && e.productId === 'SERUM-05')).toHaveLength(1);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, state: 'ended' }, at()))).status).toBe(202);
  expect((await where((m) => m.state === 'ended' || m.state === 'failed')).state).toBe('ended');
}, 60_000);

/** What the partner was told of p1 for show `showId` on Whatnot (its state, and whether the mirror had an error), in the order received. */
const told = (showId: string) => received.filter((m) => m.data.showId === showId && m.data.targetId === 'wn').map((m) => `${pin(m.data, 'p1')?.state ?? '-'}${m.data.lastError === null ? '' : ' (error)'}`);
const toldStates = (showId: string) => told(showId).map((t) => t.split(' ')[0]);

test('a retry refused again for the same reason tells the partner nothing; a 5xx during a retry neither starts the wait over nor tells it pending', async () => {
  await listings(['SOMETHING-ELSE']);
  const { show, product } = await refusedPin('r4', 'GLOSS-04');
  await waitFor(async () => toldStates('r4').includes('failed'), 10_000, 20);

  // Refused again by the second attempt, then by the third (the next one comes 4 × BASE_MS later):
  // nothing new for the partner, nor on the show's timeline (an entry per attempt pushed real history out).
  const refusals = (n: number) => waitFor(async () => (await svc.rt.shows.getMirror(PARTNER, 'r4', 'wn'))?.pins['p1']?.refused?.retry?.tries === n, 10_000, 10);
  const timeline = async () => (await svc.rt.activity.list(PARTNER, 'r4', 500)).filter((e) => e.kind === 'mirror').length;
  await refusals(2);
  await sleep(200);
  const [messages2, timeline2] = [received.length, await timeline()];
  await refusals(3);
  await sleep(200);
  expect([received.length, await timeline()]).toEqual([messages2, timeline2]);
  expect((await adds('GLOSS-04')).map((r) => r.status)).toEqual([404, 404, 404]);
  // The next attempt meets a simulated 500, once: the mirror retries it (its own back-off), refused again.
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['500'] });
  await waitFor(async () => (await adds('GLOSS-04')).some((r) => r.status === 500), 10_000, 10);
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  await waitFor(async () => (await adds('GLOSS-04')).filter((r) => r.status === 404).length >= 5, 20_000, 20);
  const tries = await adds('GLOSS-04');
  expect(tries.map((r) => r.status)).toEqual([404, 404, 404, 500, 404, 404]);
  // The wait goes on growing: the refusal after the 500 is the fourth (8 × BASE_MS), not a first one.
  expect(Date.parse(tries[5]!.at) - Date.parse(tries[4]!.at)).toBeGreaterThanOrEqual(8 * BASE_MS - 50);

  // The seller lists it: it lands, and the partner is told that.
  await listings(['SOMETHING-ELSE', 'GLOSS-04']);
  await waitFor(async () => toldStates('r4').includes('pinned'), 20_000, 20);
  // Told `failed` once for the five refusals, never `pending` in between (the 500 is reported as the
  // mirror's error, the pin still `failed`), then `pinned`.
  const all = told('r4');
  const since = all.slice(all.indexOf('failed'));
  expect(since.filter((t) => t !== 'failed (error)')).toEqual(['failed', 'pinned']);
  expect(since.at(-1)).toBe('pinned');

  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, products: [product], state: 'ended' }, at()))).status).toBe(202);
}, 60_000);

test("a retry is not held back by the target's pin delay again: the product is on screen already", async () => {
  // Far above the retry's own wait (BASE_MS and a sweep: about 0.5 s, a second or two on a loaded machine),
  // so that a retry held back by the pin delay again (6.4 s or more) and one that is not stay apart.
  const PIN_DELAY_MS = 6000;
  const patch = (pinDelayMs: number) => svc.api(`/v1/partners/${PARTNER}/targets/wn`, { method: 'PATCH', json: { pinDelayMs } });
  expect((await patch(PIN_DELAY_MS)).status).toBe(200);
  try {
    await listings(['SOMETHING-ELSE']);
    const { show } = await refusedPin('r5', 'TINT-05');
    await waitFor(async () => (await adds('TINT-05')).length >= 2, 30_000, 20);
    const [first, second] = await adds('TINT-05');
    // Asked again after its wait (BASE_MS, and the sweep's), not a pin delay more.
    expect(Date.parse(second!.at) - Date.parse(first!.at)).toBeLessThan(PIN_DELAY_MS);
    expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, state: 'ended' }, at()))).status).toBe(202);
  } finally {
    expect((await patch(0)).status).toBe(200);
  }
}, 60_000);
