/**
 * Redis 6.2 is the documented minimum (docs/operations.md, "Redis"). EXPIRE's NX/XX/GT/LT options came
 * with Redis 7.0: a 6.2 server answers `EXPIRE key ttl GT` with "ERR wrong number of arguments for
 * 'expire' command". The outbound message store used it twice (a delivery's retry saved with its
 * message kept long enough, in Lua; a redelivery's touch), so on 6.2 every retried webhook failed its
 * job on that error and every redelivery answered 500. Now both are a PTTL check and a plain EXPIRE in
 * Lua (EXPIRE_GT_FN). The first test reads the sources for commands and options newer than 6.2 (the
 * machines that run the tests have Redis 7 only); the second checks on a real Redis that the
 * replacement keeps GT's meaning: longer only, never shorter, a key without a TTL keeps none.
 *
 * SET's NX and GET together also came with 7.0 (6.2: "ERR syntax error"): the reconciliation store
 * saved every new run (saveNew: every scheduled reconciliation) and a credential account's move
 * (moveAccount) with `SET … NX GET`, so on 6.2 every reconciliation failed to start. Now a Lua script
 * (GET, then SET; scSetNxGet). The scanner also catches it, and the third test runs both on a real
 * Redis through a client that refuses NX with GET as 6.2 does.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { Keys } from '../../src/store/keys.js';
import { defineOutboundScripts } from '../../src/store/outbound.scripts.js';
import { ReconcileRepository, type ReconciliationRecord } from '../../src/store/reconcile.repository.js';
import type { RedisClient } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';

const SRC = resolve(import.meta.dirname ?? '.', '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * Uses of Redis ≥ 7.0 syntax: EXPIRE-family options, SET with NX and GET together (either order),
 * BITCOUNT/BITPOS's BIT unit, and commands 6.2 does not have (quoted, or as an ioredis method).
 */
const NEWER_THAN_6_2 = [
  /\bp?expire(?:at)?\b['"]?\s*[(,][^\n]*['"](?:GT|LT|NX|XX)['"]/i,
  /\bset\b['"]?\s*[(,][^\n]*['"]NX['"][^\n]*['"]GET['"]/i,
  /\bset\b['"]?\s*[(,][^\n]*['"]GET['"][^\n]*['"]NX['"]/i,
  /\bbit(?:count|pos)\b['"]?\s*[(,][^\n]*['"]BIT['"]/i,
  /['"](?:EXPIRETIME|PEXPIRETIME|LMPOP|BLMPOP|ZMPOP|BZMPOP|SINTERCARD|ZINTERCARD|BITFIELD_RO|EVAL_RO|EVALSHA_RO|SORT_RO|FCALL|FCALL_RO|WAITAOF)['"]/i,
  // FUNCTION (7.0) in capitals or as call()'s command: `typeof x === 'function'` is not one.
  /['"]FUNCTION['"]|\bcall\(\s*['"]function['"]/,
  /\.(?:expiretime|pexpiretime|lmpop|blmpop|zmpop|bzmpop|sintercard|zintercard|waitaof|fcall|fcall_ro|eval_ro|evalsha_ro|sort_ro|function)\(/,
];

test('the scanner catches SET with NX and GET in either order, and the other 7.0 options', () => {
  const hits = (line: string): boolean => NEWER_THAN_6_2.some((re) => re.test(line));
  expect(hits("await this.redis.set(key, v, 'EX', TTL_SEC, 'NX', 'GET');")).toBe(true);
  expect(hits("await this.redis.set(key, v, 'GET', 'NX');")).toBe(true);
  expect(hits("redis.call('SET', KEYS[1], ARGV[1], 'NX', 'GET')")).toBe(true);
  expect(hits("redis.call('BITCOUNT', KEYS[1], 0, 7, 'BIT')")).toBe(true);
  expect(hits("await c.expire(key, 10, 'NX');")).toBe(true);
  expect(hits("await c.fcall('f', 1, key);")).toBe(true);
  expect(hits("await c.call('FUNCTION', 'LOAD', code);")).toBe(true);
  // 6.2 is fine with these.
  expect(hits("await this.redis.set(key, v, 'NX');")).toBe(false);
  expect(hits("await this.redis.set(key, v, 'KEEPTTL', 'GET');")).toBe(false);
  expect(hits("redis.call('GET', KEYS[1])")).toBe(false);
  expect(hits("redis.call('ZADD', KEYS[1], 'GT', 1, 'm')")).toBe(false);
  expect(hits("if (typeof v === 'function') return v;")).toBe(false);
});

test('no command or option newer than Redis 6.2 in src (Lua included)', () => {
  const found: string[] = [];
  for (const file of sources(SRC)) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (NEWER_THAN_6_2.some((re) => re.test(line))) found.push(`${file.slice(SRC.length + 1)}:${i + 1}: ${line.trim()}`);
      });
  }
  // Before: outbound.scripts.ts (EXPIRE … 'GT' in HSET_KEEP_LUA) and outbound-message.repository.ts (expire(…, 'GT'));
  // then reconcile.repository.ts (set(…, 'NX', 'GET') in saveNew and moveAccount).
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

/** A client that answers SET with NX and GET together as Redis 6.2 does; everything else goes to Redis. */
function as62(c: Redis): RedisClient {
  return new Proxy(c, {
    get(t, p) {
      const v: unknown = Reflect.get(t, p, t);
      if (p === 'set') {
        return (...args: unknown[]) => {
          const opts = args.slice(2).map((a) => String(a).toUpperCase());
          if (opts.includes('NX') && opts.includes('GET')) return Promise.reject(new Error('ERR syntax error'));
          return (v as (...a: unknown[]) => Promise<unknown>).apply(t, args);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as unknown as RedisClient;
}

describe('SET NX GET in Lua (reconciliation store)', () => {
  let redis: TestRedis;
  let c: Redis;
  let repo: ReconcileRepository;
  const keys = new Keys('r62');
  beforeAll(async () => {
    redis = await startRedis();
    c = new Redis(redis.url);
    repo = new ReconcileRepository(as62(c), keys);
  }, 30_000);
  afterAll(async () => {
    c?.disconnect();
    await redis?.destroy();
  });

  const run = (id: string, status: ReconciliationRecord['status']): ReconciliationRecord =>
    ({ id, partnerId: 'p1', status, createdAt: new Date().toISOString(), summary: null, discrepancies: [] }) as unknown as ReconciliationRecord;

  test('saveNew stores a new run with its TTL, and hands back the stored one (unchanged) when the id exists', async () => {
    expect(await repo.saveNew(run('r1', 'queued'))).toBeNull();
    const key = keys.reconciliation('r1');
    expect(JSON.parse((await c.get(key))!)).toMatchObject({ id: 'r1', status: 'queued' });
    expect(await c.ttl(key)).toBeGreaterThan(399 * 86_400);
    expect(await repo.saveNew(run('r1', 'running'))).toMatchObject({ id: 'r1', status: 'queued' });
    expect(JSON.parse((await c.get(key))!)).toMatchObject({ status: 'queued' });
  });

  test('moveAccount names the first account moved to, keeps it, and a key without TTL gets none', async () => {
    expect(await repo.moveAccount('cred-1', 'acct-A')).toBe('acct-A');
    expect(await c.get(keys.reconAccountMovedTo('cred-1'))).toBe('acct-A');
    expect(await c.ttl(keys.reconAccountMovedTo('cred-1'))).toBe(-1);
    expect(await repo.moveAccount('cred-1', 'acct-B')).toBe('acct-A');
    // Another move won meanwhile (written between our read and our write): ours is undone, theirs stands.
    await c.sadd(keys.reconAccountAliases('acct-C'), 'x');
    const racing = new ReconcileRepository(
      new Proxy(as62(c), {
        get(t, p) {
          const v: unknown = Reflect.get(t, p, t);
          if (p === 'get') return async (k: string) => (k === keys.reconAccountMovedTo('cred-2') ? (await c.set(k, 'acct-D'), null) : c.get(k));
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        },
      }),
      keys,
    );
    expect(await racing.moveAccount('cred-2', 'acct-C')).toBe('acct-D');
    expect(await c.get(keys.reconAccountMovedTo('cred-2'))).toBe('acct-D');
    expect(await c.sismember(keys.reconAccountAliases('acct-C'), 'cred-2')).toBe(0);
  });
});
