/**
 * "YouTube and Facebook go live only once the relay is sending to them" (README "Video relay") also
 * across a Redis outage longer than the relay heartbeat's TTL (6 s): the heartbeat key lapses although
 * the relay process runs on, and the mirrors' video-wait retries that run before its next pass must
 * still wait (the deployment's relay is a durable marker, not the heartbeat: runtime.ts videoGate).
 * Real redis-server (killed and restarted, AOF appendfsync always), real simulators, relay role on.
 */
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
const P = 'gate-p';
const SHOWS = ['gate-1', 'gate-2', 'gate-3'];

beforeAll(async () => {
  sim = await startSim();
  // A 2 s heartbeat TTL (max(lease, 5 polls)) keeps the outage short.
  svc = await startService({ workers: true, scheduler: true, relay: true, env: { RELAY_LEASE_MS: '2000', RELAY_POLL_MS: '400' } });
  secret = await createPartner(svc, P);
  const r = await svc.api(`/v1/partners/${P}/targets`, {
    json: { id: 'facebook', platform: 'facebook', name: 'fb', credentials: simTargetCredentials('facebook'), baseUrl: sim.base('facebook'), commissionRateBps: 1000 },
  });
  expect(r.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

test('a Redis outage longer than the relay heartbeat does not start Facebook live videos that have no video', async () => {
  for (const id of SHOWS) {
    const r = await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(id, { state: 'live' }), new Date().toISOString()));
    expect(r.status).toBe(202);
  }
  // Every mirror waits for video: nothing publishes to the shows' ingest.
  await waitFor(async () => {
    const ms = await Promise.all(SHOWS.map((id) => svc.rt.shows.getMirror(P, id, 'facebook')));
    return ms.every((m) => m?.state === 'ready' && /waiting for video/.test(m.lastError ?? ''));
  }, 30_000);
  expect((await sim.effects('facebook')).filter((e) => e.type === 'show.started')).toEqual([]);

  await svc.redis.stop();
  await new Promise((r) => setTimeout(r, 3_000)); // longer than the relay heartbeat's TTL (2 s)
  await svc.redis.start();
  await new Promise((r) => setTimeout(r, 5_000)); // a few video-wait retries (2 s) after the outage

  const started = (await sim.effects('facebook')).filter((e) => e.type === 'show.started');
  const mirrors = await Promise.all(SHOWS.map((id) => svc.rt.shows.getMirror(P, id, 'facebook')));
  expect({ started: started.length, states: mirrors.map((m) => m?.state) }).toEqual({ started: 0, states: ['ready', 'ready', 'ready'] });
  for (const m of mirrors) expect(m?.lastError).toMatch(/waiting for video/);
}, 90_000);
