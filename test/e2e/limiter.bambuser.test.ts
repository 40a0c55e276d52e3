/**
 * Bambuser allows 5 requests per 10 s moving window per API key. Two separate worker processes
 * (`npx tsx workers/mirror.ts`, the production entrypoint) mirror 7 shows (1 of them with a pin) onto
 * ONE Bambuser account of the simulator at the real limit; the simulator's request log must show that
 * no 10 s window ever held more than 5 requests of that key, and no 429. That only holds if the
 * workers share one limiter (Redis, PLATFORM_LIMITS.bambuser) — each process on its own would send 5.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import { limiterId } from '../../src/targets/target.registry.js';
import { Keys } from '../../src/store/keys.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const API_KEY = CREDENTIALS.bambuser.apiKey!;
const SHOWS = 7;
const PINNED = 1;
const WINDOW_MS = 10_000;
const LIMIT = 5;

let svc: TestService;
let sim: StartedSimulators;
let secret: string;
const workers: { child: ChildProcess; output: string[] }[] = [];

function startWorker(): { child: ChildProcess; output: string[] } {
  const output: string[] = [];
  const child = spawn('npx', ['tsx', 'workers/mirror.ts'], {
    cwd: process.cwd(),
    detached: true, // its own process group: npx → tsx → node all stop together
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      REDIS_URL: svc.redis.url,
      KEY_PREFIX: svc.config.keyPrefix,
      SECRETS_KEY: svc.config.secretsKey ?? '',
      ADMIN_API_KEY: ADMIN_KEY,
      SYNC_SHARDS: String(svc.config.syncShards),
      PLATFORM_TIMEOUT_MS: String(svc.config.platformTimeoutMs),
      // One job at a time per process: a process with free slots would otherwise take every job at
      // once, and whether the other process gets any would be down to timing.
      WORKER_CONCURRENCY: '1',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      LOG_LEVEL: 'info', // the start line tells us the process is consuming
      DATA_DIR: mkdtempSync(join(tmpdir(), 'syndicast-worker-')),
      PORT: '0',
    },
  });
  child.stdout?.on('data', (b: Buffer) => output.push(b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => output.push(b.toString('utf8')));
  return { child, output };
}

async function stopWorker(w: { child: ChildProcess }): Promise<void> {
  const { child } = w;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(-child.pid, 'SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(10_000, undefined, { ref: false }).then(() => false)]);
  if (!done) process.kill(-child.pid, 'SIGKILL');
}

interface ShowDoc {
  mirrors: { targetId: string; state: string; externalId: string | null; pins: { productId: string; state: string }[]; lastError: string | null }[];
}

async function mirrorOf(showId: string): Promise<ShowDoc['mirrors'][number] | undefined> {
  const r = await svc.api(`/v1/partners/tsl/shows/${showId}`);
  if (r.status !== 200) return undefined;
  return ((await r.json()) as ShowDoc).mirrors[0];
}

beforeAll(async () => {
  sim = await startSimulators({ port: 0 });
  // Each Bambuser call takes 300 ms: a process is still busy with one job when the next event's job
  // arrives, so the other process takes it (with one job per process, below) — sharing by construction.
  const lim = await fetch(`${sim.url}/_sim/bambuser/limits`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latencyMs: 300 }) });
  expect(lim.status).toBe(200);
  svc = await startService({ workers: false }); // the API only: the two processes below do the work
  secret = await createPartner(svc, 'tsl');
  const r = await svc.api('/v1/partners/tsl/targets', {
    json: { id: 'bmb1', platform: 'bambuser', name: 'Bambuser', credentials: { apiKey: API_KEY }, baseUrl: `${sim.url}/bambuser`, commissionRateBps: 1000 },
  });
  expect(r.status).toBe(201);
  workers.push(startWorker(), startWorker());
  // Both processes consume before any job exists, so that the work really is shared between them.
  for (const w of workers) {
    await waitFor(async () => {
      if (w.child.exitCode !== null) throw new Error(`worker exited: ${w.output.join('')}`);
      return w.output.join('').includes('syndicast started');
    }, 40_000, 100);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map(stopWorker));
  await svc?.close();
  await sim?.close();
}, 30_000);

test('two worker processes never exceed 5 requests per 10 s on one Bambuser key', async () => {
  // Watch the shared window in Redis: each slot is named after the process that took it.
  const redis = new Redis(svc.redis.url);
  const windowKey = new Keys(svc.config.keyPrefix).targetLimit(limiterId('bambuser', { apiKey: API_KEY }, 'bmb1'), 'window');
  const pids = new Set<string>();
  // Saving the target checked its key with one Bambuser call from the API (this process), through the
  // same window: only slots taken from now on (member `tag:pid:takenAt:seq:i`, tag random per process) are the workers'.
  const from = Date.now();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const member of await redis.zrange(windowKey, 0, -1)) {
        const [, pid = '', at = '0'] = member.split(':');
        if (Number(at) >= from) pids.add(pid);
      }
      await sleep(100);
    }
  })();

  try {
    for (let i = 1; i <= SHOWS; i++) {
      const show = sampleShow(`s${i}`, { title: `Limiter show ${i}` });
      expect((await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
      if (i <= PINNED) {
        await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, '2026-11-24T18:00:00Z'));
      }
    }

    // 7 creates + 1 pin (list products, attach product, highlight) = 10 requests: two full windows.
    for (let i = 1; i <= SHOWS; i++) {
      const wantPin = i <= PINNED;
      await waitFor(async () => {
        const m = await mirrorOf(`s${i}`);
        if (!m) return undefined;
        if (m.state === 'failed') throw new Error(`mirror s${i} failed: ${m.lastError}`);
        return wantPin ? m.state === 'live' && m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned') : m.state === 'ready';
      }, 55_000, 200);
    }
  } finally {
    watching = false;
    await watcher;
    await redis.quit();
  }

  const log = (await (await fetch(`${sim.url}/_sim/bambuser/requests`)).json()) as SimRequestRecord[];
  const ours = log.filter((r) => r.headers.authorization === `Token ${API_KEY}`);
  // Every write exactly once; a pin whose job had to wait may look at the show's products again.
  const writes = ours.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path.replace(/\/shows\/[^/]+/, '/shows/:id')}`);
  expect(writes.sort()).toEqual([
    ...Array<string>(SHOWS).fill('POST /v1/shows'),
    ...Array<string>(PINNED).fill('POST /v1/shows/:id/highlights'),
    ...Array<string>(PINNED).fill('POST /v1/shows/:id/products'),
  ]);
  expect(ours.length).toBeGreaterThanOrEqual(SHOWS + PINNED * 3);
  expect(ours.filter((r) => r.status === 429)).toEqual([]);
  expect(ours.every((r) => r.status >= 200 && r.status < 300)).toBe(true);

  // Bambuser's moving window: a request counts against every request in the 10 s before it.
  const times = ours.map((r) => Date.parse(r.at)).sort((a, b) => a - b);
  let busiest = 0;
  for (const [i, t] of times.entries()) {
    const inWindow = times.slice(0, i + 1).filter((s) => s > t - WINDOW_MS).length;
    busiest = Math.max(busiest, inWindow);
  }
  expect(busiest).toBeLessThanOrEqual(LIMIT);
  expect(busiest).toBe(LIMIT); // the budget was used, not just avoided

  const fx = (await (await fetch(`${sim.url}/_sim/bambuser/effects`)).json()) as { type: string }[];
  expect(fx.filter((e) => e.type === 'show.created')).toHaveLength(SHOWS);
  expect(fx.filter((e) => e.type === 'product.pinned')).toHaveLength(PINNED);

  // Both processes took slots from the one shared window.
  pids.delete('');
  expect(pids.size).toBe(2);
  expect(pids.has(String(process.pid))).toBe(false);
}, 90_000);
