/**
 * Shows: the inbox + event log + desired-state registers (one Lua script, one hash slot, so the
 * acknowledgement covers all three), mirrors and intents.
 */
import type { DesiredShow, RegisterWrite } from '../domain/desired-state.js';
import { deriveDesired, productFields, productOf } from '../domain/desired-state.js';
import type { Product } from '../domain/events.js';
import type { MirrorDoc } from '../domain/mirror.js';
import type { Result } from 'ioredis';
import { assertHeld, LeaseLostError, type MirrorLease } from './intent.repository.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * KEYS: inbox, events stream, desired hash. ARGV: webhookId, event json, inbox ttl s, order key,
 * then field/value pairs. Returns {1, eventId, version, changed} or {0, existingEventId}.
 */
const INGEST_SHOW_LUA = `
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
local eventId = redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*', 'wid', ARGV[1], 'event', ARGV[2])
redis.call('SET', KEYS[1], eventId, 'EX', tonumber(ARGV[3]))
local key = ARGV[4]
local changed = 0
for i = 5, #ARGV, 2 do
  local field = ARGV[i]
  local cur = redis.call('HGET', KEYS[3], field .. '@')
  if (not cur) or cur < key then
    redis.call('HSET', KEYS[3], field, ARGV[i + 1], field .. '@', key)
    changed = 1
  end
end
local v
if changed == 1 then v = redis.call('HINCRBY', KEYS[3], 'v', 1) else v = tonumber(redis.call('HGET', KEYS[3], 'v') or '0') end
return {1, eventId, v, changed}
`;

/** KEYS: inbox, events stream. ARGV: webhookId, event json, ttl. */
const INGEST_PLAIN_LUA = `
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
local eventId = redis.call('XADD', KEYS[2], '*', 'wid', ARGV[1], 'event', ARGV[2])
redis.call('SET', KEYS[1], eventId, 'EX', tonumber(ARGV[3]))
return {1, eventId}
`;

/**
 * KEYS: mirror, its lease. ARGV: expected rev, json (with the new rev), the writer's lease token ('' for
 * operator actions), lease ttl ms. Compare-and-set: the stored mirror must still be at the revision the
 * writer read, so a sync and an operator action cannot overwrite each other; no other sync run may
 * hold the lease (src/store/intent.repository.ts), so a stalled run cannot write after a takeover.
 * Returns 1 when saved, 0 on a revision conflict, -1 when another run owns the mirror.
 */
const SAVE_MIRROR_LUA = `
if ARGV[3] ~= '' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[3] then return -1 end
  if not holder then redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4])) end
end
local cur = redis.call('GET', KEYS[1])
local rev = 0
if cur then rev = tonumber(cjson.decode(cur)['rev'] or 0) end
if rev ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scSaveMirror(mirror: string, lease: string, ...args: (string | number)[]): Result<number, Context>;
    scIngestShow(inbox: string, events: string, desired: string, ...args: (string | number)[]): Result<[number, string, number?, number?], Context>;
    scIngestPlain(inbox: string, events: string, ...args: (string | number)[]): Result<[number, string], Context>;
  }
}

export function defineStoreScripts(redis: RedisClient): void {
  if (typeof (redis as unknown as { scIngestShow?: unknown }).scIngestShow === 'function') return;
  redis.defineCommand('scIngestShow', { numberOfKeys: 3, lua: INGEST_SHOW_LUA });
  redis.defineCommand('scIngestPlain', { numberOfKeys: 2, lua: INGEST_PLAIN_LUA });
  redis.defineCommand('scSaveMirror', { numberOfKeys: 2, lua: SAVE_MIRROR_LUA });
}

export class MirrorConflictError extends Error {
  override readonly name = 'MirrorConflictError';
}

export interface IngestResult {
  duplicate: boolean;
  eventId: string;
  version: number;
  changed: boolean;
}

export class ShowRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly inboxTtlSec: number,
  ) {
    defineStoreScripts(redis);
  }

  async ingest(partnerId: string, showId: string, webhookId: string, eventJson: string, orderKey: string, write: RegisterWrite): Promise<IngestResult> {
    const k = this.keys;
    const r = await this.redis.scIngestShow(
      k.showInbox(partnerId, showId, webhookId),
      k.showEvents(partnerId, showId),
      k.desired(partnerId, showId),
      webhookId,
      eventJson,
      this.inboxTtlSec,
      orderKey,
      write.field,
      write.value,
    );
    if (r[0] === 0) return { duplicate: true, eventId: r[1], version: 0, changed: false };
    return { duplicate: false, eventId: r[1], version: Number(r[2] ?? 0), changed: r[3] === 1 };
  }

  async desired(partnerId: string, showId: string): Promise<DesiredShow | null> {
    const h = await this.redis.hgetall(this.keys.desired(partnerId, showId));
    return deriveDesired(showId, h);
  }

  /** The product as the show's desired state has it now (latest `product.updated` or snapshot). */
  async currentProduct(partnerId: string, showId: string, productId: string): Promise<Product | undefined> {
    const values = await this.redis.hmget(this.keys.desired(partnerId, showId), ...productFields(productId));
    return productOf(productId, values);
  }

  async version(partnerId: string, showId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.desired(partnerId, showId), 'v')) ?? 0);
  }

  async indexShow(partnerId: string, showId: string, scheduledAtMs: number): Promise<void> {
    await this.redis.zadd(this.keys.partnerShows(partnerId), scheduledAtMs, showId);
  }

  async listShowIds(partnerId: string, offset: number, limit: number): Promise<{ ids: string[]; total: number }> {
    const key = this.keys.partnerShows(partnerId);
    const [ids, total] = await Promise.all([this.redis.zrevrange(key, offset, offset + limit - 1), this.redis.zcard(key)]);
    return { ids, total };
  }

  async getMirror(partnerId: string, showId: string, targetId: string): Promise<MirrorDoc | null> {
    const raw = await this.redis.get(this.keys.mirror(partnerId, showId, targetId));
    return raw ? (JSON.parse(raw) as MirrorDoc) : null;
  }

  async getMirrors(partnerId: string, showId: string, targetIds: string[]): Promise<(MirrorDoc | null)[]> {
    if (targetIds.length === 0) return [];
    const raws = await this.redis.mget(...targetIds.map((t) => this.keys.mirror(partnerId, showId, t)));
    return raws.map((r) => (r ? (JSON.parse(r) as MirrorDoc) : null));
  }

  /**
   * Read-modify-write of a mirror with compare-and-set, retried on conflict (operator actions racing
   * a running sync). `change` returns false to leave the mirror as it is.
   */
  async updateMirror(partnerId: string, showId: string, targetId: string, init: () => MirrorDoc, change: (m: MirrorDoc) => boolean): Promise<MirrorDoc | null> {
    for (let attempt = 0; ; attempt++) {
      const m = (await this.getMirror(partnerId, showId, targetId)) ?? init();
      if (!change(m)) return null;
      try {
        await this.saveMirror(partnerId, showId, m);
        return m;
      } catch (err) {
        if (!(err instanceof MirrorConflictError) || attempt >= 20) throw err;
      }
    }
  }

  /**
   * Saves the mirror if nobody else saved it since it was read (its `rev`); throws
   * MirrorConflictError otherwise — the caller reads it again and redoes its decision. A sync run
   * passes its lease: the save is refused with LeaseLostError once another run owns the mirror.
   */
  async saveMirror(partnerId: string, showId: string, mirror: MirrorDoc, lease?: MirrorLease): Promise<void> {
    assertHeld(lease, `mirror ${showId}/${mirror.targetId}`);
    const expected = mirror.rev ?? 0;
    const now = new Date().toISOString();
    const since = mirror.since?.state === mirror.state ? mirror.since : { state: mirror.state, at: now };
    const next: MirrorDoc = { ...mirror, rev: expected + 1, updatedAt: now, since };
    const k = this.keys;
    const ok = await this.redis.scSaveMirror(k.mirror(partnerId, showId, mirror.targetId), k.mirrorLease(partnerId, showId, mirror.targetId), expected, JSON.stringify(next), lease?.token ?? '', lease?.ttlMs ?? 0);
    if (ok === -1) throw new LeaseLostError(`mirror ${showId}/${mirror.targetId}: this run no longer owns it`);
    if (ok !== 1) throw new MirrorConflictError(`mirror ${showId}/${mirror.targetId} changed since it was read`);
    mirror.rev = next.rev;
    mirror.updatedAt = next.updatedAt;
    mirror.since = since;
  }

  /** Shows with possibly unfinished mirrors, for the sweep. Member = JSON [partnerId, showId]. */
  async markActive(partnerId: string, showId: string): Promise<void> {
    await this.redis.zadd(this.keys.activeShows(), Date.now(), JSON.stringify([partnerId, showId]));
  }
  async markInactive(partnerId: string, showId: string): Promise<void> {
    await this.redis.zrem(this.keys.activeShows(), JSON.stringify([partnerId, showId]));
  }
  async activeShows(limit = 5000): Promise<[string, string][]> {
    const members = await this.redis.zrange(this.keys.activeShows(), 0, limit - 1);
    return members.map((m) => JSON.parse(m) as [string, string]);
  }
}

/** Order events only need inbox + durable record here; attribution consumes them from its queue. */
export class OrderEventRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly inboxTtlSec: number,
  ) {
    defineStoreScripts(redis);
  }

  async ingest(partnerId: string, orderId: string, webhookId: string, eventJson: string): Promise<{ duplicate: boolean; eventId: string }> {
    const r = await this.redis.scIngestPlain(this.keys.orderInbox(partnerId, orderId, webhookId), this.keys.orderEvents(partnerId, orderId), webhookId, eventJson, this.inboxTtlSec);
    return { duplicate: r[0] === 0, eventId: r[1] };
  }
}
