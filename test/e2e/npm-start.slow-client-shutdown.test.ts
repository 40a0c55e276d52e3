/**
 * SIGTERM while a client is still sending its request: `npm start`'s entry (src/main/all.ts) as a child
 * process, a few connections that send a request line and then one header line a second and never
 * finish (a slow client, or a slowloris). app.close() waited for those requests without bound: every
 * SIGTERM sat out all of SHUTDOWN_TIMEOUT_MS, close-with-grace then killed the process ("killed by
 * timeout", exit 1) before the workers handed their jobs back or Redis was closed. Now the connections
 * whose requests have not finished APP_CLOSE_GRACE_MS (5 s) after the close began are cut, and the
 * shutdown goes on: exit 0 well within SHUTDOWN_TIMEOUT_MS.
 */
import { connect, type Socket } from 'node:net';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

let redis: TestRedis;
let child: WorkerProcess | undefined;
const sockets: Socket[] = [];
const timers: NodeJS.Timeout[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  await child?.kill('SIGKILL');
  await redis?.destroy();
});

test('npm start: a client that never finishes its request does not hold SIGTERM for SHUTDOWN_TIMEOUT_MS; exit 0 soon after the grace', async () => {
  const started = await startAllProcess(redis.env, { SHUTDOWN_TIMEOUT_MS: '20000', SHUTDOWN_DRAIN_MS: '0' });
  child = started.child;
  const { port } = new URL(started.url);
  const closed: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const s = connect(Number(port), '127.0.0.1');
    await new Promise<void>((res, rej) => s.once('connect', res).once('error', rej));
    s.on('error', () => undefined);
    closed.push(false);
    s.once('close', () => (closed[i] = true));
    s.write(i === 0 ? 'GET /health/live HTTP/1.1\r\nHost: x\r\n' : 'POST /v1/partners/p/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type"');
    // One more header line (or body byte) a second: never idle, never finished.
    timers.push(setInterval(() => s.writable && s.write(i === 0 ? 'X-Slow: 1\r\n' : ' '), 1000));
    sockets.push(s);
  }
  // The connections are in the server's hands (the request started).
  await new Promise((r) => setTimeout(r, 500));

  const exited = new Promise<number | string | null>((res) => child!.proc.once('exit', (code, signal) => res(code ?? signal)));
  const t0 = Date.now();
  child.proc.kill('SIGTERM');
  let hung: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'hung'>((r) => (hung = setTimeout(() => r('hung'), 30_000)))]);
  clearTimeout(hung);
  const tookMs = Date.now() - t0;

  expect({ code, killedByTimeout: /killed by timeout/.test(child.output()) }).toEqual({ code: 0, killedByTimeout: false });
  // The 5 s grace and the rest of the shutdown, not SHUTDOWN_TIMEOUT_MS (20 s).
  expect(tookMs).toBeLessThan(15_000);
  expect(closed).toEqual([true, true, true]);
}, 90_000);
