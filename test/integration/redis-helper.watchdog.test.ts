/**
 * The helper's jest-worker watchdog (test/helpers/redis-server.ts) is started once per worker, not
 * once per test file. A module-level flag marked the worker as watched, but jest gives each test file
 * its own module registry: every file that started a Redis left one more watchdog polling (a fork
 * of `sleep` a second each) for the rest of the worker's life. About 180 of them ran 26 minutes into a
 * fresh-clone CI, which took 4,407 s instead of about 1,300. A child jest run spreads six fixture
 * files over two workers; each file counts its own worker's watchdogs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const pdeathsig = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;

(pdeathsig ? test : test.skip)('each jest worker has one watchdog however many test files it runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'syndicast-watchdog-'));
  const report = join(dir, 'report.jsonl');
  const jestConfig = ((await import(pathToFileURL(join(process.cwd(), 'jest.config.js')).href)) as { default: Record<string, unknown> }).default;
  try {
    const child = spawn(
      process.execPath,
      [
        '--experimental-vm-modules',
        '--no-warnings',
        'node_modules/jest/bin/jest.js',
        '--maxWorkers=2',
        // No timings from earlier runs: jest would run six fast files in band (no worker, no watchdog).
        `--cacheDirectory=${join(dir, 'cache')}`,
        // The project's jest config (its transform strips types file by file: CI time), the fixtures as
        // its tests. What is counted (watchdogs per worker) does not depend on the transform.
        '--config',
        JSON.stringify({
          ...jestConfig,
          rootDir: process.cwd(),
          testMatch: ['<rootDir>/test/fixtures/jest-watchdog/*.fixture.ts'],
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WATCHDOG_REPORT: report, SYNDICAST_TEST_PORT_BLOCKS_AFTER: '3' } }, // ports apart from this run's 3 workers (test/helpers/ports.ts)
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    const rows = readFileSync(report, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; worker: number; watchdogs: number });
    expect(rows).toHaveLength(6);
    // The run used workers, and at least one of them ran several files (where the old helper added one each).
    const perWorker = new Map<number, number>();
    for (const r of rows) perWorker.set(r.worker, (perWorker.get(r.worker) ?? 0) + 1);
    expect(Math.max(...perWorker.values())).toBeGreaterThan(1);
    expect(rows.map((r) => [r.file, r.watchdogs])).toEqual(rows.map((r) => [r.file, 1]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
