/**
 * A pin does not stay `pinned` on a mirror after the show ended (issue 11 item 7): the end of the
 * show unpins every pin on the mirror, on the show view too. YouTube simulator, real HTTP and Redis.
 */
import { createPartner, sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';
import { waitForOwnTime } from '../helpers/loop-stalls.js';
import type { TestSim } from '../helpers/sim.js';
import { addTarget, simServicePerFile, simTarget, youtubeEncoderNow } from '../helpers/mirrors.js';

let svc: TestService;
let sim: TestSim;
simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: youtubeEncoderNow, timeoutMs: 60_000 });

// The service, its workers and the simulator all run in this process: its event-loop stalls (a loaded
// machine giving it the CPU late) are time none of them had, and are not counted in the waits.
test('pinned while live, unpinned once the show ended', async () => {
  const secret = await createPartner(svc, 'pe');
  await addTarget(svc, 'pe', simTarget(sim, 'youtube', { id: 'pe-yt', name: 'YT', commissionRateBps: 100 }));
  const show = sampleShow('pe1');
  expect((await sendEvent(svc, 'pe', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect((await sendEvent(svc, 'pe', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: 'pe1', productId: 'p1' } })).status).toBe(202);
  await waitForOwnTime(async () => (await svc.rt.shows.getMirror('pe', 'pe1', 'pe-yt'))?.pins['p1']?.state === 'pinned', 60_000);
  expect((await sendEvent(svc, 'pe', secret, showEvent('show.ended', { ...show, state: 'ended', pinnedProductIds: ['p1'] }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  await waitForOwnTime(async () => (await svc.rt.shows.getMirror('pe', 'pe1', 'pe-yt'))?.state === 'ended', 60_000);
  const m = (await svc.rt.shows.getMirror('pe', 'pe1', 'pe-yt'))!;
  expect(m.pins['p1']?.state).toBe('unpinned');
  const view = (await (await svc.api('/v1/partners/pe/shows/pe1')).json()) as { mirrors: { pins: { productId: string; state: string }[] }[] };
  expect(view.mirrors[0]!.pins).toEqual([expect.objectContaining({ productId: 'p1', state: 'unpinned' })]);
}, 300_000);
