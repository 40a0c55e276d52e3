/**
 * The redis-servers test files start die with the test process: a jest run killed (`kill -9`, a CI
 * timeout) left every redis-server it had started running (test/helpers/redis-server.ts
 * spawnRedisServer: the kernel's parent-death signal, set by setpriv before it execs redis-server).
 * The server's pid stays the child's own: tests that freeze or crash Redis signal that pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from '../helpers/service.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const pdeathsig = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;

(pdeathsig ? test : test.skip)('a redis-server started through the helper exits when the process that started it is killed', async () => {
  const helper = resolve('test/helpers/redis-server.ts');
  // A stand-in for a test process: starts a Redis, says where it is, then waits to be killed.
  const code = `const { startRedis } = await import(${JSON.stringify(helper)});
const r = await startRedis();
const c = r.client();
const pid = Number(/process_id:(\\d+)/.exec(await c.info('server'))[1]);
c.disconnect();
console.log(JSON.stringify({ port: r.port, dir: r.dir, pid }));
setInterval(() => undefined, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let info: { port: number; dir: string; pid: number } | undefined;
  try {
    info = await waitFor(async () => (out.includes('\n') ? (JSON.parse(out.split('\n')[0]!) as { port: number; dir: string; pid: number }) : undefined), 30_000);
    // The pid the test process holds is the server's own (INFO process_id), not a wrapper's.
    expect(alive(info.pid)).toBe(true);
    const probe = new Redis({ port: info.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    await probe.connect();
    expect(await probe.ping()).toBe('PONG');
    probe.disconnect();
    child.kill('SIGKILL');
    await exited;
    const pid = info.pid;
    await waitFor(async () => !alive(pid), 5_000);
  } finally {
    child.kill('SIGKILL');
    // on the old helper: the orphan this test found, stopped here
    if (info && alive(info.pid)) process.kill(info.pid, 'SIGKILL');
    if (info) rmSync(info.dir, { recursive: true, force: true });
  }
}, 60_000);
