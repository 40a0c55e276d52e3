/**
 * The set-up of the tests that play sync runs themselves against a platform that answers late
 * (create-then-cancel, intent-late-request, intent-settle, pin-recovery.sync, pin-taken-back): the
 * simulators, a LateProxy in front of them (targets point their baseUrl at it), and a service with no
 * workers, so the test runs each job as BullMQ would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncOutcome, SyncService } from '../../src/mirror/sync.service.js';
import { startLateProxy, type LateProxy } from './late-proxy.js';
import { createPartner, startService, type TestService } from './service.js';
import { startSim, type TestSim } from './sim.js';

export interface LateRig {
  readonly svc: TestService;
  readonly sim: TestSim;
  readonly proxy: LateProxy;
  /** The webhook secret of partner `partnerId`. */
  readonly secret: string;
  /** syncUntilDone on this service's SyncService. */
  converge(job: SyncJob, name: string): Promise<SyncOutcome>;
}

type SyncJob = { partnerId: string; showId: string; targetId: string };

/**
 * Registers beforeAll/afterAll in the calling test file: the simulators with `limits` PUT once per
 * platform, the proxy, the service (`env` on top of the test defaults) and the partner `partnerId`.
 * The fields are read once beforeAll ran.
 */
export function useLateRig(opts: { limits: Record<string, Record<string, unknown>>; env: Record<string, string>; partnerId: string }): LateRig {
  let svc: TestService | undefined;
  let sim: TestSim | undefined;
  let proxy: LateProxy | undefined;
  let secret: string | undefined;
  beforeAll(async () => {
    sim = await startSim();
    for (const [platform, limits] of Object.entries(opts.limits)) await sim.control('PUT', `/_sim/${platform}/limits`, limits);
    proxy = await startLateProxy(sim.url);
    svc = await startService({ env: opts.env });
    secret = await createPartner(svc, opts.partnerId);
  });
  afterAll(async () => {
    await svc?.close();
    await proxy?.close();
    await sim?.close();
  });
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the late rig is not started (useLateRig starts it in beforeAll)');
    return v;
  };
  return {
    get svc() {
      return ready(svc);
    },
    get sim() {
      return ready(sim);
    },
    get proxy() {
      return ready(proxy);
    },
    get secret() {
      return ready(secret);
    },
    converge: (job, name) => syncUntilDone(ready(svc).rt.syncService, job, name),
  };
}

/** Runs the job as BullMQ would (a new token each time, `<name>-<i>`, waiting each delay) until it is done, at most 30 runs. */
export async function syncUntilDone(service: SyncService, job: SyncJob, name: string): Promise<SyncOutcome> {
  let outcome = await service.sync(job, { token: `${name}-0` });
  for (let i = 1; outcome.kind === 'delay' && i < 30; i++) {
    await sleep(outcome.delayMs);
    outcome = await service.sync(job, { token: `${name}-${i}` });
  }
  return outcome;
}
