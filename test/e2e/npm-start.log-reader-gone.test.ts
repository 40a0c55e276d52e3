/**
 * A role process whose log reader goes away, or stops reading, still exits after SIGTERM (docs/operations.md,
 * "Shutdown"). Its logger (src/lib/logger.ts) writes stdout asynchronously and flushes what is still
 * buffered synchronously in the process's 'exit' event; sonic-boom retried that flush's write errors for
 * ever: EPIPE (the reader gone: a killed log pipe, `npm start | tee` with tee gone, the orphan of a killed
 * test) and EAGAIN (a full pipe nobody reads). The process logged its clean shutdown, called
 * process.exit and then hung for ever in its 'exit' event, ignoring further SIGTERMs.
 *
 * A child with the service's logger whose stdout is a socket with its parent end destroyed, and a real
 * `workers/scheduler.ts` child (LOG_LEVEL=debug) whose stdout is a FIFO this test holds open, fills and
 * never reads.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serviceEnv } from '../helpers/npm-start.js';
import { testPort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/service.js';
import { FAKE_CLOCK_ENV } from '../helpers/worker-process.js';

/** Far above the exit's bounded flush (EXIT_FLUSH_MS, 1 s) and the shutdown itself. */
const EXITS_WITHIN_MS = 15_000;
const STARTED = /syndicast started/;

let redis: TestRedis;
const children: ChildProcess[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function scheduler(stdout: 'pipe' | number): Promise<ChildProcess> {
  const root = resolve(import.meta.dirname ?? '.', '../..');
  const env = serviceEnv(redis.env, await testPort(), { LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT_MS: '5000' });
  dirs.push(env['DATA_DIR']!);
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'workers/scheduler.ts')], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...FAKE_CLOCK_ENV, ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  children.push(child);
  child.stderr?.resume();
  return child;
}

/** The exit code once the child has exited, or 'hung' after EXITS_WITHIN_MS. */
async function exitAfterSigterm(child: ChildProcess): Promise<number | string | null> {
  const exited = new Promise<number | string | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  child.kill('SIGTERM');
  return await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('hung'), EXITS_WITHIN_MS).unref())]);
}

/**
 * The EPIPE case in a child of its own with the service's logger (the role's shutdown logs its first line
 * long before it exits, and that line's EPIPE turned the logger off in time): lines logged just before
 * process.exit, nothing logged since the reader went, as a role's last shutdown lines.
 */
test('the reader of its stdout gone (EPIPE), lines logged right before process.exit do not hold the exit', async () => {
  const logger = pathToFileURL(resolve(import.meta.dirname ?? '.', '../../src/lib/logger.ts')).href;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { createLogger } = await import(${JSON.stringify(logger)});
       const log = createLogger('debug');
       process.on('SIGTERM', () => {
         for (let i = 0; i < 1000; i++) log.debug({ i, pad: 'x'.repeat(200) }, 'shutdown step');
         process.exit(0);
       });
       setInterval(() => undefined, 1000);
       process.stderr.write('ready\\n');`,
    ],
    { cwd: resolve(import.meta.dirname ?? '.', '../..'), env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor(async () => err.includes('ready'), 30_000, 50);
  child.stdout!.destroy(); // the log reader gone
  expect(await exitAfterSigterm(child)).toBe(0);
}, 60_000);

test('its stdout a full pipe nobody reads (EAGAIN), a role still exits 0 after SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'syndicast-fifo-'));
  dirs.push(dir);
  const fifo = join(dir, 'stdout');
  execFileSync('mkfifo', [fifo]);
  // Held open read-write (the child never sees EPIPE), non-blocking: read for the start, then filled.
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  try {
    const child = await scheduler(fd);
    let out = '';
    const chunk = Buffer.alloc(65_536);
    const drain = (): void => {
      for (;;) {
        try {
          const n = readSync(fd, chunk);
          if (n <= 0) return;
          out += chunk.subarray(0, n).toString();
        } catch {
          return; // EAGAIN: empty for now
        }
      }
    };
    await waitFor(async () => (drain(), STARTED.test(out)), 60_000, 100);
    // Filled up: every write of the child's now gives EAGAIN, and nobody reads any more.
    const fill = Buffer.alloc(4096, 'x');
    for (;;) {
      try {
        if (writeSync(fd, fill) === 0) break;
      } catch {
        break;
      }
    }
    expect(await exitAfterSigterm(child)).toBe(0);
  } finally {
    closeSync(fd);
  }
}, 90_000);
