/**
 * `npm start` (src/main/all.ts, a real child process) against a Redis that cannot keep what the API
 * acknowledges: one started without persistence (`--appendonly no --save ""`, as a cache is) and one
 * that evicts keys (`maxmemory-policy allkeys-lru` with a maxmemory). The service answered 202 for
 * every event there without a word, though each was gone with Redis's next restart; now it says so at
 * startup, once per problem. Against a Redis set up as docs/operations.md asks (appendonly yes,
 * noeviction: the test helper's) it says nothing of the kind.
 */
import { Redis } from 'ioredis';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

let redis: TestRedis;
const children: WorkerProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  for (const c of children) await c.kill('SIGTERM');
  await redis?.stop();
});

/** Starts `npm start`'s entry against the test Redis; resolves with its output once /health/ready is 200. */
async function startAll(): Promise<WorkerProcess> {
  const { child } = await startAllProcess(redis.env);
  children.push(child);
  return child;
}

const warnings = (output: string): string[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40 && /^Redis (persists|evicts)/.test(l.msg))
    .map((l) => l.msg.split(':')[0]!);

test('a Redis set up as a database: no warning about it', async () => {
  const child = await startAll();
  await child.kill('SIGTERM');
  expect(warnings(child.output())).toEqual([]);
}, 90_000);

test('a Redis that persists nothing and evicts keys: each said at startup', async () => {
  const admin = new Redis(redis.url);
  try {
    await admin.config('SET', 'appendonly', 'no');
    await admin.config('SET', 'maxmemory', '1gb');
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const child = await startAll();
    await child.kill('SIGTERM');
    expect(warnings(child.output())).toEqual(['Redis persists nothing (appendonly no, no save points)', 'Redis evicts keys under memory pressure (maxmemory-policy allkeys-lru)']);
  } finally {
    await admin.config('SET', 'appendonly', 'yes');
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '0');
    admin.disconnect();
  }
}, 90_000);
