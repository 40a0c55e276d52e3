/**
 * The start-up write check (redisWriteRefusal) on a Redis Cluster wrote one key, so asked one master
 * only: a master that refuses writes (here NOREPLICAS: min-replicas-to-write 2 and one replica) but
 * does not serve the readiness key's slot let the start go on into a crash on the first BullMQ script
 * whose key it serves. Now one key per master (probeKeys), and the refusal names the master. A real
 * 3-master cluster (the behaviour is the cluster's); the check is called directly, no service started.
 */
import { Redis, type Cluster } from 'ioredis';
import { Keys } from '../../src/store/keys.js';
import { probeKeys, redisWriteRefusal } from '../../src/store/redis-durability.js';
import { keySlot } from '../../src/store/slot.js';
import { startCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';

let cluster: TestRedisCluster;
let client: Cluster;
const probe = new Keys('rwc').readinessProbe();

beforeAll(async () => {
  cluster = await startCluster();
  client = cluster.client() as Cluster;
  await client.set(probe, '1'); // slots known
}, 60_000);
afterAll(async () => {
  client?.disconnect();
  await cluster?.destroy();
});

test('probeKeys gives one key per master, the readiness key first, each with its master', () => {
  const keys = probeKeys(client, probe);
  expect(keys[0]!.key).toBe(probe);
  for (const { key, owner } of keys) expect(owner).toBe(client.slots[keySlot(key)]?.[0]);
  const owners = keys.map((k) => k.owner);
  expect(new Set(owners).size).toBe(3);
  expect(owners.sort()).toEqual(client.nodes('master').map((m) => `${m.options.host}:${m.options.port}`).sort());
});

test('a master other than the readiness key\'s that refuses writes (NOREPLICAS) is found and named', async () => {
  const probeOwner = client.slots[keySlot(probe)]![0]!;
  const other = client.nodes('master').find((m) => `${m.options.host}:${m.options.port}` !== probeOwner)!;
  const otherKey = `${other.options.host}:${other.options.port}`;
  const admin = new Redis(Number(other.options.port), String(other.options.host));
  try {
    expect(await redisWriteRefusal(client, probe)).toBeNull();
    await admin.config('SET', 'min-replicas-to-write', '2'); // it has one replica
    const refusal = await redisWriteRefusal(client, probe);
    expect(refusal).toMatch(new RegExp(`^its master ${otherKey.replace(/\./g, '\\.')} answered "NOREPLICAS .*": it takes writes only while min-replicas-to-write replicas`));
  } finally {
    await admin.config('SET', 'min-replicas-to-write', '0');
    admin.disconnect();
  }
}, 30_000);
