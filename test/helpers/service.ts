/**
 * Boots the real service for a test: its own redis-server (ephemeral port, temp dir), a runtime with
 * a fresh key prefix, the Fastify app listening on an ephemeral loopback port (real HTTP), and
 * optionally the sync workers and the scheduler. Nothing is mocked.
 */
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config/config.js';
import { buildApp } from '../../src/api/app.js';
import { createLogger } from '../../src/lib/logger.js';
import { startSyncWorkers } from '../../src/mirror/sync.worker.js';
import { startDeliveryWorker } from '../../src/outbound/delivery.worker.js';
import { startAttributionWorker } from '../../src/attribution/attribution.worker.js';
import { startReconcileWorker } from '../../src/reconcile/reconcile.worker.js';
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createRuntime, type Runtime } from '../../src/main/runtime.js';
import { startScheduler, type SchedulerHandle } from '../../src/main/scheduler.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { startRedis, type TestRedis } from './redis-server.js';

export const ADMIN_KEY = 'sk_admin_test_0123456789abcdef';

export interface TestService {
  redis: TestRedis;
  rt: Runtime;
  app: FastifyInstance;
  url: string;
  config: Config;
  workers: Worker[];
  scheduler: SchedulerHandle | undefined;
  startWorkers(): void;
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
  /** fetch against the service with the admin key (unless headers override). */
  api(path: string, init?: RequestInit & { json?: unknown; key?: string | null }): Promise<Response>;
}

export interface TestServiceOptions {
  workers?: boolean;
  scheduler?: boolean;
  redis?: TestRedis;
  env?: Record<string, string>;
}

export async function startService(opts: TestServiceOptions = {}): Promise<TestService> {
  const redis = opts.redis ?? (await startRedis());
  const dataDir = mkdtempSync(join(tmpdir(), 'syndicast-data-'));
  const config = loadConfig(
    {
      REDIS_URL: redis.url,
      PORT: '0',
      ADMIN_API_KEY: ADMIN_KEY,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'silent',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      DATA_DIR: dataDir,
      KEY_PREFIX: 't' + randomBytes(3).toString('hex'),
      PLATFORM_TIMEOUT_MS: '2000',
      SWEEP_INTERVAL_MS: '1000',
      ...opts.env,
    },
    '/nonexistent',
  );
  const log = createLogger(config.logLevel);
  const rt = await createRuntime(config, 'api', { log, redisInfo: { url: redis.url, source: 'env', stop: async () => undefined } });
  const app = await buildApp(rt, { logger: false, dashboard: false });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const url = address.replace('localhost', '127.0.0.1');
  // Tracked links must point at this instance.
  (config as { publicBaseUrl: string }).publicBaseUrl = url;
  (rt.links as unknown as { publicBaseUrl: string }).publicBaseUrl = url;

  const svc: TestService = {
    redis,
    rt,
    app,
    url,
    config,
    workers: [],
    scheduler: undefined,
    startWorkers() {
      if (svc.workers.length) return;
      svc.workers = startSyncWorkers(rt.syncService, { connection: rt.bullConnection('worker'), keys: rt.keys, shards: config.syncShards, concurrency: config.workerConcurrency, lockMs: config.workerLockMs, log });
      svc.workers.push(startAttributionWorker(rt.attribution, { connection: rt.bullConnection('worker'), keys: rt.keys, concurrency: config.workerConcurrency, lockMs: config.workerLockMs, log }));
      svc.workers.push(startDeliveryWorker(rt.delivery, { connection: rt.bullConnection('worker'), keys: rt.keys, concurrency: config.outboundConcurrency, lockDurationMs: config.workerLockMs, log }));
      svc.workers.push(startReconcileWorker(rt.reconcile, { connection: rt.bullConnection('worker'), keys: rt.keys, log }));
    },
    async stopWorkers() {
      await Promise.all(svc.workers.map((w) => w.close()));
      svc.workers = [];
    },
    async close() {
      await svc.stopWorkers();
      await svc.scheduler?.close();
      await app.close();
      await rt.close();
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
  if (opts.workers) svc.startWorkers();
  if (opts.scheduler) {
    const sweep = new SweepService(rt.shows, rt.partners, rt.syncProducer, log);
    svc.scheduler = await startScheduler({ connection: () => rt.bullConnection('worker'), keys: rt.keys, sweep, sweepIntervalMs: config.sweepIntervalMs, log });
  }
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

/** Creates a partner; returns its webhook secret. */
export async function createPartner(svc: TestService, id: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await svc.api('/v1/partners', { json: { id, name: `Partner ${id}`, ...extra } });
  if (r.status !== 201) throw new Error(`create partner: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { webhookSecret: string }).webhookSecret;
}

/**
 * Polls `fn` until it returns something truthy. A thrown error counts as "not yet" (a server still
 * starting, a connection refused) — except a failed `expect`: an assertion inside the poll (a 500 where
 * a 200 was expected, say) fails the test at once instead of being retried until it happens to pass.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (isAssertionError(err)) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`waitFor timed out${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Errors thrown by jest's `expect` carry the matcher's result. */
function isAssertionError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'matcherResult' in err;
}

export function showEvent(type: string, show: Record<string, unknown>, occurredAt: string): unknown {
  return { type, occurredAt, data: { show } };
}

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
