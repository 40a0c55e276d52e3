/**
 * Video relay state in Redis (README "Video relay"): each show's ingest key (sealed with SECRETS_KEY, looked
 * up by its SHA-256), the source a publish is arriving on, each destination's relay status, and the
 * show's relay lease (one relay process owns a show at a time).
 */
import type { Result } from 'ioredis';
import { sha256Hex, randomToken, type SecretBox } from '../lib/crypto.js';
import type { AuditActor, PendingAudit } from './audit.repository.js';
import type { Keys } from './keys.js';
import { defineRedisScripts, type RedisClient } from './redis.js';
import { isPlainObject, parseListed, parseStored, type OnUnreadable } from './stored-record.js';

export const RELAY_STATES = ['idle', 'connecting', 'sending', 'retrying', 'failed', 'stopped'] as const;
export type RelayState = (typeof RELAY_STATES)[number];

/** A stored relay status's shape (JSON `null`, an array or an object without its fields is not one; a state
 * of another version is one). */
function isRelayStatus(v: unknown): v is RelayStatus {
  return isPlainObject(v) && typeof v['state'] === 'string' && typeof v['bitrateKbps'] === 'number' && typeof v['bytesSent'] === 'number' && typeof v['since'] === 'string' && typeof v['restarts'] === 'number';
}

export interface RelayStatus {
  state: RelayState;
  bitrateKbps: number;
  bytesSent: number;
  /** When `state` was entered (ISO). */
  since: string;
  restarts: number;
  lastError: string | null;
}

/** Where a show's stream can be read: the edge that accepted the publish (or the pull), since when. */
export interface RelaySource {
  /** `rtmp://host:port/app` of the edge; the stream is `{edgeUrl}/{streamKey}`. */
  edgeUrl: string;
  /** The edge session that publishes (a later publish replaces it; only its own end clears it). */
  session: string;
  since: string;
  /**
   * Since when the publish, still connected, has sent nothing (ISO), as its edge saw it: the encoder
   * stalled (hung, network) without closing. Absent while data flows (and for the external edge).
   */
  stalledSince?: string;
  /**
   * The publish's codecs (ffmpeg's names; null: none of that kind seen) when one of them is not what
   * the platforms' RTMP ingest takes (H.264 video, AAC audio): the edge passes none of it on, and the
   * relay pushes nothing (src/relay/ingest.edge.ts `codecsRefused`). Absent while the codecs are taken
   * (and for the external edge, which does not look).
   */
  codecsRefused?: { video: string | null; audio: string | null };
}

/** A removal of the relay (`DELETE /v1/relay`) whose `relay.removed` audit entry is not written yet. */
export interface RelayRemoval {
  id: string;
  /** The removed marker's time (when a relay process first ran here). */
  since: string;
  /** Who removed it (the entry names them, also when a later call writes it). */
  actor: AuditActor;
  requestId?: string;
}

/** Whether this deployment has a video relay, and whether one of its processes runs now. */
export interface RelayPresence {
  /** The relay is part of this deployment (a relay process has run here and no admin removed it). */
  deployed: boolean;
  /** When a relay process first wrote the marker (ISO); null when only a heartbeat says so (a relay process older than the marker). */
  since: string | null;
  /** A relay process reported within the heartbeat's TTL. */
  running: boolean;
}

/** How long the record of a show's last relay lease holder is kept after its last renewal (a day). */
const LEASE_LAST_TTL_MS = 86_400_000;
/**
 * What a lease handed back leaves in `relay-lease-last` (LEASE_DROP_LUA): no token (a token is
 * `host:pid:random`, never this). A take reads it as no last holder (nobody may still push the show);
 * a renewal (LEASE_RENEW_LUA) finds no lease of its own there and takes nothing.
 */
const HANDED_BACK = '-';
/**
 * KEYS: lease, the lease's last holder. ARGV: token, ttl ms. 1 = held by token now, 0 = someone else
 * holds it, or may still push it: a lease that lapsed while this Redis was down (it has been up for
 * less than one lease) is left to its last holder, which keeps pushing while Redis refuses connections
 * (docs/architecture.md, Video relay, Ownership) and takes it back as soon as it reaches Redis again.
 */
const LEASE_TAKE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
if not cur then
  local last = redis.call('GET', KEYS[2])
  if last and last ~= ARGV[1] and last ~= '${HANDED_BACK}' then
    local up = tonumber(string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)'))
    if up and up * 1000 < tonumber(ARGV[2]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('SET', KEYS[2], ARGV[1], 'PX', ${LEASE_LAST_TTL_MS})
return 1
`;
/**
 * KEYS: lease, the lease's last holder. ARGV: token, ttl ms. A renewal: extends the lease token holds,
 * or takes back one that lapsed with token its last holder (a Redis outage; or a Redis that came back
 * empty: no last holder at all). 0, taking nothing, when another token holds it or took it since, or
 * when it was handed back (LEASE_DROP_LUA): a renewal still under way when its process dropped the
 * lease (on shutdown, a show ended) reached Redis after the drop and held the show for a whole lease,
 * while another relay process waited to take it over.
 */
const LEASE_RENEW_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
if not cur then
  local last = redis.call('GET', KEYS[2])
  if last and last ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('SET', KEYS[2], ARGV[1], 'PX', ${LEASE_LAST_TTL_MS})
return 1
`;
/**
 * KEYS: lease, the lease's last holder. ARGV: token. Drops the lease when token holds it, and marks it
 * handed back (HANDED_BACK: nobody waits for its holder; no renewal of it takes it again).
 */
const LEASE_DROP_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '${HANDED_BACK}', 'PX', ${LEASE_LAST_TTL_MS})
return 1
`;
/** KEYS: source. ARGV: session. Deletes the source only when that session still owns it. */
const SOURCE_CLEAR_LUA = `
if redis.call('HGET', KEYS[1], 'session') == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;

/**
 * KEYS: alive, deployed, removals. ARGV: removal id, removal record (JSON {actor, requestId}). Clears the
 * marker unless a relay process is alive: 'running', else 'removed' for the call that took the marker
 * away (which records the removal, with the marker's time, as not yet audited), 'absent' for every
 * other. Then the removals not yet audited (id, record) — this call's and any whose audit entry an
 * earlier call failed to write.
 */
const UNDEPLOY_LUA = `
local outcome = 'absent'
if redis.call('EXISTS', KEYS[1]) == 1 then
  outcome = 'running'
else
  local since = redis.call('GET', KEYS[2])
  if since then
    local rec = cjson.decode(ARGV[2])
    rec['since'] = since
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(rec))
    outcome = 'removed'
  end
end
local out = redis.call('HGETALL', KEYS[3])
table.insert(out, 1, outcome)
return out
`;

/**
 * KEYS: the show's ingest key hash, its pending audit entries, its relay source (same slot). ARGV:
 * sealed key, its hash, now ISO, the rotation's pending audit id and entry ('' for none). The new key
 * and the rotation's audit entry (recorded pending, see AuditRepository.settle) in one step; the
 * show's source goes with the old key: whatever publishes now published with it (the new key is
 * unknown until this returns). The embedded edge also cuts that publish off at its next check; the
 * nginx edge cannot, and its on_publish_done for the old key (no longer any show's) cleared nothing,
 * so the relay read a source that was not there.
 */
const INGEST_ROTATE_LUA = `
redis.call('HSET', KEYS[1], 'sealed', ARGV[1], 'hash', ARGV[2], 'at', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[5]) end
redis.call('DEL', KEYS[3])
return 1
`;

/**
 * KEYS: source. ARGV: session, edgeUrl, since, ttl ms, replace (1/0), stalledSince ('' = data flows), codecs refused
 * (codecsField: JSON `[video, audio]`, '' = taken). Writes the session's source with a TTL:
 * replace=1 (a new publish) whoever held it; replace=0 (the living edge's refresh) only when the record is
 * that session's or gone (it expired while the edge was too slow to refresh), never over a later publish.
 */
const SOURCE_KEEP_LUA = `
local cur = redis.call('HGET', KEYS[1], 'session')
if ARGV[5] ~= '1' and cur and cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'edgeUrl', ARGV[2], 'session', ARGV[1], 'since', ARGV[3])
if ARGV[6] and ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'stalledSince', ARGV[6]) else redis.call('HDEL', KEYS[1], 'stalledSince') end
if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'codecsRefused', ARGV[7]) else redis.call('HDEL', KEYS[1], 'codecsRefused') end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`;

/**
 * KEYS: the show's ingest key hash, its relay source (same slot). ARGV: the publish's key hash, session,
 * edgeUrl, since. Writes the source only while that key is still the show's current one: a rotation
 * (INGEST_ROTATE_LUA drops the source) that lands between the key's check and this write would
 * otherwise have the old key's publish written back as the source, with no TTL, and its
 * on_publish_done (an unknown key by then) could never clear it. 0: the key is not current (refuse).
 * A source another session holds is kept (1, nothing written): nginx-rtmp asks on_publish before its
 * live module refuses a second publisher on the stream ("already publishing"), and sends that
 * refused publisher's on_publish_done when it goes: written over, the source was that session's and its
 * done cleared it while the first encoder still published (the mirrors stopped mid-show). Every
 * publish on the nginx edge reads the same stream (edgeUrl/key), so the kept source serves a later
 * publish as well; the cost: after an nginx crash (no on_publish_done) the dead session's source stays
 * until a rotation, where a later publish's done cleared it (docs/architecture.md).
 */
const SOURCE_SET_LUA = `
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
local held = redis.call('HGET', KEYS[2], 'session')
if held and held ~= ARGV[2] then return 1 end
redis.call('HSET', KEYS[2], 'edgeUrl', ARGV[3], 'session', ARGV[2], 'since', ARGV[4])
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scRelayLeaseTake(lease: string, last: string, token: string, ttlMs: number): Result<number, Context>;
    scRelayLeaseRenew(lease: string, last: string, token: string, ttlMs: number): Result<number, Context>;
    scRelayLeaseDrop(lease: string, last: string, token: string): Result<number, Context>;
    scRelaySourceClear(source: string, session: string): Result<number, Context>;
    scRelayUndeploy(alive: string, deployed: string, removals: string, removalId: string, removal: string): Result<string[], Context>;
    scRelayIngestRotate(ingest: string, auditPending: string, source: string, sealed: string, hash: string, nowIso: string, auditId: string, auditEntry: string): Result<number, Context>;
    scRelaySourceKeep(source: string, session: string, edgeUrl: string, since: string, ttlMs: number, replace: 0 | 1, stalledSince: string, codecsRefused: string): Result<number, Context>;
    scRelaySourceSet(ingest: string, source: string, keyHash: string, session: string, edgeUrl: string, since: string): Result<number, Context>;
  }
}

/** States only a running relay process keeps true; without the show's lease they are stale. */
const UNOWNED_STALE: ReadonlySet<RelayState> = new Set(['connecting', 'sending', 'retrying']);
/** `lastError` of a status reported `idle` because no relay process holds the show. */
export const UNOWNED_ERROR = 'no relay process is relaying this show (the one that did stopped or died; another takes it over while one runs)';

/** A show's stream keys look like `sk_<43 base64url chars>` (256 random bits). */
export function newStreamKey(): string {
  return `sk_${randomToken(32)}`;
}

/**
 * A source's refused codecs as stored: JSON `[video, audio]` (null: a kind not seen), '' when its codecs
 * are taken. Not '{video}/{audio}': an unknown FourCC's name (`fourcc "a/b "`) can hold a '/'.
 */
export function codecsField(source: Pick<RelaySource, 'codecsRefused'>): string {
  const c = source.codecsRefused;
  return c ? JSON.stringify([c.video, c.audio]) : '';
}
/**
 * The refused codecs of a stored field (codecsField); undefined when none, and for a field that is not
 * JSON `[video, audio]` (each a name or null): the relay then reads the source's codecs as taken.
 */
export function codecsOfField(field: string | undefined): RelaySource['codecsRefused'] {
  if (!field) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(field);
  } catch {
    return undefined;
  }
  const kind = (x: unknown): x is string | null => x === null || typeof x === 'string';
  if (!Array.isArray(v) || v.length !== 2 || !kind(v[0]) || !kind(v[1])) return undefined;
  return { video: v[0] || null, audio: v[1] || null };
}

export class RelayRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
  ) {
    defineRedisScripts(redis, {
      scRelayLeaseTake: { numberOfKeys: 2, lua: LEASE_TAKE_LUA },
      scRelayLeaseRenew: { numberOfKeys: 2, lua: LEASE_RENEW_LUA },
      scRelayLeaseDrop: { numberOfKeys: 2, lua: LEASE_DROP_LUA },
      scRelaySourceClear: { numberOfKeys: 1, lua: SOURCE_CLEAR_LUA },
      scRelayUndeploy: { numberOfKeys: 3, lua: UNDEPLOY_LUA },
      scRelaySourceKeep: { numberOfKeys: 1, lua: SOURCE_KEEP_LUA },
      scRelayIngestRotate: { numberOfKeys: 3, lua: INGEST_ROTATE_LUA },
      scRelaySourceSet: { numberOfKeys: 2, lua: SOURCE_SET_LUA },
    });
  }

  /**
   * The show's ingest stream key, created on first use (a show has exactly one current key). `box`
   * opens the stored key (default: this repository's; the relay's pass passes one that remembers the
   * keys it opened before).
   */
  async ingestKey(partnerId: string, showId: string, box: Pick<SecretBox, 'decrypt'> = this.box): Promise<string> {
    const sealed = await this.redis.hget(this.keys.relayIngest(partnerId, showId), 'sealed');
    if (sealed) return box.decrypt(sealed);
    const key = newStreamKey();
    const hash = sha256Hex(key);
    await this.redis.set(this.keys.relayKeyIndex(hash), JSON.stringify([partnerId, showId]));
    const created = await this.redis.hsetnx(this.keys.relayIngest(partnerId, showId), 'sealed', this.box.encrypt(key));
    if (created === 1) {
      await this.redis.hset(this.keys.relayIngest(partnerId, showId), 'hash', hash, 'at', new Date().toISOString());
      return key;
    }
    // Another request created the key first: use theirs, drop our index entry.
    await this.redis.del(this.keys.relayKeyIndex(hash));
    return this.ingestKey(partnerId, showId);
  }

  /**
   * Issues a new key; the previous one is refused from now on, and the publish that used it is no
   * longer the show's source. `audit`: the rotation's entry, recorded
   * pending in the show's slot with the new key (one script; announce the scope first): the retry of a
   * rotation whose audit write failed is another rotation, and the first keeps its entry.
   */
  async rotateIngestKey(partnerId: string, showId: string, audit?: PendingAudit): Promise<string> {
    const old = await this.redis.hget(this.keys.relayIngest(partnerId, showId), 'hash');
    const key = newStreamKey();
    const hash = sha256Hex(key);
    await this.redis.set(this.keys.relayKeyIndex(hash), JSON.stringify([partnerId, showId]));
    await this.redis.scRelayIngestRotate(this.keys.relayIngest(partnerId, showId), this.keys.auditPending({ partnerId, showId }), this.keys.relaySource(partnerId, showId), this.box.encrypt(key), hash, new Date().toISOString(), audit?.id ?? '', audit?.entry ?? '');
    if (old) await this.redis.del(this.keys.relayKeyIndex(old));
    return key;
  }

  /** The show a stream key belongs to, if it is that show's current key. */
  async showOfKey(streamKey: string): Promise<{ partnerId: string; showId: string } | null> {
    const hash = sha256Hex(streamKey);
    const raw = await this.redis.get(this.keys.relayKeyIndex(hash));
    if (!raw) return null;
    const [partnerId, showId] = JSON.parse(raw) as [string, string];
    const current = await this.redis.hget(this.keys.relayIngest(partnerId, showId), 'hash');
    return current === hash ? { partnerId, showId } : null;
  }

  /**
   * The source of a publish made with `streamKey` (the nginx edge's on_publish), written only while that
   * key is the show's current one, in one step with the check (SOURCE_SET_LUA); false: it is not (a
   * rotation came after showOfKey), nothing written, and the publish is to be refused.
   */
  async setSource(partnerId: string, showId: string, streamKey: string, source: RelaySource): Promise<boolean> {
    return (await this.redis.scRelaySourceSet(this.keys.relayIngest(partnerId, showId), this.keys.relaySource(partnerId, showId), sha256Hex(streamKey), source.session, source.edgeUrl, source.since)) === 1;
  }

  /**
   * The source of a publish on an edge that keeps it alive (the embedded edge): written with a TTL that
   * the edge renews while the publish runs (`keepSource`), so an edge that dies without clearing it
   * (SIGKILL, a lost host) leaves no source behind once `ttlMs` has passed. A later publish replaces it.
   */
  async setSourceFor(partnerId: string, showId: string, source: RelaySource, ttlMs: number): Promise<void> {
    await this.redis.scRelaySourceKeep(this.keys.relaySource(partnerId, showId), source.session, source.edgeUrl, source.since, ttlMs, 1, source.stalledSince ?? '', codecsField(source));
  }

  /** Renews the TTL of the session's source (writes it again if it expired); false when a later publish holds it. */
  async keepSource(partnerId: string, showId: string, source: RelaySource, ttlMs: number): Promise<boolean> {
    return (await this.redis.scRelaySourceKeep(this.keys.relaySource(partnerId, showId), source.session, source.edgeUrl, source.since, ttlMs, 0, source.stalledSince ?? '', codecsField(source))) === 1;
  }

  async clearSource(partnerId: string, showId: string, session: string): Promise<void> {
    await this.redis.scRelaySourceClear(this.keys.relaySource(partnerId, showId), session);
  }

  async source(partnerId: string, showId: string): Promise<RelaySource | null> {
    const h = await this.redis.hgetall(this.keys.relaySource(partnerId, showId));
    if (!h.edgeUrl || !h.session || !h.since) return null;
    const codecs = codecsOfField(h.codecsRefused);
    return {
      edgeUrl: h.edgeUrl,
      session: h.session,
      since: h.since,
      ...(h.stalledSince ? { stalledSince: h.stalledSince } : {}),
      ...(codecs ? { codecsRefused: codecs } : {}),
    };
  }

  async setStatus(partnerId: string, showId: string, targetId: string, status: RelayStatus): Promise<void> {
    await this.redis.set(this.keys.relayStatus(partnerId, showId, targetId), JSON.stringify(status), 'EX', 30 * 86_400);
  }

  /**
   * The statuses as last written by the show's relay lease holder (null: none written). One that does not
   * read is null too, after `onUnreadable` (counted): the relay's pass writes it afresh, where a
   * SyntaxError failed every pass of the show and the corrupt status stayed.
   */
  async statuses(partnerId: string, showId: string, targetIds: string[], onUnreadable?: OnUnreadable): Promise<(RelayStatus | null)[]> {
    if (targetIds.length === 0) return [];
    const keys = targetIds.map((t) => this.keys.relayStatus(partnerId, showId, t));
    const raws = await this.redis.mget(...keys);
    return raws.map((r, i) => (r ? (parseListed<RelayStatus>('relayStatus', `${showId}/${targetIds[i]!}`, keys[i]!, r, isRelayStatus, onUnreadable) ?? null) : null));
  }

  /**
   * The statuses as the show's views report them (REST show view, ops console): a status is written by
   * the process holding the show's relay lease, so while nobody holds it (its relay process died or was
   * stopped without finishing the show) a stored `connecting`, `sending` or `retrying` is stale, and is
   * reported `idle` with bitrate 0 and a `lastError` saying nobody relays the show. Statuses and lease are
   * read in one MGET (all keys in the show's slot).
   */
  async statusesAsRelayed(partnerId: string, showId: string, targetIds: string[]): Promise<(RelayStatus | null)[]> {
    if (targetIds.length === 0) return [];
    const keys = targetIds.map((t) => this.keys.relayStatus(partnerId, showId, t));
    const raws = await this.redis.mget(...keys, this.keys.relayLease(partnerId, showId));
    const leased = raws.pop() !== null;
    return raws.map((r, i) => {
      if (!r) return null;
      // One that does not read (not JSON, JSON `null` or of another shape) is a StoredRecordCorruptError
      // naming the show and target (a typed 500), never a SyntaxError quoting it or a TypeError on `null`.
      const status = parseStored<RelayStatus>('relayStatus', `${showId}/${targetIds[i]!}`, keys[i]!, r, isRelayStatus);
      if (leased || !UNOWNED_STALE.has(status.state)) return status;
      return { ...status, state: 'idle', bitrateKbps: 0, lastError: UNOWNED_ERROR };
    });
  }

  /**
   * Takes or renews the show's relay lease for `token`; false while another process holds it, or while
   * its last holder may still push it (it lapsed while Redis was down, up for less than `ttlMs` since).
   */
  async takeLease(partnerId: string, showId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.scRelayLeaseTake(this.keys.relayLease(partnerId, showId), this.keys.relayLeaseLast(partnerId, showId), token, ttlMs)) === 1;
  }

  /**
   * Renews the show's lease `token` holds (takes it back when it lapsed with `token` its last holder);
   * false, taking nothing, when another process holds it or took it since, or when it was handed back.
   */
  async renewLease(partnerId: string, showId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.scRelayLeaseRenew(this.keys.relayLease(partnerId, showId), this.keys.relayLeaseLast(partnerId, showId), token, ttlMs)) === 1;
  }

  /** The fence before a process starts pushing: does `token` hold the lease right now? */
  async holdsLease(partnerId: string, showId: string, token: string): Promise<boolean> {
    return (await this.redis.get(this.keys.relayLease(partnerId, showId))) === token;
  }

  async leaseHolder(partnerId: string, showId: string): Promise<string | null> {
    return this.redis.get(this.keys.relayLease(partnerId, showId));
  }

  /**
   * A relay process is alive (renewed every pass): mirrors with an ingest then wait for relayed video. It
   * also (re)writes the durable marker that this deployment has a relay (kept with its first time), so a
   * heartbeat that lapses (Redis down longer than its TTL, every relay process restarting at once) reads
   * as "relay not running", never as "no relay here".
   */
  async heartbeat(ttlMs: number): Promise<void> {
    const res = await this.redis
      .multi()
      .set(this.keys.relayAlive(), '1', 'PX', ttlMs)
      .set(this.keys.relayDeployed(), new Date().toISOString(), 'NX')
      .exec();
    // exec() resolves with each command's error instead of throwing it: a SET that failed must fail the
    // relay pass (logged as "relay tick failed"), not pass for a heartbeat.
    if (!res) throw new Error('relay heartbeat: transaction discarded');
    for (const [err] of res) if (err) throw err;
  }

  /**
   * Whether this deployment relays video (`deployed`: the durable marker, or a heartbeat of a relay
   * process that predates the marker), since when, and whether a relay process runs right now.
   */
  async presence(): Promise<RelayPresence> {
    const [since, alive] = await this.redis.mget(this.keys.relayDeployed(), this.keys.relayAlive());
    return { deployed: since !== null || alive !== null, since: since ?? null, running: alive !== null };
  }

  /**
   * Takes the relay out of this deployment (its processes are stopped for good): mirrors with an ingest
   * go live without waiting for relayed video again. Refused (`running`) while a relay process runs;
   * its next pass would write the marker again anyway. A compare-and-delete of the marker: of calls at
   * once only one is `removed`; the others, and every call once it is gone, are `absent`.
   *
   * The audit entry cannot be written by the same script (the audit stream is in another slot on a
   * Cluster), so the script records the removal (with the marker's time and who removed it) as not yet
   * audited, and every call answers the removals still waiting for their entry (`unaudited`): the
   * caller writes each entry once (`AuditRepository.recordOnce` with the removal's id), then `audited`.
   * A call whose audit write failed leaves the removal waiting, and the next call (the client's retry)
   * writes the entry: it used to answer `absent` and `relay.removed` was never written.
   */
  async undeploy(by: { actor: AuditActor; requestId?: string | undefined }): Promise<{ outcome: 'running' | 'absent' | 'removed'; unaudited: RelayRemoval[] }> {
    const [outcome, ...flat] = await this.redis.scRelayUndeploy(this.keys.relayAlive(), this.keys.relayDeployed(), this.keys.relayRemovals(), randomToken(12), JSON.stringify(by));
    const unaudited: RelayRemoval[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const rec = JSON.parse(flat[i + 1] ?? '{}') as Partial<Omit<RelayRemoval, 'id'>>;
      unaudited.push({
        id: flat[i] ?? '',
        since: typeof rec.since === 'string' ? rec.since : '',
        actor: rec.actor ?? { keyId: 'unknown', role: 'unknown' },
        ...(typeof rec.requestId === 'string' ? { requestId: rec.requestId } : {}),
      });
    }
    unaudited.sort((a, b) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id));
    return { outcome: outcome === 'running' || outcome === 'removed' ? outcome : 'absent', unaudited };
  }

  /** The removal's `relay.removed` entry is in the audit log. */
  async audited(removalId: string): Promise<void> {
    await this.redis.hdel(this.keys.relayRemovals(), removalId);
  }

  async dropLease(partnerId: string, showId: string, token: string): Promise<void> {
    await this.redis.scRelayLeaseDrop(this.keys.relayLease(partnerId, showId), this.keys.relayLeaseLast(partnerId, showId), token);
  }
}
