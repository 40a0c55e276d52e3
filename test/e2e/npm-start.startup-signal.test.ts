/**
 * `npm start` stopped while it is still starting, as systemd or Docker do at any moment: SIGTERM to
 * npm alone while the Redis of REDIS_URL is not reachable yet (every connection reset), and Ctrl-C
 * (SIGINT to the process group) while that Redis is still loading its data. Either way the start is
 * given up: the whole tree is gone within a few seconds, exit 0, the service's last line says it
 * stopped during start-up with that signal, and no connection to Redis is left.
 *
 * Before: the handlers were installed only once every role had started, so the signal's default
 * action killed the service (143/130: npm exited non-zero), wherever it was in its start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { testPort } from '../helpers/ports.js';
import { groupPids, killGroupsLeft, killQuietly, leftOfGroup, npmRun, readCmd, serviceEnv, type NpmRun } from '../helpers/npm-start.js';
import { spawnRedisServer, waitReady } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

/** The start given up and the tree gone within this (a stop of a started service allows 10 s). */
const GONE_WITHIN_MS = 5_000;

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  killGroupsLeft();
  for (const c of cleanups.reverse()) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** ESTABLISHED TCP connections to 127.0.0.1:port from this machine (/proc/net/tcp; the test makes none itself). */
function connectionsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const [, , rem, st] = line.trim().split(/\s+/);
      if (st === '01' && rem?.endsWith(`:${hex}`)) n++;
    }
  }
  return n;
}

function npmStart(redisUrl: string): NpmRun {
  const env = serviceEnv({ REDIS_URL: redisUrl }, 0, { LOG_LEVEL: 'info' });
  dirs.push(env['DATA_DIR']!);
  return npmRun(['start'], env);
}

/** After the signal: the group gone within GONE_WITHIN_MS, npm's exit 0, the start given up by that signal. */
async function expectStartGivenUp(run: NpmRun, signal: NodeJS.Signals, sentAt: number, redisPort: number): Promise<void> {
  const pgid = run.npm.pid!;
  const { pids: left } = await leftOfGroup(pgid, [], sentAt, GONE_WITHIN_MS);
  const tookMs = Date.now() - sentAt;
  const { code, signal: bySignal } = await Promise.race([run.exit, new Promise<{ code: 'running'; signal: null }>((r) => setTimeout(() => r({ code: 'running', signal: null }), 100))]);
  const processesLeft = left.map((pid) => readCmd(pid));
  for (const pid of left) killQuietly(pid);
  await waitFor(async () => groupPids(pgid).length === 0, 5_000, 50);
  const out = run.output();
  expect({ processesLeft, npmExit: code ?? bySignal, redisConnections: connectionsTo(redisPort), within: tookMs < GONE_WITHIN_MS, output: code === 0 ? '' : out.slice(-2000) }).toEqual({
    processesLeft: [],
    npmExit: 0,
    redisConnections: 0,
    within: true,
    output: '',
  });
  expect(out).toMatch(new RegExp(`"signal":"${signal}".*"msg":"stopped during start-up"`));
  expect(out).not.toMatch(/second SIG|killed by timeout|cannot reach Redis|could not get a ready connection/);
}

test('npm start: SIGTERM to npm while REDIS_URL is not reachable yet gives the start up: exit 0 within 5 s, nothing left', async () => {
  // A port where every connection is reset at once: the service is in its Redis wait once it has tried twice.
  let attempts = 0;
  const server: Server = createServer((s) => {
    attempts++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const run = npmStart(`redis://127.0.0.1:${port}`);
  await waitFor(async () => attempts >= 2, 30_000, 20);
  const t0 = Date.now();
  run.npm.kill('SIGTERM'); // npm alone, as a process manager that started `npm start`; npm forwards it
  await expectStartGivenUp(run, 'SIGTERM', t0, port);
}, 60_000);

test('npm start: Ctrl-C (SIGINT to the process group) while Redis is still loading its data gives the start up: exit 0, nothing left', async () => {
  // A real redis-server that takes ~15 s to load its dump (key-load-delay) and answers LOADING meanwhile.
  const dir = mkdtempSync(join(tmpdir(), 'sc-loading-redis-'));
  dirs.push(dir);
  const port = await testPort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
  const filler = spawnRedisServer(args, { stdio: 'ignore' });
  await waitReady(port, 10_000, filler.pid);
  const c = new Redis(port, '127.0.0.1');
  await c.eval("for i = 1, 3000 do redis.call('SET', 'k' .. i, 'v') end return 1", 0);
  await c.save();
  c.disconnect();
  // The dump is complete once SAVE has answered: the filler is killed (after a SHUTDOWN NOSAVE its exit
  // took 10.5 s in a run of this file, most of the test's time).
  filler.kill('SIGKILL');
  await waitFor(async () => filler.exitCode !== null || filler.signalCode !== null, 10_000, 20);
  const loading = spawnRedisServer([...args, '--key-load-delay', '5000', '--loading-process-events-interval-bytes', '1024'], { stdio: 'ignore' });
  cleanups.push(() => {
    loading.kill('SIGKILL');
  });
  // Loading: PING is answered LOADING (not PONG) for the next seconds.
  await waitFor(async () => /LOADING/.test(spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout), 10_000, 50);

  const run = npmStart(`redis://127.0.0.1:${port}`);
  // The service is in its start once it holds a connection to the loading Redis.
  await waitFor(async () => connectionsTo(port) > 0, 30_000, 20);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  process.kill(-run.npm.pid!, 'SIGINT'); // the terminal's Ctrl-C: npm and the service both get it, npm forwards its copy
  await expectStartGivenUp(run, 'SIGINT', t0, port);
  // Still loading: the start was given up, not completed.
  expect(spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout).toMatch(/LOADING/);
}, 60_000);
