/**
 * A Redis Cluster whose nodes require a password (ElastiCache/MemoryDB with AUTH, Redis Enterprise,
 * requirepass or ACL users): REDIS_CLUSTER_NODES gives it on its seeds as REDIS_URL does
 * (redis://user:password@host:port), and every Cluster client the service makes sends it: the
 * runtime's (its seed check, the API/worker client, the BullMQ producer) and the BullMQ worker's
 * connections, blocking ones included (duplicates of the runtime's). Before, REDIS_CLUSTER_NODES took
 * no password, no client sent AUTH, and the start stopped at once on NOAUTH. A real one-node cluster
 * with requirepass; the password has characters a URL must encode (',', '@', '/', ':'), and appears in
 * no log line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/lib/logger.js';
import { createRuntime, type Runtime } from '../../src/main/runtime.js';
import { clusterSeedProblem, type RedisClient } from '../../src/store/redis.js';
import { startOneNodeCluster, type OneNodeCluster } from '../helpers/redis-cluster.js';

const PASSWORD = 'cl-s3cret,with@odd/chars:x';

let cluster: OneNodeCluster;
let dataDir: string;
beforeAll(async () => {
  cluster = await startOneNodeCluster(undefined, { requirepass: PASSWORD });
  dataDir = mkdtempSync(join(tmpdir(), 'syndicast-cluster-auth-'));
});
afterAll(async () => {
  await cluster?.destroy();
  rmSync(dataDir, { recursive: true, force: true });
});

test("the seed check: the node refuses no password and a wrong one, saying which without the password; the right one passes", async () => {
  const at = `127.0.0.1:${cluster.port}`;
  expect(await clusterSeedProblem(at)).toMatch(new RegExp(`^${at} requires a password and refused a connection without one \\(it answered: "NOAUTH`));
  const wrong = await clusterSeedProblem(`redis://:not-it@${at}`);
  expect(wrong).toMatch(new RegExp(`^${at} refused the password \\(default user\\) given in REDIS_CLUSTER_NODES \\(it answered: "WRONGPASS`));
  expect(wrong).not.toContain('not-it');
  expect(await clusterSeedProblem(cluster.clusterNodes)).toBeNull();
}, 15_000);

test("the runtime's clients and a BullMQ queue and worker use the password of REDIS_CLUSTER_NODES: set and get, one job processed, no password logged", async () => {
  expect(cluster.clusterNodes).toMatch(/^redis:\/\/:[^@]+@127\.0\.0\.1:\d+$/);
  const config = loadConfig({ REDIS_CLUSTER_NODES: cluster.clusterNodes, KEY_PREFIX: 'ca' + Math.random().toString(36).slice(2, 8), DATA_DIR: dataDir, LOG_LEVEL: 'debug' }, '/nonexistent');
  const logged: string[] = [];
  const log = createLogger('debug', 'syndicast', { write: (line: string) => void logged.push(line) });
  let rt: Runtime | undefined;
  let worker: Worker | undefined;
  let queue: Queue | undefined;
  try {
    rt = await createRuntime(config, 'worker', { log });
    await rt.redis.set(rt.keys.queuePrefix('auth-probe') + ':k', 'v');
    expect(await rt.redis.get(rt.keys.queuePrefix('auth-probe') + ':k')).toBe('v');

    const prefix = rt.keys.queuePrefix('auth-probe');
    queue = new Queue('auth-probe', { connection: rt.producerConnection, prefix });
    const processed = new Promise<unknown>((resolve) => {
      worker = new Worker('auth-probe', async (job) => resolve(job.data), { connection: rt!.bullConnection('worker'), prefix });
    });
    await queue.add('one', { n: 1 });
    let timer: NodeJS.Timeout | undefined;
    const data = await Promise.race([processed, new Promise((r) => (timer = setTimeout(() => r('not processed in 10 s'), 10_000)))]);
    clearTimeout(timer);
    expect(data).toEqual({ n: 1 });
    // The connection the worker made itself (its blocking one, a duplicate of ours, named by BullMQ
    // after its queue) is authenticated too: a name is set (CLIENT SETNAME) only after AUTH.
    const clients = String(await (rt.redis as RedisClient).call('CLIENT', 'LIST'));
    expect(clients).toContain(` name=${prefix}:${Buffer.from('auth-probe').toString('base64')} `);
  } finally {
    await worker?.close();
    await queue?.close();
    await rt?.close();
  }
  const all = logged.join('');
  expect(all).not.toContain(PASSWORD);
  expect(all).not.toContain(encodeURIComponent(PASSWORD));
}, 30_000);
