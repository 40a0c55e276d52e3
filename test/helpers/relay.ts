/** Video relay tests: a show mirrored to all five simulators, each mirror with an ingest, and a real encoder. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/config.js';
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from './service.js';
import { waitForOwnTime } from './loop-stalls.js';
import { testFfmpeg, testPatternArgs } from './ffmpeg.js';
import { ALL_PLATFORMS } from './platforms.js';
import type { TestSim } from './sim.js';

/** The relay timings of a process that sets none of them (the relay processes the tests spawn): the defaults. */
export const RELAY_DEFAULTS = loadConfig({ ADMIN_API_KEY: 'sk_admin_test_0123456789abcdef', SECRETS_KEY: randomBytes(32).toString('base64') }, '/nonexistent');

/**
 * How long a relay may take to get `destinations` first starts sending by its own allowances:
 * RELAY_START_CONCURRENCY at a time, each allowed RELAY_START_TIMEOUT_MS before it counts as failed (a
 * loaded machine slows starts down on purpose: src/relay/start-gate.ts). A set-up wait, not a claim.
 */
export function firstStartsMs(destinations = ALL_PLATFORMS.length, timings: { relayStartConcurrency: number; relayStartTimeoutMs: number } = RELAY_DEFAULTS): number {
  return Math.ceil(destinations / timings.relayStartConcurrency) * timings.relayStartTimeoutMs;
}

export interface RelayView {
  state: string;
  bitrateKbps: number;
  bytesSent: number;
  since: string | null;
  restarts: number;
  lastError: string | null;
}
export interface MirrorViewT {
  targetId: string;
  platform: string;
  state: string;
  externalId: string | null;
  ingest?: { url: string; streamKey?: string };
  relay: RelayView;
  lastError: string | null;
}
export interface ShowViewT {
  show: { id: string; state: string; ingest: { url: string; streamKey?: string } };
  mirrors: MirrorViewT[];
}

export async function viewOf(svc: TestService, partnerId: string, showId: string, key?: string): Promise<ShowViewT> {
  const r = await svc.api(`/v1/partners/${partnerId}/shows/${showId}`, key ? { key } : {});
  if (r.status !== 200) throw new Error(`show view ${r.status}: ${await r.text()}`);
  return (await r.json()) as ShowViewT;
}

export const OPERATOR_LINKED = ['tiktok', 'whatnot', 'bambuser'] as const;

/**
 * Schedules `showId` and gives every mirror an ingest: YouTube and Facebook from their APIs; TikTok,
 * Whatnot and Bambuser by an operator who made the show by hand and links it with the RTMP address
 * the platform's app shows. The syncs that get there run in this process (service and simulators), so
 * each wait is 30 s of this process's own time, its event-loop stalls not counted: a loaded CI took
 * longer than 30 s of wall clock for it (relay.dead-status, now in relay.own-processes, relay.disabled-target, relay.lifecycle).
 */
export async function scheduleRelayedShow(svc: TestService, sim: TestSim, partnerId: string, secret: string, showId: string, extra: Record<string, unknown> = {}, platforms: readonly string[] = ALL_PLATFORMS): Promise<void> {
  const r = await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', sampleShow(showId, { state: 'scheduled', ...extra }), new Date().toISOString()));
  if (r.status !== 202) throw new Error(`show.scheduled: ${r.status}`);
  for (const p of OPERATOR_LINKED.filter((x) => platforms.includes(x))) {
    await waitForOwnTime(async () => {
      const m = await svc.rt.shows.getMirror(partnerId, showId, p);
      return m && (m.state === 'action_required' || m.state === 'ready');
    }, 30_000);
    const made = (await sim.control('POST', `/_sim/${p}/shows`, { title: `${showId} on ${p}` })) as { externalId: string; ingest: { url: string; streamKey: string } };
    const link = await svc.api(`/v1/partners/${partnerId}/shows/${showId}/mirrors/${p}`, { method: 'PUT', json: { externalId: made.externalId, ingest: made.ingest } });
    if (link.status !== 200) throw new Error(`link ${p}: ${link.status} ${await link.text()}`);
  }
  await waitForOwnTime(async () => {
    const v = await viewOf(svc, partnerId, showId);
    return v.mirrors.length === platforms.length && v.mirrors.every((m) => m.state === 'ready' && m.ingest?.streamKey);
  }, 30_000);
}

export interface Encoder {
  /** Bytes ffmpeg has written to the ingest so far (its `-progress` total_size). */
  bytes(): number;
  exited: Promise<number | null>;
  stderr(): string;
  stop(): Promise<number | null>;
  pid: number | undefined;
}

/** The shared test pattern (H.264 + AAC, ~1.5 Mbps, real time), with ffmpeg's own byte count. */
export function encode(target: string, seconds?: number): Encoder {
  const args = testPatternArgs({ target, ...(seconds !== undefined ? { seconds } : {}) });
  args.splice(args.length - 3, 0, '-progress', 'pipe:1');
  const child = spawn(testFfmpeg(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let err = '';
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('total_size=')) bytes = Number(l.slice(11)) || bytes;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    bytes: () => bytes,
    exited,
    stderr: () => err,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function goLive(svc: TestService, partnerId: string, secret: string, showId: string, state: 'live' | 'ended' | 'cancelled' = 'live', extra: Record<string, unknown> = {}): Promise<void> {
  const r = await sendEvent(svc, partnerId, secret, showEvent(`show.${state}`, sampleShow(showId, { state, ...extra }), new Date().toISOString()));
  if (r.status !== 202) throw new Error(`show.${state}: ${r.status}`);
}

/** A show scheduled for `partnerId` (whose webhook secret is `secret`): its stream key and the embedded edge's port, once the view has them. */
export async function scheduledIngest(svc: TestService, partnerId: string, secret: string, showId: string): Promise<{ key: string; port: number }> {
  expect((await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', sampleShow(showId, { state: 'scheduled' }), new Date().toISOString()))).status).toBe(202);
  const key = await waitFor(async () => (await viewOf(svc, partnerId, showId)).show.ingest.streamKey ?? undefined, 20_000);
  return { key, port: Number(new URL((await viewOf(svc, partnerId, showId)).show.ingest.url).port) };
}
