/**
 * Fault injection: the YouTube simulator answers 20 % of requests with 429, 500, a timeout (the
 * effect happens, the answer never comes) or an expired token. 50 shows still all converge, and
 * each side effect happens once.
 */
import { createPartner, retryingUnavailable, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const SHOWS = 50;
let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 50, quotaPerDay: 10_000_000 });
  // SYNC_BACKOFF_BASE_MS 100 (a tenth of the default): a mirror that failed a few times in a row waited
  // out 1-2 s, 2-4 s, 4-8 s back-offs here, most of this file's time (CI time, docs/testing.md); the
  // faults, their kinds and the exactly-once checks are the same.
  svc = await startService({ workers: true, scheduler: true, env: { PLATFORM_TIMEOUT_MS: '800', WORKER_CONCURRENCY: '25', SYNC_BACKOFF_BASE_MS: '100' } });
});

afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('20 % faults of every kind: 50 shows converge with each effect exactly once', async () => {
  const secret = await createPartner(svc, 'tsl');
  // The add's credential check runs under this file's 800 ms PLATFORM_TIMEOUT_MS: on a loaded machine it
  // can run out (a 503 that saved nothing), sent again as an operator would.
  const r = await retryingUnavailable(() => svc.api('/v1/partners/tsl/targets', {
    json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 },
  }));
  expect(r.status).toBe(201);
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 0.2, kinds: ['429', '500', 'timeout', 'token_expired'], hangMs: 1500, seed: 42 });

  const ids = Array.from({ length: SHOWS }, (_, i) => `f${i}`);
  const send = async (id: string, body: unknown): Promise<void> => {
    const res = await sendEvent(svc, 'tsl', secret, body);
    expect(res.status).toBe(202);
  };
  await Promise.all(
    ids.map(async (id) => {
      const show = sampleShow(id, { title: `Fault show ${id}` });
      await send(id, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'));
      await send(id, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
      await send(id, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId: id, productId: 'p1' } });
    }),
  );
  const live = async (): Promise<boolean> => {
    const ms = await Promise.all(ids.map((id) => svc.rt.shows.getMirror('tsl', id, 'yt')));
    return ms.every((m) => m?.state === 'live' && m.pins['p1']?.state === 'pinned');
  };
  await waitFor(live, 150_000, 250);
  await Promise.all(ids.map((id) => send(id, showEvent('show.ended', { ...sampleShow(id, { title: `Fault show ${id}` }), state: 'ended' }, '2026-11-24T19:00:00Z'))));
  await waitFor(async () => (await Promise.all(ids.map((id) => svc.rt.shows.getMirror('tsl', id, 'yt')))).every((m) => m?.state === 'ended'), 150_000, 250);

  const effects = await sim.effects('youtube');
  const requests = (await sim.control('GET', '/_sim/youtube/requests')) as { fault?: string }[];
  const faults = requests.filter((q) => q.fault).map((q) => q.fault);
  expect(new Set(faults)).toEqual(new Set(['429', '500', 'timeout', 'token_expired']));
  for (const id of ids) {
    const m = (await svc.rt.shows.getMirror('tsl', id, 'yt'))!;
    const mine = effects.filter((e) => e.externalId === m.remote!.externalId).map((e) => e.type);
    expect(mine).toEqual(['show.created', 'show.started', 'message.posted', 'show.ended']);
    expect(m.lastError).toBeNull();
  }
  expect(effects.filter((e) => e.type === 'show.created')).toHaveLength(SHOWS);
  process.stdout.write(`faults injected: ${faults.length} of ${requests.length} requests\n`);
}, 320_000);
