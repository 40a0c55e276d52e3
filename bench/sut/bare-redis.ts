/**
 * The bare baselines' Redis: BARE_REDIS_URL (one redis-server) or BARE_REDIS_CLUSTER_NODES
 * (`host:port,...`, a Redis Cluster; see bench/lib/topology.ts). On a cluster every queue's BullMQ
 * prefix carries its own hash tag, as Syndicast's queues do.
 */
import type { ConnectionOptions } from 'bullmq';
import { Cluster } from 'ioredis';
import { bareQueuePrefix } from '../lib/topology.js';

export interface BareRedis {
  cluster: boolean;
  /** A fresh connection for one Queue or Worker (`worker`: no per-request retry limit, as BullMQ wants for Workers). */
  connection(worker: boolean): ConnectionOptions;
  prefix(prefix: string, queue: string): string;
}

export function bareRedis(): BareRedis {
  const nodes = process.env['BARE_REDIS_CLUSTER_NODES'];
  if (nodes) {
    const seeds = nodes.split(',').map((hp) => {
      const [host, port] = hp.split(':');
      return { host: host ?? '127.0.0.1', port: Number(port) };
    });
    return {
      cluster: true,
      connection: (worker) => {
        const c = new Cluster(seeds, { redisOptions: worker ? { maxRetriesPerRequest: null } : {} });
        c.on('error', () => undefined);
        return c as ConnectionOptions;
      },
      prefix: (prefix, queue) => bareQueuePrefix(prefix, queue, true),
    };
  }
  const url = process.env['BARE_REDIS_URL'];
  if (!url) throw new Error('BARE_REDIS_URL or BARE_REDIS_CLUSTER_NODES is required');
  const u = new URL(url);
  return {
    cluster: false,
    connection: (worker) => ({ host: u.hostname, port: Number(u.port), ...(worker ? { maxRetriesPerRequest: null } : {}) }),
    prefix: (prefix, queue) => bareQueuePrefix(prefix, queue, false),
  };
}
