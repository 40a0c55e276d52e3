/**
 * Review 2026-12-02: revokeOnce marked the key index revoked before the record authentication reads,
 * so a revoke whose second write failed (a connection blip, a Cluster failover: other slots) left a key
 * listed `revoked` that still logged in, and its retry found it revoked, answered `revoked: false` and
 * the route wrote no `api_key.revoked` audit entry. The write fails here for real: an ACL that denies
 * SET to the service's user once the key exists.
 */
import { ApiKeyRepository } from '../../src/store/apikey.repository.js';
import { Keys } from '../../src/store/keys.js';
import type { RedisClient } from '../../src/store/redis.js';
import { testRedisClientPerFile } from '../helpers/redis-cluster.js';

let redis: RedisClient;
testRedisClientPerFile((started) => ({ client: redis } = started));

test('a revoke that fails half-way never lists a key revoked that still authenticates, and its retry revokes it', async () => {
  const repo = new ApiKeyRepository(redis, new Keys('rv'));
  const { id, key } = await repo.create('operator', undefined);
  expect(await repo.find(key)).not.toBeNull();
  await redis.call('ACL', 'SETUSER', 'default', '-set'); // ACL itself stays allowed: it is not SET
  try {
    await expect(repo.revokeOnce(id)).rejects.toThrow(/NOPERM|permission/i);
  } finally {
    await redis.call('ACL', 'SETUSER', 'default', '+set');
  }
  // Listed revoked ⇒ refused at login: never the one without the other.
  const listed = (await repo.get(id))?.status;
  const authenticates = (await repo.find(key)) !== null;
  expect(listed === 'revoked' && authenticates).toBe(false);
  const again = await repo.revokeOnce(id);
  expect(again?.revoked).toBe(true); // this call revoked it: the route audits it
  expect(again?.key.status).toBe('revoked');
  expect(await repo.find(key)).toBeNull();
});
