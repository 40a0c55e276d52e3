/**
 * The service as users start it, in child processes: `npm start`'s entry (src/main/all.ts) and `npm
 * run <script>` with the real npm in its own process group, and what is left of such a group after a
 * stop signal (from /proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { tcpOpen } from '../../src/lib/net.js';
import { testPort } from './ports.js';
import { ADMIN_KEY, waitFor } from './service.js';
import { spawnWorker, type WorkerProcess } from './worker-process.js';

const root = resolve(import.meta.dirname ?? '.', '../..');

/**
 * What the service needs to start on `port` against the Redis of `redisEnv` (REDIS_URL or
 * REDIS_CLUSTER_NODES): the test helpers' admin key, new secrets, a data directory and key prefix of
 * its own, RELAY_RTMP_PORT 0 (several at once); `env` adds to it or overrides it.
 */
export function serviceEnv(redisEnv: Record<string, string>, port: number, env: Record<string, string> = {}): Record<string, string> {
  return {
    ...redisEnv,
    PORT: String(port),
    HOST: '127.0.0.1',
    ADMIN_API_KEY: ADMIN_KEY,
    SECRETS_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: 'warn',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'syndicast-data-')),
    KEY_PREFIX: 't' + randomBytes(3).toString('hex'),
    RELAY_RTMP_PORT: '0',
    ...env,
  };
}

/** `npm start`'s entry (src/main/all.ts) as a child process (serviceEnv); resolves once /health/ready is 200. */
export async function startAllProcess(redisEnv: Record<string, string>, env: Record<string, string> = {}): Promise<{ child: WorkerProcess; url: string }> {
  const port = await testPort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnWorker(serviceEnv(redisEnv, port, env), 'src/main/all.ts');
  try {
    await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, 60_000, 200);
  } catch (err) {
    await child.kill('SIGKILL');
    throw err;
  }
  return { child, url };
}

export interface NpmRun {
  npm: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** The process groups npmRun started in this test file. */
const groups: number[] = [];

/** Kills what is left of every process group npmRun started (a failed test's leftovers), one process at a time. */
export function killGroupsLeft(): void {
  for (const pgid of groups) for (const pid of groupPids(pgid)) killQuietly(pid);
}

/**
 * `npm <args>` with the npm from PATH in its own process group, as a terminal or a process manager
 * runs it (the group's id is `npm.pid`; killGroupsLeft ends what is left of it); `env` on top of PATH and HOME.
 */
export function npmRun(args: string[], env: Record<string, string>): NpmRun {
  const npm = spawn('npm', args, {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', npm_config_update_notifier: 'false', ...env },
  });
  groups.push(npm.pid!);
  let out = '';
  npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => npm.once('exit', (code, signal) => res({ code, signal })));
  return { npm, exit, output: () => out };
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The processes in process group pgid (from /proc: field 5 of /proc/<pid>/stat), zombies left out. */
export function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/** A process's command line, for a report (its pid once it is gone). */
export function readCmd(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return String(pid);
  }
}

/**
 * After a stop signal sent at `sentAt`: polls until group pgid has no process left and none of
 * `ports` is open, or `withinMs` have passed; what is left then. The caller kills what is left.
 */
export async function leftOfGroup(pgid: number, ports: number[], sentAt: number, withinMs: number): Promise<{ pids: number[]; portsOpen: number[] }> {
  let pids: number[] = [];
  let portsOpen: number[] = [];
  while (Date.now() - sentAt < withinMs) {
    pids = groupPids(pgid);
    portsOpen = [];
    for (const p of ports) if (await tcpOpen(p)) portsOpen.push(p);
    if (pids.length === 0 && portsOpen.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { pids, portsOpen };
}
