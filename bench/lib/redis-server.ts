/**
 * A private redis-server per benchmark: ephemeral loopback port, AOF on with the requested
 * appendfsync, data under .data/bench (the same disk the service would use; /tmp may be tmpfs
 * elsewhere, which would make `appendfsync always` look free). Removed again by destroy().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { track } from './proc.js';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/lib/net.js';

export type Appendfsync = 'always' | 'everysec';

export interface BenchRedis {
  url: string;
  port: number;
  dir: string;
  appendfsync: Appendfsync;
  pid: number | undefined;
  destroy(): Promise<void>;
}

export const BENCH_DATA_ROOT = resolve('.data', 'bench');

async function waitReady(port: number, proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode} (is redis-server on PATH?)`);
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    c.on('error', () => undefined);
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

export async function startBenchRedis(appendfsync: Appendfsync): Promise<BenchRedis> {
  mkdirSync(BENCH_DATA_ROOT, { recursive: true });
  const dir = mkdtempSync(join(BENCH_DATA_ROOT, 'redis-'));
  const port = await freePort();
  const proc = track(spawn(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', appendfsync,
      // a background AOF rewrite (fork) would land on whichever system happens to be running then
      '--auto-aof-rewrite-percentage', '0',
      '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--loglevel', 'warning',
    ],
    { stdio: 'ignore' },
  ));
  proc.on('error', () => undefined);
  try {
    await waitReady(port, proc);
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    appendfsync,
    pid: proc.pid,
    destroy: async () => {
      if (proc.exitCode === null) {
        await new Promise<void>((r) => {
          proc.once('exit', () => r());
          proc.kill('SIGKILL');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
