/**
 * Relay tests with `relay` role processes of their own (`tsx workers/relay.ts`, as `npm run start:relay`
 * runs it): the simulators, the service (workers, scheduler, optionally the ingest edge) in this process,
 * and the environment both share, so a spawned relay process reads the same Redis, key prefix and
 * secrets. Registers its own beforeAll/afterAll; every relay process it started is killed after.
 */
import { randomBytes } from 'node:crypto';
import { createPartner, startService, type TestService } from './service.js';
import { startSim, type TestSim } from './sim.js';
import { addAllTargets } from './platforms.js';
import { spawnWorker, type WorkerProcess } from './worker-process.js';

export interface RelayProcesses {
  readonly svc: TestService;
  readonly sim: TestSim;
  /** The shared environment (secrets key, key prefix, admin key) without the per-process parts. */
  readonly env: Record<string, string>;
  /** The partner's webhook secret, when `partner` was given (its targets on all five simulators). */
  readonly secret: string;
  /** A relay process with no edge of its own (RELAY_EDGE=none) unless `extra` says otherwise. */
  relayProcess(extra?: Record<string, string>): WorkerProcess;
}

export function relayProcesses(opts: { keyPrefix: string; edge?: boolean; partner?: string }): RelayProcesses {
  let svc: TestService | undefined;
  let sim: TestSim | undefined;
  let secret: string | undefined;
  const relays: WorkerProcess[] = [];
  const env = {
    SECRETS_KEY: randomBytes(32).toString('base64'),
    KEY_PREFIX: opts.keyPrefix + randomBytes(2).toString('hex'),
    ALLOW_PRIVATE_DESTINATIONS: 'true',
    ADMIN_API_KEY: 'sk_admin_test_0123456789abcdef',
  };
  beforeAll(async () => {
    sim = await startSim();
    svc = await startService({ workers: true, scheduler: true, ...(opts.edge ? { edge: true } : {}), env: { ...env, LOG_LEVEL: 'silent' } });
    if (opts.partner) {
      secret = await createPartner(svc, opts.partner);
      await addAllTargets(svc, sim, opts.partner, { lift: true });
    }
  }, 60_000);
  afterAll(async () => {
    for (const r of relays) await r.kill();
    await svc?.close();
    await sim?.close();
  });
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is not started (used outside a test?)`);
    return v;
  };
  return {
    get svc() {
      return started(svc, 'the service');
    },
    get sim() {
      return started(sim, 'the simulators');
    },
    env,
    get secret() {
      return started(secret, 'the partner (relayProcesses({ partner }))');
    },
    relayProcess(extra = {}) {
      const s = started(svc, 'the service');
      const r = spawnWorker({ ...env, REDIS_URL: s.redis.url, DATA_DIR: s.config.dataDir, RELAY_EDGE: 'none', LOG_LEVEL: 'info', ...extra }, 'workers/relay.ts');
      relays.push(r);
      return r;
    },
  };
}
