/**
 * The platform simulators inside the bench process. In-process on purpose: an effect is
 * timestamped with performance.now() the moment the simulator records it, on the same clock as the
 * 202 the bench received, so propagation times need no polling and no cross-process clocks.
 */
import { performance } from 'node:perf_hooks';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';
import type { PlatformSimulator, SimEffect } from '../../src/simulators/sim.platform.js';

/** The seeded YouTube channel a's OAuth client (the simulator accepts no other credentials). */
const { clientId, clientSecret, refreshToken } = SIM_ACCOUNTS.youtube[0]!;
const oauthClient = { client_id: clientId, client_secret: clientSecret, refresh_token: refreshToken };

export type EffectListener = (effect: SimEffect, atMs: number) => void;

export interface BenchSim {
  url: string;
  /** Base URL of the YouTube simulator (a target's baseUrl). */
  youtubeBase: string;
  youtube: PlatformSimulator;
  /** Control plane (/_sim/...) over HTTP, as the contract defines it. */
  control<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  onEffect(fn: EffectListener): () => void;
  countEffects(type: SimEffect['type']): number;
  /** An access token from the simulator's OAuth endpoint (for the bare baseline and lookups). */
  token(): Promise<string>;
  /** liveChatId of each broadcast, read through the Data API (`liveBroadcasts.list id=…`). */
  liveChatIds(externalIds: readonly string[]): Promise<Map<string, string>>;
  close(): Promise<void>;
}

export async function startBenchSim(): Promise<BenchSim> {
  const started: StartedSimulators = await startSimulators({ port: 0 });
  const youtube = started.simulators.get('youtube');
  if (!youtube) throw new Error('no YouTube simulator');
  const listeners = new Set<EffectListener>();
  const counts = new Map<string, number>();
  const sim = youtube.sim;
  const record = sim.recordEffect.bind(sim);
  sim.recordEffect = (input) => {
    const effect = record(input);
    const at = performance.now();
    counts.set(effect.type, (counts.get(effect.type) ?? 0) + 1);
    for (const l of listeners) l(effect, at);
    return effect;
  };
  // The effect log is the simulator's own; a long benchmark keeps only what it still needs.
  const trim = setInterval(() => {
    if (sim.effects.length > 50_000) sim.effects.splice(0, sim.effects.length - 10_000);
  }, 1000);
  trim.unref();

  const youtubeBase = `${started.url}/youtube`;
  const control = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(started.url + path, { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  };
  const token = async (): Promise<string> => {
    const r = await fetch(`${youtubeBase}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', ...oauthClient }),
    });
    if (!r.ok) throw new Error(`token: ${r.status}`);
    return ((await r.json()) as { access_token: string }).access_token;
  };
  return {
    url: started.url,
    youtubeBase,
    youtube,
    control,
    onEffect(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    countEffects: (type) => counts.get(type) ?? 0,
    token,
    async liveChatIds(ids) {
      const tok = await token();
      const out = new Map<string, string>();
      for (let i = 0; i < ids.length; i += 50) {
        const q = new URLSearchParams({ part: 'snippet', id: ids.slice(i, i + 50).join(','), maxResults: '50' });
        const r = await fetch(`${youtubeBase}/youtube/v3/liveBroadcasts?${q}`, { headers: { authorization: `Bearer ${tok}` } });
        if (!r.ok) throw new Error(`liveBroadcasts.list: ${r.status} ${await r.text()}`);
        const body = (await r.json()) as { items: { id: string; snippet: { liveChatId?: string } }[] };
        for (const b of body.items) if (b.snippet.liveChatId) out.set(b.id, b.snippet.liveChatId);
      }
      return out;
    },
    async close() {
      clearInterval(trim);
      await started.close();
    },
  };
}

/** Lift the simulator's quota and request window; set latency and how fast streams go active. */
export async function liftLimits(sim: BenchSim, latencyMs: number): Promise<void> {
  await sim.control('PUT', '/_sim/youtube/limits', { quotaPerDay: null, requestsPerWindow: null, latencyMs, simulatedEncoder: 1, streamActivationMs: 0, transitionMs: 0 });
}
