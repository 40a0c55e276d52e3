/**
 * What the show view (GET /v1/partners/{p}/shows/{s}) says where a mirror cannot move, found on
 * `npm start`:
 * - a pin of a product the show's snapshot lacks stayed `pending` with nothing saying why; its pin now
 *   carries a `reason`, and the `product.updated` that adds the product still pins it;
 * - a disabled target's mirror kept the "retrying in 3 s" of its last run and the view did not say the
 *   target was disabled; it now has `enabled: false` and a `lastError` that says so, while the
 *   timeline (ops show detail) keeps the retry that happened.
 */
import { createServer } from 'node:net';
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simRigPerFile, youtubeEncoderNow } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

type PinView = { productId: string; state: string; linkUrl: string | null; reason?: string };
type MirrorView = { targetId: string; state: string; enabled?: boolean; pins: PinView[]; lastError: string | null };

simRigPerFile('lo', () => [], (rig) => ({ sim, svc, secret } = rig), { prepare: youtubeEncoderNow });

async function view(showId: string): Promise<{ mirrors: MirrorView[] }> {
  const r = await svc.api(`/v1/partners/lo/shows/${showId}`);
  expect(r.status).toBe(200);
  return (await r.json()) as { mirrors: MirrorView[] };
}

/** A loopback port nothing listens on: every request to it is refused. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

test('a pin of a product the snapshot lacks says why it is pending, and is pinned once the partner sends the product', async () => {
  const r = await svc.api('/v1/partners/lo/targets', { json: { id: 'yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 1000 } });
  expect(r.status).toBe(201);
  const show = sampleShow('ghost1', { state: 'live', pinnedProductIds: ['p1', 'ghost'] });
  expect((await sendEvent(svc, 'lo', secret, showEvent('show.live', show, '2026-11-24T18:00:00Z'))).status).toBe(202);
  const live = await waitFor(async () => (await view('ghost1')).mirrors.find((m) => m.targetId === 'yt' && m.pins.find((p) => p.productId === 'p1')?.state === 'pinned'), 20_000);
  const ghost = live.pins.find((p) => p.productId === 'ghost');
  expect(ghost).toMatchObject({ state: 'pending', linkUrl: null });
  expect(ghost?.reason).toMatch(/product ghost is not in the show's snapshot: it is pinned when the partner sends the product/);
  expect(live.pins.find((p) => p.productId === 'p1')?.reason).toBeUndefined();
  expect(live.lastError).toBeNull();

  // product.pinned of another unknown product: the same reason.
  expect((await sendEvent(svc, 'lo', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: 'ghost1', productId: 'ghost2' } })).status).toBe(202);
  const both = await waitFor(async () => (await view('ghost1')).mirrors.find((m) => m.targetId === 'yt' && m.pins.some((p) => p.productId === 'ghost2')));
  expect(both.pins.find((p) => p.productId === 'ghost2')?.reason).toMatch(/product ghost2 is not in the show's snapshot/);

  // The partner sends the product: it is pinned, and the reason is gone.
  const product = { id: 'ghost', title: 'Ghost', price: { amount: 900, currency: 'USD' }, url: 'https://shop.example.com/ghost' };
  expect((await sendEvent(svc, 'lo', secret, { type: 'product.updated', occurredAt: '2026-11-24T18:02:00Z', data: { showId: 'ghost1', product } })).status).toBe(202);
  const pinned = await waitFor(async () => (await view('ghost1')).mirrors.find((m) => m.targetId === 'yt')?.pins.find((p) => p.productId === 'ghost' && p.state === 'pinned'), 20_000);
  expect(pinned.reason).toBeUndefined();
  expect(pinned.linkUrl).toMatch(/\/l\//);
}, 60_000);

test("a disabled target's mirror says the target is disabled instead of its last retry; the timeline keeps the retry", async () => {
  const r = await svc.api('/v1/partners/lo/targets?verify=false', {
    json: { id: 'dead', platform: 'youtube', name: 'dead', credentials: CREDENTIALS.youtube, baseUrl: `http://127.0.0.1:${await deadPort()}`, commissionRateBps: 1000 },
  });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, 'lo', secret, showEvent('show.scheduled', sampleShow('dis1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const retrying = await waitFor(async () => (await view('dis1')).mirrors.find((m) => m.targetId === 'dead' && /^retrying in \d+ s/.test(m.lastError ?? '')), 20_000);

  expect((await svc.api('/v1/partners/lo/targets/dead', { method: 'PATCH', json: { enabled: false } })).status).toBe(200);
  const after = (await view('dis1')).mirrors.find((m) => m.targetId === 'dead')!;
  expect(after.lastError).not.toMatch(/retrying/);
  expect(after.lastError).toMatch(/target dead is disabled: this mirror is not synced until the target is enabled again/);
  expect(after.enabled).toBe(false);
  expect(after.state).toBe(retrying.state);
  // The other target's mirror is untouched.
  expect((await view('dis1')).mirrors.find((m) => m.targetId === 'yt')).toMatchObject({ enabled: true });

  // History stays: the stored mirror and the ops timeline still have the retry.
  expect((await svc.rt.shows.getMirror('lo', 'dis1', 'dead'))?.lastError).toMatch(/^retrying in/);
  const detail = (await (await svc.api('/v1/ops/partners/lo/shows/dis1')).json()) as { timeline: { targetId: string | null; summary: string; detail: string | null }[]; mirrors: { targetId: string; enabled: boolean; lastError: string | null }[] };
  expect(detail.timeline.some((i) => i.targetId === 'dead' && /retrying in|ECONNREFUSED|refused/i.test(i.detail ?? ''))).toBe(true);
  expect(detail.timeline.some((i) => i.targetId === 'dead' && /target\.disabled/.test(i.summary))).toBe(true);
  expect(detail.mirrors.find((m) => m.targetId === 'dead')).toMatchObject({ enabled: false, lastError: after.lastError });

  // Enabled again: the mirror is synced again and the note is gone.
  expect((await svc.api('/v1/partners/lo/targets/dead', { method: 'PATCH', json: { enabled: true } })).status).toBe(200);
  const back = (await view('dis1')).mirrors.find((m) => m.targetId === 'dead')!;
  expect(back.enabled).toBe(true);
  expect(back.lastError ?? '').not.toMatch(/disabled/);
}, 60_000);
