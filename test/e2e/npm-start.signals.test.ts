/**
 * `npm start` stopped the way users and process managers stop it, with the real npm from PATH:
 * SIGTERM to the npm process alone (a process manager that started `npm start`, `kill <npm pid>`), and
 * SIGINT to the whole process group (Ctrl-C in a terminal; systemd's KillMode=control-group does the
 * same with SIGTERM). Either way every process of the tree must be gone, the HTTP port closed and the
 * service's Redis connections closed within Docker's 10 s stop grace, after the graceful shutdown
 * (its log line, exit 0, no "second signal" cut-off).
 *
 * Before: npm forwards the signal to its child `sh -c "tsx …"`; Debian's dash neither execs its last
 * command nor traps the signal, so it died, npm re-raised the signal on itself, and tsx and the service
 * were left running as orphans, holding the port, their Redis connections and BullMQ locks. And with
 * the service as npm's direct child, a group signal arrives twice (the group's copy and npm's
 * forwarded one); close-with-grace took the second as "exit now" and exited 1 mid-shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, tcpOpen } from '../../src/lib/net.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, waitFor } from '../helpers/service.js';

const root = resolve(import.meta.dirname ?? '.', '../..');
/** Docker's default stop grace: the whole tree must be gone by then. */
const GONE_WITHIN_MS = 10_000;

let redis: TestRedis;
const dirs: string[] = [];
const groups: number[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  // Whatever a failed run left behind: the processes of our own npm's group, one by one.
  for (const pgid of groups) for (const pid of groupPids(pgid)) killQuietly(pid);
  await redis?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The processes in process group pgid (from /proc: field 5 of /proc/<pid>/stat). */
function groupPids(pgid: number): number[] {
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

interface NpmStart {
  npm: ChildProcess;
  port: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** `npm start` in its own process group (as a terminal or a process manager runs it); resolves once ready. */
async function npmStart(): Promise<NpmStart> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'syndicast-npm-start-'));
  dirs.push(dataDir);
  const npm = spawn('npm', ['start'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      npm_config_update_notifier: 'false',
      ...redis.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      RELAY_RTMP_PORT: '0',
      DATA_DIR: dataDir,
      KEY_PREFIX: 'ns' + randomBytes(3).toString('hex'),
      ADMIN_API_KEY: ADMIN_KEY,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'info',
    },
  });
  groups.push(npm.pid!);
  let out = '';
  npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => npm.once('exit', (code, signal) => res({ code, signal })));
  await waitFor(async () => out.includes('syndicast started') && (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200, 60_000, 200);
  return { npm, port, exit, output: () => out };
}

/** After the signal: the tree gone, the port closed and no client left on Redis, within GONE_WITHIN_MS. */
async function expectStoppedGracefully(started: NpmStart, signal: NodeJS.Signals, sentAt: number): Promise<void> {
  const pgid = started.npm.pid!;
  let left: number[] = [];
  let open = true;
  while (Date.now() - sentAt < GONE_WITHIN_MS) {
    left = groupPids(pgid);
    open = await tcpOpen(started.port);
    if (left.length === 0 && !open) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const c = redis.client();
  const clients = String(await c.client('LIST')).trim().split('\n').length - 1; // without this one
  c.disconnect();
  const { code, signal: bySignal } = await Promise.race([started.exit, new Promise<{ code: 'running'; signal: null }>((r) => setTimeout(() => r({ code: 'running', signal: null }), 100))]);
  const out = started.output();
  const processesLeft = left.map((pid) => readCmd(pid));
  // Orphans must not hold this file's Redis or ports for the next test.
  for (const pid of left) killQuietly(pid);
  await waitFor(async () => groupPids(pgid).length === 0, 5_000, 50);
  expect({ processesLeft, portOpen: open, redisClients: clients, npmExit: code ?? bySignal }).toEqual({
    processesLeft: [],
    portOpen: false,
    redisClients: 0,
    npmExit: 0,
  });
  expect(out).toMatch(new RegExp(`"signal":"${signal}","msg":"shutting down"`));
  expect(out).not.toMatch(/second SIG|killed by timeout/);
}

function readCmd(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return String(pid);
  }
}

test('npm start: SIGTERM to the npm process alone stops the service gracefully, leaves no process, port or Redis connection behind', async () => {
  const started = await npmStart();
  const t0 = Date.now();
  started.npm.kill('SIGTERM'); // the npm process only, not its group
  await expectStoppedGracefully(started, 'SIGTERM', t0);
}, 90_000);

test('npm start: Ctrl-C (SIGINT to the whole process group) is one graceful shutdown, not "second SIGINT, exiting"', async () => {
  const started = await npmStart();
  const t0 = Date.now();
  process.kill(-started.npm.pid!, 'SIGINT'); // what the terminal does: npm and the service both get it
  await expectStoppedGracefully(started, 'SIGINT', t0);
}, 90_000);
