/**
 * Inbound partner events (README "Walkthrough with curl" and docs/architecture.md): verify, validate,
 * store durably (inbox + event log + desired state in one atomic step) together with what asks for the
 * show's syncs: on a single Redis with INGEST_SYNC_JOBS=inline (the default) the show's sync jobs
 * themselves, one per enabled target, made in BullMQ's keys by the same Lua step
 * (src/queues/inline-sync.ts); otherwise (INGEST_SYNC_JOBS=dispatch, and always on a Redis Cluster) a
 * sync-dispatch entry for the show, which the sync dispatcher (src/mirror/sync.dispatcher.ts, worker
 * role) turns into one coalesced sync job per enabled target. On a single Redis the webhook-id claim,
 * the write and the jobs (or entry) are one Lua call (one round trip per accepted event); on a Redis Cluster they are
 * three steps in this order (claim, write, entry). An order event on a single Redis is one Lua call
 * too (claims, pending-orders listing, store) before the attribution queue's add; on a Cluster its
 * claims, listing and store are separate steps (ingestOrderEvent: a claim whose event was never stored
 * is taken back, or its webhook-id claim taken over after CLAIM_PROVISIONAL_SEC; a refund-id claim is
 * permanent unless its store definitely wrote nothing). The caller answers 202 only after this returns;
 * any Redis failure propagates (→ 503), and a retried delivery then takes the duplicate path, which
 * writes the dispatch entry (or adds the jobs) again, so nothing is lost between the steps.
 */
import { inexactIntegerLiteral } from '../lib/json-numbers.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { orderKey, registerFor } from '../domain/desired-state.js';
import { currencyIssues, impliedState, PartnerEventSchema, showLogEntry, utcTimestamp, type PartnerEvent } from '../domain/events.js';
import { AppError, badRequest, notFound, unauthorized, zodFieldErrors } from '../lib/errors.js';
import { SecretUnreadableError } from '../lib/crypto.js';
import { currentRequestId } from '../lib/request-context.js';
import { LONE_SURROGATE_MESSAGE, loneSurrogateAt } from '../lib/well-formed.js';
import { partnerOrderRef } from '../domain/order.js';
import { orderIdOf } from '../queues/attribution.queue.js';
import type { IngestSyncMode, InlineSyncJobs } from '../queues/inline-sync.js';
import type { Keys } from '../store/keys.js';
import type { PartnerBundle, PartnerRepository } from '../store/partner.repository.js';
import type { RefundIdClaims } from '../store/refund-id.repository.js';
import type { ReplicaAck } from '../store/replica-ack.js';
import { SHOW_REGISTERS_MAX, type OrderCurrencyStep, type OrderEventRepository, type ShowRepository } from '../store/show.repository.js';
import { orderScope, showScope, type WebhookIdClaims } from '../store/webhook-id.repository.js';
import { SignatureError, verifyWebhook, type WebhookHeaders } from './signature.js';

/** EVENT_FUTURE_SLACK_SEC's default: an event may say it happened up to 24 h from now. */
export const DEFAULT_EVENT_FUTURE_SLACK_SEC = 86_400;

export interface IngestResult {
  eventId: string;
  duplicate: boolean;
  /**
   * Every write of the request is held by a replica already (the Cluster path WAITs on the masters it
   * wrote to itself, `replicaAck`): the API's acknowledgement hook does not WAIT on every master again.
   */
  replicated?: boolean;
}

export interface OrderEventSink {
  /** `otherCurrency`: the store's mark of an order.created (OrderIngestOne.otherCurrency), for the attribution job. */
  (partnerId: string, eventId: string, event: PartnerEvent, otherCurrency?: boolean): Promise<void>;
}

export interface IngestDeps {
  partners: PartnerRepository;
  shows: ShowRepository;
  orders: OrderEventRepository;
  /** Partner-wide webhook-id claims (one per id, whichever show or order it names). */
  webhookIds: WebhookIdClaims;
  /** Partner-wide refund-id claims (a refund id names one order's refund). */
  refundIds: RefundIdClaims;
  toleranceSec: number;
  /**
   * How far past now an event's `occurredAt` may be (EVENT_FUTURE_SLACK_SEC, default 24 h). Later
   * `occurredAt` wins per show and per pin (contract §3), so one event from a partner whose clock
   * says 9999 would win against every later one and freeze the show for good; it is refused (400).
   * An order's or refund's `createdAt` has a wider bound (CREATED_AT_FUTURE_MAX_MS, below).
   */
  futureSlackSec?: number;
  log: Logger;
  /** Hands order events to attribution (its queue); must be idempotent by eventId. */
  onOrderEvent?: OrderEventSink;
  /**
   * With WAIT on (a Cluster with replicas), a show event on the Cluster path is acknowledged by WAITs
   * on the masters it wrote to, each joined as soon as its write returned (ReplicaAck.confirmKey: one
   * WAIT shared by the requests waiting on that master, issued after their writes), instead of a WAIT
   * on every master of both of the API's connections after the last write. `keys` names them.
   */
  replicaAck?: Pick<ReplicaAck, 'active' | 'confirmKey'>;
  keys?: Keys;
  /**
   * Where the ledger holds a partner order (AttributionRepository): an `order.refunded` in another
   * currency than its order's is refused (422) — on a single Redis inside the order event's one store
   * call (the order's ledger hash is one more key of it), on a Cluster by a read before the claims.
   * Before the ledger holds the order, the currency recorded with its order.created decides (inside the
   * store, both topologies: IngestService.refundCurrency).
   */
  ledger?: LedgerOrders;
}

/** What the edge reads of the ledger: a partner order's currency (by its ref), the hash key that holds it, whether it holds a refund of it. */
export interface LedgerOrders {
  orderCurrency(partnerId: string, ref: string): Promise<string | undefined>;
  orderKey(partnerId: string, ref: string): string;
  hasRefund(partnerId: string, ref: string, refundId: string): Promise<boolean>;
}

/** How far ahead of now an order's or refund's `createdAt` may be (366 days): far-future dates refused. */
const CREATED_AT_FUTURE_MAX_MS = 366 * 86_400_000;

export class IngestService {
  /** How a show event on one Redis asks for its syncs (src/queues/inline-sync.ts); unset: the dispatch entry. */
  private syncJobs: { mode: Exclude<IngestSyncMode, 'dispatch'>; jobs: InlineSyncJobs } | undefined;
  constructor(private readonly deps: IngestDeps) {}

  /**
   * On one Redis only (the caller checks: createRuntime, INGEST_SYNC_JOBS): `inline` makes the sync
   * jobs inside the ingest script (no dispatch entry), `dispatch` writes the entry the dispatcher turns
   * into jobs, `none` makes neither (the bench's upper bound, bench/sut/service-api.ts: the syncs are
   * left to the sweep; never a production setting).
   */
  setSyncJobs(mode: IngestSyncMode, jobs: InlineSyncJobs): void {
    this.syncJobs = mode === 'dispatch' ? undefined : { mode, jobs };
  }

  async ingest(partnerId: string, headers: WebhookHeaders, raw: Buffer): Promise<IngestResult> {
    const bundle = await this.deps.partners.bundleCached(partnerId);
    if (!bundle) throw notFound(`partner ${partnerId}`);
    const { secrets, unreadable } = this.deps.partners.activeSecrets(bundle);
    try {
      verifyWebhook(headers, raw, secrets, this.deps.toleranceSec);
    } catch (err) {
      // A secret no key opens might have verified it: not the partner's fault, a 503 it retries (it was a 500).
      if (err instanceof SignatureError) throw unreadable > 0 ? new SecretUnreadableError() : unauthorized(err.message);
      throw err;
    }
    const text = raw.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw badRequest('body is not valid JSON');
    }
    // A number JSON.parse rounded into an integer (`1.0000000000000001` → 1): refused, never stored as another amount.
    const inexact = inexactIntegerLiteral(text);
    if (inexact !== undefined) throw badRequest('invalid event', [{ path: '', message: `the number ${inexact.slice(0, 40)} is not exactly the integer it reads as (${Number(inexact)}); amounts are integers in minor units` }]);
    // Only a `\u` escape can make a lone surrogate (UTF-8 decoding never does): most bodies skip the walk.
    const illFormed = raw.includes('\\u') ? loneSurrogateAt(json) : undefined;
    if (illFormed !== undefined) throw badRequest('invalid event', [{ path: illFormed, message: LONE_SURROGATE_MESSAGE }]);
    const parsed = PartnerEventSchema.safeParse(json);
    if (!parsed.success) throw badRequest('invalid event', zodFieldErrors(parsed.error.issues));
    const event = parsed.data;
    // Timestamps are ISO-8601 UTC (contract): a show's scheduledAt with an offset was stored and echoed
    // as given (show view, board, list, operator hints); it is stored as the same instant in Z.
    if ('show' in event.data) event.data.show.scheduledAt = utcTimestamp(event.data.show.scheduledAt);
    // The same for an order's and a refund's createdAt: stored as given, an offset was echoed in the
    // order view, its ledger entries' occurredAt and the attribution.order_attributed payload sent to
    // the partner's endpoints. Its fraction stays as written (the attribution window reads its unit).
    if (event.type === 'order.created') event.data.order.createdAt = utcTimestamp(event.data.order.createdAt);
    if (event.type === 'order.refunded') event.data.refund.createdAt = utcTimestamp(event.data.refund.createdAt);
    const currencies = currencyIssues(event);
    if (currencies.length > 0) throw badRequest('invalid event', currencies);
    const slackSec = this.deps.futureSlackSec ?? DEFAULT_EVENT_FUTURE_SLACK_SEC;
    if (Date.parse(event.occurredAt) > Date.now() + slackSec * 1000) {
      throw badRequest('invalid event', [{ path: 'occurredAt', message: `occurredAt is more than ${slackSec} s in the future (partner clock?): a later occurredAt wins, so it would freeze the show` }]);
    }
    // An order or refund from the far future (year 9999) would sit in the ledger's far days for good:
    // past every report period and every attribution window, yet counted as a duplicate when sent again
    // with the right time. Its bound is wider than occurredAt's: the attribution window is measured from
    // the click (server time) to createdAt, so a partner may well date an order days ahead of the click
    // it carries (a window of up to weeks), and refusing that would change attribution (contract §5).
    const happened = event.type === 'order.created' ? { path: 'data.order.createdAt', at: event.data.order.createdAt } : event.type === 'order.refunded' ? { path: 'data.refund.createdAt', at: event.data.refund.createdAt } : undefined;
    if (happened && Date.parse(happened.at) > Date.now() + CREATED_AT_FUTURE_MAX_MS) {
      throw badRequest('invalid event', [{ path: happened.path, message: 'createdAt is more than 366 days in the future (partner clock?)' }]);
    }
    // The same for the far past: an unset time serialised as a zero value (Go's `0001-01-01T00:00:00Z`)
    // was stored as an order of year 1 — outside every attribution window, so unattributed, and the
    // partner's corrected resend a duplicate of it (first write wins): its commission lost for good.
    // Checked here, not in the schema: stored events are parsed with it again (worker, sweep).
    if (happened && Date.parse(happened.at) < 0) {
      throw badRequest('invalid event', [{ path: happened.path, message: 'createdAt before 1970-01-01T00:00:00Z is not accepted (an unset time?)' }]);
    }
    const webhookId = headers.id!;
    if (!/^[\x21-\x7e]{1,256}$/.test(webhookId)) throw badRequest('webhook-id must be 1-256 printable ASCII characters other than a space (0x21-0x7E)');

    const reg = registerFor(event);
    const orderId = reg ? undefined : orderIdOf(event);
    if (!reg && !orderId) throw badRequest('unsupported event type');
    // Partner-wide dedupe: the id is claimed for this event's show or order (src/store/webhook-id.repository.ts),
    // on a single Redis in the same script as the write, on a Cluster before the atomic write there.
    // The same id for another show or order is a duplicate; for the same one, the write finds it
    // stored or stores it (on a Cluster a first delivery that died between claim and write is
    // completed by its retry).
    const scope = reg ? showScope(reg.showId) : orderScope(orderId!);
    if (reg && this.deps.shows.singleNode) return this.ingestShowEventOne(bundle, reg.showId, webhookId, scope, event, reg.write);
    if (!reg && this.deps.orders.singleNode) return this.ingestOrderEventOne(bundle, webhookId, scope, event, orderId!);
    let currency = currencyStep(event);
    if (event.type === 'order.refunded') {
      const booked = await this.deps.ledger?.orderCurrency(partnerId, partnerOrderRef(orderId!));
      if (booked !== undefined && booked !== currency.currency) return this.refundCurrency(partnerId, webhookId, scope, event.data.refund, booked);
      // The ledger holds the order in this currency: it decides (the recorded one is not checked).
      if (booked !== undefined) currency = { kind: '', currency: '' };
    }
    // The delivery's own token: its claim is taken back only if it is refused (a full show, another
    // order's refund id) and no other delivery passed the claim since (WebhookIdClaims.releaseIfHeld).
    // Every delivery of either kind carries one: one that passed untracked could store under a claim
    // a refused one then deletes.
    const token = randomUUID();
    if (!reg) return this.ingestOrderEvent(bundle, webhookId, scope, event, orderId!, token, currency);
    const holder = await this.deps.webhookIds.claim(partnerId, webhookId, scope, token);
    if (holder !== scope) return this.duplicateOf(partnerId, webhookId, holder);
    const acks = this.acks();
    if (acks) this.ack(acks, this.deps.webhookIds.claimKey(partnerId, webhookId));
    return this.ingestShowEvent(bundle, reg.showId, webhookId, event, reg.write, acks, token);
  }

  /**
   * Claims a refund's id for its order, partner-wide (src/store/refund-id.repository.ts), before the
   * refund is stored. The ledger is idempotent per order only: the same refund id sent for another order
   * reversed commission there too. Refused (422) when another order holds the id: nothing of the event
   * is stored and its webhook-id claim is taken back (with the delivery's `token`: unless another
   * delivery passed it meanwhile, another event under the id for this order, which may be stored under
   * it), so the corrected refund can go out under it. A webhook-id that names an event this order has
   * stored is that event's duplicate (200), as before.
   */
  private async claimRefundId(partnerId: string, webhookId: string, scope: string, token: string, refundId: string, orderId: string): Promise<IngestResult | undefined> {
    const holder = await this.deps.refundIds.claim(partnerId, refundId, orderId, token);
    if (holder === orderId) return undefined;
    const stored = await this.deps.webhookIds.storedEventId(partnerId, webhookId, scope);
    if (stored !== null) return { eventId: stored, duplicate: true };
    await this.deps.webhookIds.releaseIfHeld(partnerId, webhookId, scope, token).catch((err: unknown) => {
      this.deps.log.warn({ err, partnerId, orderId, webhookId }, "could not release a refused refund's webhook-id claim");
    });
    throw refundTaken(refundId, holder);
  }

  /**
   * A refund in another currency than its order's (contract §5.4: totals per currency, no FX) can never
   * be applied: it was stored (202) and kept unapplied for good, so the partner, told it was taken,
   * never learnt that the order's commission was not reversed. Such a refund is refused (422, nothing
   * stored, no claim left) once the order is accepted: its currency is the ledger's when the ledger
   * holds the order, before that (an order.created not yet through attribution) the one recorded when
   * its first order.created was stored (Keys.orderCurrency, in the order's slot, read by the order
   * event's store script on both topologies: the answer does not depend on whether the attribution
   * worker has run yet, contract §3). Orders stored before the currency was recorded have the ledger's
   * alone (the recorded one lives as long as the order's event log, by when the ledger holds it). Not
   * refused when this webhook-id names a stored event (of this order or another: a repeated webhook-id
   * is that event's duplicate, 200). A refund before its order (contract §5.3) is stored as before; if
   * the order then comes in another currency the order is stored and the refund stays unapplied, shown
   * as `applied: false` on the order (docs/attribution.md, "Currencies"); the refund's id stays booked.
   *
   * This is the Cluster path's answer when the ledger read before the claims finds the order in
   * another currency (the recorded currency is checked later, by the store: ingestOrderEvent); on a
   * single Redis the whole rule runs inside the order event's one store call (INGEST_ORDER_ONE_LUA).
   * The answers are in that call's order on both: a webhook-id claimed for another show or order is
   * that event's duplicate (or 409 while it is not stored), a refund id another order holds the
   * refund-id 422, then the currency's.
   */
  private async refundCurrency(partnerId: string, webhookId: string, scope: string, refund: { id: string; orderId: string; amount: { currency: string } }, currency: string): Promise<IngestResult> {
    const holder = await this.deps.webhookIds.holder(partnerId, webhookId);
    if (holder !== null && holder !== scope) return this.duplicateOf(partnerId, webhookId, holder);
    const stored = await this.deps.webhookIds.storedEventId(partnerId, webhookId, scope);
    if (stored !== null) return { eventId: stored, duplicate: true };
    const refundHolder = await this.deps.refundIds.holder(partnerId, refund.id);
    if (refundHolder !== null && refundHolder !== refund.orderId) throw refundTaken(refund.id, refundHolder);
    const held = refundHolder === refund.orderId && (await this.refundStored(partnerId, refund.orderId, refund.id));
    throw refundInOtherCurrency(refund.orderId, refund.amount.currency, currency, held ? refund.id : undefined);
  }

  /**
   * On a Cluster, whether a refund under `refundId` is stored for the order whose claim holds it. The
   * claim is made before the store and is not proof of one: a delivery refused for its currency that
   * died before it took its claim back, or whose release failed, or that another delivery of the same
   * refund joined, leaves the claim with nothing stored. Its 422 asked for a new refund id (the same id
   * in the order's currency is stored and booked) and two concurrent deliveries of one refused refund
   * got different answers. Stored means a pending event of the order is that refund, or (handled) the
   * ledger holds it: read in this order, so a refund handled between the reads is seen in the ledger.
   */
  private async refundStored(partnerId: string, orderId: string, refundId: string): Promise<boolean> {
    if (await this.deps.orders.pendingRefund(partnerId, orderId, refundId)) return true;
    return (await this.deps.ledger?.hasRefund(partnerId, partnerOrderRef(orderId), refundId)) ?? false;
  }

  /**
   * A delivery whose webhook-id is claimed for another show or order (`holder`): the duplicate of the
   * event stored there. The claim is written before the write on a Cluster (on a single Redis they are
   * one script), so a first delivery that failed in between (503, a crash) leaves a claim with nothing stored; this
   * delivery (a corrected event keeps its id) was then answered `200 {eventId: null}` and dropped —
   * the partner, told it was a duplicate, never sent it again (contract §3: never a 2xx for an event
   * that is not stored). It is a 409 instead: the first event's retry stores it (after which this one
   * is its duplicate), or this event goes out under a new webhook-id. Also the answer while the first
   * delivery's write is still under way (a retry then gets the duplicate).
   */
  private async duplicateOf(partnerId: string, webhookId: string, holder: string): Promise<IngestResult> {
    const eventId = await this.deps.webhookIds.storedEventId(partnerId, webhookId, holder);
    if (eventId !== null) return { eventId, duplicate: true };
    throw unstoredHolder(webhookId, holder);
  }

  /** A show event on a single Redis: claim, write and the sync jobs (or the dispatch entry) in one Lua call. */
  private async ingestShowEventOne(bundle: PartnerBundle, showId: string, webhookId: string, scope: string, event: PartnerEvent, write: { field: string; value: string }): Promise<IngestResult> {
    const partnerId = bundle.partner.id;
    const snapshot = 'show' in event.data ? { scheduledAtMs: Date.parse(event.data.show.scheduledAt), live: (impliedState(event) ?? event.data.show.state) === 'live' } : undefined;
    const x = this.syncJobs;
    const requestId = currentRequestId();
    // The partner's enabled targets from the bundle read for the signature (bundleCached: the same
    // ≤ BUNDLE_CACHE_MS staleness the dispatcher has; a target enabled since is kicked by its own route and swept).
    const inline = x && (x.mode === 'inline' ? x.jobs.args(partnerId, showId, bundle.targets, requestId) : ['0']);
    const stored = await this.deps.shows.ingestOne(partnerId, showId, webhookId, scope, showLogEntry(event), orderKey(event.occurredAt, webhookId), write, snapshot, requestId, inline);
    if (stored.holder !== undefined) return this.duplicateOf(partnerId, webhookId, stored.holder);
    if (stored.full) throw showFull(showId);
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ partnerId, showId, webhookId, eventId: stored.eventId, type: event.type, duplicate: stored.duplicate }, 'show event stored; marked for sync');
    return { eventId: stored.eventId, duplicate: stored.duplicate };
  }

  /** A show event on a Redis Cluster (the claim has been made): write, then the dispatch entry. */
  private async ingestShowEvent(
    bundle: PartnerBundle,
    showId: string,
    webhookId: string,
    event: PartnerEvent,
    write: { field: string; value: string },
    acks: Promise<void>[] | undefined,
    token: string,
  ): Promise<IngestResult> {
    const partnerId = bundle.partner.id;
    const keys = this.deps.keys;
    // The durable write first, the dispatch entry after it returned: an entry written alongside the
    // write (another slot) could be dispatched and its sync run before the write landed, find nothing
    // new, and leave the change to the sweep. Once the write has returned, any sync that starts later
    // reads it, and one that is running now is followed by another (keepLastIfActive). The indexes
    // are not read by the sync and go out after the write. Duplicates mark too: a first delivery may
    // have been stored and then failed before its entry was written.
    const key = orderKey(event.occurredAt, webhookId);
    const stored = await this.deps.shows.ingest(partnerId, showId, webhookId, showLogEntry(event), key, write);
    if (stored.full) {
      // Nothing of the event is stored, but its webhook-id was claimed for this show first: left so,
      // the partner's resend of it to another show (as the 422 advises) got a 409 for INBOX_TTL_DAYS.
      // The single-Redis script checks the bound before it claims; here the claim is taken back, unless
      // another delivery passed it meanwhile (another event under the id, one the show takes, may be
      // stored under it: deleted, the id was free for a second event elsewhere).
      await this.deps.webhookIds.releaseIfHeld(partnerId, webhookId, showScope(showId), token).catch((err: unknown) => {
        this.deps.log.warn({ err, partnerId, showId, webhookId }, "could not release a refused show event's webhook-id claim");
      });
      throw showFull(showId);
    }
    if (acks && keys) this.ack(acks, keys.desired(partnerId, showId));
    // The partner's live-show index (another slot than the show's) follows a snapshot that won its
    // register. A duplicate re-asserts it from the stored state: its first delivery may have been
    // stored and then failed before it wrote the index.
    await Promise.all([
      this.deps.shows.markForSync(partnerId, showId, currentRequestId()),
      // The sweep entry (pins and product updates need none of their own: the show's snapshot events
      // add it) goes after the write too: marked alongside it (another slot), a sweep could read the new
      // score and the show's old, ended state before the write landed, then drop the show (its score
      // unchanged) once the write had made it scheduled again.
      'show' in event.data ? this.deps.shows.markActive(partnerId, showId) : Promise.resolve(),
      // The show index (by scheduledAt) goes with the live set, after the register write: each index
      // write carries its snapshot's order key and lands only if no newer snapshot's did (two snapshots
      // of one show in flight at once reach the partner's slot in any order). A snapshot that lost its
      // register (late, or a duplicate) re-asserts the stored one's, which may not have been written.
      'show' in event.data && stored.changed ? this.deps.shows.indexSnapshot(partnerId, showId, key, Date.parse(event.data.show.scheduledAt), (impliedState(event) ?? event.data.show.state) === 'live') : Promise.resolve(),
      'show' in event.data && !stored.changed ? this.deps.shows.reindexSnapshot(partnerId, showId) : Promise.resolve(),
    ]);
    if (this.deps.log.isLevelEnabled('debug')) this.deps.log.debug({ partnerId, showId, webhookId, eventId: stored.eventId, type: event.type, duplicate: stored.duplicate }, 'show event stored; marked for sync');
    if (acks && keys) {
      this.ack(acks, keys.syncDispatch());
      if ('show' in event.data) for (const k of [keys.partnerShows(partnerId), keys.activeShows(), keys.partnerLiveShows(partnerId)]) this.ack(acks, k);
      await Promise.all(acks);
      return { eventId: stored.eventId, duplicate: stored.duplicate, replicated: true };
    }
    return { eventId: stored.eventId, duplicate: stored.duplicate };
  }

  /** The WAITs of a Cluster show event's writes (undefined: the API's hook confirms every master as before). */
  private acks(): Promise<void>[] | undefined {
    return this.deps.replicaAck?.active && this.deps.keys ? [] : undefined;
  }

  /** Joins the WAIT that covers what was written to `key`'s master so far (awaited before the answer). */
  private ack(acks: Promise<void>[], key: string): void {
    const p = this.deps.replicaAck!.confirmKey(key);
    p.catch(() => undefined); // awaited with the others; a step that fails first leaves it unawaited
    acks.push(p);
  }

  /**
   * An order event on a single Redis: webhook-id claim, refund-id claim (an `order.refunded`), the
   * pending-orders listing and the store in one Lua call (OrderEventRepository.ingestOne), all or
   * nothing, then the attribution queue's add: two round trips (were five, six for a refund). The
   * answers are the Cluster path's: another scope's id is its duplicate (or 409 while not stored),
   * another order's refund id 422 (the stored duplicate of this webhook-id 200).
   */
  private async ingestOrderEventOne(bundle: PartnerBundle, webhookId: string, scope: string, event: PartnerEvent, orderId: string): Promise<IngestResult> {
    const partnerId = bundle.partner.id;
    const refund = event.type === 'order.refunded' ? event.data.refund : undefined;
    const ledger = this.deps.ledger;
    const ref = partnerOrderRef(orderId);
    const refundKeys = refund && { id: refund.id, ledger: ledger ? { key: ledger.orderKey(partnerId, ref), field: ref } : undefined };
    const stored = await this.deps.orders.ingestOne(partnerId, orderId, webhookId, scope, JSON.stringify(event), currencyStep(event), refundKeys);
    if (stored.holder !== undefined) return this.duplicateOf(partnerId, webhookId, stored.holder);
    if (stored.refundHolder !== undefined) throw refundTaken(refund!.id, stored.refundHolder);
    if (stored.orderCurrency !== undefined) throw refundInOtherCurrency(orderId, refund!.amount.currency, stored.orderCurrency, stored.refundIdHeld ? refund!.id : undefined);
    if (!stored.handOn) return { eventId: stored.eventId, duplicate: true };
    if (this.deps.onOrderEvent) await this.deps.onOrderEvent(partnerId, stored.eventId, event, stored.otherCurrency);
    this.deps.log.debug({ partnerId, orderId, webhookId, eventId: stored.eventId, type: event.type, duplicate: stored.duplicate }, 'order event stored; attribution queued');
    return { eventId: stored.eventId, duplicate: stored.duplicate };
  }

  /**
   * An order event on a Redis Cluster (its keys span slots): the webhook-id claim (with the delivery's
   * `token`) and the order's pending-orders listing in one round trip (two slots, sent together), for
   * a refund its refund-id claim, the store (INGEST_PLAIN_LUA), then the listing again and the
   * attribution queue's add together: four round trips for a refund, three for an order.created (were
   * six and five in a row).
   *
   * Claims whose event was never stored do not block the id for long. A store Redis refused (an error
   * reply: INGEST_PLAIN_LUA reads every key before its first write, so nothing landed), or one never
   * sent (an earlier step failed), takes both claims back (token-checked: only when no other delivery
   * passed them; best effort, Redis may be down). A store whose answer was lost (a timeout) may have
   * landed, so its claims are left: the refund-id claim is permanent (as the refund, once stored), and
   * a failure after the store (the listing, on another master) takes nothing back; the webhook-id claim is taken over by a
   * delivery for another order once its holder's event is found not stored and no delivery has been
   * under way on it for WebhookIdClaims.heldTtlSec (takeOverUnstored). Each delivery sends its store
   * within half of that after it passed its claim, or answers 503: so a claim taken over has no store
   * of its holder still to come, and two deliveries of one webhook-id are never both stored.
   */
  private async ingestOrderEvent(bundle: PartnerBundle, webhookId: string, scope: string, event: PartnerEvent, orderId: string, token: string, currency: OrderCurrencyStep): Promise<IngestResult> {
    const partnerId = bundle.partner.id;
    const claims = this.deps.webhookIds;
    const halfHeldMs = claims.heldTtlSec * 500;
    let storeBy = Date.now() + halfHeldMs;
    // Listed before the store (a crash after it leaves no marked event unlisted); with the claim, as an
    // order listed for a delivery that then writes nothing is settled by the sweep.
    const [claimed, listed] = await Promise.allSettled([claims.claim(partnerId, webhookId, scope, token), this.deps.orders.markPending(partnerId, orderId)]);
    if (claimed.status === 'rejected') throw claimed.reason;
    if (claimed.value !== scope) {
      const readAt = Date.now();
      try {
        return await this.duplicateOf(partnerId, webhookId, claimed.value);
      } catch (err) {
        storeBy = Date.now() + halfHeldMs;
        if (!(err instanceof AppError && err.status === 409) || !(await this.takeOverUnstored(partnerId, webhookId, claimed.value, scope, token, readAt))) throw err;
      }
    }
    const refund = event.type === 'order.refunded' ? event.data.refund : undefined;
    const refundId = refund?.id;
    let refundClaimed = false;
    let storeSent = false;
    let stored: { duplicate: boolean; eventId: string; orderCurrency?: string; otherCurrency?: boolean };
    try {
      if (listed.status === 'rejected') throw listed.reason;
      if (refundId !== undefined) {
        const refused = await this.claimRefundId(partnerId, webhookId, scope, token, refundId, orderId);
        if (refused) return refused;
        refundClaimed = true;
      }
      if (Date.now() > storeBy) throw claimTooOld(webhookId);
      storeSent = true;
      stored = await this.deps.orders.ingest(partnerId, orderId, webhookId, JSON.stringify(event), currency);
    } catch (err) {
      // (a refund refused for another order's id has released its webhook-id claim already)
      const refused = err instanceof AppError && err.status === 422;
      if (!refused && (!storeSent || isRedisReply(err))) await this.releaseClaims(partnerId, orderId, webhookId, scope, token, refundClaimed ? refundId : undefined);
      throw err;
    }
    if (stored.orderCurrency !== undefined) {
      // A refund in another currency than the one recorded with its order.created: nothing written, so
      // both claims go back (token-checked), and the corrected refund takes the same webhook-id and
      // refund id. The refund id may stay held for the order (another delivery of it passed the claim,
      // an earlier one died before its release): the 422 asks for a new refund id only when a refund
      // under it is stored (refundStored), not merely claimed.
      const released = await this.releaseClaims(partnerId, orderId, webhookId, scope, token, refundClaimed ? refundId : undefined);
      const held = !released.refundId && (await this.refundStored(partnerId, orderId, refundId!));
      throw refundInOtherCurrency(orderId, refund!.amount.currency, stored.orderCurrency, held ? refund!.id : undefined);
    }
    await Promise.all([
      this.deps.orders.markPending(partnerId, orderId),
      this.deps.onOrderEvent?.(partnerId, stored.eventId, event, stored.otherCurrency),
    ]);
    this.deps.log.debug({ partnerId, orderId, webhookId, eventId: stored.eventId, type: event.type, duplicate: stored.duplicate }, 'order event stored; attribution queued');
    return { eventId: stored.eventId, duplicate: stored.duplicate };
  }

  /**
   * A delivery whose webhook-id is claimed for another scope (`holder`) whose event its inbox read
   * (sent at `readAt`) found not stored: the claim is taken over for `scope` when no delivery under it
   * is tracked (WebhookIdClaims.takeOver). Not when that read is older than a quarter of the held
   * set's life: a store of the holder sent before the set expired must have landed before it.
   */
  private async takeOverUnstored(partnerId: string, webhookId: string, holder: string, scope: string, token: string, readAt: number): Promise<boolean> {
    // Only an order delivery's claim: a show delivery has no deadline for its write (ingestShowEvent),
    // so a show event's claim found not stored may still have its write under way.
    if (!holder.startsWith('order:')) return false;
    if (Date.now() - readAt > this.deps.webhookIds.heldTtlSec * 250) return false;
    return (await this.deps.webhookIds.takeOver(partnerId, webhookId, holder, scope, token)) === scope;
  }

  /**
   * Takes back an order delivery's claims whose event was not stored (best effort, each token-checked).
   * `refundId` is true when the refund-id claim went (this delivery had made it, and no other passed it).
   */
  private async releaseClaims(partnerId: string, orderId: string, webhookId: string, scope: string, token: string, refundId: string | undefined): Promise<{ refundId: boolean }> {
    try {
      const [, refundReleased] = await Promise.all([
        this.deps.webhookIds.releaseIfHeld(partnerId, webhookId, scope, token),
        refundId !== undefined ? this.deps.refundIds.release(partnerId, refundId, orderId, token) : false,
      ]);
      return { refundId: refundReleased };
    } catch (err) {
      this.deps.log.warn({ err, partnerId, orderId, webhookId }, "could not release a failed order event's claims (they expire, or are taken over, in seconds)");
      return { refundId: false };
    }
  }
}

/** Redis answered the command with an error (it ran, or was refused before running), not a lost answer (a timeout, a closed connection). */
function isRedisReply(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/** A Cluster order delivery whose store would go out too late after its claim (the claim may be taken over by then): 503, nothing stored. */
function claimTooOld(webhookId: string): AppError {
  return new AppError(503, 'Service Unavailable', `the event under webhook-id ${webhookId} could not be stored in time; nothing was stored, retry later (a retry with the same webhook-id is safe)`, undefined, { 'retry-after': '5' });
}

/**
 * The answer to a delivery whose webhook-id is claimed for another show or order (`holder`) whose
 * event is not stored (IngestService.duplicateOf): 409, nothing stored.
 */
function unstoredHolder(webhookId: string, holder: string): AppError {
  return new AppError(
      409,
      'Conflict',
      `webhook-id ${webhookId} was first used for another ${holder.startsWith('order:') ? 'order' : 'show'} (${holder.slice(holder.indexOf(':') + 1)}), whose event is not stored: that event's retry stores it (this one is then its duplicate), or send this event under a new webhook-id`,
      undefined,
      { 'retry-after': '5' },
    );
}

/** What an order event's store records (an order.created's currency) or checks (an order.refunded's) of its order's currency. */
function currencyStep(event: PartnerEvent): OrderCurrencyStep {
  if (event.type === 'order.created') return { kind: 'o', currency: event.data.order.total.currency };
  if (event.type === 'order.refunded') return { kind: 'r', currency: event.data.refund.amount.currency };
  return { kind: '', currency: '' };
}

/** The answer to a refund whose id another order (`holder`) holds: 422, nothing stored. */
function refundTaken(refundId: string, holder: string): AppError {
  return new AppError(
    422,
    'Unprocessable Content',
    `refund ${refundId} was first sent for order ${holder}: a refund id names one refund of one order, partner-wide (refunds are idempotent by id), so this event is not stored. Send this order's refund under an id of its own`,
  );
}

/**
 * The answer to a refund in another currency than its order's (IngestService.refundCurrency): 422,
 * nothing stored. With `heldRefundId` the order already holds that refund id (a refund under it is
 * stored, e.g. one in this currency sent before the order, kept unapplied): the same id again in the
 * order's currency would be taken (202) and booked as nothing (the ledger books a refund id once), so
 * the answer asks for a new refund id, not only the currency (it said "send the amount in EUR": the
 * partner's fix then did nothing).
 */
function refundInOtherCurrency(orderId: string, refundCurrency: string, orderCurrency: string, heldRefundId?: string): AppError {
  const currencyError = { path: 'data.refund.amount.currency', message: `must be the order's currency, ${orderCurrency}` };
  if (heldRefundId !== undefined) {
    return new AppError(
      422,
      'Unprocessable Content',
      `order ${orderId} is in ${orderCurrency}, this refund in ${refundCurrency}, and refund ${heldRefundId} is already stored for it: a refund id is booked once (sent again, in any currency, it changes nothing), and a refund in another currency than its order's is kept unapplied (amounts are never converted; refunds[].applied is false in the order view). So this event is not stored. Send the refund in ${orderCurrency} under a new refund id`,
      [{ path: 'data.refund.id', message: `already stored for order ${orderId} (booked once): send the refund under a new refund id` }, currencyError],
    );
  }
  return new AppError(422, 'Unprocessable Content', `order ${orderId} is in ${orderCurrency}, this refund in ${refundCurrency}: a refund is in its order's currency (amounts are never converted), so this event is not stored. Send the refund's amount in ${orderCurrency}`, [currencyError]);
}

/**
 * The answer to an event whose register would be one more than the show may hold (SHOW_REGISTERS_MAX):
 * 422, nothing stored. Sending it again changes nothing; a snapshot, or events about the show's
 * products it already has, are taken.
 */
function showFull(showId: string): AppError {
  return new AppError(
    422,
    'Unprocessable Content',
    `show ${showId} already holds ${SHOW_REGISTERS_MAX} registers, counted over its life (its snapshot; one per product id of its product.updated events and another per product id of its pin events): an event that would add one is not stored. Send the show's products in its snapshot (up to 1,000), or use another show`,
  );
}
