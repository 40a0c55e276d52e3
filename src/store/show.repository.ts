/**
 * Shows: the inbox + event log + desired-state registers (one Lua script, one hash slot, so the
 * acknowledgement covers all three), mirrors and intents.
 */
import type { DesiredShow, RegisterWrite } from '../domain/desired-state.js';
import { deriveDesired, isStoredProduct, isStoredShow, productFields, productOf } from '../domain/desired-state.js';
import { isPlainObject, parseListed, parseStored, readStored } from './stored-record.js';
import type { Product, Show } from '../domain/events.js';
import { ingestUnreadable, markIngestUnreadable, ownMirror, parseMirror, type MirrorDoc, type MirrorOwner } from '../domain/mirror.js';
import { SecretUnreadableError, tryOpen, type SecretBox } from '../lib/crypto.js';
import { idRecord } from '../lib/id-record.js';
import { wellFormedJson } from '../lib/well-formed.js';
import { ACTIVITY_MAX_LEN } from './show-activity.repository.js';
import { Cluster, type Result } from 'ioredis';
import { TurnBatcher } from '../lib/turn-batcher.js';
import { evalOnNode, flagRefused, NodeBatches, nodeBatchLua, nodeScript } from './node-batch.js';
import { assertHeld, INTENT_TTL_SEC, IntentCorruptError, LeaseLostError, OWNED_BY_LUA, type MirrorLease } from './intent.repository.js';
import { assertEntryLua } from './external-show.index.js';
import { targetRecordField } from './partner.repository.js';
import type { Keys } from './keys.js';
import { defineRedisScripts, inOneWrite, unreadableAs, type RedisClient } from './redis.js';
import { zrevPage, type PageStart, type ZsetPage } from './zset-page.js';
import { inlineSyncAddLua } from '../queues/inline-sync.js';

/**
 * The register writes of a stored show event: KEYS[desired] gets each field/value pair from ARGV[first]
 * on (to ARGV[last], default the end) whose order key (ARGV[first - 1]) is newer than the field's; the
 * version goes up when any did. Leaves `eventId` to the caller's return. `first` and `last` are Lua
 * expressions (NODE_INGEST_SHOWS_LUA's events each take a slice of ARGV).
 */
function registerWrites(desired: string, first: string, afterWrites = '', last = '#ARGV'): string {
  return `local key = ARGV[${first} - 1]
local changed = 0
for i = ${first}, ${last}, 2 do
  local field = ARGV[i]
  local cur = redis.call('HGET', ${desired}, field .. '@')
  if (not cur) or cur < key then
    redis.call('HSET', ${desired}, field, ARGV[i + 1], field .. '@', key)
    changed = 1
  end
end
${afterWrites}local v
if changed == 1 then v = redis.call('HINCRBY', ${desired}, 'v', 1) else v = tonumber(redis.call('HGET', ${desired}, 'v') or '0') end
return {1, eventId, v, changed}
`;
}

/**
 * registerWrites for exactly one field/value pair (ARGV[first], ARGV[first + 1]; the order key at
 * ARGV[first - 1]), in two commands where registerWrites takes three: the register's order key and the
 * version are read together (HMGET), and a newer event writes the register, its order key and the
 * version + 1 in one HSET (registerWrites: HGET, HSET, then HINCRBY, or HGET of the version when
 * unchanged). The same writes and the same reply for a version this code writes (an integer below 2^53;
 * HINCRBY refused a version that is not an integer, tonumber reads it). INGEST_SHOW_ONE_LUA (one register per event).
 */
function oneRegisterWrite(desired: string, first: number, afterWrites = ''): string {
  const field = `ARGV[${first}]`;
  return `local key = ARGV[${first - 1}]
local changed = 0
local reg = redis.call('HMGET', ${desired}, ${field} .. '@', 'v')
local v = tonumber(reg[2] or '0')
if (not reg[1]) or reg[1] < key then
  v = v + 1
  redis.call('HSET', ${desired}, ${field}, ARGV[${first + 1}], ${field} .. '@', key, 'v', string.format('%d', v))
  changed = 1
end
${afterWrites}return {1, eventId, v, changed}
`;
}

/**
 * How many registers (the snapshot, one per product of a `product.updated`, one per pinned or unpinned
 * product id) one show's desired state holds at most. The snapshot bounds its own products and pinned
 * ids (1,000 each); a `product.updated` or a pin event of a new id added a register of its own, so one
 * partner (a catalogue sync sending every product to one show, a buggy id) grew the show's hash without
 * end in the Redis every partner shares, and every sync of the show read and parsed all of it. An event
 * that would add a register beyond this is refused (nothing stored: 422); the show's own registers take
 * events as before. Registers are never removed, so this counts every product id the show was ever sent
 * (`prod:X` and `pin:X` apart: a product updated and pinned takes two).
 */
export const SHOW_REGISTERS_MAX = 2500;

/**
 * Lua: refuses (returns {3, max}) an event not stored yet (no `inbox` record) whose register `field`
 * is new to the `desired` hash while the hash holds SHOW_REGISTERS_MAX registers (two fields each,
 * value and order key, plus the version): before anything of the event is written. `existing`: the Lua
 * variable holding the inbox's record when the script read it already (INGEST_SHOW_ONE_LUA), so the
 * inbox is not read twice; without it the inbox is checked here.
 */
function registerBound(inbox: string, desired: string, field: string, existing?: string): string {
  const notStored = existing ? `not ${existing}` : `redis.call('EXISTS', ${inbox}) == 0`;
  // HLEN (O(1)) first: below the bound, as nearly every show is, the register's HEXISTS is not needed.
  return `if ${field} ~= 'snap' and ${notStored} and redis.call('HLEN', ${desired}) >= ${2 * SHOW_REGISTERS_MAX + 1} then
  if redis.call('HEXISTS', ${desired}, ${field}) == 0 then return {3, '${SHOW_REGISTERS_MAX}'} end
end
`;
}

/**
 * Lua: puts `member` in the sweep's active set (`key`) with a score that is Redis's clock in ms and
 * always above the score it had: each mark changes the score, also two in the same millisecond or from
 * processes whose clocks disagree. The sweep removes a show only while its score is the one it read
 * (ShowRepository.markInactive), so a mark that lands between the sweep's read and its removal keeps
 * the show in the set.
 */
function markActiveLua(key: string, member: string): string {
  return `local amT = redis.call('TIME')
local amScore = tonumber(amT[1]) * 1000 + math.floor(tonumber(amT[2]) / 1000)
local amCur = tonumber(redis.call('ZSCORE', ${key}, ${member}) or '0') or 0
if amCur >= amScore then amScore = amCur + 1 end
redis.call('ZADD', ${key}, string.format('%d', amScore), ${member})
`;
}

/** KEYS: the active set. ARGV: member. ShowRepository.markActive (markActiveLua). */
const MARK_ACTIVE_LUA = `${markActiveLua('KEYS[1]', 'ARGV[1]')}return 1
`;

/**
 * How many entries a show's event log keeps (approximate trimming, `MAXLEN ~`: up to one stream node,
 * 100 entries by default, more). Its only reader is the ops console's show timeline, which shows the
 * newest 200; each entry is the event's summary (showLogEntry, src/domain/events.ts), a few hundred
 * bytes at most, so a show's log stays under ≈ 1 MB however much its partner sends. It was 10,000
 * entries of the whole event (up to the 1 MiB body limit each): ≈ 10 GiB one partner could make one
 * show hold in the Redis every partner shares.
 */
export const SHOW_EVENT_LOG_MAX_LEN = 1000;

/**
 * The inbox + event-log step both show scripts share: a stored duplicate returns
 * {0, existingEventId}; otherwise the event's summary is appended to the show's log (capped) and the
 * inbox records its id for `ttl` seconds, leaving `eventId` for the register writes that follow.
 * `readAlready`: the script read the inbox into `existing` before (INGEST_SHOW_ONE_LUA).
 */
function inboxAndEvent(inbox: string, stream: string, wid: string, json: string, ttl: string, readAlready = false): string {
  return `${readAlready ? '' : `local existing = redis.call('GET', ${inbox})\n`}if existing then return {0, existing} end
local eventId = redis.call('XADD', ${stream}, 'MAXLEN', '~', '${SHOW_EVENT_LOG_MAX_LEN}', '*', 'wid', ${wid}, 'event', ${json})
redis.call('SET', ${inbox}, eventId, 'EX', tonumber(${ttl}))
`;
}

/**
 * KEYS: inbox, events stream, desired hash. ARGV: webhookId, event log entry (showLogEntry), inbox ttl s, order key,
 * then field/value pairs. Returns {1, eventId, version, changed} or {0, existingEventId}.
 * The Redis Cluster path (the keys of one show's slot only); INGEST_SHOW_ONE_LUA on a single Redis.
 */
const INGEST_SHOW_LUA = `
${registerBound('KEYS[1]', 'KEYS[3]', 'ARGV[5]')}${inboxAndEvent('KEYS[1]', 'KEYS[2]', 'ARGV[1]', 'ARGV[2]', 'ARGV[3]')}${registerWrites('KEYS[3]', '5')}`;

/**
 * The show writes waiting for one master of a Cluster, as one call on its connection (keys of many
 * slots: none declared, the `allow-cross-slot-keys` flag; src/store/node-batch.ts): INGEST_SHOW_LUA's
 * step per event, its three keys in the event's show slot. Per event (a = 9(i-1)): ARGV[a+1] inbox,
 * ARGV[a+2] events stream, ARGV[a+3] desired hash, ARGV[a+4] webhookId, ARGV[a+5] event log entry,
 * ARGV[a+6] inbox ttl s, ARGV[a+7] order key, ARGV[a+8] field, ARGV[a+9] value. The reply per event is
 * INGEST_SHOW_LUA's; a show this node does not serve answers an error of its own (under pcall: its
 * first access is the inbox read, before anything is written) and is written again through the
 * Cluster client.
 */
const NODE_INGEST_SHOWS_LUA = `#!lua flags=allow-cross-slot-keys
local function ingest(a)
${registerBound('ARGV[a + 1]', 'ARGV[a + 3]', 'ARGV[a + 8]')}${inboxAndEvent('ARGV[a + 1]', 'ARGV[a + 2]', 'ARGV[a + 4]', 'ARGV[a + 5]', 'ARGV[a + 6]')}${registerWrites('ARGV[a + 3]', 'a + 8', '', 'a + 9')}end
${nodeBatchLua('ingest', 9)}`;
const NODE_INGEST_SHOWS = nodeScript(NODE_INGEST_SHOWS_LUA);
/** Show writes per NODE_INGEST_SHOWS call (bounds how long one call holds Redis). */
const INGEST_PER_CALL = 64;

/**
 * The sync-dispatch entries of concurrent show events on a Cluster, as one call (one key: the
 * dispatch stream). KEYS: dispatch stream. ARGV: partnerId, showId, requestId per entry.
 */
const DISPATCH_MANY_LUA = `
for i = 1, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'p', ARGV[i], 's', ARGV[i + 1], 'r', ARGV[i + 2])
end
return #ARGV / 3
`;
/** Dispatch entries per DISPATCH_MANY call. */
const DISPATCH_PER_CALL = 256;

/** A whole node call's error that says the script did not run there (safe to write again through the client). */
function notRun(err: unknown): boolean {
  return flagRefused(err) || (err instanceof Error && /^(READONLY|MASTERDOWN|CLUSTERDOWN|LOADING|MOVED|ASK|TRYAGAIN)/.test(err.message));
}

type IngestReply = [number, string, number?, number?];

interface PendingWrite {
  args: (string | number)[];
  resolve: (r: IngestReply) => void;
  reject: (err: unknown) => void;
}

interface PendingIngestOne {
  keys: [claim: string, inbox: string, events: string, desired: string, dispatch: string, partnerShows: string, active: string, partnerLive: string];
  args: (string | number)[];
  /** The inline sync jobs' arguments (InlineSyncJobs.args, INGEST_SYNC_JOBS=inline): INGEST_SHOW_ONE_INLINE_LUA instead of the dispatch entry. */
  inline?: string[];
  resolve: (r: IngestReply) => void;
  reject: (err: unknown) => void;
}

interface PendingMark {
  partnerId: string;
  showId: string;
  requestId: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * An accepted show event on a single Redis, in one round trip (keys of several slots, so never sent
 * to a Cluster): the partner-wide webhook-id claim (src/store/webhook-id.repository.ts), the show's
 * inbox + event log + desired state (INGEST_SHOW_LUA), the sync-dispatch entry that tells the
 * dispatcher the show's mirrors need a sync, and for a show snapshot the partner's show index and the
 * sweep's active set, and when the snapshot won its register (newer than the stored one) the partner's
 * show index (by the snapshot's scheduledAt: an older snapshot delivered late must not move the show
 * back to its old time) and live set (the show added when the snapshot says live, removed otherwise). KEYS: claim, inbox, events
 * stream, desired hash, dispatch stream, partner shows, active shows, partner live shows. ARGV: scope,
 * ttl s (claim and inbox), webhookId, event log entry, partnerId, showId, requestId ('' for none), '1' for a
 * snapshot, scheduledAt ms, now ms (unused: the active set's score is Redis's clock, markActiveLua),
 * active-set member ('' when not a snapshot), '1' when the snapshot says live, order key,
 * then the register's field and value (one pair: oneRegisterWrite). Returns {2, holder} when the id is claimed for another scope (nothing
 * written), {0, existingEventId} for a stored duplicate (dispatch entry written again: its first
 * delivery's is gone once dispatched), or {1, eventId, version, changed}. The inbox is read once, up
 * front, for both the register bound and the duplicate check (it was read twice: EXISTS, then GET).
 */
const INGEST_SHOW_ONE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {2, holder} end
local existing = redis.call('GET', KEYS[2])
${registerBound('KEYS[2]', 'KEYS[4]', 'ARGV[14]', 'existing')}if not holder then redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2])) end
if ARGV[8] == '1' then
${markActiveLua('KEYS[7]', 'ARGV[11]')}end
redis.call('XADD', KEYS[5], '*', 'p', ARGV[5], 's', ARGV[6], 'r', ARGV[7])
${inboxAndEvent('KEYS[2]', 'KEYS[3]', 'ARGV[3]', 'ARGV[4]', 'ARGV[2]', true)}${oneRegisterWrite(
  'KEYS[4]',
  14,
  `if changed == 1 and ARGV[8] == '1' then
  redis.call('ZADD', KEYS[6], ARGV[9], ARGV[6])
  if ARGV[12] == '1' then redis.call('SADD', KEYS[8], ARGV[6]) else redis.call('SREM', KEYS[8], ARGV[6]) end
end
`,
)}`;

/**
 * INGEST_SYNC_JOBS=inline (src/queues/inline-sync.ts): INGEST_SHOW_ONE_LUA with its sync-dispatch XADD
 * replaced by the show's sync jobs made in BullMQ's keys (inlineSyncAddLua; ARGV[16] the job count: 0
 * for a partner with no enabled target, and the bench's "no dispatch at all" upper bound). A stored
 * duplicate adds its jobs again, as the dispatch path writes its entry again. One Redis only (the
 * queue keys are named inside the script).
 */
const INGEST_SHOW_ONE_INLINE_LUA = ((): string => {
  const xadd = "redis.call('XADD', KEYS[5], '*', 'p', ARGV[5], 's', ARGV[6], 'r', ARGV[7])\n";
  if (!INGEST_SHOW_ONE_LUA.includes(xadd)) throw new Error('INGEST_SHOW_ONE_LUA no longer has its dispatch XADD: re-read src/queues/inline-sync.ts');
  return INGEST_SHOW_ONE_LUA.replace(xadd, inlineSyncAddLua(16, 'ARGV[10]'));
})();

/**
 * A snapshot's partner indexes on a Redis Cluster, in the partner's slot: KEYS: indexed hash
 * (Keys.partnerShowsIndexed), partner shows, partner live shows. ARGV: showId, order key, scheduledAt
 * ms, '1' when the snapshot says live. Written only when the order key is not older than the one the
 * indexes hold for the show (the register's rule, registerWrites), so the index writes of concurrent
 * snapshots of one show, landing in any order, leave the newest's. Returns 1 when written.
 */
const INDEX_SNAPSHOT_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and ARGV[2] < cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) else redis.call('SREM', KEYS[3], ARGV[1]) end
return 1
`;

/**
 * How many entries an order's event log keeps beyond those attribution has not handled yet. The log
 * holds each order event whole (up to the 1 MiB body limit); its only reader is the order-event sweep,
 * which reads back events still marked pending (src/attribution/order-event.sweep.ts): the ledger is the
 * record of the order and its refunds. It had no bound: one partner sending ever more events for one
 * order (order.created again and again, refunds under new ids) grew one key without end in the Redis
 * every partner shares, and every order's log was kept for good. Handled entries past this many go,
 * oldest first; an entry still pending never does.
 */
export const ORDER_EVENT_LOG_MAX_LEN = 100;

/**
 * Lua: trims an order's event log (`stream`) past ORDER_EVENT_LOG_MAX_LEN without dropping an entry
 * still in the `pending` hash, and without reading an entry (each may be 1 MiB): with nothing pending
 * but `own` (the event just stored, the newest; '' for none) the log keeps its newest entries; with
 * others pending it drops the entries older than the oldest of them (all handled), and with more than
 * ORDER_EVENT_LOG_MAX_LEN pending it waits (they are all needed).
 */
function trimOrderLog(stream: string, pending: string, own: string): string {
  return `if redis.call('XLEN', ${stream}) > ${ORDER_EVENT_LOG_MAX_LEN} then
  local n = redis.call('HLEN', ${pending})
  if n == 0 or (n == 1 and redis.call('HEXISTS', ${pending}, ${own}) == 1) then
    redis.call('XTRIM', ${stream}, 'MAXLEN', '${ORDER_EVENT_LOG_MAX_LEN}')
  elseif n <= ${ORDER_EVENT_LOG_MAX_LEN} then
    local oldest, om, os
    for _, id in ipairs(redis.call('HKEYS', ${pending})) do
      local m, q = string.match(id, '^(%d+)-(%d+)$')
      m, q = tonumber(m), tonumber(q)
      if m and (not oldest or m < om or (m == om and q < os)) then oldest, om, os = id, m, q end
    end
    if oldest then redis.call('XTRIM', ${stream}, 'MINID', oldest) end
  end
end
`;
}

/**
 * With the event just stored: an order.created (`kind` 'o') records its currency when none is (the
 * first one stored; the attribution worker books no order.created in another currency while it is
 * recorded: AttributionService.handlePartnerEvent). The key expires `ttl` s (INBOX_TTL_DAYS) after the
 * order's last write, refreshed by every event stored, and ORDER_HANDLED_LUA sets it again with the
 * log's once the last is handled: it never stands without an expiry, also when the handled step is a
 * worker's that predates the key (its script leaves it alone), which left it for good (a persisted key
 * waited for the new handled script to expire it).
 */
function recordOrderCurrency(key: string, recorded: string, kind: string, currency: string, ttl: string): string {
  return `if ${recorded} then redis.call('EXPIRE', ${key}, tonumber(${ttl})) elseif ${kind} == 'o' then redis.call('SET', ${key}, ${currency}, 'EX', tonumber(${ttl})) end
`;
}

/**
 * Lua: `oc`, the store's mark of an order.created (`kind` 'o') for the attribution worker: '1' when
 * the order already has a recorded currency and it is another than this one's (the worker does not
 * book it: AttributionService.handlePartnerEvent), '0' when it may be booked; '' for other events. It
 * travels with the attribution job (IngestService → AttributionProducer), so the worker needs no read
 * of the recorded currency per order.created (it cost one Redis command per order).
 */
function otherCurrencyMark(recorded: string, kind: string, currency: string): string {
  return `local oc = ''
if ${kind} == 'o' then if ${recorded} and ${recorded} ~= ${currency} then oc = '1' else oc = '0' end end
`;
}

/**
 * KEYS: inbox, events stream, pending hash, the order's recorded currency (Keys.orderCurrency). ARGV:
 * webhookId, event json, ttl, now ms, then 'o' and the order's currency (an order.created), 'r' and the
 * refund's (an order.refunded to check against the recorded currency), or '' and ''. Returns
 * {0, eventId, oc} for a stored duplicate, {5, recordedCurrency} for a refund in another currency than its
 * order's first order.created (nothing written), or {1, eventId, oc} (oc: otherCurrencyMark). Every key is read before the first
 * write, so a call that fails writes nothing. The event is stored and marked pending (not yet handled
 * by attribution) in one step; the log stops expiring (a handled log expires, ORDER_HANDLED_LUA) and is
 * trimmed (trimOrderLog).
 */
const INGEST_PLAIN_LUA = `
local recorded = redis.call('GET', KEYS[4])
${otherCurrencyMark('recorded', 'ARGV[5]', 'ARGV[6]')}local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing, oc} end
-- a refund in another currency than the one recorded with its order's first order.created: refused
if ARGV[5] == 'r' and recorded and recorded ~= ARGV[6] then return {5, recorded} end
-- read before any write: a key of another type under these names fails the call with nothing written
-- (the Cluster path then takes its claims back: IngestService)
redis.call('XLEN', KEYS[2])
redis.call('HLEN', KEYS[3])
local eventId = redis.call('XADD', KEYS[2], '*', 'wid', ARGV[1], 'event', ARGV[2])
redis.call('PERSIST', KEYS[2])
${recordOrderCurrency('KEYS[4]', 'recorded', 'ARGV[5]', 'ARGV[6]', 'ARGV[3]')}redis.call('SET', KEYS[1], eventId, 'EX', tonumber(ARGV[3]))
redis.call('HSET', KEYS[3], eventId, ARGV[4])
${trimOrderLog('KEYS[2]', 'KEYS[3]', 'eventId')}return {1, eventId, oc}
`;

/**
 * A partner order event on a single Redis, in one round trip (keys of several slots, so never sent to
 * a Cluster, where these are the separate steps of IngestService: claim, refund-id claim, pending
 * mark, INGEST_PLAIN_LUA, pending mark). KEYS: webhook-id claim (src/store/webhook-id.repository.ts),
 * the order's inbox, events stream and pending hash, the pending-orders set, the order's recorded
 * currency (Keys.orderCurrency), and for an `order.refunded` its refund-id claim
 * (src/store/refund-id.repository.ts) and, when given, the order's ledger hash. ARGV: scope, ttl s
 * (claim and inbox), webhookId, event json, now ms (the pending mark's stored-at), pending-orders
 * member, orderId, 'o' and the order's currency (an order.created) or 'r' and the refund's (an
 * order.refunded), then with the ledger hash the order's field in it. Returns {2, holder} when the
 * webhook-id is claimed for another scope, {3, holder} when another order holds the refund id (nothing
 * written; a claim of this webhook-id for this scope with no event stored is taken back, as
 * IngestService does on the Cluster), {4, eventId} for that refund when this webhook-id's event is
 * stored (its duplicate: nothing written), {5, currency, held} for a refund in another currency than
 * its order's: the ledger's when it holds the order, else the one recorded when the order's first
 * order.created was stored (nothing written, a claim taken back as for {3}; `held` '1' when this order
 * already holds the refund id: a refund under it is stored), {0, existingEventId, oc} for a stored
 * duplicate, or {1, eventId, oc} (oc: otherCurrencyMark).
 *
 * Every key is read before the first write (a key of another type under one of the names fails the
 * call here, and Redis refuses a script's write for memory only at its first): a call that fails
 * writes nothing, so a claim never stands without its event (a resend corrected to another order
 * under the same webhook-id is stored, not a 409). The order is listed in the pending-orders set
 * first (markActiveLua: its score only moves forward, so a sweep that read it before cannot drop it)
 * and the claims come last; a duplicate is listed and claimed too (the Cluster path does the same).
 */
const INGEST_ORDER_ONE_LUA = `
local claimed = redis.call('GET', KEYS[1])
if claimed and claimed ~= ARGV[1] then return {2, claimed} end
local existing = redis.call('GET', KEYS[2])
local refundHolder = false
if #KEYS >= 7 then
  refundHolder = redis.call('GET', KEYS[7])
  if refundHolder and refundHolder ~= ARGV[7] then
    if existing then return {4, existing} end
    if claimed then redis.call('DEL', KEYS[1]) end
    return {3, refundHolder}
  end
end
local recorded = redis.call('GET', KEYS[6])
${otherCurrencyMark('recorded', 'ARGV[8]', 'ARGV[9]')}if ARGV[8] == 'r' and not existing then
  -- the order's currency: the ledger's once it holds the order (KEYS[8], field ARGV[10]), before that
  -- the one recorded with its first order.created (orders stored before it was recorded: the ledger's)
  local orderCurrency = recorded
  if #KEYS >= 8 then
    local raw = redis.call('HGET', KEYS[8], ARGV[10])
    if raw then
      local R = cjson.decode(raw)
      if R.g and type(R.c) == 'string' then orderCurrency = R.c end
    end
  end
  local held = '0'
  if refundHolder then held = '1' end
  if orderCurrency and orderCurrency ~= ARGV[9] then
    if claimed then redis.call('DEL', KEYS[1]) end
    return {5, orderCurrency, held}
  end
end
-- read before any write: a key of another type under these names fails the call with nothing written
if not existing then
  redis.call('XLEN', KEYS[3])
  redis.call('HLEN', KEYS[4])
end
${markActiveLua('KEYS[5]', 'ARGV[6]')}local stored = 0
if not existing then
  existing = redis.call('XADD', KEYS[3], '*', 'wid', ARGV[3], 'event', ARGV[4])
  redis.call('HSET', KEYS[4], existing, ARGV[5])
  redis.call('PERSIST', KEYS[3])
  redis.call('SET', KEYS[2], existing, 'EX', tonumber(ARGV[2]))
  ${recordOrderCurrency('KEYS[6]', 'recorded', 'ARGV[8]', 'ARGV[9]', 'ARGV[2]')}  stored = 1
${trimOrderLog('KEYS[3]', 'KEYS[4]', 'existing')}end
if not claimed then redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2])) end
if #KEYS >= 7 and not refundHolder then redis.call('SET', KEYS[7], ARGV[7]) end
return {stored, existing, oc}
`;

/**
 * KEYS: pending hash, events stream, the order's recorded currency. ARGV: event id, retention s. The
 * event is handled: its pending mark goes, and when it was the order's last one the log is trimmed to
 * its newest ORDER_EVENT_LOG_MAX_LEN and expires after `retention` (INBOX_TTL_DAYS: as long as a
 * re-delivery is answered with an event id of it), and the recorded currency with it (by then the
 * ledger holds the order: a settled order keeps no key of this slot). A new event of the order stops
 * that (INGEST_PLAIN_LUA); a log with a pending event never expires.
 */
const ORDER_HANDLED_LUA = `
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
${trimOrderLog('KEYS[2]', 'KEYS[1]', "''")}  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[2]))
end
return 1
`;

/**
 * KEYS: a sorted set (the pending-orders set; the sweep's active set). ARGV: member, the score the
 * caller read. Removes it only if nobody marked it since (its score is still the one read).
 */
const SETTLE_PENDING_ORDER_LUA = `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;

/**
 * The mirror saves' compare-and-set: KEYS[1] is written with ARGV[2] only while its stored `rev` is
 * ARGV[1]; on a conflict the script returns `conflict` (a Lua expression).
 */
function mirrorCasWrite(conflict: string): string {
  // A record written by this version starts with its top-level `rev` (revised()): read from the text's
  // head, without decoding the whole record (a Lua cjson decode of the mirror per save was a visible
  // part of redis-server's CPU per sync). Other records are decoded as before. A record cjson cannot
  // decode (a lone surrogate in platform text, stored before records were made well-formed:
  // src/lib/well-formed.ts) is matched on its "rev" text, so the next save replaces it instead of
  // failing for good.
  return `local cur = redis.call('GET', KEYS[1])
local rev = 0
local head = cur and string.match(cur, '^{"rev":(%d+)[,}]')
if head then
  rev = tonumber(head)
elseif cur then
  local okDoc, doc = pcall(cjson.decode, cur)
  if okDoc and type(doc) == 'table' then
    rev = tonumber(doc['rev'] or 0)
  else
    rev = -1
    for r in string.gmatch(cur, '"rev":(%d+)') do
      if tonumber(r) == tonumber(ARGV[1]) then rev = tonumber(r) end
    end
  end
end
if rev ~= tonumber(ARGV[1]) then return ${conflict} end
redis.call('SET', KEYS[1], ARGV[2])
`;
}

/**
 * The lease rule of a sync run's saves: with a lease token (ARGV[3]; '' for operator actions) no other
 * run may hold KEYS[2] (the script returns `lost`, a Lua expression), and a lapsed lease is taken back
 * for ARGV[4] ms.
 */
function leaseHeld(lost: string): string {
  return `if ARGV[3] ~= '' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[3] then return ${lost} end
  if not holder then redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4])) end
end
`;
}

/**
 * The target guard of a sync run's saves: KEYS[key] is the partner's hash and ARGV[field] the target's
 * field ('' for no guard: operator actions, and a Cluster, where the hash is in another slot and the
 * run reads it before the save). A target deleted since the run read it: the script returns `gone`
 * before it writes anything (TargetGoneError), so a run that raced a delete leaves nothing behind. A
 * target of another incarnation than ARGV[inc] (the one the record being written is stamped with: the
 * target its run read; '' for a target created before incarnations, whose record has none): deleted and
 * created again since (`?force=true`), `replaced`, nothing written (TargetReplacedError): a record of
 * the deleted target written after the new one was created is never there to be taken for the new
 * one's (ownMirror's createdAt rule). A target being deleted (an unexpired "deleting" mark on its
 * record, PartnerRepository.markDeleting): `deleting`, nothing written either (TargetDeletingError): the
 * run makes no platform call while the DELETE checks whether a show of the target is on the platform.
 */
function targetGuard(key: string, field: string, inc: string, gone: string, replaced: string, deleting: string): string {
  // The mark and the incarnation are looked for with a plain find: an unanchored pattern match tries
  // every position of the record (sealed credentials make it ~1.5 KB), ≈ 7 µs of redis-server per
  // guarded save; the plain find (memchr) ≈ 0.3 µs. The mark's pattern then runs only on a record that
  // has one. `"incarnation":"` occurs in a record only as its own key: in a string value (a name) the
  // quotes are escaped, and no object nested in a target record has such a key.

  return `if ${field} ~= '' then
  local tgt = redis.call('HGET', ${key}, ${field})
  if not tgt then return ${gone} end
  if ${inc} == '' then
    if string.find(tgt, '"incarnation":"', 1, true) then return ${replaced} end
  elseif not string.find(tgt, '"incarnation":"' .. ${inc} .. '"', 1, true) then
    return ${replaced}
  end
  local delUntil = string.find(tgt, '"deleting":"', 1, true) and string.match(tgt, '"deleting":"(%d+)')
  if delUntil then
    local tm = redis.call('TIME')
    if tonumber(delUntil) > tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) then return ${deleting} end
  end
end
`;
}

/**
 * KEYS: mirror, its lease, the target guard's hash (the mirror again without a guard). ARGV: expected rev,
 * json (with the new rev), the writer's lease token ('' for operator actions), lease ttl ms, the target
 * guard's field, the target's incarnation the record is stamped with ('' for none). Compare-and-set: the stored mirror must still be at the revision the
 * writer read, so a sync and an operator action cannot overwrite each other; no other sync run may
 * hold the lease (src/store/intent.repository.ts), so a stalled run cannot write after a takeover.
 * Returns 1 when saved, 0 on a revision conflict, -1 when another run owns the mirror, -2 when the
 * target is gone, -4 when it is another incarnation (deleted and created again), -3 while it is being
 * deleted.
 */
const SAVE_MIRROR_LUA = `
${targetGuard('KEYS[3]', 'ARGV[5]', 'ARGV[6]', '-2', '-4', '-3')}${leaseHeld('-1')}
${mirrorCasWrite('0')}
return 1
`;

/**
 * Lua: the run's deferred intent completions (KEYS[first..#KEYS]; the done record of KEYS[i] is
 * ARGV[recordArg], an expression of i), each written only while the run (ARGV[3]) still holds the
 * mirror's lease (KEYS[2]) and owns the step (INTENT_COMPLETE's rule). Returns `lostReply` when the lease or
 * any step belongs to another run, else `corruptReply` (an expression of `corrupt`, the 1-based place
 * of the first such record among the completions) when a step's record is unreadable (INTENT_COMPLETE's
 * 2: left as it is, see IntentCorruptError); the records it could write stay written (they are facts).
 */
function completeOwnedLua(first: string, recordArg: string, ttlArg: string, lostReply: string, corruptReply: string): string {
  return `${OWNED_BY_LUA}local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[3] then return ${lostReply} end
local lost = 0
local corrupt = 0
for i = ${first}, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  local mine = not raw or ownedBy(raw, ARGV[3])
  if mine then
    redis.call('SET', KEYS[i], ARGV[${recordArg}], 'EX', tonumber(${ttlArg}))
  elseif readable(raw) then
    lost = 1
  elseif corrupt == 0 then
    corrupt = i - ${first} + 1
  end
end
if lost == 1 then return ${lostReply} end
if corrupt > 0 then return ${corruptReply} end
`;
}

/**
 * A save's reply for a deferred completion whose stored record is unreadable (completeOwnedLua): -10
 * for the first completion, -11 for the second, and so on; that completion, else undefined.
 */
function corruptCompletion<T>(code: number, pending: readonly T[] | undefined): T | undefined {
  return code <= -10 ? pending?.[-10 - code] : undefined;
}

/**
 * KEYS: mirror, its lease, the show's desired hash, the show's activity stream, the target guard's hash[,
 * an external-show index entry and its waiting set], then one intent per deferred completion. ARGV as
 * SAVE_MIRROR (the 5th unused), then the desired-state version the run synced to, a timeline entry ('' for
 * none), the stream's cap, the run's own timeline entry ('' for none), the show id the index entry names
 * ('' without the index keys), the intents' ttl s, the target guard's field, the incarnation the record
 * is stamped with, then one done record per intent. A target gone: {-2, 0, 0, 0}, another incarnation:
 * {-4, 0, 0, 0}, being deleted: {-3, 0, 0, 0}, nothing written. The run's last save: the deferred done
 * records first (SAVE_MIRROR_COMPLETING's rule: each only while the run still owns its step; a step
 * lost to a takeover returns -1 and saves nothing else, an unreadable record -10 - n (n: its place
 * among the completions, from 0) and saves nothing else; written also when the revision check then
 * fails: they are facts), SAVE_MIRROR, and when it saved, the entry appended and the show's current
 * version read in the same step; when that is still the synced version (nothing new to do) the run's
 * lease is released too, and the run's entry (it ends here) appended after the first. With the index
 * keys (another slot: a single Redis only) the entry is first written whatever the save then does
 * (external-show.index.ts assertEntryLua, the step a Cluster runs on its own alongside). Returns
 * {status, version, released, orders waiting for the index entry}.
 */
const SAVE_MIRROR_FINAL_LUA = `
${targetGuard('KEYS[5]', 'ARGV[11]', 'ARGV[12]', '{-2, 0, 0, 0}', '{-4, 0, 0, 0}', '{-3, 0, 0, 0}')}local waiting = 0
local firstIntent = 6
if ARGV[9] ~= '' then
  firstIntent = 8
${assertEntryLua('KEYS[6]', 'KEYS[7]', 'ARGV[9]')}end
${completeOwnedLua('firstIntent', 'i - firstIntent + 13', 'ARGV[10]', '{-1, 0, 0, waiting}', '{-9 - corrupt, 0, 0, waiting}')}
if not holder then redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4])) end
${mirrorCasWrite('{0, 0, 0, waiting}')}
if ARGV[6] ~= '' then redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'entry', ARGV[6]) end
local v = tonumber(redis.call('HGET', KEYS[3], 'v') or '0')
if v == tonumber(ARGV[5]) then
  redis.call('DEL', KEYS[2])
  if ARGV[8] ~= '' then redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'entry', ARGV[8]) end
  return {1, v, 1, waiting}
end
return {1, v, 0, waiting}
`;

/**
 * SAVE_MIRROR that first writes the run's deferred intent completions (IntentRepository.scoped with
 * deferComplete). KEYS: mirror, lease, the target guard's hash, then one intent per completion. ARGV: as
 * SAVE_MIRROR (the guard's field 5th), then the intents' ttl s, the incarnation the record is stamped
 * with, then one done record per intent. Each record is written only while the run still
 * owns its step (INTENT_COMPLETE's rule); a step lost to a takeover returns -1 and saves nothing
 * else, a step whose record is unreadable -10 - n (n: its place among the completions, from 0) and
 * saves nothing else. The records are written also when the mirror's revision check then fails (0):
 * they are facts.
 */
const SAVE_MIRROR_COMPLETING_LUA = `
${targetGuard('KEYS[3]', 'ARGV[5]', 'ARGV[7]', '-2', '-4', '-3')}${completeOwnedLua('4', 'i + 4', 'ARGV[6]', '-1', '-9 - corrupt')}
if not holder then redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4])) end
${mirrorCasWrite('0')}
return 1
`;

/**
 * KEYS: the partner's hash. ARGV: the target's field, the incarnation the run read it with ('' for
 * none). ShowRepository.checkTarget's read: the record, its incarnation, and
 * its "deleting" mark checked against Redis's clock (targetGuard, the save scripts' rule), as the DELETE
 * set it, so a worker whose clock is off neither sees a fresh mark expired (and creates a show the
 * DELETE then orphans) nor an expired one fresh (and stalls). One key: a Cluster runs it too. Returns
 * {0} when the target is there, {-2} when it is gone, {-4} when it is another incarnation, {-3, mark's
 * until ms, Redis TIME s, µs} while it is being deleted.
 */
const CHECK_TARGET_LUA = `
${targetGuard('KEYS[1]', 'ARGV[1]', 'ARGV[2]', '{-2}', '{-4}', '{-3, delUntil, tm[1], tm[2]}')}return {0}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scCheckTarget(partner: string, field: string, incarnation: string): Result<[number, string?, string?, string?], Context>;
    scSaveMirrorCompleting(numKeys: number, ...args: (string | number)[]): Result<number, Context>;
    scSaveMirrorFinal(numKeys: number, ...args: (string | number)[]): Result<[number, number, number, number], Context>;
    scSaveMirror(mirror: string, lease: string, guard: string, ...args: (string | number)[]): Result<number, Context>;
    scIngestShow(inbox: string, events: string, desired: string, ...args: (string | number)[]): Result<[number, string, number?, number?], Context>;
    scIngestShowOne(claim: string, inbox: string, events: string, desired: string, dispatch: string, partnerShows: string, active: string, partnerLive: string, ...args: (string | number)[]): Result<[number, string, number?, number?], Context>;
    scIngestShowOneInline(claim: string, inbox: string, events: string, desired: string, dispatch: string, partnerShows: string, active: string, partnerLive: string, ...args: (string | number)[]): Result<[number, string, number?, number?], Context>;
    scIndexSnapshot(indexed: string, shows: string, liveShows: string, showId: string, orderKey: string, scheduledAtMs: number, live: string): Result<number, Context>;
    scIngestPlain(inbox: string, events: string, pending: string, currency: string, ...args: (string | number)[]): Result<[number, string, string?], Context>;
    scIngestOrderOne(numKeys: number, ...args: (string | number)[]): Result<[number, string, string?], Context>;
    scOrderHandled(pending: string, events: string, currency: string, eventId: string, retentionSec: number): Result<number, Context>;
    scDispatchMany(stream: string, ...args: string[]): Result<number, Context>;
    scSettlePendingOrder(set: string, member: string, score: string): Result<number, Context>;
    scMarkActive(set: string, member: string): Result<number, Context>;
    scRemoveActiveIfUnmarked(set: string, member: string, score: string): Result<number, Context>;
  }
}

export function defineStoreScripts(redis: RedisClient): void {
  defineRedisScripts(redis, {
    scIngestShow: { numberOfKeys: 3, lua: INGEST_SHOW_LUA },
    scIngestShowOne: { numberOfKeys: 8, lua: INGEST_SHOW_ONE_LUA },
    scIngestShowOneInline: { numberOfKeys: 8, lua: INGEST_SHOW_ONE_INLINE_LUA },
    scIndexSnapshot: { numberOfKeys: 3, lua: INDEX_SNAPSHOT_LUA },
    scIngestPlain: { numberOfKeys: 4, lua: INGEST_PLAIN_LUA },
    scIngestOrderOne: { lua: INGEST_ORDER_ONE_LUA },
    scOrderHandled: { numberOfKeys: 3, lua: ORDER_HANDLED_LUA },
    scDispatchMany: { numberOfKeys: 1, lua: DISPATCH_MANY_LUA },
    scSettlePendingOrder: { numberOfKeys: 1, lua: SETTLE_PENDING_ORDER_LUA },
    scMarkActive: { numberOfKeys: 1, lua: MARK_ACTIVE_LUA },
    scRemoveActiveIfUnmarked: { numberOfKeys: 1, lua: SETTLE_PENDING_ORDER_LUA },
    scSaveMirror: { numberOfKeys: 3, lua: SAVE_MIRROR_LUA },
    scSaveMirrorFinal: { lua: SAVE_MIRROR_FINAL_LUA },
    scSaveMirrorCompleting: { lua: SAVE_MIRROR_COMPLETING_LUA },
    scCheckTarget: { numberOfKeys: 1, lua: CHECK_TARGET_LUA },
  });
}

/**
 * The mirror as the next save writes it: `rev` is its first field, so the saves' compare-and-set reads
 * it from the head of the stored text (mirrorCasWrite) instead of decoding the record.
 */
function revised(mirror: MirrorDoc, rev: number, updatedAt: string, since: MirrorDoc['since']): MirrorDoc {
  // A mirror read from a record this version wrote has `rev` first already: the spread-first copy
  // (V8's fast object clone) keeps it there.
  const next: MirrorDoc = { ...mirror, rev, updatedAt, since };
  for (const first in next) if (first === 'rev') return next;
  else break;
  // A new mirror, or one stored by an earlier version: `rev` put first once.
  const moved: MirrorDoc = { rev, ...mirror, updatedAt, since };
  moved.rev = rev; // the spread put the read revision there (keeping the field first)
  return moved;
}

/** At most this many opened stream keys are kept (then the memo starts over). */
const OPENED_KEYS_MAX = 10_000;
/**
 * Snapshot parses kept for reuse (desiredFromFlat): at most this many shows, each text at most this
 * long, and at most this many characters of text in all. A parse takes about 2.7 times its text's
 * length in heap (4,096 texts just under 16 KiB took ≈ 175 MB), so the total bounds the memo at about
 * 22 MB per process; then it starts over.
 */
const SNAPSHOTS_MAX = 4_096;
const SNAPSHOT_MEMO_MAX_CHARS = 16_384;
const SNAPSHOT_MEMO_TOTAL_CHARS = 8_000_000;

/**
 * A sync run's save found its target deleted since the run read it: nothing was written, and the run
 * stops (SyncService): no further save, platform call or report for a target that is gone.
 */
export class TargetGoneError extends Error {}

/**
 * A sync run's save (or first read) found its target marked "being deleted" (a DELETE without ?force
 * checking whether a show of it is on the platform): nothing was written and the run stops before any
 * further platform call; it comes back once the DELETE is over (SyncService: a delayed job). A
 * TargetGoneError, so every path that stops quietly for a deleted target stops for this one too.
 */
export class TargetDeletingError extends TargetGoneError {
  constructor(
    message: string,
    /** When the mark expires (epoch ms, 0 when unknown). */
    readonly untilMs = 0,
  ) {
    super(message);
  }
}

/**
 * A sync run's save (or check) found a target of another incarnation than the one its mirror is stamped
 * with: the target the run read was deleted and created again with the same id since (`?force=true`).
 * Nothing was written: the record is not the new target's, and the new target must not find one of the
 * deleted target's written after it was created (ownMirror's createdAt rule would take it as its own).
 * The run reads again (SyncService: its next round, as after a MirrorConflictError), now for the new
 * target, whose mirror starts afresh. A TargetGoneError: the target the run read is gone, and every path
 * that stops quietly for a deleted target (the report hook) does for this one too.
 */
export class TargetReplacedError extends TargetGoneError {}

/**
 * CHECK_TARGET_LUA's reply as ShowRepository.checkTarget throws it: TargetGoneError when the target is
 * gone, TargetDeletingError while it carries an unexpired "deleting" mark, with the mark's expiry moved
 * onto this process's clock (the time left by Redis's clock, from now), which the run's wait measures
 * against (SyncService).
 */
function assertTargetThere(reply: [number, string?, string?, string?], targetId: string): void {
  const [code, until, sec, usec] = reply;
  if (code === -3) {
    const left = Number(until) - (Number(sec) * 1000 + Math.floor(Number(usec) / 1000));
    throw new TargetDeletingError(`target ${targetId} is being deleted`, Date.now() + Math.max(0, left));
  }
  const refused = refusedFor(code, targetId);
  if (refused) throw refused;
}

/** TargetGoneError, TargetReplacedError or TargetDeletingError for a save script's -2, -4 or -3. */
function refusedFor(code: number, targetId: string): TargetGoneError | undefined {
  if (code === -2) return new TargetGoneError(`target ${targetId} was deleted during the sync`);
  if (code === -4) return new TargetReplacedError(`target ${targetId} was deleted and created again during the sync`);
  if (code === -3) return new TargetDeletingError(`target ${targetId} is being deleted`);
  return undefined;
}

export class MirrorConflictError extends Error {
  override readonly name = 'MirrorConflictError';
}

export interface IngestResult {
  duplicate: boolean;
  eventId: string;
  version: number;
  changed: boolean;
  /** Refused, nothing stored: the event's register would be one more than SHOW_REGISTERS_MAX. */
  full?: true;
}

/** A stored mirror of the shape its readers use (its target, state, pins and remote show). */
function isStoredMirror(v: unknown): boolean {
  return isPlainObject(v) && typeof v['targetId'] === 'string' && typeof v['state'] === 'string' && (v['pins'] === undefined || isPlainObject(v['pins'])) && (v['remote'] === undefined || v['remote'] === null || isPlainObject(v['remote']));
}

/** A `[partnerId, id]` member of an index set. */
const isIdPair = (v: unknown): boolean => Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string';

/** A show's record that does not read (counted): null, as absent. Any other error (Redis unavailable) is thrown. */
const unreadableAsNull = unreadableAs(null, 'show');

/** A parsed mirror's pins as an id record (parseMirror's rule). */
function withPins(m: MirrorDoc): MirrorDoc {
  m.pins = idRecord(m.pins);
  return m;
}

export class ShowRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly inboxTtlSec: number,
    private readonly box: SecretBox,
  ) {
    defineStoreScripts(redis);
  }

  /**
   * A stored mirror: the platform-given ingest key (YouTube's stream name, the key part of Facebook's
   * secure_stream_url) is a credential, kept sealed with SECRETS_KEY at rest like target credentials
   * and operator-given keys (`operatorIngest.streamKeySealed`). Mirrors stored in clear by an earlier
   * version are read as they are and sealed at their next save.
   */
  parse(raw: string, at?: { partnerId: string; showId: string; targetId: string }): MirrorDoc {
    // Read from its key (`at`): a record that does not read is a StoredRecordCorruptError naming it.
    const m = at === undefined ? parseMirror(raw) : withPins(parseStored<MirrorDoc>('mirror', at.targetId, this.keys.mirror(at.partnerId, at.showId, at.targetId), raw, isStoredMirror));
    const ingest = m.remote?.ingest as { url: string; streamKey?: string; streamKeySealed?: string } | undefined;
    if (m.remote && ingest?.streamKeySealed !== undefined) {
      const sealed = ingest.streamKeySealed;
      let plain = this.openedKeys.get(sealed);
      let current = plain !== undefined;
      if (plain === undefined) {
        const opened = tryOpen(() => this.box.open(sealed));
        if (opened === undefined) {
          // No configured key opens it: the mirror is still read (the show view answers, a sync fails
          // the mirror saying what to restore), its key unreadable, and saved with the sealed value as it
          // was (the memo below), never dropped or sealed anew.
          const unreadable = { url: ingest.url } as { url: string; streamKey: string };
          Object.defineProperty(unreadable, 'streamKey', {
            enumerable: false,
            get: () => {
              throw new SecretUnreadableError();
            },
          });
          markIngestUnreadable(unreadable);
          this.sealedKeys.set(unreadable, { sealed });
          m.remote.ingest = unreadable;
          return m;
        }
        ({ plain, current } = opened);
        if (current) {
          if (this.openedKeys.size >= OPENED_KEYS_MAX) this.openedKeys.clear();
          this.openedKeys.set(sealed, plain);
        }
      }
      const opened = { url: ingest.url, streamKey: plain };
      if (current) this.sealedKeys.set(opened, { plain, sealed });
      m.remote.ingest = opened;
    }
    return m;
  }

  /**
   * Stream keys opened, by their sealed form under the current SECRETS_KEY: every run of a mirror
   * reads the same sealed key, and an AES-GCM open per run was a visible part of a pin sync's CPU.
   * The same ciphertext always opens to the same key; a key rotation changes the sealed form.
   */
  private readonly openedKeys = new Map<string, string>();

  /**
   * The sealed form of an ingest's stream key as read or last written, by ingest object: a run saves
   * its mirror a few times with the same key, and sealing it anew each time (AES-GCM with a fresh IV)
   * was a visible part of a sync's CPU. A key changed on the object, or sealed under an earlier
   * SECRETS_KEY, is sealed again. An ingest whose key no configured key opens (markIngestUnreadable)
   * has its sealed form here alone: it has no key to compare.
   */
  private readonly sealedKeys = new WeakMap<object, { plain?: string; sealed: string }>();

  private serialize(m: MirrorDoc): string {
    const ingest = m.remote?.ingest;
    // Platform text (remote id, url, data, lastError) made well-formed: Lua's cjson refuses a lone surrogate.
    if (!m.remote || !ingest) return wellFormedJson(m);
    let memo = this.sealedKeys.get(ingest);
    // An ingest whose key could not be opened (parse) keeps its sealed value; its streamKey is not read.
    if (memo === undefined || (!ingestUnreadable(m) && memo.plain !== ingest.streamKey)) {
      memo = { plain: ingest.streamKey, sealed: this.box.encrypt(ingest.streamKey) };
      this.sealedKeys.set(ingest, memo);
    }
    return wellFormedJson({ ...m, remote: { ...m.remote, ingest: { url: ingest.url, streamKeySealed: memo.sealed } } });
  }

  async ingest(partnerId: string, showId: string, webhookId: string, logEntry: string, orderKey: string, write: RegisterWrite): Promise<IngestResult> {
    const k = this.keys;
    const args = [k.showInbox(partnerId, showId, webhookId), k.showEvents(partnerId, showId), k.desired(partnerId, showId), webhookId, logEntry, this.inboxTtlSec, orderKey, write.field, write.value];
    const r = await this.ingestWrite(args);
    if (r[0] === 3) return { duplicate: false, eventId: '', version: 0, changed: false, full: true };
    if (r[0] === 0) return { duplicate: true, eventId: r[1], version: 0, changed: false };
    return { duplicate: false, eventId: r[1], version: Number(r[2] ?? 0), changed: r[3] === 1 };
  }

  /**
   * INGEST_SHOW_LUA's step for `args` (its keys, then its arguments): on a Cluster in the batch of the
   * show's master (NODE_INGEST_SHOWS_LUA: one command per master's batch of concurrent events instead
   * of one EVALSHA each through the Cluster client), otherwise, or when that master could not take
   * it, through the client. A batch call that failed after it may have run is the caller's error
   * (503; the partner's retry finds the event stored): written again here, a stored first delivery
   * would be answered as a duplicate.
   */
  private ingestWrite(args: (string | number)[]): Promise<IngestReply> {
    const batches = this.nodeWrites();
    if (batches === undefined) return this.ingestApart(args);
    return new Promise<IngestReply>((resolve, reject) => {
      if (!batches.add(args[2] as string, { args, resolve, reject })) this.ingestApart(args).then(resolve, reject);
    });
  }

  /** INGEST_SHOW_LUA's step for `args` through the client (one EVALSHA, routed by the show's slot). */
  private ingestApart(args: (string | number)[]): Promise<IngestReply> {
    return this.redis.scIngestShow(args[0] as string, args[1] as string, args[2] as string, ...args.slice(3));
  }

  private nodeWriteBatches: NodeBatches<PendingWrite, (IngestReply | Error)[]> | undefined;

  private nodeWrites(): NodeBatches<PendingWrite, (IngestReply | Error)[]> | undefined {
    const cluster = this.redis;
    if (!(cluster instanceof Cluster)) return undefined;
    const again = (w: PendingWrite): void => {
      this.ingestApart(w.args).then(w.resolve, w.reject);
    };
    return (this.nodeWriteBatches ??= new NodeBatches<PendingWrite, (IngestReply | Error)[]>(cluster, {
      maxPerCall: INGEST_PER_CALL,
      maxInFlight: 1,
      send: (node, batch) => evalOnNode<(IngestReply | Error)[]>(node, NODE_INGEST_SHOWS, 0, batch.flatMap((w) => w.args)),
      deliver: (batch, replies) => {
        for (let i = 0; i < batch.length; i++) {
          const w = batch[i]!;
          const r = replies[i];
          if (Array.isArray(r)) w.resolve(r);
          else again(w); // not this node's show (any more): nothing was written
        }
      },
      fail: (batch, err) => {
        for (const w of batch) {
          if (notRun(err)) again(w);
          else w.reject(err);
        }
      },
    }));
  }

  /** A single Redis (not a Cluster): an accepted show event is one Lua call (ingestOne). */
  get singleNode(): boolean {
    return !this.redis.isCluster;
  }

  /**
   * The whole write of an accepted show event in one round trip, on a single Redis only
   * (INGEST_SHOW_ONE_LUA): webhook-id claim for `scope`, inbox + event log + desired state, the
   * sync-dispatch entry and, for a snapshot, the show index and active set. `holder` is set (and
   * nothing written) when the id is claimed for another scope.
   */
  async ingestOne(
    partnerId: string,
    showId: string,
    webhookId: string,
    scope: string,
    logEntry: string,
    orderKey: string,
    write: RegisterWrite,
    snapshot: { scheduledAtMs: number; live: boolean } | undefined,
    requestId: string | undefined,
    inline?: string[],
  ): Promise<IngestResult & { holder?: string }> {
    const k = this.keys;
    // The calls of the events read in one event-loop turn leave together (sendIngests): each HTTP
    // request runs in an I/O callback of its own, so issued as each came they were one socket write
    // (a syscall, on loopback also the receiving side's TCP path) per event.
    const keys: PendingIngestOne['keys'] = [
      k.partnerWebhookId(partnerId, webhookId),
      k.showInbox(partnerId, showId, webhookId),
      k.showEvents(partnerId, showId),
      k.desired(partnerId, showId),
      k.syncDispatch(),
      k.partnerShows(partnerId),
      k.activeShows(),
      k.partnerLiveShows(partnerId),
    ];
    const args = [
      scope,
      this.inboxTtlSec,
      webhookId,
      logEntry,
      partnerId,
      showId,
      requestId ?? '',
      snapshot ? '1' : '',
      snapshot?.scheduledAtMs ?? 0,
      Date.now(),
      snapshot ? JSON.stringify([partnerId, showId]) : '', // the active-set member: read for a snapshot only
      snapshot?.live ? '1' : '',
      orderKey,
      write.field,
      write.value,
    ];
    const r = await new Promise<IngestReply>((resolve, reject) => {
      if (this.ingestQueue.push({ keys, args, inline, resolve, reject }) === 1) setImmediate(this.sendIngests);
    });
    if (r[0] === 2) return { duplicate: true, eventId: '', version: 0, changed: false, holder: r[1] };
    if (r[0] === 3) return { duplicate: false, eventId: '', version: 0, changed: false, full: true };
    if (r[0] === 0) return { duplicate: true, eventId: r[1], version: 0, changed: false };
    return { duplicate: false, eventId: r[1], version: Number(r[2] ?? 0), changed: r[3] === 1 };
  }

  /**
   * Tells the sync dispatcher that the show's mirrors need a sync (the Cluster path's own step, after
   * the event's write returned; INGEST_SHOW_ONE_LUA writes the same entry on a single Redis).
   */
  async markForSync(partnerId: string, showId: string, requestId: string | undefined): Promise<void> {
    if (!(this.redis instanceof Cluster)) {
      await this.redis.xadd(this.keys.syncDispatch(), '*', 'p', partnerId, 's', showId, 'r', requestId ?? '');
      return;
    }
    // On a Cluster the entries of concurrent events leave together, one XADD each in one call
    // (DISPATCH_MANY_LUA), instead of one command each through the Cluster client. Each caller is
    // answered once the call that holds its entry returned (the entry is written after its own event's
    // write returned: ingest.service.ts). A failed call fails its callers (503; a retried delivery
    // writes its entry again).
    const marks = (this.dispatchMarks ??= new TurnBatcher<PendingMark, number>({
      maxPerCall: DISPATCH_PER_CALL,
      maxInFlight: 1,
      send: (batch) => this.redis.scDispatchMany(this.keys.syncDispatch(), ...batch.flatMap((m) => [m.partnerId, m.showId, m.requestId])),
      deliver: (batch) => {
        for (const m of batch) m.resolve();
      },
      fail: (batch, err) => {
        for (const m of batch) m.reject(err);
      },
    }));
    await new Promise<void>((resolve, reject) => marks.add({ partnerId, showId, requestId: requestId ?? '', resolve, reject }));
  }

  private dispatchMarks: TurnBatcher<PendingMark, number> | undefined;
  private ingestQueue: PendingIngestOne[] = [];
  /**
   * ingestOne's calls waiting for the end of this event-loop turn, sent in one socket write (inOneWrite):
   * one Lua call each, with its own reply, in the order the events came.
   */
  private readonly sendIngests = (): void => {
    const batch = this.ingestQueue;
    this.ingestQueue = [];
    inOneWrite(this.redis, () => {
      for (const w of batch) {
        try {
          (w.inline ? this.redis.scIngestShowOneInline(...w.keys, ...w.args, ...w.inline) : this.redis.scIngestShowOne(...w.keys, ...w.args)).then(w.resolve, w.reject);
        } catch (err) {
          w.reject(err); // (a throw, not a rejection: the others still go)
        }
      }
    });
  };

  /**
   * The show's desired state; null before its first snapshot. A record that does not read (a key of
   * another type, a register that is not JSON or not of its shape) is a StoredRecordCorruptError.
   */
  async desired(partnerId: string, showId: string): Promise<DesiredShow | null> {
    const key = this.keys.desired(partnerId, showId);
    const h = await readStored('show', showId, key, () => this.redis.hgetall(key));
    return this.derive(showId, key, h, (raw) => parseStored<Show>('show', showId, key, raw, isStoredShow));
  }

  private derive(showId: string, key: string, h: Record<string, string>, parseSnap: (raw: string) => Show): DesiredShow | null {
    return deriveDesired(showId, h, parseSnap, (raw) => parseStored<Product>('show', showId, key, raw, isStoredProduct));
  }

  /**
   * The desired state from registers read flat (HGETALL inside a Lua step: a sync run's first read).
   * The show's snapshot is parsed once per stored text: a pin, an unpin or a product update is a
   * register of its own, so every run of a live show until the partner's next snapshot reads the same
   * snapshot text, and its parse (the show with all its products) is reused while the text is the same
   * (a string comparison). Frozen, products and prices included: runs share it.
   */
  desiredFromFlat(showId: string, flat: string[], partnerId?: string): DesiredShow | null {
    const h = idRecord<string>();
    for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
    const key = partnerId === undefined ? `(the desired state of show ${showId})` : this.keys.desired(partnerId, showId);
    return this.derive(showId, key, h, (raw) => this.snapshotOf(showId, key, raw));
  }

  private readonly snapshots = new Map<string, { raw: string; snap: Show }>();
  /** Characters of text the memo holds (the sum of its entries' `raw` lengths). */
  private snapshotChars = 0;
  private snapshotOf(showId: string, key: string, raw: string): Show {
    const hit = this.snapshots.get(showId);
    if (hit?.raw === raw) return hit.snap;
    const snap = parseStored<Show>('show', showId, key, raw, isStoredShow);
    if (raw.length > SNAPSHOT_MEMO_MAX_CHARS) return snap;
    for (const p of snap.products) {
      Object.freeze(p.price);
      Object.freeze(p);
    }
    Object.freeze(snap.products);
    Object.freeze(snap.pinnedProductIds);
    Object.freeze(snap);
    if (hit) this.snapshotChars -= hit.raw.length;
    if (this.snapshots.size >= SNAPSHOTS_MAX || this.snapshotChars + raw.length > SNAPSHOT_MEMO_TOTAL_CHARS) {
      this.snapshots.clear();
      this.snapshotChars = 0;
    }
    this.snapshots.set(showId, { raw, snap });
    this.snapshotChars += raw.length;
    return snap;
  }

  /** The product as the show's desired state has it now (latest `product.updated` or snapshot). */
  async currentProduct(partnerId: string, showId: string, productId: string): Promise<Product | undefined> {
    const values = await this.redis.hmget(this.keys.desired(partnerId, showId), ...productFields(productId));
    return productOf(productId, values);
  }

  async version(partnerId: string, showId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.desired(partnerId, showId), 'v')) ?? 0);
  }

  /**
   * The partner's show index (by scheduledAt) and live-show index (Keys.partnerLiveShows: added when
   * the snapshot says live, removed otherwise) for a show snapshot on a Redis Cluster (the single-Redis
   * path writes them inside INGEST_SHOW_ONE_LUA), in one step in the partner's slot that skips a
   * snapshot older (`orderKey`) than the one they hold (INDEX_SNAPSHOT_LUA). False when skipped.
   */
  async indexSnapshot(partnerId: string, showId: string, orderKey: string, scheduledAtMs: number, live: boolean): Promise<boolean> {
    const k = this.keys;
    return (await this.redis.scIndexSnapshot(k.partnerShowsIndexed(partnerId), k.partnerShows(partnerId), k.partnerLiveShows(partnerId), showId, orderKey, scheduledAtMs, live ? '1' : '')) === 1;
  }

  /** indexSnapshot with the show's stored snapshot (nothing when it has none). */
  async reindexSnapshot(partnerId: string, showId: string): Promise<void> {
    const [snapRaw, key] = await this.redis.hmget(this.keys.desired(partnerId, showId), 'snap', 'snap@');
    if (!snapRaw || !key) return;
    const snap = JSON.parse(snapRaw) as { scheduledAt: string; state: string };
    await this.indexSnapshot(partnerId, showId, key, Date.parse(snap.scheduledAt), snap.state === 'live');
  }

  /** The partner's shows that are live (a show's last snapshot said live), at most `limit`. */
  async liveShowIds(partnerId: string, limit: number): Promise<string[]> {
    const ids = await this.redis.smembers(this.keys.partnerLiveShows(partnerId));
    return ids.length > limit ? ids.sort().slice(0, limit) : ids;
  }

  /**
   * Live shows stored before the live-show index existed: added to it once per partner, by one walk of
   * the partner's show index (`pageSize` shows a round trip), then marked done. A show that ends while
   * the walk runs may be left in the index: readers check the show's state (the board does).
   */
  async backfillLive(partnerId: string, pageSize = 500): Promise<void> {
    const k = this.keys;
    if (await this.redis.exists(k.partnerLiveBackfilled(partnerId))) return;
    for (let start = 0; ; start += pageSize) {
      const ids = await this.redis.zrange(k.partnerShows(partnerId), start, start + pageSize - 1);
      // A show whose desired state is a key of another type is not live (counted): the walk goes on. Its
      // WRONGTYPE failed the walk, left the partner's whole part off the board, and every board walked again.
      const snaps = await Promise.all(ids.map((id) => this.redis.hget(k.desired(partnerId, id), 'snap').catch(unreadableAsNull)));
      const live = ids.filter((_, i) => {
        try {
          return (JSON.parse(snaps[i] ?? 'null') as { state?: string } | null)?.state === 'live';
        } catch {
          return false;
        }
      });
      if (live.length > 0) await this.redis.sadd(k.partnerLiveShows(partnerId), ...live);
      if (ids.length < pageSize) break;
    }
    await this.redis.set(k.partnerLiveBackfilled(partnerId), '1');
  }

  /**
   * A page of the partner's show index, newest scheduledAt first (ties: show id descending), from a
   * stable cursor (src/store/zset-page.ts): shows indexed or rescheduled while a client pages shift
   * nothing (an offset repeated or skipped shows).
   */
  async listShowIds(partnerId: string, start: PageStart, limit: number): Promise<ZsetPage> {
    return zrevPage(this.redis, this.keys.partnerShows(partnerId), start, limit);
  }

  /** The number of shows in the partner's show index (listShowIds' `total`). */
  async showCount(partnerId: string): Promise<number> {
    return this.redis.zcard(this.keys.partnerShows(partnerId));
  }

  /**
   * The mirror of the show on a target. Given the target (a TargetRecord, or its id, platform and
   * incarnation), a record an earlier target of the same id left is read as a new mirror (ownMirror):
   * every reader that shows or acts on a mirror passes the target. Given an id alone: the record as stored.
   */
  async getMirror(partnerId: string, showId: string, target: string | MirrorOwner): Promise<MirrorDoc | null> {
    const targetId = typeof target === 'string' ? target : target.id;
    const key = this.keys.mirror(partnerId, showId, targetId);
    const raw = await readStored('mirror', targetId, key, () => this.redis.get(key));
    const stored = raw ? this.parse(raw, { partnerId, showId, targetId }) : null;
    return typeof target === 'string' ? stored : ownMirror(stored, target);
  }

  /** getMirror for several targets of the show (one MGET). */
  async getMirrors(partnerId: string, showId: string, targets: readonly (string | MirrorOwner)[]): Promise<(MirrorDoc | null)[]> {
    if (targets.length === 0) return [];
    const ids = targets.map((t) => (typeof t === 'string' ? t : t.id));
    // MGET answers a key of another type as absent (nil): a hash where a mirror is reads as no mirror.
    const raws = await this.redis.mget(...ids.map((id) => this.keys.mirror(partnerId, showId, id)));
    return raws.map((r, i) => {
      const stored = r ? this.parse(r, { partnerId, showId, targetId: ids[i]! }) : null;
      const t = targets[i]!;
      return typeof t === 'string' ? stored : ownMirror(stored, t);
    });
  }

  /**
   * Read-modify-write of a mirror with compare-and-set, retried on conflict (operator actions racing
   * a running sync). `change` returns false to leave the mirror as it is. The mirror is read as getMirror
   * reads it for `target` (an earlier incarnation's record is replaced by a new mirror).
   * Given the target (not its id alone), the save has a sync run's target guard: refused, nothing
   * written, once the target is gone (TargetGoneError), of another incarnation (TargetReplacedError) or
   * marked "being deleted" (TargetDeletingError). An operator's link or retry saved without it while a
   * DELETE checked the target's mirrors (or after the DELETE) left a linked or retried mirror — a show
   * on the platform by the DELETE's own rule — of a target deleted with a 204.
   */
  async updateMirror(partnerId: string, showId: string, target: string | MirrorOwner, init: () => MirrorDoc, change: (m: MirrorDoc) => boolean): Promise<MirrorDoc | null> {
    const guard = typeof target === 'string' ? undefined : targetRecordField(this.keys, partnerId, target.id);
    for (let attempt = 0; ; attempt++) {
      const m = (await this.getMirror(partnerId, showId, target)) ?? init();
      if (!change(m)) return null;
      try {
        await this.saveMirror(partnerId, showId, m, undefined, guard);
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
   * `target` (an operator's save, without a lease): the target record to guard the save with, as a
   * run's `lease.target`.
   */
  async saveMirror(partnerId: string, showId: string, mirror: MirrorDoc, lease?: MirrorLease, target?: { key: string; field: string }): Promise<void> {
    const { guard, expected, since, next } = await this.nextRevision(partnerId, showId, mirror, lease, target);
    const k = this.keys;
    const pending = lease?.pending;
    let ok: number;
    if (lease && pending?.length) {
      ok = await this.redis.scSaveMirrorCompleting(
        3 + pending.length,
        k.mirror(partnerId, showId, mirror.targetId),
        lease.key,
        guard.key,
        ...pending.map((p) => p.key),
        expected,
        this.serialize(next),
        lease.token,
        lease.ttlMs,
        guard.field,
        INTENT_TTL_SEC,
        guard.incarnation,
        ...pending.map((p) => p.record),
      );
      // -1 (lease lost), -2 (target gone), -4 (another incarnation) and -3 (being deleted) wrote
      // nothing: the deferred done records stay for the run's next save or flush, as facts of calls
      // already made (saveMirrorFinal likewise). An unreadable one (-10 - n) wrote every other: none is
      // left to write.
      if (ok !== -1 && refusedFor(ok, mirror.targetId) === undefined) lease.pending = undefined;
    } else {
      ok = await this.redis.scSaveMirror(
        k.mirror(partnerId, showId, mirror.targetId),
        k.mirrorLease(partnerId, showId, mirror.targetId),
        guard.key,
        expected,
        this.serialize(next),
        lease?.token ?? '',
        lease?.ttlMs ?? 0,
        guard.field,
        guard.incarnation,
      );
    }
    const refused = refusedFor(ok, mirror.targetId);
    if (refused) throw refused;
    const corrupt = corruptCompletion(ok, pending);
    if (corrupt) throw new IntentCorruptError(corrupt.what, corrupt.key, true);
    if (ok === -1) throw new LeaseLostError(`mirror ${showId}/${mirror.targetId}: this run no longer owns it`);
    if (ok !== 1) throw new MirrorConflictError(`mirror ${showId}/${mirror.targetId} changed since it was read`);
    mirror.rev = next.rev;
    mirror.updatedAt = next.updatedAt;
    mirror.since = since;
  }

  /**
   * What saveMirror and saveMirrorFinal start from: the run's lease still held (as far as it knows),
   * the target's guard, and the mirror's next revision (`since` kept while its state stays the same).
   */
  private async nextRevision(partnerId: string, showId: string, mirror: MirrorDoc, lease: MirrorLease | undefined, target?: { key: string; field: string }): Promise<{ guard: Awaited<ReturnType<ShowRepository['targetGuard']>>; expected: number; since: NonNullable<MirrorDoc['since']>; next: MirrorDoc }> {
    assertHeld(lease, `mirror ${showId}/${mirror.targetId}`);
    // The record's time is taken before the guard: on a Cluster the guard is a read before the save, and
    // a target deleted and created again between that read and the save (`?force=true`) has a `createdAt`
    // after it, so a record of a target without an incarnation written then is older than the new target
    // (ownMirror's createdAt rule: the deleted target's, not taken as the new one's). Taken after the
    // read, it was newer: the new target took the deleted target's state (its platform show) as its own.
    const now = new Date().toISOString();
    const guard = await this.targetGuard(partnerId, showId, mirror, lease?.target ?? target);
    const expected = mirror.rev ?? 0;
    const since = mirror.since?.state === mirror.state ? mirror.since : { state: mirror.state, at: now };
    return { guard, expected, since, next: revised(mirror, expected + 1, now, since) };
  }

  /**
   * A sync run's last save (saveMirror's rules), which also reads the show's desired-state version in
   * the same step and, when it is still `syncedVersion`, releases the run's lease (marked `released`)
   * and appends `runEntry` to the show's timeline (`runRecorded`). Returns the version read.
   * `index` (a single Redis only: see `singleNode`): the mirror's external-show index entry is
   * asserted in the same step (ExternalShowIndex.assert, written also when the save is refused), and
   * `indexWaiting` says how many orders wait for it; a refused save throws as always, its count unsaid
   * (the next assert of the entry, by the next round or the run that took over, reports them).
   * `alongside` (a Cluster's index entry, which is in another slot) is started once the target guard
   * passed (on a Cluster a read before the save), together with the save: never for a target that was
   * already gone or being deleted then, and no round trip added. It is awaited with the save; its
   * failure fails the save's caller, as the index write alongside it did before.
   */
  async saveMirrorFinal(
    partnerId: string,
    showId: string,
    mirror: MirrorDoc,
    lease: MirrorLease,
    syncedVersion: number,
    activityEntry?: string,
    runEntry?: string,
    index?: { externalId: string },
    alongside?: () => Promise<unknown>,
  ): Promise<{ version: number; runRecorded: boolean; indexWaiting?: number }> {
    const { guard, expected, since, next } = await this.nextRevision(partnerId, showId, mirror, lease);
    const k = this.keys;
    if (index && this.redis.isCluster) throw new Error('saveMirrorFinal: the index entry is in another slot; assert it on its own on a Cluster');
    // Deferred intent completions (the pin step's, when its own save was left to this one) ride on it.
    const pending = lease.pending ?? [];
    const keys = [k.mirror(partnerId, showId, mirror.targetId), lease.key, k.desired(partnerId, showId), k.showActivity(partnerId, showId), guard.key];
    const args: (string | number)[] = [expected, this.serialize(next), lease.token, lease.ttlMs, syncedVersion, activityEntry ?? '', ACTIVITY_MAX_LEN, runEntry ?? '', index ? showId : '', INTENT_TTL_SEC, guard.field, guard.incarnation];
    if (index) keys.push(k.targetExternalShow(mirror.targetId, index.externalId), k.targetExternalShowWaiting(mirror.targetId, index.externalId));
    for (const p of pending) {
      keys.push(p.key);
      args.push(p.record);
    }
    // `alongside` (a Cluster's index entry) goes out with the save, once the target guard passed.
    const [[ok, v, released, waiting]] = await Promise.all([this.redis.scSaveMirrorFinal(keys.length, ...keys, ...args), alongside?.()]);
    const refused = refusedFor(ok, mirror.targetId);
    if (refused) throw refused;
    if (ok !== -1 && pending.length) lease.pending = undefined;
    // A deferred done record found unreadable: the same error as every other write of one (a lost
    // lease, before, which surfaced as IntentCorruptError only in the run after the lease lapsed).
    const corrupt = corruptCompletion(ok, pending);
    if (corrupt) throw new IntentCorruptError(corrupt.what, corrupt.key, true);
    if (ok === -1) throw new LeaseLostError(`mirror ${showId}/${mirror.targetId}: this run no longer owns it`);
    if (ok !== 1) throw new MirrorConflictError(`mirror ${showId}/${mirror.targetId} changed since it was read`);
    if (released === 1) lease.released = true;
    mirror.rev = next.rev;
    mirror.updatedAt = next.updatedAt;
    mirror.since = since;
    return { version: Number(v ?? 0), runRecorded: released === 1 && runEntry !== undefined && runEntry !== '', ...(index ? { indexWaiting: Number(waiting ?? 0) } : {}) };
  }

  /**
   * The target guard of a save (a sync run's `lease.target`, set by SyncService; an operator save's
   * target, updateMirror): on a single Redis the save script checks the target's field (its
   * incarnation: the one `mirror` is stamped with, and its "deleting" mark) in the same step; on a
   * Cluster (another slot) it is read here first. Without one (an operator save of a mirror given by
   * its id alone): the mirror's own key and no field, nothing checked.
   */
  private async targetGuard(partnerId: string, showId: string, mirror: MirrorDoc, target: { key: string; field: string } | undefined): Promise<{ key: string; field: string; incarnation: string }> {
    const none = { key: this.keys.mirror(partnerId, showId, mirror.targetId), field: '', incarnation: '' };
    if (!target) return none;
    if (!this.redis.isCluster) return { key: target.key, field: target.field, incarnation: mirror.incarnation ?? '' };
    await this.checkTarget(partnerId, mirror.targetId, mirror.incarnation);
    return none;
  }

  /**
   * A sync run's check of its target outside a save script (one single-key script, CHECK_TARGET_LUA):
   * rejects with TargetGoneError when the target is gone, TargetReplacedError when it is not of
   * `incarnation` (the run's mirror's; undefined for a target created before incarnations, which has
   * none) but deleted and created again, TargetDeletingError while a DELETE's unexpired "deleting" mark
   * is on it (the save scripts' targetGuard rule, on Redis's clock as the DELETE set the mark: never this
   * process's). Its one reader for every such check: a Cluster's save guard (above), the re-read before
   * a Cluster create, and the check before a run tells the partner (SyncService).
   */
  async checkTarget(partnerId: string, targetId: string, incarnation: string | undefined): Promise<void> {
    const { key, field } = targetRecordField(this.keys, partnerId, targetId);
    assertTargetThere(await this.redis.scCheckTarget(key, field, incarnation ?? ''), targetId);
  }

  /**
   * Shows with possibly unfinished mirrors, for the sweep. Member = JSON [partnerId, showId]; score:
   * when it was last marked (Redis's clock), and never the same twice (markActiveLua), so the sweep's
   * removal can tell that the show was marked again after it read it.
   */
  async markActive(partnerId: string, showId: string): Promise<void> {
    await this.redis.scMarkActive(this.keys.activeShows(), JSON.stringify([partnerId, showId]));
  }
  /**
   * Drops the show from the active set. With `score` (the sweep's, as activeShowEntries read it) only
   * while the show was not marked again since (a resync, a link or a snapshot that put it back after
   * the sweep read its mirrors): then it stays, and false is returned. True when it was removed.
   */
  async markInactive(partnerId: string, showId: string, score?: string): Promise<boolean> {
    const member = JSON.stringify([partnerId, showId]);
    if (score === undefined) return (await this.redis.zrem(this.keys.activeShows(), member)) > 0;
    return (await this.redis.scRemoveActiveIfUnmarked(this.keys.activeShows(), member, score)) === 1;
  }
  /**
   * Every show of the active set, a page per round trip (ZSCAN with COUNT `pageSize`): a show that is
   * in the set for the whole walk is visited, also when `markActive` moves it meanwhile (ZSCAN walks
   * the set's members, not ranks that shift under a concurrent ZADD); one it met twice is given once.
   */
  async *activeShowPages(pageSize: number): AsyncGenerator<[string, string][]> {
    for await (const page of this.activeShowEntries(pageSize)) yield page.map((e) => [e.partnerId, e.showId]);
  }

  /** activeShowPages with each show's score as read (the sweep's conditional removal, markInactive). */
  async *activeShowEntries(pageSize: number): AsyncGenerator<{ partnerId: string; showId: string; score: string }[]> {
    const key = this.keys.activeShows();
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(key, cursor, 'COUNT', pageSize);
      cursor = next;
      const page: { partnerId: string; showId: string; score: string }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const m = flat[i]!;
        if (seen.has(m)) continue;
        seen.add(m);
        const [partnerId, showId] = JSON.parse(m) as [string, string];
        page.push({ partnerId, showId, score: flat[i + 1]! });
      }
      if (page.length > 0) yield page;
    } while (cursor !== '0');
  }

  /** Every active show (all pages). */
  async activeShows(pageSize = 500): Promise<[string, string][]> {
    const all: [string, string][] = [];
    for await (const page of this.activeShowPages(pageSize)) all.push(...page);
    return all;
  }
}

/**
 * Order events: inbox + durable record + a pending mark per event, in the order's slot; attribution
 * consumes them from its queue and clears the mark. An order with marks is listed in the
 * pending-orders set (written before and after the event, so neither a crash after the write nor a
 * sweep that settled the order meanwhile can leave a marked event unlisted); the sweep hands every
 * event still marked after a grace period to attribution itself (OrderEventSweep), so an event whose
 * job was never added, got lost or failed for good still reaches the ledger — once, as the ledger
 * step is idempotent.
 */
/** OrderEventRepository.ingestOne's outcome. */
export interface OrderIngestOne {
  duplicate: boolean;
  eventId: string;
  /** Hand the event to attribution (the queue): stored now or a duplicate, not a refused refund's duplicate. */
  handOn: boolean;
  /** The scope that holds the webhook-id (another one): nothing written. */
  holder?: string;
  /** The order that holds the refund id (another one): nothing written. */
  refundHolder?: string;
  /** The currency of the refund's order (the ledger's, or the one recorded with its order.created), another than the refund's: nothing written. */
  orderCurrency?: string;
  /** With orderCurrency: this order already holds the refund id (a refund under it is stored; the ledger books an id once). */
  refundIdHeld?: boolean;
  /** An order.created's mark (otherCurrencyMark): true when its order's recorded currency is another (not booked); undefined for other events. */
  otherCurrency?: boolean;
}

/**
 * What an order event's store does with its order's recorded currency (Keys.orderCurrency): an
 * order.created ('o') records its currency when none is; an order.refunded ('r') is refused when the
 * recorded currency is another (nothing written). The refund's whole rule, the ledger first:
 * IngestService.refundCurrency.
 */
export interface OrderCurrencyStep {
  kind: 'o' | 'r' | '';
  currency: string;
}

/** The store scripts' otherCurrencyMark as OrderIngestOne.otherCurrency ('' or none: not an order.created). */
function otherCurrencyOf(oc: string | undefined): { otherCurrency?: boolean } {
  return oc === '1' ? { otherCurrency: true } : oc === '0' ? { otherCurrency: false } : {};
}

/** How many pending events of an order OrderEventRepository.pendingRefund reads at most (typically one or two are pending). */
const PENDING_REFUND_SCAN_MAX = 4;

export class OrderEventRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly inboxTtlSec: number,
  ) {
    defineStoreScripts(redis);
  }

  /**
   * The Redis Cluster path's store step (the claims are made before it; ingestOne on a single Redis):
   * the store script alone, so an error from this call is the script's (nothing stored). The caller
   * lists the order (markPending, another slot) before it, alongside its webhook-id claim, and again
   * after it returned: a failure of that listing must not read as a refused store.
   */
  async ingest(partnerId: string, orderId: string, webhookId: string, eventJson: string, currency?: OrderCurrencyStep): Promise<{ duplicate: boolean; eventId: string; orderCurrency?: string; otherCurrency?: boolean }> {
    const k = this.keys;
    const r = await this.redis.scIngestPlain(k.orderInbox(partnerId, orderId, webhookId), k.orderEvents(partnerId, orderId), k.orderPending(partnerId, orderId), k.orderCurrency(partnerId, orderId), webhookId, eventJson, this.inboxTtlSec, Date.now(), currency?.kind ?? '', currency?.currency ?? '');
    if (r[0] === 5) return { duplicate: false, eventId: '', orderCurrency: r[1] };
    return { duplicate: r[0] === 0, eventId: r[1], ...otherCurrencyOf(r[2]) };
  }

  /** A single Redis (not a Cluster): an order event is one Lua call (ingestOne). */
  get singleNode(): boolean {
    return !this.redis.isCluster;
  }

  /**
   * The whole write of an order event in one round trip, on a single Redis only (INGEST_ORDER_ONE_LUA):
   * the webhook-id claim for `scope`, for a refund (`refund.id`) its refund-id claim for the order, the
   * pending-orders listing, and inbox + event log + pending mark (an order.created's currency recorded,
   * `currency`); all of it or nothing. `holder` is set (nothing written) when the webhook-id is claimed
   * for another scope, `refundHolder` when another order holds the refund id and this webhook-id's
   * event is not stored, `orderCurrency` when the refund is in another currency than its order's (the
   * ledger's, `refund.ledger`, once it holds the order, else the recorded one; nothing written). `handOn` is
   * false for the stored duplicate of such a refund (the Cluster path does not queue it either).
   */
  async ingestOne(partnerId: string, orderId: string, webhookId: string, scope: string, eventJson: string, currency: OrderCurrencyStep, refund?: { id: string; ledger?: { key: string; field: string } }): Promise<OrderIngestOne> {
    const k = this.keys;
    const keys = [k.partnerWebhookId(partnerId, webhookId), k.orderInbox(partnerId, orderId, webhookId), k.orderEvents(partnerId, orderId), k.orderPending(partnerId, orderId), k.pendingOrders(), k.orderCurrency(partnerId, orderId)];
    if (refund) keys.push(k.partnerRefundId(partnerId, refund.id));
    if (refund?.ledger) keys.push(refund.ledger.key);
    const ledgerField = refund?.ledger ? [refund.ledger.field] : [];
    const r = await this.redis.scIngestOrderOne(keys.length, ...keys, scope, this.inboxTtlSec, webhookId, eventJson, Date.now(), JSON.stringify([partnerId, orderId]), orderId, currency.kind, currency.currency, ...ledgerField);
    if (r[0] === 2) return { duplicate: true, eventId: '', handOn: false, holder: r[1] };
    if (r[0] === 3) return { duplicate: false, eventId: '', handOn: false, refundHolder: r[1] };
    if (r[0] === 5) return { duplicate: false, eventId: '', handOn: false, orderCurrency: r[1], refundIdHeld: r[2] === '1' };
    return { duplicate: r[0] !== 1, eventId: r[1], handOn: r[0] !== 4, ...otherCurrencyOf(r[2]) };
  }

  /** Lists the order in the pending-orders set (the score moves forward, so a concurrent settle keeps it). */
  async markPending(partnerId: string, orderId: string): Promise<void> {
    await this.redis.zadd(this.keys.pendingOrders(), Date.now(), JSON.stringify([partnerId, orderId]));
  }

  /** The event has been handled by attribution (the order's log expires once none is left pending). */
  async handled(partnerId: string, orderId: string, eventId: string): Promise<void> {
    await this.redis.scOrderHandled(this.keys.orderPending(partnerId, orderId), this.keys.orderEvents(partnerId, orderId), this.keys.orderCurrency(partnerId, orderId), eventId, this.inboxTtlSec);
  }

  /**
   * The currency recorded with the order's first stored order.created (Keys.orderCurrency), if any. The
   * attribution worker reads it only for an order.created without its store's mark (a job of an older
   * version, the sweep): AttributionService.handlePartnerEvent.
   */
  async recordedCurrency(partnerId: string, orderId: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.orderCurrency(partnerId, orderId))) ?? undefined;
  }

  /**
   * Whether an order.refunded under `refundId` is stored in the order's log and not handled yet (a
   * handled one is in the ledger). For a refused refund only: it reads the pending events whole (an
   * order.created may be 1 MiB), at most PENDING_REFUND_SCAN_MAX of them; with more pending it answers
   * true unread (the caller's safe side: its 422 then asks for a new refund id, which is always taken).
   */
  async pendingRefund(partnerId: string, orderId: string, refundId: string): Promise<boolean> {
    const pending = await this.pendingEvents(partnerId, orderId);
    if (pending.length > PENDING_REFUND_SCAN_MAX) return true;
    for (const { eventId } of pending) {
      const raw = await this.event(partnerId, orderId, eventId);
      if (raw === null) continue;
      const e = JSON.parse(raw) as { type?: string; data?: { refund?: { id?: unknown } } };
      if (e.type === 'order.refunded' && e.data?.refund?.id === refundId) return true;
    }
    return false;
  }

  /** Events of the order still marked pending: event id → stored-at ms. */
  async pendingEvents(partnerId: string, orderId: string): Promise<{ eventId: string; storedAtMs: number }[]> {
    const h = await this.redis.hgetall(this.keys.orderPending(partnerId, orderId));
    return Object.entries(h)
      .map(([eventId, ms]) => ({ eventId, storedAtMs: Number(ms) }))
      .sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
  }

  /** One stored event (its JSON), or null when it is not in the order's log. */
  async event(partnerId: string, orderId: string, eventId: string): Promise<string | null> {
    const rows = await this.redis.xrange(this.keys.orderEvents(partnerId, orderId), eventId, eventId);
    const fields = rows[0]?.[1] ?? [];
    const i = fields.indexOf('event');
    return i >= 0 && i + 1 < fields.length ? fields[i + 1]! : null;
  }

  /** Every order of the pending-orders set with the score it was read at, a page per round trip (ZSCAN). */
  async *pendingOrderPages(pageSize: number): AsyncGenerator<{ partnerId: string; orderId: string; member: string; score: string }[]> {
    const key = this.keys.pendingOrders();
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(key, cursor, 'COUNT', pageSize);
      cursor = next;
      const page: { partnerId: string; orderId: string; member: string; score: string }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const member = flat[i]!;
        if (seen.has(member)) continue;
        seen.add(member);
        // A member that does not name an order (a hand edit) is passed over, counted: its parse error
        // failed every sweep, for every pending order.
        const ids = parseListed<[string, string]>('order', member, key, member, isIdPair);
        if (!ids) continue;
        const [partnerId, orderId] = ids;
        page.push({ partnerId, orderId, member, score: flat[i + 1]! });
      }
      if (page.length > 0) yield page;
    } while (cursor !== '0');
  }

  /** Drops the order from the pending-orders set if it has no marked event and nobody marked it since `score`. */
  async settle(partnerId: string, orderId: string, member: string, score: string): Promise<boolean> {
    if ((await this.redis.hlen(this.keys.orderPending(partnerId, orderId))) > 0) return false;
    return (await this.redis.scSettlePendingOrder(this.keys.pendingOrders(), member, score)) === 1;
  }
}
