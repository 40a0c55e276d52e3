/**
 * Relay review R5: a publisher that stalls without closing (SIGSTOP: its TCP connection stays open)
 * made the relay disconnect and reconnect every platform again and again (each reconnect a new publish
 * on the platform's ingest), each mirror `retrying`/`connecting` with "relay: no data for 6 s", which
 * blamed the destinations for the source's stall. Now the edge reports the stall on the show's source
 * and the destinations wait on it, saying the source stalled.
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
const P = 'stall-p';
let secret: string;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  sim = await startSim();
  env = {
    SECRETS_KEY: randomBytes(32).toString('base64'),
    KEY_PREFIX: 'rz' + randomBytes(2).toString('hex'),
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

test('a publisher that stalls without closing does not make the relay reconnect every platform over and over', async () => {
  relayProcess();
  await scheduleRelayedShow(svc, sim, P, secret, 'stall1');
  await goLive(svc, P, secret, 'stall1');
  const v0 = await viewOf(svc, P, 'stall1');
  const keys = new Map(v0.mirrors.map((m) => [m.platform, m.ingest!.streamKey!]));
  const sinks = async () => Promise.all(ALL_PLATFORMS.map(async (p) => (await sim.streams(p)).find((s) => s.streamKey === keys.get(p))!));
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(svc, P, 'stall1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    const before = (await sinks()).map((s) => s.publishes);
    process.kill(enc.pid!, 'SIGSTOP'); // the encoder hangs; its TCP connection stays open
    await sleep(25_000);
    const after = (await sinks()).map((s) => s.publishes);
    const v = await viewOf(svc, P, 'stall1');
    process.kill(enc.pid!, 'SIGCONT');
    // The platforms should see one publish each, not a reconnect every few seconds...
    expect(after).toEqual(before);
    // ...and ops should be told the show's own stream stalled, not that each destination did.
    for (const m of v.mirrors) expect(m.relay.lastError ?? '').toMatch(/^source: the show's stream stalled/);
  } finally {
    await enc.stop();
  }
}, 120_000);
