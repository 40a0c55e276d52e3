/**
 * Spawns a private redis-server per test file: ephemeral port, temp dir, AOF on (so a test can kill
 * and restart it and keep the data). Tests never mock Redis.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type Cluster } from 'ioredis';
import { testPort } from './ports.js';

export interface TestRedis {
  topology: 'single' | 'cluster';
  /** One node's URL (for a cluster: a seed node; use `env`/`client()` to reach the whole cluster). */
  url: string;
  /** What a service process needs to reach this Redis: REDIS_URL, or REDIS_CLUSTER_NODES for a cluster. */
  env: Record<string, string>;
  /** A new client for this Redis (a Cluster client for a cluster); the caller disconnects it. */
  client(): Redis | Cluster;
  port: number;
  dir: string;
  /** Stop the server (SIGKILL by default: a crash; data written with appendfsync always survives). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and dir. */
  start(): Promise<void>;
  /** Stop and delete the temp dir. */
  destroy(): Promise<void>;
}

let pdeathsig: boolean | undefined;

/**
 * Spawns a test's redis-server so that it dies with the test process: through `setpriv --pdeathsig
 * KILL` (util-linux), which sets the kernel's parent-death signal and then execs redis-server in
 * its own place. So the child's pid is redis-server's own (waitReady compares it with INFO's
 * process_id; crash tests send it SIGKILL, SIGSTOP, SIGCONT) and no watchdog process is in between;
 * yet when the jest process that spawned it dies (killed, `kill -9`, a CI timeout) the kernel kills
 * the server at once. Before, such a run left every redis-server it had started running. Where
 * setpriv cannot do that (not Linux, no util-linux), redis-server is spawned as before.
 *
 * A jest run of several files spawns from its workers (child processes), which outlive a jest
 * killed with SIGKILL (they do not watch their parent): each worker that starts a Redis gets one
 * watchdog (a `sh` polling jest's pid once a second) that kills the worker once jest is gone, and
 * so its servers. The watchdog has the worker as its parent-death signal too: it never outlives the
 * worker, so it cannot signal a pid reused after the worker ended.
 *
 * One per worker, not one per test file: jest gives every test file its own module registry, so a
 * flag in this module is new for each file. It was, and each file that started a Redis left one more
 * watchdog in its worker, each forking `sleep` every second: about 180 of them 26 minutes into a
 * fresh-clone CI, which then ran at a fraction of its speed (4,407 s for a suite of about 1,300).
 * The mark is a file named after jest's and the worker's pids, which every registry sees.
 */
function watchWorkerOnce(): void {
  if (!/jest-worker[\\/]build[\\/]processChild\.js$/.test(process.argv[1] ?? '')) return;
  const marks = join(tmpdir(), 'syndicast-jest-watchdogs');
  mkdirSync(marks, { recursive: true });
  try {
    closeSync(openSync(join(marks, `${process.ppid}-${process.pid}`), 'wx'));
  } catch {
    return; // this worker has its watchdog (or no mark can be made: then none; its servers still die with it)
  }
  const watchdog = spawn(
    'setpriv',
    ['--pdeathsig', 'KILL', '--', 'sh', '-c', 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -KILL "$2"', 'jest-watchdog', String(process.ppid), String(process.pid)],
    { stdio: 'ignore' },
  );
  watchdog.unref();
}

export function spawnRedisServer(args: string[], opts: SpawnOptions = {}): ChildProcess {
  pdeathsig ??= spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;
  if (!pdeathsig) return spawn('redis-server', args, opts);
  watchWorkerOnce();
  return spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'redis-server', ...args], opts);
}

/**
 * Ends a one-off connection (no reconnects). One that was refused has ended already (status `end`):
 * a disconnect() then arms ioredis' 2 s "stream still open" timer on its closed socket, whose close
 * event came before and never comes again, so the timer keeps jest waiting after the last test ("did
 * not exit one second after": a redis-server started again near a test file's end, while the first
 * probes of waitReady were refused).
 */
export function closeProbe(c: Redis): void {
  if (c.status !== 'end') c.disconnect();
}

/**
 * Ends a one-off connection that answered and waits (≤ 3 s) for its socket to close: disconnect()
 * arms the same 2 s timer, cleared by the close that needs the server's reply to our FIN. On a loaded
 * machine that took longer than the caller's next step, and the timer outlived waitReady (CI of
 * stop 40: redis-probe.open-handles saw it 100 ms after a restart).
 */
export async function endProbe(c: Redis): Promise<void> {
  if (c.status === 'end') return;
  const ended = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3000);
    c.once('end', () => {
      clearTimeout(t);
      resolve();
    });
  });
  c.disconnect();
  await ended;
}

export async function waitReady(port: number, timeoutMs = 10_000, pid?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    c.on('error', () => undefined); // refused until the server listens: the catch below retries
    let answeredBy: number | undefined;
    try {
      await c.connect();
      await c.ping();
      answeredBy = pid === undefined ? undefined : Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
      await endProbe(c);
    } catch {
      closeProbe(c);
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    // Another test file's server on the port we picked (ports are picked free and bound later).
    if (pid !== undefined && answeredBy !== pid) throw new PortTakenError(port);
    return;
  }
}

/** Our redis-server did not get the port it was given (another test file's server took it first). */
class PortTakenError extends Error {
  constructor(port: number, what = 'is answered by another redis-server') {
    super(`redis-server on port ${port}: ${what} (ports are picked free and bound later; another test file may have taken it)`);
  }
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'syndicast-redis-'));
  let port = await testPort();
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (proc && proc.exitCode === null && proc.signalCode === null) return; // already running
    const p = spawnRedisServer(
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction', '--loglevel', 'warning'],
      { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C' } }, // byte order for Lua's string compare, as embedded-redis.ts
    );
    proc = p;
    // Ours exits at once when the port is in use; waiting for it to answer then would only time out.
    const exited = new Promise<never>((_, reject) => p.once('exit', (code) => reject(new PortTakenError(port, `exited (${code ?? 'signal'}) before it answered`))));
    exited.catch(() => undefined);
    await Promise.race([waitReady(port, 10_000, p.pid), exited]);
  };
  const stop = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = proc;
    proc = undefined;
    // (A server that died of a signal — the OOM killer, a test's SIGKILL — has exited too, with exitCode
    // null: its 'exit' came before and never comes again, so waiting for it held destroy() for ever.)
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  };
  // The first start may lose its port to another test file's server: start again on a new port
  // (a restart keeps its port, as a test that restarts Redis expects).
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      await stop();
      if (!(err instanceof PortTakenError) || attempt >= 3) throw err;
      port = await testPort();
    }
  }
  const url = `redis://127.0.0.1:${port}`;
  return {
    topology: 'single',
    url,
    env: { REDIS_URL: url },
    client: () => new Redis(url),
    port,
    dir,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** BullMQ's failed jobs under `prefix` (every queue: its `…:failed` sorted set), up to 6 per queue, each with its failedReason. */
export async function failedJobs(redisUrl: string, prefix: string): Promise<string[]> {
  const c = new Redis(redisUrl);
  try {
    const failed: string[] = [];
    for (const key of await c.keys(`${prefix}:*:failed`)) {
      if ((await c.type(key)) !== 'zset') continue;
      for (const id of await c.zrange(key, 0, 5)) failed.push(`${key} ${id}: ${await c.hget(key.replace(/failed$/, id), 'failedReason')}`);
    }
    return failed;
  } finally {
    c.disconnect();
  }
}
