/**
 * sync(show, target): compare the show's desired state with the mirror's observed state and perform
 * the next missing side effects through the target's adapter. Every non-idempotent call runs inside
 * an intent (Once), the mirror is saved after every step (a pin whose step has a recovery lookup: by
 * the run's last save), and the desired-state version is checked
 * again at the end so that a change that landed while we ran is not lost.
 */
import type { Logger } from 'pino';
import type { DesiredShow } from '../domain/desired-state.js';
import { pathId } from '../lib/ids.js';
import { cleanupPending, ingestUnreadable, isTerminal, newMirror, ownMirror, refusedRetryDue, refusedRetryMs, reportedPins, unreadableMark, type MirrorDoc, type MirrorPin } from '../domain/mirror.js';
import type { LinkService } from '../links/link.service.js';
import type { MirrorViewContext } from '../outbound/mirror-updated.js';
import { IntentCorruptError, LeaseLostError, newLeaseToken, stillOwned, type IntentRepository, type MirrorLease, type ScopedOptions } from '../store/intent.repository.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import type { RedisClient } from '../store/redis.js';
import type { Keys } from '../store/keys.js';
import { corruptRecord, isWrongType, StoredRecordCorruptError } from '../store/stored-record.js';
import { MirrorConflictError, TargetDeletingError, TargetGoneError, TargetReplacedError, type ShowRepository } from '../store/show.repository.js';
import { mirrorActivityEntry, type ActivityEntry, type ShowActivityRepository } from '../store/show-activity.repository.js';
import { RedisRateLimiter } from '../store/rate-limiter.js';
import { withRunTokens } from '../lib/request-context.js';
import { RedisTokenStore, workerTokenStore } from '../store/token.repository.js';
import { effectiveTimeoutMs } from '../config/config.js';
import { SecretUnreadableError, sha256, type SecretBox } from '../lib/crypto.js';
import type { DestinationGuard } from '../lib/destination-guard.js';
import { capabilitiesOf, pinNamesProduct, type OpContext, type PinSpec, type Platform, type PlatformSettings, type ShowSpec, type TargetAdapter, type WithdrawOutcome } from '../targets/target.adapter.js';
import type { Product } from '../domain/events.js';
import type { RateLimitedError } from '../targets/target.errors.js';
import { AuthExpiredError, isTargetError, NotMadeError, PinRefusedError, RetryableError, ShowOverError } from '../targets/target.errors.js';
import { adapterFactory, limiterId, PLATFORM_LIMITS } from '../targets/target.registry.js';
import { backoffMs, withJitter } from './backoff.js';
import type { SyncJob } from '../queues/queues.js';
import { ExternalShowIndex } from '../store/external-show.index.js';
import { openAdapter } from '../targets/instrumented.js';
import { platformWait } from '../targets/target.failure.js';
import { intentRecordsUnreadable, rateLimitWaits, rateLimitWaitSeconds } from '../lib/metrics.js';

export type SyncOutcome =
  /** `recorded`: the run's own timeline entry was written with its last save (the worker does not write it again). */
  | { kind: 'done'; state: MirrorDoc['state'] | 'none'; recorded?: boolean }
  | { kind: 'delay'; delayMs: number; reason: string };

export interface SyncDeps {
  redis: RedisClient;
  keys: Keys;
  box: SecretBox;
  shows: ShowRepository;
  partners: PartnerRepository;
  intents: IntentRepository;
  links: LinkService;
  log: Logger;
  timeoutMs: number;
  /** A platform's own, shorter timeout (PLATFORM_TIMEOUTS_MS): its calls take it instead of timeoutMs. */
  platformTimeoutsMs?: Partial<Record<Platform, number>>;
  /** Which platform API versions the adapters call (config). */
  platformSettings: PlatformSettings;
  maxRetries: number;
  /** The retry back-off's first wait (SYNC_BACKOFF_BASE_MS; backoffMs's own default when unset). */
  backoffBaseMs?: number;
  /**
   * The first wait before a pin refused for a reason the seller can mend on the platform is asked again
   * (PIN_REFUSED_RETRY_BASE_MS; doubled at each refusal, capped at 5 min: refusedRetryMs). 30 s when unset.
   */
  refusedRetryBaseMs?: number;
  /** Connect-time SSRF guard for every platform connection (ALLOW_PRIVATE_DESTINATIONS). */
  destinations: DestinationGuard;
  /** How long a run owns a mirror without renewing (the BullMQ job lock duration). */
  leaseMs: number;
  /**
   * Called when a sync (re-)asserted the external-show index entry of a mirror and orders wait for
   * it (attribution: AttributionService.attributeWaiting).
   */
  onRemoteIndexed?: (partnerId: string, targetId: string, externalId: string) => Promise<void>;
  /**
   * Video gate (issue 10 item 3): before a mirror with an ingest goes live, why it must wait for video
   * (null: go). The relay answers "not sending yet" while the show's stream is relayed through us.
   */
  videoGate?: (partnerId: string, showId: string, mirror: MirrorDoc, desired: DesiredShow) => Promise<string | null>;
  /** Called after a mirror changed state or pins (outbound `mirror.updated`). */
  /**
   * `targetStillThere` (ShowRepository.checkTarget) rejects with TargetGoneError when the mirror's
   * target was deleted since the run's last save (TargetReplacedError when it was created again: the
   * run reads the new one), and with TargetDeletingError while a DELETE's mark is
   * on it (the report is held: the run comes back and tells then, unless the target is gone by then);
   * the hook calls it only when it is about to tell someone (a Redis read otherwise saved).
   */
  onMirrorChanged?: (partnerId: string, showId: string, mirror: MirrorDoc, view: MirrorViewContext, targetStillThere: () => Promise<void>) => Promise<void>;
  /** The show's timeline (ops console): each reported mirror change is recorded there after it was told. */
  activity?: Pick<ShowActivityRepository, 'append'>;
}

const MAX_ROUNDS = 5;
/**
 * How many later runs ask a withdraw's clean-up again (RemoteShow.data `cleanup`) before it is given
 * up (best effort: a stream left on the channel): the sweep starts them, one per sweep at most.
 */
export const CLEANUP_TRIES = 5;
/** How soon a run that met a target being deleted looks again (at most: sooner when the mark expires first). */
const DELETING_WAIT_MS = 1_000;
/** How soon a mirror waiting for its relayed video looks again (the relay also asks for a sync once it sends). */
const VIDEO_WAIT_MS = 2_000;

/** Who is running a sync: the BullMQ job's lock token (a takeover after a stall has a new one). */
export interface SyncRun {
  token?: string;
  /**
   * Aborted when the job's lock could not be renewed: the run gives up its lease at once. An
   * AbortSignal, or the worker's lighter RunSignal (src/mirror/sync.worker.ts).
   */
  signal?: LockSignal;
  /**
   * When the run began (epoch ms). Given, and with a timeline (`activity`), a run that ends with its
   * last save records its own timeline entry (`sync run: <state> in <ms>`) in that save's Lua step
   * instead of one more write after it; the outcome says so (`recorded`).
   */
  startedAt?: number;
}

/** The part of an AbortSignal a run listens on. */
export interface LockSignal {
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** What a run read together with its lease (round 0 of syncOwned). */
/**
 * A run's first reads. A record that does not read is its StoredRecordCorruptError, thrown by the run
 * once it holds the lease (so released after it) — a show's, which no re-run mends, fails the mirror.
 */
interface FirstRead {
  target: TargetRecord | null | StoredRecordCorruptError;
  desired: DesiredShow | null | StoredRecordCorruptError;
  mirror: MirrorDoc | null | StoredRecordCorruptError;
}

/** `read()`, or the StoredRecordCorruptError it threw (any other error is thrown). */
const corruptOnly = (err: unknown): StoredRecordCorruptError => {
  if (err instanceof StoredRecordCorruptError) return err;
  throw err;
};

function unreadableAs<T>(read: () => T): T | StoredRecordCorruptError {
  try {
    return read();
  } catch (err) {
    if (err instanceof StoredRecordCorruptError) return err;
    throw err;
  }
}

/** A sync job as seen by the run that owns its mirror. */
type OwnedJob = SyncJob & { lease: MirrorLease };

function specOf(d: DesiredShow): ShowSpec {
  return { title: d.title, description: d.description, scheduledAt: d.scheduledAt };
}

/**
 * Whether the platform already has `b`. Start times compare as instants, not as text: a show stored
 * before snapshots were normalised to UTC kept its offset (`…T20:00:00+02:00`), and its next snapshot
 * (`…T18:00:00Z`, the same moment) must not update every platform show of it.
 */
export function sameSpec(a: MirrorDoc['applied'], b: ShowSpec): boolean {
  return !!a && a.title === b.title && (a.description ?? '') === (b.description ?? '') && sameInstant(a.scheduledAt, b.scheduledAt);
}

function sameInstant(a: string, b: string): boolean {
  if (a === b) return true;
  const ta = Date.parse(a);
  return !Number.isNaN(ta) && ta === Date.parse(b);
}

/**
 * The part of `lastError` that makes a mirror.updated (contract §8): what the partner can act on, not
 * each retry's wording. On a `failed` or `action_required` mirror the text is the reason or the
 * instruction (it changes only with the problem); on any other state an error is a transient one the
 * sync retries by itself, and only its appearing or clearing is a change: its text ("retrying in 4 s:
 * youtube: 503 …", "waiting 61 s: …") differs on every attempt, and a platform failing for twenty
 * minutes sent the partner 147 messages for one show (review 2026-12-01). The message carries the
 * text as it was when the error appeared; GET …/shows/{showId} has the current one.
 * For a mirror without an error, or with a failed/action_required one, the fingerprint is the one
 * stored before this rule, so an upgrade re-reports only mirrors retrying at that moment.
 */
export function reportedError(mirror: Pick<MirrorDoc, 'state' | 'lastError'>): string | null {
  if (mirror.lastError === null) return null;
  if (mirror.state === 'failed' || mirror.state === 'action_required') return mirror.lastError;
  return 'transient';
}

function short(s: string): string {
  return sha256(s, 'base64url').slice(0, 10);
}

/** A run that met a target being deleted comes back once the mark expired, or sooner (DELETING_WAIT_MS). */
function deletingWait(err: TargetDeletingError): SyncOutcome {
  const left = err.untilMs > 0 ? err.untilMs - Date.now() : DELETING_WAIT_MS;
  return { kind: 'delay', delayMs: Math.max(50, Math.min(DELETING_WAIT_MS, left)), reason: 'target being deleted' };
}

/** An error that is not the platform's as a mirror's lastError shows it: its name and its message's first line, at most 200 characters. */
export function internalErrorText(err: unknown): string {
  const name = err instanceof Error ? err.name : 'Error';
  const message = (err instanceof Error ? err.message : String(err)).split('\n', 1)[0]!.trim();
  const text = message ? `${name}: ${message}` : name;
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

/** A mirror's lastError when a secret its sync needs cannot be opened (docs/operations.md, "Secrets and rotation"). */
export const SECRET_UNREADABLE_MIRROR_ERROR =
  "the target's stored credentials (or a sealed platform answer of this mirror) cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS: " +
  'restore the key that sealed them and retry the mirror (POST …/resync), or PATCH the target with its credentials';

/** A mirror's lastError when the platform stream key stored with it cannot be opened (docs/operations.md, "Secrets and rotation"). */
export const STREAM_KEY_UNREADABLE_MIRROR_ERROR =
  "this mirror's stored platform stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS (it is kept as it is): " +
  'restore the key that sealed it and retry the mirror (POST …/resync); if that key is lost, link the mirror to its platform show again (PUT …/mirrors/{targetId}), which reads a new ingest from the platform';

/** The stream key of the mirror's platform ingest (ShowRepository.parse) no configured key opens. */
class StreamKeyUnreadableError extends SecretUnreadableError {}

export class SyncService {
  constructor(private readonly deps: SyncDeps) {}

  /**
   * The adapter of a target (sync jobs, platform webhooks, reconciliation). Adapters hold no state
   * between calls (tokens, limits and intents live in Redis), so one per target is reused until the
   * target changes: no client construction or credential decryption per call.
   */
  private readonly adapters = new Map<string, { version: string; adapter: TargetAdapter | null; limiter?: RedisRateLimiter }>();
  adapterFor(target: TargetRecord): TargetAdapter | null {
    const version = `${target.updatedAt}\u0000${target.credentialsSealed}\u0000${target.baseUrl ?? ''}`;
    const hit = this.adapters.get(target.id);
    if (hit && hit.version === version) return hit.adapter;
    const built = this.buildAdapter(target, this.deps.log.child({ targetId: target.id, platform: target.platform }));
    if (this.adapters.size > 10_000) this.adapters.clear();
    this.adapters.set(target.id, { version, ...built });
    return built.adapter;
  }

  /**
   * The target record a run read, parsed once per stored text: every run of every show on a target
   * reads the same record (its sealed credentials make it the longest text a pin sync parses), so the
   * last parse is reused while the text is the same (a string comparison). Frozen: runs share it.
   */
  private readonly targets = new Map<string, { raw: string; record: TargetRecord }>();
  private targetRead(partnerId: string, targetId: string, raw: string | null | undefined): TargetRecord | null {
    if (!raw) return null;
    const hit = this.targets.get(targetId);
    if (hit?.raw === raw) return hit.record;
    const record = this.deps.partners.targetOf(raw, partnerId, targetId);
    if (!record) return null;
    Object.freeze(record);
    if (this.targets.size >= 10_000) this.targets.clear();
    this.targets.set(targetId, { raw, record });
    return record;
  }

  /**
   * A Cluster's read of the target record (its own command: the partner's slot), shared by the runs
   * that ask for the same record before the read has left the process: the runs BullMQ starts from one
   * socket read of its replies start in one microtask drain, and this turn's commands leave together
   * at its end (batchWritesPerTick, whose uncork was scheduled at this turn's first write, before the
   * entry's removal). So every run sharing it asked before Redis could have read it: the same answer
   * each would have had from a read of its own sent in that write.
   */
  private readonly targetReads = new Map<string, Promise<string | null>>();
  private targetRaw(partnerId: string, targetId: string): Promise<string | null> {
    const { key, field } = this.deps.partners.targetField(partnerId, targetId);
    const k = `${key}\n${field}`;
    let read = this.targetReads.get(k);
    if (read === undefined) {
      read = this.deps.redis.hget(key, field);
      this.targetReads.set(k, read);
      process.nextTick(() => this.targetReads.delete(k));
    }
    return read;
  }

  /** Drops the cached adapter of a target (and its in-memory token memo): the next call builds a fresh one. */
  forgetAdapter(targetId: string): void {
    this.adapters.delete(targetId);
  }

  private buildAdapter(target: TargetRecord, log: Logger): { adapter: TargetAdapter | null; limiter?: RedisRateLimiter } {
    const factory = adapterFactory(target.platform);
    if (!factory) return { adapter: null };
    const { redis, keys, box } = this.deps;
    const credentials = this.deps.partners.openCredentials(target);
    // Targets on the same platform account share its limits (and its blocks after a 429 or quota).
    const limiter = new RedisRateLimiter(redis, keys, limiterId(target.platform, credentials, target.id), target.rateLimit ?? PLATFORM_LIMITS[target.platform]);
    // Its errors carry no secret of the target (openAdapter): their text becomes lastError, webhooks and logs.
    const adapter = openAdapter(factory, {
      target: { id: target.id, partnerId: target.partnerId, platform: target.platform, baseUrl: target.baseUrl, credentials },
      // A pending record a crashed PATCH left is settled by the target record (RedisTokenStore.settleLapsed).
      tokens: workerTokenStore(redis, keys, box, this.deps.partners, target),
      limiter,
      log,
      timeoutMs: effectiveTimeoutMs(target.platform, this.deps.timeoutMs, this.deps.platformTimeoutsMs),
      settings: this.deps.platformSettings,
      destinations: this.deps.destinations,
    });
    return { adapter, limiter };
  }

  /**
   * One run of a sync job. The run first takes the mirror's lease (src/store/intent.repository.ts):
   * while another run holds it (a stalled run whose lock has not lapsed yet, or a concurrent one)
   * this run waits as a delayed job; once the lease is lost every write of this run is refused and
   * it stops.
   *
   * For the targets' window limiters the run is one run: the tokens it takes are counted, so that a
   * refusal after some were taken waits until as many more are free (src/store/rate-limiter.ts).
   */
  sync(plain: SyncJob, run: SyncRun = {}): Promise<SyncOutcome> {
    return withRunTokens(() => this.runOnce(plain, run));
  }

  private async runOnce(plain: SyncJob, run: SyncRun): Promise<SyncOutcome> {
    const { intents, leaseMs } = this.deps;
    const { partnerId, showId, targetId } = plain;
    // The lease and the run's first reads (desired state, mirror) in one Lua step. The target (the
    // partner's slot): on a single Redis in that step too (one command), on a Cluster alongside (one
    // round trip either way).
    const token = run.token ?? newLeaseToken();
    const { partners } = this.deps;
    let got: Awaited<ReturnType<IntentRepository['acquireAndRead']>>;
    let rawTarget: string | null | undefined;
    /** The Cluster's target read's error: kept (not thrown by Promise.all) so a lease taken beside it is not left held. */
    let targetErr: unknown;
    if (this.deps.redis.isCluster) {
      [got, rawTarget] = await Promise.all([
        intents.acquireAndRead(partnerId, showId, targetId, token, leaseMs),
        this.targetRaw(partnerId, targetId).catch((err: unknown) => {
          targetErr = err;
          return null;
        }),
      ]);
      // A partner hash of another type is the run's StoredRecordCorruptError below, as on a single Redis
      // (its step reads it as absent); any other error is thrown once the lease it may have taken is released.
      if (targetErr !== undefined && !isWrongType(targetErr)) {
        if ('lease' in got) await intents.release(got.lease).catch(() => undefined);
        throw targetErr;
      }
    } else {
      got = await intents.acquireAndRead(partnerId, showId, targetId, token, leaseMs, partners.targetField(partnerId, targetId));
      rawTarget = 'lease' in got ? got.target : null;
    }
    if (!('lease' in got)) return { kind: 'delay', delayMs: got.heldForMs + 50, reason: 'mirror owned by another run' };
    const { lease } = got;
    // Every save of this run checks that the target still exists: a target deleted during the run
    // stops it (TargetGoneError) before it writes, calls the platform or reports anything further.
    lease.target = partners.targetField(partnerId, targetId);
    const { keys } = this.deps;
    // Keys of another type read as absent in the step, so the lease is this run's (and released below).
    const wrong = (what: string): boolean => got.wrongType.includes(what);
    const rawMirror = got.mirror;
    let first: FirstRead;
    // The lease is this run's from here: a record that does not read is kept as its error (thrown by
    // the run, inside the try below that releases the lease); any other error here releases it too
    // (a target that was not JSON left it held for its whole PTTL: the next run was "owned by another run").
    try {
      first = {
        target: wrong('target') || targetErr !== undefined ? corruptRecord('partner', partnerId, keys.partner(partnerId), 'a Redis key of another type') : unreadableAs(() => this.targetRead(partnerId, targetId, rawTarget)),
        desired: wrong('desired') ? corruptRecord('show', showId, keys.desired(partnerId, showId), 'a Redis key of another type') : unreadableAs(() => this.deps.shows.desiredFromFlat(showId, got.desired, partnerId)),
        mirror: wrong('mirror') ? corruptRecord('mirror', targetId, keys.mirror(partnerId, showId, targetId), 'a Redis key of another type') : rawMirror ? unreadableAs(() => this.deps.shows.parse(rawMirror, plain)) : null,
      };
    } catch (err) {
      await intents.release(lease).catch(() => undefined);
      throw err;
    }
    // Renewed on this process's event loop, like BullMQ's job lock: a stall lets both lapse. A renewal
    // only extends a lease that is still this run's (compare-and-pexpire). One that finds it gone or
    // another run's marks it lost: the timer stops for good and every later write of this run is
    // refused (assertHeld: LeaseLostError) before it could take the lease back. A renewal that fails
    // (Redis trouble) decides nothing: the run's writes are fenced in Lua (holder check), so the next
    // one finds out whether another run took over, and a result the platform gave is not thrown away
    // on a guess (its step would be left "started": a settle wait and a lookup, or a second call
    // where the step has no lookup).
    let stopped = false;
    const stopRenewing = (): void => {
      stopped = true;
      clearInterval(renewal);
    };
    const renewal = setInterval(() => {
      // (Lost or given up: the timer was stopped then. Released by the run's last save: stop now.)
      if (lease.released) return stopRenewing();
      intents.renew(lease).then(
        (ok) => {
          // Once the run is over (or gave the lease up) there is nothing to decide any more.
          if (!stopped && !ok) {
            lease.lost = true;
            stopRenewing();
          }
        },
        () => undefined, // see above: the next fenced write decides
      );
    }, Math.max(100, Math.floor(leaseMs / 3)));
    renewal.unref();
    const giveUp = (): void => {
      lease.revoked = true; // no write of this run may take the lease back after this
      stopRenewing();
      intents.release(lease).catch(() => undefined);
    };
    run.signal?.addEventListener('abort', giveUp, { once: true });
    try {
      return await this.syncOwned({ ...plain, lease }, first, run.startedAt);
    } catch (err) {
      if (err instanceof TargetDeletingError) {
        // A DELETE is checking whether a show of the target is on the platform: no platform call
        // until it is over. Deleted then, the next run finds the target gone; refused (a show of it
        // is there), the next run goes on. A mark a crashed DELETE left expires (TARGET_DELETING_TTL_MS).
        this.deps.log.info({ partnerId, showId, targetId }, 'target being deleted; the run waits');
        return deletingWait(err);
      }
      if (err instanceof TargetGoneError) {
        this.deps.log.info({ partnerId, showId, targetId }, 'target deleted during the sync; the run stops');
        return { kind: 'done', state: 'none' };
      }
      if (!(err instanceof LeaseLostError)) {
        await this.recordInternalError(plain, lease, first.target instanceof StoredRecordCorruptError ? null : first.target, err);
        throw err; // a bug or Redis: BullMQ retries the job (and the sweep, once its attempts are spent)
      }
      lease.lost = true; // a fenced write found another holder: nothing of this run touches the lease again
      this.deps.log.warn({ partnerId, showId, targetId, err: { message: err.message } }, 'sync run lost its mirror to another run; stopping');
      return { kind: 'delay', delayMs: Math.max(100, Math.floor(leaseMs / 10)), reason: 'lease lost' };
    } finally {
      // Every exit (done, delay, error, lease lost): no renewal outlives its run.
      stopRenewing();
      run.signal?.removeEventListener('abort', giveUp);
      const held = stillOwned(lease);
      // A step whose deferred done record no save took (the run ended by an error in between) is
      // recorded now, before the lease goes.
      if (held && lease.pending?.length) await intents.flush(lease).catch(() => undefined);
      if (held && !lease.released) await intents.release(lease).catch(() => undefined);
    }
  }

  /**
   * A run that ended with an error that is not the platform's (a bug, Redis refusing a command) is
   * retried by BullMQ and by the sweep, and the mirror used to say nothing of it: stuck `pending` (or
   * wherever it was) with no reason. Its `lastError` now says `retrying: internal error: <name>:
   * <message>` (the message's first line, cut at 200 characters: no stack), its state untouched, until
   * a run ends otherwise (a done run clears it, a platform error replaces it). Fenced by the run's
   * lease like every write of the run; nothing is told to the partner (the next report carries it).
   * Best effort, never throws: skipped while Redis is not connected (its failure is then the error,
   * and a write would only wait for the reconnect), and a write that fails is logged.
   */
  private async recordInternalError(job: SyncJob, lease: MirrorLease, target: TargetRecord | null, err: unknown): Promise<void> {
    const { partnerId, showId, targetId } = job;
    if (!stillOwned(lease) || this.deps.redis.status !== 'ready') return;
    const text = `retrying: internal error: ${internalErrorText(err)}`;
    try {
      const mirror = target ? ((await this.deps.shows.getMirror(partnerId, showId, target)) ?? newMirror(targetId, target.platform, target.incarnation)) : await this.deps.shows.getMirror(partnerId, showId, targetId);
      if (!mirror || mirror.state === 'failed' || mirror.state === 'action_required' || mirror.lastError === text) return;
      mirror.lastError = text;
      await this.deps.shows.saveMirror(partnerId, showId, mirror, lease);
    } catch (saveErr) {
      this.deps.log.warn({ partnerId, showId, targetId, err: saveErr }, "could not record a sync run's internal error on its mirror");
    }
  }

  /**
   * The mirror of a show whose stored desired state does not read: `failed`, its lastError naming the
   * key (StoredRecordCorruptError's message), until an operator repairs or deletes that key and resyncs
   * (docs/operations.md, "Unreadable stored record"). Nothing is called on the platform. Reported as
   * every other failure is (notify): the partner's `mirror.updated` and the show's timeline entry (a
   * run that finds it failed and told already writes and tells nothing; one whose report failed tells
   * it again).
   */
  private async failUnreadableShow(job: OwnedJob, stored: MirrorDoc | null, target: TargetRecord, err: StoredRecordCorruptError): Promise<SyncOutcome> {
    const { partnerId, showId, targetId, lease } = job;
    const mirror = ownMirror(stored, target) ?? newMirror(targetId, target.platform, target.incarnation);
    const lastError = `the show's stored desired state does not read: ${err.message}; then resync the mirror`;
    const outcome: SyncOutcome = { kind: 'done', state: 'failed' };
    if (mirror.state !== 'failed' || mirror.lastError !== lastError) {
      this.deps.log.error({ partnerId, showId, targetId, key: err.key, reason: err.reason }, "mirror failed: the show's stored desired state does not read");
      mirror.state = 'failed';
      mirror.lastError = lastError;
      await this.deps.shows.saveMirror(partnerId, showId, mirror, lease);
    }
    // No desired state to show the pins' reasons by: the view has none.
    return await this.notify(partnerId, showId, mirror, lease, { enabled: target.enabled }, outcome);
  }

  private async syncOwned(job: OwnedJob, first?: FirstRead, startedAt?: number): Promise<SyncOutcome> {
    const { partnerId, showId, targetId, lease } = job;
    const { shows, partners } = this.deps;
    let log: Logger | undefined;
    const logger = (): Logger => (log ??= this.deps.log.child({ partnerId, showId, targetId }));
    for (let round = 0; round < MAX_ROUNDS; round++) {
      try {
        // Round 0 uses what sync() read with the lease; later rounds read again (independent reads, one round trip).
        const [targetRead, desiredRead, storedRead] =
          round === 0 && first
            ? [first.target, first.desired, first.mirror]
            : await Promise.all([partners.getTarget(partnerId, targetId), shows.desired(partnerId, showId).catch(corruptOnly), shows.getMirror(partnerId, showId, targetId)]);
        if (targetRead instanceof StoredRecordCorruptError) throw targetRead;
        if (storedRead instanceof StoredRecordCorruptError) throw storedRead;
        const [target, stored] = [targetRead, storedRead];
        if (!target || !target.enabled) return { kind: 'done', state: 'none' };
        // The show's stored desired state does not read: no run mends it, so the mirror fails with a
        // reason that names the key (once: a run that finds it failed so writes nothing), where the
        // error retried the job to its last attempt, and the sweep enqueued it again, for good.
        if (desiredRead instanceof StoredRecordCorruptError) return await this.failUnreadableShow(job, stored, target, desiredRead);
        const desired = desiredRead;
        // Being deleted (targets.routes.ts): nothing is done on the platform until the DELETE is over.
        // Whether the mark has expired is Redis's clock's to say (checkTarget, as the DELETE dated it
        // and the save scripts' guard reads it), never this worker's: a slow worker waited on an
        // expired mark for as long as its clock was behind, a fast one ran past a fresh mark. Asked
        // only of a record that carries a mark (a round trip then; none otherwise). TargetDeletingError
        // with the mark's end on this process's clock (the run's wait); TargetGoneError when the
        // target was deleted meanwhile.
        if (target.deleting !== undefined) await shows.checkTarget(partnerId, targetId, target.incarnation);
        if (!desired) return { kind: 'done', state: 'none' };
        // A record an earlier target of this id (deleted, created again) left is not this one's: a new
        // mirror, whose intents are another generation's (ownMirror), so nothing of the old platform
        // show (its external id, error, pins, intents) is acted on with this target's credentials.
        const mirror = ownMirror(stored, target) ?? newMirror(targetId, target.platform, target.incarnation);
        /** `progress`: a step was done, so the next failure starts a fresh backoff; a mere state mark is not. */
        const save = async (progress = true): Promise<void> => {
          if (progress) mirror.retries = 0;
          await shows.saveMirror(partnerId, showId, mirror, lease);
        };
        /** The run ends with `err` (a TargetError, else thrown: onError): the mirror saved with it, and reported. */
        const fail = async (err: unknown): Promise<SyncOutcome> => {
          // The state a failure on an unreadable secret came from: a mirror already failed on one keeps the first.
          const was = mirror.state === 'failed' && mirror.unreadable ? mirror.unreadable.was : mirror.state;
          // A mirror that had failed for another reason keeps that reason, to be given back with its state.
          const wasError = mirror.state === 'failed' && mirror.unreadable ? mirror.unreadable.lastError : was === 'failed' ? mirror.lastError : undefined;
          let outcome = await this.onError(err, mirror, target, logger());
          // Failed on a secret no key opens: marked with what it saw, so the sweep does not run it again
          // (and log again) until the show, the target's credentials or this process's keys change.
          mirror.unreadable = err instanceof SecretUnreadableError && mirror.state === 'failed' ? unreadableMark(was, desired.version, target.credentialsSealed, this.deps.box.keyring, wasError) : undefined;
          // The version the wait began at: the sweep brings the delayed job forward only once the show changed since.
          mirror.waiting = err instanceof RetryableError && err.waiting ? desired.version : undefined;
          try {
            await save(false); // keeps the retry count onError just set
          } catch (saveErr) {
            // A deferred done record this save found unreadable (the save wrote the others): the mirror
            // fails with that, as at any other save.
            if (!(saveErr instanceof IntentCorruptError)) throw saveErr;
            outcome = await this.onError(saveErr, mirror, target, logger());
            mirror.waiting = undefined;
            await save(false);
          }
          if (mirror.remote) await this.indexRemote(job, mirror.remote.externalId);
          return await this.notify(partnerId, showId, mirror, lease, { enabled: target.enabled, desired }, outcome);
        };
        let wakeAt: number | undefined;
        try {
          const adapter = this.adapterFor(target);
          if (!adapter) {
            mirror.state = 'failed';
            mirror.lastError = `platform ${target.platform} is not supported by this version of Syndicast`;
          } else {
            // The credentials open now (a restored key, new credentials): a mirror failed only because
            // a secret could not be opened takes up where it failed, as if those runs never happened.
            if (mirror.unreadable !== undefined) {
              if (mirror.state === 'failed' && (mirror.lastError === SECRET_UNREADABLE_MIRROR_ERROR || mirror.lastError === STREAM_KEY_UNREADABLE_MIRROR_ERROR)) {
                mirror.state = mirror.unreadable.was;
                // Failed for another reason before: that reason again (a failed mirror keeps its reason).
                mirror.lastError = mirror.unreadable.was === 'failed' ? (mirror.unreadable.lastError ?? null) : null;
              }
              mirror.unreadable = undefined;
            }
            // A platform call may read or replace the ingest: a key no configured key opens fails the
            // mirror before any (a finished or failed mirror makes none and keeps its state). Not when the
            // mirror was linked again (attach): the platform's show, its ingest included, is read anew first.
            if (ingestUnreadable(mirror) && !isTerminal(mirror.state) && mirror.remote?.data['attach'] !== '1') throw new StreamKeyUnreadableError();
            wakeAt = await this.drive(job, desired, mirror, adapter, target.pinDelayMs, save);
            // A failed mirror keeps the reason it failed for until an operator retries it: a later run
            // (the sweep's, or a later event's) passes over it without a platform call, and erasing the
            // reason then left the board and the partner's mirror.updated with "failed" and no error.
            if (mirror.state !== 'action_required' && mirror.state !== 'failed') mirror.lastError = null;
          }
          mirror.retries = 0;
          mirror.waiting = undefined;
          mirror.syncedVersion = desired.version;
        } catch (err) {
          return await fail(err);
        }
        // The partner is told before the last save, which records what was told (`notified`) with
        // the rest: a report whose save then fails is made again by the next round or run, and its
        // idempotency key (it covers syncedVersion) keeps that to one delivery.
        const activity = await this.tell(partnerId, showId, mirror, { enabled: target.enabled, desired });
        // The last save also reads the show's version and, when nothing changed meanwhile, ends the
        // lease (one Lua step). Every sync re-asserts the external-show index while the mirror has a
        // remote show, alongside: a write that failed (or never happened: a crash right after the
        // create) is repaired here, not lost for good.
        // A run that ends here (no pin waiting) records its own timeline entry in that step too.
        const remoteId = mirror.remote?.externalId;
        const runEntry =
          startedAt !== undefined && this.deps.activity && wakeAt === undefined
            ? JSON.stringify({ kind: 'sync', targetId, outcome: mirror.state, durationMs: Date.now() - startedAt } satisfies ActivityEntry)
            : undefined;
        // On a single Redis the index entry is asserted inside that same step (one command fewer).
        const indexHere = remoteId !== undefined && !this.deps.redis.isCluster;
        // On a Cluster (another slot) it is written alongside the save, once the save's target guard
        // (a read before it) passed: never for a target that is gone, and no round trip added.
        let final: Awaited<ReturnType<ShowRepository['saveMirrorFinal']>>;
        try {
          final = await shows.saveMirrorFinal(
            partnerId,
            showId,
            mirror,
            lease,
            desired.version,
            activity || undefined,
            runEntry,
            indexHere ? { externalId: remoteId } : undefined,
            remoteId !== undefined && !indexHere ? () => this.indexRemote(job, remoteId) : undefined,
          );
        } catch (err) {
          // A deferred done record (a pin step's, left to this save) found unreadable: the mirror fails
          // with IntentCorruptError now, as when any other save or step finds one. It was taken for a
          // lost lease: the run stopped and the error surfaced only in the run after the lease lapsed.
          if (!(err instanceof IntentCorruptError)) throw err;
          return await fail(err);
        }
        const { version, runRecorded, indexWaiting } = final;
        if (indexHere && indexWaiting !== undefined) await this.indexed(job, remoteId, indexWaiting);
        if (version === desired.version) {
          if (wakeAt !== undefined) return { kind: 'delay', delayMs: Math.max(1, wakeAt - Date.now()), reason: 'pin_delay' };
          return { kind: 'done', state: mirror.state, ...(runRecorded ? { recorded: true } : {}) };
        }
        logger().debug({ round }, 'desired state changed during sync; syncing again');
      } catch (err) {
        // An operator action (link, retry) or another run saved this mirror since we read it: read
        // it again and decide afresh. Remote effects already made are recorded in intents, not repeated.
        // So too when the target was deleted and created again (?force=true) since this round read it:
        // nothing of the deleted target's was written (the save's guard), and the next round reads the
        // new target and its mirror (ownMirror: a new one), so the new target's first sync is not left
        // to the sweep (its kick was deduplicated into this job).
        if (err instanceof TargetReplacedError) {
          logger().info({ round }, 'target deleted and created again during the sync; reading the new one');
          continue;
        }
        if (!(err instanceof MirrorConflictError)) throw err;
        logger().debug({ round }, 'mirror changed under this sync; re-reading');
      }
    }
    return { kind: 'delay', delayMs: 100, reason: 'desired state keeps changing' };
  }

  /**
   * Report a changed mirror to the partner, for a run that ends with an error (`outcome`: what the run
   * returns). The fingerprint of what was last reported is stored on the mirror, so a failed report is
   * retried by the next run instead of being lost. A report held while the target is being deleted
   * (TargetDeletingError: its check before the report, or the save after it) is made by the run that
   * comes back, unless the target is gone by then: at the outcome's own delay when it has one (no
   * platform call sooner than that wait), else once the mark is off or expired (deletingWait).
   */
  private async notify(partnerId: string, showId: string, mirror: MirrorDoc, lease: MirrorLease, view: MirrorViewContext, outcome: SyncOutcome): Promise<SyncOutcome> {
    let entry: string | undefined;
    try {
      entry = await this.tell(partnerId, showId, mirror, view);
      if (entry === undefined) return outcome;
      await this.deps.shows.saveMirror(partnerId, showId, mirror, lease);
    } catch (err) {
      if (!(err instanceof TargetDeletingError)) throw err;
      this.deps.log.info({ partnerId, showId, targetId: mirror.targetId }, 'target being deleted; the report waits for the next run');
      return outcome.kind === 'delay' ? outcome : deletingWait(err);
    }
    // On the timeline once the partner was told (a failed emit retries the sync, which would record it
    // twice) and the save that records `notified` went through its target check: a report to nobody
    // checks the target only there, and an entry appended before it recorded a change of a target
    // deleted in that moment. (The same number of commands: the append only comes after the save.)
    if (entry) {
      await this.deps.activity?.append(partnerId, showId, mirrorActivityEntry(mirror)).catch((err: unknown) => this.deps.log.warn({ err, partnerId, showId, targetId: mirror.targetId }, 'could not record mirror activity'));
    }
    return outcome;
  }

  /**
   * notify() without its own save: the caller's next save records `notified`. Returns undefined when
   * nothing was told, else the timeline entry to record ('' without a timeline).
   */
  private async tell(partnerId: string, showId: string, mirror: MirrorDoc, view: MirrorViewContext): Promise<string | undefined> {
    if (!this.deps.onMirrorChanged && !this.deps.activity) return undefined;
    // A refused pin asked again counts by what the partner sees of it (reportedPins): an attempt refused
    // again for the same reason tells nothing new.
    const fingerprint = JSON.stringify({ s: mirror.state, p: reportedPins(mirror.pins), r: mirror.remote?.externalId, e: reportedError(mirror) });
    if (fingerprint === mirror.notified) return undefined;
    // No report for a target deleted since the run's last save (which checked it: ShowRepository
    // targetGuard), nor while a DELETE's mark is on it (held: the run comes back); checked only when
    // the report would go to someone.
    // (The check as an argument, not a named closure: tsx's keepNames renames every named one as it is made.)
    await this.deps.onMirrorChanged?.(partnerId, showId, mirror, view, () => this.deps.shows.checkTarget(partnerId, mirror.targetId, mirror.incarnation));
    mirror.notified = fingerprint;
    return this.deps.activity ? JSON.stringify(mirrorActivityEntry(mirror)) : '';
  }

  private async onError(err: unknown, mirror: MirrorDoc, target: TargetRecord, log: Logger): Promise<SyncOutcome> {
    if (err instanceof SecretUnreadableError) {
      // The target's credentials (or a sealed platform answer of this mirror) no key opens: no retry
      // helps until an operator acts. It was thrown to BullMQ, retried 10 times and failed there, the
      // mirror left as it was, its lastError empty.
      mirror.state = 'failed';
      mirror.lastError = err instanceof StreamKeyUnreadableError ? STREAM_KEY_UNREADABLE_MIRROR_ERROR : SECRET_UNREADABLE_MIRROR_ERROR;
      log.error({ err: { message: err.message, code: err.code } }, 'mirror failed: a stored secret cannot be opened (restore SECRETS_KEY / SECRETS_KEY_PREVIOUS)');
      return { kind: 'done', state: 'failed' };
    }
    if (!isTargetError(err)) throw err; // a bug or Redis: let BullMQ retry with backoff
    const msg = `${target.platform}: ${err.message}`;
    switch (err.kind) {
      case 'rate_limited': {
        const delayMs = withJitter(platformWait((err as RateLimitedError).delayMs));
        mirror.lastError = `waiting ${Math.ceil(delayMs / 1000)} s: ${msg}`;
        rateLimitWaits.inc({ platform: target.platform });
        rateLimitWaitSeconds.inc({ platform: target.platform }, delayMs / 1000);
        log.info({ delayMs, reason: err.reason }, 'rate limited; sync delayed');
        return { kind: 'delay', delayMs, reason: 'rate_limited' };
      }
      case 'retryable':
      case 'auth_expired': {
        if (err instanceof AuthExpiredError) await this.accessRefused(target.id);
        const given = err instanceof RetryableError ? err.delayMs : undefined;
        // An expected wait (stream not active yet) does not use up the retry budget; a failure does,
        // also one that says when to come back (a 5xx with Retry-After).
        if (!(err instanceof RetryableError && err.waiting)) mirror.retries += 1;
        if (mirror.retries > this.deps.maxRetries) {
          mirror.state = 'failed';
          mirror.lastError = `gave up after ${mirror.retries - 1} retries: ${msg}`;
          log.warn({ err }, 'mirror failed after retries');
          return { kind: 'done', state: 'failed' };
        }
        const delayMs = given !== undefined ? withJitter(platformWait(given)) : backoffMs(mirror.retries, this.deps.backoffBaseMs);
        mirror.lastError = `retrying in ${Math.ceil(delayMs / 1000)} s: ${msg}`;
        log.info({ delayMs, reason: err.reason, retries: mirror.retries }, 'retryable platform error');
        return { kind: 'delay', delayMs, reason: err.reason ?? 'retryable' };
      }
      case 'action_required':
        mirror.state = 'action_required';
        mirror.lastError = msg;
        return { kind: 'done', state: mirror.state };
      case 'permanent':
        mirror.state = 'failed';
        mirror.lastError = msg;
        if (err instanceof IntentCorruptError) intentRecordsUnreadable.inc({ platform: target.platform, during: 'step' });
        log.warn({ err: { message: err.message, reason: err.reason } }, 'mirror failed');
        return { kind: 'done', state: 'failed' };
    }
  }

  /**
   * The platform refused even a freshly refreshed access token (AuthExpiredError): the next call
   * refreshes. The adapter goes (its token memo with it) and the stored access token is marked expired
   * for every process. Not cleared: a refresh token the platform rotated is in the record.
   */
  private async accessRefused(targetId: string): Promise<void> {
    this.adapters.delete(targetId);
    await new RedisTokenStore(this.deps.redis, this.deps.keys, this.deps.box, targetId).expireAccess();
  }

  /**
   * Records on `remote` whether its withdraw (in intent scope `scope`) left a clean-up for later
   * (RemoteShow.data `cleanup`). A clean-up the platform refused even with a fresh access token
   * (WithdrawOutcome.authExpired: YouTube's stream delete met a 401 after the refresh) marks the token
   * expired (accessRefused), as a thrown AuthExpiredError does; the withdraw stands.
   */
  private async leftFor(job: OwnedJob, remote: NonNullable<MirrorDoc['remote']>, scope: 'cancel' | 'withdraw', outcome: void | WithdrawOutcome): Promise<void> {
    if (outcome?.cleanupPending) remote.data['cleanup'] = scope;
    else delete remote.data['cleanup'];
    if (!outcome?.authExpired) return;
    await this.accessRefused(job.targetId);
    this.deps.log.warn({ partnerId: job.partnerId, showId: job.showId, targetId: job.targetId }, 'withdraw clean-up: the platform refused even a fresh access token (marked expired); left for a later run');
  }

  private op(job: OwnedJob, mirror: MirrorDoc, scope: string, opts: ScopedOptions = {}): OpContext {
    const s = `g${mirror.generation}:${scope}`;
    // The target's limiter: a step whose request goes through it takes its token with its start.
    const limiter = this.adapters.get(job.targetId)?.limiter;
    // A step this run completed is progress, like any step the run saves after: a failure after it
    // starts a fresh backoff. One adapter call may hold several steps (YouTube's create: stream,
    // broadcast, bind), saved only once all are done; without this, an attempt that made the stream
    // and then met a 5xx on the broadcast counted as one more failure in a row, and a create that
    // advanced a step per attempt through a few transient errors waited 16–32 s, then 32–64 s, then
    // 64–128 s (backoffMs) before its next step: under CPU load, mirrors of the 50-show fault test
    // (test/e2e/mirror.faults.test.ts) sat in `provisioning` for most of a minute.
    const onDone = (): void => {
      mirror.retries = 0;
    };
    return {
      once: this.deps.intents.scoped(job.partnerId, job.showId, job.targetId, s, job.lease, { ...opts, onDone, ...(limiter ? { limiter } : {}) }),
      recorded: this.deps.intents.recorded(job.partnerId, job.showId, job.targetId, s, job.lease),
      marker: `${short(`${job.partnerId}\u0000${job.showId}\u0000${job.targetId}`)}-${short(s)}`,
    };
  }

  /**
   * Attribution rule 2 finds the show from the platform's show id (src/store/external-show.index.ts).
   * Platform orders that named it before the entry existed are attributed now.
   */
  private externalShows: ExternalShowIndex | undefined;
  private async indexRemote(job: SyncJob, externalId: string): Promise<void> {
    this.externalShows ??= new ExternalShowIndex(this.deps.redis, this.deps.keys); // one per service: its per-master batches
    await this.indexed(job, externalId, await this.externalShows.assert(job.targetId, externalId, job.showId));
  }

  /** After the index entry was asserted: `waiting` orders named it before it existed. */
  private async indexed(job: SyncJob, externalId: string, waiting: number): Promise<void> {
    if (waiting > 0 && this.deps.onRemoteIndexed) await this.deps.onRemoteIndexed(job.partnerId, job.targetId, externalId);
  }

  /**
   * The state machine. Throws TargetErrors; saves after every remote side effect. Returns when to
   * come back (a delayed pin), if anything is waiting.
   */
  private async drive(job: OwnedJob, desired: DesiredShow, mirror: MirrorDoc, adapter: TargetAdapter, pinDelayMs: number, save: (progress?: boolean) => Promise<void>): Promise<number | undefined> {
    const caps = adapter.capabilities;
    if (mirror.state === 'failed') return undefined;
    if (cleanupPending(mirror)) await this.cleanUp(job, mirror, adapter, save);
    if (mirror.linkedAfterEnd && !mirror.wentLive && mirror.state !== 'live') {
      // Its platform show was linked after the show was over and nothing was done on it (the branch
      // below): this service never ended or took it down. Scheduled or live again, the show is mirrored
      // to it like to any linked show (ready, live, pins), not `action_required`; over again before it
      // went live, the mirror takes the end state and that platform show is still left alone.
      mirror.over = undefined;
      if (desired.state === 'ended' || desired.state === 'cancelled') {
        mirror.state = desired.state;
        unpinAll(mirror);
        return undefined;
      }
      if (mirror.state === 'ended' || mirror.state === 'cancelled' || mirror.state === 'action_required') mirror.state = 'ready';
    }
    if (!mirror.remote && caps.createShow === 'api' && (desired.state === 'scheduled' || desired.state === 'live') && (mirror.state === 'ended' || mirror.state === 'cancelled' || mirror.over)) {
      // Over before a platform show was made for it: nothing on the platform is over, and this target
      // creates shows by API, so the show scheduled or live again is mirrored as a new one.
      mirror.over = undefined;
      mirror.state = 'pending';
    }
    if (mirror.state === 'ended' || mirror.state === 'cancelled' || mirror.over) {
      stayOver(job, desired, mirror, adapter.platform);
      return undefined;
    }

    if (mirror.remote?.data['attach'] === '1' && !mirror.wentLive && mirror.state !== 'live' && (desired.state === 'ended' || desired.state === 'cancelled')) {
      // Linked by an operator to a platform show made by hand while this show is already over: the
      // link is recorded (url read, index entry for the platform's orders) and the mirror takes the
      // show's end state. Nothing is changed on that platform show: the steps below would retitle it
      // and withdraw (delete) it as if this service had made it, and a mistyped id in a link after the
      // show would take down someone's broadcast (attack on npm start, 2026-12-02).
      mirror.remote = await adapter.attachShow(mirror.remote.externalId);
      mirror.state = desired.state;
      mirror.linkedAfterEnd = true;
      await save();
      await this.indexRemote(job, mirror.remote.externalId);
      return undefined;
    }

    const createTried = mirror.state === 'provisioning' || mirror.creating !== undefined;
    if (!mirror.remote && createTried && caps.createShow === 'api' && (desired.state === 'cancelled' || desired.state === 'ended')) {
      // A create was under way and its outcome is unknown (a timeout, a crash, a wait for a late
      // request to settle; also when the mirror failed meanwhile and an operator retried it: `pending`
      // with `creating` kept) when the show was called off: the platform may have the show. Look for
      // it (never make it now); one found is taken down below like any other.
      const spec = specOf(desired);
      try {
        mirror.remote = await adapter.createShow(spec, { ...this.op(job, mirror, 'create', { findOnly: true }), findOnly: true });
      } catch (err) {
        if (!(err instanceof NotMadeError)) throw err;
      }
      if (mirror.remote) {
        mirror.applied = spec;
        mirror.creating = undefined;
        mirror.state = 'ready';
        await save();
        await this.indexRemote(job, mirror.remote.externalId);
      }
    }

    if (desired.state === 'cancelled') {
      const wasLive = mirror.state === 'live';
      if (mirror.remote) await this.leftFor(job, mirror.remote, 'cancel', await adapter.cancelShow(mirror.remote, this.op(job, mirror, 'cancel')));
      mirror.state = 'cancelled';
      // A show cancelled on air was ended by cancelShow where the platform has a lifecycle (YouTube,
      // Facebook): nothing stays pinned on it, as after an end. Where it has none (Bambuser keeps a show
      // that aired, Whatnot and TikTok belong to the seller), the live show and its pins stay on the
      // platform, and the mirror says so.
      if (caps.lifecycle || !wasLive) unpinAll(mirror);
      return undefined;
    }

    if (!mirror.remote) {
      if (desired.state === 'ended') {
        // The show is over before it was ever mirrored: nothing to air, nothing to create.
        mirror.state = 'ended';
        return undefined;
      }
      if (caps.createShow !== 'api') {
        mirror.state = 'action_required';
        mirror.lastError =
          `${adapter.platform} cannot create live shows by API: create the show in the ${adapter.platform} app, then link it with ` +
          `PUT /v1/partners/${pathId(job.partnerId)}/shows/${pathId(job.showId)}/mirrors/${pathId(job.targetId)} {"externalId": "<the ${adapter.platform} show id>"}`;
        return undefined;
      }
      mirror.state = 'provisioning';
      const spec = specOf(desired);
      // The spec every attempt asked for ('*' once they differed): a show an earlier attempt made (a
      // timeout, a crash) is adopted by this one's lookup with the title that attempt sent.
      const asked = short(JSON.stringify(spec));
      mirror.creating = mirror.creating === undefined || mirror.creating === asked ? asked : '*';
      // Not progress: every attempt passes here, and resetting the count would retry a 5xx forever.
      await save(false);
      // On a Cluster the save's target guard is a read before the save, so a DELETE could mark the
      // target, find no show of it on the platform and delete it between that read and the save: the
      // target is read again after the save, before the platform is asked. (On one Redis the guard is in
      // the save's own step.) Then either this read sees the mark, or the DELETE's check sees this save.
      if (this.deps.redis.isCluster) await this.deps.shows.checkTarget(job.partnerId, job.targetId, mirror.incarnation);
      mirror.remote = await adapter.createShow(desired.state === 'live' ? { ...spec, live: true } : spec, this.op(job, mirror, 'create'));
      // Unknown when the attempts asked for different specs: the update below writes the current one.
      mirror.applied = mirror.creating === asked ? spec : undefined;
      mirror.creating = undefined;
      mirror.state = 'ready';
      await save();
      await this.indexRemote(job, mirror.remote.externalId);
    }
    if (mirror.remote.data['incomplete'] === '1' && desired.state !== 'ended') {
      // A look-up-only create (the show called off while a create's outcome was unknown) adopted what an
      // earlier attempt made and stopped short of the rest (YouTube: the stream and its bind). The show is
      // on again before its withdraw ran: the create is finished first, its steps recorded (nothing made
      // twice). Used as it was, the show could not go live (YouTube: no bound stream, no ingest).
      const spec = specOf(desired);
      mirror.remote = await adapter.createShow(desired.state === 'live' ? { ...spec, live: true } : spec, this.op(job, mirror, 'create'));
      await save();
      await this.indexRemote(job, mirror.remote.externalId);
    }
    if (mirror.remote.data['attach'] === '1') {
      // Linked by an operator: read what the platform has for it (url, ingest) once, and let the
      // adapter make what it lacks to go live (YouTube: a bound stream), once per linked show.
      // (The link's nonce: a step tied to this link, not to the attach scope a re-link keeps, OpContext.link.)
      const link = mirror.remote.data['link'];
      mirror.remote = await adapter.attachShow(mirror.remote.externalId, { ...this.op(job, mirror, 'attach'), ...(link !== undefined ? { link } : {}) });
      await save();
      await this.indexRemote(job, mirror.remote.externalId);
    }
    const remote = mirror.remote;
    if (mirror.state === 'action_required' || mirror.state === 'pending' || mirror.state === 'provisioning') mirror.state = 'ready';

    const spec = specOf(desired);
    if (mirror.updating !== undefined && sameSpec(mirror.applied, spec)) {
      // An update attempted and then dropped (the spec went back to what was applied): the steps it
      // recorded (YouTube's read, made while the broadcast was upcoming) are not the next update's,
      // and its write may have reached the platform unanswered (a timeout, a crash after the call):
      // what was applied is sent again, as the next update (YouTube reads first and skips it when the
      // broadcast already has it; elsewhere one repeated write).
      mirror.updates = mirror.updating + 1;
      delete mirror.updating;
      mirror.applied = undefined;
    }
    if (!sameSpec(mirror.applied, spec)) {
      // The scope is this update's alone (MirrorDoc.updates): a later update of the same spec does
      // not find the steps this one recorded. The attempt is saved first (MirrorDoc.updating): one
      // dropped before it completed (the spec back to what was applied) still ends its number.
      if (mirror.updating === undefined) {
        mirror.updating = mirror.updates ?? 0;
        await save(false);
      }
      await adapter.updateShow(remote, spec, this.op(job, mirror, `update:${mirror.updates ?? 0}:${short(JSON.stringify(spec))}`));
      mirror.applied = spec;
      mirror.updates = (mirror.updates ?? 0) + 1;
      delete mirror.updating;
      await save();
    }

    if (mirror.state === 'ready' && (desired.state === 'live' || desired.state === 'ended')) {
      if (desired.state === 'ended') {
        // Ended without our mirror ever going live: withdraw the never-aired remote show.
        await this.leftFor(job, remote, 'withdraw', await adapter.cancelShow(remote, this.op(job, mirror, 'withdraw')));
        mirror.state = 'ended';
        return undefined;
      }
      // A platform must not go live before the relayed video reaches it (YouTube refuses anyway).
      const wait = this.deps.videoGate ? await this.deps.videoGate(job.partnerId, job.showId, mirror, desired) : null;
      if (wait) throw new RetryableError(`waiting for video: ${wait}`, { reason: 'waiting_for_video', delayMs: VIDEO_WAIT_MS, waiting: true });
      if (caps.lifecycle) await adapter.startShow(remote, this.op(job, mirror, 'start'));
      mirror.state = 'live';
      mirror.wentLive = true;
      mirror.linkedAfterEnd = undefined;
      await save();
    }

    if (mirror.state === 'live') {
      let wakeAt: number | undefined;
      try {
        wakeAt = await this.syncPins(job, desired, mirror, adapter, pinDelayMs, save);
      } catch (err) {
        // Its platform show is over there (the seller ended it in the platform's app): nothing more can
        // be mirrored to it, and the mirror is not `failed` for it: it is over, as after an end (stayOver).
        if (!(err instanceof ShowOverError)) throw err;
        overOnPlatform(job, desired, mirror, adapter.platform, err);
        return undefined;
      }
      if (desired.state === 'ended') {
        if (caps.lifecycle) await adapter.endShow(remote, this.op(job, mirror, 'end'));
        mirror.state = 'ended';
        unpinAll(mirror);
        return undefined;
      }
      return wakeAt;
    }
    return undefined;
  }

  /**
   * A withdrawn mirror whose clean-up was left for later (WithdrawOutcome: YouTube's stream delete met a
   * 5xx or quota): cancelShow again, in the withdraw's scope, so that its recorded steps (the broadcast
   * delete) are not sent again. Best effort: a failure leaves it for a later run (the sweep counts a
   * pending clean-up as work left, SweepService) and never changes the mirror's state (a cancelled show
   * is not failed for a stream left on the channel); after CLEANUP_TRIES runs it is given up. Not
   * silently, though: a token the platform refuses even fresh (AuthExpiredError) is marked expired as
   * on any other call (accessRefused), and an unreadable intent record (IntentCorruptError: the step is
   * not run again until an operator checks the platform) is logged at error level and counted
   * (`syndicast_intent_records_unreadable_total`, during="cleanup"), as the mirror does not fail for it.
   */
  private async cleanUp(job: OwnedJob, mirror: MirrorDoc, adapter: TargetAdapter, save: (progress?: boolean) => Promise<void>): Promise<void> {
    const remote = mirror.remote!;
    const scope = remote.data['cleanup'] === 'withdraw' ? 'withdraw' : 'cancel';
    const where = { partnerId: job.partnerId, showId: job.showId, targetId: job.targetId };
    // A refusal to wait (YouTube's quota until midnight Pacific, a 429, the limiter's own block) is not
    // a try: counted, the sweep's runs (one per SWEEP_INTERVAL_MS) gave a quota-blocked clean-up up
    // within a minute, and the stream stayed on the channel though the quota came back that night.
    let tried = true;
    try {
      await this.leftFor(job, remote, scope, await adapter.cancelShow(remote, this.op(job, mirror, scope)));
    } catch (err) {
      if (!isTargetError(err)) throw err;
      if (err.kind === 'rate_limited') tried = false;
      const logged = { ...where, err: { message: err.message, reason: err.reason } };
      if (err instanceof IntentCorruptError) {
        intentRecordsUnreadable.inc({ platform: mirror.platform, during: 'cleanup' });
        this.deps.log.error(logged, 'withdraw clean-up: a step\'s intent record is unreadable; the step is not run again (docs/operations.md "Unreadable intent record")');
      } else if (err instanceof AuthExpiredError) {
        await this.accessRefused(job.targetId);
        this.deps.log.warn(logged, 'withdraw clean-up: the platform refused even a fresh access token (marked expired); left for a later run');
      } else this.deps.log.info(logged, 'withdraw clean-up failed; left for a later run');
    }
    if (remote.data['cleanup'] === undefined) delete remote.data['cleanupTries'];
    else if (tried) {
      const tries = Number(remote.data['cleanupTries'] ?? '0') + 1;
      if (tries < CLEANUP_TRIES) remote.data['cleanupTries'] = String(tries);
      else {
        delete remote.data['cleanup'];
        delete remote.data['cleanupTries'];
        this.deps.log.warn({ ...where, tries }, 'withdraw clean-up given up (best effort): what it removes stays on the platform');
      }
    }
    await save(false);
  }

  /**
   * Takes a pin back on the platform, where this target can (it may depend on the account: resolved by
   * the adapter). A method, not a closure made in every syncPins call: tsx (esbuild keepNames) names each
   * named closure as it is made, an Object.defineProperty per pin run (≈ 1 % of the pin sync's CPU).
   * With `save`, the attempt is recorded on the pin before the unpin is sent (`unpinTriedAt`): a run
   * that ends without its outcome (a timeout, a crash) leaves a pin the platform may no longer hold.
   */
  private async takeBack(
    job: OwnedJob,
    mirror: MirrorDoc,
    adapter: TargetAdapter,
    remote: NonNullable<MirrorDoc['remote']>,
    productId: string,
    product: Product | undefined,
    mp: MirrorPin,
    save?: (progress?: boolean) => Promise<void>,
  ): Promise<void> {
    const caps = await capabilitiesOf(adapter);
    if (!caps.unpin) return;
    // What this pin made there is still another pin's: two products the partner gave one sku are one
    // product in Whatnot's lineup (ref = the product id sent), and taking one back removed it while the
    // other stayed `pinned` here (attack on npm start). The last pin holding it takes it down.
    if (heldByAnotherPin(mirror.pins, productId, mp, pinNamesProduct(caps))) return;
    if (save) {
      mp.unpinTriedAt = Date.now();
      await save(false);
    }
    await adapter.unpin(remote, unpinSpec(productId, product, mp), mp.ref, this.op(job, mirror, `unpin:${productId}:${mp.episode}`));
  }

  /**
   * A pinned product (or one whose attempt's outcome is unknown) whose platform product id changed since
   * it was sent (the partner gave it another sku) is another product on a platform that pins by that id
   * (pinNamesProduct): the episode sent is recorded as `replaced` and a new one begins, in one save
   * before anything is sent; then the replaced one is taken back (its attempt settled first), so the
   * platform ends up holding the id the product has now. The new episode is pinned after that by the
   * caller, as any pending pin (its pin delay not again: the product is on screen already). An id
   * changed back (X → Y → X) is removed before it is added again, never the other way round. Returns
   * when to come back while a replaced attempt is still settling, else undefined.
   */
  private async replaceSent(
    job: OwnedJob,
    desired: DesiredShow,
    mirror: MirrorDoc,
    adapter: TargetAdapter,
    remote: NonNullable<MirrorDoc['remote']>,
    productId: string,
    product: Product | undefined,
    mp: MirrorPin,
    save: (progress?: boolean) => Promise<void>,
  ): Promise<number | undefined> {
    for (;;) {
      if (product && mp.replaced === undefined && desired.state === 'live' && desired.pinned.has(productId) && (mp.state === 'pinned' || (mp.state === 'pending' && mp.tried))) {
        const id = platformIdOf(productId, product);
        // A pinned record from before `sentAs` was kept: sent with the current id (no churn on upgrade).
        const sent = mp.state === 'pinned' ? (mp.sentAs ?? id) : mp.sentAs;
        if (sent !== undefined && sent !== id && pinNamesProduct(await capabilitiesOf(adapter))) {
          mp.replaced = { episode: mp.episode, ref: mp.ref, sentAs: sent, ...(mp.state === 'pending' && mp.triedAt !== undefined ? { triedAt: mp.triedAt } : {}) };
          mp.episode += 1;
          mp.state = 'pending';
          mp.ref = undefined;
          mp.tried = undefined;
          mp.sentAs = undefined;
          mp.triedAt = undefined;
          await save();
        }
      }
      const r = mp.replaced;
      if (r === undefined || desired.state !== 'live') return undefined;
      // Its request may still land: a removal now would come before it. Taken back once it settled.
      if (r.triedAt !== undefined && Date.now() < r.triedAt + this.deps.intents.settledAfterMs) return r.triedAt + this.deps.intents.settledAfterMs;
      // Unless another pinned product of the show still holds that id there (takeBack's rule).
      await this.takeBack(job, mirror, adapter, remote, productId, undefined, { ...mp, state: 'pinned', episode: r.episode, ref: r.ref, sentAs: r.sentAs, replaced: undefined });
      mp.replaced = undefined;
      mp.at = new Date().toISOString();
      await save();
    }
  }

  private async syncPins(
    job: OwnedJob,
    desired: DesiredShow,
    mirror: MirrorDoc,
    adapter: TargetAdapter,
    pinDelayMs: number,
    save: (progress?: boolean) => Promise<void>,
  ): Promise<number | undefined> {
    const remote = mirror.remote;
    if (!remote) return undefined;
    let wakeAt: number | undefined;
    const ids = [...new Set([...desired.pinUniverse, ...Object.keys(mirror.pins)])].sort();
    for (const productId of ids) {
      const want = desired.state === 'live' && desired.pinned.has(productId);
      const existing = mirror.pins[productId];
      if (!existing && !want) continue; // never pinned here and not wanted now: nothing to report
      const mp: MirrorPin = existing ?? { state: 'pending', episode: 1, linkUrl: undefined, ref: undefined, at: undefined };
      mirror.pins[productId] = mp;
      const product = desired.products.get(productId);
      if (want && mp.unpinTriedAt !== undefined && (mp.state === 'pinned' || mp.state === 'pending')) {
        // Pinned again while a take-back of it may have reached the platform (its run timed out or
        // died on the unpin): the platform may no longer hold it, and the request may still land.
        // The take-back is finished (a retry of its step waits until that request can no longer
        // land; one that completed is not sent again), then it is pinned as a new episode below. It
        // counted as still pinned before, and the platform ended up without it.
        await this.takeBack(job, mirror, adapter, remote, productId, product, mp, save);
        unpinned(mp);
        await save();
      }
      if (mp.replaced !== undefined || (want && mp.state !== 'unpinned' && mp.state !== 'failed')) {
        const wait = await this.replaceSent(job, desired, mirror, adapter, remote, productId, product, mp, save);
        if (wait !== undefined) {
          wakeAt = Math.min(wakeAt ?? Infinity, wait);
          continue;
        }
      }
      if (want && mp.state !== 'pinned') {
        if (!product) continue; // pinned before the partner told us what the product is: wait for it
        // The platform refused this product as it is: not asked again until the product changed, unless
        // the refusal is one the seller can mend there (a listing not made yet) and its wait is over.
        // (The sweep enqueues this mirror once it is: SweepService. Live and wanted: `want`.)
        // (Its digest only where a refusal is on the pin: the usual pin has none, and needs it only if refused now.)
        const attempt = mp.refused !== undefined ? pinAttemptOf(productId, product) : undefined;
        const same = mp.state === 'failed' && mp.refused !== undefined && mp.refused.as === attempt;
        if (same && !refusedRetryDue(mp.refused, Date.now())) continue;
        const refusedBefore = mp.state === 'failed' && mp.refused !== undefined;
        // The last refusal stays on the pin while the product is the same (also a `pending` one, whose
        // attempt ended without an answer: a 5xx, a timeout, a crash): its count sets the next wait, and
        // the partner is still told `failed` with its reason (reportedPinState). A product changed since
        // starts over.
        if (mp.refused !== undefined && mp.refused.as !== attempt) mp.refused = undefined;
        if (mp.state === 'unpinned' || refusedBefore) {
          // A new episode: pinned again after it was taken back, a refused product that changed since,
          // or one due for another attempt (the refused attempt made nothing, and its intent scope —
          // its refused step left `started`, or done where the adapter recorded the refusal, as
          // Bambuser's highlight — is left behind: the new episode's own scope sends it again).
          mp.episode += 1;
          mp.state = 'pending';
          // A refused pin asked again as it was: its product is on screen already (its pin delay not again).
          mp.dueAt = same ? Date.now() : undefined;
          await save();
        }
        // The tracked link exists from the moment the mirror lists the pin (also while a pin delay
        // holds it back), so the linkUrl the show view and mirror.updated report always works.
        const link = { partnerId: job.partnerId, showId: job.showId, targetId: job.targetId, platform: adapter.platform, productId, url: product.url };
        let ensured = false;
        if (mp.linkUrl === undefined && pinDelayMs > 0) {
          mp.linkUrl = await this.deps.links.ensure(link);
          ensured = true;
        }
        if (pinDelayMs > 0) {
          // Viewers are seconds behind the live video: show the pin when they see the product.
          if (mp.dueAt === undefined) {
            mp.dueAt = Date.now() + pinDelayMs;
            await save(false);
          }
          if (Date.now() < mp.dueAt) {
            wakeAt = Math.min(wakeAt ?? Infinity, mp.dueAt);
            continue;
          }
        }
        // Writes the link (or refreshes its fallback URL: a click goes to the product's current URL
        // anyway), unless this run has just written it. The write goes out with the pin step's
        // intent start (same event-loop turn: one socket write, one round trip) and the step sends
        // nothing before it is done (`before`); every adapter posts the link inside a step. A failed
        // write fails the run (a Redis error, never a TargetError: the mirror is not saved with it).
        let linkUrl = mp.linkUrl;
        let written: (() => Promise<void>) | undefined;
        if (!ensured || linkUrl === undefined) {
          const sent = this.deps.links.ensureSent(link);
          // Marked handled at once (the step may return before it awaits the write); awaited, it
          // still rejects with the write's error.
          sent.written.catch(() => undefined);
          written = () => sent.written;
          linkUrl = mp.linkUrl = sent.url;
        }
        let res: Awaited<ReturnType<TargetAdapter['pin']>> | undefined;
        let refused: PinRefusedError | undefined;
        // Recorded before anything is sent (write-ahead) where a pin can be taken back: a run that dies
        // during the call (a crash, a stall that lost its lease) saves nothing after it, and a pin it
        // sent that the partner then took back was forgotten as never sent and stayed on the platform.
        // (A later attempt of the same episode too: when it began bounds how long its request may still
        // land.) Where nothing can be taken back (YouTube, TikTok, Facebook comments) there is nothing
        // to record it for: the pin run keeps its single save (the error's save still records it).
        mp.tried = true;
        mp.sentAs = platformIdOf(productId, product);
        mp.triedAt = Date.now();
        if ((await capabilitiesOf(adapter)).unpin) await save(false);
        try {
          res = await adapter.pin(
            remote,
            { productId, title: product.title, price: product.price, linkUrl, platformProductId: mp.sentAs },
            // The pin's done record is written by the run's next mirror save, in the same Lua step (below).
            this.op(job, mirror, `pin:${productId}:${mp.episode}`, { deferComplete: true, ...(written ? { before: written } : {}) }),
          );
        } catch (err) {
          // The platform refused this product (its id, title or price), not the account or the show: the
          // pin fails, the mirror goes on. It failed as a whole before, and one product with an sku the
          // platform cannot take stopped every other pin of the show, and its end, from being mirrored.
          if (!(err instanceof PinRefusedError)) throw err;
          refused = err;
        } finally {
          // Settled (or about to be) by now; a failed write is the run's error, whatever the pin did.
          if (written) await written();
        }
        if (refused !== undefined || res === undefined) {
          mp.state = 'failed';
          // Mendable on the platform (the seller may make the listing during the show): asked again
          // after a wait that doubles at each refusal, for as long as the show is live and the pin wanted.
          // `tries`: the refusals of this product as it is so far (kept across the attempts), so each waits longer.
          const n = (mp.refused?.retry?.tries ?? 0) + 1;
          const retry = refused?.mendable ? { tries: n, at: Date.now() + refusedRetryMs(n, this.deps.refusedRetryBaseMs ?? 30_000) } : undefined;
          const error = `${adapter.platform}: ${refused?.message ?? 'refused'}`;
          // Refused again for the same reason: the episode first reported stays (mirror.updated's key).
          const episode = mp.refused?.error === error ? (mp.refused.episode ?? mp.episode) : mp.episode;
          mp.refused = { as: attempt ?? pinAttemptOf(productId, product), error, ...(retry ? { retry, episode } : {}) };
          mp.at = new Date().toISOString();
          mp.tried = undefined;
          mp.sentAs = undefined;
          mp.triedAt = undefined;
          this.deps.log.warn({ partnerId: job.partnerId, showId: job.showId, targetId: job.targetId, productId, err: { message: refused?.message, reason: refused?.reason } }, 'platform refused a pin; the pin failed, the mirror goes on');
          await save();
          continue;
        }
        mp.state = 'pinned';
        mp.refused = undefined;
        mp.ref = res.ref;
        mp.at = new Date().toISOString();
        // `sentAs` stays: what the platform holds the pin as (a later sku change is pinned again: replaceSent).
        mp.tried = undefined;
        mp.triedAt = undefined;
        // The step's done record (deferred) rides on the next save. Where every deferred step has a
        // recovery lookup, that is the run's last save (one Lua step fewer per pin): a crash before it
        // leaves the step `started`, and the run that takes over looks the pin up (after the attempt
        // settled) instead of posting it again, as after a crash during the call. A step without a
        // lookup is recorded done at once by this save, so a crash never makes it post twice.
        if (job.lease.pending?.every((p) => p.recoverable)) mirror.retries = 0;
        else await save();
      } else if (!want && mp.state === 'pending' && mp.tried && desired.state === 'live') {
        // Its request may still be on its way (a timeout a moment ago): an unpin now would come before
        // the pin and change nothing, and the pin would land after it. Take it back once it settled.
        const settled = (mp.triedAt ?? 0) + this.deps.intents.settledAfterMs;
        if (Date.now() < settled) {
          wakeAt = Math.min(wakeAt ?? Infinity, settled);
          continue;
        }
        // Taken back while an attempt at it had an unknown outcome (it timed out: the platform may have
        // acted on it late): take it back there as well. An unpin of a pin that never landed changes
        // nothing (Whatnot removes what is not in the lineup; Bambuser finds no highlight of ours).
        await this.takeBack(job, mirror, adapter, remote, productId, product, mp, save);
        // Kept as unpinned (not forgotten): a re-pin is a new episode, so an earlier episode's lookup cannot adopt it.
        unpinned(mp);
        await save();
      } else if (!want && mp.state === 'pending') {
        // Taken back before it reached the platform (pin delay, unknown product): nothing to undo.
        if (mp.episode === 1) delete mirror.pins[productId];
        else mp.state = 'unpinned';
        mp.dueAt = undefined;
        mp.refused = undefined;
        await save();
      } else if (!want && mp.state === 'failed' && mp.refused !== undefined && desired.state === 'live') {
        // Taken back after the platform refused it: nothing of it is on the platform. Unpinned (not
        // forgotten): pinned again, it is a new episode and is tried again.
        mp.state = 'unpinned';
        mp.refused = undefined;
        mp.at = new Date().toISOString();
        await save();
      } else if (!want && mp.state === 'pinned' && desired.state === 'live') {
        // Whether this target can take a pin back may depend on its account (resolved by the adapter).
        await this.takeBack(job, mirror, adapter, remote, productId, product, mp, save);
        unpinned(mp);
        await save();
      }
    }
    return wakeAt;
  }
}


/** The product id a pin of the product sends the platform (PinSpec.platformProductId): its sku, else the partner's id. */
/**
 * Whether what pin `mp` (of `productId`) made on the platform is still held by another pinned product
 * of the mirror (takeBack's rule: the last pin holding it takes it down). Its ref when it has one (the
 * same ref: Whatnot's lineup product id); without a ref (its pin's outcome is unknown: a timeout) the
 * platform product id it was sent as: an unpin without a ref takes down what the platform features
 * under that id (Facebook Live Shopping looks the featured item up by its SKU), which is another pinned
 * product's when the partner gave both one sku; its ref (`lsp:<item>`) never equals a SKU, so comparing
 * refs alone let the take-back of a timed-out pin remove another product's live pin. Only where a pin
 * names its product by that id (`namesProduct`: pinNamesProduct): a Bambuser highlight is found by the
 * product's own link, another product's highlight is another thing there.
 */
export function heldByAnotherPin(pins: Record<string, MirrorPin>, productId: string, mp: Pick<MirrorPin, 'ref' | 'sentAs'>, namesProduct: boolean): boolean {
  const made = mp.ref ?? mp.sentAs;
  if (made === undefined) return false;
  const bySentAs = namesProduct && mp.ref === undefined && mp.sentAs !== undefined;
  return Object.entries(pins).some(([id, other]) => id !== productId && other.state === 'pinned' && (other.ref === made || (bySentAs && other.sentAs === mp.sentAs)));
}

export function platformIdOf(productId: string, product: Product): string {
  return product.sku ?? productId;
}

/** A digest of what a pin sends the platform about its product (the id sent, title, price): a refused pin waits for it to change. */
export function pinAttemptOf(productId: string, product: Product): string {
  return short(JSON.stringify([platformIdOf(productId, product), product.title, product.price.amount, product.price.currency, product.url]));
}

/**
 * What an unpin is told about its product. One the show no longer lists (the partner dropped a pinned,
 * sold-out product from the snapshot) is still taken back: the adapters unpin by the pin's own record
 * (its ref, its tracked link, the product id), so title and price are placeholders then. Skipping it
 * left the product pinned on the platform while the mirror said unpinned.
 */
function unpinSpec(productId: string, product: Product | undefined, mp: MirrorPin): PinSpec {
  const linkUrl = mp.linkUrl ?? '';
  // The id the pin was sent with, when recorded: the product's sku may have changed since.
  if (product) return { productId, title: product.title, price: product.price, linkUrl, platformProductId: mp.sentAs ?? platformIdOf(productId, product) };
  // The id an unrecorded attempt sent (a product's sku), else the pin's ref or the partner's id.
  return { productId, title: productId, price: { amount: 0, currency: 'XXX' }, linkUrl, platformProductId: mp.sentAs ?? mp.ref ?? productId };
}

/**
 * A mirror that is over (ended or cancelled: its platform show ended, was ended or was taken down, or
 * the show ended before one was made). The partner's show may still become scheduled or live again: a
 * `show.live` with a later `occurredAt` than the `show.ended` wins (contract §3). No platform starts an
 * ended broadcast again (YouTube's `complete` is final, so is Facebook's `end_live_video`; Whatnot,
 * TikTok and Bambuser shows that ended stay ended), so nothing more can be mirrored to that show: the
 * mirror is `action_required` with what the operator can do (link a new platform show), and the pins
 * the show wants are `failed`, not `pending` for good. Once the show is over again the mirror is back
 * to the state it ended in. No platform call either way; for a show that stays over this changes nothing.
 */
function stayOver(job: SyncJob, desired: DesiredShow, mirror: MirrorDoc, platform: string): void {
  const over = mirror.over ?? (mirror.state === 'cancelled' ? 'cancelled' : 'ended');
  if (desired.state === 'ended' || desired.state === 'cancelled') {
    mirror.state = over;
    mirror.over = undefined;
    return;
  }
  mirror.over = over;
  // Said once, when the mirror became action_required (here, or overOnPlatform: the show over on the
  // platform while the partner's is live), and kept by the runs after it.
  if (mirror.state !== 'action_required') {
    const what = mirror.remote
      ? `its ${platform} show ${mirror.remote.externalId} ${over === 'ended' ? 'has ended' : 'was cancelled'} and ${platform} cannot start a show again once it is over`
      : `the mirror ${over === 'ended' ? 'ended' : 'was cancelled'} before a ${platform} show was made for it`;
    mirror.lastError = `the show is ${desired.state} again after it ${over === 'ended' ? 'ended' : 'was cancelled'}, but ${what}: ${relinkAdvice(job, platform, over, ' again')}`;
  }
  mirror.state = 'action_required';
  const at = new Date().toISOString();
  for (const productId of desired.pinned) {
    const mp = mirror.pins[productId];
    if (!mp) mirror.pins[productId] = { state: 'failed', episode: 1, linkUrl: undefined, ref: undefined, at };
    else if (mp.state !== 'failed') {
      mp.state = 'failed';
      mp.at = at;
    }
    // Failed because the show is over now, not for the platform's refusal of the product.
    if (mp) mp.refused = undefined;
  }
  for (const [productId, mp] of Object.entries(mirror.pins)) {
    if (mp.state !== 'failed' || desired.pinned.has(productId)) continue;
    // No longer wanted: a pin that was on the platform before the show ended is `unpinned` as it was; one that never was is dropped.
    if (mp.ref === undefined && mp.linkUrl === undefined) delete mirror.pins[productId];
    else {
      mp.state = 'unpinned';
      mp.at = at;
    }
  }
}

/** What the operator can do about a mirror over while the show is live or scheduled (stayOver). */
function relinkAdvice(job: SyncJob, platform: string, over: 'ended' | 'cancelled', again: '' | ' again'): string {
  return (
    `nothing more is mirrored to ${platform} and the show's pins there are failed. To mirror it again, create a new show in the ${platform} app and link it with ` +
    `PUT /v1/partners/${pathId(job.partnerId)}/shows/${pathId(job.showId)}/mirrors/${pathId(job.targetId)} {"externalId": "<the new ${platform} show id>"}; ` +
    `once the show is over${again} the mirror is ${over}${again}`
  );
}

/**
 * The mirror's platform show is over on the platform (ShowOverError: its owner ended or cancelled it
 * there) while the partner's show is live. The mirror is over as if it had ended the show itself
 * (stayOver: `action_required` with what the operator can do, the show's pins `failed`, no platform
 * call), and `ended` (or `cancelled`) once the partner's show is over. It was `failed` before, for a
 * pin's 409, and a failed mirror is never synced again: not even to `ended` when the show ended.
 */
function overOnPlatform(job: SyncJob, desired: DesiredShow, mirror: MirrorDoc, platform: string, err: ShowOverError): void {
  for (const mp of Object.values(mirror.pins)) {
    // The attempt that found the show over made nothing: nothing of it may still land.
    mp.tried = undefined;
    mp.sentAs = undefined;
    mp.triedAt = undefined;
    mp.dueAt = undefined;
    mp.replaced = undefined;
  }
  mirror.over = err.over;
  mirror.state = 'action_required';
  mirror.lastError = `${platform}: ${err.message} while the show is ${desired.state}: ${relinkAdvice(job, platform, err.over, '')}`;
  stayOver(job, desired, mirror, platform);
}

/** The show is over: nothing stays pinned on it (the platform shows no live pin after the end). */
function unpinAll(mirror: MirrorDoc): void {
  const at = new Date().toISOString();
  for (const mp of Object.values(mirror.pins)) {
    if (mp.state !== 'pinned' && mp.state !== 'pending') continue;
    unpinned(mp, at);
    mp.replaced = undefined;
  }
}

/** A pin taken back (or that never reached the platform): nothing of its episode is sent or may still land. */
function unpinned(mp: MirrorPin, at = new Date().toISOString()): void {
  mp.state = 'unpinned';
  mp.at = at;
  mp.dueAt = undefined;
  mp.tried = undefined;
  mp.sentAs = undefined;
  mp.triedAt = undefined;
  mp.unpinTriedAt = undefined;
  mp.refused = undefined;
}
