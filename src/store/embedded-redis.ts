/**
 * The zero-configuration Redis of README "What happens with no configuration": REDIS_URL when set; else 127.0.0.1:6379 when it
 * answers; else a redis-server from PATH with AOF under <dataDir>/redis; else a clear error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, tcpOpen } from '../lib/net.js';
import { withPdeathsig } from '../lib/pdeathsig.js';
import { throwIfStopped, unlessStopped } from '../lib/startup-stop.js';

/** A startup failure explained in a paragraph for a person (printed without a stack; exit 1). */
export class StartupError extends Error {}
export class RedisUnavailableError extends StartupError {}

/** The URL as it may be printed: a password is replaced by `***`. */
export function printableUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/**
 * mkdir -p one level at a time: Node 20's `mkdirSync(dir, { recursive: true })` never returns under
 * procfs (DATA_DIR=/proc/x span at 100 % CPU, deaf to SIGTERM, since the loop holds the event loop);
 * a plain mkdir there fails with ENOENT at once.
 */
function mkdirs(dir: string): void {
  const parent = dirname(dir);
  // A parent that is there is left to mkdir to judge (a file: ENOTDIR).
  if (parent !== dir && !existsSync(parent)) mkdirs(parent);
  try {
    mkdirSync(dir);
  } catch (err) {
    // There already: a directory is what was asked for; a file is not (EEXIST, as the recursive mkdir said).
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
  }
}

function writableDir(dir: string, what: string): void {
  try {
    mkdirs(dir);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new StartupError(
      `Syndicast cannot use its data directory ${dir} (${e.code ?? 'error'}: ${e.message}). It keeps ${what} there. ` +
        'Point DATA_DIR at a directory this user can create and write (for example DATA_DIR=/tmp/syndicast-data), ' +
        'or configure what it would keep there: REDIS_URL for Redis, SECRETS_KEY and ADMIN_API_KEY for the secrets.',
    );
  }
}
export { writableDir as assertWritableDir };

export const HOW_TO_GET_REDIS =
  'Syndicast keeps its data in Redis and could not find one. Set REDIS_URL to a Redis 6.2+ server ' +
  '(for example REDIS_URL=redis://127.0.0.1:6379), or start one on 127.0.0.1:6379, or install ' +
  'redis-server so that it is on PATH (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew ' +
  'install redis) and Syndicast will start its own with its data (AOF) under .data/redis. For ' +
  'production run Redis with appendonly yes and maxmemory-policy noeviction (see docker-compose.yml).';

/** Why a probe failed; `refused`: the server answered and said no (a password, a database), which a retry does not change. */
interface ProbeFailure {
  why: string;
  refused: boolean;
}

/** A server's error reply that is about the request, not a passing state (LOADING, BUSY, failover). */
function isRefusal(e: Error): boolean {
  return e.name === 'ReplyError' && !/^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY)\b/.test(e.message);
}

/**
 * Connect, PING and SELECT the URL's database through a throw-away client: null when all answered,
 * else why not. ioredis sends the URL's SELECT itself, but when the server refuses it (`ERR DB index is
 * out of range`) it only emits an 'error' and stays on database 0, where every write would then land:
 * the probe asks again and fails on the answer.
 */
/** A client for one look at a server: no retries, no offline queue; `commandTimeout` when given. */
function oneShotClient(url: string, connectTimeout: number, commandTimeout?: number): Redis {
  return new Redis(url, { lazyConnect: true, connectTimeout, commandTimeout, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
}

/** The `process_id` an `INFO server` reply names. */
function processIdOf(info: string): string | undefined {
  return /^process_id:(\d+)/m.exec(info)?.[1];
}

async function probe(url: string, timeoutMs = 800, stop?: AbortSignal): Promise<ProbeFailure | null> {
  const c = oneShotClient(url, timeoutMs);
  // A stop signal during the start ends the probe at once (its caller then gives up).
  const onStop = (): void => c.disconnect();
  stop?.addEventListener('abort', onStop, { once: true });
  // The socket's own error (ECONNREFUSED, ENOTFOUND, auth) arrives as an event; connect() then only says "Connection is closed".
  let socketError: NodeJS.ErrnoException | undefined;
  c.on('error', (e: NodeJS.ErrnoException) => (socketError ??= e));
  try {
    await c.connect();
    const pong = await c.ping();
    if (pong !== 'PONG') return { why: `answered ${pong}`, refused: false };
    const db = c.options.db ?? 0;
    if (db !== 0) await c.select(db);
    return null;
  } catch (err) {
    const e = socketError ?? (err as NodeJS.ErrnoException);
    return { why: [e.code, e.message].filter(Boolean).join(': ') || 'no answer', refused: isRefusal(e) };
  } finally {
    stop?.removeEventListener('abort', onStop);
    c.disconnect();
  }
}
async function answers(url: string, timeoutMs = 800, stop?: AbortSignal): Promise<boolean> {
  return (await probe(url, timeoutMs, stop)) === null;
}

/** The paragraph for a server that answered REDIS_URL and refused it. */
function refusedParagraph(url: string, why: string): string {
  const shown = printableUrl(url);
  let what = 'Check the URL against the server\'s settings.';
  if (/DB index/i.test(why)) {
    const db = /\/(\d+)$/.exec(new URL(url).pathname)?.[0] ?? '';
    what =
      `The number at the end of the URL (${db}) names a database this server does not have (a Redis has databases 0 to 15 unless its ` +
      '"databases" setting says otherwise). Use one it has, for example /0, or leave the number out (database 0).';
  } else if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(why)) {
    what = 'Check the user name and password in the URL (redis://user:password@host:port, or redis://:password@host:port for the default user).';
  } else if (/NOPERM/i.test(why)) {
    what = "The URL's user lacks a permission Syndicast needs: give it every command and key (ACL SETUSER <user> on allcommands allkeys), or use another user.";
  }
  return `Syndicast reached Redis at REDIS_URL=${shown}, but the server refused it: "${why}". ${what} Nothing was written. Fix REDIS_URL and start again.`;
}
export interface ResolvedRedis {
  url: string;
  source: 'env' | 'local' | 'spawned';
  stop(): Promise<void>;
}

/** In the spawned server's directory while it runs: `{pid, url, owner}` (owner: the process that spawned it), for another process started on the same DATA_DIR. */
const SPAWNED_RECORD = 'syndicast-redis.json';

/**
 * Taken (created exclusively) by the process that checks the directory for a running server, spawns its
 * own and records it (SPAWNED_RECORD), and removed once that is done: `{owner, at}`. The record is
 * written only once the server answers (after its AOF is loaded), so without it two processes started
 * at once (`npm run start:api` and `start:worker` together, without REDIS_URL) both found no record and
 * both spawned a redis-server on the same append-only files.
 */
const START_LOCK = 'syndicast-redis.lock';
/** A start lock this old is a start that died without removing it (a start holds it for ≈ 20 s at most). */
const START_LOCK_STALE_MS = 60_000;

/**
 * Takes the directory's start lock, waiting while another live process holds it (its start then ends
 * with its record written, which this process's check finds); a lock whose owner is gone, or older than
 * START_LOCK_STALE_MS, is taken over. Returns its release.
 */
async function takeStartLock(dir: string, stop: AbortSignal | undefined): Promise<() => void> {
  const path = join(dir, START_LOCK);
  for (;;) {
    try {
      writeFileSync(path, JSON.stringify({ owner: process.pid, at: Date.now() }) + '\n', { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let held: { owner?: unknown; at?: unknown } | undefined;
    let age = 0;
    try {
      age = Date.now() - statSync(path).mtimeMs;
      held = JSON.parse(readFileSync(path, 'utf8')) as typeof held;
    } catch {
      held = undefined; // gone meanwhile, or being written (created, not yet filled): looked at again
    }
    const ownerGone = held !== undefined && (typeof held.owner !== 'number' || !processAlive(held.owner));
    if (ownerGone || age > START_LOCK_STALE_MS) rmSync(path, { force: true });
    else await unlessStopped(new Promise((r) => setTimeout(r, 100)), stop);
    throwIfStopped(stop);
  }
}

/** Whether process `pid` exists (EPERM: it does, another user's). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The redis-server another process spawned in `dir` that still runs, or undefined: the recorded server
 * answers at its address with its own process id (a record a killed server left, or a pid reused by
 * another program, does not). A server whose owner is gone (the process that spawned it was killed
 * where no parent-death signal stops its children: no `setpriv`, not Linux) is an orphan nobody uses:
 * it is shut down here (SHUTDOWN writes its AOF) and undefined is returned, so that this start spawns
 * one on the same files instead of refusing to start until someone kills the orphan by hand.
 */
async function spawnedAlready(dir: string): Promise<{ pid: number; url: string } | undefined> {
  let rec: { pid?: unknown; url?: unknown; owner?: unknown };
  try {
    rec = JSON.parse(readFileSync(join(dir, SPAWNED_RECORD), 'utf8')) as typeof rec;
  } catch {
    return undefined;
  }
  const { pid, url, owner } = rec;
  if (typeof pid !== 'number' || typeof url !== 'string') return undefined;
  const c = oneShotClient(url, 800, 800);
  c.on('error', () => undefined);
  try {
    await c.connect();
    if (processIdOf(await c.info('server')) !== String(pid)) return undefined;
    if (typeof owner === 'number' && owner !== process.pid && !processAlive(owner)) {
      await c.call('SHUTDOWN').catch(() => undefined); // the connection closes as it stops: no answer
      for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      return processAlive(pid) ? { pid, url } : undefined;
    }
    return { pid, url };
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

/**
 * `stop`: a stop signal during the start; the probes and waits end at once with StartupStopped, a
 * redis-server spawned here is stopped first (SIGTERM: it flushes its AOF).
 */
export async function resolveRedis(opts: {
  url?: string | undefined;
  dataDir: string;
  appendfsync: 'always' | 'everysec';
  localUrl?: string;
  urlTries?: number;
  stop?: AbortSignal | undefined;
  /** The port for the own redis-server (tests: one another server holds); a free one by default. */
  pickPort?: () => Promise<number>;
}): Promise<ResolvedRedis> {
  const none = async (): Promise<void> => undefined;
  const { stop } = opts;
  if (opts.url) {
    // A few tries over ~5 s (a Redis that is still starting), then a paragraph instead of a stack.
    const tries = opts.urlTries ?? 5;
    let why = 'not tried';
    for (let i = 0; i < tries; i++) {
      const failed = await probe(opts.url, 1000, stop);
      throwIfStopped(stop);
      if (failed === null) return { url: opts.url, source: 'env', stop: none };
      // A refusal (a database the server does not have, a wrong password) stays one: no retries.
      if (failed.refused) throw new RedisUnavailableError(refusedParagraph(opts.url, failed.why));
      why = failed.why;
      if (i < tries - 1) await unlessStopped(new Promise((r) => setTimeout(r, 500)), stop);
    }
    throw new RedisUnavailableError(
      `Syndicast cannot reach Redis at REDIS_URL=${printableUrl(opts.url)}: it tried ${tries} times (a connection and a PING, 1 s each, ` +
        `0.5 s apart) and the last answer was "${why}". Check that Redis runs there and that this host may connect (address, port, ` +
        'password, TLS: rediss://). Unset REDIS_URL to let Syndicast use 127.0.0.1:6379 or start its own redis-server.',
    );
  }
  const local = opts.localUrl ?? 'redis://127.0.0.1:6379';
  if (await answers(local, 800, stop)) return { url: local, source: 'local', stop: none };
  throwIfStopped(stop);
  const dir = resolve(opts.dataDir, 'redis');
  writableDir(dir, "the data (AOF) of the redis-server it starts when no Redis is configured");
  // A second process on the same DATA_DIR (`npm start` in another terminal, or `npm run start:api` and
  // `start:worker` without REDIS_URL) started a second redis-server on the same append-only files: each
  // process saw only its own data (events the API took, no worker ever read), and the first AOF rewrite
  // of one server dropped everything the other had written.
  // Two started at once: the second waits for the first's start (the lock) and then finds its record.
  const release = await takeStartLock(dir, stop);
  try {
    return await spawnOwn(dir, opts.appendfsync, stop, opts.pickPort ?? samePortFirst(dir));
  } finally {
    release();
  }
}

/**
 * The pid of the redis-server answering `url` (its `INFO server`), or undefined when it does not say.
 * A port chosen free a moment ago can be taken by another server before ours binds it; ours then exits,
 * but the other one answers PING just the same: only the pid tells them apart.
 */
async function serverPid(url: string, stop: AbortSignal | undefined): Promise<number | undefined> {
  // A server that answers PING but stalls on INFO must not hold the start (the wait's deadline is not checked meanwhile).
  const c = oneShotClient(url, 800, 800);
  const onStop = (): void => c.disconnect();
  stop?.addEventListener('abort', onStop, { once: true });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const pid = processIdOf(await c.info('server'));
    return pid === undefined ? undefined : Number(pid);
  } catch {
    return undefined;
  } finally {
    stop?.removeEventListener('abort', onStop);
    c.disconnect();
  }
}

/** Ports tried for the own redis-server before giving up: each lost only to another process binding it first. */
const SPAWN_PORT_TRIES = 5;

/**
 * In the server's directory: the port its last start listened on, kept after it stops. The next start
 * takes the same port when it is free, so `REDIS_URL=redis://127.0.0.1:<port>` given to other
 * processes (the refusal below says to) stays right across restarts: a process left pointing at the
 * old port would otherwise never find this data again, and a relay process there would see a Redis
 * that refuses for good while another one takes its shows over at the new port.
 */
const LAST_PORT = 'syndicast-redis.port';

/** The port of the last start in `dir` when it is free now (else any free port), for the first try. */
function samePortFirst(dir: string): () => Promise<number> {
  let tried = false;
  return async () => {
    if (!tried) {
      tried = true;
      let last = NaN;
      try {
        last = Number(readFileSync(join(dir, LAST_PORT), 'utf8').trim());
      } catch {
        // never started here
      }
      if (Number.isInteger(last) && last > 0 && last < 65536 && !(await tcpOpen(last))) return last;
    }
    return freePort();
  };
}

/** resolveRedis's own redis-server in `dir` (under the start lock): refused while another process's runs there. */
async function spawnOwn(
  dir: string,
  appendfsync: 'always' | 'everysec',
  stop: AbortSignal | undefined,
  pickPort: () => Promise<number>,
): Promise<ResolvedRedis> {
  const other = await spawnedAlready(dir);
  throwIfStopped(stop);
  if (other) {
    throw new StartupError(
      `Syndicast cannot start its own redis-server with its data in ${dir}: the one another Syndicast process started there still runs ` +
        `(pid ${other.pid}, ${other.url}), and two servers on one append-only file split the data between them and lose one's writes at the next AOF rewrite. ` +
        `Set REDIS_URL=${other.url} to use that server (it stops when the process that started it stops), or give this process a DATA_DIR of its own.`,
    );
  }
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort();
    const started = await spawnOnPort(dir, port, appendfsync, stop);
    // Another process bound the port between its choice and our server's bind: another port, a few times.
    if (started !== 'port-taken') return started;
    if (attempt >= SPAWN_PORT_TRIES) {
      throw new RedisUnavailableError(
        `Syndicast started its own redis-server (no REDIS_URL set and nothing answered on 127.0.0.1:6379), with its data in ${dir}, ` +
          `but ${SPAWN_PORT_TRIES} times another process took the free port it had chosen before the server could bind it. ` +
          'Start again, or set REDIS_URL.',
      );
    }
  }
}

/** One start of the own redis-server on `port`; 'port-taken' when another process has the port (ours is then stopped). */
async function spawnOnPort(dir: string, port: number, appendfsync: 'always' | 'everysec', stop: AbortSignal | undefined): Promise<ResolvedRedis | 'port-taken'> {
  let child: ChildProcess;
  try {
    // It dies with this process however that ends (SIGKILL, OOM, the exit after SHUTDOWN_TIMEOUT_MS or a
    // second signal, a signal before the handlers are set): the kernel sends it SIGTERM, on which it
    // flushes its AOF. Left running (it ignores SIGPIPE), each such end left one more redis-server
    // behind, and the next start spawned another on the same append-only files.
    const { command, args } = withPdeathsig('SIGTERM', 'redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      appendfsync,
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ]);
    child = spawn(
      command,
      args,
      // The C collation: Lua's string `<` (order keys, src/domain/desired-state.ts) is strcoll() under the
      // server's locale; byte order whatever the host's LANG is.
      // eslint-disable-next-line no-restricted-properties -- the child's environment, not configuration: inherited as spawn's default gives every other child (ffmpeg), plus LC_ALL
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
    );
  } catch {
    throw new RedisUnavailableError(HOW_TO_GET_REDIS);
  }
  // Its own words, for when it stops: the last lines it printed (a bad AOF, a port, a permission).
  let said = '';
  const keep = (d: Buffer): void => {
    said = (said + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let notFound = false;
  const spawnFailed = new Promise<boolean>((res) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      notFound = err.code === 'ENOENT';
      res(true);
    });
    child.once('exit', (code) => {
      // setpriv could not execute redis-server (not on PATH): "setpriv: failed to execute redis-server", 127.
      if (code === 127) notFound = true;
      // Its last words can still be in the pipes when 'exit' comes (on a loaded machine the error
      // paragraph said "(nothing)" for a damaged AOF): wait for its output to end ('close'), at most 1 s.
      const late = setTimeout(() => res(true), 1000);
      child.once('close', () => {
        clearTimeout(late);
        res(true);
      });
    });
  });
  const failure = (): RedisUnavailableError => {
    if (notFound) return new RedisUnavailableError(HOW_TO_GET_REDIS);
    const lines = said.split('\n').map((l) => l.replace(/^\d+:[A-Z] [^*#]*[*#] ?/, '').trim()).filter(Boolean).slice(-6);
    return new RedisUnavailableError(
      `Syndicast started its own redis-server (no REDIS_URL set and nothing answered on 127.0.0.1:6379), with its data in ${dir}, ` +
        `and it stopped${child.exitCode !== null ? ` with exit code ${child.exitCode}` : ''}. redis-server said:\n\n  ${lines.join('\n  ') || '(nothing)'}\n\n` +
        'Fix what it names (a damaged append-only file under that directory can be checked with redis-check-aof), point DATA_DIR elsewhere, or set REDIS_URL.',
    );
  };
  const url = `redis://127.0.0.1:${port}`;
  const record = join(dir, SPAWNED_RECORD);
  const stopChild = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((res) => {
        child.once('exit', () => res());
        child.kill('SIGTERM'); // redis-server flushes the AOF on SIGTERM
      });
    }
    rmSync(record, { force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const failed = await Promise.race([spawnFailed, new Promise<false>((r) => setTimeout(() => r(false), 100))]);
    if (failed) {
      if (/Address already in use/i.test(said)) return 'port-taken';
      throw failure();
    }
    const answered = await answers(url, 800, stop);
    if (stop?.aborted) {
      await stopChild();
      throwIfStopped(stop);
    }
    if (answered) {
      // Ours, or another server that had the port first (ours then fails to bind, maybe not yet):
      // never take someone else's Redis as this process's database.
      const pid = await serverPid(url, stop);
      if (pid === child.pid) break;
      if (pid !== undefined) {
        await stopChild();
        return 'port-taken';
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw failure();
    }
  }
  writeFileSync(record, JSON.stringify({ pid: child.pid, url, owner: process.pid }) + '\n');
  writeFileSync(join(dir, LAST_PORT), `${port}\n`);
  return {
    url,
    source: 'spawned',
    stop: stopChild,
  };
}
