/**
 * A sync run whose last save finds its target deleted writes nothing, the external-show index entry
 * included. On one Redis the entry is asserted inside that save's Lua step (after its target guard).
 * On a Redis Cluster the entry is in another slot and was written alongside the save, started together
 * with the save's target guard read: a run that raced a DELETE left the deleted target's index entry
 * behind. Now it goes out only once that read found the target, together with the save (no round trip
 * added). Runs on one Redis, and on a 3 + 3 cluster in `npm run test:cluster`, where it failed before.
 *
 * The interleaving is forced: the target is deleted when the run calls its last save (a wrapper on the
 * runtime's ShowRepository.saveMirrorFinal, before the original runs). Real Redis, the YouTube
 * simulator over HTTP; the test plays the runs.
 */
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  sim = await startSim();
  svc = await startService(); // no workers: the test plays the runs
}, 120_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('a run whose last save finds the target deleted writes no index entry for it', async () => {
  const secret = await createPartner(svc, 'ig');
  const r = await svc.api('/v1/partners/ig/targets?verify=false', { json: { id: 'ig-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } });
  expect(r.status).toBe(201);
  expect((await sendEvent(svc, 'ig', secret, showEvent('show.scheduled', sampleShow('ig-s'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const job = { partnerId: 'ig', showId: 'ig-s', targetId: 'ig-yt' };
  // First run: the broadcast is made and indexed.
  expect(await svc.rt.syncService.sync(job, { token: 'ig-0' })).toMatchObject({ kind: 'done', state: 'ready' });
  const mirror = await svc.rt.shows.getMirror('ig', 'ig-s', 'ig-yt');
  const externalId = mirror!.remote!.externalId;
  const index = new ExternalShowIndex(svc.rt.redis, svc.rt.keys);
  expect(await index.get('ig-yt', externalId)).toBe('ig-s');
  // The entry lost (as when its write failed): every run re-asserts it with its last save.
  await svc.rt.redis.del(svc.rt.keys.targetExternalShow('ig-yt', externalId));

  const shows = svc.rt.shows;
  const orig = shows.saveMirrorFinal.bind(shows);
  let calls = 0;
  shows.saveMirrorFinal = async (...args: Parameters<typeof orig>) => {
    calls++;
    expect((await svc.api('/v1/partners/ig/targets/ig-yt?force=true', { method: 'DELETE' })).status).toBe(204);
    return orig(...args);
  };
  try {
    // Second run: nothing to do on the platform; its last save finds the target gone.
    expect(await svc.rt.syncService.sync(job, { token: 'ig-1' })).toEqual({ kind: 'done', state: 'none' });
  } finally {
    shows.saveMirrorFinal = orig;
  }
  expect(calls).toBe(1);
  // Before, on a Cluster: the entry was written again, for a target that no longer exists.
  expect(await index.get('ig-yt', externalId)).toBeNull();
  expect((await svc.rt.shows.getMirror('ig', 'ig-s', 'ig-yt'))?.rev).toBe(mirror!.rev);
}, 60_000);
