/**
 * Relay review R4: after `POST …/ingest/rotate` the encoder still publishing with the old key is cut
 * off (README: "the old one is refused from then on"), like a publish whose show ended, and the show
 * no longer has that publish as its source: every mirror waits (`idle`) for the new key's publish.
 * Before, the edge checked only the show's state, so the old-key encoder stayed on air and the relay
 * paired the new key with the old source (every mirror `connecting` with no error, then retrying).
 */
import { randomBytes } from 'node:crypto';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { addAllTargets, ALL_PLATFORMS } from '../helpers/platforms.js';
import { encode, goLive, scheduleRelayedShow, viewOf } from '../helpers/relay.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

let svc: TestService;
let sim: TestSim;
let env: Record<string, string>;
const relays: WorkerProcess[] = [];
const P = 'rot-p';
let secret: string;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  sim = await startSim();
  env = {
    SECRETS_KEY: randomBytes(32).toString('base64'),
    KEY_PREFIX: 'rk' + randomBytes(2).toString('hex'),
    ALLOW_PRIVATE_DESTINATIONS: 'true',
    ADMIN_API_KEY: 'sk_admin_test_0123456789abcdef',
  };
  svc = await startService({ workers: true, scheduler: true, edge: true, env: { ...env, LOG_LEVEL: 'silent' } });
  secret = await createPartner(svc, P);
  await addAllTargets(svc, sim, P, { lift: true });
}, 60_000);

afterAll(async () => {
  for (const r of relays) await r.kill();
  await svc?.close();
  await sim?.close();
});

function relayProcess(): WorkerProcess {
  const r = spawnWorker({ ...env, REDIS_URL: svc.redis.url, DATA_DIR: svc.config.dataDir, RELAY_EDGE: 'none', LOG_LEVEL: 'info' }, 'workers/relay.ts');
  relays.push(r);
  return r;
}

test('rotating the stream key cuts off the encoder still publishing with the old key', async () => {
  relayProcess();
  await scheduleRelayedShow(svc, sim, P, secret, 'rot1');
  await goLive(svc, P, secret, 'rot1');
  const v0 = await viewOf(svc, P, 'rot1');
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(svc, P, 'rot1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    const r = await svc.api(`/v1/partners/${P}/shows/rot1/ingest/rotate`, { method: 'POST' });
    expect(r.status).toBe(200);
    // Like a show that ended (checked every 2 s): the old key's publish is refused from now on.
    const exited = await Promise.race([enc.exited.then(() => true), sleep(10_000).then(() => false)]);
    // The relay sees the cleared source on its next pass (RELAY_POLL_MS): the mirrors then wait for the new key.
    const idle = async (): Promise<boolean> => (await viewOf(svc, P, 'rot1')).mirrors.every((m) => m.relay.state === 'idle');
    await waitFor(idle, 8_000).catch(() => undefined);
    const v = await viewOf(svc, P, 'rot1');
    expect({ oldPublishCutOff: exited, states: v.mirrors.map((m) => m.relay.state) }).toEqual({ oldPublishCutOff: true, states: ALL_PLATFORMS.map(() => 'idle') });
  } finally {
    await enc.stop();
  }
}, 120_000);
