/**
 * API keys are random 32-byte tokens; only their SHA-256 is stored (a slow hash adds nothing for such
 * entropy). Each key has a record under its hash (what authentication reads: one GET) and an entry in
 * the key index by id (what listing and revocation read). Neither holds the key; the index holds the
 * hash only so that revocation can find the record, and the API never returns it.
 */
import { randomId } from '../lib/ids.js';
import { randomToken, sha256Hex } from '../lib/crypto.js';
import type { PendingAudit } from './audit.repository.js';
import type { Keys } from './keys.js';
import { LateWriteError, lateWriteLua, type RedisClient, writeDeadline } from './redis.js';
import { isPlainObject, parseListed, parseStored, readStored, type OnUnreadable } from './stored-record.js';

export const ROLES = ['admin', 'operator', 'viewer', 'partner'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  id: string;
  role: Role;
  partnerId: string | undefined;
  /** A label given at creation ("ops laptop", "acme reporting"); shown in the audit log. */
  name?: string | undefined;
  /**
   * ADMIN_API_KEY's principal only: a fingerprint of the key it came from, so that a session kept in
   * Redis ends when ADMIN_API_KEY is rotated (api processes restarted with another key).
   */
  adminKey?: string | undefined;
}

interface KeyRecord extends Principal {
  createdAt: string;
  expiresAt?: string | null;
  revokedAt?: string | null;
}

interface IndexRecord extends KeyRecord {
  hash: string;
}

/** What the API shows of a key: never the key, never its hash. */
export interface PublicApiKey {
  id: string;
  role: Role;
  partnerId: string | null;
  name: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  status: 'active' | 'expired' | 'revoked';
}

export type KeyLookup = { principal: Principal } | { refused: 'revoked' | 'expired' } | null;

/** `lastUsedAt` is written at most this often per key and process (not on every request). */
const TOUCH_EVERY_MS = 60_000;

export class ApiKeyRepository {
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /**
   * `audit` gives the creation's entry (from the new key's id), recorded pending (`AuditRepository.settle`)
   * with the index entry (one script): a key created by a request whose audit write then failed (its
   * secret never shown, but listed and active) gets its entry from the retry, which creates another.
   */
  async create(role: Role, partnerId: string | undefined, opts: { name?: string | undefined; expiresAt?: Date | undefined; audit?: ((id: string, expiresAt: string | null) => PendingAudit) | undefined } = {}): Promise<{ id: string; key: string; createdAt: string; expiresAt: string | null }> {
    const id = randomId('key_');
    const key = `sk_${role}_${randomToken(32)}`;
    const hash = sha256Hex(key);
    const createdAt = new Date().toISOString();
    const expiresAt = opts.expiresAt ? opts.expiresAt.toISOString() : null;
    const record: KeyRecord = { id, role, partnerId, ...(opts.name ? { name: opts.name } : {}), createdAt, expiresAt, revokedAt: null };
    // Index first: a key that authenticates is always listed (and so can be revoked). Each write has a
    // deadline (writeDeadline, read in its slot) past which it is a no-op: a create that answered 503
    // (Redis frozen, the command timed out in the client) is not applied when Redis goes on, which left
    // an active key whose secret nobody saw (the retry creates another).
    const pending = opts.audit?.(id, expiresAt);
    const indexed = await this.redis.eval(CREATE_LUA, 2, this.keys.apiKeyIndex(), this.keys.auditPending('keys'), id, JSON.stringify({ ...record, hash } satisfies IndexRecord), pending?.id ?? '', pending?.entry ?? '', await writeDeadline(this.redis, this.keys.apiKeyIndex()));
    if (indexed === -1) throw new LateWriteError(`API key ${id} create`);
    const stored = await this.redis.eval(SET_RECORD_LUA, 1, this.keys.apiKey(hash), JSON.stringify(record), await writeDeadline(this.redis, this.keys.apiKey(hash)));
    if (stored === -1) throw new LateWriteError(`API key ${id} create`);
    return { id, key, createdAt, expiresAt };
  }

  async lookup(key: string, now = Date.now()): Promise<KeyLookup> {
    const at = this.keys.apiKey(sha256Hex(key));
    const raw = await readStored('apiKey', "(this request's key)", at, () => this.redis.get(at));
    if (!raw) return null;
    const r = parseStored<KeyRecord>('apiKey', "(this request's key)", at, raw, isIndexRecord);
    if (r.revokedAt) return { refused: 'revoked' };
    if (r.expiresAt && Date.parse(r.expiresAt) <= now) return { refused: 'expired' };
    return { principal: { id: r.id, role: r.role, partnerId: r.partnerId, ...(r.name ? { name: r.name } : {}) } };
  }

  async find(key: string): Promise<Principal | null> {
    const l = await this.lookup(key);
    return l && 'principal' in l ? l.principal : null;
  }

  /** Records that the key authenticated a request (throttled; never awaited on the request path's outcome). */
  async touch(id: string, now = Date.now()): Promise<void> {
    const last = this.touched.get(id);
    if (last !== undefined && now - last < TOUCH_EVERY_MS) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(id, now);
    await this.redis.hset(this.keys.apiKeyLastUsed(), id, new Date(now).toISOString());
  }

  /**
   * Every key. One whose index record does not read (not JSON, the wrong shape) is left out, counted and
   * handed to `onUnreadable`: before, it failed GET /v1/api-keys for every key.
   */
  async list(now = Date.now(), onUnreadable?: OnUnreadable): Promise<PublicApiKey[]> {
    const [index, used] = await Promise.all([this.redis.hgetall(this.keys.apiKeyIndex()), this.redis.hgetall(this.keys.apiKeyLastUsed())]);
    return Object.entries(index)
      .flatMap(([id, raw]) => {
        const r = parseListed<IndexRecord>('apiKey', id, this.keys.apiKeyIndex(), raw, isIndexRecord, onUnreadable);
        return r ? [toPublic(r, used, now)] : [];
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async get(id: string, now = Date.now()): Promise<PublicApiKey | null> {
    const [raw, last] = await Promise.all([this.redis.hget(this.keys.apiKeyIndex(), id), this.redis.hget(this.keys.apiKeyLastUsed(), id)]);
    return raw ? toPublic(JSON.parse(raw) as IndexRecord, last ? { [id]: last } : {}, now) : null;
  }

  /**
   * Revokes at once (the next request with the key gets 401). Null when no such key; idempotent, also
   * when revocations run at once: they all answer the first one's revocation time (each used to read
   * the key active and write its own time, and each route call wrote an `api_key.revoked` audit entry).
   */
  async revoke(id: string, now = Date.now()): Promise<PublicApiKey | null> {
    return (await this.revokeOnce(id, now))?.key ?? null;
  }

  /**
   * `revoke`, and whether this call is the one that revoked the key. `audit` gives the revocation's
   * audit entry (from the key's record), recorded pending (`AuditRepository.settle`) by the same
   * script that revokes the key in the index, so only by the call that revoked it: a revocation whose
   * audit write then fails keeps its entry, and the retry (which finds it revoked) writes it.
   */
  async revokeOnce(id: string, now = Date.now(), audit?: (key: Pick<KeyRecord, 'id' | 'role' | 'partnerId' | 'name'>) => PendingAudit): Promise<{ key: PublicApiKey; revoked: boolean } | null> {
    const raw = await this.redis.hget(this.keys.apiKeyIndex(), id);
    if (!raw) return null;
    const rec = JSON.parse(raw) as IndexRecord;
    const candidate = new Date(now).toISOString();
    const { hash, ...record } = rec;
    // The record authentication reads is revoked first: the key stops working before the index (the
    // list, GET) can say revoked, so a call that fails half-way never leaves a key listed revoked that
    // still logs in; its retry finds the index active and revokes (and audits) again.
    if (!rec.revokedAt) await this.redis.set(this.keys.apiKey(hash), JSON.stringify({ ...record, revokedAt: candidate }), 'XX');
    // Compare-and-set on the index entry: the first revocation time written is the one every caller uses.
    const pending = audit?.(record);
    const [revokedAt, changed] = (await this.redis.eval(REVOKE_LUA, 2, this.keys.apiKeyIndex(), this.keys.auditPending('keys'), id, JSON.stringify({ ...rec, revokedAt: candidate }), candidate, pending?.id ?? '', pending?.entry ?? '')) as [string, number];
    // Every caller writes the winning time to the record authentication reads before it answers.
    if (revokedAt !== candidate || rec.revokedAt) await this.redis.set(this.keys.apiKey(hash), JSON.stringify({ ...record, revokedAt }), 'XX');
    const key = await this.get(id, now);
    return key ? { key, revoked: changed === 1 } : null;
  }
}

/**
 * KEYS: the key index, its pending audit entries (same slot). ARGV: id, index entry, the creation's
 * pending audit id and entry ('' for none), its deadline (writeDeadline) → 1, or -1 past the deadline
 * (nothing written).
 */
export const CREATE_LUA = `
${lateWriteLua('ARGV[5]')}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return 1
`;

/** KEYS: the record authentication reads. ARGV: the record, its deadline (writeDeadline) → 1, or -1 past it (not written). */
export const SET_RECORD_LUA = `
${lateWriteLua('ARGV[2]')}
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;

/**
 * KEYS: the key index, its pending audit entries (same slot). ARGV: id, the entry revoked, its
 * revocation time, the revocation's pending audit id and entry ('' for none) → {revokedAt, 1 if this
 * call revoked it}. The audit entry is recorded pending only by the call that revokes.
 */
const REVOKE_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return {ARGV[3], 0} end
local at = cjson.decode(cur)['revokedAt']
if type(at) == 'string' and at ~= '' then return {at, 0} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[5]) end
return {ARGV[3], 1}
`;

/** A key record (by hash) or index record of the shape lookup and toPublic read. */
function isIndexRecord(v: unknown): boolean {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['role'] === 'string' && typeof v['createdAt'] === 'string';
}

function toPublic(r: IndexRecord, used: Record<string, string>, now: number): PublicApiKey {
  const status = r.revokedAt ? 'revoked' : r.expiresAt && Date.parse(r.expiresAt) <= now ? 'expired' : 'active';
  return {
    id: r.id,
    role: r.role,
    partnerId: r.partnerId ?? null,
    name: r.name ?? null,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt ?? null,
    revokedAt: r.revokedAt ?? null,
    lastUsedAt: used[r.id] ?? null,
    status,
  };
}
