/**
 * `npm run sim` and `npm run demo` stopped the way a process manager or a CI job stops them: SIGTERM
 * to the npm process alone. Every process of the tree must be gone within Docker's 10 s stop grace,
 * the ports closed, and the demo's throw-away Redis keys removed.
 *
 * Before: the scripts ran the `tsx` CLI through `sh -c`; npm forwards the signal to the shell, which
 * (Debian's dash) neither execs its last command nor traps the signal, so it died and tsx and the node
 * process under it were left running as orphans, holding the simulator port (and, for the demo, the
 * service, its relay ffmpeg processes and Redis connections). Now `exec node --import tsx …`, as
 * `npm start` (test/e2e/npm-start.signals.test.ts), and the demo stops what it started on SIGTERM/SIGINT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort, tcpOpen } from '../../src/lib/net.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

const root = resolve(import.meta.dirname ?? '.', '../..');
const GONE_WITHIN_MS = 10_000;

let redis: TestRedis;
const groups: number[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  for (const pgid of groups) for (const pid of groupPids(pgid)) killQuietly(pid);
  await redis?.destroy();
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The processes in process group pgid (field 5 of /proc/<pid>/stat), zombies left out. */
function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

function readCmd(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return String(pid);
  }
}

interface Run {
  npm: ChildProcess;
  output(): string;
}

/** `npm run <script>` in its own process group, as a process manager runs it. */
function npmRun(script: string, env: Record<string, string>): Run {
  const npm = spawn('npm', ['run', script], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', npm_config_update_notifier: 'false', ...env },
  });
  groups.push(npm.pid!);
  let out = '';
  npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { npm, output: () => out };
}

/** After SIGTERM to npm alone: what is left of its group (and whether `port` is open) once GONE_WITHIN_MS passed or all is gone. */
async function leftAfter(run: Run, sentAt: number, ports: number[]): Promise<{ processesLeft: string[]; portsOpen: number[] }> {
  const pgid = run.npm.pid!;
  let left: number[] = [];
  let open: number[] = [];
  while (Date.now() - sentAt < GONE_WITHIN_MS) {
    left = groupPids(pgid);
    open = [];
    for (const p of ports) if (await tcpOpen(p)) open.push(p);
    if (left.length === 0 && open.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const processesLeft = left.map(readCmd);
  for (const pid of left) killQuietly(pid);
  return { processesLeft, portsOpen: open };
}

test('npm run sim: SIGTERM to the npm process alone closes the simulators and leaves no process behind', async () => {
  const [port, rtmpPort] = [await freePort(), await freePort()];
  const run = npmRun('sim', { SIM_PORT: String(port), SIM_RTMP_PORT: String(rtmpPort), SIM_HOST: '127.0.0.1' });
  await waitFor(async () => run.output().includes('Platform simulators listening') && (await tcpOpen(port)), 60_000, 200);
  const t0 = Date.now();
  run.npm.kill('SIGTERM');
  expect(await leftAfter(run, t0, [port, rtmpPort])).toEqual({ processesLeft: [], portsOpen: [] });
  expect(run.output()).toContain('SIGTERM: closing simulators');
}, 90_000);

test('npm run demo: SIGTERM to the npm process alone stops the service, the relay and the simulators and removes the demo keys', async () => {
  const run = npmRun('demo', { ...redis.env, ...(process.env['FFMPEG_PATH'] ? { FFMPEG_PATH: process.env['FFMPEG_PATH'] } : {}) });
  // Running: the show is live and the relay's ffmpeg processes push the encoder's video to every platform.
  await waitFor(async () => run.output().includes('video relayed to every platform:'), 120_000, 200);
  const ports = [...run.output().matchAll(/http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  expect(ports.length).toBeGreaterThanOrEqual(2);
  const c = redis.client();
  try {
    const prefix = (await c.keys('demo*:*')).map((k) => k.split(':')[0]!).find((p) => /^demo[0-9a-f]{6}$/.test(p));
    expect(prefix).toBeDefined();
    const t0 = Date.now();
    run.npm.kill('SIGTERM');
    expect(await leftAfter(run, t0, [...new Set(ports)])).toEqual({ processesLeft: [], portsOpen: [] });
    expect(run.output()).toMatch(/SIGTERM: stopping the demo[\s\S]*stopped \(removed the demo's \d+ Redis keys\)/);
    expect(await c.keys(`${prefix!}:*`)).toEqual([]);
  } finally {
    c.disconnect();
  }
}, 180_000);
