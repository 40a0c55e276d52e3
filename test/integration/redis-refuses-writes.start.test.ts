/**
 * A Redis that answers but refuses every write at start: REDIS_URL naming a read-only replica
 * (`READONLY`), a Redis at `maxmemory` with noeviction (`OOM`). Before, the start went on (PING
 * answered) and `npm start` died on the scheduler's first BullMQ script with an unhandled ReplyError:
 * a Node stack trace and the whole Lua script on stderr, no word about what to change. Now the runtime
 * stops the start at once with a RedisUnavailableError (printed as one paragraph, exit 1) that says
 * what the server is and what to do, before anything is written. Real redis-server: a replica of a
 * master that is not there is read-only all the same.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/lib/logger.js';
import { createRuntime } from '../../src/main/runtime.js';
import { RedisUnavailableError } from '../../src/store/embedded-redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { testPort } from '../helpers/ports.js';

let redis: TestRedis;
let admin: Redis;
let dataDir: string;

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
  dataDir = mkdtempSync(join(tmpdir(), 'syndicast-refuses-writes-'));
}, 30_000);
afterAll(async () => {
  admin?.disconnect();
  await redis?.destroy();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<unknown> {
  const config = loadConfig({ REDIS_URL: redis.url, KEY_PREFIX: 'rw' + Math.random().toString(36).slice(2, 8), DATA_DIR: dataDir, LOG_LEVEL: 'silent' }, '/nonexistent');
  try {
    const rt = await createRuntime(config, 'api', { log: createLogger('silent') });
    await rt.close();
    return 'started';
  } catch (err) {
    return err;
  }
}

test('REDIS_URL naming a read-only replica stops the start with what to change, and nothing is written', async () => {
  await admin.flushall();
  await admin.replicaof('127.0.0.1', String(await testPort())); // no master there: read-only all the same
  try {
    const err = await start();
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toMatch(/^Syndicast reached Redis at REDIS_URL=redis:\/\/127\.0\.0\.1:\d+, but it refuses writes: "READONLY .*": it is a read-only replica\. Point it at the primary .* Nothing was written\.$/);
  } finally {
    await admin.replicaof('NO', 'ONE');
  }
  expect(await admin.dbsize()).toBe(0);
}, 30_000);

test('a full Redis (maxmemory reached, noeviction) stops the start saying so; with room it starts', async () => {
  await admin.config('SET', 'maxmemory', '1');
  try {
    const err = await start();
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toMatch(/refuses writes: "OOM command not allowed.*": it is full \(maxmemory reached, maxmemory-policy noeviction\)\. Free memory or raise maxmemory, then start again\./);
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  expect(await start()).toBe('started');
}, 30_000);

test('a Redis that lacks the replicas its min-replicas-to-write asks for (NOREPLICAS) stops the start saying what to change', async () => {
  // Before: NOREPLICAS was not a refusal it knew; the start went on into the scheduler's first BullMQ script and crashed.
  await admin.flushall();
  await admin.config('SET', 'min-replicas-to-write', '1');
  try {
    const err = await start();
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toMatch(/refuses writes: "NOREPLICAS .*": it takes writes only while min-replicas-to-write replicas are connected .*, or lower min-replicas-to-write, then start again\. Nothing was written\.$/);
  } finally {
    await admin.config('SET', 'min-replicas-to-write', '0');
  }
  expect(await admin.dbsize()).toBe(0);
}, 30_000);
