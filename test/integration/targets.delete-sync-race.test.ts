/**
 * A target deleted while a sync run of it is in flight. Before, the run went on with what it had read
 * at its start: once the platform call in flight returned it saved the mirror (`ready`, then `live`),
 * indexed the platform show, made further platform calls with the deleted target's credentials and told
 * the partner (`mirror.updated`) about a mirror of a target that no longer exists. Now every save of a
 * run reads the target alongside, and a run that finds it gone stops: nothing further.
 *
 * The interleaving is forced: the YouTube simulator answers each call after 1.5 s, the target is deleted
 * (?force=true: the mirror is `provisioning`) while the run's create call is in flight, then the latency
 * is lifted so the run would go on at once. Real Redis, real workers, the simulator over HTTP, a real
 * partner endpoint on loopback.
 */
import { createServer, type Server } from 'node:http';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;
let server: Server | undefined;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
  svc = await startService({ workers: true, env: { PLATFORM_TIMEOUT_MS: '5000' } });
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await svc?.close();
  await sim?.close();
});

test('a sync run in flight when its target is deleted saves, calls and reports nothing further', async () => {
  const reports: { state: string; targetId: string; at: number }[] = [];
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; data: { state: string; targetId: string } };
      if (body.type === 'mirror.updated') reports.push({ state: body.data.state, targetId: body.data.targetId, at: Date.now() });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks`;

  const secret = await createPartner(svc, 'race');
  expect((await svc.api('/v1/partners/race/endpoints', { json: { url, events: ['mirror.updated'] } })).status).toBe(201);
  expect((await svc.api('/v1/partners/race/targets', { json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } })).status).toBe(201);
  await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 1_500 });
  try {
    expect((await sendEvent(svc, 'race', secret, showEvent('show.live', { ...sampleShow('racing'), state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
    // The run saved `provisioning` and its create call is in flight (1.5 s per platform call).
    await waitFor(async () => (await svc.rt.shows.getMirror('race', 'racing', 'yt'))?.state === 'provisioning', 20_000, 20);
    expect((await svc.api('/v1/partners/race/targets/yt?force=true', { method: 'DELETE' })).status).toBe(204);
  } finally {
    await sim.control('PUT', '/_sim/youtube/limits', { latencyMs: 0 });
  }
  const atDelete = await svc.rt.shows.getMirror('race', 'racing', 'yt');
  const deletedAt = Date.now();
  // Time for the create in flight to return and, before, for the run to save, go live and report.
  await new Promise((resolve) => setTimeout(resolve, 6_000));
  const after = await svc.rt.shows.getMirror('race', 'racing', 'yt');
  // Before: `live` (rev +3 or more), the broadcast taken live on the platform, and reports of `ready`/`live`.
  expect(after?.state).toBe('provisioning');
  expect(after?.rev).toBe(atDelete?.rev);
  expect(after?.remote).toBeUndefined();
  expect((await sim.effects('youtube')).filter((e) => e.type === 'show.live')).toEqual([]);
  expect(reports.filter((r) => r.targetId === 'yt' && (r.state !== 'provisioning' || r.at > deletedAt + 3_000))).toEqual([]);
}, 60_000);
