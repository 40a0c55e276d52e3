/**
 * A Redis that may evict keys (`maxmemory` set with a policy other than noeviction: allkeys-lru, as a
 * cache is set up) silently drops webhook-id claims, intents and ledger entries under memory pressure.
 * The start read it and logged one warning, and /health/ready answered a plain `{status: "ok"}` from
 * then on: the only trace was a log line at start. Ready all the same (a throw-away development Redis
 * is fine to use), but now every ready answer carries the problem in `warnings` (docs/operations.md,
 * "Redis"), without the Redis node's address (the check needs no key). Real Redis, the service in-process.
 */
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startService, type TestService } from '../helpers/service.js';

let redis: TestRedis;
let svc: TestService;

beforeAll(async () => {
  redis = await startRedis();
  const admin = new Redis(redis.url);
  try {
    await admin.config('SET', 'maxmemory', '1gb');
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  } finally {
    admin.disconnect();
  }
  svc = await startService({ redis });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await redis?.destroy();
});

test('/health/ready of a service on a Redis that evicts keys is 200 with a warning that says so', async () => {
  const r = await svc.api('/health/ready', { key: null });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { status: string; redis: string; warnings?: string[] };
  expect(body).toMatchObject({ status: 'ok', redis: 'up' });
  // Without the node's address: the check takes no key and a load balancer's may be reachable from outside
  // (it said "127.0.0.1:<port>: Redis evicts keys …"); the start's log line names the node.
  expect(body.warnings).toEqual([expect.stringMatching(/^Redis evicts keys under memory pressure \(maxmemory-policy allkeys-lru\): .*set maxmemory-policy noeviction$/)]);
  expect(JSON.stringify(body)).not.toContain(String(redis.port));
});
