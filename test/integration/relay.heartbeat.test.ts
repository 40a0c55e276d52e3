/**
 * RelayRepository.heartbeat against a real redis-server: a relay pass starts with it, and a heartbeat
 * Redis did not write must fail the pass (RelayService logs "relay tick failed"), never pass for one.
 * ioredis's multi().exec() resolves with a command's own error in its result (an error Redis raises
 * while running the transaction) instead of rejecting; errors Redis raises while queueing it (OOM,
 * READONLY) abort the whole transaction (EXECABORT) and reject.
 */
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/lib/crypto.js';
import { Keys } from '../../src/store/keys.js';
import { RelayRepository } from '../../src/store/relay.repository.js';
import { createRedis, waitForRedis, type RedisClient } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

let server: TestRedis;
let redis: RedisClient;
let admin: RedisClient;
let n = 0;

beforeAll(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url }, 'api');
  admin = createRedis({ url: server.url }, 'api');
  await Promise.all([waitForRedis(redis), waitForRedis(admin)]);
});
afterAll(async () => {
  redis.disconnect();
  admin.disconnect();
  await server.destroy();
});

function fresh(): RelayRepository {
  return new RelayRepository(redis, new Keys(`hb${++n}`), new SecretBox(randomBytes(32).toString('base64')));
}

test('a heartbeat Redis refused while running the transaction rejects (no heartbeat was written)', async () => {
  const relay = fresh();
  // Redis refuses this SET's expiry only when it runs it: exec() used to resolve with that error.
  await expect(relay.heartbeat(1.5)).rejects.toThrow(/not an integer/);
  expect(await relay.presence()).toMatchObject({ running: false });
  await relay.heartbeat(5_000);
  expect(await relay.presence()).toMatchObject({ deployed: true, running: true });
});

test('out of memory (noeviction) and a read-only replica reject the heartbeat', async () => {
  const relay = fresh();
  await admin.config('SET', 'maxmemory', '1');
  try {
    await expect(relay.heartbeat(5_000)).rejects.toThrow();
  } finally {
    await admin.config('SET', 'maxmemory', '0');
  }
  // A replica (of nothing reachable) refuses writes.
  await admin.call('REPLICAOF', '127.0.0.1', '1');
  try {
    await expect(relay.heartbeat(5_000)).rejects.toThrow();
  } finally {
    await admin.call('REPLICAOF', 'NO', 'ONE');
  }
  await relay.heartbeat(5_000);
  expect(await relay.presence()).toMatchObject({ deployed: true, running: true });
});
