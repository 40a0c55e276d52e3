/**
 * Crash: the worker process is SIGKILLed in the middle of syncs (requests in flight, intents started
 * but not recorded). After a restart every show converges and the simulator shows each broadcast
 * and each pin exactly once.
 */
import { randomBytes } from 'node:crypto';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const SHOWS = 20;
let svc: TestService;
let sim: TestSim;
let env: Record<string, string>;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  sim = await startSim();
  // Slow enough that a kill lands while requests are in flight.
  await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 40, simulatedEncoder: 1, streamActivationMs: 100, quotaPerDay: 10_000_000 });
  env = {
    SECRETS_KEY: randomBytes(32).toString('base64'),
    KEY_PREFIX: 'crash' + randomBytes(2).toString('hex'),
    WORKER_LOCK_MS: '2000',
    PLATFORM_TIMEOUT_MS: '2000',
    PLATFORM_SETTLE_MS: '2000',
    LOG_LEVEL: 'silent',
    ALLOW_PRIVATE_DESTINATIONS: 'true',
    ADMIN_API_KEY: 'sk_admin_test_0123456789abcdef',
  };
  svc = await startService({ env });
});

afterAll(async () => {
  for (const w of workers) await w.kill();
  await svc?.close();
  await sim?.close();
});

function workerEnv(): Record<string, string> {
  return { ...env, ...svc.redis.env, DATA_DIR: svc.config.dataDir, PUBLIC_BASE_URL: svc.url };
}

test('SIGKILL mid-sync, restart: every show converges, each broadcast and pin exactly once', async () => {
  const secret = await createPartner(svc, 'tsl');
  const r = await svc.api('/v1/partners/tsl/targets', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const ids = Array.from({ length: SHOWS }, (_, i) => `show${i}`);
  for (const id of ids) {
    const show = sampleShow(id, { title: `Crash show ${id}` });
    await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'));
    await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
    await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: id, productId: 'p1' } });
    await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:02:00Z', data: { showId: id, productId: 'p2' } });
  }

  // Two crashes at different points of progress.
  for (const threshold of [8, 30]) {
    const w = spawnWorker(workerEnv());
    workers.push(w);
    // Generous: a worker process starting on a loaded machine (on a cluster it opens a connection per
    // node for every queue) can take many seconds before its first effect.
    await waitFor(async () => (await sim.effects('youtube')).length >= threshold, 60_000, 20);
    await w.kill('SIGKILL');
  }
  const effectsAtCrash = (await sim.effects('youtube')).length;
  expect(effectsAtCrash).toBeLessThan(SHOWS * 4); // the kills really happened mid-way

  workers.push(spawnWorker(workerEnv()));
  await waitFor(
    async () => {
      const mirrors = await Promise.all(ids.map((id) => svc.rt.shows.getMirror('tsl', id, 'yt')));
      return mirrors.every((m) => m?.state === 'live' && m.pins['p1']?.state === 'pinned' && m.pins['p2']?.state === 'pinned');
    },
    90_000,
    100,
  );

  const effects = await sim.effects('youtube');
  for (const id of ids) {
    const m = await svc.rt.shows.getMirror('tsl', id, 'yt');
    const mine = effects.filter((e) => e.externalId === m!.remote!.externalId);
    expect(mine.filter((e) => e.type === 'show.created')).toHaveLength(1);
    expect(mine.filter((e) => e.type === 'show.started')).toHaveLength(1);
    const posted = mine.filter((e) => e.type === 'message.posted').map((e) => e.url);
    expect(posted.sort()).toEqual([m!.pins['p1']!.linkUrl, m!.pins['p2']!.linkUrl].sort());
  }
  // No orphan broadcast was created for any show.
  const created = effects.filter((e) => e.type === 'show.created');
  expect(created).toHaveLength(SHOWS);
  expect(new Set(created.map((e) => e.title)).size).toBe(SHOWS);
}, 240_000);
