/**
 * Talking to Syndicast the way a partner and an operator do: environment for its processes, the
 * admin API over HTTP, and Standard Webhooks-signed partner events.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/lib/logger.js';
import { createRuntime, type Runtime } from '../../src/main/runtime.js';
import { allSyncQueueNames } from '../../src/queues/queues.js';
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { BENCH_DATA_ROOT } from './redis-server.js';

export const ADMIN_KEY = 'sk_admin_bench_0123456789abcdef';

export interface ServiceEnv {
  env: Record<string, string>;
  keyPrefix: string;
}

/** Environment of every Syndicast process of one benchmark (they share secrets and key prefix). */
export function serviceEnv(redisUrl: string, extra: Record<string, string> = {}): ServiceEnv {
  const keyPrefix = 'b' + randomBytes(3).toString('hex');
  return {
    keyPrefix,
    env: {
      REDIS_URL: redisUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      ADMIN_API_KEY: ADMIN_KEY,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      // warn: a production-like level without one line per request/job (the bare baselines log nothing)
      LOG_LEVEL: 'warn',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      DATA_DIR: join(BENCH_DATA_ROOT, 'data'),
      KEY_PREFIX: keyPrefix,
      PUBLIC_BASE_URL: 'https://go.syndicast.example',
      ...extra,
    },
  };
}

/** A runtime inside the bench process (same config as the service): link creation, queue control. */
export async function benchRuntime(se: ServiceEnv): Promise<Runtime> {
  const config = loadConfig({ ...se.env, LOG_LEVEL: 'silent' });
  return createRuntime(config, 'worker', { log: createLogger('silent') });
}

/** Every BullMQ sync queue of one platform (all shards). */
export function youtubeQueues(rt: Runtime) {
  return allSyncQueueNames(rt.config.syncShards)
    .filter((q) => q.platform === 'youtube')
    .map((q) => rt.syncProducer.queue(q.platform, q.shard));
}

export class AdminClient {
  constructor(
    readonly url: string,
    private readonly key = ADMIN_KEY,
  ) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  /** Creates a partner; returns its webhook secret. */
  async createPartner(id: string): Promise<string> {
    return (await this.call<{ webhookSecret: string }>('POST', '/v1/partners', { id, name: `Bench ${id}` })).webhookSecret;
  }

  /**
   * A YouTube target on the simulator's seeded account. `verify: false` for a target whose platform is
   * not running (the ingest benches point at a closed port: nothing syncs there), so saving it skips
   * the credential check with the platform.
   */
  async createYoutubeTarget(partnerId: string, id: string, baseUrl: string, opts: { verify?: boolean } = {}): Promise<void> {
    await this.call('POST', `/v1/partners/${partnerId}/targets${opts.verify === false ? '?verify=false' : ''}`, {
      id,
      platform: 'youtube',
      name: 'YouTube (simulator)',
      credentials: simTargetCredentials('youtube'),
      baseUrl,
      commissionRateBps: 1000,
    });
  }
}

export interface SignedRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A partner event signed per Standard Webhooks with the current time. */
export function signedEvent(secret: string, partnerId: string, webhookId: string, event: unknown, ts = Math.floor(Date.now() / 1000)): SignedRequest {
  const body = JSON.stringify(event);
  return {
    method: 'POST',
    path: `/v1/partners/${partnerId}/events`,
    headers: { 'content-type': 'application/json', 'webhook-id': webhookId, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, webhookId, ts, body) },
    body,
  };
}

/** POST a signed request; returns the HTTP status. */
export async function send(baseUrl: string, req: SignedRequest): Promise<number> {
  const r = await fetch(baseUrl + req.path, { method: req.method, headers: req.headers, body: req.body });
  await r.arrayBuffer();
  return r.status;
}

export function benchProducts(n: number): { id: string; title: string; price: { amount: number; currency: string }; url: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `p${i + 1}`,
    title: `Bench product ${i + 1}`,
    price: { amount: 1000 + i * 100, currency: 'USD' },
    url: `https://shop.example.com/products/p${i + 1}`,
  }));
}

export function showSnapshot(id: string, state: 'scheduled' | 'live', products: number): Record<string, unknown> {
  return { id, title: `Bench show ${id}`, scheduledAt: '2026-11-24T18:00:00Z', state, products: benchProducts(products), pinnedProductIds: [] };
}

/** Run `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await fn(items[i] as T, i);
    }
  });
  await Promise.all(lanes);
}
