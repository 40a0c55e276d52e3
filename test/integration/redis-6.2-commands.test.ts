/**
 * Redis 6.2 is the documented minimum (docs/operations.md, "Redis"). EXPIRE's NX/XX/GT/LT options came
 * with Redis 7.0: a 6.2 server answers `EXPIRE key ttl GT` with "ERR wrong number of arguments for
 * 'expire' command". The outbound message store used it twice (a delivery's retry saved with its
 * message kept long enough, in Lua; a redelivery's touch), so on 6.2 every retried webhook failed its
 * job on that error and every redelivery answered 500. Now both are a PTTL check and a plain EXPIRE in
 * Lua (EXPIRE_GT_FN). The first test reads the sources for commands and options newer than 6.2 (the
 * machines that run the tests have Redis 7 only); the second checks on a real Redis that the
 * replacement keeps GT's meaning: longer only, never shorter, a key without a TTL keeps none.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { defineOutboundScripts } from '../../src/store/outbound.scripts.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const SRC = resolve(import.meta.dirname ?? '.', '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Uses of Redis ≥ 7.0 syntax: EXPIRE-family options, and commands 6.2 does not have (quoted, or as an ioredis method). */
const NEWER_THAN_6_2 = [
  /\bp?expire(?:at)?\b['"]?\s*[(,][^\n]*['"](?:GT|LT|NX|XX)['"]/i,
  /['"](?:EXPIRETIME|PEXPIRETIME|LMPOP|BLMPOP|ZMPOP|BZMPOP|SINTERCARD|ZINTERCARD|BITFIELD_RO|EVAL_RO|EVALSHA_RO|SORT_RO|FCALL|FCALL_RO|WAITAOF)['"]/i,
  /\.(?:expiretime|pexpiretime|lmpop|blmpop|zmpop|bzmpop|sintercard|zintercard|waitaof)\(/,
];

test('no command or option newer than Redis 6.2 in src (Lua included)', () => {
  const found: string[] = [];
  for (const file of sources(SRC)) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (NEWER_THAN_6_2.some((re) => re.test(line))) found.push(`${file.slice(SRC.length + 1)}:${i + 1}: ${line.trim()}`);
      });
  }
  // Before: outbound.scripts.ts (EXPIRE … 'GT' in HSET_KEEP_LUA) and outbound-message.repository.ts (expire(…, 'GT')).
  expect(found).toEqual([]);
});

describe('EXPIRE GT in Lua', () => {
  let redis: TestRedis;
  let c: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    c = new Redis(redis.url);
    defineOutboundScripts(c);
  }, 30_000);
  afterAll(async () => {
    c?.disconnect();
    await redis?.destroy();
  });

  test('extends a shorter TTL, never shortens a longer one, gives none to a key without one', async () => {
    await c.hset('m', 'meta', '{}');
    await c.expire('m', 100);
    expect(await c.scObHsetKeep('m', 'meta', 1000, 'd:e', 'x')).toBe(1);
    expect(await c.ttl('m')).toBeGreaterThan(990);
    expect(await c.scObHsetKeep('m', 'meta', 10, 'd:e', 'y')).toBe(1);
    expect(await c.ttl('m')).toBeGreaterThan(990);
    expect(await c.hget('m', 'd:e')).toBe('y');
    await c.scObExpireGt('m', 5000);
    expect(await c.ttl('m')).toBeGreaterThan(4990);
    await c.scObExpireGt('m', 50);
    expect(await c.ttl('m')).toBeGreaterThan(4990);

    await c.hset('p', 'meta', '{}');
    await c.scObExpireGt('p', 50);
    expect(await c.scObHsetKeep('p', 'meta', 50, 'd:e', 'x')).toBe(1);
    expect(await c.ttl('p')).toBe(-1);
    // A message that is gone is not written (its marker is missing) and gets no TTL.
    expect(await c.scObHsetKeep('gone', 'meta', 50, 'd:e', 'x')).toBe(0);
    await c.scObExpireGt('gone', 50);
    expect(await c.exists('gone')).toBe(0);
  });
});
