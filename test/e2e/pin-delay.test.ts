/**
 * Pin delay (issue 4): viewers see the live video seconds late, so a target can hold each pin back
 * by `pinDelayMs`; the show's other work is not held up.
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { simServicePerFile, youtubeEncoderNow } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: youtubeEncoderNow });

test('a pin is mirrored no sooner than pinDelayMs after it is seen; an unpin inside the delay cancels it', async () => {
  const secret = await createPartner(svc, 'tsl');
  const r = await svc.api('/v1/partners/tsl/targets', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500, pinDelayMs: 1500 },
  });
  expect(r.status).toBe(201);
  const show = sampleShow('d1');
  await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
  await waitFor(async () => (await svc.rt.shows.getMirror('tsl', 'd1', 'yt'))?.state === 'live');
  const externalId = (await svc.rt.shows.getMirror('tsl', 'd1', 'yt'))!.remote!.externalId;

  const sentAt = Date.now();
  await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: 'd1', productId: 'p1' } });
  // p2 is pinned and unpinned within the delay: viewers never saw it, so nothing is posted.
  await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:01Z', data: { showId: 'd1', productId: 'p2' } });
  // Unpinned while the pin waits out its delay (seen by the sync, not yet posted).
  await waitFor(async () => (await svc.rt.shows.getMirror('tsl', 'd1', 'yt'))?.pins['p2']?.dueAt !== undefined, 10_000, 10);
  await sendEvent(svc, 'tsl', secret, { type: 'product.unpinned', occurredAt: '2026-11-24T18:01:02Z', data: { showId: 'd1', productId: 'p2' } });

  const posted = await waitFor(async () => (await sim.effects('youtube')).find((e) => e.externalId === externalId && e.type === 'message.posted'), 10_000, 20);
  expect(Date.parse(posted.at) - sentAt).toBeGreaterThanOrEqual(1500);
  const doc = (await (await svc.api('/v1/partners/tsl/shows/d1')).json()) as { mirrors: { pins: { productId: string; state: string }[] }[] };
  expect(doc.mirrors[0]!.pins.map((p) => [p.productId, p.state])).toEqual([['p1', 'pinned']]);
  // Nothing is left to run (the delayed sync that posted p1 was the last job): p2 was never posted.
  await settled(syncQueues(svc));
  const messages = (await sim.effects('youtube')).filter((e) => e.externalId === externalId && e.type === 'message.posted');
  expect(messages).toHaveLength(1);
});
