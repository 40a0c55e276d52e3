/** Partners, their targets and webhook secrets: one hash per partner (one slot, one HGETALL). */
import type { Logger } from 'pino';
import { tryOpen, type SecretBox } from '../lib/crypto.js';
import type { Platform } from '../targets/target.adapter.js';
import type { PendingAudit } from './audit.repository.js';
import type { Keys } from './keys.js';
import type { Result } from 'ioredis';
import { isPlainObject, parseStored, readStored } from './stored-record.js';
import { defineRedisScripts, isUnreadableRecord, LateWriteError, lateWriteLua, type RedisClient, writeDeadline } from './redis.js';
import { grantHoldLua, GrantHoldLostError, type GrantFence } from './token.repository.js';

/**
 * KEYS: the partner hash, its pending audit entries, a target PATCH's grant hold (same slot; the
 * partner hash again for none). ARGV: field, '1' when the field was
 * present (else '0'), the value read, the new value ('' with ARGV[5] = 'del' deletes the field), '1'
 * (ARGV[6]) to drop an expired "being deleted" mark from a target record written (a DELETE that
 * crashed: see MARK_DELETING_LUA), and the change's pending audit id and entry (ARGV[7], ARGV[8]; ''
 * for none). Compare-and-set of one field: the write happens only if nobody changed it since it was
 * read, and with it the entry is recorded pending. Whether the mark expired is decided here, on
 * Redis's clock, as the mark was dated (never the API process's: a slow one kept an expired mark, a
 * fast one dropped the mark of a DELETE still checking). ARGV[9]: the PATCH's nonce ('' none): the
 * write happens only while its hold (KEYS[3]) still names it (RedisTokenStore.lockGrant). Returns 1
 * when written, 2 when written without its expired mark, -1 when the hold is another's (nothing written).
 */
const CAS_FIELD_LUA = `
${grantHoldLua('KEYS[3]', "(ARGV[9] or '')")}local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if cur ~= ARGV[3] then return 0 end
elseif cur then
  return 0
end
local written = 1
if ARGV[5] == 'del' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local value = ARGV[4]
  if ARGV[6] == '1' then
    local mark = string.match(value, ',"deleting":"([^"]*)"')
    if mark then
      local t = redis.call('TIME')
      local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      if (tonumber(string.match(mark, '^%d+') or '0') or 0) <= now then
        value = string.gsub(value, ',"deleting":"[^"]*"', '')
        written = 2
      end
    end
  end
  redis.call('HSET', KEYS[1], ARGV[1], value)
end
if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[2], ARGV[7], ARGV[8]) end
return written
`;

/**
 * The "being deleted" mark of a target (DELETE without ?force, src/api/routes/targets.routes.ts): a
 * field `"deleting":"<until ms>.<token>"` in the target's own record, so every read of the record (a
 * sync run's first read, the save scripts' target guard) sees it with the record. Written in Lua with
 * Redis's clock: KEYS the partner hash; ARGV the target's field, the DELETE's token, the mark's ttl ms.
 * A mark already there (another DELETE's, or one a crashed DELETE left) is replaced. Returns the
 * record's new `,"deleting":"…"` text, or false when the target does not exist.
 */
const MARK_DELETING_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local t = redis.call('TIME')
local untilMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
raw = string.gsub(raw, ',"deleting":"[^"]*"', '')
local mark = ',"deleting":"' .. string.format('%d', untilMs) .. '.' .. ARGV[2] .. '"'
redis.call('HSET', KEYS[1], ARGV[1], string.sub(raw, 1, -2) .. mark .. '}')
return mark
`;

/**
 * KEYS: the partner hash, its pending audit entries (same slot). ARGV: the target's field, the mark
 * (MARK_DELETING's answer), its until ms, 'del' to delete the target or 'unmark' to take the mark off,
 * and the delete's pending audit id and entry ('' for none). Only while that very mark is on the record
 * and has not expired (Redis's clock): the mark was there all along since it was written, so no sync run
 * saved (or called the platform) after the DELETE's check of its mirrors. Returns 1 when done, 0 when the
 * target does not exist, -1 when the mark is gone, replaced or expired (nothing done).
 */
const DELETING_DONE_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local s, e = string.find(raw, ARGV[2], 1, true)
if not s then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[4] == 'del' then
  if now >= tonumber(ARGV[3]) then return -1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], ARGV[5], ARGV[6]) end
else
  redis.call('HSET', KEYS[1], ARGV[1], string.sub(raw, 1, s - 1) .. string.sub(raw, e + 1))
end
return 1
`;

/**
 * KEYS: the partner hash, its pending audit entries (same slot). ARGV: the target's field, the delete's
 * pending audit id and entry ('' for none). Deletes the field; records the entry pending only if it did
 * (1 = deleted).
 */
const DELETE_FIELD_LUA = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 1
`;

/**
 * KEYS: the partner hash, its pending audit entries (same slot). ARGV: doc json, secrets json, the
 * creation's pending audit id and entry ('' for none), its deadline (writeDeadline). Creates both
 * fields or nothing (1 = created, 0 = exists, -1 = past its deadline: nothing written); records the
 * entry pending only when it created them.
 */
const CREATE_PARTNER_LUA = `
${lateWriteLua('ARGV[5]')}
if redis.call('HEXISTS', KEYS[1], 'doc') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'secrets', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return 1
`;

/**
 * KEYS: the partner hash, its pending audit entries (same slot). ARGV: the target's field, its record,
 * the creation's pending audit id and entry ('' for none). HSETNX: two concurrent creates of one id
 * both pass the owner check, only one wins, and only it records the entry pending (1 = created).
 */
const CREATE_FIELD_LUA = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return 1
`;

/**
 * KEYS[1] an account's registry, KEYS[2] its version (one slot: the account's); ARGV: the target's field,
 * when registered. A target new to the registry counts the version up (a process's cached read of the
 * registry is then stale: AccountOrders.shared).
 */
const REGISTER_ACCOUNT_LUA = `
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then redis.call('INCR', KEYS[2]) end
return 0
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    scRegisterAccount(registry: string, version: string, field: string, at: string): Result<number, Context>;
    scCreatePartner(key: string, pending: string, doc: string, secrets: string, auditId: string, auditEntry: string, deadline: number): Result<number, Context>;
    scCreateField(key: string, pending: string, field: string, value: string, auditId: string, auditEntry: string): Result<number, Context>;
    scCasField(key: string, pending: string, hold: string, ...args: (string | Buffer)[]): Result<number, Context>;
    scMarkDeleting(key: string, field: string, token: string, ttlMs: number): Result<string | null, Context>;
    scDeletingDone(key: string, pending: string, field: string, mark: string, untilMs: number, op: 'del' | 'unmark', auditId: string, auditEntry: string): Result<number, Context>;
    scDeleteField(key: string, pending: string, field: string, auditId: string, auditEntry: string): Result<number, Context>;
  }
}

/** Read-modify-write rounds before giving up (each lost round means another writer succeeded). */
const CAS_ATTEMPTS = 100;

/**
 * The shapes of a stored partner document, target record and secret list that the readers use (a check
 * of the fields: JSON of another shape, `null` or a number, threw TypeErrors for every partner listed).
 */
function isPartnerDoc(v: unknown): boolean {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['name'] === 'string' && typeof v['attributionWindowHours'] === 'number' && typeof v['reconcileCron'] === 'string' && typeof v['reconcileLookbackDays'] === 'number' && typeof v['createdAt'] === 'string';
}
function isTargetRecord(v: unknown): boolean {
  return isPlainObject(v) && typeof v['id'] === 'string' && typeof v['platform'] === 'string' && typeof v['name'] === 'string' && typeof v['credentialsSealed'] === 'string' && typeof v['enabled'] === 'boolean' && typeof v['createdAt'] === 'string';
}
function isSecretList(v: unknown): boolean {
  return Array.isArray(v) && v.every((s) => isPlainObject(s) && typeof s['sealed'] === 'string' && (s['expiresAt'] === null || typeof s['expiresAt'] === 'string'));
}

export class ConcurrentUpdateError extends Error {
  override readonly name = 'ConcurrentUpdateError';
}

export interface Partner {
  id: string;
  name: string;
  attributionWindowHours: number;
  reconcileCron: string;
  reconcileLookbackDays: number;
  createdAt: string;
}

export interface TargetRecord {
  id: string;
  partnerId: string;
  platform: Platform;
  name: string;
  baseUrl: string | undefined;
  commissionRateBps: number;
  enabled: boolean;
  pinDelayMs: number;
  /** Overrides the platform's documented per-account request window (an account with a raised limit). */
  rateLimit?: { requests: number; windowMs: number } | undefined;
  /** AES-256-GCM sealed JSON of the credentials; never returned by the API. */
  credentialsSealed: string;
  /**
   * Random, set when the target is created (absent on targets created before it existed): tells this
   * target from an earlier one of the same id that was deleted. Mirror records outlive a target's
   * delete; the ones an earlier incarnation left are not this one's (src/domain/mirror.ts ownMirror),
   * and a sync run's save of a mirror stamped with another (or none) is refused (ShowRepository's
   * target guard: a run of the deleted target still in flight). Never changed by a PATCH; never
   * returned by the API.
   */
  incarnation?: string | undefined;
  createdAt: string;
  updatedAt: string;
  /**
   * `<until ms>.<token>`: a DELETE (without ?force) is checking whether a show of the target is on the
   * platform; sync runs make no platform call meanwhile (ShowRepository.checkTarget, on Redis's clock).
   * Never returned by the API.
   */
  deleting?: string | undefined;
}

/**
 * How long a DELETE's "being deleted" mark holds sync runs back at most: longer than the DELETE's check
 * of the target's mirrors takes (a DELETE whose mark expired meanwhile starts over), short enough that
 * a mark a crashed DELETE left holds the target's syncs back only briefly.
 */
export const TARGET_DELETING_TTL_MS = 30_000;

/** The until ms of a "being deleted" mark (0 without one). */
export function deletingUntil(mark: string | undefined): number {
  if (mark === undefined) return 0;
  const until = Number.parseInt(mark, 10);
  return Number.isFinite(until) ? until : 0;
}

/**
 * Where a target's record is stored: a field of its partner's hash (PartnerRepository.targetField, and
 * ShowRepository.checkTarget, the one reader of the record for a sync run's checks).
 */
export function targetRecordField(keys: Keys, partnerId: string, targetId: string): { key: string; field: string } {
  return { key: keys.partner(partnerId), field: `t:${targetId}` };
}

/** A "being deleted" mark as written: its text in the record and when it expires (PartnerRepository.deletingDone). */
export interface DeletingMark {
  text: string;
  untilMs: number;
}

export interface WebhookSecretRecord {
  sealed: string;
  createdAt: string;
  /** null while current; set to now + grace when rotated out. */
  expiresAt: string | null;
}

export interface PartnerBundle {
  partner: Partner;
  targets: TargetRecord[];
  secrets: WebhookSecretRecord[];
}

export class PartnerExistsError extends Error {}

const BUNDLE_CACHE_MS = 1000;

export class PartnerRepository {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly box: SecretBox,
    /** Where list() reports a partner whose stored document does not read. */
    private readonly log?: Logger,
  ) {
    defineRedisScripts(redis, {
      scCasField: { numberOfKeys: 3, lua: CAS_FIELD_LUA },
      scCreatePartner: { numberOfKeys: 2, lua: CREATE_PARTNER_LUA },
      scCreateField: { numberOfKeys: 2, lua: CREATE_FIELD_LUA },
      scMarkDeleting: { numberOfKeys: 1, lua: MARK_DELETING_LUA },
      scDeletingDone: { numberOfKeys: 2, lua: DELETING_DONE_LUA },
      scDeleteField: { numberOfKeys: 2, lua: DELETE_FIELD_LUA },
      scRegisterAccount: { numberOfKeys: 2, lua: REGISTER_ACCOUNT_LUA },
    });
  }

  /**
   * Read-modify-write of one field of the partner hash, safe against concurrent writers in any
   * process: `change` gets the current value (null when absent) and returns the new one (undefined:
   * leave it; null: delete it); the write is a compare-and-set, retried from a fresh read when
   * another writer got in between.
   */
  private async updateField(
    partnerId: string,
    field: string,
    change: (current: string | null) => string | null | undefined,
    opts: { dropExpiredMark?: boolean; audit?: PendingAudit; fence?: GrantFence | undefined } = {},
  ): Promise<{ value: string | null; markDropped: boolean } | undefined> {
    const key = this.keys.partner(partnerId);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      // The bytes, passed back as read: a value that is not valid UTF-8 (a hand edit, a value cut
      // mid-character) decodes with U+FFFD, never equal to what Redis holds, and the compare-and-set
      // never matched: every change failed (ConcurrentUpdateError, a 500 on every PATCH) for good.
      const stored = await this.redis.hgetBuffer(key, field);
      const current = stored === null ? null : stored.toString('utf8');
      const next = change(current);
      if (next === undefined) return undefined;
      const { dropExpiredMark = false, audit, fence } = opts;
      const ok = await this.redis.scCasField(key, this.keys.auditPending({ partnerId }), fence?.targetHold ?? key, field, stored === null ? '0' : '1', stored ?? '', next ?? '', next === null ? 'del' : 'set', dropExpiredMark ? '1' : '0', audit?.id ?? '', audit?.entry ?? '', fence?.nonce ?? '');
      if (ok === -1) throw new GrantHoldLostError(`partner ${partnerId}: ${field}: the PATCH's grant hold was taken by another`);
      if (ok === 1 || ok === 2) {
        this.invalidate(partnerId);
        return { value: next, markDropped: ok === 2 };
      }
    }
    throw new ConcurrentUpdateError(`partner ${partnerId}: ${field} changed ${CAS_ATTEMPTS} times while being updated`);
  }

  /**
   * The partner doc and its first secret in one step (a partner without secrets would refuse every
   * event, and a retried create would only get 409). The partner index lives in another slot: it is
   * written first (`list` skips an id without a partner), so that the creating script is the last
   * write: a create whose answer was a 503 (Redis frozen, the command timed out in the client) must
   * not be applied later, when Redis goes on, or the retry gets 409 and the secret, shown only in the
   * 201, is lost. The script has a deadline (writeDeadline) and is a no-op past it (LateWriteError, a
   * 503). A create that finds the partner there writes the index too (repairing older data).
   */
  /**
   * `audit`: the creation's entry, recorded pending by the creating script (`AuditRepository.settle`):
   * the retry of a create whose audit write failed gets PartnerExistsError and would write none.
   */
  async create(partner: Partner, webhookSecret: string, audit?: PendingAudit): Promise<void> {
    const key = this.keys.partner(partner.id);
    const secrets: WebhookSecretRecord[] = [{ sealed: this.box.encrypt(webhookSecret), createdAt: partner.createdAt, expiresAt: null }];
    await this.redis.sadd(this.keys.partnerIndex(), partner.id);
    const deadline = await writeDeadline(this.redis, key);
    const ok = await this.redis.scCreatePartner(key, this.keys.auditPending({ partnerId: partner.id }), JSON.stringify(partner), JSON.stringify(secrets), audit?.id ?? '', audit?.entry ?? '', deadline);
    if (ok === -1) throw new LateWriteError(`partner ${partner.id} create`);
    if (ok === 0) throw new PartnerExistsError(partner.id);
  }

  /**
   * The partner with its targets and secrets. A hash that does not read (a key of another type; its
   * document, a target or the secrets not JSON or not of their shape) is a StoredRecordCorruptError.
   */
  async bundle(partnerId: string): Promise<PartnerBundle | null> {
    const key = this.keys.partner(partnerId);
    const h = await readStored('partner', partnerId, key, () => this.redis.hgetall(key));
    if (!h['doc']) return null;
    const targets: TargetRecord[] = [];
    for (const [f, v] of Object.entries(h)) if (f.startsWith('t:')) targets.push(parseStored<TargetRecord>('target', f.slice(2), key, v, isTargetRecord));
    targets.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    return { partner: this.parseDoc(partnerId, h['doc']), targets, secrets: parseStored<WebhookSecretRecord[]>('partner', partnerId, key, h['secrets'] ?? '[]', isSecretList) };
  }

  private parseDoc(partnerId: string, raw: string): Partner {
    return parseStored<Partner>('partner', partnerId, this.keys.partner(partnerId), raw, isPartnerDoc);
  }

  /**
   * The ingest hot path's read: a bundle at most BUNDLE_CACHE_MS old. This repository's own writes
   * (secret rotation, target changes) drop the entry at once; a change made through another API
   * process is seen within BUNDLE_CACHE_MS (e.g. an old secret after a grace-0 rotation).
   */
  private readonly bundles = new Map<string, { bundle: PartnerBundle; at: number }>();
  async bundleCached(partnerId: string): Promise<PartnerBundle | null> {
    const hit = this.bundles.get(partnerId);
    const now = Date.now();
    if (hit && now - hit.at < BUNDLE_CACHE_MS) return hit.bundle;
    const bundle = await this.bundle(partnerId);
    if (bundle) {
      if (this.bundles.size > 10_000) this.bundles.clear();
      this.bundles.set(partnerId, { bundle, at: now });
    } else {
      this.bundles.delete(partnerId);
    }
    return bundle;
  }
  private invalidate(partnerId: string): void {
    this.bundles.delete(partnerId);
  }

  /** The partner's document; null when none. One that does not read (see bundle) is a StoredRecordCorruptError. */
  async get(partnerId: string): Promise<Partner | null> {
    const key = this.keys.partner(partnerId);
    const doc = await readStored('partner', partnerId, key, () => this.redis.hget(key, 'doc'));
    return doc ? this.parseDoc(partnerId, doc) : null;
  }

  /** Changes fields of the partner document (compare-and-set, safe against concurrent writers). Null when no such partner. */
  async update(partnerId: string, patch: Partial<Omit<Partner, 'id' | 'createdAt'>>): Promise<{ before: Partner; after: Partner } | null> {
    let before: Partner | undefined;
    let after: Partner | undefined;
    await this.updateField(partnerId, 'doc', (raw) => {
      before = undefined;
      if (raw === null) return undefined;
      before = this.parseDoc(partnerId, raw);
      after = { ...before, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)), id: before.id, createdAt: before.createdAt };
      return JSON.stringify(after);
    });
    return before && after ? { before, after } : null;
  }

  async list(): Promise<Partner[]> {
    const ids = (await this.redis.smembers(this.keys.partnerIndex())).sort();
    // A partner whose document does not read (an operator's hand edit, a half-migrated key: invalid
    // JSON, a wrong type) is logged with its id and left out: before, its error failed every caller
    // (GET /v1/partners, /metrics, the reconcile-schedules tick) for all the other partners too.
    const docs = await Promise.all(
      ids.map((id) =>
        this.get(id).catch((err: unknown) => {
          if (!isUnreadableRecord(err)) throw err;
          this.log?.error({ err, partnerId: id }, 'partner left out of the list: its stored document does not read');
          return null;
        }),
      ),
    );
    return docs.filter((p): p is Partner => p !== null);
  }

  /**
   * Plain-text secrets that verify now (current + rotated ones still in their grace period), and how
   * many of those no configured key opens (SecretUnreadableError: SECRETS_KEY changed without
   * rotation). The ingest verifies with the ones that open; it answers 503 only when none of them
   * verifies and some could not be tried.
   */
  activeSecrets(bundle: PartnerBundle, nowMs = Date.now()): { secrets: string[]; unreadable: number } {
    const secrets: string[] = [];
    let unreadable = 0;
    for (const s of bundle.secrets) {
      if (s.expiresAt !== null && Date.parse(s.expiresAt) <= nowMs) continue;
      const plain = tryOpen(() => this.open(s.sealed));
      if (plain === undefined) unreadable += 1;
      else secrets.push(plain);
    }
    return { secrets, unreadable };
  }

  /**
   * Decrypted webhook secrets by their sealed form: the event hot path then does no AES. Which
   * secrets are valid is still decided from the stored record on every request (rotation and grace
   * take effect at once); a sealed value never changes meaning, so the memo cannot go stale.
   */
  private readonly opened = new Map<string, string>();
  private open(sealed: string): string {
    let plain = this.opened.get(sealed);
    if (plain === undefined) {
      plain = this.box.decrypt(sealed);
      if (this.opened.size > 10_000) this.opened.clear();
      this.opened.set(sealed, plain);
    }
    return plain;
  }

  /**
   * The current secret becomes a previous one (valid for `graceMs`), expired ones are dropped and
   * `newSecret` becomes current — atomically: concurrent rotations (any API process) each keep
   * their secret instead of overwriting each other's.
   */
  /**
   * `audit`: the rotation's entry, recorded pending with it (one script; `AuditRepository.settle`): a
   * rotation whose audit write failed is not redone by its retry, which makes a rotation of its own.
   */
  async rotateSecret(partnerId: string, newSecret: string, graceMs: number, audit?: PendingAudit): Promise<void> {
    const sealed = this.box.encrypt(newSecret);
    await this.updateField(partnerId, 'secrets', (raw) => {
      const now = Date.now();
      const current = JSON.parse(raw ?? '[]') as WebhookSecretRecord[];
      const kept = current
        .map((s) => (s.expiresAt === null ? { ...s, expiresAt: new Date(now + graceMs).toISOString() } : s))
        .filter((s) => s.expiresAt !== null && Date.parse(s.expiresAt) > now);
      kept.push({ sealed, createdAt: new Date(now).toISOString(), expiresAt: null });
      return JSON.stringify(kept);
    }, { audit });
  }

  /** Claims a globally unique target id, then stores the target under its partner. */
  /** `audit`: the creation's entry, recorded pending by the creating script (as `create`). */
  async createTarget(t: TargetRecord, audit?: PendingAudit): Promise<boolean> {
    const claimed = await this.redis.set(this.keys.targetOwner(t.id), t.partnerId, 'NX');
    if (claimed === null) {
      const owner = await this.redis.get(this.keys.targetOwner(t.id));
      if (owner !== t.partnerId) return false;
    }
    // HSETNX: two concurrent creates of the same id both pass the owner check; only one may win.
    const { key, field } = this.targetField(t.partnerId, t.id);
    const created = await this.redis.scCreateField(key, this.keys.auditPending({ partnerId: t.partnerId }), field, JSON.stringify(t), audit?.id ?? '', audit?.entry ?? '');
    this.invalidate(t.partnerId);
    return created === 1;
  }

  /**
   * Read-modify-write of a target (PATCH), atomic against concurrent PATCHes and DELETE: `change`
   * gets the stored target and returns the new one. Null when the target does not exist (also
   * when it was deleted meanwhile: a PATCH never brings a deleted target back). `fence`: a PATCH
   * of credentials writes only while its grant hold is its own, in the same script
   * (GrantHoldLostError, nothing written: RedisTokenStore.lockGrant).
   */
  async updateTarget(partnerId: string, targetId: string, change: (t: TargetRecord) => TargetRecord, fence?: GrantFence): Promise<{ before: TargetRecord; after: TargetRecord } | null> {
    let before: TargetRecord | undefined;
    let after: TargetRecord | undefined;
    // A "being deleted" mark that expired (a DELETE that crashed) goes with the next change; a live
    // one stays (its DELETE is still checking). Expired by Redis's clock: the write's script decides
    // (CAS_FIELD_LUA) and says so.
    const written = await this.updateField(
      partnerId,
      `t:${targetId}`,
      (raw) => {
        before = undefined;
        if (raw === null) return undefined;
        before = JSON.parse(raw) as TargetRecord;
        after = change(before);
        return JSON.stringify(after);
      },
      { dropExpiredMark: true, fence },
    );
    if (written?.markDropped && after) {
      const { deleting: _expired, ...rest } = after;
      after = rest;
    }
    return before && after ? { before, after } : null;
  }

  async getTarget(partnerId: string, targetId: string): Promise<TargetRecord | null> {
    const { key, field } = this.targetField(partnerId, targetId);
    return this.targetOf(await this.redis.hget(key, field), partnerId, targetId);
  }

  /** Where a target record is stored (a field of the partner's hash), for a caller that reads it inside its own Lua step. */
  targetField(partnerId: string, targetId: string): { key: string; field: string } {
    return targetRecordField(this.keys, partnerId, targetId);
  }

  /** A target record as stored (getTarget's parse): one that does not read is a StoredRecordCorruptError, never a SyntaxError quoting it. */
  targetOf(raw: string | null | undefined, partnerId: string, targetId: string): TargetRecord | null {
    return raw ? parseStored<TargetRecord>('target', targetId, this.targetField(partnerId, targetId).key, raw, isTargetRecord) : null;
  }

  /**
   * Deletes the target; `audit` (the delete's entry) is recorded pending by the same script, only if
   * this call deleted it (`AuditRepository.settle` writes it): a retry of a delete whose audit write
   * failed finds the target gone, and would write no entry of its own.
   */
  async deleteTarget(partnerId: string, targetId: string, audit?: PendingAudit): Promise<boolean> {
    const { key, field } = this.targetField(partnerId, targetId);
    const n = await this.redis.scDeleteField(key, this.keys.auditPending({ partnerId }), field, audit?.id ?? '', audit?.entry ?? '');
    this.invalidate(partnerId);
    if (n > 0) await this.redis.del(this.keys.targetOwner(targetId), this.keys.targetToken(targetId));
    return n > 0;
  }

  /**
   * Marks the target "being deleted" for `ttlMs` (Redis's clock), replacing any mark already there.
   * Null when the target does not exist.
   */
  async markDeleting(partnerId: string, targetId: string, token: string, ttlMs: number): Promise<DeletingMark | null> {
    const { key, field } = this.targetField(partnerId, targetId);
    const text = await this.redis.scMarkDeleting(key, field, token, ttlMs);
    this.invalidate(partnerId);
    if (!text) return null;
    return { text, untilMs: deletingUntil(/"deleting":"([^"]*)"/.exec(text)?.[1]) };
  }

  /**
   * Ends a DELETE's mark: `del` deletes the target (as deleteTarget), `unmark` takes the mark off. Only
   * while that mark is still on the record and (for `del`) not expired: 'gone' when the target no longer
   * exists, 'lost' when the mark is not there any more (replaced by another DELETE's, expired): nothing done.
   * `audit`: the delete's entry, recorded pending with the delete (as deleteTarget).
   */
  async deletingDone(partnerId: string, targetId: string, mark: DeletingMark, op: 'del' | 'unmark', audit?: PendingAudit): Promise<'done' | 'gone' | 'lost'> {
    const { key, field } = this.targetField(partnerId, targetId);
    const r = await this.redis.scDeletingDone(key, this.keys.auditPending({ partnerId }), field, mark.text, mark.untilMs, op, audit?.id ?? '', audit?.entry ?? '');
    this.invalidate(partnerId);
    if (r === 1 && op === 'del') await this.redis.del(this.keys.targetOwner(targetId), this.keys.targetToken(targetId));
    return r === 1 ? 'done' : r === 0 ? 'gone' : 'lost';
  }

  /**
   * Adds the target to its platform account's reconciliation registry (`accountId`: target.registry.ts
   * reportAccountId), so that another target's run on the account sees which platform orders are its.
   * Idempotent. An entry stays when the target is deleted or moved to another account: the orders of
   * this account it stored stay in its ledger, and no other target may store them again.
   */
  async registerReportAccount(t: Pick<TargetRecord, 'id' | 'partnerId'>, accountId: string): Promise<void> {
    await this.redis.scRegisterAccount(this.keys.reconAccountTargets(accountId), this.keys.reconAccountVersion(accountId), JSON.stringify([t.partnerId, t.id]), new Date().toISOString());
  }

  async targetOwner(targetId: string): Promise<string | null> {
    return this.redis.get(this.keys.targetOwner(targetId));
  }

  sealCredentials(credentials: Record<string, string>): string {
    return this.box.encrypt(JSON.stringify(credentials));
  }
  openCredentials(t: Pick<TargetRecord, 'credentialsSealed'>): Record<string, string> {
    return JSON.parse(this.box.decrypt(t.credentialsSealed)) as Record<string, string>;
  }

  /** openCredentials, or undefined when no key opens them (SECRETS_KEY_PREVIOUS removed too early). */
  credentialsIfOpen(t: Pick<TargetRecord, 'credentialsSealed'>): Record<string, string> | undefined {
    try {
      return this.openCredentials(t);
    } catch {
      return undefined;
    }
  }
}
