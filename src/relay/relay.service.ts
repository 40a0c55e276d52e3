/**
 * The `relay` role (issue 10 items 2–5): for every live show this process owns (a Redis lease per
 * show, renewed while alive, fenced before any ffmpeg starts), one supervised ffmpeg per mirror
 * that has an ingest destination, reading the show's stream from the edge that received it (push)
 * or that this process pulls `sourceUrl` into (pull). Relaying stops when the show ends or is
 * cancelled, when the lease is lost, and on shutdown; no ffmpeg outlives its show.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { DesiredShow } from '../domain/desired-state.js';
import { ingestUnreadable, type MirrorDoc } from '../domain/mirror.js';
import { SecretUnreadableError, undefinedIfUnreadable, type SecretBox } from '../lib/crypto.js';
import type { MirrorViewContext } from '../outbound/mirror-updated.js';
import type { DestinationGuard } from '../lib/destination-guard.js';
import type { HttpTimeouts } from '../lib/connection-limits.js';
import { connectionErrorSummary, isRedisUnreachable, RedisOutageLog } from '../lib/redis-outage-log.js';
import type { PartnerRepository, TargetRecord } from '../store/partner.repository.js';
import { UNOWNED_ERROR, type RelayRepository, type RelaySource, type RelayStatus } from '../store/relay.repository.js';
import type { ShowRepository } from '../store/show.repository.js';
import { DestinationSupervisor, InputPeers, STOP_GRACE_MS, type DestinationSpec } from './destination.supervisor.js';
import { HlsProxy, type HlsProxySession } from './hls.proxy.js';
import { EDGE_PLAY_LABEL, EDGE_STALL_NOTICE_MS, RELAY_CODECS, edgeCheckMs, edgePlayToken } from './ingest.edge.js';
import { maskHostIn, maskSecrets, maskUrl } from './mask.js';
import { StartGate } from './start-gate.js';
import { armedShows } from './armed-readers.js';

export interface RelayServiceDeps {
  relay: RelayRepository;
  shows: ShowRepository;
  partners: PartnerRepository;
  box: SecretBox;
  destinations: DestinationGuard;
  ffmpeg: string;
  log: Logger;
  leaseMs: number;
  pollMs: number;
  stallMs: number;
  /** Start-up allowance before a run's first byte (RELAY_START_TIMEOUT_MS); the stall timer runs only after it. */
  startTimeoutMs?: number;
  /**
   * Readers this process starts ahead of their show's publish, waiting on its edge (RELAY_ARMED_READERS;
   * src/relay/armed-readers.ts). Default 100; 0: every reader starts on its show's publish.
   */
  armedReaders?: number;
  /** ffmpeg starts in flight at once in this process (RELAY_START_CONCURRENCY; src/relay/start-gate.ts). Default 2. */
  startConcurrency?: number;
  /**
   * The edge this process expects a show's publish on and pulls into (its embedded edge, or
   * RELAY_EDGE_INTERNAL_URL); none: readers start only once an edge reports the publish, and pulls fail.
   */
  edgeUrl: () => string | undefined;
  /** This process's edge (if it runs one): when the publish a reader's input reads last sent data (src/relay/ingest.edge.ts). */
  publisherDataAt?: (input: string) => number | undefined;
  /**
   * How long a source outlives its edge's last renewal (RELAY_SOURCE_TTL_MS; default 10 s): the edges
   * renew theirs every fifth of it, at most every 2 s (src/relay/ingest.edge.ts edgeCheckMs), also
   * once Redis is back after an outage that let them lapse (see `sourceGraceMs`).
   */
  sourceTtlMs?: number;
  /** The HLS proxy's idle and request timeouts (HTTP_IDLE_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS); default 30 s each. */
  httpTimeouts?: HttpTimeouts;
  /** The HLS proxy's total deadline per request (RELAY_HLS_FETCH_TIMEOUT_MS); default 20 s. */
  hlsFetchTimeoutMs?: number;
  /**
   * Whether nothing listens at Redis's address now (src/store/redis.ts redisRefusesConnections): then no
   * process can take a lease, and a show whose lease cannot be renewed keeps its readers past the
   * grace (renewAll). None (a Redis Cluster, whose failed master's slots another node takes over): no
   * process keeps a show past the grace.
   */
  redisRefuses?: () => Promise<boolean>;
  /** A mirror's relay state changed (mirror.updated; a `sending` YouTube mirror can go live now). */
  onStateChange?: (partnerId: string, showId: string, mirror: MirrorDoc, status: RelayStatus, view: MirrorViewContext) => Promise<void>;
}

/**
 * The ingest a mirror pushes to: the platform's (YouTube, Facebook) or the operator's (linked by hand).
 * SecretUnreadableError when its stream key is sealed under a key this service no longer has.
 */
export function mirrorIngest(m: MirrorDoc, box: Pick<SecretBox, 'decrypt'>): { url: string; streamKey: string } | undefined {
  if (ingestUnreadable(m)) throw new SecretUnreadableError();
  if (m.remote?.ingest) return m.remote.ingest;
  if (m.operatorIngest) return { url: m.operatorIngest.url, streamKey: box.decrypt(m.operatorIngest.streamKeySealed) };
  return undefined;
}

/** A destination's relay lastError when the show's own stream key cannot be opened (docs/operations.md, "Secrets and rotation"). */
export const SHOW_KEY_UNREADABLE_RELAY_ERROR =
  "not relayed: the show's stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS (changed without rotation): restore the key that sealed it, or issue a new stream key (POST …/ingest/rotate) and give it to the encoder";
/** A destination's relay lastError when the stream key of its mirror's ingest cannot be opened. */
export const MIRROR_KEY_UNREADABLE_RELAY_ERROR =
  "not relayed: this mirror's stream key cannot be opened with SECRETS_KEY or SECRETS_KEY_PREVIOUS (changed without rotation): restore the key that sealed it, or link the mirror again with its ingest (PUT …/mirrors/{targetId})";

/** How a destination's lastError begins while the show's publish is in codecs the platforms do not take (the contract's states have no value for it: the destination is `failed`). */
export const CODEC_UNSUPPORTED = 'codec_unsupported:';

/** A destination's relay lastError for a publish in codecs the platforms do not take (RelaySource.codecsRefused). */
export function codecUnsupportedError(codecs: { video: string | null; audio: string | null }): string {
  const named = (kind: 'video' | 'audio'): string => `${kind} ${codecs[kind] ?? 'none'}${codecs[kind] !== null && codecs[kind] !== RELAY_CODECS[kind] ? ' (not taken)' : ''}`;
  return `${CODEC_UNSUPPORTED} the show's stream is ${named('video')}, ${named('audio')}; the platforms' RTMP ingest takes H.264 video and AAC audio, and the relay does not transcode. Not relayed: set the encoder to H.264 and AAC and publish again`;
}

const KEY_UNREADABLE_ERRORS: ReadonlySet<string> = new Set([SHOW_KEY_UNREADABLE_RELAY_ERROR, MIRROR_KEY_UNREADABLE_RELAY_ERROR]);

export function joinStreamUrl(url: string, key: string): string {
  return `${url.replace(/\/+$/, '')}/${key}`;
}

interface OwnedShow {
  partnerId: string;
  showId: string;
  /** Supervisors by target id. */
  dests: Map<string, DestinationSupervisor>;
  /** The pull of `sourceUrl` into the edge (pull mode). */
  puller?: { spec: DestinationSpec; sup: DestinationSupervisor; sourceUrl: string; showKey: string; proxied?: HlsProxySession };
  /** Why the show has no source, reported on every destination while it lasts. */
  sourceError: string | null;
  /**
   * The sourceUrl's host is refused whatever DNS answers (a private IP literal, localhost): no pass will
   * pull it, so every destination is `failed` with sourceError, not waiting. (A name that resolves to a
   * private address is checked again each pass: its answer may change.)
   */
  sourceRefusedForGood?: boolean;
  /** performance.now() of the last renewal that succeeded (monotonic: wall-clock steps do not move it). */
  lastRenewOk: number;
  /**
   * When each renewal sent and not yet answered was sent (performance.now(); the relay role's client
   * queues commands while Redis is down: they wait, never fail). At most MAX_RENEWALS_IN_FLIGHT.
   */
  renewing: Set<number>;
  /** Kept past the grace because Redis refuses connections (logged once per outage). */
  ridingOutage?: boolean;
  /** The show's source as last read (its readers read that edge). */
  lastSource?: RelaySource;
  /**
   * performance.now() until which a source found missing right after a Redis outage is taken for
   * `lastSource` (its readers kept: RelayService.sourceGraceMs); 0: none found missing since.
   */
  sourceGraceUntil?: number;
  /** The mirrors as last read (mirror.updated carries the current one). */
  mirrors: Map<string, MirrorDoc>;
  /** As last read: the partner's enabled targets and the show (mirror.updated carries the show view's `enabled` and pin `reason`). */
  enabledTargets?: Set<string>;
  desired?: DesiredShow;
  /** The show's stream key could not be opened on the last pass (logged once, until it opens again). */
  showKeyUnreadable?: boolean;
  /** Destinations whose check keeps failing while their push runs: warned once per streak, not every pass. */
  checkFailing?: Set<string>;
  /**
   * The counters (`bytesSent`, `restarts`) each destination reported before this process took the show
   * (another process died or handed it back, or this one lost its lease in a Redis outage), read once:
   * its first supervisor here continues them, so they never go back to 0 while the show is relayed.
   * A `stopped` destination's count ended with its relay (show over, target disabled): it starts over.
   */
  carried?: Map<string, Pick<RelayStatus, 'bytesSent' | 'restarts'>>;
  /** When this process took the show, among its shows (the armed readers' pool serves a partner's oldest first). */
  order: number;
  /**
   * The show's sealed stream keys (its own, its operator-given mirror keys) opened by its last pass,
   * sealed → key: every pass reads the same values again, and opens each only when it changed (a
   * rotation, a relink). Only the keys that pass read (and that opened): a rotated or relinked key's
   * old value is dropped by the next pass, not kept in memory (up to 64 of them per show were, in
   * plaintext). Nothing needs it: the edge tells a publish's key by its SHA-256 in Redis
   * (RelayRepository.showOfKey), and a publish on a rotated key is cut off. Dropped with the show.
   */
  opened?: Map<string, string>;
  /** The edge play token of the show's key as last made (an HMAC per pass otherwise). */
  playToken?: { showKey: string; token: string };
  /** Readers the show would arm on this process's edge, as of its last pass (0: it has a source, or nothing to arm). */
  armWants: number;
  /** Its readers wait on this process's edge (armed, as of its last pass): its publish there reaches them without a pass. */
  armedHere?: boolean;
}

/** How a destination's lastError begins while the show's sourceUrl is refused. */
const SOURCE_REFUSED = 'source refused:';
const FOR_GOOD = ". Not relayed: the show's sourceUrl names a private or loopback address, which is never pulled while ALLOW_PRIVATE_DESTINATIONS is off; send the show with a public sourceUrl";

/**
 * Whether the guard refuses `host` whatever DNS answers: a private or loopback IP literal, or
 * localhost (RFC 6761: always loopback). A name that resolved to a private address may answer
 * otherwise later.
 */
function refusedWhateverDns(host: string, guard: DestinationGuard): boolean {
  if (guard.allowPrivate || host === '') return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  try {
    guard.checkHost(h);
    return false;
  } catch {
    return true;
  }
}

const showKeyOf = (p: string, s: string): string => JSON.stringify([p, s]);

/**
 * Renewals of one show's lease that may be unanswered at once (RelayService.renewal): one sent every
 * renewal interval (a quarter lease) covers the grace (leaseGraceMs, at most 0.75 × the lease) with 3.
 */
const MAX_RENEWALS_IN_FLIGHT = 3;

/** The longest the probe of Redis's address takes (src/store/redis.ts redisRefusesConnections' default). */
const REFUSES_PROBE_MS = 500;

/**
 * How long after its last counted renewal (or take: both count from when they were SENT, the lease runs
 * from when Redis ran them, after that) a show whose renewals go unanswered keeps its readers: the
 * judgement comes at the latest this long after it (a renewal's wait ends there), then the probe of
 * Redis's address (REFUSES_PROBE_MS) and the readers' stop (SIGTERM, SIGKILL after STOP_GRACE_MS), and a
 * quarter second for timers that fire late: all done before the lease can lapse for the others. 4.25 s
 * at the default 6 s lease, so renewals answered up to 0.45 × the lease late keep the show (one is sent
 * every quarter lease). At leases under 4.4 s the grace stays at 0.6 × the lease (the stop can then
 * end up to 1.75 s later than that, past the lease at the shortest ones).
 */
export function leaseGraceMs(leaseMs: number): number {
  return Math.max(leaseMs * 0.6, leaseMs - REFUSES_PROBE_MS - STOP_GRACE_MS - 250);
}

/** How often a show riding a Redis outage tries to renew its lease (and Redis's address is probed). */
const RIDE_RENEW_MS = 250;

/**
 * A show is never kept more than this many RELAY_LEASE_MS past its last successful renewal (60 s at the
 * default 6 s), whatever Redis's address answers: a Redis that comes back at another address (another
 * port, another host) leaves the old one refusing for good, while another relay process takes the
 * lease at the new one. Past it the show stops, and is taken again normally once Redis is reachable.
 */
export const RIDE_OUTAGE_MAX_LEASES = 10;

/** RELAY_ARMED_READERS' default: the relay bench's 20 shows × 5 destinations, all armed (one 2-core machine's streams). */
export const DEFAULT_ARMED_READERS = 100;

export class RelayService {
  private readonly token = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  private readonly owned = new Map<string, OwnedShow>();
  /** Shows taken so far (OwnedShow.order). */
  private taken = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  /** The next renewal round while a show rides a Redis outage (renewAll). */
  private rideTimer: NodeJS.Timeout | undefined;
  /** performance.now() when Redis's address last refused connections (renewAll). */
  private refusedAt = -Infinity;
  /** A lease renewal failed or went unanswered since one was last answered (renewAll): Redis is out, or slow. */
  private renewalsFailing = false;
  /** performance.now() when a renewal was answered again after some failed (Redis back after an outage). */
  private redisBackAt = -Infinity;
  /**
   * How long a source found missing right after a Redis outage (a renewal failed, Redis answering again
   * for less than this) keeps its show's readers on the edge they read (reconcile): an outage longer
   * than RELAY_SOURCE_TTL_MS lets every source lapse, and the first pass back found them missing before
   * their edges wrote them again, stopping readers another process's edge still fed (RELAY_EDGE=none;
   * restarted a pass later: a 2.3 s gap on every platform). Two of the edges' renewal intervals (their
   * client may reconnect later than this one) and a pass: 5 s at the defaults.
   */
  private readonly sourceGraceMs: number;
  private ticking: Promise<void> | undefined;
  private closed = false;
  /**
   * The timers of renewAll's waits (a show's grace running out, a renewal's answer), each as the call
   * that fires it now: close() and stopChildren() fire them at once (`timeout`). Left running, a grace's
   * end kept the process up to a renewal interval after close() and then acted (probed Redis's address,
   * judged a show that close() had handed back).
   */
  private readonly waits = new Set<() => void>();
  /**
   * close(): a timer per show at its grace's end (leaseGraceMs after its last counted renewal) that stops
   * its readers here if close() has not handed it back by then (`stopAtGraceEnd`). close() ends the
   * renewal rounds' waits (nothing judges a show any more) and no renewal goes out, but hands the shows
   * back only once the pass in flight ends: during a Redis outage that pass waits on its first command,
   * and the readers went on until the process's own Redis-gone check stopped them (≈ 2 s into shutdown),
   * past the lease of a show whose grace ended meanwhile, or, with no such check (a failed start's stop),
   * until the pass ended. Cleared once close() hands the shows back, or stopChildren() stops them.
   */
  private readonly graceStops = new Map<OwnedShow, NodeJS.Timeout>();
  /** One limit on ffmpeg starts for every destination and pull of this process (the restart-storm guard). */
  readonly startGate: StartGate;
  /** The destinations' readers of this process's edge, by show stream: a reader the edge stops serving is told from a stream silent for all (src/relay/destination.supervisor.ts). */
  private readonly inputPeers = new InputPeers();
  /**
   * How long a reader's silence may be the show's publisher's before this process can know
   * (DestinationSupervisor's `stallNoticeMs`): the edge writes its stall notice at most
   * EDGE_STALL_NOTICE_MS (2 s) after the reader's last data, and this process reads it at its next
   * pass (RELAY_POLL_MS). Measured 2.6–3.1 s on a 2-core machine, 3.0–3.9 s beside two busy loops, at
   * the default 1 s pass; twice the sum leaves room: 6 s at the default pass, the default stall time,
   * so it changes nothing there. A shorter RELAY_STALL_MS restarted the readers of a show whose
   * publisher stalled before they could be told (the e2e publisher-stall case, under a loaded CI).
   */
  private readonly stallNoticeMs: number;

  /** What this process's readers sign their edge play URLs with (`?play=` + src/relay/ingest.edge.ts `edgePlayToken`). */
  private readonly playKey: Buffer;

  constructor(private readonly deps: RelayServiceDeps) {
    this.startGate = new StartGate({ concurrency: deps.startConcurrency ?? 2, log: deps.log.child({ role: 'start-gate' }) });
    this.playKey = deps.box.derivedKeys(EDGE_PLAY_LABEL)[0]!;
    this.stallNoticeMs = 2 * (EDGE_STALL_NOTICE_MS + deps.pollMs);
    this.sourceGraceMs = 2 * edgeCheckMs(deps.sourceTtlMs ?? 10_000) + deps.pollMs;
  }

  /** Calls `fn` after `ms`, or at once when this relay closes (or has closed); the function returned cancels it. */
  private timeout(ms: number, fn: () => void): () => void {
    if (this.closed) {
      fn();
      return () => undefined;
    }
    const fire = (): void => {
      cancel();
      fn();
    };
    const cancel = (): void => {
      clearTimeout(timer);
      this.waits.delete(fire);
    };
    const timer = setTimeout(fire, ms);
    this.waits.add(fire);
    return cancel;
  }

  /**
   * Stops `o`'s readers here once its grace runs out (at once if it has), unless close() handed it back
   * before: see `graceStops`. Stopped locally, without a probe of Redis's address or a judgement (the
   * lease is not renewed any more), the show stays owned until close() hands it back (statuses, lease).
   */
  private stopAtGraceEnd(o: OwnedShow): void {
    this.graceStops.delete(o);
    if (this.owned.get(showKeyOf(o.partnerId, o.showId)) !== o) return; // released meanwhile (its pass ended it)
    // A renewal sent before close() and answered since moves the grace's end on.
    const left = o.lastRenewOk + leaseGraceMs(this.deps.leaseMs) - performance.now();
    if (left > 0) {
      this.graceStops.set(o, setTimeout(() => this.stopAtGraceEnd(o), Math.ceil(left) + 1)); // a timer can fire up to a ms early
      return;
    }
    this.deps.log.warn({ partnerId: o.partnerId, showId: o.showId }, "relay closing: the show's lease was not renewed within its grace and the show is not handed back yet (Redis unreachable?); stopping its readers here");
    void this.stopReaders(o, 'idle', UNOWNED_ERROR);
  }

  /**
   * Stops `o`'s readers side by side: each destination (as `state`, with `lastError`) and its pull. The
   * pull's proxied input is closed as the stops begin, or with `inputAfter` once they have ended
   * (release: ffmpeg is gone before its session is, as on ensurePuller's change of source).
   */
  private async stopReaders(o: OwnedShow, state: 'stopped' | 'idle', lastError?: string, inputAfter = false): Promise<void> {
    if (!inputAfter) o.puller?.proxied?.close();
    await Promise.all([...[...o.dests.values()].map((d) => d.stop(state, lastError)), o.puller?.sup.stop()]);
    if (inputAfter) o.puller?.proxied?.close();
  }

  /** close() handed the shows back, or stopChildren() stopped them: no grace's end acts any more (`graceStops`). */
  private endGraceStops(): void {
    for (const t of this.graceStops.values()) clearTimeout(t);
    this.graceStops.clear();
  }

  /** A lease renewal was answered: Redis is back if some had failed (renewalsFailing). */
  private redisAnswers(): void {
    if (!this.renewalsFailing) return;
    this.renewalsFailing = false;
    this.redisBackAt = performance.now();
  }

  /**
   * The show's source as this pass takes it: as read; or, read missing right after a Redis outage
   * (sourceGraceMs), the one its readers read, until its edge had time to write it again. Past that a
   * missing source is missing (its publish ended while Redis was out, or its edge died).
   */
  private sourceAfterOutage(o: OwnedShow, read: RelaySource | null): RelaySource | null {
    const now = performance.now();
    if (read || !o.lastSource) {
      o.lastSource = read ?? undefined;
      o.sourceGraceUntil = 0;
      return read;
    }
    if (!o.sourceGraceUntil) {
      const afterOutage = this.renewalsFailing || now - this.redisBackAt < this.sourceGraceMs;
      o.sourceGraceUntil = afterOutage ? now + this.sourceGraceMs : -1;
      if (afterOutage) this.deps.log.info({ partnerId: o.partnerId, showId: o.showId, graceMs: this.sourceGraceMs }, "the show's source is missing right after a Redis outage: its readers go on until its edge writes it again");
    }
    if (now < o.sourceGraceUntil) return o.lastSource;
    o.lastSource = undefined;
    o.sourceGraceUntil = 0;
    return null;
  }

  /** This process's lease token (tests find the owner by it). */
  get leaseToken(): string {
    return this.token;
  }

  /** Pids of the ffmpeg children this process runs (tests check that none outlives its show). */
  pids(): number[] {
    const out: number[] = [];
    for (const o of this.owned.values()) {
      for (const d of o.dests.values()) if (d.pid) out.push(d.pid);
      if (o.puller?.sup.pid) out.push(o.puller.sup.pid);
    }
    return out;
  }

  start(): void {
    // A pass that failed because Redis is down is logged once per outage, not once per pass (RedisOutageLog).
    const outage = new RedisOutageLog(this.deps.log, 'relay');
    const loop = (): void => {
      this.timer = undefined;
      if (this.closed) return;
      this.passing = true;
      this.wakeAgain = false;
      this.ticking = this.tick()
        .then(
          () => outage.recovered(),
          (err: unknown) => {
            if (isRedisUnreachable(err)) outage.error(connectionErrorSummary(err), {}, 'relay tick failed');
            else this.deps.log.warn({ err: { message: (err as Error).message } }, 'relay tick failed');
          },
        )
        .finally(() => {
          this.passing = false;
          if (!this.closed) this.timer = setTimeout(loop, this.wakeAgain ? 0 : this.deps.pollMs);
        });
    };
    this.loop = loop;
    loop();
    this.renewTimer = setInterval(() => void this.renewAll(), Math.max(200, Math.floor(this.deps.leaseMs / 4)));
  }

  private loop: (() => void) | undefined;
  /** A pass is running now. */
  private passing = false;
  /** A wake came during the running pass: the next one starts as soon as it ends. */
  private wakeAgain = false;

  /**
   * This process's edge accepted a publish of the show (its source is written): a pass now, not at
   * the next RELAY_POLL_MS, so the show's readers start at once if this process owns it and has not
   * armed them (another process's edge: the owner reads the source at its next pass). One pass for any
   * number of wakes meanwhile; nothing before start().
   */
  wake(show?: { partnerId: string; showId: string }): void {
    if (this.closed || !this.loop) return;
    const o = show && this.owned.get(showKeyOf(show.partnerId, show.showId));
    if (show && !o) return; // not ours: the pass that takes its lease sees the source
    // Armed: its readers get the publish from the edge as it comes; a pass per publish only cost CPU at
    // a mass go-live (the next pass reports them `connecting`).
    if (o && o.armedHere) return;
    if (this.passing) {
      this.wakeAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.loop();
  }

  /**
   * close() and stopChildren() begin alike: no pass, renewal or ride starts any more, and renewAll's
   * waits end now (`waits`: each fires a promise's continuation, nothing here and now).
   */
  private beginShutdown(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.rideTimer) clearTimeout(this.rideTimer);
    for (const fire of [...this.waits]) fire();
  }

  /** ...and end alike: the HLS proxy of this process's pulls closes. */
  private async closeHlsProxy(): Promise<void> {
    const proxy = this.proxy;
    this.proxy = undefined;
    await (await proxy?.catch(() => undefined))?.close();
  }

  async close(): Promise<void> {
    this.beginShutdown();
    // No renewal goes out any more and none is judged: a show not handed back by its grace's end (the pass
    // in flight waits on Redis) stops its readers then, here, without a probe (graceStops).
    for (const o of this.owned.values()) this.stopAtGraceEnd(o);
    await this.ticking?.catch(() => undefined);
    // Handed back at once below (each release stops its readers as it begins).
    this.endGraceStops();
    // Handed back, not finished: the shows are still live, and another relay process takes them over
    // (at once: the leases are dropped). Until one does, each destination says what the views say of a
    // show nobody relays (README "Video relay"): `idle`, nobody relays it. `stopped` is a show's end;
    // a relay process's SIGTERM reported it, to the views and in mirror.updated, for every live mirror.
    await Promise.all([...this.owned.values()].map((o) => this.release(o, 'idle', true, UNOWNED_ERROR)));
    await this.closeHlsProxy();
  }

  /**
   * Shutdown while Redis is unreachable, where close() would wait for it (the tick in flight, the final
   * statuses, the leases): stops every ffmpeg this process runs and writes nothing. The leases expire
   * after RELAY_LEASE_MS and another relay process takes the shows over.
   */
  async stopChildren(): Promise<void> {
    this.beginShutdown();
    this.endGraceStops();
    await Promise.all([...this.owned.values()].map((o) => this.stopReaders(o, 'stopped')));
    await this.closeHlsProxy();
  }

  private proxy: Promise<HlsProxy> | undefined;
  /** The loopback HLS proxy of this process's pulls, started on first use. */
  private hlsProxy(): Promise<HlsProxy> {
    this.proxy ??= HlsProxy.start(this.deps.destinations, this.deps.log.child({ role: 'hls-proxy' }), this.deps.httpTimeouts, this.deps.hlsFetchTimeoutMs);
    return this.proxy;
  }

  /**
   * Renews every owned lease; a show whose lease is gone (another process holds it) is stopped at once.
   * One that cannot be renewed (no answer within a renewal interval, or an error) keeps its readers
   * while its lease surely has not lapsed for the others: leaseGraceMs after its last renewal, on
   * the monotonic clock. Past that only while Redis refuses connections (`redisRefuses`: no process can
   * reach it, so none can take the lease; once it listens again, it leaves a lease that lapsed while it
   * was down to its last holder for one lease: src/store/relay.repository.ts LEASE_TAKE_LUA), and the
   * renewal that reaches it again takes the lease back or, another process holding it, stops the show.
   * Never past RIDE_OUTAGE_MAX_LEASES × the lease after its last renewal (Redis may be back elsewhere).
   * docs/architecture.md, Video relay, Ownership.
   */
  private async renewAll(): Promise<void> {
    const { leaseMs, log } = this.deps;
    /** One probe of Redis's address per round, asked only by a show past its grace. */
    let refused: Promise<boolean> | undefined;
    const redisRefuses = (): Promise<boolean> =>
      (refused ??= (this.deps.redisRefuses?.().catch(() => false) ?? Promise.resolve(false)).then((r) => {
        if (r) this.refusedAt = performance.now();
        return r;
      }));
    const renewWithinMs = Math.max(200, Math.floor(leaseMs / 4));
    const graceMs = leaseGraceMs(leaseMs);
    /** Shows that began riding an outage this round, and that were renewed again after one: one log line each per round, not one per show. */
    let riding = 0;
    let rodeThrough = 0;
    let capped = 0;
    await Promise.all(
      [...this.owned.values()].map(async (o) => {
        let ok: boolean;
        try {
          // Judged when the renewal is answered, or a renewal interval later, or when the grace runs out
          // if that comes first (a judgement only every renewal interval stopped the show up to one
          // interval past the grace, and the stop could end after the lease lapsed). A show past its
          // grace (riding an outage) waits the whole interval: its renewal's answer (false: another
          // process holds the lease) decides.
          const graceLeft = o.lastRenewOk + graceMs - performance.now();
          ok = await this.renewal(o, renewWithinMs, graceLeft > 0 ? Math.min(renewWithinMs, graceLeft) : renewWithinMs);
          if (ok && o.ridingOutage) {
            o.ridingOutage = false;
            rodeThrough += 1;
          }
        } catch {
          // Closed meanwhile (its wait ended by close()): the show is handed back or stopped there.
          if (this.closed) return;
          this.renewalsFailing = true;
          // Redis unreachable: keep pushing only while the lease surely has not lapsed for the others.
          // Measured on the monotonic clock: a wall clock stepped back (NTP) kept a process that could not
          // renew pushing for as long as the step, while another relay took the lapsed lease and pushed too.
          let inGrace = performance.now() - o.lastRenewOk < graceMs;
          // Judged again when the grace runs out, if that comes before this show's next judgement (a
          // round that sends no renewal, MAX_RENEWALS_IN_FLIGHT unanswered, judges at once): judged only
          // at each round, the show was stopped up to a renewal interval past its grace.
          const left = o.lastRenewOk + graceMs - performance.now();
          if (inGrace && !o.ridingOutage && left < renewWithinMs) {
            await new Promise<void>((r) => this.timeout(Math.ceil(left) + 1, r)); // a timer can fire up to a ms before performance.now() says
            if (this.closed) return; // ended by close(): nothing more to judge
            inGrace = performance.now() - o.lastRenewOk < graceMs;
          }
          // Past it while nothing listens at Redis's address: the lease cannot change hands meanwhile.
          // And as long after Redis last refused as after a renewal: a Redis that listens again leaves a
          // lease that lapsed while it was down to its holder for one lease (this client reconnects meanwhile).
          const refusing = !inGrace && (await redisRefuses());
          ok = inGrace || refusing || (o.ridingOutage === true && performance.now() - this.refusedAt < graceMs);
          // Never past the cap: a Redis that came back at another address leaves this one refusing for ever.
          if (ok && !inGrace && performance.now() - o.lastRenewOk >= leaseMs * RIDE_OUTAGE_MAX_LEASES) {
            ok = false;
            if (o.ridingOutage) capped += 1;
          }
          if (refusing && !o.ridingOutage) {
            o.ridingOutage = true;
            riding += 1;
          }
        }
        if (!ok && this.owned.get(showKeyOf(o.partnerId, o.showId)) === o) {
          log.warn({ partnerId: o.partnerId, showId: o.showId }, 'relay lease lost; stopping this show here');
          await this.release(o, 'idle', false);
        }
      }),
    );
    if (riding) log.warn({ shows: riding }, 'relay leases not renewed, but Redis refuses connections (nobody can take a lease): these shows go on being relayed here');
    if (capped) log.warn({ shows: capped, maxMs: leaseMs * RIDE_OUTAGE_MAX_LEASES }, 'relay leases not renewed for RIDE_OUTAGE_MAX_LEASES × RELAY_LEASE_MS although Redis refuses connections (it may be back at another address): stopping these shows here');
    if (rodeThrough) log.info({ shows: rodeThrough }, 'relay leases renewed after the Redis outage; these shows were relayed throughout');
    // Riding an outage: renewed again soon (not a quarter lease later), so the lease is taken back as
    // soon as Redis answers, well within the lease Redis leaves it to this process.
    if (!this.closed && !this.rideTimer && [...this.owned.values()].some((o) => o.ridingOutage)) {
      this.rideTimer = setTimeout(() => {
        this.rideTimer = undefined;
        void this.renewAll();
      }, RIDE_RENEW_MS);
    }
  }

  /**
   * The show's lease renewed (true) or held by another process (false); rejects when Redis does not
   * answer within `waitMs` (a renewal interval, `withinMs`, or less: until the show's grace runs out), or when no renewal goes out this round: the latest one still unanswered
   * was sent less than half a renewal interval ago (a ride round, every 250 ms), or
   * MAX_RENEWALS_IN_FLIGHT are unanswered (the relay role's client keeps commands queued while Redis is
   * down, and they would pile up).
   * A renewal Redis answers `true` sets `lastRenewOk` to when it was SENT (the lease runs from when Redis
   * ran it, after that), also when the answer comes after `withinMs`. Each round sends its own renewal
   * while earlier ones are unanswered, so a slow Redis (a fork or fsync stall) that answers every
   * renewal within 0.45 × the lease (leaseGraceMs minus a renewal interval) keeps the show: one renewal at a time, and the next only once it was
   * answered, left the show's latest counted renewal two answers old, and one answering in 0.3–0.6 ×
   * the lease had it stopped though every renewal extended the lease.
   */
  private renewal(o: OwnedShow, withinMs: number, waitMs = withinMs): Promise<boolean> {
    const now = performance.now();
    if (o.renewing.size >= MAX_RENEWALS_IN_FLIGHT || Math.max(-Infinity, ...o.renewing) > now - withinMs / 2) {
      return Promise.reject(new Error('the previous lease renewal is still unanswered'));
    }
    const sent = this.sendRenewal(o, now);
    let cancel: (() => void) | undefined;
    // One turn after the timer (setImmediate: after the poll phase), as src/store/redis.ts timeoutAfterIo:
    // after an event-loop stall past `withinMs` the answer may be waiting unread in the socket. Ended
    // at once by close() (`timeout`).
    const late = new Promise<never>((_, reject) => {
      cancel = this.timeout(waitMs, () => setImmediate(() => reject(new Error('lease renewal unanswered'))));
    });
    return Promise.race([sent, late]).finally(() => cancel?.());
  }

  /**
   * Sends one renewal of the show's lease (renewal()), sent at `sentAt`. Fenced in Redis
   * (RelayRepository.renewLease): one that reaches Redis after this process handed the lease back
   * (close(), a show that ended) takes nothing.
   */
  private sendRenewal(o: OwnedShow, sentAt: number): Promise<boolean> {
    o.renewing.add(sentAt);
    return this.deps.relay.renewLease(o.partnerId, o.showId, this.token, this.deps.leaseMs).then(
      (held) => {
        o.renewing.delete(sentAt);
        if (held) {
          o.lastRenewOk = Math.max(o.lastRenewOk, sentAt);
          this.redisAnswers();
        }
        return held;
      },
      (err: unknown) => {
        o.renewing.delete(sentAt);
        throw err;
      },
    );
  }

  /** `handedBack`: the show goes on without this process (its lastError); its final statuses are written as for a stop. */
  private async release(o: OwnedShow, state: 'stopped' | 'idle', dropLease = true, handedBack?: string): Promise<void> {
    this.owned.delete(showKeyOf(o.partnerId, o.showId));
    await this.stopReaders(o, state, handedBack, true);
    if (state === 'stopped' || handedBack !== undefined) {
      // The final state goes to the mirror view (the owner is the only writer of a show's statuses).
      await Promise.all([...o.dests.entries()].map(([t, d]) => this.deps.relay.setStatus(o.partnerId, o.showId, t, d.status).catch(() => undefined)));
    }
    if (dropLease) await this.deps.relay.dropLease(o.partnerId, o.showId, this.token).catch(() => undefined);
  }

  /** One pass: which shows this process relays, and to where. */
  async tick(): Promise<void> {
    const { shows, relay, leaseMs, pollMs } = this.deps;
    const ttlMs = Math.max(leaseMs, pollMs * 5);
    await relay.heartbeat(ttlMs);
    // Beaten again while the pass makes progress: a pass over hundreds of live shows in a busy process
    // took longer than the TTL (25 s, attack on npm start), the relay read "not running" for most of
    // every pass, and the video gate held every partner's YouTube and Facebook mirrors, also those
    // whose video it was sending. (A pass stuck in one show still lets it lapse.)
    let beatAt = Date.now();
    const active = await shows.activeShows();
    const seen = new Set<string>();
    // Stops run side by side and do not hold up the pass: with many shows ending at once, waiting
    // for each show's ffmpeg to exit in turn (behind the reconciling of every other show) let relay
    // processes outlive their show by many seconds. (release() forgets the show at once.)
    const releases: Promise<void>[] = [];
    try {
      for (const [partnerId, showId] of active) {
        if (this.closed) return;
        if (Date.now() - beatAt >= pollMs) {
          await relay.heartbeat(ttlMs);
          beatAt = Date.now();
        }
        const key = showKeyOf(partnerId, showId);
        seen.add(key);
        try {
          const desired = await shows.desired(partnerId, showId);
          let o = this.owned.get(key);
          if (!desired || desired.state !== 'live') {
            if (o) releases.push(this.release(o, 'stopped'));
            continue;
          }
          if (!o) {
            // The grace counts from the take's send, as a renewal's (the lease runs from when Redis ran
            // it): counted from its answer, a slow answer moved the grace past the lease.
            const takeSentAt = performance.now();
            if (!(await relay.takeLease(partnerId, showId, this.token, leaseMs))) continue;
            o = { partnerId, showId, dests: new Map(), sourceError: null, lastRenewOk: takeSentAt, renewing: new Set(), mirrors: new Map(), order: this.taken++, armWants: 0 };
            this.owned.set(key, o);
            this.deps.log.info({ partnerId, showId }, 'relaying this show');
          }
          await this.reconcile(o, desired);
        } catch (err) {
          // One show's failure (a Redis timeout under load) must not keep the others, ended ones
          // above all, from being handled in this pass.
          this.deps.log.warn({ partnerId, showId, err: { message: (err as Error).message } }, 'relay pass failed for a show');
        }
      }
      // Shows that left the active set (ended and finished) stop too.
      for (const [key, o] of this.owned) if (!seen.has(key)) releases.push(this.release(o, 'stopped'));
    } finally {
      await Promise.all(releases);
    }
  }

  private async reconcile(o: OwnedShow, desired: DesiredShow): Promise<void> {
    const { shows, partners, relay, box, log } = this.deps;
    const { partnerId, showId } = o;
    // The show's stream key, and its source where no pull runs or starts (a pull's start or stop comes
    // first, and may change the source), are read with the partner's bundle: the three commands go to
    // Redis in one write, a round trip each fewer per show and pass (the pass's part of the relay's
    // main thread). Left unread when an earlier read fails: their failures then go nowhere.
    // This pass keeps the keys it reads (from the last pass's, or opened now) and nothing else: a key
    // no longer read (rotated, relinked, its mirror gone) leaves memory with the last pass's map. A pass
    // that fails before reading the mirrors' keys opens them again on the next one.
    const lastOpened = o.opened;
    const opened = new Map<string, string>();
    o.opened = opened;
    const keyring = {
      decrypt: (sealed: string): string => {
        // A key that cannot be opened throws, every pass, as before.
        const key = opened.get(sealed) ?? lastOpened?.get(sealed) ?? box.decrypt(sealed);
        opened.set(sealed, key);
        return key;
      },
    };
    const showKeyRead = relay.ingestKey(partnerId, showId, keyring).catch(undefinedIfUnreadable);
    const sourceRead = desired.sourceUrl === undefined && o.puller === undefined ? relay.source(partnerId, showId) : undefined;
    showKeyRead.catch(() => undefined);
    sourceRead?.catch(() => undefined);
    const bundle = await partners.bundle(partnerId);
    const targets = (bundle?.targets ?? []).filter((t) => t.enabled);
    const mirrors = await shows.getMirrors(partnerId, showId, targets);
    o.enabledTargets = new Set(targets.map((t) => t.id));
    o.desired = desired;
    if (!o.carried) {
      // A status that does not read carries nothing (logged once, counted): this pass writes it afresh.
      const stored = await relay.statuses(partnerId, showId, targets.map((t) => t.id), (err) =>
        this.deps.log.error({ partnerId, showId, recordId: err.id, key: err.key, reason: err.reason }, 'relay status does not read: its counters start at 0 and this pass writes it afresh'),
      );
      o.carried = new Map();
      stored.forEach((st, i) => {
        if (st && st.state !== 'stopped') o.carried!.set(targets[i]!.id, { bytesSent: st.bytesSent, restarts: st.restarts });
      });
    }
    const showKey = await showKeyRead;
    if (showKey === undefined) {
      await this.keyUnreadable(o, targets, mirrors);
      return;
    }
    if (o.showKeyUnreadable) {
      o.showKeyUnreadable = false;
      log.info({ partnerId, showId }, "the show's stream key opens again: relaying it");
    }

    // Pull mode: this process publishes `sourceUrl` into the edge, like the partner's encoder would.
    await this.ensurePuller(o, desired, showKey);
    const source = this.sourceAfterOutage(o, await (sourceRead ?? relay.source(partnerId, showId)));
    const wanted = new Map<string, { target: TargetRecord; mirror: MirrorDoc; ingest: { url: string; streamKey: string } }>();
    /** Mirrors whose stream key no configured key opens: each destination failed, saying what to restore. */
    const unopenable = new Map<string, TargetRecord>();
    targets.forEach((t, i) => {
      const m = mirrors[i];
      if (!m || (m.state !== 'ready' && m.state !== 'live')) return;
      let ingest: { url: string; streamKey: string } | undefined;
      try {
        ingest = mirrorIngest(m, keyring);
      } catch (err) {
        if (!(err instanceof SecretUnreadableError)) throw err;
        unopenable.set(t.id, t);
      }
      o.mirrors.set(t.id, m);
      if (ingest) wanted.set(t.id, { target: t, mirror: m, ingest });
    });
    for (const [targetId, t] of unopenable) await this.failDestination(o, targetId, t, MIRROR_KEY_UNREADABLE_RELAY_ERROR, "relay destination not started: the mirror's stream key cannot be opened (restore SECRETS_KEY / SECRETS_KEY_PREVIOUS)");

    // A show's readers read its publish from the edge that reports it (its source: written by whichever
    // edge accepted it, this process's, another relay process's, nginx's on_publish, or the one a pull
    // publishes into). Before a publish they wait on this process's edge (armed: node-media-server feeds
    // them from the publish's first packet, no ffmpeg start-up on its way) if the show has a place in
    // the pool of armed readers (RELAY_ARMED_READERS, shared fairly between partners: armed-readers.ts);
    // otherwise no ffmpeg runs until the publish. Armed for every live show, 150 live shows nobody
    // published to made ~300 idle ffmpeg on a 2-core machine, and another partner's show with video took
    // 75 s to send. A pull that cannot run (refused address, no edge) arms nothing: nothing will publish.
    const pullBroken = desired.sourceUrl !== undefined && o.puller === undefined;
    const ownEdge = source || pullBroken ? undefined : this.deps.edgeUrl();
    o.armWants = ownEdge ? wanted.size : 0;
    o.armedHere = !source && ownEdge !== undefined && this.armed(o);
    const edgeUrl = source?.edgeUrl ?? (o.armedHere ? ownEdge : undefined);
    // Played with the edge's play token: the show's key alone is the encoder's, it does not play.
    if (o.playToken?.showKey !== showKey) o.playToken = { showKey, token: edgePlayToken(this.playKey, showKey) };
    const playToken = o.playToken.token;
    const input = edgeUrl ? `${joinStreamUrl(edgeUrl, showKey)}?play=${playToken}` : undefined;

    await this.dropDestinations(o, (targetId) => wanted.has(targetId) || unopenable.has(targetId));
    // A publish in codecs the platforms do not take: no reader runs (the edge passes none of it on
    // anyway), each destination `failed` saying which codecs, until a publish in H.264 and AAC replaces it
    // (the edge logged it, once per publish).
    const codecError = source?.codecsRefused ? codecUnsupportedError(source.codecsRefused) : undefined;
    for (const [targetId, w] of wanted) {
      let sup = o.dests.get(targetId);
      // The destination's logger, made only when used (a new supervisor, a log line): most passes use none.
      let dlogMade: Logger | undefined;
      const dlog = (): Logger => (dlogMade ??= log.child({ partnerId, showId, targetId, platform: w.target.platform }));
      const secrets = [showKey, playToken, w.ingest.streamKey];
      if (codecError) {
        await this.failDestination(o, targetId, w.target, codecError);
        continue;
      }
      // Failed for a publish whose codecs were refused: that publish is over, so what the destination
      // does now starts afresh (its counters go on), without the refusal's lastError.
      const codecFailed = sup?.status.state === 'failed' && sup.status.lastError?.startsWith(CODEC_UNSUPPORTED) === true;
      if (!input) {
        // Nothing publishes and the show has no armed readers (or no edge to arm them on): no ffmpeg;
        // wait idle, saying why. A supervisor still running or about to start again (the 250 ms wait
        // after its publish ended, a restart back-off, readers armed until the pool went to other
        // shows) is stopped, so no reader waits on an edge outside the pool.
        if (sup && !sup.halted) await sup.stop('idle');
        if (o.sourceRefusedForGood && o.sourceError) {
          await this.failDestination(o, targetId, w.target, o.sourceError);
          continue;
        }
        // One failed for a key that now opens (restored), or for a source since changed, waits like any other.
        if (codecFailed) {
          sup = this.newSupervisor(o, targetId, { input: '', output: '', secrets }, dlog(), { ...sup!.status, lastError: null });
          o.dests.set(targetId, sup);
        } else if (!sup || (sup.status.state === 'failed' && (KEY_UNREADABLE_ERRORS.has(sup.status.lastError ?? '') || sup.status.lastError?.startsWith(SOURCE_REFUSED)))) {
          sup = this.newSupervisor(o, targetId, { input: '', output: '', secrets }, dlog());
          o.dests.set(targetId, sup);
        }
        await this.waiting(o, targetId, sup);
        continue;
      }
      const destination = joinStreamUrl(w.ingest.url, w.ingest.streamKey);
      let output: string;
      try {
        output = await this.checkedOutput(w.ingest);
      } catch (err) {
        if (sup && !sup.halted && sup.sameAs({ input, output: '', secrets, destination })) {
          // This pass's check of a destination whose push runs, or waits in its restart back-off,
          // failed (a resolver that timed out once, an answer refused now): the run keeps its
          // connection to the address checked when it started, and its restarts, as always, use the
          // last address that passed a check. Stopping it cut the platform's stream for a DNS hiccup;
          // one between two runs reported the destination failed and reset its back-off. (Not halted
          // and the same input: a started supervisor, which restarts by itself.)
          // A warning once per streak (a host that stays unresolvable while the push runs is worth an
          // operator's look: its next restart cannot start); each further pass of the streak at debug.
          o.checkFailing ??= new Set();
          const first = !o.checkFailing.has(targetId);
          o.checkFailing.add(targetId);
          dlog()[first ? 'warn' : 'debug']({ reason: maskSecrets((err as Error).message, secrets) }, 'relay destination check failed; its running push goes on');
          sup.setSourceKnown(!!source);
          sup.setInputStalled(!!source?.stalledSince);
          continue;
        }
        // A destination failed already keeps its reason, except one failed because a stream key could
        // not be opened: that key opens now (restored), so it says the check's failure, not to restore it.
        if (!sup || sup.status.state !== 'failed' || KEY_UNREADABLE_ERRORS.has(sup.status.lastError ?? '') || codecFailed) {
          await sup?.stop('idle');
          sup = this.newSupervisor(o, targetId, { input, output: '', secrets }, dlog(), sup?.status);
          o.dests.set(targetId, sup);
          sup.fail(`destination refused: ${(err as Error).message}`);
        }
        continue;
      }
      if (o.checkFailing?.delete(targetId)) dlog().info('relay destination check passes again');
      // `destination`: the ingest as given. Its host's checked address (in `output`) can change from one
      // pass's DNS answer to the next (round-robin, geo DNS); that keeps the push running (readdress).
      const spec: DestinationSpec = { input, output, secrets, destination };
      // A halted supervisor (stopped to idle while its input was gone) never starts again: replace it.
      if (!sup || !sup.sameAs(spec) || sup.halted || sup.status.state === 'stopped' || sup.status.state === 'failed') {
        if (sup) await sup.stop('idle');
        sup = this.newSupervisor(o, targetId, spec, dlog(), sup && codecFailed ? { ...sup.status, lastError: null } : sup?.status, showKey);
        o.dests.set(targetId, sup);
        sup.setSourceKnown(!!source);
        sup.setInputStalled(!!source?.stalledSince);
        sup.start();
      } else {
        sup.readdress(spec);
        sup.setSourceKnown(!!source);
        sup.setInputStalled(!!source?.stalledSince);
      }
      if (!source) await this.waiting(o, targetId, sup);
    }
    this.startDormant(o);
    // Progress (bytes, bitrate) goes to the mirror view every pass; state changes went out already.
    await this.reportStatuses(o);
  }

  /**
   * Every supervisor of `o` whose last start the fence refused (just after a Redis outage, say: the
   * lease lapsed while Redis was down, the renewal takes it back a moment later) starts again: this
   * pass holds the show's lease (see DestinationSupervisor.dormant). Its destinations' readers and its
   * pull alike: a dormant pull (ensurePuller keeps the one it has) left every destination waiting for
   * a publish that never came, for good.
   */
  private startDormant(o: OwnedShow): void {
    for (const sup of [o.puller?.sup, ...o.dests.values()]) if (sup?.dormant) sup.start();
  }

  /**
   * The show's own stream key (the edge's input) no configured key opens: no ffmpeg of the show starts
   * (the pull is not started either: it publishes with that key), each destination is `failed` saying
   * what to restore, logged once for the show (not every pass), the other shows go on. A later pass
   * whose key opens (restored, or rotated: POST …/ingest/rotate) starts them as usual.
   */
  private async keyUnreadable(o: OwnedShow, targets: TargetRecord[], mirrors: (MirrorDoc | null)[]): Promise<void> {
    o.armWants = 0; // nothing of the show starts: it takes no place among the armed readers
    if (!o.showKeyUnreadable) {
      o.showKeyUnreadable = true;
      this.deps.log.error({ partnerId: o.partnerId, showId: o.showId }, "relay of this show not started: the show's stream key cannot be opened (restore SECRETS_KEY / SECRETS_KEY_PREVIOUS, or rotate the show's ingest key)");
    }
    const live = new Set<string>();
    for (const [i, t] of targets.entries()) {
      const m = mirrors[i];
      if (!m || (m.state !== 'ready' && m.state !== 'live') || (!m.remote?.ingest && !m.operatorIngest)) continue;
      o.mirrors.set(t.id, m);
      live.add(t.id);
      await this.failDestination(o, t.id, t, SHOW_KEY_UNREADABLE_RELAY_ERROR);
    }
    await this.dropDestinations(o, (targetId) => live.has(targetId));
    await this.reportStatuses(o);
  }

  /** Stops and drops the destinations of `o` that `keep` does not keep (their mirror is gone, disabled or not ready), saying so. */
  private async dropDestinations(o: OwnedShow, keep: (targetId: string) => boolean): Promise<void> {
    for (const [targetId, sup] of o.dests) {
      if (keep(targetId)) continue;
      o.dests.delete(targetId);
      o.checkFailing?.delete(targetId);
      await sup.stop('stopped');
      await this.deps.relay.setStatus(o.partnerId, o.showId, targetId, sup.status);
    }
  }

  /** Every destination's status as it is now, progress (bytes, bitrate) included, to the mirror view. */
  private reportStatuses(o: OwnedShow): Promise<unknown> {
    return Promise.all([...o.dests.entries()].map(([t, d]) => this.deps.relay.setStatus(o.partnerId, o.showId, t, d.status)));
  }

  /** A destination `failed` with `why` (a stream key no configured key opens, a source refused for good), no ffmpeg; once (and `logLine` logged once), not every pass. */
  private async failDestination(o: OwnedShow, targetId: string, t: TargetRecord, why: string, logLine?: string): Promise<void> {
    const sup = o.dests.get(targetId);
    if (sup?.status.state === 'failed' && sup.status.lastError === why) return;
    await sup?.stop('idle');
    const dlog = this.deps.log.child({ partnerId: o.partnerId, showId: o.showId, targetId, platform: t.platform });
    const failed = this.newSupervisor(o, targetId, { input: '', output: '', secrets: [] }, dlog, sup?.status);
    o.dests.set(targetId, failed);
    failed.fail(why);
    if (logLine) dlog.error(logLine);
  }

  /** Whether `o`'s readers have a place in the pool of armed readers (armed-readers.ts), as the shows wait now. */
  private armed(o: OwnedShow): boolean {
    const waiting = [...this.owned.entries()].map(([key, x]) => ({ key, partnerId: x.partnerId, readers: x.armWants, order: x.order }));
    return armedShows(waiting, this.deps.armedReaders ?? DEFAULT_ARMED_READERS).has(showKeyOf(o.partnerId, o.showId));
  }

  /** Reports why a destination waits (once per change, not every pass). */
  private async waiting(o: OwnedShow, targetId: string, sup: DestinationSupervisor): Promise<void> {
    const why = o.sourceError ?? "waiting for the show's stream (nothing is publishing to its ingest)";
    if (sup.status.lastError === why || sup.status.state === 'retrying' || sup.status.state === 'failed') return;
    if (sup.status.state !== 'idle') sup.status.since = new Date().toISOString();
    sup.status.state = 'idle';
    sup.status.bitrateKbps = 0;
    sup.status.lastError = why;
    await this.report(o, targetId, sup.status);
  }

  /**
   * The fence of a run of `o` (checked right before each ffmpeg start): this process holds the show's
   * lease and, for a run that reads or publishes the show's stream with `showKey`, that key is still the
   * show's. A rotation (POST …/ingest/rotate) makes the edge cut the old key's publish off and refuse it
   * from then on; the show's readers (their publish ended) and its pull (cut off) relaunched on the old
   * key before the next pass replaced them: six dead ffmpeg starts per rotation (five readers and the
   * pull), holding the start gate's slots just as the new pull and readers started. Refused here, the
   * run stays idle until the pass replaces it with one on the new key.
   */
  private fence(o: OwnedShow, showKey: string | undefined, log: Logger): () => Promise<boolean> {
    return async () => {
      if (this.owned.get(showKeyOf(o.partnerId, o.showId)) !== o) return false;
      const [held, owner] = await Promise.all([this.deps.relay.holdsLease(o.partnerId, o.showId, this.token), showKey === undefined ? undefined : this.deps.relay.showOfKey(showKey)]);
      if (!held) return false;
      if (showKey === undefined || (owner?.partnerId === o.partnerId && owner.showId === o.showId)) return true;
      log.debug("not (re)started: the show's stream key was rotated; the next pass starts it with the new key");
      return false;
    };
  }

  private newSupervisor(o: OwnedShow, targetId: string, spec: DestinationSpec, log: Logger, prev?: RelayStatus | null, showKey?: string): DestinationSupervisor {
    const carried = o.carried?.get(targetId);
    o.carried?.delete(targetId);
    if (!prev && carried) prev = { state: 'idle', bitrateKbps: 0, since: new Date().toISOString(), lastError: null, ...carried };
    const sup: DestinationSupervisor = new DestinationSupervisor(
      spec,
      {
        ffmpeg: this.deps.ffmpeg,
        log,
        stallMs: this.deps.stallMs,
        startTimeoutMs: this.deps.startTimeoutMs,
        startGate: this.startGate,
        inputPeers: this.inputPeers,
        publisherDataAt: this.deps.publisherDataAt,
        stallNoticeMs: this.stallNoticeMs,
        waitForInput: true,
        mayStart: this.fence(o, showKey, log),
        onStateChange: (status) => {
          void this.report(o, targetId, status);
        },
      },
      prev,
    );
    return sup;
  }

  private async report(o: OwnedShow, targetId: string, status: RelayStatus): Promise<void> {
    try {
      await this.deps.relay.setStatus(o.partnerId, o.showId, targetId, { ...status });
      const mirror = o.mirrors.get(targetId);
      // A destination stopped because its target was disabled (or removed) reports it so.
      const view = { enabled: o.enabledTargets?.has(targetId) ?? true, desired: o.desired };
      if (mirror) await this.deps.onStateChange?.(o.partnerId, o.showId, mirror, { ...status }, view);
    } catch (err) {
      this.deps.log.warn({ err: { message: (err as Error).message }, showId: o.showId, targetId }, 'could not report a relay state change');
    }
  }

  /** The push URL with its host checked by the SSRF guard (for rtmp:// the checked address is used). */
  private async checkedOutput(ingest: { url: string; streamKey: string }): Promise<string> {
    const u = new URL(ingest.url);
    if (!/^rtmps?:$/.test(u.protocol)) throw new Error(`${u.protocol}// is not an RTMP ingest`);
    const { address, family } = await this.deps.destinations.resolve(u.hostname);
    if (u.protocol === 'rtmp:' && !this.deps.destinations.allowPrivate) u.hostname = family === 6 ? `[${address}]` : address;
    return joinStreamUrl(u.toString(), ingest.streamKey);
  }

  private async ensurePuller(o: OwnedShow, desired: DesiredShow, showKey: string): Promise<void> {
    const sourceUrl = desired.sourceUrl;
    // A rotated ingest key replaces the pull too: the edge cut the old key's publish off and refuses it
    // as unknown ever after, so a pull kept publishing with it left every destination waiting.
    if (o.puller && (o.puller.sourceUrl !== sourceUrl || o.puller.showKey !== showKey)) {
      await o.puller.sup.stop();
      o.puller.proxied?.close();
      o.puller = undefined;
    }
    if (!sourceUrl) {
      // Pushed to now (the sourceUrl was dropped): no pull's error is the show's any more.
      o.sourceError = null;
      o.sourceRefusedForGood = false;
    }
    if (!sourceUrl || o.puller) return;
    const log = this.deps.log.child({ partnerId: o.partnerId, showId: o.showId, role: 'pull' });
    const edge = this.deps.edgeUrl();
    const secrets = [showKey];
    // lastError (viewer keys, mirror.updated) and the log show the URL as a viewer key reads it.
    const masked = maskUrl(sourceUrl);
    if (!edge) {
      o.sourceError = `source: cannot pull ${masked}: this relay process has no ingest edge (RELAY_EDGE=embedded or RELAY_EDGE_INTERNAL_URL)`;
      return;
    }
    let input = sourceUrl;
    let host = '';
    try {
      const u = new URL(sourceUrl);
      host = u.hostname;
      const { address, family } = await this.deps.destinations.resolve(u.hostname);
      if ((u.protocol === 'rtmp:' || u.protocol === 'srt:') && !this.deps.destinations.allowPrivate) {
        u.hostname = family === 6 ? `[${address}]` : address;
        input = u.toString();
      }
    } catch (err) {
      const reason = maskHostIn((err as Error).message, sourceUrl);
      const forGood = refusedWhateverDns(host, this.deps.destinations);
      const why = `${SOURCE_REFUSED} ${masked}: ${reason}${forGood ? FOR_GOOD : ''}`;
      // Logged once per show and refusal, not every pass (each second per live show, at info, it was).
      if (o.sourceError !== why) log.warn({ reason, forGood }, 'sourceUrl refused');
      o.sourceError = why;
      o.sourceRefusedForGood = forGood;
      // A name is checked again on the next pass (a DNS answer may change); never handed to ffmpeg.
      return;
    }
    o.sourceRefusedForGood = false;
    // HLS: ffmpeg reads the playlist and everything it names through the guarded loopback proxy
    // (src/relay/hls.proxy.ts), never from the addresses the playlist names; as HLS only, over http only.
    let proxied: HlsProxySession | undefined;
    if (/^https?:/i.test(input)) {
      proxied = (await this.hlsProxy()).open(input);
      input = proxied.url;
      secrets.push(...proxied.secretParts);
    }
    const spec: DestinationSpec = { input, output: joinStreamUrl(edge, showKey), secrets };
    const sup = new DestinationSupervisor(spec, {
      ffmpeg: this.deps.ffmpeg,
      log,
      stallMs: this.deps.stallMs,
      startTimeoutMs: this.deps.startTimeoutMs,
      startGate: this.startGate,
      realtimeInput: proxied !== undefined,
      publishes: true,
      inputArgs: proxied ? ['-f', 'hls', '-protocol_whitelist', 'http,tcp'] : undefined,
      mayStart: this.fence(o, showKey, log),
      onStateChange: (status) => {
        const refusal = proxied?.lastRefusal;
        const why = refusal ? `source: ${refusal}` : status.lastError ? `source: ${status.lastError.replace(/^relay: /, '')}` : o.sourceError;
        o.sourceError = status.state === 'sending' ? null : why;
      },
    });
    o.puller = { spec, sup, sourceUrl, showKey, proxied };
    o.sourceError = null;
    sup.start();
  }
}
