/**
 * Spawns a private redis-server per test file: ephemeral port, temp dir, AOF on (so a test can kill
 * and restart it and keep the data). Tests never mock Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type Cluster } from 'ioredis';
import { freePort } from '../../src/lib/net.js';

export interface TestRedis {
  topology: 'single' | 'cluster';
  /** One node's URL (for a cluster: a seed node; use `env`/`client()` to reach the whole cluster). */
  url: string;
  /** What a service process needs to reach this Redis: REDIS_URL, or REDIS_CLUSTER_NODES for a cluster. */
  env: Record<string, string>;
  /** A new client for this Redis (a Cluster client for a cluster); the caller disconnects it. */
  client(): Redis | Cluster;
  port: number;
  dir: string;
  /** Stop the server (SIGKILL by default: a crash; data written with appendfsync always survives). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and dir. */
  start(): Promise<void>;
  /** Stop and delete the temp dir. */
  destroy(): Promise<void>;
}

export async function waitReady(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    c.on('error', () => undefined); // refused until the server listens: the catch below retries
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      return;
    } catch {
      c.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'syndicast-redis-'));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (proc && proc.exitCode === null && proc.signalCode === null) return; // already running
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    await waitReady(port);
  };
  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  };
  await start();
  const url = `redis://127.0.0.1:${port}`;
  return {
    topology: 'single',
    url,
    env: { REDIS_URL: url },
    client: () => new Redis(url),
    port,
    dir,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
