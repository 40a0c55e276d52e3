/**
 * A write that Redis refuses for real: `key` is replaced by a string while `fn` runs (every command of
 * another type on it fails with WRONGTYPE), then put back as it was. The saved copy is named with a
 * suffix outside the hash tag, so it stays in the key's slot on a Cluster.
 */
import type { RedisClient } from '../../src/store/redis.js';

export async function withWrongTypeKey<T>(redis: RedisClient, key: string, fn: () => Promise<T>): Promise<T> {
  const saved = `${key}-saved`;
  const had = (await redis.exists(key)) === 1;
  if (had) await redis.rename(key, saved);
  await redis.set(key, 'not of its type');
  try {
    return await fn();
  } finally {
    await redis.del(key);
    if (had) await redis.rename(saved, key);
  }
}
