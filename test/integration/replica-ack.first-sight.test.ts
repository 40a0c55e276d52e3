/**
 * WAIT on (REDIS_WAIT_REPLICAS=1) but a master with no connected replica: such a master is not waited
 * on (ReplicaAck reads connected_slaves first). The WAIT sent right behind a write (waitTurn: the sync
 * workers' intent starts; waitNow: the redirect's click batches) once guessed "one replica" for a
 * master the process had not asked yet, so the first step of each worker process on it WAITed the
 * full timeout and its run was delayed as replica_unconfirmed. A real redis-server with no replica.
 */
import { Redis } from 'ioredis';
import { ReplicaAck } from '../../src/store/replica-ack.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.destroy();
});

test.each(['waitTurn', 'waitNow'] as const)('%s on a master this process has not asked yet, with no replica: resolves without a WAIT (a WAIT would time out and reject)', async (how) => {
  const client = new Redis({ port: redis.port, host: '127.0.0.1' });
  try {
    const ack = new ReplicaAck([client], 1, 300);
    await client.set('first-sight', '1');
    const all = await Promise.allSettled([ack[how](client), ack[how](client), ack[how](client)]);
    expect(all.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(ack.stats.waits).toBe(0);
  } finally {
    client.disconnect();
  }
});
