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
import { testPort } from '../helpers/ports.js';
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
