/**
 * The redis-server that the zero-configuration `npm start` spawns (src/store/embedded-redis.ts) does
 * not outlive the process that spawned it, however that process ends. A graceful shutdown stops it;
 * but every other end — SIGKILL, the OOM killer, close-with-grace's exit 1 after SHUTDOWN_TIMEOUT_MS,
 * a second SIGTERM, a SIGTERM during the start before the signal handlers are set — left it running
 * (it ignores SIGPIPE, so the closed pipes did not end it either). Each such end left one more
 * redis-server behind, and the next `npm start` (nothing on 127.0.0.1:6379, the orphan is on a
 * random port) spawned a second one on the same DATA_DIR/redis append-only files. Tried with a real
 * child process that spawns it the way `npm start` does and is then SIGKILLed: the server ends
 * (SIGTERM from the kernel: it flushes its AOF first), and what was written is there at the next start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { resolveRedis, type ResolvedRedis } from '../../src/store/embedded-redis.js';
import { testPort } from '../helpers/ports.js';
import { hasPdeathsig } from '../../src/lib/pdeathsig.js';
import { waitFor } from '../helpers/service.js';

const root = resolve(import.meta.dirname ?? '.', '../..');
let child: ChildProcess | undefined;
let serverPid: number | undefined;
let again: ResolvedRedis | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await again?.stop();
  // A server the old code left running.
  if (serverPid !== undefined && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

(hasPdeathsig() ? test : test.skip)('the spawned redis-server ends when the process that spawned it is SIGKILLed, and keeps what was written', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-embedded-'));
  const localUrl = `redis://127.0.0.1:${await testPort()}`; // nothing answers where the default Redis would be
  const script = `
    import { resolveRedis } from ${JSON.stringify(resolve(root, 'src/store/embedded-redis.ts'))};
    const r = await resolveRedis({ dataDir: ${JSON.stringify(dataDir)}, appendfsync: 'everysec', localUrl: ${JSON.stringify(localUrl)} });
    process.stdout.write(JSON.stringify({ url: r.url, source: r.source }) + '\\n');
    setInterval(() => undefined, 1000);
  `;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const started = await waitFor(async () => (out.includes('\n') ? (JSON.parse(out.split('\n')[0]!) as { url: string; source: string }) : undefined), 30_000, 50);
  expect(started.source).toBe('spawned');

  const c = new Redis(started.url);
  serverPid = Number(/^process_id:(\d+)/m.exec(await c.info('server'))?.[1]);
  await c.set('written-before', 'yes');
  c.disconnect();
  expect(alive(serverPid)).toBe(true);

  await new Promise<void>((res) => {
    proc.once('exit', () => res());
    proc.kill('SIGKILL');
  });
  // The kernel's parent-death signal (SIGTERM): redis-server flushes its AOF and exits.
  const pid = serverPid;
  await waitFor(async () => !alive(pid), 10_000, 100).catch(() => undefined);
  expect(alive(pid)).toBe(false);

  // The next start spawns its server on the same files: what was written is there.
  again = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
  const c2 = new Redis(again.url);
  expect(await c2.get('written-before')).toBe('yes');
  await c2.quit();
}, 60_000);
