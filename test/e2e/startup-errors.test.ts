/**
 * Startup failures a new operator meets print a paragraph, not a stack (issue 11 item 7), tried with
 * real child processes: `npm start`'s entry (src/main/all.ts) with an unreachable REDIS_URL (names the
 * URL, says what was tried, exits 1 within seconds) and with a DATA_DIR it cannot create; and the
 * embedded redis-server (a real one) refusing a damaged append-only file: its own words come through.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../src/lib/net.js';
import { RedisUnavailableError, resolveRedis } from '../../src/store/embedded-redis.js';

const root = resolve(import.meta.dirname ?? '.', '../..');

function start(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'src/main/all.ts')], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', PORT: '0', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => res({ code, out }));
  });
}

const noStack = (out: string): void => {
  expect(out).not.toMatch(/^\s+at .+[:(]/m);
  expect(out).not.toMatch(/node:internal|Error: /);
};

test('an unreachable REDIS_URL: one paragraph naming the URL (password hidden) and what was tried; exit 1', async () => {
  const port = await freePort();
  const { code, out } = await start({ REDIS_URL: `redis://:hunter2@127.0.0.1:${port}/0`, DATA_DIR: mkdtempSync(join(tmpdir(), 'sc-start-')) });
  expect(code).toBe(1);
  expect(out).toContain(`REDIS_URL=redis://:***@127.0.0.1:${port}/0`);
  expect(out).toMatch(/tried 5 times/);
  expect(out).toMatch(/ECONNREFUSED/);
  expect(out).not.toContain('hunter2');
  noStack(out);
}, 60_000);

test('a DATA_DIR that cannot be created: a paragraph naming it and what to set instead; exit 1', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'sc-start-'));
  writeFileSync(join(parent, 'a-file'), 'not a directory');
  const dataDir = join(parent, 'a-file', 'data');
  const { code, out } = await start({ DATA_DIR: dataDir });
  expect(code).toBe(1);
  expect(out).toContain(`data directory ${dataDir}`);
  expect(out).toMatch(/ENOTDIR/);
  expect(out).toMatch(/DATA_DIR=/);
  expect(out).toMatch(/SECRETS_KEY and ADMIN_API_KEY/);
  noStack(out);
}, 60_000);

test("the embedded redis-server's own error comes through (a damaged AOF manifest), not a false 'install redis-server'", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-start-'));
  mkdirSync(join(dataDir, 'redis', 'appendonlydir'), { recursive: true });
  writeFileSync(join(dataDir, 'redis', 'appendonlydir', 'appendonly.aof.manifest'), 'this is not a manifest\n');
  const closed = `redis://127.0.0.1:${await freePort()}`; // nothing answers where the default Redis would be
  const err = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl: closed }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RedisUnavailableError);
  const msg = (err as Error).message;
  expect(msg).toMatch(/redis-server said:/);
  expect(msg).toMatch(/manifest/i);
  expect(msg).toContain(join(dataDir, 'redis'));
  expect(msg).not.toMatch(/install/);
}, 60_000);
