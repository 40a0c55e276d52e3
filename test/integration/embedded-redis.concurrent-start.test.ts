/**
 * Two starts at once on one DATA_DIR (src/store/embedded-redis.ts). A second process on a DATA_DIR
 * whose redis-server another one runs is refused, found by the record the first writes in the data
 * directory; but that record is written only once the server answers (its AOF loaded), so two
 * processes started together (`npm run start:api` and `start:worker` without REDIS_URL) both found none
 * and both spawned a redis-server on the same append-only files: each process saw only its own data,
 * and the first AOF rewrite of one dropped the other's writes. A start lock now makes the second wait
 * for the first's start and then find its record.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { testPort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { resolveRedis, StartupError, type ResolvedRedis } from '../../src/store/embedded-redis.js';

test('two starts at once on one DATA_DIR: one spawns its redis-server, the other is refused naming it (never two servers on one AOF)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-concurrent-'));
  const localUrl = `redis://127.0.0.1:${await testPort()}`; // nothing answers where the default Redis would be
  const settled = await Promise.allSettled([0, 1].map(() => resolveRedis({ dataDir, appendfsync: 'everysec', localUrl })));
  const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    expect(started.map((s) => s.source)).toEqual(['spawned']);
    const refused = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(StartupError);
    expect((refused[0] as Error).message).toContain(`REDIS_URL=${started[0]!.url}`);
    // The lock is gone once the start is done: it holds nothing back afterwards.
    expect(existsSync(join(dataDir, 'redis', 'syndicast-redis.lock'))).toBe(false);
  } finally {
    for (const s of started) await s.stop();
  }
}, 60_000);

test('a start lock left by a start that died is taken over at once', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-concurrent-'));
  const dir = join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const deadOwner = spawnSync('true').pid; // a process that has ended
  writeFileSync(join(dir, 'syndicast-redis.lock'), JSON.stringify({ owner: deadOwner, at: Date.now() }) + '\n');
  const localUrl = `redis://127.0.0.1:${await testPort()}`;
  const t0 = Date.now();
  let mine: ResolvedRedis | undefined;
  try {
    mine = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
    expect(mine.source).toBe('spawned');
    // Not waited out (START_LOCK_STALE_MS, 60 s): the owner is gone. Generous for a loaded machine.
    expect(Date.now() - t0).toBeLessThan(30_000);
  } finally {
    await mine?.stop();
  }
}, 60_000);

/**
 * The own redis-server's port is chosen free a moment before the server binds it; another process can
 * bind it in between. Ours then exits ("Address already in use") — the start failed — or, while ours
 * is still starting, the other server answers the readiness PING and the process would have taken
 * someone else's Redis as its database. Now: the answering server must be ours (its pid), and a port
 * lost to another process is replaced by another.
 */
describe('the own redis-server port taken by another process before ours binds it', () => {
  let foreign: TestRedis;
  const realPath = process.env.PATH;
  beforeAll(async () => {
    foreign = await startRedis();
  });
  afterAll(async () => {
    process.env.PATH = realPath;
    await foreign.destroy();
  });

  const startOnTakenPort = async (): Promise<{ mine: ResolvedRedis; picked: number[] }> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sc-port-taken-'));
    const localUrl = `redis://127.0.0.1:${await testPort()}`;
    const picked: number[] = [];
    const mine = await resolveRedis({
      dataDir,
      appendfsync: 'everysec',
      localUrl,
      pickPort: async () => {
        const p = picked.length === 0 ? foreign.port : await testPort();
        picked.push(p);
        return p;
      },
    });
    return { mine, picked };
  };

  const expectOwnServer = async (mine: ResolvedRedis): Promise<void> => {
    expect(mine.source).toBe('spawned');
    expect(new URL(mine.url).port).not.toBe(String(foreign.port));
    const probe = foreign.client();
    try {
      const foreignPid = /^process_id:(\d+)/m.exec(await probe.info('server'))?.[1];
      const c = new Redis(mine.url);
      try {
        const ownPid = /^process_id:(\d+)/m.exec(await c.info('server'))?.[1];
        expect(ownPid).not.toBe(foreignPid);
        expect(await c.config('GET', 'dir')).toEqual(['dir', expect.stringContaining('sc-port-taken-')]);
      } finally {
        c.disconnect();
      }
    } finally {
      probe.disconnect();
    }
  };

  test('ours fails to bind it: another port, and the start succeeds', async () => {
    const { mine, picked } = await startOnTakenPort();
    try {
      expect(picked.length).toBe(2);
      await expectOwnServer(mine);
    } finally {
      await mine.stop();
    }
  }, 60_000);

  test('the other server answers while ours is still starting: never taken as ours', async () => {
    // A redis-server that takes a second to start (as one loading a large AOF does before it binds).
    const bin = mkdtempSync(join(tmpdir(), 'sc-slow-redis-'));
    const real = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(bin, 'redis-server'), `#!/bin/sh\nsleep 1\nexec ${real} "$@"\n`, { mode: 0o755 });
    process.env.PATH = `${bin}:${realPath ?? ''}`;
    let mine: ResolvedRedis | undefined;
    try {
      const started = await startOnTakenPort();
      mine = started.mine;
      expect(started.picked.length).toBe(2);
      await expectOwnServer(mine);
    } finally {
      process.env.PATH = realPath;
      await mine?.stop();
    }
  }, 60_000);
});

test('a restart on the same DATA_DIR listens on the same port again (REDIS_URL given to other processes stays right), another when that port is taken', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sc-same-port-'));
  const localUrl = `redis://127.0.0.1:${await testPort()}`;
  const first = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
  const c = new Redis(first.url);
  await c.set('kept', 'yes');
  c.disconnect();
  await first.stop();
  const again = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
  let third: ResolvedRedis | undefined;
  try {
    expect(again.url).toBe(first.url);
    const c2 = new Redis(again.url);
    expect(await c2.get('kept')).toBe('yes');
    c2.disconnect();
    await again.stop();
    // Its port taken meanwhile by something else: a free one, never the other's server.
    const port = Number(new URL(first.url).port);
    const blocker = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      third = await resolveRedis({ dataDir, appendfsync: 'everysec', localUrl });
      expect(third.url).not.toBe(first.url);
      expect(third.source).toBe('spawned');
    } finally {
      blocker.close();
    }
  } finally {
    await again.stop();
    await third?.stop();
  }
}, 60_000);
