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
import { tcpOpen } from '../../src/lib/net.js';
import { testPort } from '../helpers/ports.js';
import { killGroupsLeft, killQuietly, leftOfGroup, npmRun, readCmd, type NpmRun } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';

const GONE_WITHIN_MS = 10_000;

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  killGroupsLeft();
  await redis?.destroy();
});

/** After SIGTERM to npm alone: what is left of its group (and which of `ports` is open) once GONE_WITHIN_MS passed or all is gone. */
async function leftAfter(run: NpmRun, sentAt: number, ports: number[]): Promise<{ processesLeft: string[]; portsOpen: number[] }> {
  const { pids, portsOpen } = await leftOfGroup(run.npm.pid!, ports, sentAt, GONE_WITHIN_MS);
  const processesLeft = pids.map(readCmd);
  for (const pid of pids) killQuietly(pid);
  return { processesLeft, portsOpen };
}

test('npm run sim: SIGTERM to the npm process alone closes the simulators and leaves no process behind', async () => {
  const [port, rtmpPort] = [await testPort(), await testPort()];
  const run = npmRun(['run', 'sim'], { SIM_PORT: String(port), SIM_RTMP_PORT: String(rtmpPort), SIM_HOST: '127.0.0.1' });
  await waitFor(async () => run.output().includes('Platform simulators listening') && (await tcpOpen(port)), 60_000, 200);
  const t0 = Date.now();
  run.npm.kill('SIGTERM');
  expect(await leftAfter(run, t0, [port, rtmpPort])).toEqual({ processesLeft: [], portsOpen: [] });
  expect(run.output()).toContain('SIGTERM: closing simulators');
}, 90_000);

test('npm run demo: SIGTERM to the npm process alone stops the service, the relay and the simulators and removes the demo keys', async () => {
  const run = npmRun(['run', 'demo'], { ...redis.env, ...(process.env['FFMPEG_PATH'] ? { FFMPEG_PATH: process.env['FFMPEG_PATH'] } : {}) });
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
    // A clean stop exits 0, as `npm start` does (it exited 143 and npm reported the script failed).
    let wait: NodeJS.Timeout | undefined;
    const { code, signal } = await Promise.race([run.exit, new Promise<{ code: 'running'; signal: null }>((r) => (wait = setTimeout(() => r({ code: 'running', signal: null }), 1000)))]);
    clearTimeout(wait);
    expect({ npmExit: code ?? signal, output: run.output() }).toEqual({ npmExit: 0, output: expect.not.stringMatching(/command failed|signal SIGTERM/) });
    expect(await c.keys(`${prefix!}:*`)).toEqual([]);
  } finally {
    c.disconnect();
  }
}, 180_000);
