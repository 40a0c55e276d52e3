/**
 * redisDurabilityProblems against a real redis-server: it reads the settings that matter in one
 * CONFIG GET (Redis 7) and names each problem; a server that does not let us read them (CONFIG denied
 * to the user, as on some managed services, or renamed) reports nothing and does not fail startup.
 * The startup warning itself: test/e2e/npm-start.redis-durability.test.ts.
 */
import { Redis } from 'ioredis';
import { redisDurabilityProblems } from '../../src/store/redis-durability.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

let redis: TestRedis;
let admin: Redis;

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
}, 30_000);
afterAll(async () => {
  admin?.disconnect();
  await redis?.destroy();
});

const problemsOf = async (url: string): Promise<string[]> => {
  const c = new Redis(url);
  try {
    return (await redisDurabilityProblems(c)).map((p) => p.problem.split(':')[0]!);
  } finally {
    c.disconnect();
  }
};

test('a Redis set up as a database: no problem, read in one CONFIG GET', async () => {
  await admin.config('RESETSTAT');
  expect(await problemsOf(redis.url)).toEqual([]);
  expect(/cmdstat_config\|get:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1]).toBe('1');
});

test('a Redis that persists nothing and evicts keys: both named; a user who may not read CONFIG: none, no error', async () => {
  await admin.config('SET', 'appendonly', 'no');
  await admin.config('SET', 'maxmemory', '1gb');
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  await admin.acl('SETUSER', 'noconfig', 'on', '>pw', '~*', '&*', '+@all', '-config');
  try {
    expect(await problemsOf(redis.url)).toEqual(['Redis persists nothing (appendonly no, no save points)', 'Redis evicts keys under memory pressure (maxmemory-policy allkeys-lru)']);
    expect(await problemsOf(`redis://noconfig:pw@127.0.0.1:${redis.port}`)).toEqual([]);
  } finally {
    await admin.config('SET', 'appendonly', 'yes');
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '0');
    await admin.acl('DELUSER', 'noconfig');
    // appendonly yes starts an AOF rewrite in a child: done before the server and its dir go.
    await waitFor(async () => /aof_rewrite_in_progress:0\r?\n[\s\S]*aof_rewrite_scheduled:0/.test(await admin.info('persistence')), 10_000, 50);
  }
});
