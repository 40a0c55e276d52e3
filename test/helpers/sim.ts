/** The platform simulators for e2e tests (real HTTP on loopback). */
import { startSimulators } from '../../src/simulators/sim.server.js';

export interface SimEffectView {
  seq: number;
  type: string;
  externalId: string;
  title?: string;
  productId?: string;
  url?: string;
  at: string;
}

/** GET /_sim/{platform}/streams: one entry per stream key the platform handed out (the sink's own view type). */
export type { SimStreamView } from '../../src/simulators/rtmp-sink.js';
import type { SimStreamView } from '../../src/simulators/rtmp-sink.js';

export interface TestSim {
  url: string;
  /** The RTMP sinks (any free port): every ingest address the simulators hand out starts with it. */
  rtmpUrl: string;
  base(platform: string): string;
  effects(platform: string): Promise<SimEffectView[]>;
  streams(platform: string): Promise<SimStreamView[]>;
  control(method: string, path: string, body?: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export async function startSim(): Promise<TestSim> {
  const sim = await startSimulators({ port: 0 });
  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await fetch(`${sim.url}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    const text = await r.text();
    return text ? JSON.parse(text) : null;
  };
  return {
    url: sim.url,
    rtmpUrl: sim.rtmpUrl,
    base: (p) => `${sim.url}/${p}`,
    effects: async (p) => (await control('GET', `/_sim/${p}/effects`)) as SimEffectView[],
    streams: async (p) => (await control('GET', `/_sim/${p}/streams`)) as SimStreamView[],
    control,
    close: () => sim.close(),
  };
}
