/**
 * Relay review R2: the relay process whose embedded edge received the publish is SIGKILLed (the
 * encoder's connection dies with it). Its `relay-source` record used to stay in Redis (no TTL, no
 * owner check), so the relay process that took the show over believed the show's stream was still
 * publishing: every mirror said `connecting`, then "no data within the start-up allowance" and
 * `retrying` for ever, instead of `idle`, "waiting for the show's stream". Now the edge writes the
 * source with a TTL it renews while alive (RELAY_SOURCE_TTL_MS, 10 s by default), so a dead edge's source lapses.
 *
 * The relay processes here run with a 4 s source TTL (renewed every 800 ms), a 3 s lease (renewed every
 * 750 ms) and a pass every 250 ms, so the wait for the dead edge's source and lease to lapse is about
 * 4 s, not 10.
 */
import { randomBytes } from 'node:crypto';
import { testPort } from '../helpers/ports.js';
import { createPartner, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { addAllTargets } from '../helpers/platforms.js';
import { encode, goLive, scheduleRelayedShow, viewOf } from '../helpers/relay.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

let svc: TestService;
let sim: TestSim;
let env: Record<string, string>;
const relays: WorkerProcess[] = [];
const P = 'stale-src';

beforeAll(async () => {
  sim = await startSim();
  env = {
    SECRETS_KEY: randomBytes(32).toString('base64'),
    KEY_PREFIX: 'rq' + randomBytes(2).toString('hex'),
    ALLOW_PRIVATE_DESTINATIONS: 'true',
    ADMIN_API_KEY: 'sk_admin_test_0123456789abcdef',
  };
  svc = await startService({ workers: true, scheduler: true, env: { ...env, LOG_LEVEL: 'silent' } });
}, 60_000);

afterAll(async () => {
  for (const r of relays) await r.kill();
  await svc?.close();
  await sim?.close();
});

test('after the edge that received the publish dies, the show is not reported as still publishing', async () => {
  const secret = await createPartner(svc, P);
  await addAllTargets(svc, sim, P, { lift: true });
  const port = await testPort();
  const relayEnv = {
    ...env,
    REDIS_URL: svc.redis.url,
    DATA_DIR: svc.config.dataDir,
    HOST: '127.0.0.1',
    RELAY_RTMP_PORT: String(port),
    LOG_LEVEL: 'info',
    RELAY_SOURCE_TTL_MS: '4000',
    RELAY_LEASE_MS: '3000',
    RELAY_POLL_MS: '250',
  };
  const first = spawnWorker(relayEnv, 'workers/relay.ts');
  relays.push(first);
  await scheduleRelayedShow(svc, sim, P, secret, 'src1');
  await goLive(svc, P, secret, 'src1');
  const v0 = await viewOf(svc, P, 'src1');
  await waitFor(async () => first.output().includes('ingest edge listening'), 30_000);
  const enc = encode(`rtmp://127.0.0.1:${port}/live/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(svc, P, 'src1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    // The live edge's source carries the TTL this relay process was given (RELAY_SOURCE_TTL_MS), renewed as it runs.
    const ttl = await svc.rt.redis.pttl(svc.rt.keys.relaySource(P, 'src1'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(4000);
    await first.kill('SIGKILL'); // the edge goes with it: nothing publishes any more
    await waitFor(async () => (await enc.exited) !== undefined, 10_000);
    // The replacement relay process (same port, as a restarted `npm start` would be).
    const second = spawnWorker(relayEnv, 'workers/relay.ts');
    relays.push(second);
    // Until the dead edge's source lapses (its 4 s TTL here) and the new owner has put every mirror back to
    // idle: with the old untimed record neither happens (connecting, then retrying, for ever). Polled,
    // not a fixed 20 s sleep; the assertions below then read the settled state once more.
    await waitFor(async () => (await svc.rt.relay.source(P, 'src1')) === null && (await viewOf(svc, P, 'src1')).mirrors.every((m) => m.relay.state === 'idle'), 40_000, 250);
    const v = await viewOf(svc, P, 'src1');
    expect(v.mirrors.map((m) => [m.platform, m.relay.state])).toEqual(v.mirrors.map((m) => [m.platform, 'idle']));
    expect(await svc.rt.relay.source(P, 'src1')).toBeNull();
  } finally {
    await enc.stop();
  }
}, 150_000);
