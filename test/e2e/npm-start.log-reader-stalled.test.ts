/**
 * The API role (`npm run start:api`) while the reader of its stdout is alive but does not read (`npm
 * start | slow-consumer`, a stuck log shipper, a terminal paused with Ctrl-S): its loggers (createLogger's
 * and Fastify's) wrote stdout through asynchronous sonic-booms, which kept every line they could not
 * write in memory and retried for ever. A busy process (every request is logged at info, every hostile
 * one at warn) grew by the size of what it logged until it was OOM-killed. Now the process's loggers
 * share one stdout stream whose buffer is capped (src/lib/logger.ts, STDOUT_BUFFER_MAX_BYTES, 16 MiB): the
 * lines over it are dropped and counted (syndicast_log_lines_dropped_total), and once the reader reads
 * again the process logs how many (`N log lines dropped while stdout was not read`), still answers, and
 * exits 0 on SIGTERM.
 *
 * The child's stdout is a pipe this test stops reading (its stream paused: Node stops reading the pipe
 * once its own small buffer is full, the kernel's fills, and every write of the child's gets EAGAIN)
 * while it sends 15,000 requests whose logged URL is 12 KB: ~180 MB of log lines. The child's resident
 * memory grew by 189 MiB meanwhile before; now by ~10 MiB (the bound: 64 MiB).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { resolve } from 'node:path';
import { serviceEnv } from '../helpers/npm-start.js';
import { testPort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, waitFor } from '../helpers/service.js';
import { FAKE_CLOCK_ENV } from '../helpers/worker-process.js';

/** Requests sent while stdout is not read, each logged with its ~12 KB URL (fastify's `incoming request`). */
const REQUESTS = 15_000;
const URL_BYTES = 12_000;
const CONCURRENCY = 16;
/** Resident memory growth allowed while stdout is not read: the cap and a wide margin, far below the ~180 MB logged. */
const GROWTH_BOUND = 64 * 1024 * 1024;

let redis: TestRedis;
let child: ChildProcess | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await redis?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** VmRSS of `pid` in bytes (/proc/<pid>/status). */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** `count` GETs of `path` over CONCURRENCY keep-alive connections; the statuses seen. */
async function flood(port: number, path: string, count: number): Promise<Map<number, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const statuses = new Map<number, number>();
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((res, rej) => {
      const req = request({ host: '127.0.0.1', port, path, agent }, (r) => {
        statuses.set(r.statusCode ?? 0, (statuses.get(r.statusCode ?? 0) ?? 0) + 1);
        r.resume();
        r.on('end', res);
      });
      req.on('error', rej);
      req.end();
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (sent < count) {
        sent++;
        await one();
      }
    }),
  );
  agent.destroy();
  return statuses;
}

test('stdout not read: memory stays bounded, the drops are logged once it is read again, SIGTERM exits 0', async () => {
  const root = resolve(import.meta.dirname ?? '.', '../..');
  const port = await testPort();
  const env = serviceEnv(redis.env, port, { LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '5000' });
  dirs.push(env['DATA_DIR']!);
  const proc = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'src/main/api.ts')], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...FAKE_CLOCK_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  let out = '';
  let err = '';
  const read = (d: Buffer): void => void (out += d.toString());
  proc.stdout!.on('data', read);
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string | null>((r) => proc.once('exit', (code, signal) => r(code ?? signal)));
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200, 60_000, 200);
  const path = `/nothing-here?pad=${'x'.repeat(URL_BYTES)}`;
  // Warmed up while stdout is read (its heap and code at their working size), then no longer read.
  await flood(port, path, 1000);
  proc.stdout!.off('data', read);
  proc.stdout!.pause();
  await new Promise((r) => setTimeout(r, 500));
  const before = rss(proc.pid!);
  const statuses = await flood(port, path, REQUESTS);
  const growth = rss(proc.pid!) - before;
  process.stderr.write(`RSS growth while stdout was not read: ${(growth / 1048576).toFixed(1)} MiB\n`);
  expect([...statuses.keys()]).toEqual([404]);
  expect(growth).toBeLessThan(GROWTH_BOUND);

  // Read again: the process says what it dropped, still answers, and counts the drops.
  const readAgain = out.length;
  proc.stdout!.on('data', read);
  proc.stdout!.resume(); // (a 'data' listener alone does not resume a stream paused by pause())
  await fetch(`http://127.0.0.1:${port}/health/live`);
  await waitFor(async () => /log lines dropped while stdout was not read/.test(out.slice(readAgain)), 20_000, 100);
  const dropped = out
    .slice(readAgain)
    .split('\n')
    .filter((l) => l.includes('log lines dropped while stdout was not read'))
    .map((l) => JSON.parse(l) as { level: number; droppedLines: number; droppedBytes: number });
  expect(dropped[0]).toMatchObject({ level: 40 });
  expect(dropped[0]!.droppedLines).toBeGreaterThan(REQUESTS);
  expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
  const counted = /^syndicast_log_lines_dropped_total (\d+)$/m.exec(metrics);
  expect(Number(counted?.[1])).toBeGreaterThanOrEqual(dropped[0]!.droppedLines);

  proc.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(err).not.toMatch(/heap out of memory/);
}, 120_000);
