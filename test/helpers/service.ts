/**
 * Boots the real service for a test the way `npm start` and the production roles do — through
 * `startRoles` (src/main/process.ts), so the same roles, Redis client roles and wiring are under test:
 * its own redis-server (ephemeral port, temp dir), a fresh key prefix, the app (dashboard included) on
 * an ephemeral loopback port (real HTTP). `workers`/`scheduler` add those roles to the same process,
 * as `npm start` runs them; without them the process is the `api` role (`npm run start:api`) plus
 * the sync dispatcher (`dispatch`, part of every `worker`), so accepted show events become sync jobs
 * as they do in production (`dispatch: false` leaves them in the dispatch stream).
 * `startWorkers()` later starts a separate `worker` role (`npm run start:worker`) against the same
 * Redis, and `stopWorkers()` stops whichever workers run. Nothing is mocked.
 */
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../../src/config/config.js';
import type { Role, Started } from '../../src/main/process.js';
import type { Runtime } from '../../src/main/runtime.js';
import type { SchedulerHandle } from '../../src/main/scheduler.js';
import { signatureHeader } from '../../src/sources/signature.js';
import type { TestRedis } from './redis-server.js';
import { startTestRedis } from './redis-cluster.js';

export const ADMIN_KEY = 'sk_admin_test_0123456789abcdef';

export interface TestService {
  redis: TestRedis;
  rt: Runtime;
  app: FastifyInstance;
  url: string;
  config: Config;
  /** The roles this process runs (as `npm start` would with the same options). */
  roles: Role[];
  workers: Worker[];
  scheduler: SchedulerHandle | undefined;
  /** The roles as started (edge and relay service, when asked for). */
  started: Started;
  /** Starts a separate `worker` role (unless workers already run). */
  /** `overrides`: settings of the started worker role that differ from the service's (the rest is the same config). */
  startWorkers(overrides?: Partial<Config>): Promise<void>;
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
  /** fetch against the service with the admin key (unless headers override). */
  api(path: string, init?: RequestInit & { json?: unknown; key?: string | null }): Promise<Response>;
}

export interface TestServiceOptions {
  workers?: boolean;
  /** Adds the `relay` role (ingest edge + ffmpeg supervision), as `npm start` runs it. */
  relay?: boolean;
  /** Adds the ingest edge alone (relay processes run elsewhere, e.g. child processes). */
  edge?: boolean;
  scheduler?: boolean;
  /** The sync dispatcher in this process (default true; part of `workers` anyway). */
  dispatch?: boolean;
  redis?: TestRedis;
  env?: Record<string, string>;
}

export async function startService(opts: TestServiceOptions = {}): Promise<TestService> {
  // Loaded by the first start, not by the import: a test file that imports this helper only for `waitFor`,
  // `ADMIN_KEY` or the event builders (npm-start, relay supervisor, rigs) skips `src/main/process.ts`'s
  // graph (docs/testing.md "CI time").
  const [{ loadConfig }, { startRoles }] = await Promise.all([import('../../src/config/config.js'), import('../../src/main/process.js')]);
  const redis = opts.redis ?? (await startTestRedis());
  const dataDir = mkdtempSync(join(tmpdir(), 'syndicast-data-'));
  const config = loadConfig(
    {
      ...redis.env,
      PORT: '0',
      HOST: '127.0.0.1',
      ADMIN_API_KEY: ADMIN_KEY,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'silent',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      DATA_DIR: dataDir,
      KEY_PREFIX: 't' + randomBytes(3).toString('hex'),
      PLATFORM_TIMEOUT_MS: '2000',
      // the in-process simulators act on what they received within one timeout at test scale (not 30 s)
      PLATFORM_SETTLE_MS: opts.env?.['PLATFORM_TIMEOUT_MS'] ?? '2000',
      SWEEP_INTERVAL_MS: '1000',
      RELAY_RTMP_PORT: '0',
      ...opts.env,
    },
    '/nonexistent',
  );
  const roles: Role[] = [
    'api',
    ...(opts.workers ? (['worker'] as const) : []),
    ...(!opts.workers && opts.dispatch !== false ? (['dispatch'] as const) : []),
    ...(opts.scheduler ? (['scheduler'] as const) : []),
    ...(opts.relay ? (['relay'] as const) : []),
    ...(opts.edge ? (['edge'] as const) : []),
  ];
  const main = await startRoles(roles, config, { logger: false });
  const rt = main.runtime;
  const app = main.app!;
  const url = main.url!.replace('localhost', '127.0.0.1');
  // Tracked links must point at this instance (its port is known only now).
  (config as { publicBaseUrl: string }).publicBaseUrl = url;
  (rt.links as unknown as { publicBaseUrl: string }).publicBaseUrl = url;

  /** A separate `worker` role started by startWorkers(). */
  let extraWorkers: Started | undefined;
  let mainWorkersRunning = main.workers.length > 0;

  const svc: TestService = {
    redis,
    rt,
    app,
    url,
    config,
    roles,
    get workers(): Worker[] {
      return [...(mainWorkersRunning ? main.workers : []), ...(extraWorkers?.workers ?? [])];
    },
    scheduler: main.scheduler,
    started: main,
    async startWorkers(overrides = {}) {
      if (svc.workers.length || extraWorkers) return;
      extraWorkers = await startRoles(['worker'], { ...config, ...overrides }, { logger: false });
    },
    async stopWorkers() {
      if (mainWorkersRunning) {
        await Promise.all(main.workers.map((w) => w.close()));
        mainWorkersRunning = false;
      }
      const w = extraWorkers;
      extraWorkers = undefined;
      await w?.stop();
    },
    async close() {
      await svc.stopWorkers();
      await main.stop();
      if (!opts.redis) await redis.destroy();
    },
    async api(path, init = {}) {
      const { json, key, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key !== null) headers.set('authorization', `Bearer ${key ?? ADMIN_KEY}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(url + path, { ...rest, headers, ...(json !== undefined ? { body: JSON.stringify(json), method: rest.method ?? 'POST' } : {}) });
    },
  };
  return svc;
}

let seq = 0;
/** Sends a signed partner event; returns the response. */
export async function sendEvent(
  svc: { url: string },
  partnerId: string,
  secret: string,
  event: unknown,
  opts: { webhookId?: string; timestamp?: number; body?: string } = {},
): Promise<Response> {
  const body = opts.body ?? JSON.stringify(event);
  const id = opts.webhookId ?? `msg_${Date.now()}_${++seq}`;
  const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
  return fetch(`${svc.url}/v1/partners/${partnerId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) },
    body,
  });
}

/**
 * A setup request, sent again (up to 5 times, 250 ms apart) while the service answers 503, as a client
 * does: a create's write that Redis runs after its deadline (a machine starved by other work) is a 503
 * that stored nothing and asks for a retry. Tests of the 503 itself call `svc.api` directly.
 */
export async function retryingUnavailable(send: () => Promise<Response>): Promise<Response> {
  for (let attempt = 1; ; attempt += 1) {
    const r = await send();
    if (r.status !== 503 || attempt === 5) return r;
    await r.arrayBuffer();
    await new Promise((done) => setTimeout(done, 250));
  }
}

/** Creates a partner (a 503 sent again: retryingUnavailable); returns its webhook secret. */
export async function createPartner(svc: TestService, id: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await retryingUnavailable(() => svc.api('/v1/partners', { json: { id, name: `Partner ${id}`, ...extra } }));
  if (r.status !== 201) throw new Error(`create partner: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { webhookSecret: string }).webhookSecret;
}

/**
 * Polls `fn` until it returns something truthy. A thrown error counts as "not yet" (a server still
 * starting, a connection refused) — except a failed `expect`: an assertion inside the poll (a 500 where
 * a 200 was expected, say) fails the test at once instead of being retried until it happens to pass.
 */
/**
 * The service for one test file: started (`opts`; within `timeoutMs`, jest's default unless told)
 * before the file's tests and handed to `use`, closed after them.
 */
export function serviceForFile(use: (svc: TestService) => unknown, opts: TestServiceOptions = {}, timeoutMs?: number): void {
  let svc: TestService | undefined;
  beforeAll(async () => {
    svc = await startService(opts);
    await use(svc);
  }, timeoutMs);
  afterAll(async () => {
    await svc?.close();
  });
}

/** serviceForFile, and `partner` created: the service and the partner's webhook secret handed to `use`. */
export function servicePerFile(partner: string, use: (started: { svc: TestService; secret: string }) => void, opts: TestServiceOptions = {}): void {
  serviceForFile(async (svc) => use({ svc, secret: await createPartner(svc, partner) }), opts);
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return pollUntil(fn, () => (Date.now() > deadline ? 'waitFor timed out' : undefined), stepMs);
}

/**
 * Calls `fn` every `stepMs` until it returns a truthy value (resolved with it). "Not yet" errors are
 * retried, a failed `expect` ends the poll at once; `expired()` returns the message to throw (the last
 * error appended) once the wait is over, undefined while it is not.
 */
export async function pollUntil<T>(fn: () => Promise<T | undefined | null | false>, expired: () => string | undefined, stepMs = 50): Promise<T> {
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (isAssertionError(err)) throw err;
      last = err;
    }
    const over = expired();
    if (over) throw new Error(`${over}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

function isAssertionError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'matcherResult' in err;
}

export function showEvent(type: string, show: Record<string, unknown>, occurredAt: string): unknown {
  return { type, occurredAt, data: { show } };
}

/** An `order.created` of order `id` without lines (2026-11-24T18:30:00Z, `amount` USD minor units). */
export function orderEvent(id: string, amount = 1000): { type: 'order.created'; occurredAt: string; data: { order: Record<string, unknown> } } {
  return { type: 'order.created', occurredAt: '2026-11-24T18:30:00Z', data: { order: { id, createdAt: '2026-11-24T18:30:00Z', lines: [], total: { amount, currency: 'USD' } } } };
}

/**
 * A show snapshot. Its `scheduledAt` is fixed (2026-11-24, in the past): right where only the show's
 * data matters, wrong where the service compares it with now (the ops board's day around now, its live
 * lookback, Facebook's 7-day window, the readiness sweep): pass `scheduledAt: isoFromNow(…)`
 * (test/helpers/clock.ts) there, or the test passes only until the calendar moves on.
 */
export function sampleShow(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    title: `Show ${id}`,
    scheduledAt: '2026-11-24T18:00:00Z',
    state: 'scheduled',
    products: [
      { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1' },
      { id: 'p2', title: 'Blush', price: { amount: 2500, currency: 'USD' }, url: 'https://shop.example.com/p2' },
    ],
    pinnedProductIds: [],
    ...overrides,
  };
}
