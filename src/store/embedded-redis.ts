/**
 * The zero-configuration Redis of README "What happens with no configuration": REDIS_URL when set; else 127.0.0.1:6379 when it
 * answers; else a redis-server from PATH with AOF under <dataDir>/redis; else a clear error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../lib/net.js';

export class RedisUnavailableError extends Error {}

export const HOW_TO_GET_REDIS =
  'Syndicast keeps its data in Redis and could not find one. Set REDIS_URL to a Redis 6.2+ server ' +
  '(for example REDIS_URL=redis://127.0.0.1:6379), or start one on 127.0.0.1:6379, or install ' +
  'redis-server so that it is on PATH (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew ' +
  'install redis) and Syndicast will start its own with its data (AOF) under .data/redis. For ' +
  'production run Redis with appendonly yes and maxmemory-policy noeviction (see docker-compose.yml).';

async function answers(url: string, timeoutMs = 800): Promise<boolean> {
  const c = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

export interface ResolvedRedis {
  url: string;
  source: 'env' | 'local' | 'spawned';
  stop(): Promise<void>;
}

export async function resolveRedis(opts: { url?: string; dataDir: string; appendfsync: 'always' | 'everysec' }): Promise<ResolvedRedis> {
  const none = async (): Promise<void> => undefined;
  if (opts.url) return { url: opts.url, source: 'env', stop: none };
  const local = 'redis://127.0.0.1:6379';
  if (await answers(local)) return { url: local, source: 'local', stop: none };
  const dir = resolve(opts.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', opts.appendfsync, '--save', '', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
  } catch {
    throw new RedisUnavailableError(HOW_TO_GET_REDIS);
  }
  const spawnFailed = new Promise<boolean>((res) => {
    child.once('error', () => res(true));
    child.once('exit', () => res(true));
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const failed = await Promise.race([spawnFailed, new Promise<false>((r) => setTimeout(() => r(false), 100))]);
    if (failed) throw new RedisUnavailableError(HOW_TO_GET_REDIS);
    if (await answers(url)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new RedisUnavailableError(HOW_TO_GET_REDIS);
    }
  }
  return {
    url,
    source: 'spawned',
    stop: async () => {
      if (child.exitCode !== null) return;
      await new Promise<void>((res) => {
        child.once('exit', () => res());
        child.kill('SIGTERM'); // redis-server flushes the AOF on SIGTERM
      });
    },
  };
}
