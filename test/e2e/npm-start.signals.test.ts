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
import { rmSync } from 'node:fs';
import { testPort } from '../helpers/ports.js';
import { groupPids, killGroupsLeft, killQuietly, leftOfGroup, npmRun, readCmd, serviceEnv, type NpmRun } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

/** Docker's default stop grace: the whole tree must be gone by then. */
const GONE_WITHIN_MS = 10_000;

let redis: TestRedis;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  // Whatever a failed run left behind: the processes of our own npm's group, one by one.
  killGroupsLeft();
  await redis?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface NpmStart extends NpmRun {
  port: number;
}

/** `npm start` in its own process group (as a terminal or a process manager runs it); resolves once ready. */
async function npmStart(): Promise<NpmStart> {
  const port = await testPort();
  const env = serviceEnv(redis.env, port, { LOG_LEVEL: 'info' });
  dirs.push(env['DATA_DIR']!);
  const run = npmRun(['start'], env);
  await waitFor(async () => run.output().includes('syndicast started') && (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200, 60_000, 200);
  return { ...run, port };
}

/** After the signal: the tree gone, the port closed and no client left on Redis, within GONE_WITHIN_MS. */
async function expectStoppedGracefully(started: NpmStart, signal: NodeJS.Signals, sentAt: number): Promise<void> {
  const pgid = started.npm.pid!;
  const { pids: left, portsOpen } = await leftOfGroup(pgid, [started.port], sentAt, GONE_WITHIN_MS);
  const c = redis.client();
  const clients = String(await c.client('LIST')).trim().split('\n').length - 1; // without this one
  c.disconnect();
  const { code, signal: bySignal } = await Promise.race([started.exit, new Promise<{ code: 'running'; signal: null }>((r) => setTimeout(() => r({ code: 'running', signal: null }), 100))]);
  const out = started.output();
  const processesLeft = left.map((pid) => readCmd(pid));
  // Orphans must not hold this file's Redis or ports for the next test.
  for (const pid of left) killQuietly(pid);
  await waitFor(async () => groupPids(pgid).length === 0, 5_000, 50);
  expect({ processesLeft, portOpen: portsOpen.length > 0, redisClients: clients, npmExit: code ?? bySignal }).toEqual({
    processesLeft: [],
    portOpen: false,
    redisClients: 0,
    npmExit: 0,
  });
  expect(out).toMatch(new RegExp(`"signal":"${signal}","msg":"shutting down"`));
  expect(out).not.toMatch(/second SIG|killed by timeout/);
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

test('npm start: the same SIGINT twice in a row at the service (the group\'s copy and npm\'s forwarded one, racing) is still one graceful shutdown', async () => {
  // The Ctrl-C test above depends on npm's forwarded copy arriving while the service is still shutting
  // down; here both copies reach the service back to back, so the "same signal twice" rule is always met.
  const started = await npmStart();
  const service = groupPids(started.npm.pid!).find((pid) => pid !== started.npm.pid && readCmd(pid).includes('src/main/all.ts'));
  expect(service).toBeDefined();
  const t0 = Date.now();
  process.kill(service!, 'SIGINT');
  process.kill(service!, 'SIGINT');
  await expectStoppedGracefully(started, 'SIGINT', t0);
}, 90_000);
