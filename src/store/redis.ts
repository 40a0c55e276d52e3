/**
 * Redis connections. The API's client fails fast (no offline queue, short command timeout) so that an
 * outage becomes a 503 rather than a hung request; BullMQ workers need maxRetriesPerRequest: null.
 * REDIS_CLUSTER_NODES switches to a Redis Cluster: every key we use carries a {hash tag}.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  url?: string;
  clusterNodes?: string;
}

export type ConnectionRole = 'api' | 'worker';

// Auto-pipelining stays off: ioredis' auto-pipeline can resolve fewer results than commands and then
// throws `results[i] is not iterable` outside any caller (seen once in our five-platform property test;
// redis/ioredis#1931, where it crashed a server), and on a Cluster it groups EVALSHA by the wrong slot
// (redis/ioredis#2109). Correctness first; the benchmarks measure what it costs.
function roleOptions(role: ConnectionRole): RedisOptions {
  return role === 'api'
    ? { enableOfflineQueue: false, commandTimeout: 2000, maxRetriesPerRequest: 1, connectTimeout: 2000, enableAutoPipelining: false }
    : { maxRetriesPerRequest: null, enableAutoPipelining: false };
}

export function createRedis(target: RedisTarget, role: ConnectionRole, name = 'syndicast'): RedisClient {
  const base: RedisOptions = {
    ...roleOptions(role),
    connectionName: `${name}-${role}`,
    // Keep reconnecting (capped backoff); the API answers 503 meanwhile.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
  };
  if (target.clusterNodes) {
    const nodes = target.clusterNodes.split(',').map((hp) => {
      const [host, port] = hp.trim().split(':');
      return { host: host ?? '127.0.0.1', port: Number(port ?? 6379) };
    });
    return new Cluster(nodes, { redisOptions: base, enableOfflineQueue: base.enableOfflineQueue ?? true, enableAutoPipelining: false });
  }
  return new Redis(target.url ?? 'redis://127.0.0.1:6379', base);
}

/** Wait until the client is ready (or throw after timeoutMs). */
export async function waitForRedis(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(t);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/** Errors that mean "Redis is unavailable" (→ 503), as opposed to bugs. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return /Connection is closed|Stream isn't writeable|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|LOADING|OOM command|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|NOREPLICAS|Failed to refresh slots cache|Cluster isn't ready|None of startup nodes|connect ETIMEDOUT|Reached the max retries|Too many Cluster redirections/i.test(
    err.message,
  );
}
