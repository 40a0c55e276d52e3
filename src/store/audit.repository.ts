/**
 * The operator audit log: who (API key id, role and name), what (action), when, and on which
 * partner / show / target. Two Redis streams per entry: the global one (every action, also those on
 * no partner such as key creation) and the partner's own (so a partner key's query reads only its
 * partner's stream). Stream ids are time-ordered: the cursor is the last id returned and a time range
 * maps to an id range, so paging and `from`/`to` cost no scan of older entries.
 */
import { randomId } from '../lib/ids.js';
import type { Principal } from './apikey.repository.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';
import { exclusiveBelow, idAtOrAfter, idsBefore, streamIdTime } from './stream-id.js';
import { isPlainObject, parseListed, type OnUnreadable } from './stored-record.js';

export interface AuditActor {
  keyId: string;
  role: string;
  name?: string | undefined;
}

/** What a route records of an action; the entry gets its id, time and actor when it is written. */
export interface AuditWrite {
  action: string;
  partnerId?: string | undefined;
  showId?: string | undefined;
  targetId?: string | undefined;
  requestId?: string | undefined;
  /** Action-specific facts (ids of the objects touched, fields changed): never secrets. */
  detail?: Record<string, unknown> | undefined;
}

export interface AuditEntry extends AuditWrite {
  id: string;
  at: string;
  actor: AuditActor;
}

export interface AuditFilter {
  partnerId?: string | undefined;
  showId?: string | undefined;
  targetId?: string | undefined;
  /** Exact action, or a prefix ending in `.` (`mirror.` = every mirror action). */
  action?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  limit: number;
  cursor?: string | undefined;
}

const MAX_LEN = '100000';
/** How long `recordOnce` remembers an entry it wrote (a retry later than this would write it again). */
const ONCE_TTL_S = 30 * 86_400;

/**
 * KEYS: once, stream. ARGV: maxlen, body, ttl s. Appends the entry unless `once` says it was; 1 = appended.
 * The XADD comes first: a stream it cannot append to (an error) aborts the script with nothing written,
 * so the retry appends it.
 */
const RECORD_ONCE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'entry', ARGV[2])
redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[3]))
return 1
`;
/**
 * Where changes whose audit entry is written after them keep that entry until it is in the log
 * (`Keys.auditPending`): one hash per slot the changes are made in (the API key index's, a partner's,
 * an endpoint's, a show's).
 */
export type AuditScope = 'keys' | { partnerId: string } | EndpointAuditScope | ShowAuditScope;
/** An outbound endpoint's slot (its secret rotation). */
export interface EndpointAuditScope {
  partnerId: string;
  endpointId: string;
}
/** A show's slot (its ingest key rotation). */
export interface ShowAuditScope {
  partnerId: string;
  showId: string;
}
const SCOPE_KEYS: AuditScope = 'keys';
/**
 * How long an announced endpoint or show scope stays on the partner's list after its last announced
 * change (`announce`): a change made later than this after its announcement (a request stalled that
 * long between the two steps) would wait unseen until the next change announced there.
 */
const ANNOUNCED_KEEP_MS = 15 * 60_000;
/** KEYS: the partner's announced scopes. ARGV: member. Scores it with Redis's clock (ms). */
const ANNOUNCE_SCOPE_LUA = `
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
`;
/**
 * KEYS: the partner's announced scopes. ARGV: member, score read, keep ms. Forgets it unless announced
 * again since, and only once its last announcement is older than keep ms on Redis's clock: scores and
 * the comparison both on one clock, so an API host whose clock is slow does not get its scope forgotten
 * before its change's entry is there.
 */
const FORGET_SCOPE_LUA = `
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) > tonumber(ARGV[2]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(cur) < now - tonumber(ARGV[3]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;

type SettleResult = { written: number; failed: { id: string; error: unknown }[] };

function scopeMember(scope: EndpointAuditScope | ShowAuditScope): string {
  return 'endpointId' in scope ? `e:${scope.endpointId}` : `s:${scope.showId}`;
}

/**
 * An audit entry that the change's own script records (HSET `id` → `entry` into the scope's pending
 * hash, only when the change is made), so that it survives an audit write that fails after the change:
 * `AuditRepository.settle` writes it, once, then clears it. `id` is unique per change (the once-mark).
 */
export interface PendingAudit {
  id: string;
  entry: string;
}

/** Entries read per XREVRANGE round, and at most this many rounds per page (a narrow filter hands back a cursor). */
const BATCH = 200;
const MAX_ROUNDS = 25;

export function actorOf(p: Principal | null | undefined): AuditActor {
  if (!p) return { keyId: 'anonymous', role: 'none' };
  return { keyId: p.id, role: p.role, ...(p.name ? { name: p.name } : {}) };
}

export class AuditRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async record(actor: AuditActor, w: AuditWrite): Promise<void> {
    // `at` as read back is the time of the entry's stream id (Redis's clock, see list). This
    // process's clock is stored too, for readers of an older version during a rolling deploy.
    const body = JSON.stringify({ at: new Date().toISOString(), actor, ...w });
    await this.redis.xadd(this.keys.auditAll(), 'MAXLEN', '~', MAX_LEN, '*', 'entry', body);
    if (w.partnerId) await this.redis.xadd(this.keys.audit(w.partnerId), 'MAXLEN', '~', MAX_LEN, '*', 'entry', body);
  }

  /**
   * `record`, once per `id` however often it is called (at once or on retries, for 30 days): for an
   * action done by one step and audited by a later one, which any call that finds the action not yet
   * audited completes. Each stream's entry and its "written" mark are one script in that stream's slot.
   */
  async recordOnce(id: string, actor: AuditActor, w: AuditWrite, at = new Date().toISOString()): Promise<void> {
    const body = JSON.stringify({ at, actor, ...w });
    await this.redis.eval(RECORD_ONCE_LUA, 2, this.keys.auditOnce(id), this.keys.auditAll(), MAX_LEN, body, ONCE_TTL_S);
    if (w.partnerId) await this.redis.eval(RECORD_ONCE_LUA, 2, this.keys.auditOnce(id, w.partnerId), this.keys.audit(w.partnerId), MAX_LEN, body, ONCE_TTL_S);
  }

  /**
   * The audit entry of a change, to be recorded by the change's own script (see `PendingAudit`):
   * a change and its entry are then never apart, whichever step fails after the change.
   */
  pending(actor: AuditActor, w: AuditWrite, id: string = randomId('aud_')): PendingAudit {
    return { id, entry: JSON.stringify({ at: new Date().toISOString(), actor, ...w }) };
  }

  /**
   * Before a change whose script records its entry pending in an endpoint's or a show's slot: puts that
   * scope on the partner's list (`Keys.auditPendingScopes`), so that settling the partner (GET /v1/audit,
   * the scheduler's minute tick, every change of the partner) writes the entry too, also when nobody
   * changes that endpoint or show again. Before the change, as a separate step: the list is in the
   * partner's slot, the change in another; a request that fails here has changed nothing.
   */
  async announce(scope: EndpointAuditScope | ShowAuditScope): Promise<void> {
    await this.redis.eval(ANNOUNCE_SCOPE_LUA, 1, this.keys.auditPendingScopes(scope.partnerId), scopeMember(scope));
  }

  /**
   * Writes every entry still pending in the scope (each once: `recordOnce` with its id), then clears it.
   * Called by every request that may make such a change (and so by its retry): a request whose audit
   * write failed (5xx) after the change leaves the entry pending, and the retry, which finds the change
   * made (404, 200 unchanged) and would write nothing of its own, writes it. Oldest first. A partner's
   * scope includes the endpoint and show scopes announced on its list (`announce`).
   */
  async settle(scope: AuditScope): Promise<SettleResult> {
    const out = await this.settleOne(scope);
    if (scope !== 'keys' && !('endpointId' in scope) && !('showId' in scope)) {
      const more = await this.settleAnnounced(scope.partnerId);
      out.written += more.written;
      out.failed.push(...more.failed);
    }
    return out;
  }

  /**
   * `settle` of every endpoint and show scope on the partner's list. A scope leaves the list once
   * nothing waits in it and no change was announced there for ANNOUNCED_KEEP_MS (one announced again
   * meanwhile stays: the removal compares the score). A scope whose write fails does not hold up the
   * others: each is tried, then the first error is thrown.
   */
  private async settleAnnounced(partnerId: string): Promise<SettleResult> {
    const key = this.keys.auditPendingScopes(partnerId);
    const out: SettleResult = { written: 0, failed: [] };
    const flat = await this.redis.zrange(key, 0, -1, 'WITHSCORES');
    let firstError: { error: unknown } | null = null;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const member = flat[i] as string;
      const score = Number(flat[i + 1]);
      const id = member.slice(2);
      const scope = member.startsWith('e:') ? { partnerId, endpointId: id } : member.startsWith('s:') ? { partnerId, showId: id } : null;
      if (scope === null || id === '') {
        await this.redis.zrem(key, member);
        continue;
      }
      try {
        const r = await this.settleOne(scope);
        out.written += r.written;
        out.failed.push(...r.failed);
        if (r.failed.length === 0) await this.redis.eval(FORGET_SCOPE_LUA, 1, key, member, String(score), ANNOUNCED_KEEP_MS);
      } catch (error) {
        firstError ??= { error };
      }
    }
    if (firstError) throw firstError.error;
    return out;
  }

  private async settleOne(scope: AuditScope): Promise<SettleResult> {
    const key = this.keys.auditPending(scope);
    const failed: { id: string; error: unknown }[] = [];
    const ids = await this.redis.hkeys(key);
    if (ids.length === 0) return { written: 0, failed };
    const raws = await this.redis.hmget(key, ...ids);
    const waiting: { id: string; at: string; actor: AuditActor; w: AuditWrite }[] = [];
    ids.forEach((id, i) => {
      const raw = raws[i];
      if (!raw) return; // settled meanwhile by another request
      try {
        const { at, actor, ...w } = JSON.parse(raw) as AuditWrite & { at?: string; actor?: AuditActor };
        waiting.push({ id, at: at ?? new Date().toISOString(), actor: actor ?? { keyId: 'unknown', role: 'unknown' }, w });
      } catch (error) {
        failed.push({ id, error });
      }
    });
    waiting.sort((a, b) => a.at.localeCompare(b.at) || a.id.localeCompare(b.id));
    // An unreadable entry (it cannot be written, ever) stays pending and is reported; the others are
    // written all the same, and the request that settles goes on with its own change: one bad entry
    // must not make every later change of its scope a 5xx. A write Redis refuses throws, as before.
    let written = 0;
    for (const p of waiting) {
      await this.recordOnce(p.id, p.actor, p.w, p.at);
      await this.redis.hdel(key, p.id);
      written++;
    }
    return { written, failed };
  }

  /**
   * `settle` for the API key scope and every partner's: run by the scheduler every minute, so that an
   * entry whose change was never retried (the client went away after a 5xx, the process died after the
   * change) reaches the log without waiting for the next change of its scope.
   */
  async settleAll(partnerIds: Iterable<string>): Promise<{ written: number; failed: { id: string; error: unknown }[]; scopesFailed: { scope: AuditScope; error: unknown }[] }> {
    const out = { written: 0, failed: [] as { id: string; error: unknown }[], scopesFailed: [] as { scope: AuditScope; error: unknown }[] };
    for (const scope of [SCOPE_KEYS, ...Array.from(partnerIds, (partnerId) => ({ partnerId }))]) {
      // One scope whose write fails (its stream's node down, a key of the wrong type) is reported and
      // the others are settled all the same: it stopped every partner after it in the list.
      try {
        const r = await this.settle(scope);
        out.written += r.written;
        out.failed.push(...r.failed);
      } catch (error) {
        out.scopesFailed.push({ scope, error });
      }
    }
    return out;
  }

  /** Newest first. `nextCursor` is null when nothing older matches within the range. */
  /** One page of the log. An entry that does not read (not JSON, not an object) is left out, counted and handed to `onUnreadable`. */
  async list(f: AuditFilter, onUnreadable?: OnUnreadable): Promise<{ entries: AuditEntry[]; nextCursor: string | null }> {
    const stream = f.partnerId ? this.keys.audit(f.partnerId) : this.keys.auditAll();
    const lowest = f.from ? idAtOrAfter(f.from.getTime()) : '-';
    // A cursor comes from a page of the same range: it is below `to`. No id below 0-0 or before 1970: an empty page.
    const upper = f.cursor ? exclusiveBelow(f.cursor) : f.to ? idsBefore(f.to.getTime()) : '+';
    if (upper === null) return { entries: [], nextCursor: null };
    let end = upper;
    const entries: AuditEntry[] = [];
    let lastId: string | null = null;
    let exhausted = false;
    for (let round = 0; round < MAX_ROUNDS && entries.length < f.limit; round++) {
      const batch = await this.redis.xrevrange(stream, end, lowest, 'COUNT', BATCH);
      if (batch.length === 0) {
        exhausted = true;
        break;
      }
      for (const [id, fields] of batch) {
        lastId = id;
        const raw = fields[fields.indexOf('entry') + 1];
        if (!raw) continue;
        // Before, one entry that did not read failed every page of the log it was on.
        const stored = parseListed<Omit<AuditEntry, 'id'>>('audit', id, stream, raw, isPlainObject, onUnreadable);
        if (!stored) continue;
        const e = { id, ...stored } as AuditEntry & { who?: string };
        // When Redis appended it (the id's time), the clock `from`/`to` and the cursor are matched
        // against. The `at` an API process wrote is its own clock: with an API host a minute slow,
        // `from=12:00` listed entries whose `at` said 11:59, a fast one's entries said a time past the
        // `to` they were listed for, and two hosts' entries could read out of order.
        e.at = streamIdTime(id);
        // Entries written before actors were recorded ({who, action, ...fields}).
        if (!e.actor) e.actor = { keyId: e.who ?? 'unknown', role: e.who === 'admin' ? 'admin' : 'unknown' };
        delete e.who;
        if (f.partnerId && e.partnerId === undefined) e.partnerId = f.partnerId;
        if (matches(e, f)) entries.push(e);
        if (entries.length >= f.limit) break;
      }
      end = `(${lastId}`;
      if (batch.length < BATCH && entries.length < f.limit) {
        exhausted = true;
        break;
      }
    }
    return { entries, nextCursor: exhausted || lastId === null ? null : lastId };
  }
}

function matches(e: AuditEntry, f: AuditFilter): boolean {
  if (f.partnerId && e.partnerId !== f.partnerId) return false;
  if (f.showId && e.showId !== f.showId) return false;
  if (f.targetId && e.targetId !== f.targetId) return false;
  if (f.action && !(f.action.endsWith('.') ? e.action.startsWith(f.action) : e.action === f.action)) return false;
  return true;
}
