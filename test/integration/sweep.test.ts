/**
 * The sweep is the safety net behind coalesced sync jobs: a show whose sync was never enqueued (the
 * process died between the durable write and the enqueue) still gets mirrored, and finished shows
 * leave the active set.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { queuesIdle, syncQueues } from '../helpers/settle.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createLogger } from '../../src/lib/logger.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  svc = await startService();
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('a show with no sync job is picked up by the sweep; an ended show leaves the active set', async () => {
  const secret = await createPartner(svc, 'tsl');
  await svc.api('/v1/partners/tsl/targets', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect((await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...sampleShow('lost'), state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  // Simulate the lost enqueue: drop every waiting sync job.
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  // No job is left for the workers to run: without the sweep the show would never be mirrored.
  expect(await queuesIdle(syncQueues(svc))).toBe(true);
  await svc.startWorkers();
  expect(await svc.rt.shows.getMirror('tsl', 'lost', 'yt')).toBeNull();

  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'));
  const first = await sweep.sweep();
  expect(first.enqueued).toBe(1);
  await waitFor(async () => (await svc.rt.shows.getMirror('tsl', 'lost', 'yt'))?.state === 'live');
  // Idle and current: nothing more to enqueue.
  expect((await sweep.sweep()).enqueued).toBe(0);

  await sendEvent(svc, 'tsl', secret, showEvent('show.ended', { ...sampleShow('lost'), state: 'ended' }, '2026-11-24T19:00:00Z'));
  await waitFor(async () => (await svc.rt.shows.getMirror('tsl', 'lost', 'yt'))?.state === 'ended');
  expect((await sweep.sweep()).finished).toBe(1);
  expect(await svc.rt.shows.activeShows()).toEqual([]);
});
