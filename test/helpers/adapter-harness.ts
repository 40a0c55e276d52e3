/**
 * The set-up the adapter-level tests (test/integration/*.adapter.test.ts, pin-recovery, platform-text)
 * share: the platform simulators on an ephemeral loopback port, reset before each test; an adapter on
 * an in-memory context (adapter-context.ts) pointed at one of them; and the show and pin they post.
 */
import axios from 'axios';
import type { PlatformSimulator } from '../../src/simulators/sim.platform.js';
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';
import type { AdapterContext, PinSpec, Platform, ShowSpec, TargetAdapter } from '../../src/targets/target.adapter.js';
import { buildAdapterContext, type TestAdapterContext } from './adapter-context.js';

/** The product most adapter tests pin. */
export const LINEN_PIN: PinSpec = {
  productId: 'prod-linen-shirt',
  title: 'Linen shirt',
  price: { amount: 4900, currency: 'USD' },
  linkUrl: 'http://127.0.0.1:3000/l/Ab3dEf',
  platformProductId: 'prod-linen-shirt',
};

/** The show most adapter tests create (a fixed date years ahead). */
export const SPRING_SPEC: ShowSpec = {
  title: 'Spring drop: linen & denim',
  description: 'Live from the studio',
  scheduledAt: '2030-04-01T18:00:00.000Z',
};

export interface AdapterSimulators {
  /** e.g. http://127.0.0.1:41234; a target's baseUrl is `${url}/${platform}` (read once beforeAll ran). */
  readonly url: string;
  /** The RTMP sinks every handed-out ingest address starts with. */
  readonly rtmpUrl: string;
  /** One platform's simulator state, in process. */
  simulator<T extends PlatformSimulator>(platform: Platform): T;
}

/**
 * Registers beforeAll/afterAll/beforeEach in the calling test file: the simulators start on a free
 * port of 127.0.0.1, every test begins with `POST /_sim/reset`, then `PUT /_sim/<platform>/limits`
 * with each entry of `limits` (in order).
 */
export function useSimulators(opts: { limits?: Partial<Record<Platform, Record<string, unknown>>> } = {}): AdapterSimulators {
  let started: StartedSimulators | undefined;
  const sims = (): StartedSimulators => {
    if (!started) throw new Error('the simulators are not started (useSimulators starts them in beforeAll)');
    return started;
  };
  beforeAll(async () => {
    started = await startSimulators({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await started?.close();
  });
  beforeEach(async () => {
    await axios.post(`${sims().url}/_sim/reset`, {});
    for (const [platform, limits] of Object.entries(opts.limits ?? {})) await axios.put(`${sims().url}/_sim/${platform}/limits`, limits);
  });
  return {
    get url() {
      return sims().url;
    },
    get rtmpUrl() {
      return sims().rtmpUrl;
    },
    simulator: <T extends PlatformSimulator>(platform: Platform) => sims().simulators.get(platform) as T,
  };
}

export interface AdapterHarness extends TestAdapterContext {
  adapter: TargetAdapter;
}

/** The adapter `create` makes on a fresh in-memory context (buildAdapterContext's options). */
export function adapterHarness(create: (ctx: AdapterContext) => TargetAdapter, opts: Parameters<typeof buildAdapterContext>[0]): AdapterHarness {
  const t = buildAdapterContext(opts);
  return { ...t, adapter: create(t.ctx) };
}
