/**
 * Startup failures a new operator meets print a paragraph, not a stack (issue 11 item 7), tried with
 * real child processes: `npm start`'s entry (src/main/all.ts) with an unreachable REDIS_URL (names the
 * URL, says what was tried, exits 1 within seconds) and with a DATA_DIR it cannot create; and the
 * embedded redis-server (a real one) refusing a damaged append-only file: its own words come through.
 * Then every other bad setting met at start (review D5, D6): PORT out of range or in use,
 * RELAY_RTMP_PORT in use, a HOST that does not resolve, a SECRETS_KEY of the wrong length, and a
 * REDIS_URL database the server does not have (exit 1 before anything is written to database 0), a
 * duration over Node's timer limit (PLATFORM_TIMEOUT_MS=3e9 started, then timed every platform call out), and
 * REDIS_CLUSTER_NODES naming a single Redis, a cluster node without slots or nodes that refuse the
 * password given (exit 1 at once naming the problem: it waited the 15 s ready wait, logging "Failed to
 * refresh slots cache" every 250 ms, then printed only "could not get a ready connection").
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { testPort } from '../helpers/ports.js';
import { RedisUnavailableError, resolveRedis, StartupError } from '../../src/store/embedded-redis.js';
import { spawnRedisServer, startRedis, waitReady, type TestRedis } from '../helpers/redis-server.js';

const root = resolve(import.meta.dirname ?? '.', '../..');

/** `npm start` as a child process; SIGKILLed (killed: true) if it is still running after timeoutMs. */
function start(env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; out: string; killed: boolean }> {
  return new Promise((res) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'src/main/all.ts')], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', PORT: '0', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let killed = false;
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => {
      killed = true;
      proc.kill('SIGKILL');
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(t);
      res({ code, out, killed });
    });
  });
}

const noStack = (out: string): void => {
  expect(out).not.toMatch(/^\s+at .+[:(]/m);
  expect(out).not.toMatch(/node:internal|Error: /);
};

test('an unreachable REDIS_URL: one paragraph naming the URL (password hidden) and what was tried; exit 1', async () => {
  const port = await testPort();
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

test("a DATA_DIR under /proc (Node 20's recursive mkdir never returned there: 100 % CPU, deaf to SIGTERM): the same paragraph, exit 1 at once", async () => {
  const dataDir = `/proc/syndicast-${process.pid}/data`;
  const { code, out, killed } = await start({ DATA_DIR: dataDir, REDIS_URL: `redis://127.0.0.1:${await testPort()}` }, 25_000);
  expect({ killed, code }).toEqual({ killed: false, code: 1 });
  expect(out).toContain(`data directory ${dataDir}`);
  expect(out).toMatch(/DATA_DIR=/);
  noStack(out);
  // A DATA_DIR that is a file, not a directory: the same paragraph (EEXIST).
  const file = join(mkdtempSync(join(tmpdir(), 'sc-start-')), 'a-file');
  writeFileSync(file, 'not a directory');
  const asFile = await start({ DATA_DIR: file, REDIS_URL: `redis://127.0.0.1:${await testPort()}` }, 25_000);
  expect({ killed: asFile.killed, code: asFile.code }).toEqual({ killed: false, code: 1 });
  expect(asFile.out).toContain(`data directory ${file}`);
  expect(asFile.out).toMatch(/EEXIST/);
  noStack(asFile.out);
}, 60_000);

test("the embedded redis-server's own error comes through (a damaged AOF manifest), not a false 'install redis-server'", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-start-'));
  mkdirSync(join(dataDir, 'redis', 'appendonlydir'), { recursive: true });
  writeFileSync(join(dataDir, 'redis', 'appendonlydir', 'appendonly.aof.manifest'), 'this is not a manifest\n');
  const closed = `redis://127.0.0.1:${await testPort()}`; // nothing answers where the default Redis would be
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

test('a second start on a DATA_DIR whose redis-server another process started and still runs: a paragraph naming that server and REDIS_URL, nothing spawned; once it stopped, the next start spawns', async () => {
  // Two servers on one append-only file split the data (each process saw only its own) and the first
  // AOF rewrite of one dropped what the other had written.
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-start-'));
  const localUrl = `redis://127.0.0.1:${await testPort()}`; // nothing answers where the default Redis would be
  const first = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
  let third: Awaited<ReturnType<typeof resolveRedis>> | undefined;
  try {
    expect(first.source).toBe('spawned');
    const err = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl }).then(
      (second) => second.stop().then(() => null),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartupError);
    const msg = (err as Error).message;
    expect(msg).toContain(join(dataDir, 'redis'));
    expect(msg).toContain(`REDIS_URL=${first.url}`);
    expect(msg).toMatch(/DATA_DIR/);
    await first.stop();
    third = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
    expect(third.source).toBe('spawned');
  } finally {
    await first.stop();
    await third?.stop();
  }
}, 60_000);

test("an orphan on the DATA_DIR (its owner was killed where no parent-death signal stops it): shut down, its data kept, and this start spawns its own", async () => {
  // Without setpriv (or off Linux) a kill -9 of the service leaves its redis-server running; the next
  // start refused to start until someone killed it by hand.
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-start-'));
  const dir = join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await testPort();
  const orphan = spawnRedisServer(['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' });
  const exited = new Promise((res) => orphan.once('exit', res));
  await waitReady(port, 10_000, orphan.pid);
  const url = `redis://127.0.0.1:${port}`;
  const c = new Redis(url);
  await c.set('kept', 'yes');
  c.disconnect();
  const deadOwner = spawnSync('true').pid; // a process that has ended
  writeFileSync(join(dir, 'syndicast-redis.json'), JSON.stringify({ pid: orphan.pid, url, owner: deadOwner }) + '\n');
  const localUrl = `redis://127.0.0.1:${await testPort()}`;
  const mine = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
  try {
    expect(mine.source).toBe('spawned');
    expect(mine.url).not.toBe(url);
    await exited; // the orphan was shut down
    const d = new Redis(mine.url);
    expect(await d.get('kept')).toBe('yes'); // its AOF was written on SHUTDOWN and read by the new server
    d.disconnect();
  } finally {
    await mine.stop();
    if (orphan.exitCode === null && orphan.signalCode === null) orphan.kill('SIGKILL');
  }
}, 60_000);

describe('bad settings with a working Redis (review D5, D6)', () => {
  let redis: TestRedis;
  let busy: Server;
  let busyPort: number;

  beforeAll(async () => {
    redis = await startRedis();
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    busyPort = (busy.address() as { port: number }).port;
  }, 30_000);
  afterAll(async () => {
    await new Promise((r) => busy.close(r));
    await redis?.destroy();
  });

  /** A service that would otherwise start: its own Redis, prefix and data directory, any free ports. */
  const startWith = (env: Record<string, string>, timeoutMs?: number): ReturnType<typeof start> =>
    start(
      {
        RELAY_RTMP_PORT: '0',
        REDIS_URL: redis.url,
        KEY_PREFIX: 'se' + Math.random().toString(36).slice(2, 8),
        DATA_DIR: mkdtempSync(join(tmpdir(), 'sc-start-')),
        ...env,
      },
      timeoutMs,
    );

  test('PORT=70000: exit 1 with a message naming PORT, no stack', async () => {
    const { code, out } = await startWith({ PORT: '70000' });
    expect(code).toBe(1);
    expect(out).toMatch(/PORT/);
    noStack(out);
  }, 60_000);

  test('PORT already in use: exit 1 with a message naming the port, no stack', async () => {
    const { code, out } = await startWith({ PORT: String(busyPort) });
    expect(code).toBe(1);
    expect(out).toContain(String(busyPort));
    expect(out).toMatch(/\bPORT\b/);
    noStack(out);
  }, 60_000);

  test('RELAY_RTMP_PORT already in use: exit 1 with a message naming RELAY_RTMP_PORT, no stack', async () => {
    const { code, out } = await startWith({ RELAY_RTMP_PORT: String(busyPort) });
    expect(code).toBe(1);
    expect(out).toMatch(/RELAY_RTMP_PORT/);
    noStack(out);
  }, 60_000);

  test('HOST that does not resolve: exit 1 with a message naming HOST, no stack', async () => {
    const { code, out } = await startWith({ HOST: '256.1.1.1' });
    expect(code).toBe(1);
    expect(out).toMatch(/HOST/);
    noStack(out);
  }, 60_000);

  test('SECRETS_KEY that is not 32 bytes: exit 1 with the config paragraph, no stack', async () => {
    const { code, out } = await startWith({ SECRETS_KEY: 'short' });
    expect(code).toBe(1);
    expect(out).toMatch(/SECRETS_KEY/);
    noStack(out);
  }, 60_000);

  test('PLATFORM_TIMEOUT_MS over the timer limit (3e9: it started, and every platform call timed out at once): exit 1 with the one line naming it, no stack', async () => {
    const { code, out, killed } = await startWith({ PLATFORM_TIMEOUT_MS: '3e9' }, 25_000);
    expect({ killed, code }).toEqual({ killed: false, code: 1 });
    expect(out).toMatch(/^ {2}PLATFORM_TIMEOUT_MS: at most 357911441 \(.+\)$/m);
    noStack(out);
  }, 60_000);

  test('REDIS_URL naming a database the server does not have: exit 1 naming it, and nothing written to database 0', async () => {
    const prefix = 'sedb' + Math.random().toString(36).slice(2, 6);
    const { code, out, killed } = await startWith({ REDIS_URL: `${redis.url}/99`, KEY_PREFIX: prefix }, 25_000);
    const c = redis.client();
    const leaked = await c.keys(`${prefix}*`);
    c.disconnect();
    expect({ killed, code }).toEqual({ killed: false, code: 1 });
    expect(out).toMatch(/DB index|database/i);
    expect(out).toContain('REDIS_URL');
    expect(leaked).toEqual([]);
    noStack(out);
  }, 60_000);

  /** REDIS_CLUSTER_NODES at a Redis that cannot serve as a cluster: no REDIS_URL, a bound well below the 15 s ready wait. */
  const startOnClusterNodes = (nodes: string, env: Record<string, string> = {}): ReturnType<typeof start> =>
    start({ RELAY_RTMP_PORT: '0', REDIS_CLUSTER_NODES: nodes, KEY_PREFIX: 'sc' + Math.random().toString(36).slice(2, 8), DATA_DIR: mkdtempSync(join(tmpdir(), 'sc-start-')), ...env }, 25_000);

  test('REDIS_CLUSTER_NODES naming a single (non-cluster) Redis: exit 1 at once saying so and what to set instead, no stack', async () => {
    const { code, out, killed } = await startOnClusterNodes(`127.0.0.1:${redis.port}`);
    expect({ killed, code }).toEqual({ killed: false, code: 1 });
    expect(out).toContain(`REDIS_CLUSTER_NODES=127.0.0.1:${redis.port}`);
    expect(out).toMatch(/is a single Redis, not a Redis Cluster node \(CLUSTER INFO: "ERR This instance has cluster support disabled"\)/);
    expect(out).toContain(`REDIS_URL=redis://127.0.0.1:${redis.port}`);
    expect(out).not.toMatch(/Failed to refresh slots cache/);
    noStack(out);
  }, 60_000);

  /** `use(port)` with a cluster-enabled redis-server on `port` whose cluster was never created (no slots); the node gone after. */
  async function withClusterNode(use: (port: number) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'sc-start-node-'));
    const port = await testPort();
    // Its cluster bus port named too: by default it is port + 10000, inside the OS's ephemeral range,
    // where any outgoing connection or listen(0) may hold it; the node then exits at once (ci3: "did not start").
    const busPort = await testPort();
    const node = spawnRedisServer(['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')], { stdio: 'ignore' });
    try {
      await waitReady(port, 10_000, node.pid);
      await use(port);
    } finally {
      await new Promise<void>((r) => {
        if (node.exitCode !== null || node.signalCode !== null) return r();
        node.once('exit', () => r());
        node.kill('SIGKILL');
      });
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('REDIS_CLUSTER_NODES naming a cluster node of a cluster never created (no slots): exit 1 at once saying so, no stack', async () => {
    await withClusterNode(async (port) => {
      const { code, out, killed } = await startOnClusterNodes(`127.0.0.1:${port}`);
      expect({ killed, code }).toEqual({ killed: false, code: 1 });
      expect(out).toContain(`REDIS_CLUSTER_NODES=127.0.0.1:${port}`);
      expect(out).toMatch(/no hash slot is assigned to any node: the cluster has not been created \(redis-cli --cluster create/);
      expect(out).not.toMatch(/Failed to refresh slots cache/);
      noStack(out);
    });
  }, 60_000);

  test('REDIS_CLUSTER_NODES whose nodes require a password and refuse the one given (wrong password): exit 1 at once naming the node and the refusal, no password, no stack', async () => {
    // Before, REDIS_CLUSTER_NODES took no password at all (a redis:// seed was a configuration error).
    // The right password: test/integration/redis.cluster-auth.test.ts.
    await withClusterNode(async (port) => {
      const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      await admin.connect();
      await admin.config('SET', 'requirepass', 'cluster-secret');
      admin.disconnect();
      const t0 = Date.now();
      const { code, out, killed } = await startOnClusterNodes(`redis://:Wr0ngPassw0rd@127.0.0.1:${port}`);
      expect({ killed, code }).toEqual({ killed: false, code: 1 });
      expect(out).toContain(`REDIS_CLUSTER_NODES=redis://:***@127.0.0.1:${port}`);
      expect(out).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} refused the password \\(default user\\) given in REDIS_CLUSTER_NODES \\(it answered: "WRONGPASS`));
      expect(out).not.toContain('Wr0ngPassw0rd');
      expect(out).not.toMatch(/Failed to refresh slots cache|within 15 s/);
      expect(Date.now() - t0).toBeLessThan(12_000); // the ready wait it does not reach is 15 s
      noStack(out);
    });
  }, 60_000);

  /**
   * Found by an attack: REDIS_CLUSTER_NODES=garbage (a host alone, port 6379, as documented) waited
   * the 15 s ready wait for a name that does not exist, then said only that no node answered. Seeds
   * none of whose names resolve (ENOTFOUND; `.invalid` never does, RFC 6761) stop the start after a
   * few looks, as an unreachable REDIS_URL does. The child answers `.invalid` names itself
   * (test/helpers/invalid-names.preload.mjs): no query leaves the machine.
   */
  test('REDIS_CLUSTER_NODES whose host names do not resolve: exit 1 within seconds naming the variable and the names, no stack', async () => {
    const nodes = 'redis-a.invalid:7000,redis-b.invalid';
    const { code, out, killed } = await startOnClusterNodes(nodes, { NODE_OPTIONS: `--import=${resolve(root, 'test/helpers/invalid-names.preload.mjs')}` });
    expect({ killed, code }).toEqual({ killed: false, code: 1 });
    expect(out).toContain(`REDIS_CLUSTER_NODES=${nodes}: no seed's host name resolves: "redis-a.invalid" (getaddrinfo ENOTFOUND redis-a.invalid), "redis-b.invalid" (getaddrinfo ENOTFOUND redis-b.invalid)`);
    expect(out).not.toMatch(/within 15 s|Failed to refresh slots cache/);
    noStack(out);
  }, 60_000);

  test('a REDIS_URL the server refuses (a user it does not have) is not retried as if unreachable: one paragraph at once', async () => {
    const t0 = Date.now();
    const err = await resolveRedis({ url: `redis://nobody:wrong@127.0.0.1:${redis.port}/0`, dataDir: mkdtempSync(join(tmpdir(), 'sc-start-')), appendfsync: 'everysec' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisUnavailableError);
    const msg = (err as Error).message;
    expect(msg).toContain(`REDIS_URL=redis://nobody:***@127.0.0.1:${redis.port}/0`);
    expect(msg).toMatch(/refused it: "WRONGPASS/);
    expect(msg).not.toContain('wrong@');
    expect(Date.now() - t0).toBeLessThan(4000); // the unreachable case tries 5 times over ~5 s (4 s: a loaded CI)
  }, 30_000);
});

test("the embedded redis-server's last words arrive after its exit: they still come through", async () => {
  // A stand-in redis-server that exits at once and whose error line reaches the pipe only after the
  // exit (what a loaded machine does to the real one's last lines: the paragraph said "(nothing)").
  const bin = mkdtempSync(join(tmpdir(), 'sc-fake-redis-'));
  writeFileSync(join(bin, 'redis-server'), '#!/bin/sh\n( sleep 0.3; echo "Bad file format reading the append only file manifest" >&2 ) &\nexit 1\n', { mode: 0o755 });
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-start-'));
  const closed = `redis://127.0.0.1:${await testPort()}`;
  const path = process.env['PATH'];
  process.env['PATH'] = `${bin}:${path ?? ''}`;
  try {
    const err = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl: closed }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect((err as Error).message).toMatch(/redis-server said:\s+Bad file format reading the append only file manifest/);
  } finally {
    process.env['PATH'] = path;
  }
}, 60_000);
