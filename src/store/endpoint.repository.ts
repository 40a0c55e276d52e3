/**
 * Partner webhook endpoints: one hash per endpoint (fields, so that a disable by the delivery worker
 * and an operator's PATCH never overwrite each other), an id set per partner, and an attempt log per
 * endpoint (a capped stream, newest first when read).
 */
import type { AttemptRecord, EndpointRecord, OutboundEventType, PreviousSecret } from '../outbound/outbound.types.js';
import type { PendingAudit } from './audit.repository.js';
import type { Keys } from './keys.js';
import { defineOutboundScripts } from './outbound.scripts.js';
import type { RedisClient } from './redis.js';
import { exclusiveBelow } from './stream-id.js';
import type { Logger } from 'pino';
import { isPlainObject, logLeftOut, parseListed, parseStored, readStored, StoredRecordCorruptError, type OnUnreadable } from './stored-record.js';

/** A stored delivery attempt's shape (what the attempt lists read). */
function isAttemptRecord(v: unknown): boolean {
  return isPlainObject(v) && typeof v['messageId'] === 'string' && typeof v['at'] === 'string' && typeof v['success'] === 'boolean' && typeof v['attempt'] === 'number';
}

/**
 * KEYS: the partner's endpoint index, its pending audit entries (same slot). ARGV: endpoint id, the
 * change's pending audit id and entry ('' for none); ADD's fourth, the most endpoints the index may hold.
 * ADD puts the endpoint in the index unless it holds that many already (-1: nothing changed), DELETE
 * takes it out; the entry is recorded pending only when the index changed (1 = changed). The count and
 * the add are one step: concurrent creates cannot pass the cap between them.
 */
const ADD_INDEXED_LUA = `
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 1
`;
const DELETE_INDEXED_LUA = `
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 1
`;

/** Previous (rotated-out) secrets kept per endpoint at most, the newest; each only until its grace ends. */
export const MAX_PREVIOUS_SECRETS = 5;
/** Attempts kept per endpoint (older ones are trimmed). */
const ATTEMPT_LOG_MAX = 5_000;
/** How long listCached serves a partner's endpoint list (changes made through another process show within this). */
export const ENDPOINT_LIST_CACHE_MS = 1000;

type Fields = Partial<Record<keyof EndpointRecord, string>>;

function toFields(e: Partial<EndpointRecord>): Fields {
  const f: Fields = {};
  for (const [k, v] of Object.entries(e) as [keyof EndpointRecord, unknown][]) {
    if (v === undefined) continue;
    if (k === 'events') f[k] = JSON.stringify(v);
    else if (k === 'olderPreviousSecrets') f[k] = (v as unknown[]).length > 0 ? JSON.stringify(v) : '';
    else if (k === 'enabled') f[k] = v ? '1' : '0';
    else f[k] = v === null ? '' : String(v);
  }
  return f;
}

/** Records written before olderPreviousSecrets existed have no such field: none. */
function parseOlder(raw: string | undefined): PreviousSecret[] {
  if (!raw) return [];
  try {
    const list = JSON.parse(raw) as unknown;
    return Array.isArray(list) ? list.filter((s): s is PreviousSecret => typeof s === 'object' && s !== null && typeof (s as PreviousSecret).sealed === 'string' && typeof (s as PreviousSecret).expiresAt === 'string') : [];
  } catch {
    return [];
  }
}

/** A stored `events` field: the event types the endpoint takes (JSON of another shape threw TypeErrors later, in every emit of the partner). */
const isEventList = (v: unknown): boolean => Array.isArray(v) && v.every((e) => typeof e === 'string');

function fromFields(h: Record<string, string>, key: string): EndpointRecord | null {
  if (!h['id'] || !h['partnerId']) return null;
  const opt = (k: string): string | null => (h[k] ? h[k] : null);
  return {
    id: h['id'],
    partnerId: h['partnerId'],
    url: h['url'] ?? '',
    events: parseStored<OutboundEventType[]>('endpoint', h['id'], key, h['events'] ?? '[]', isEventList),
    description: opt('description'),
    enabled: h['enabled'] === '1',
    secretSealed: h['secretSealed'] ?? '',
    previousSecretSealed: opt('previousSecretSealed'),
    previousSecretExpiresAt: opt('previousSecretExpiresAt'),
    olderPreviousSecrets: parseOlder(h['olderPreviousSecrets']),
    disabledAt: opt('disabledAt'),
    disabledReason: opt('disabledReason'),
    failingSince: h['failingSince'] ? Number(h['failingSince']) : null,
    lastSuccessAt: opt('lastSuccessAt'),
    createdAt: h['createdAt'] ?? '',
    updatedAt: h['updatedAt'] ?? '',
  };
}

export interface AttemptPage {
  attempts: (AttemptRecord & { id: string })[];
  nextCursor: string | null;
}

export class EndpointRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly log?: Logger,
  ) {
    defineOutboundScripts(redis);
  }

  /**
   * `audit`: the creation's entry, recorded pending (`AuditRepository.settle`) with the index entry (one
   * script): an endpoint made by a request whose audit write then failed gets deliveries, and its
   * entry is written by the retry (which makes another). False (nothing indexed, its record deleted, no
   * entry) when the partner's index holds `maxPerPartner` endpoints already: every message fans out to
   * every endpoint, so their number is capped (OUTBOUND_ENDPOINTS_PER_PARTNER), counted in the script
   * that adds (concurrent creates cannot pass it).
   */
  async create(e: EndpointRecord, maxPerPartner: number, audit?: PendingAudit): Promise<boolean> {
    const key = this.keys.endpoint(e.partnerId, e.id);
    await this.redis.hset(key, toFields(e));
    const added = (await this.redis.eval(ADD_INDEXED_LUA, 2, this.keys.partnerEndpoints(e.partnerId), this.keys.auditPending({ partnerId: e.partnerId }), e.id, audit?.id ?? '', audit?.entry ?? '', maxPerPartner)) as number;
    if (added === -1) {
      await this.redis.del(key);
      return false;
    }
    this.changed(e.partnerId);
    return true;
  }

  /**
   * The partner's endpoints for OutboundService.emit (every attributed order and every mirror change
   * emits): a list at most ENDPOINT_LIST_CACHE_MS old. Writes through this repository (create,
   * update, enable/disable, rotate, delete) drop the partner's entry at once, and a read that was in
   * flight across such a write is not kept; a change made in another process (an operator's PATCH in
   * the API while this is a worker, the delivery worker disabling an endpoint) is seen within
   * ENDPOINT_LIST_CACHE_MS. A delivery for an endpoint disabled or deleted meanwhile ends as failed
   * without sending (DeliveryService reads the endpoint itself before every attempt). The records are
   * shared: read them, never change them.
   */
  private readonly lists = new Map<string, { list: readonly EndpointRecord[]; at: number }>();
  private generation = 0;
  async listCached(partnerId: string): Promise<readonly EndpointRecord[]> {
    const now = Date.now();
    const hit = this.lists.get(partnerId);
    if (hit && now - hit.at < ENDPOINT_LIST_CACHE_MS) return hit.list;
    const generation = this.generation;
    const list = await this.list(partnerId);
    if (generation === this.generation) {
      if (this.lists.size >= 10_000) this.lists.clear();
      this.lists.set(partnerId, { list, at: now });
    }
    return list;
  }
  private changed(partnerId: string): void {
    this.generation += 1;
    this.lists.delete(partnerId);
  }

  /** The endpoint; null when none. One that does not read (a key of another type, its events not a JSON list) is a StoredRecordCorruptError. */
  async get(partnerId: string, endpointId: string): Promise<EndpointRecord | null> {
    const key = this.keys.endpoint(partnerId, endpointId);
    return fromFields(await readStored('endpoint', endpointId, key, () => this.redis.hgetall(key)), key);
  }

  /**
   * What decides whether a delivery to the endpoint is sent (DeliveryService settleWithoutSend):
   * whether it is enabled, why not, and its events (one HMGET), or null when it is gone.
   */
  async gate(partnerId: string, endpointId: string): Promise<Pick<EndpointRecord, 'enabled' | 'disabledReason' | 'events'> | null> {
    const key = this.keys.endpoint(partnerId, endpointId);
    const [id, enabled, disabledReason, events] = await readStored('endpoint', endpointId, key, () => this.redis.hmget(key, 'id', 'enabled', 'disabledReason', 'events'));
    return id ? { enabled: enabled === '1', disabledReason: disabledReason ?? null, events: parseStored<OutboundEventType[]>('endpoint', endpointId, key, events ?? '[]', isEventList) } : null;
  }

  /**
   * The partner's endpoints. One that does not read is left out (counted, handed to `onUnreadable`):
   * before, its error failed the list route and every emit of the partner (each mirror change, each
   * attributed order), so no endpoint of the partner was told anything.
   */
  async list(partnerId: string, onUnreadable: OnUnreadable = logLeftOut(this.log, 'endpoint')): Promise<EndpointRecord[]> {
    const ids = await this.redis.smembers(this.keys.partnerEndpoints(partnerId));
    const all = await Promise.all(
      ids.map((id) =>
        this.get(partnerId, id).catch((err: unknown) => {
          if (!(err instanceof StoredRecordCorruptError)) throw err;
          onUnreadable(err);
          return null;
        }),
      ),
    );
    return all.filter((e): e is EndpointRecord => e !== null).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Sets the given fields (null clears) while the endpoint exists; false when it does not. */
  async update(partnerId: string, endpointId: string, patch: Partial<Omit<EndpointRecord, 'id' | 'partnerId'>>): Promise<boolean> {
    const pairs = Object.entries(toFields(patch)).flat();
    if (pairs.length === 0) return (await this.get(partnerId, endpointId)) !== null;
    try {
      return (await this.redis.scObHsetIfExists(this.keys.endpoint(partnerId, endpointId), 'id', ...pairs)) === 1;
    } finally {
      this.changed(partnerId);
    }
  }

  /**
   * New current secret; the current one becomes the newest previous one until `previousExpiresAt`,
   * earlier previous ones still in their grace period stay (at most MAX_PREVIOUS_SECRETS, expired ones
   * dropped) — one atomic step (ENDPOINT_ROTATE_LUA). `audit`: the rotation's entry, recorded pending in
   * the endpoint's slot by the same step (`AuditRepository.settle`; announce the scope first): a
   * rotation whose audit write then failed is not redone by the retry (that is another rotation).
   */
  async rotateSecret(partnerId: string, endpointId: string, sealed: string, previousExpiresAt: string, at = new Date(), audit?: PendingAudit): Promise<boolean> {
    try {
      return (await this.redis.scObEndpointRotate(this.keys.endpoint(partnerId, endpointId), this.keys.auditPending({ partnerId, endpointId }), sealed, previousExpiresAt, at.toISOString(), MAX_PREVIOUS_SECRETS, audit?.id ?? '', audit?.entry ?? '')) === 1;
    } finally {
      this.changed(partnerId);
    }
  }

  /**
   * Deletes the endpoint. `audit` (the delete's entry) is recorded pending (`AuditRepository.settle`)
   * by the same script that takes the endpoint out of the partner's index, only if this call did: a
   * retry of a delete whose audit write failed finds it gone (404) and would write no entry of its own.
   * An endpoint with a record but no index entry (a create that failed half-way) records it after.
   */
  async delete(partnerId: string, endpointId: string, audit?: PendingAudit): Promise<boolean> {
    const n = (await this.redis.eval(DELETE_INDEXED_LUA, 2, this.keys.partnerEndpoints(partnerId), this.keys.auditPending({ partnerId }), endpointId, audit?.id ?? '', audit?.entry ?? '')) as number;
    const d = await this.redis.del(this.keys.endpoint(partnerId, endpointId), this.keys.endpointAttempts(partnerId, endpointId));
    this.changed(partnerId);
    // HSETNX: the first request's entry stays (its id is the endpoint's: written once, see the route).
    if (n === 0 && d > 0 && audit) await this.redis.hsetnx(this.keys.auditPending({ partnerId }), audit.id, audit.entry);
    return n > 0 || d > 0;
  }

  /** A 2xx from an attempt that started at `startedAt`: stops the failure clock (see the Lua). */
  async recordSuccess(partnerId: string, endpointId: string, startedAt: Date): Promise<void> {
    await this.redis.scObEndpointSucceeded(this.keys.endpoint(partnerId, endpointId), startedAt.getTime(), startedAt.toISOString());
  }

  /** A failed attempt that started at `startMs`: starts the failure clock unless it already runs. */
  async recordFailure(partnerId: string, endpointId: string, startMs: number): Promise<void> {
    await this.redis.scObEndpointFailed(this.keys.endpoint(partnerId, endpointId), startMs);
  }

  /** Disables the endpoint if no attempt to it has succeeded since `sinceMs`; true when it did. */
  async disableIfFailingSince(partnerId: string, endpointId: string, sinceMs: number, reason: string, at = new Date()): Promise<boolean> {
    try {
      return (await this.redis.scObDisableIfFailing(this.keys.endpoint(partnerId, endpointId), sinceMs, at.toISOString(), reason)) === 1;
    } finally {
      this.changed(partnerId);
    }
  }

  async disable(partnerId: string, endpointId: string, reason: string, at = new Date()): Promise<boolean> {
    const iso = at.toISOString();
    return this.update(partnerId, endpointId, { enabled: false, disabledAt: iso, disabledReason: reason, updatedAt: iso });
  }

  /** Appends to the attempt log while the endpoint exists (an attempt that outlived its endpoint's delete writes nothing). */
  async addAttempt(partnerId: string, endpointId: string, a: AttemptRecord): Promise<void> {
    await this.redis.scObAttemptAdd(this.keys.endpoint(partnerId, endpointId), this.keys.endpointAttempts(partnerId, endpointId), ATTEMPT_LOG_MAX, JSON.stringify(a));
  }

  /**
   * Newest first; `cursor` is the id of the last attempt of the previous page. An entry that does not
   * read (not JSON, of another shape) is left out, after `onUnreadable` (counted; the page and its cursor
   * as if it were there): one such entry failed the list, and GET /v1/ops/endpoints for everyone. A log
   * of another type is a StoredRecordCorruptError.
   */
  async attempts(partnerId: string, endpointId: string, limit: number, cursor?: string, onUnreadable?: OnUnreadable): Promise<AttemptPage> {
    const end = cursor ? exclusiveBelow(cursor) : '+';
    if (end === null) return { attempts: [], nextCursor: null }; // nothing is older than 0-0
    const key = this.keys.endpointAttempts(partnerId, endpointId);
    const rows = await readStored('attempt', endpointId, key, () => this.redis.xrevrange(key, end, '-', 'COUNT', limit + 1));
    const page = rows.slice(0, limit);
    const attempts = page.flatMap(([id, fields]) => {
      const a = parseListed<AttemptRecord>('attempt', `${endpointId}/${id}`, key, fields[1] ?? '', isAttemptRecord, onUnreadable);
      return a ? [{ ...a, id }] : [];
    });
    return { attempts, nextCursor: rows.length > limit ? (page.at(-1)?.[0] ?? null) : null };
  }
}
