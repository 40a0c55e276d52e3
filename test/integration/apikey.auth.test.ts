/**
 * API keys and the auth plugin on their own (src/store/apikey.repository.ts,
 * src/api/plugins/auth.plugin.ts) against a real redis-server: what a key record holds, revocation and
 * expiry at their edges, the throttled last-used stamp, the list order, and the plugin's header parsing,
 * role check, console sign-in and audit actor. A bare fastify app carries the plugin (the whole service
 * is under test in api.auth / tenancy.matrix / audit.keys); written to kill the mutants StrykerJS
 * found in these two files (docs/testing.md "Mutation testing").
 */
import Fastify, { type FastifyInstance } from 'fastify';
import authPlugin, { assertPartnerAccess } from '../../src/api/plugins/auth.plugin.js';
import { sha256Hex } from '../../src/lib/crypto.js';
import { AppError } from '../../src/lib/errors.js';
import { ApiKeyRepository } from '../../src/store/apikey.repository.js';
import { AuditRepository } from '../../src/store/audit.repository.js';
import { Keys } from '../../src/store/keys.js';
import { createRedis, waitForRedis, type RedisClient } from '../../src/store/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { DAY_MS, isoFromNow } from '../helpers/clock.js';

const ADMIN = 'sk_admin_unit_0123456789';
let server: TestRedis;
let redis: RedisClient;
let n = 0;

beforeAll(async () => {
  server = await startRedis();
  redis = createRedis({ url: server.url }, 'api');
  await waitForRedis(redis);
});
afterAll(async () => {
  redis.disconnect();
  await server.destroy();
});

/** A repository under a fresh key prefix (tests do not see each other's keys). */
function fresh(): { repo: ApiKeyRepository; keys: Keys; audit: AuditRepository } {
  const keys = new Keys(`ak${++n}`);
  return { repo: new ApiKeyRepository(redis, keys), keys, audit: new AuditRepository(redis, keys) };
}

/**
 * Touches keys k0 … k{n-1}, a thousand at a time: all at once queued 10,000 commands on the API's client
 * (2 s command timeout), and on a loaded CI machine the last of them timed out before Redis got to them.
 */
async function touchMany(repo: ApiKeyRepository, n: number, at: number): Promise<void> {
  for (let from = 0; from < n; from += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, n - from) }, (_, i) => repo.touch(`k${from + i}`, at)));
  }
}

describe('ApiKeyRepository', () => {
  test('a created key: sk_<role>_ + 43 url-safe chars, a key_ id, stored under its hash only', async () => {
    const { repo, keys } = fresh();
    const k = await repo.create('viewer', undefined);
    expect(k.key).toMatch(/^sk_viewer_[A-Za-z0-9_-]{43}$/);
    expect(k.id).toMatch(/^key_[A-Za-z0-9]{12}$/);
    expect(k.expiresAt).toBeNull();
    expect(Date.parse(k.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const record = JSON.parse((await redis.get(keys.apiKey(sha256Hex(k.key))))!) as Record<string, unknown>;
    expect(record).toEqual({ id: k.id, role: 'viewer', createdAt: k.createdAt, expiresAt: null, revokedAt: null });
    const index = JSON.parse((await redis.hget(keys.apiKeyIndex(), k.id))!) as Record<string, unknown>;
    expect(index).toEqual({ ...record, hash: sha256Hex(k.key) });
    expect(JSON.stringify(await redis.hgetall(keys.apiKeyIndex()))).not.toContain(k.key);
  });

  test('lookup: the principal (with its name only when it has one); unknown is null', async () => {
    const { repo } = fresh();
    const named = await repo.create('partner', 'pa', { name: 'acme reporting' });
    const bare = await repo.create('operator', undefined);
    expect(await repo.lookup(named.key)).toStrictEqual({ principal: { id: named.id, role: 'partner', partnerId: 'pa', name: 'acme reporting' } });
    expect(await repo.lookup(bare.key)).toStrictEqual({ principal: { id: bare.id, role: 'operator', partnerId: undefined } });
    expect(await repo.lookup('sk_operator_nope')).toBeNull();
    expect(await repo.find(named.key)).toStrictEqual({ id: named.id, role: 'partner', partnerId: 'pa', name: 'acme reporting' });
    expect(await repo.find('sk_operator_nope')).toBeNull();
  });

  test('an expiry refuses the key from that millisecond on (list and get say expired)', async () => {
    const { repo } = fresh();
    // A year ahead, not a fixed date: find() and the first lookups run at the real now, before the
    // expiry (a fixed 2030-01-01 failed them from that day on).
    const at = new Date(isoFromNow(365 * DAY_MS));
    const k = await repo.create('viewer', undefined, { expiresAt: at });
    expect(k.expiresAt).toBe(at.toISOString());
    expect(await repo.lookup(k.key, at.getTime() - 1)).toMatchObject({ principal: { id: k.id } });
    expect(await repo.lookup(k.key, at.getTime())).toEqual({ refused: 'expired' });
    expect(await repo.find(k.key)).toMatchObject({ id: k.id });
    expect((await repo.get(k.id, at.getTime() - 1))?.status).toBe('active');
    expect(await repo.get(k.id, at.getTime())).toMatchObject({ status: 'expired', expiresAt: at.toISOString(), revokedAt: null });
    expect((await repo.list(at.getTime())).map((p) => p.status)).toEqual(['expired']);
    expect((await repo.list(at.getTime() - 1)).map((p) => p.status)).toEqual(['active']);
  });

  test('revoke: refused at once, shown as revoked, idempotent (keeps the first time), null for an unknown id', async () => {
    const { repo, keys } = fresh();
    const k = await repo.create('operator', undefined, { name: 'ops laptop' });
    const t1 = Date.parse('2026-03-01T10:00:00.000Z');
    const first = await repo.revoke(k.id, t1);
    expect(first).toEqual({
      id: k.id,
      role: 'operator',
      partnerId: null,
      name: 'ops laptop',
      createdAt: k.createdAt,
      expiresAt: null,
      revokedAt: '2026-03-01T10:00:00.000Z',
      lastUsedAt: null,
      status: 'revoked',
    });
    expect(await repo.lookup(k.key)).toEqual({ refused: 'revoked' });
    expect(await repo.find(k.key)).toBeNull();
    expect(await repo.revoke(k.id, t1 + 5_000)).toEqual(first);
    const record = JSON.parse((await redis.get(keys.apiKey(sha256Hex(k.key))))!) as Record<string, unknown>;
    expect(record).toEqual({ id: k.id, role: 'operator', name: 'ops laptop', createdAt: k.createdAt, expiresAt: null, revokedAt: '2026-03-01T10:00:00.000Z' });
    expect(await repo.revoke('key_nope')).toBeNull();
    expect(await repo.get('key_nope')).toBeNull();
  });

  test('revoking a key whose record is gone does not bring the record back', async () => {
    const { repo, keys } = fresh();
    const k = await repo.create('viewer', undefined);
    await redis.del(keys.apiKey(sha256Hex(k.key)));
    expect((await repo.revoke(k.id))?.status).toBe('revoked');
    expect(await redis.exists(keys.apiKey(sha256Hex(k.key)))).toBe(0);
  });

  test('touch writes last used at most once a minute per key', async () => {
    const { repo } = fresh();
    const a = await repo.create('viewer', undefined);
    const b = await repo.create('viewer', undefined);
    const t0 = Date.parse('2026-03-01T10:00:00.000Z');
    await repo.touch(a.id, t0);
    expect((await repo.get(a.id))?.lastUsedAt).toBe('2026-03-01T10:00:00.000Z');
    await repo.touch(a.id, t0 + 59_999);
    expect((await repo.get(a.id))?.lastUsedAt).toBe('2026-03-01T10:00:00.000Z');
    await repo.touch(b.id, t0 + 59_999); // another key is not throttled by the first
    expect((await repo.get(b.id))?.lastUsedAt).toBe('2026-03-01T10:00:59.999Z');
    await repo.touch(a.id, t0 + 60_000);
    expect((await repo.get(a.id))?.lastUsedAt).toBe('2026-03-01T10:01:00.000Z');
    expect((await repo.list()).find((p) => p.id === a.id)?.lastUsedAt).toBe('2026-03-01T10:01:00.000Z');
  });

  test('the throttle forgets every key once it remembers more than 10 000', async () => {
    const { repo, keys } = fresh();
    const t0 = Date.parse('2026-03-01T10:00:00.000Z');
    await repo.touch('k-first', t0);
    await touchMany(repo, 10_000, t0); // the map is updated before each write
    // 10 001 remembered: the next touch clears them, so k-first is written again within the minute.
    await repo.touch('k-clear', t0 + 1);
    await repo.touch('k-first', t0 + 2);
    expect(await redis.hget(keys.apiKeyLastUsed(), 'k-first')).toBe('2026-03-01T10:00:00.002Z');
  });

  test('the throttle keeps 10 000 keys', async () => {
    const { repo, keys } = fresh();
    const t0 = Date.parse('2026-03-01T10:00:00.000Z');
    await repo.touch('k-first', t0);
    await touchMany(repo, 9_999, t0);
    await repo.touch('k-more', t0 + 1); // 10 000 remembered before this one: nothing is forgotten
    await repo.touch('k-first', t0 + 2);
    expect(await redis.hget(keys.apiKeyLastUsed(), 'k-first')).toBe('2026-03-01T10:00:00.000Z');
  });

  test('list: oldest first, ties by id; never the key or its hash', async () => {
    const { repo, keys } = fresh();
    const idx = keys.apiKeyIndex();
    const rec = (id: string, createdAt: string): string => JSON.stringify({ id, role: 'viewer', createdAt, expiresAt: null, revokedAt: null, hash: `h-${id}` });
    await redis.hset(idx, 'key_c', rec('key_c', '2026-01-02T00:00:00.000Z'), 'key_b', rec('key_b', '2026-01-01T00:00:00.000Z'), 'key_a', rec('key_a', '2026-01-02T00:00:00.000Z'));
    const list = await repo.list();
    expect(list.map((p) => p.id)).toEqual(['key_b', 'key_a', 'key_c']);
    expect(list[0]).toEqual({ id: 'key_b', role: 'viewer', partnerId: null, name: null, createdAt: '2026-01-01T00:00:00.000Z', expiresAt: null, revokedAt: null, lastUsedAt: null, status: 'active' });
    expect(JSON.stringify(list)).not.toContain('h-key');
  });
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('auth plugin', () => {
  let app: FastifyInstance;
  let repo: ApiKeyRepository;
  let audit: AuditRepository;
  let keys: Keys;

  let base: string;

  beforeAll(async () => {
    ({ repo, audit, keys } = fresh());
    app = Fastify();
    app.setErrorHandler((err, _req, reply) => {
      const status = err instanceof AppError ? err.status : 500;
      void reply.status(status).send({ detail: err instanceof Error ? err.message : String(err) });
    });
    await app.register(authPlugin, { apiKeys: repo, adminApiKey: ADMIN, audit });
    app.get('/ops', { preHandler: app.requireRole('operator') }, async (req) => ({ principal: req.principal }));
    app.get('/any', { preHandler: app.requireRole('operator', 'viewer', 'partner') }, async (req) => ({ principal: req.principal }));
    app.get('/p/:id', { preHandler: app.requireRole('partner', 'viewer') }, async (req) => {
      assertPartnerAccess(req, (req.params as { id: string }).id);
      return { ok: true };
    });
    app.post('/act', { preHandler: app.requireRole('operator') }, async (req) => {
      await app.audit(req, { action: 'show.start', partnerId: 'pa', showId: 's1' });
      return { ok: true };
    });
    app.get('/anon', async (req) => ({ principal: req.principal }));
    app.get('/open/:id', async (req) => {
      assertPartnerAccess(req, (req.params as { id: string }).id);
      return { ok: true };
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
  });

  async function call(url: string, authorization?: string, method: 'GET' | 'POST' = 'GET'): Promise<Reply> {
    const r = await fetch(base + url, { method, headers: authorization === undefined ? {} : { authorization } });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }

  test('the header must be Bearer and one key (any case, any blanks between)', async () => {
    const missing = { status: 401, body: { detail: 'Authorization: Bearer <api key> required' } };
    expect(await call('/ops')).toEqual(missing);
    expect(await call('/ops', '')).toEqual(missing);
    expect(await call('/ops', `Basic ${ADMIN}`)).toEqual(missing);
    expect(await call('/ops', `Bearer ${ADMIN} extra`)).toEqual(missing);
    expect(await call('/ops', `x Bearer ${ADMIN}`)).toEqual(missing);
    expect(await call('/ops', `Bearer${ADMIN}`)).toEqual(missing);
    expect(await call('/ops', 'Bearer ')).toEqual(missing);
    const admin = { status: 200, body: { principal: { id: 'admin', role: 'admin', name: 'ADMIN_API_KEY', adminKey: expect.stringMatching(/^[0-9a-f]{32}$/) } } };
    expect(await call('/ops', `Bearer ${ADMIN}`)).toEqual(admin);
    expect(await call('/ops', `bearer   ${ADMIN}`)).toEqual(admin);
    expect(await call('/ops', `BEARER\t${ADMIN}`)).toEqual(admin);
  });

  test('unknown, revoked and expired keys are 401 and say which; a prefix of the admin key is unknown', async () => {
    expect(await call('/ops', 'Bearer sk_operator_nope')).toEqual({ status: 401, body: { detail: 'unknown API key' } });
    expect(await call('/ops', `Bearer ${ADMIN.slice(0, -1)}`)).toEqual({ status: 401, body: { detail: 'unknown API key' } });
    const revoked = await repo.create('operator', undefined);
    await repo.revoke(revoked.id);
    expect(await call('/ops', `Bearer ${revoked.key}`)).toEqual({ status: 401, body: { detail: 'this API key was revoked' } });
    const expired = await repo.create('operator', undefined, { expiresAt: new Date(Date.now() - 1000) });
    expect(await call('/ops', `Bearer ${expired.key}`)).toEqual({ status: 401, body: { detail: 'this API key has expired' } });
  });

  test('a route lets its roles and admin through, stamps last used, and names every allowed role when it refuses', async () => {
    const op = await repo.create('operator', undefined, { name: 'ops' });
    const viewer = await repo.create('viewer', undefined);
    expect(await call('/ops', `Bearer ${op.key}`)).toEqual({ status: 200, body: { principal: { id: op.id, role: 'operator', name: 'ops' } } });
    expect(await redis.hget(keys.apiKeyLastUsed(), op.id)).not.toBeNull();
    expect(await call('/ops', `Bearer ${viewer.key}`)).toEqual({ status: 403, body: { detail: 'requires role admin or operator' } });
    expect(await call('/any', `Bearer ${viewer.key}`)).toMatchObject({ status: 200, body: { principal: { id: viewer.id, role: 'viewer' } } });
    const partner = await repo.create('partner', 'pa');
    expect(await call('/ops', `Bearer ${partner.key}`)).toEqual({ status: 403, body: { detail: 'requires role admin or operator' } });
    expect(await call('/any', `Bearer ${partner.key}`)).toMatchObject({ status: 200 });
    // No principal on a route without the role check.
    expect(await call('/anon', `Bearer ${op.key}`)).toEqual({ status: 200, body: { principal: null } });
  });

  test('a partner key reaches only its own partner; other roles reach any', async () => {
    const pa = await repo.create('partner', 'pa');
    const viewer = await repo.create('viewer', undefined);
    expect(await call('/p/pa', `Bearer ${pa.key}`)).toEqual({ status: 200, body: { ok: true } });
    expect(await call('/p/pb', `Bearer ${pa.key}`)).toEqual({ status: 403, body: { detail: 'this key is scoped to another partner' } });
    expect(await call('/p/pb', `Bearer ${viewer.key}`)).toEqual({ status: 200, body: { ok: true } });
    expect(await call('/p/pb', `Bearer ${ADMIN}`)).toEqual({ status: 200, body: { ok: true } });
    // The partner check scopes partner keys; it is not an authentication check (no principal: no scope).
    expect(await call('/open/pb')).toEqual({ status: 200, body: { ok: true } });
  });

  test("the console's sign-in: admin, an active key's principal, else why not (one lookup)", async () => {
    const op = await repo.create('operator', undefined, { name: 'ops' });
    const revoked = await repo.create('operator', undefined);
    await repo.revoke(revoked.id);
    expect(await app.principalOfKey(ADMIN)).toStrictEqual({ principal: { id: 'admin', role: 'admin', partnerId: undefined, name: 'ADMIN_API_KEY', adminKey: expect.stringMatching(/^[0-9a-f]{32}$/) } });
    expect(await app.principalOfKey(op.key)).toStrictEqual({ principal: { id: op.id, role: 'operator', partnerId: undefined, name: 'ops' } });
    expect(await app.principalOfKey(revoked.key)).toStrictEqual({ refused: 'revoked' });
    expect(await app.principalOfKey('sk_nope')).toStrictEqual({ refused: 'unknown' });
    expect(await app.principalOfKey(`${ADMIN}x`)).toStrictEqual({ refused: 'unknown' });
  });

  test('audit records the acting key and the request id', async () => {
    const op = await repo.create('operator', undefined, { name: 'ops' });
    expect(await call('/act', `Bearer ${op.key}`, 'POST')).toEqual({ status: 200, body: { ok: true } });
    const { entries } = await audit.list({ partnerId: 'pa', limit: 10 });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ action: 'show.start', partnerId: 'pa', showId: 's1', actor: { keyId: op.id, role: 'operator', name: 'ops' }, requestId: expect.any(String) });
  });
});
