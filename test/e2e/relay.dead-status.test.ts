/**
 * Relay review R1: a relay process that dies (SIGKILL, no other relay process) used to leave every
 * mirror reported as `sending` at its last bitrate for good, in the REST show view and the ops
 * console (statuses are stored for 30 days, read without looking at the show's relay lease). Now a
 * status whose show no relay process holds is reported `idle`, bitrate 0, saying nobody relays it.
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
const P = 'dead-p';
let secret: string;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  sim = await startSim();
  env = {
    SECRETS_KEY: randomBytes(32).toString('base64'),
    KEY_PREFIX: 'rd' + randomBytes(2).toString('hex'),
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

test('a relay process that died is not reported as still sending', async () => {
  const relay = relayProcess();
  await scheduleRelayedShow(svc, sim, P, secret, 'dead1');
  await goLive(svc, P, secret, 'dead1');
  const v0 = await viewOf(svc, P, 'dead1');
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(svc, P, 'dead1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    await relay.kill('SIGKILL');
    // Well past the lease (RELAY_LEASE_MS 6 s) and the relay heartbeat: nothing relays this show now.
    await sleep(12_000);
    expect(await svc.rt.relay.leaseHolder(P, 'dead1')).toBeNull();
    const v = await viewOf(svc, P, 'dead1');
    expect(v.mirrors.map((m) => [m.platform, m.relay.state, m.relay.bitrateKbps])).toEqual(ALL_PLATFORMS.map((p) => [p, 'idle', 0]));
    const board = (await (await svc.api('/v1/ops/board')).json()) as { shows: { showId: string; mirrors: { platform: string; relay: { state: string; bitrateKbps: number } | null }[] }[] };
    const row = board.shows.find((s) => s.showId === 'dead1');
    expect(row?.mirrors.map((m) => [m.platform, m.relay?.state, m.relay?.bitrateKbps])).toEqual(ALL_PLATFORMS.map((p) => [p, 'idle', 0]));
  } finally {
    await enc.stop();
  }
}, 120_000);
