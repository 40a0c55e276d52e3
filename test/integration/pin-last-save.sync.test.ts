/**
 * The pin step's done record rides on the run's last save when the step has a recovery lookup
 * (YouTube: the chat message is found by its episode tag): a pin run saves the mirror once, not once
 * after the call and again at its end. A worker that dies after the post and before that save leaves
 * the step `started`; the run that takes over waits for the attempt to settle, finds the message and
 * posts nothing again. Real redis-server, the real SyncService and YouTube adapter, the simulator.
 */
import { SyncService, type SyncDeps } from '../../src/mirror/sync.service.js';
import type { ShowRepository } from '../../src/store/show.repository.js';
import { syncUntilDone } from '../helpers/late-rig.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { keysMatching } from '../helpers/redis-cluster.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null, simulatedEncoder: 1, streamActivationMs: 0 });
  // no workers: the test plays the runs, as BullMQ would; short attempts so a takeover settles fast
  svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '400', PLATFORM_SETTLE_MS: '300' } });
  secret = await createPartner(svc, 'pls');
  const r = await svc.api('/v1/partners/pls/targets?verify=false', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

async function liveShow(showId: string): Promise<{ partnerId: string; showId: string; targetId: string }> {
  const job = { partnerId: 'pls', showId, targetId: 'yt' };
  expect((await sendEvent(svc, 'pls', secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect(await syncUntilDone(svc.rt.syncService, job, `${showId}-live`)).toEqual({ kind: 'done', state: 'live' });
  expect((await sendEvent(svc, 'pls', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId, productId: 'p1' } })).status).toBe(202);
  return job;
}

/** Chat messages posted so far (the tests run one after the other, each pinning one product once). */
const posted = async (): Promise<number> => (await sim.effects('youtube')).filter((e) => e.type === 'message.posted').length;

test('a pin run saves the mirror once: the done record and the pinned mirror are written by its last save', async () => {
  const job = await liveShow('s-once');
  const before = (await svc.rt.shows.getMirror('pls', 's-once', 'yt'))!.rev ?? 0;
  const postedBefore = await posted();
  expect(await svc.rt.syncService.sync(job, { token: 'pin-once' })).toMatchObject({ kind: 'done', state: 'live' });
  const after = (await svc.rt.shows.getMirror('pls', 's-once', 'yt'))!;
  expect(after.pins['p1']).toMatchObject({ state: 'pinned', episode: 1 });
  expect(after.rev).toBe(before + 1);
  const intentKeys = await keysMatching(svc.rt.redis, `${svc.rt.keys.intent('pls', 's-once', 'yt', '')}*pin:p1:1:message`);
  expect(intentKeys).toHaveLength(1);
  // The chat message's id is no secret: kept in clear (no AES-GCM seal per pin).
  expect(JSON.parse((await svc.rt.redis.get(intentKeys[0]!))!)).toMatchObject({ status: 'done', owner: 'pin-once', result: { id: after.pins['p1']!.ref } });
  expect((await posted()) - postedBefore).toBe(1);
}, 60_000);

test('a worker that dies after the post, before its last save: the next run finds the message and posts nothing again', async () => {
  const job = await liveShow('s-crash');
  const postedBefore = await posted();
  // The dying worker: its last save never reaches Redis and nothing of the run is written after it
  // (its deferred done record is dropped with the process).
  const deps = (svc.rt.syncService as unknown as { deps: SyncDeps }).deps;
  const shows: ShowRepository = Object.create(deps.shows) as ShowRepository;
  shows.saveMirrorFinal = async (_p, _s, _m, lease) => {
    lease.pending = undefined;
    throw new Error('worker died before its last save');
  };
  const dying = new SyncService({ ...deps, shows });
  await expect(dying.sync(job, { token: 'dies' })).rejects.toThrow('worker died');
  expect((await posted()) - postedBefore).toBe(1);
  const m = (await svc.rt.shows.getMirror('pls', 's-crash', 'yt'))!;
  expect(m.pins['p1']?.state).not.toBe('pinned'); // the post is recorded nowhere but on the platform
  const intentKeys = await keysMatching(svc.rt.redis, `${svc.rt.keys.intent('pls', 's-crash', 'yt', '')}*pin:p1:1:message`);
  expect(JSON.parse((await svc.rt.redis.get(intentKeys[0]!))!)).toMatchObject({ status: 'started', owner: 'dies' });

  // The takeover (a new job token) waits for the attempt to settle, then looks the message up.
  expect(await syncUntilDone(svc.rt.syncService, job, 'takeover')).toEqual({ kind: 'done', state: 'live' });
  const healed = (await svc.rt.shows.getMirror('pls', 's-crash', 'yt'))!;
  expect(healed.pins['p1']).toMatchObject({ state: 'pinned', episode: 1 });
  expect((await posted()) - postedBefore).toBe(1);
}, 60_000);

test('a pin step whose record turned unreadable before the last save: the run fails the mirror with IntentCorruptError at once', async () => {
  const job = await liveShow('s-corrupt');
  const postedBefore = await posted();
  // The record goes bad between the post and the save that was to write it done (a damaged AOF, a hand edit).
  const deps = (svc.rt.syncService as unknown as { deps: SyncDeps }).deps;
  const shows: ShowRepository = Object.create(deps.shows) as ShowRepository;
  let corrupted: string | undefined;
  shows.saveMirrorFinal = async (...args: Parameters<ShowRepository['saveMirrorFinal']>) => {
    const lease = args[3];
    if (corrupted === undefined && lease.pending?.length) {
      corrupted = lease.pending[0]!.key;
      await svc.rt.redis.set(corrupted, '{"status":"done","owner":"pin-corrupt",#garbage#}');
    }
    return deps.shows.saveMirrorFinal(...args);
  };
  const run = new SyncService({ ...deps, shows });
  // Before, the save answered "lease lost": the run stopped, holding its lease until it lapsed, and
  // only the run after that found the record unreadable.
  expect(await run.sync(job, { token: 'pin-corrupt' })).toEqual({ kind: 'done', state: 'failed' });
  expect(corrupted).toBeDefined();
  const m = (await svc.rt.shows.getMirror('pls', 's-corrupt', 'yt'))!;
  expect(m.state).toBe('failed');
  expect(m.lastError).toContain(`is unreadable (Redis key ${corrupted})`);
  // It names the step (its scope:step), not the Redis key twice.
  const step = corrupted!.slice(svc.rt.keys.intent('pls', 's-corrupt', 'yt', '').length);
  expect(step).toMatch(/pin:p1:1:message$/);
  expect(m.lastError).toContain(`the record of step ${step} is unreadable`);
  expect(m.lastError).toContain('this run made it on the platform');
  // Left as it is, and posted once.
  expect(await svc.rt.redis.get(corrupted!)).toBe('{"status":"done","owner":"pin-corrupt",#garbage#}');
  expect((await posted()) - postedBefore).toBe(1);
  // The run gave its lease back: the next one runs at once (and passes over the failed mirror).
  expect(await svc.rt.syncService.sync(job, { token: 'after-corrupt' })).toMatchObject({ kind: 'done', state: 'failed' });
  expect((await posted()) - postedBefore).toBe(1);
}, 60_000);
