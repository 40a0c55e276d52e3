/**
 * The ops console's read model: the board (today's and live shows × targets), a show's detail
 * (timeline and sales), reconciliations and outbound endpoints. Reads only what the REST API already
 * stores; every read is scoped to the partners the caller may see.
 */
import type { AttributionService } from '../../attribution/attribution.service.js';
import type { DesiredShow } from '../../domain/desired-state.js';
import type { MirrorDoc } from '../../domain/mirror.js';
import { currencyExponent } from '../../domain/money.js';
import { showView } from '../../mirror/show.view.js';
import { maskEndpointUrl } from '../../relay/mask.js';
import type { OutboundService } from '../../outbound/outbound.service.js';
import type { Principal } from '../../store/apikey.repository.js';
import type { Keys } from '../../store/keys.js';
import type { Partner, PartnerRepository, TargetRecord } from '../../store/partner.repository.js';
import type { ReconcileRepository } from '../../store/reconcile.repository.js';
import { tupleBefore, tupleCursor, tupleOrder } from '../../lib/tuple-cursor.js';
import { inOneWrite, unreadableAs, type RedisClient } from '../../store/redis.js';
import { storedRecordsUnreadable } from '../../lib/metrics.js';
import { streamIdTime as atOf } from '../../store/stream-id.js';
import { comesAfter, pageCursor, zrevPage } from '../../store/zset-page.js';
import type { ShowActivityRepository } from '../../store/show-activity.repository.js';
import type { ShowRepository } from '../../store/show.repository.js';
import type { RelayRepository, RelayStatus } from '../../store/relay.repository.js';
import type { Readiness, ReadinessService } from '../../mirror/readiness.service.js';
import { unlessUnreadable, type OnUnreadable } from '../../store/stored-record.js';

const HOUR = 3_600_000;

/**
 * For a board read's `.catch`: false for a record that does not read (a key of another type: counted,
 * as StoredRecordCorruptError's own are already), the error thrown again otherwise (Redis down: the
 * board fails, never a partial one).
 */
const unreadableAsFalse = unreadableAs(false as const, 'show');

/** unreadableAsFalse uncounted (its caller counts). */
const uncountedUnreadable = unreadableAs(false as const);

/**
 * "Today" on a 24-hour ops floor: scheduled within a day either side of now, or live whatever its
 * scheduledAt (the partner's live-show index; live shows stored before it existed are added by a
 * one-time walk per partner, ShowRepository.backfillLive). The shows scheduled up to a week before
 * the window are read too, for those still live (as before the index).
 */
const WINDOW_MS = 24 * HOUR;
const LIVE_LOOKBACK_MS = 7 * 24 * HOUR;
/**
 * Shows read per partner in today's window (the nearest to now, before or after it), and again among
 * the earlier ones (for those still live).
 */
export const MAX_SHOWS_PER_PARTNER = 300;
/** Partners whose show counts the board sends at once (OpsService.withShows). */
const BOARD_BATCH = 500;

export interface BoardCell {
  targetId: string;
  targetName: string;
  platform: string;
  enabled: boolean;
  state: string;
  since: string | null;
  pins: { mirrored: number; wanted: number };
  relay: Record<string, unknown> | null;
  readiness: Record<string, unknown> | null;
  externalId: string | null;
  url: string | null;
  lastError: string | null;
  needsAction: boolean;
  updatedAt: string | null;
}

export interface BoardRow {
  partnerId: string;
  partnerName: string;
  showId: string;
  title: string;
  state: string;
  scheduledAt: string;
  mirrors: BoardCell[];
}

export interface OpsDeps {
  redis: RedisClient;
  keys: Keys;
  partners: PartnerRepository;
  shows: ShowRepository;
  activity: ShowActivityRepository;
  attribution: AttributionService;
  reconciliations: ReconcileRepository;
  outbound: OutboundService;
  /** Each mirror's relay status (video relay); absent: cells carry no relay. */
  relay?: RelayRepository;
  /** Pre-show readiness results; absent: cells carry no readiness. */
  readiness?: ReadinessService;
}

function objectOr(v: unknown): Record<string, unknown> | null {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** A mirror the operator should look at: it stopped, the platform wants a hand, or it carries an error. */
export function needsAction(state: string, lastError: string | null, relay: Record<string, unknown> | null, readiness: Record<string, unknown> | null): boolean {
  return state === 'failed' || state === 'action_required' || lastError !== null || relay?.['state'] === 'failed' || readiness?.['state'] === 'blocked';
}

export function boardCells(desired: DesiredShow, targets: TargetRecord[], docs: (MirrorDoc | null)[], relay: (RelayStatus | null)[] = [], readiness: (Readiness | null)[] = []): BoardCell[] {
  // No stream keys on the board: the ingest url is not shown and mirror keys are never revealed.
  const view = showView(desired, targets, docs, { ingest: { url: '' }, relay, mirrorIngest: [], revealMirrorKeys: false }, readiness);
  const byId = new Map(targets.map((t, i) => [t.id, { t, doc: docs[i] ?? null }]));
  const wanted = desired.state === 'live' || desired.state === 'scheduled' ? desired.pinned.size : 0;
  return view.mirrors.map((m) => {
    const { t, doc } = byId.get(m.targetId)!;
    // Relay and readiness (README "Video relay", issue 11 item 6): shown when the view or the stored mirror carries them.
    const extra = doc as (MirrorDoc & { relay?: unknown; readiness?: unknown }) | null;
    const fromView = m as typeof m & { relay?: unknown; readiness?: unknown };
    const relay = objectOr(fromView.relay ?? extra?.relay);
    const readiness = objectOr(fromView.readiness ?? extra?.readiness);
    return {
      targetId: m.targetId,
      targetName: t.name,
      platform: m.platform,
      enabled: t.enabled,
      state: m.state,
      since: doc?.since?.state === doc?.state ? (doc?.since?.at ?? null) : null,
      pins: { mirrored: m.pins.filter((p) => p.state === 'pinned' && desired.pinned.has(p.productId)).length, wanted },
      relay,
      readiness,
      externalId: m.externalId,
      url: m.url,
      lastError: m.lastError,
      needsAction: needsAction(m.state, m.lastError, relay, readiness),
      updatedAt: m.updatedAt,
    };
  });
}

export class OpsService {
  constructor(private readonly d: OpsDeps) {}

  /** Partners whose live-show index this process has backfilled (or is backfilling): one walk each. */
  private readonly liveBackfill = new Map<string, Promise<void>>();

  private backfilledLive(partnerId: string): Promise<void> {
    let done = this.liveBackfill.get(partnerId);
    if (!done) {
      done = this.d.shows.backfillLive(partnerId);
      // A failed walk (storage down) is tried again at the next board.
      done.catch(() => this.liveBackfill.delete(partnerId));
      this.liveBackfill.set(partnerId, done);
    }
    return done;
  }

  private async cells(partnerId: string, showId: string, desired: DesiredShow, targets: TargetRecord[], docs: (MirrorDoc | null)[]): Promise<BoardCell[]> {
    const ids = targets.map((t) => t.id);
    const [relay, readiness] = await Promise.all([
      this.d.relay ? this.d.relay.statusesAsRelayed(partnerId, showId, ids) : Promise.resolve([]),
      this.d.readiness ? this.d.readiness.get(partnerId, showId, ids) : Promise.resolve([]),
    ]);
    return boardCells(desired, targets, docs, relay, readiness);
  }

  /** The partners a principal may see (a partner key: its own). */
  async partnersFor(p: Principal): Promise<Partner[]> {
    if (p.role === 'partner') {
      const own = p.partnerId ? await this.d.partners.get(p.partnerId) : null;
      return own ? [own] : [];
    }
    return this.d.partners.list();
  }

  /**
   * Of `ids`, those the board has anything to read for: a show scheduled from LIVE_LOOKBACK_MS before
   * now to WINDOW_MS after it (the whole range partnerRows reads), or a show in the live-show index.
   * Two counts a partner, sent BOARD_BATCH partners at once in one write (inOneWrite): 2,000 partners
   * without shows were 2,000 bundle reads and five index reads each, every second of an open stream.
   * Read each board (no cache): a show written a moment ago is on the next one. Each partner's count of
   * live shows comes back too (partnerRows reads the live-show index only when it is not empty).
   */
  private async withShows(ids: string[], nowMs: number): Promise<{ busy: boolean; live: number; unreadable?: true }[]> {
    // A partner whose show index does not read (a key of another type) is left off the board alone,
    // counted once a board (its walk and its count below fail alike: counted by the count's failure).
    const walked = await Promise.all(ids.map((id) => this.backfilledLive(id).then(() => true, uncountedUnreadable)));
    const out: { busy: boolean; live: number; unreadable?: true }[] = [];
    for (let i = 0; i < ids.length; i += BOARD_BATCH) {
      const batch = ids.slice(i, i + BOARD_BATCH);
      const counts = await inOneWrite(this.d.redis, () =>
        Promise.all(
          batch.map((id) =>
            Promise.all([this.d.redis.zcount(this.d.keys.partnerShows(id), nowMs - LIVE_LOOKBACK_MS, nowMs + WINDOW_MS), this.d.redis.scard(this.d.keys.partnerLiveShows(id))]).catch(unreadableAsFalse),
          ),
        ),
      );
      counts.forEach((c, j) => {
        if (c !== false && walked[i + j]) return out.push({ busy: c[0] > 0 || c[1] > 0, live: c[1] });
        if (c !== false) storedRecordsUnreadable.inc({ family: 'show' });
        return out.push({ busy: false, live: 0, unreadable: true });
      });
    }
    return out;
  }

  /**
   * `unreadable` (absent when none): the parts left off the board because their stored record does not
   * read (a data fault for an operator, counted in syndicast_stored_records_unreadable_total): a
   * partner's show index of another type (that partner's shows), or one show's record. One such key
   * answered the whole board 500 for everyone.
   */
  async board(p: Principal, nowMs = Date.now()): Promise<{ generatedAt: string; partners: { id: string; name: string }[]; shows: BoardRow[]; leftOff: number; unreadable?: number }> {
    const partners = await this.partnersFor(p);
    const counts = await this.withShows(
      partners.map((x) => x.id),
      nowMs,
    );
    // A partner whose part does not read (its show index of another type) is left off alone, counted.
    const rowsOf = (partner: Partner, live: number) =>
      this.partnerRows(partner, nowMs, live).catch((err: unknown) => {
        unreadableAsFalse(err);
        return { rows: [], leftOff: 0, unreadable: 1 };
      });
    const parts = await Promise.all(partners.flatMap((partner, i) => (counts[i]?.busy ? [rowsOf(partner, counts[i].live)] : [])));
    const rows = parts.flatMap((x) => x.rows);
    rows.sort((a, b) => rank(a) - rank(b) || a.scheduledAt.localeCompare(b.scheduledAt) || a.showId.localeCompare(b.showId));
    const leftOff = parts.reduce((n, x) => n + x.leftOff, 0);
    const unreadable = counts.filter((c) => c.unreadable).length + parts.reduce((n, x) => n + x.unreadable, 0);
    return { generatedAt: new Date(nowMs).toISOString(), partners: partners.map((x) => ({ id: x.id, name: x.name })), shows: rows, leftOff, ...(unreadable > 0 ? { unreadable } : {}) };
  }

  /**
   * A partner's rows, and how many of its shows in today's window are not among them (over
   * MAX_SHOWS_PER_PARTNER). `liveCount`: its live-show index's size, as the board's count pass read it
   * (0: the index is not read again).
   */
  private async partnerRows(partner: Partner, nowMs: number, liveCount: number): Promise<{ rows: BoardRow[]; leftOff: number; unreadable: number }> {
    const bundle = await this.d.partners.bundle(partner.id);
    if (!bundle) return { rows: [], leftOff: 0, unreadable: 0 };
    // Today's window, and apart from it the shows scheduled before it, newest first (only live ones stay):
    // one read of the whole week oldest first let a busy partner's past days fill the limit, and
    // today's and live shows fell off the board.
    // Live shows whatever their scheduledAt come from the partner's live-show index (a show that went
    // live late, or streams for days, was missing once its scheduledAt was a week old).
    await this.backfilledLive(partner.id);
    const key = this.d.keys.partnerShows(partner.id);
    // Today's window from now outwards: the next shows soonest first, the past ones latest first, and
    // of both the MAX_SHOWS_PER_PARTNER nearest to now. One read of the window oldest first kept a busy
    // day's first 300 (yesterday evening's, long over) and left every show of the hours ahead off the
    // board, with nothing saying so.
    const [ahead, behind, inWindow, earlier, live] = await Promise.all([
      this.d.redis.zrangebyscore(key, nowMs, nowMs + WINDOW_MS, 'WITHSCORES', 'LIMIT', 0, MAX_SHOWS_PER_PARTNER),
      this.d.redis.zrevrangebyscore(key, `(${nowMs}`, nowMs - WINDOW_MS, 'WITHSCORES', 'LIMIT', 0, MAX_SHOWS_PER_PARTNER),
      this.d.redis.zcount(key, nowMs - WINDOW_MS, nowMs + WINDOW_MS),
      this.d.redis.zrevrangebyscore(key, `(${nowMs - WINDOW_MS}`, nowMs - LIVE_LOOKBACK_MS, 'LIMIT', 0, MAX_SHOWS_PER_PARTNER),
      liveCount > 0 ? this.d.shows.liveShowIds(partner.id, MAX_SHOWS_PER_PARTNER) : [],
    ]);
    const near = nearest([...pairs(ahead), ...pairs(behind)], nowMs, MAX_SHOWS_PER_PARTNER);
    const ids = [...new Set([...near, ...earlier, ...live])];
    const rows: BoardRow[] = [];
    let unreadable = 0;
    await Promise.all(
      ids.map(async (showId) => {
        // A show whose record does not read is left off (counted), as by the show list.
        const desired = await unlessUnreadable(this.d.shows.desired(partner.id, showId), () => (unreadable += 1));
        if (!desired) return;
        const at = Date.parse(desired.scheduledAt);
        if (desired.state !== 'live' && !(Math.abs(at - nowMs) <= WINDOW_MS)) return;
        // Its mirror or relay status records not reading leaves that show off too (counted), not the board.
        const mirrors = await unlessUnreadable(
          this.d.shows.getMirrors(partner.id, showId, bundle.targets).then((docs) => this.cells(partner.id, showId, desired, bundle.targets, docs)),
          () => (unreadable += 1),
        );
        if (!mirrors) return;
        rows.push({ partnerId: partner.id, partnerName: partner.name, showId, title: desired.title, state: desired.state, scheduledAt: desired.scheduledAt, mirrors });
      }),
    );
    // The window's shows on the board: the nearest read, and live ones of the window beyond them.
    const shownInWindow = rows.filter((r) => Math.abs(Date.parse(r.scheduledAt) - nowMs) <= WINDOW_MS).length;
    return { rows, leftOff: Math.max(0, inWindow - shownInWindow), unreadable };
  }

  /** The show with its mirrors as board cells, its timeline (newest first) and its sales per target. */
  async showDetail(partnerId: string, showId: string) {
    const bundle = await this.d.partners.bundle(partnerId);
    if (!bundle) return null;
    const desired = await this.d.shows.desired(partnerId, showId);
    if (!desired) return null;
    const docs = await this.d.shows.getMirrors(partnerId, showId, bundle.targets);
    const [timeline, report] = await Promise.all([this.timeline(partnerId, showId, new Set(bundle.targets.map((t) => t.id))), this.d.attribution.showReport(partnerId, showId, {})]);
    const platformOf = new Map(bundle.targets.map((t) => [t.id, t]));
    const sales = report.byTarget.map((r) => ({
      targetId: r.targetId ?? '',
      targetName: platformOf.get(r.targetId ?? '')?.name ?? r.targetId ?? '',
      platform: platformOf.get(r.targetId ?? '')?.platform ?? 'unknown',
      currency: r.currency,
      // The amounts' ISO 4217 minor unit: the console cannot take it from the browser's Intl, whose
      // display digits differ for some currencies (HUF, COP, IDR 0 instead of 2; IQD 0 instead of 3).
      minorUnits: currencyExponent(r.currency),
      orders: r.orders,
      grossAmount: r.grossAmount,
      refundedAmount: r.refundedAmount,
      commission: r.commission,
    }));
    return {
      partner: { id: bundle.partner.id, name: bundle.partner.name },
      show: { id: desired.showId, title: desired.title, state: desired.state, scheduledAt: desired.scheduledAt, pinnedProductIds: [...desired.pinned].sort(), products: [...desired.products.values()].map((x) => ({ id: x.id, title: x.title })) },
      mirrors: await this.cells(partnerId, showId, desired, bundle.targets, docs),
      timeline,
      sales,
    };
  }

  private async timeline(partnerId: string, showId: string, targetIds: Set<string>): Promise<TimelineItem[]> {
    const k = this.d.keys;
    const [events, activity, audit] = await Promise.all([
      this.d.redis.xrevrange(k.showEvents(partnerId, showId), '+', '-', 'COUNT', 200),
      this.d.activity.list(partnerId, showId, 300),
      this.d.redis.xrevrange(k.audit(partnerId), '+', '-', 'COUNT', 2000),
    ]);
    const items: TimelineItem[] = [];
    for (const [id, fields] of events) {
      const ev = parseField<{ type?: string; occurredAt?: string; data?: { productId?: string; show?: { state?: string } } }>(fields, 'event');
      if (!ev?.type) continue;
      items.push({ at: atOf(id), kind: 'event', targetId: null, summary: `partner sent ${ev.type}${ev.data?.productId ? ` (${ev.data.productId})` : ''}`, detail: ev.occurredAt ? `occurred at ${ev.occurredAt}` : null });
    }
    for (const a of activity) {
      if (a.kind === 'sync') items.push({ at: a.at, kind: 'sync', targetId: a.targetId, summary: `sync run: ${a.outcome} in ${a.durationMs} ms`, detail: a.error ?? null });
      else items.push({ at: a.at, kind: 'effect', targetId: a.targetId, summary: `${a.platform} mirror ${a.state}${a.externalId ? ` (${a.externalId})` : ''}${a.pinned.length ? `, pinned ${a.pinned.join(', ')}` : ''}`, detail: a.lastError });
    }
    for (const [id, fields] of audit) {
      // Entries from before and after actors were recorded: {who, action, showId, targetId, ...} or {actor, action, ...}.
      const e = parseField<{ action?: string; showId?: string; targetId?: string; who?: string; actor?: { keyId?: string; role?: string; name?: string }; detail?: unknown }>(fields, 'entry');
      if (!e?.action) continue;
      // This show's actions, and those on one of its targets (disabled, credentials changed).
      if (e.showId !== showId && !(e.showId === undefined && e.targetId !== undefined && targetIds.has(e.targetId))) continue;
      // The key id always: a name is a free label (two keys may share one, or take the bootstrap key's).
      const keyId = e.actor?.keyId ?? e.who ?? 'unknown';
      const who = e.actor?.name && e.actor.name !== keyId ? `${e.actor.name} [${keyId}]` : keyId;
      items.push({ at: atOf(id), kind: 'operator', targetId: e.targetId ?? null, summary: `${e.action} by ${who}${e.actor?.role ? ` (${e.actor.role})` : ''}`, detail: e.detail ? JSON.stringify(e.detail) : null });
    }
    items.sort((a, b) => b.at.localeCompare(a.at));
    return items.slice(0, 400);
  }

  /**
   * A page of the reconciliation runs of the partners the caller may see, newest first across them
   * (each partner's list is ordered by request time, then id: src/store/zset-page.ts), from `start`
   * (the last run of the previous page). Each partner's list is read only up to `limit` runs after the
   * cursor (its scores alone); the records of the page's runs only. It read 20 whole runs (up to 100
   * discrepancies each) of every partner at once, however many partners there were.
   */
  async reconciliations(p: Principal, limit: number, start?: { score: number; member: string }, onUnreadable?: OnUnreadable) {
    const partners = await this.partnersFor(p);
    const pages = await Promise.all(partners.map((x) => zrevPage(this.d.redis, this.d.keys.partnerReconciliations(x.id), start ? { after: start } : undefined, limit)));
    const merged = pages.flatMap((pg) => pg.items).sort((a, b) => (comesAfter(b, a) ? -1 : comesAfter(a, b) ? 1 : 0));
    const page = merged.slice(0, limit);
    const more = merged.length > limit || pages.some((pg) => pg.more);
    // A run that does not read is left out (counted; logged by the repository's caller below): the others are listed.
    const runs = (await Promise.all(page.map((i) => unlessUnreadable(this.d.reconciliations.get(i.member), onUnreadable)))).filter((r) => r !== null);
    const last = page.at(-1);
    return {
      partners: partners.map((x) => ({ id: x.id, name: x.name })),
      reconciliations: runs.map((r) => ({
        id: r.id,
        partnerId: r.partnerId,
        trigger: r.trigger,
        status: r.status,
        from: r.from,
        to: r.to,
        createdAt: r.createdAt,
        completedAt: r.completedAt ?? null,
        error: r.error ?? null,
        discrepancyCount: r.discrepancies.length,
        healed: r.discrepancies.filter((x) => x.healed).length,
        discrepancies: r.discrepancies.slice(0, 100),
      })),
      nextCursor: more && last ? pageCursor(last) : null,
    };
  }

  /**
   * A page of the outbound endpoints of the partners the caller may see: disabled first, then failing,
   * then healthy, each by partner id and endpoint id (code-unit order), after `after` (the last of the
   * previous page). The endpoints' records are read whole (to order them); the attempt logs only of the
   * page's endpoints, all at once in one write (inOneWrite). It read every endpoint's log, one after
   * another.
   */
  async endpoints(p: Principal, limit: number, after?: EndpointCursor, onUnreadable?: OnUnreadable) {
    const partners = await this.partnersFor(p);
    const all = (await Promise.all(partners.map((x) => this.d.outbound.endpoints.list(x.id)))).flat();
    const keyed = all.map((e) => ({ e, key: [failingRank(e), e.partnerId, e.id] as EndpointCursor })).filter((x) => !after || tupleBefore(after, x.key));
    keyed.sort((a, b) => tupleOrder(a.key, b.key));
    const page = keyed.slice(0, limit);
    // An attempt entry that does not read is left out (`onUnreadable`); a log of another type, that endpoint's failures.
    const logs = await inOneWrite(this.d.redis, () =>
      Promise.all(page.map(({ e }) => unlessUnreadable(this.d.outbound.endpoints.attempts(e.partnerId, e.id, 50, undefined, onUnreadable), onUnreadable))),
    );
    // A viewer key sees the URL without its secrets (a receiver's ?token=, user:password), as on GET …/endpoints.
    const masked = p.role === 'viewer';
    const out: OpsEndpoint[] = page.map(({ e }, i) => ({
      id: e.id,
      partnerId: e.partnerId,
      url: masked ? maskEndpointUrl(e.url) : e.url,
      events: e.events,
      enabled: e.enabled,
      disabledAt: e.disabledAt,
      disabledReason: e.disabledReason,
      failingSince: e.failingSince ? new Date(e.failingSince).toISOString() : null,
      lastSuccessAt: e.lastSuccessAt,
      recentFailures: (logs[i]?.attempts ?? [])
        .filter((a) => !a.success)
        .slice(0, 10)
        .map((a) => ({ at: a.at, messageId: a.messageId, eventType: a.eventType, statusCode: a.statusCode, error: a.error })),
    }));
    const last = page.at(-1);
    return { partners: partners.map((x) => ({ id: x.id, name: x.name })), endpoints: out, nextCursor: keyed.length > limit && last ? tupleCursor(last.key) : null };
  }
}

/** Where the endpoints view stands: [0 disabled | 1 failing | 2 healthy, partnerId, endpointId]. */
export type EndpointCursor = [number, string, string];
/** The endpoints view cursor's fields (src/lib/tuple-cursor.ts). */
export const ENDPOINT_CURSOR = ['int', 'string', 'string'] as const;

function failingRank(e: { enabled: boolean; failingSince: number | string | null | undefined }): number {
  return !e.enabled ? 0 : e.failingSince ? 1 : 2;
}

export interface OpsEndpoint {
  id: string;
  partnerId: string;
  url: string;
  events: string[];
  enabled: boolean;
  disabledAt: string | null;
  disabledReason: string | null;
  failingSince: string | null;
  lastSuccessAt: string | null;
  recentFailures: { at: string; messageId: string; eventType: string; statusCode: number | null; error: string | null }[];
}

export interface TimelineItem {
  at: string;
  kind: 'event' | 'sync' | 'effect' | 'operator';
  targetId: string | null;
  summary: string;
  detail: string | null;
}

/** [member, score] pairs of a WITHSCORES reply. */
function pairs(flat: string[]): [string, number][] {
  const out: [string, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

/** The `n` members scheduled nearest to `nowMs`, either side (a tie: the later one first). */
function nearest(scored: [string, number][], nowMs: number, n: number): string[] {
  return scored
    .sort((a, b) => Math.abs(a[1] - nowMs) - Math.abs(b[1] - nowMs) || b[1] - a[1])
    .slice(0, n)
    .map(([id]) => id);
}

function rank(r: BoardRow): number {
  if (r.mirrors.some((m) => m.needsAction)) return 0;
  return r.state === 'live' ? 1 : r.state === 'scheduled' ? 2 : 3;
}

function parseField<T>(fields: string[], name: string): T | null {
  const raw = fields[fields.indexOf(name) + 1];
  if (!raw || fields.indexOf(name) < 0) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}
