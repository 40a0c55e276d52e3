/** Every key and every value of a Redis, as text: for tests that assert a secret is stored nowhere in plain text. */
import type { RedisClient } from '../../src/store/redis.js';
import { keysMatching } from './redis-cluster.js';

/** One line per key (all types), in key order: `<key> <value as text>`. */
export async function redisEntries(redis: RedisClient): Promise<string[]> {
  const out: string[] = [];
  for (const key of await keysMatching(redis, '*')) {
    const type = await redis.type(key);
    let value: string;
    if (type === 'string') value = (await redis.get(key)) ?? '';
    else if (type === 'hash') value = JSON.stringify(await redis.hgetall(key));
    else if (type === 'list') value = JSON.stringify(await redis.lrange(key, 0, -1));
    else if (type === 'set') value = JSON.stringify(await redis.smembers(key));
    else if (type === 'zset') value = JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES'));
    else if (type === 'stream') value = JSON.stringify(await redis.xrange(key, '-', '+'));
    else value = `<${type}>`;
    out.push(`${key} ${value}`);
  }
  return out;
}

/** Every key and every value (all types) in the Redis server (every master of a cluster), as one string. */
export async function dumpRedis(redis: RedisClient): Promise<string> {
  return (await redisEntries(redis)).join('\n');
}
