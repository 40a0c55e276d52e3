/** A show's mirror on one target: what the platform has been driven to (observed state). */
import { sha256 } from '../lib/crypto.js';
import { idRecord, type IdRecord } from '../lib/id-record.js';
import type { Platform, RemoteShow } from '../targets/target.adapter.js';

export const MIRROR_STATES = ['pending', 'provisioning', 'ready', 'live', 'ended', 'cancelled', 'failed', 'action_required'] as const;
export type MirrorState = (typeof MIRROR_STATES)[number];

export const PIN_STATES = ['pending', 'pinned', 'unpinned', 'failed'] as const;
export type PinState = (typeof PIN_STATES)[number];

export interface MirrorPin {
  state: PinState;
  /** Increments each time the product goes from not-pinned to pinned on the mirror (intent scope). */
  episode: number;
  linkUrl: string | undefined;
  ref: string | undefined;
  at: string | undefined;
  /** Pin delay: not mirrored before this time (epoch ms), set when the pin is first seen. */
  dueAt?: number;
  /**
   * A pin request of this episode may have reached the platform though the pin is still `pending`:
   * set before the call, saved with the error that ended the attempt (a timeout: the platform may act
   * on it), cleared once the pin is recorded or taken back. A pending pin the partner then takes back
   * is taken back on the platform too, not dropped as never sent.
   */
  tried?: boolean;
  /**
   * The platform product id the pin was sent with (the product's sku, else its id): with `tried`, what
   * that attempt sent; once `pinned`, what the platform holds the pin as (kept with it). Taking such a
   * pin back after the partner dropped the product from the show (no sku to read any more) names the
   * product the platform may have pinned (Whatnot removes it from the lineup by that id), and a product
   * whose id as sent changed since (a new sku) is pinned again under its new id (`replaced`). A pinned
   * record without it (written before it was kept) counts as sent with the product's current id.
   */
  sentAs?: string;
  /**
   * An earlier episode of this pin that the platform holds (or, `triedAt`: may hold, its attempt's
   * outcome unknown) under another platform product id than the product has now: the partner changed
   * the product's sku while it was pinned. Taken back on the platform (once that attempt settled)
   * before this episode, which sends the new id, is pinned; written before either, so a crash between
   * them neither leaves the old id on the platform nor the new one unsent.
   */
  replaced?: { episode: number; ref: string | undefined; sentAs: string; triedAt?: number };
  /** With `tried`: when the last attempt began (epoch ms). Until it settled, a take-back waits (the request may land after the unpin). */
  triedAt?: number;
  /**
   * A take-back (unpin) of this episode may have reached the platform: set (epoch ms) and saved before
   * the unpin is sent, cleared once the pin is recorded `unpinned`. Its run may have ended without
   * knowing the outcome (a timeout, a crash) with the pin still `pinned` here: pinned again by the
   * partner, it is taken back first (the retried step waits until that request can no longer land),
   * then pinned as a new episode, instead of counting as still on the platform.
   */
  unpinTriedAt?: number;
  /**
   * A `failed` pin the platform refused (PinRefusedError): what the platform said, and a digest of the
   * product as it was sent (`as`: pinAttemptOf). Not tried again while the product is the same; a
   * change of it, or the partner taking the pin back and pinning it again, starts a new episode.
   * `retry`: a refusal the seller can mend on the platform (PinRefusedError.mendable: a listing not made
   * yet) is tried again, as a new episode, from `at` (epoch ms) while the show is live and the pin
   * wanted; `tries` counts the refusals of this product as it is, and sets the next wait
   * (refusedRetryMs: the base, doubled each time, capped at 5 min). The sweep enqueues the sync once
   * `at` has passed (SweepService), so no delayed job holds the mirror's other events meanwhile.
   * Kept across such an attempt (the pin `pending` for its length, reported `failed` with this reason:
   * reportedPinState), so a transient error during it (a 5xx, a timeout, a crash) neither starts the
   * count again nor tells the partner `pending`; dropped once the pin lands, its product changes or it
   * is taken back. `episode`: the pin's episode when a refusal for this reason was first recorded,
   * carried while the retries are refused for the same reason (mirror.updated's key: reportedEpisode).
   */
  refused?: { as: string; error: string; retry?: { tries: number; at: number }; episode?: number };
}

/**
 * The pin's state as the show view and mirror.updated give it: an attempt at a refused pin (stored
 * `pending` for the length of the call, its last refusal kept) is still `failed`, with that refusal's
 * reason, until it lands or is refused for another reason.
 */
export function reportedPinState(p: Pick<MirrorPin, 'state' | 'refused'>): PinState {
  return p.state === 'pending' && p.refused !== undefined ? 'failed' : p.state;
}

/**
 * The pin as the show view and mirror.updated give it: its reported state (reportedPinState) and, for a
 * `failed` pin the platform refused, the refusal's reason (refusedPinReason).
 */
export function reportedPin(p: Pick<MirrorPin, 'state' | 'refused'>): { state: PinState; reason?: string } {
  const state = reportedPinState(p);
  return state === 'failed' && p.refused ? { state, reason: refusedPinReason(p.refused) } : { state };
}

/** A refused pin that is asked again (its last refusal a mendable one): `failed` or an attempt at it. */
function refusedRetrying(p: MirrorPin): p is MirrorPin & { refused: NonNullable<MirrorPin['refused']> } {
  return p.refused?.retry !== undefined && (p.state === 'failed' || p.state === 'pending');
}

/**
 * The pin's episode as mirror.updated's idempotency key counts it: a refused pin asked again keeps the
 * one of the refusal first reported (each attempt is a new episode, and the partner is told nothing new).
 */
export function reportedEpisode(p: MirrorPin): number {
  return refusedRetrying(p) ? (p.refused.episode ?? p.episode) : p.episode;
}

/**
 * The mirror's pins as the fingerprint of what the partner was last told covers them (SyncService.tell):
 * a pin as stored, except a refused pin asked again, which is only what the partner sees of it (`failed`,
 * its link, the refusal's reason, the episode first reported). Each attempt at it changes its episode,
 * times and count, and each made a mirror.updated (and a timeline entry) saying nothing new, every few
 * minutes for the whole show. Every other pin as stored, so the fingerprint a mirror was last told with
 * stays the same across an upgrade (nothing is told again).
 */
export function reportedPins(pins: IdRecord<MirrorPin>): IdRecord<unknown> {
  const out = idRecord<unknown>();
  for (const [productId, p] of Object.entries(pins)) {
    out[productId] = refusedRetrying(p) ? { state: 'failed', episode: reportedEpisode(p), linkUrl: p.linkUrl, refused: { as: p.refused.as, error: p.refused.error } } : p;
  }
  return out;
}

/** The longest wait between two attempts at a refused pin the seller can mend (refusedRetryMs). */
export const REFUSED_RETRY_CAP_MS = 5 * 60_000;

/** The wait after the `tries`-th refusal of a mendable pin: `baseMs` × 2^(tries−1), at most 5 min (REFUSED_RETRY_CAP_MS). */
export function refusedRetryMs(tries: number, baseMs: number): number {
  return Math.min(REFUSED_RETRY_CAP_MS, baseMs * 2 ** Math.max(0, tries - 1));
}

/**
 * Whether a refused pin is due for another attempt at `now`: a mendable refusal (`retry`) whose wait
 * is over. Whether the show is live and the pin wanted is the caller's to check.
 */
export function refusedRetryDue(refused: MirrorPin['refused'], now: number): boolean {
  return refused?.retry !== undefined && now >= refused.retry.at;
}

/** What a failed pin's view (and mirror.updated) says about a refused pin: the platform's reason and what retries it. */
export function refusedPinReason(refused: Pick<NonNullable<MirrorPin['refused']>, 'error' | 'retry'>): string {
  // Stays the same from one attempt to the next (no count, no time): a retry refused again changes
  // nothing the partner is told, so it sends no mirror.updated.
  if (refused.retry !== undefined) {
    return `${refused.error}; while the show is live the pin is tried again, at most ${REFUSED_RETRY_CAP_MS / 60_000} min apart (the seller may make the product there), and when the partner changes the product (product.updated) or pins it again, or an operator resyncs the mirror`;
  }
  return `${refused.error}; the pin is tried again when the partner changes the product (product.updated) or pins it again, or an operator resyncs the mirror`;
}

export interface MirrorDoc {
  targetId: string;
  platform: Platform;
  state: MirrorState;
  remote: RemoteShow | undefined;
  /** What was last written to the remote show (to detect title/schedule changes). */
  applied: { title: string; description: string | undefined; scheduledAt: string } | undefined;
  /**
   * How many updates (updateShow) were written to the remote show (absent: none yet). It names the
   * next update's intent scope with its spec: an update's recorded steps (YouTube's read of the
   * broadcast, kept so that a run the limiter refuses the write resumes with the write) belong to that
   * one update, never to a later one of the same spec (a title changed back).
   */
  updates?: number;
  /**
   * Set (to `updates`) before an update is sent, cleared when it completes. A run that finds the spec
   * back at `applied` while it is set counts that dropped attempt as an update: its recorded read (of
   * a broadcast upcoming then) is never reused by a later update of that spec sent to a live one,
   * and what was applied is sent again (the dropped write may have reached the platform unanswered).
   */
  updating?: number;
  /**
   * While the remote show is being created: a digest of the spec the create attempts asked for, or
   * '*' when they asked for different ones (the title changed between a timed-out attempt and its
   * retry). The show a retry adopts then carries an earlier spec, so `applied` is left unknown.
   */
  creating?: string;
  /** Keyed by the partner's product id: always a prototype-less record (src/lib/id-record.ts). */
  pins: IdRecord<MirrorPin>;
  lastError: string | null;
  /** Desired-state version this mirror was last brought up to. */
  syncedVersion: number;
  /** Consecutive retryable failures (reset on progress). */
  retries: number;
  /**
   * The last run ended in an expected wait (a not-yet state such as Facebook's 7-day schedule window,
   * not a failure or a rate limit): the desired-state version that run saw. The sweep brings its
   * delayed job forward once the show changed since (a newer version), since the change (a new
   * schedule, the show going live) may end the wait; not before, or every sweep would run it again.
   * (`true`: written by an earlier version, which did not keep the version.)
   */
  waiting?: number | boolean;
  /**
   * The mirror failed because a stored secret no configured key opens (SECRET_UNREADABLE): what the
   * run saw then. The sweep does not run it again while nothing of that changed (the show's version,
   * the target's sealed credentials, the process's keys: SecretBox.keyring); once something did, a run
   * that opens everything puts the mirror back in the state it failed from (`was`), as if the failed
   * runs never happened. Not a part of any view: syncedVersion keeps its meaning. A mirror that had
   * failed for another reason (`was` 'failed') keeps that reason in `lastError`, given back then.
   */
  unreadable?: { was: MirrorState; version: number; credentials: string; keyring: string; lastError?: string | null };
  /** Bumped by operator actions (relink, retry) so that intents of an earlier attempt do not apply. */
  generation: number;
  /**
   * The `incarnation` of the target this mirror belongs to (TargetRecord.incarnation; absent for a
   * target created before incarnations, and its mirrors). A target deleted and created again with the
   * same id is another incarnation: the deleted one's mirror record is not its (ownMirror).
   */
  incarnation?: string;
  wentLive: boolean;
  /**
   * The mirror was over (the state it reached: ended or cancelled) when the partner's show became
   * scheduled or live again (a later `show.live` than its `show.ended` wins, contract §3). No platform
   * starts a show again once it ended or was taken down, so the mirror is `action_required` meanwhile
   * and makes no platform call; it is back to this state once the show is over again. Cleared by a
   * link to another platform show (PUT …/mirrors/{targetId}).
   */
  over?: 'ended' | 'cancelled';
  /**
   * Its platform show was linked by an operator after the show was over and only recorded (read,
   * indexed; nothing changed or ended on it). Should the show be scheduled or live again, that platform
   * show is mirrored like any linked one instead of being taken as over. Cleared then, and by a link to
   * another platform show.
   */
  linkedAfterEnd?: boolean;
  /**
   * The RTMP ingest an operator gave when linking a show made by hand (TikTok, Whatnot, Bambuser: their
   * APIs give none): where the relay pushes. The stream key is a credential, sealed with SECRETS_KEY.
   */
  operatorIngest?: { url: string; streamKeySealed: string };
  /** Bumped by every save; a save that read an older revision is refused (compare-and-set). */
  rev?: number;
  /** Fingerprint of the state last reported to the partner (mirror.updated); survives retries. */
  notified?: string;
  updatedAt: string;
  /** When the mirror entered its current `state` (set by the save that changed it): "time in state". */
  since?: { state: MirrorState; at: string };
}

/**
 * Ingests read from Redis whose sealed stream key no configured key opens (SECRETS_KEY changed or
 * SECRETS_KEY_PREVIOUS removed without rotation): ShowRepository.parse gives such a mirror an ingest
 * object registered here, whose `streamKey` throws SecretUnreadableError when read (a reader that does
 * not ask first cannot push to, or show, an empty key), and which a save writes back with its sealed
 * value as it was: restoring the key brings it back. The same object is kept by a spread of `remote`.
 */
const unreadableIngests = new WeakSet<object>();

/** Marks `ingest` (a fresh object) as one whose stream key cannot be opened. */
export function markIngestUnreadable(ingest: object): void {
  unreadableIngests.add(ingest);
}

/** Whether the platform-given stream key of this mirror's ingest cannot be opened (see markIngestUnreadable). */
export function ingestUnreadable(m: MirrorDoc): boolean {
  const ingest = m.remote?.ingest;
  return ingest !== undefined && unreadableIngests.has(ingest);
}

export function newMirror(targetId: string, platform: Platform, incarnation?: string): MirrorDoc {
  return {
    targetId,
    platform,
    ...(incarnation !== undefined ? { incarnation } : {}),
    state: 'pending',
    remote: undefined,
    applied: undefined,
    pins: idRecord(),
    lastError: null,
    syncedVersion: 0,
    retries: 0,
    generation: 0,
    wentLive: false,
    updatedAt: new Date().toISOString(),
  };
}

/** The target a mirror is read for: its id, platform, incarnation and creation time (a TargetRecord is one). */
export interface MirrorOwner {
  id: string;
  platform: Platform;
  incarnation?: string | undefined;
  createdAt?: string | undefined;
}

/**
 * The stored mirror as the target `owner` sees it. Mirror records are kept per (show, target id) and
 * outlive the target's delete; one written for an earlier target of the same id (another incarnation:
 * deleted, created again) is not this target's: read as a new mirror (no remote show, no error, no
 * pins), which keeps the stored record's `rev` (its first save replaces the record, compare-and-set as
 * always) and takes the next `generation`, so that no intent of the earlier target's applies to it.
 * A record without an incarnation (written before incarnations existed, by a target that had none, or
 * by a version that did not stamp it) is the target's when the target has none either, or when it was
 * written at or after the target was created (a deleted target's records are older than the new one:
 * a sync run's save is refused once the target is of another incarnation than the record it writes,
 * ShowRepository's target guard); it is stamped then, and its next save keeps the stamp. The times
 * compared are two processes' clocks (the writer's `updatedAt`, the API's `createdAt`): docs/architecture.md.
 */
export function ownMirror(stored: MirrorDoc | null, owner: MirrorOwner): MirrorDoc | null {
  if (stored === null || stored.incarnation === owner.incarnation) return stored;
  if (stored.incarnation === undefined && owner.incarnation !== undefined && owner.createdAt !== undefined && stored.updatedAt >= owner.createdAt) {
    stored.incarnation = owner.incarnation;
    return stored;
  }
  const fresh = newMirror(owner.id, owner.platform, owner.incarnation);
  fresh.generation = stored.generation + 1;
  if (stored.rev !== undefined) fresh.rev = stored.rev;
  return fresh;
}

/** What a failed mirror's `unreadable` is compared with: the show's version, the target's sealed credentials, the process's keys. */
export function unreadableMark(was: MirrorState, version: number, credentialsSealed: string, keyring: string, lastError?: string | null): NonNullable<MirrorDoc['unreadable']> {
  const mark: NonNullable<MirrorDoc['unreadable']> = { was, version, credentials: sha256(credentialsSealed, 'base64url').slice(0, 22), keyring };
  if (lastError !== undefined) mark.lastError = lastError;
  return mark;
}

/**
 * A mirror failed on a secret no key opened, and nothing that could change that has changed since
 * (see MirrorDoc.unreadable): running it again would only fail it (and log) again.
 */
export function stillUnreadable(m: MirrorDoc, version: number, credentialsSealed: string, keyring: string): boolean {
  const u = m.unreadable;
  if (m.state !== 'failed' || u === undefined) return false;
  const now = unreadableMark(u.was, version, credentialsSealed, keyring);
  return u.version >= now.version && u.credentials === now.credentials && u.keyring === now.keyring;
}

/** States after which the worker does nothing until an operator acts or the show changes. */
export function isTerminal(state: MirrorState): boolean {
  return state === 'ended' || state === 'cancelled' || state === 'failed';
}

/**
 * The mirror may hold a show on the platform that only its target's credentials can end (a target
 * DELETE without ?force refuses then): a show it made or was linked to (`remote`), or one a create may
 * have made: a create in flight (`provisioning`) or one whose outcome is unknown (`creating`, kept by a
 * mirror that failed or needed action during its create, also once an operator retried it: `pending`),
 * while the mirror is not over.
 */
export function mayHoldPlatformShow(m: MirrorDoc): boolean {
  return !isTerminal(m.state) && !m.over && (m.remote !== undefined || m.state === 'provisioning' || m.creating !== undefined);
}

/** A stored mirror (JSON): its pins as a prototype-less record, whatever product ids they carry. */
export function parseMirror(raw: string): MirrorDoc {
  const m = JSON.parse(raw) as MirrorDoc;
  m.pins = idRecord(m.pins);
  return m;
}

/** A cancelled or ended mirror whose withdraw left a clean-up for a later run (SyncService.cleanUp runs it then). */
export function cleanupPending(m: Pick<MirrorDoc, 'state' | 'remote'>): boolean {
  return (m.state === 'cancelled' || m.state === 'ended') && m.remote?.data['cleanup'] !== undefined;
}
