/**
 * Every Redis key the service uses, in one place. Each key carries a {hash tag} so that the same code
 * runs on Redis Cluster: what must change atomically shares a tag (a show's desired state, inbox,
 * mirrors and intents), while different shows / partners spread across slots.
 *
 * Ids may contain ':' (the contract's ids are `[A-Za-z0-9_.:-]{1,128}`), the separator of key parts.
 * So every id that another part follows is written as `keyPart(id)`, which cannot contain ':', '{'
 * or '}': partner `a` + show `b:c` and partner `a:b` + show `c` are different keys (before, both were
 * `{s:a:b:c}`). An id that ends its hash tag or the key needs no encoding (the '}' or the key's end
 * delimits it; contract ids have no '}') and is written as it is, so no key of an existing show, mirror,
 * target or link moved; a free-form id (a webhook-id) inside a tag is encoded wherever it stands.
 * Keys of ids without '%', ':', '{', '}' are exactly what they were before keyPart.
 */
import { keyPart } from '../lib/ids.js';

export { fromKeyPart, keyPart } from '../lib/ids.js';

export class Keys {
  constructor(readonly prefix: string) {}

  // partner slot: partner doc, targets, webhook secrets, show index
  partner(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:partner`;
  }
  partnerShows(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:shows`;
  }
  /**
   * SET of the partner's live shows (the show's winning snapshot says live): the ops board lists every
   * live show whatever its scheduledAt without reading the partner's history. Written with the
   * snapshot that changes it (INGEST_SHOW_ONE_LUA on a single Redis; right after the write on a Cluster).
   */
  partnerLiveShows(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:live`;
  }
  /**
   * HASH showId → order key (src/domain/desired-state.ts orderKey) of the snapshot that partnerShows and
   * partnerLiveShows hold for the show, on a Redis Cluster (ShowRepository.indexSnapshot): index writes
   * race there (they run apart from the show's register write), and only a newer snapshot's may land.
   * One field per show in the index; shows never leave the index, so neither do their fields.
   */
  partnerShowsIndexed(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:shows-indexed`;
  }
  /** Set once the partner's live shows stored before partnerLiveShows existed were added to it (ShowRepository.backfillLive). */
  partnerLiveBackfilled(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:live-backfilled`;
  }
  partnerIndex(): string {
    return `${this.prefix}:{idx}:partners`;
  }
  targetOwner(targetId: string): string {
    return `${this.prefix}:{t:${targetId}}:owner`;
  }
  targetToken(targetId: string): string {
    return `${this.prefix}:{t:${targetId}}:token`;
  }
  /**
   * STRING: the target PATCH that is changing the target's credentials or baseUrl and its token record
   * now, or did last (`<lease end ms>:<nonce>`, kept after the lease ends): RedisTokenStore.lockGrant.
   */
  targetGrantLock(targetId: string): string {
    return `${this.prefix}:{t:${targetId}}:grant-lock`;
  }
  /**
   * STRING: the partner's slot's half of a target's grant lock (`<lease end ms>:<nonce>`, the nonce of
   * targetGrantLock's): the target record's write of a PATCH checks it in its own script
   * (RedisTokenStore.lockGrant, PartnerRepository.updateTarget).
   */
  targetGrantHold(partnerId: string, targetId: string): string {
    return `${this.prefix}:{p:${partnerId}}:grant-hold:${targetId}`;
  }
  /** ZSET of the refreshes of the target's access token under way (nonce → lease end, Redis ms): RedisTokenStore.refreshing. */
  targetRefreshing(targetId: string): string {
    return `${this.prefix}:{t:${targetId}}:refreshing`;
  }
  targetLimit(targetId: string, name: string): string {
    return `${this.prefix}:{t:${targetId}}:limit:${name}`;
  }
  /** ZSET of the target's sync runs in flight (run token → lease end, Redis ms): src/store/target-runs.repository.ts. */
  targetRuns(targetId: string): string {
    return `${this.prefix}:{t:${targetId}}:runs`;
  }
  /**
   * ZSET of the slow targets (target id → slow until, Redis ms): a sync run of each took half the
   * platform timeout or longer. One key, read whole by every worker process once a second.
   */
  slowTargets(): string {
    return `${this.prefix}:{slow}:targets`;
  }
  apiKey(hash: string): string {
    return `${this.prefix}:{k:${hash}}:apikey`;
  }
  /** A browser session of the ops console (for /admin/queues): the principal, by the token's hash. */
  consoleSession(hash: string): string {
    return `${this.prefix}:{ses:${hash}}:session`;
  }
  /** The console sessions signed in with one API key: a sorted set of their token hashes by creation (SessionRepository's cap). */
  consoleSessionsOfKey(keyId: string): string {
    return `${this.prefix}:{seskey:${keyId}}:sessions`;
  }
  audit(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:audit`;
  }
  /** Every operator action (stream), also those on no partner (API keys). */
  auditAll(): string {
    return `${this.prefix}:{audit}:all`;
  }
  /**
   * An audit entry written once whatever the retries (`AuditRepository.recordOnce`): set (with a TTL)
   * together with the entry, in the slot of the stream it went to (the partner's, or the global one).
   */
  auditOnce(id: string, partnerId?: string): string {
    return partnerId === undefined ? `${this.prefix}:{audit}:once:${id}` : `${this.prefix}:{p:${partnerId}}:audit-once:${id}`;
  }
  /**
   * HASH pending id → audit entry (JSON): changes recorded with their entry by the change's own script,
   * whose entry is not in the audit log yet (`AuditRepository.settle`). In the slot of the changes:
   * the API key index's, or the partner's.
   */
  auditPending(scope: 'keys' | { partnerId: string; endpointId?: string | undefined; showId?: string | undefined }): string {
    if (scope === 'keys') return `${this.prefix}:{keys}:audit-pending`;
    // Changes made in an endpoint's slot (its secret rotation) or a show's (its ingest key rotation).
    if (scope.endpointId !== undefined) return `${this.prefix}:{e:${keyPart(scope.partnerId)}:${scope.endpointId}}:audit-pending`;
    if (scope.showId !== undefined) return `${this.showTag(scope.partnerId, scope.showId)}:audit-pending`;
    return `${this.prefix}:{p:${scope.partnerId}}:audit-pending`;
  }
  /**
   * ZSET, in the partner's slot, of the endpoint and show scopes (`e:<endpointId>`, `s:<showId>`) that
   * may hold pending audit entries, scored by the time of the latest change announced there (ms):
   * written before such a change, so that settling the partner finds the entry wherever it waits.
   */
  auditPendingScopes(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:audit-pending-scopes`;
  }
  /** HASH key id → key record (role, partner, name, created, expiry, revocation; the hash, never the key). */
  /** A tiny write (short TTL) by every /health/ready: ready means Redis accepts writes, not only answers. */
  readinessProbe(): string {
    return `${this.prefix}:{health}:ready`;
  }
  apiKeyIndex(): string {
    return `${this.prefix}:{keys}:index`;
  }
  /** HASH key id → last time the key authenticated a request (ISO; written at most once a minute per key). */
  apiKeyLastUsed(): string {
    return `${this.prefix}:{keys}:last-used`;
  }

  /**
   * Partner-wide claim of an inbound `webhook-id` (src/store/webhook-id.repository.ts): its own hash
   * tag, so the claims of one partner spread over the cluster; always used alone (one-key SET NX).
   */
  partnerWebhookId(partnerId: string, webhookId: string): string {
    return `${this.prefix}:{w:${keyPart(partnerId)}:${keyPart(webhookId)}}:wid`;
  }

  /**
   * SET of the claim tokens of the Cluster deliveries (show or order events) under way on
   * `webhookId`'s claim (its hash tag: one slot with the claim), kept CLAIM_PROVISIONAL_SEC: a
   * refused delivery takes its claim back only when no other delivery may have stored under it, and a
   * claim whose set expired with its event unstored may be taken over (src/store/webhook-id.repository.ts).
   */
  partnerWebhookIdHeld(partnerId: string, webhookId: string): string {
    return `${this.prefix}:{w:${keyPart(partnerId)}:${keyPart(webhookId)}}:held`;
  }

  /**
   * Partner-wide claim of a partner refund id (src/store/refund-id.repository.ts): the order it was first
   * sent for. Its own hash tag, like the webhook-id claims; used alone or with its held set (one slot per script).
   */
  partnerRefundId(partnerId: string, refundId: string): string {
    return `${this.prefix}:{rf:${keyPart(partnerId)}:${keyPart(refundId)}}:refund`;
  }

  /** SET of the tokens of the Cluster deliveries under way on a refund-id claim (its slot; src/store/refund-id.repository.ts). */
  partnerRefundIdHeld(partnerId: string, refundId: string): string {
    return `${this.prefix}:{rf:${keyPart(partnerId)}:${keyPart(refundId)}}:held`;
  }

  // show slot
  showTag(partnerId: string, showId: string): string {
    return `${this.prefix}:{s:${keyPart(partnerId)}:${showId}}`;
  }
  desired(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:desired`;
  }
  showEvents(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:events`;
  }
  showInbox(partnerId: string, showId: string, webhookId: string): string {
    return `${this.showTag(partnerId, showId)}:inbox:${webhookId}`;
  }
  mirror(partnerId: string, showId: string, targetId: string): string {
    return `${this.showTag(partnerId, showId)}:mirror:${targetId}`;
  }
  /** The lease of the sync run that owns this mirror (intents and mirror saves are fenced by it). */
  mirrorLease(partnerId: string, showId: string, targetId: string): string {
    return `${this.showTag(partnerId, showId)}:lease:${targetId}`;
  }
  /** Capped stream of what happened to the show's mirrors (sync runs, mirror changes): the console's timeline. */
  showActivity(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:activity`;
  }
  intent(partnerId: string, showId: string, targetId: string, step: string): string {
    return `${this.showTag(partnerId, showId)}:intent:${keyPart(targetId)}:${step}`;
  }

  // video relay (README "Video relay"): the show's ingest key (sealed) and the source, status and lease of its relay
  relayIngest(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:relay-ingest`;
  }
  relaySource(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:relay-source`;
  }
  relayStatus(partnerId: string, showId: string, targetId: string): string {
    return `${this.showTag(partnerId, showId)}:relay:${targetId}`;
  }
  relayLease(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:relay-lease`;
  }
  /** The token that took the show's relay lease last (kept a day, beyond the lease): who may still push it after a Redis restart. */
  relayLeaseLast(partnerId: string, showId: string): string {
    return `${this.showTag(partnerId, showId)}:relay-lease-last`;
  }
  /** Set (with a TTL) while any relay process runs. */
  relayAlive(): string {
    return `${this.prefix}:{relay}:alive`;
  }
  /**
   * Durable (no TTL): this deployment relays video. Written by every relay pass, removed only by an admin
   * (`DELETE /v1/relay`); same slot as relayAlive so both are read and written in one step on a Cluster.
   */
  relayDeployed(): string {
    return `${this.prefix}:{relay}:deployed`;
  }
  /**
   * HASH removal id → JSON {since, actor, requestId}: removals of the relay (`DELETE /v1/relay`) whose
   * `relay.removed` audit entry is not written yet. Written by the same script that deletes the marker
   * (same slot), cleared once the entry is in the audit log: a DELETE whose audit write failed leaves
   * it, and the next DELETE writes the entry.
   */
  relayRemovals(): string {
    return `${this.prefix}:{relay}:removed-unaudited`;
  }
  /** SHA-256 of a stream key → [partnerId, showId] (the edge finds the show from the key alone). */
  relayKeyIndex(hash: string): string {
    return `${this.prefix}:{rk:${hash}}:relay-key`;
  }

  // order slot (partner order events; the ledger is bucketed below)
  orderTag(partnerId: string, orderId: string): string {
    return `${this.prefix}:{o:${keyPart(partnerId)}:${orderId}}`;
  }
  orderInbox(partnerId: string, orderId: string, webhookId: string): string {
    return `${this.orderTag(partnerId, orderId)}:inbox:${webhookId}`;
  }
  orderEvents(partnerId: string, orderId: string): string {
    return `${this.orderTag(partnerId, orderId)}:events`;
  }
  /** HASH eventId → stored-at ms: the order's events not yet handled by attribution (written with the event). */
  orderPending(partnerId: string, orderId: string): string {
    return `${this.orderTag(partnerId, orderId)}:pending`;
  }
  /**
   * STRING: the currency of the order's first order.created stored (ISO 4217), written with that event
   * and expiring INBOX_TTL_DAYS after the order's last stored event (refreshed by each) or, set again
   * when the last is handled, with the order's event log. An order.refunded in another currency is
   * refused at ingest from the moment its order is accepted, before attribution has booked it in the
   * ledger, and the worker books no order.created of the order in another currency.
   */
  orderCurrency(partnerId: string, orderId: string): string {
    return `${this.orderTag(partnerId, orderId)}:cur`;
  }

  /**
   * The compact ledger (docs/attribution.md "Storage"): a partner's orders are spread over
   * LEDGER_BUCKETS buckets by a hash of the order ref; each bucket is one slot holding its orders
   * (one hash field per order), its per-day order sets and its pre-aggregated counters, so one Lua
   * step appends an order's entries and updates the aggregates together.
   */
  ledgerBase(partnerId: string, bucket: number): string {
    return `${this.prefix}:{lg:${partnerId}:${bucket}}`;
  }
  /** HASH ref → packed order record (state, refunds and append-only ledger entries). */
  ledgerOrders(partnerId: string, bucket: number): string {
    return `${this.ledgerBase(partnerId, bucket)}:o`;
  }
  // The keys below are also built by the ledger's Lua steps from ledgerBase (same slot): keep in step.
  /** SET of the refs created on `day` (UTC days since the epoch). */
  ledgerDay(partnerId: string, bucket: number, day: number): string {
    return `${this.ledgerBase(partnerId, bucket)}:d:${day}`;
  }
  /** HASH counter+[attributed, showId, targetId, productId, currency] → integer, the orders created on `day`. */
  ledgerDayAgg(partnerId: string, bucket: number, day: number): string {
    return `${this.ledgerBase(partnerId, bucket)}:a:${day}`;
  }
  /** HASH counter+[day, targetId, productId, currency] → integer, the orders attributed to one show. */
  ledgerShowAgg(partnerId: string, bucket: number, showId: string): string {
    return `${this.ledgerBase(partnerId, bucket)}:s:${showId}`;
  }
  /** SET of the refs a reconciliation run's report named (kept in Redis, not in the process; expires after a day). */
  ledgerReconMark(partnerId: string, bucket: number, mark: string): string {
    return `${this.ledgerBase(partnerId, bucket)}:rc:${mark}`;
  }
  /** ZSET day → day: the days with orders (reports without from/to). */
  ledgerDays(partnerId: string, bucket: number): string {
    return `${this.ledgerBase(partnerId, bucket)}:days`;
  }
  /** The platform's show id → our show id, written when a mirror gets its remote show. */
  targetExternalShow(targetId: string, externalId: string): string {
    return `${this.prefix}:{t:${targetId}}:ext:${externalId}`;
  }
  /**
   * An operator link's claim of a platform show (ExternalShowIndex.claimLink): one link of it at a time
   * checks the index, saves its mirror and writes the entry. In the entry's slot.
   */
  targetExternalShowLink(targetId: string, externalId: string): string {
    return `${this.prefix}:{t:${targetId}}:ext-link:${externalId}`;
  }
  /** SET of order refs stored unattributed because the index above had no entry for that platform show yet. */
  targetExternalShowWaiting(targetId: string, externalId: string): string {
    return `${this.prefix}:{t:${targetId}}:ext-waiting:${externalId}`;
  }

  // tracked links and clicks
  link(code: string): string {
    return `${this.prefix}:{l:${code}}:link`;
  }
  click(clickId: string): string {
    return `${this.prefix}:{c:${clickId}}:click`;
  }

  // outbound webhooks (README "Outbound webhooks"): the partner's endpoint ids in the partner slot; each endpoint's
  // doc (with its failure clock) and attempt log share one slot so that the disable rule is one Lua
  // step; each message (payload + per-endpoint delivery state) has its own slot; idempotency claims
  // spread by key hash.
  partnerEndpoints(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:endpoints`;
  }
  endpoint(partnerId: string, endpointId: string): string {
    return `${this.prefix}:{e:${keyPart(partnerId)}:${endpointId}}:endpoint`;
  }
  endpointAttempts(partnerId: string, endpointId: string): string {
    return `${this.prefix}:{e:${keyPart(partnerId)}:${endpointId}}:attempts`;
  }
  outboundMessage(partnerId: string, messageId: string): string {
    return `${this.prefix}:{m:${keyPart(partnerId)}:${messageId}}:message`;
  }
  /** Held while one attempt of a delivery (message × endpoint) is in flight, in the message's slot. */
  outboundAttempt(partnerId: string, messageId: string, endpointId: string): string {
    return `${this.prefix}:{m:${keyPart(partnerId)}:${messageId}}:attempt:${endpointId}`;
  }
  outboundIdempotency(partnerId: string, keyHash: string): string {
    return `${this.prefix}:{oi:${keyPart(partnerId)}:${keyHash}}:idem`;
  }

  /**
   * Stream of shows whose mirrors need a sync: one entry per accepted show event (written with the
   * event; in the same Lua step on a single Redis), consumed by the sync dispatcher's consumer group
   * (src/mirror/sync.dispatcher.ts), which turns entries into coalesced sync jobs and deletes them.
   */
  syncDispatch(): string {
    return `${this.prefix}:{dispatch}:syncs`;
  }

  // background sweep of shows whose mirrors may still need work
  activeShows(): string {
    return `${this.prefix}:{sweep}:active`;
  }
  /** ZSET JSON [partnerId, orderId] → last marked (ms): orders that may have unhandled events, for the sweep. */
  pendingOrders(): string {
    return `${this.prefix}:{sweep}:orders`;
  }

  // reconciliation runs and the heals they made
  reconciliation(id: string): string {
    return `${this.prefix}:{r:${id}}:recon`;
  }
  /** ZSET reconciliation id → createdAt (ms): the partner's runs, newest first in listings. */
  partnerReconciliations(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:recons`;
  }
  /** Legacy HASH (target, order, kind) → heal, one per partner, never expiring: no longer written, still read (rolling deploy). */
  reconHealed(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:recon-healed`;
  }
  /** HASH (target, order, kind) → heal, the heals of orders created on one UTC day (`day` = ms / 86 400 000), kept 400 days. */
  reconHealedDay(partnerId: string, day: number): string {
    return `${this.prefix}:{p:${partnerId}}:recon-healed:${day}`;
  }
  /**
   * HASH JSON [partner id, target id] → when registered: the targets whose order report is (or was)
   * one platform account's (target.registry.ts reportAccountId; a hash, never a credential):
   * src/reconcile/account-orders.ts.
   */
  reconAccountTargets(accountId: string): string {
    return `${this.prefix}:{a:${accountId}}:recon-targets`;
  }
  /**
   * HASH platform order id → target id: which target a platform order of the account (created on UTC
   * day `day`) was healed under, claimed before the heal so that a second target on the account never
   * stores it again. Kept 400 days, as the heals.
   */
  reconAccountClaims(accountId: string, day: number): string {
    return `${this.prefix}:{a:${accountId}}:recon-claims:${day}`;
  }
  /**
   * STRING (a counter): counted up when a target is new to the account's registry (reconAccountTargets)
   * or a credential account becomes its alias (reconAccountAliases): what a process read of them is stale.
   */
  reconAccountVersion(accountId: string): string {
    return `${this.prefix}:{a:${accountId}}:recon-version`;
  }
  /**
   * STRING: the account a credential account (reportAccountId, a hash of the credentials) turned out to
   * be once the platform named it (platformAccountId): the same for every credential of one platform
   * account (AccountOrders.learn).
   */
  reconAccountMovedTo(accountId: string): string {
    return `${this.prefix}:{a:${accountId}}:recon-moved-to`;
  }
  /**
   * SET of account ids: the credential accounts that moved to this platform account (reconAccountMovedTo):
   * their registries and claims are this account's too (AccountOrders).
   */
  reconAccountAliases(accountId: string): string {
    return `${this.prefix}:{a:${accountId}}:recon-aliases`;
  }
  /** STRING: set once every stored target was added to its account's reconAccountTargets (AccountOrders.backfill). */
  reconAccountsBackfilled(): string {
    return `${this.prefix}:{idx}:recon-accounts-backfilled`;
  }
  /** STRING: the end (ms) of the latest scheduled reconciliation period requested for the partner (ReconcileService.requestScheduled). */
  reconScheduledTo(partnerId: string): string {
    return `${this.prefix}:{p:${partnerId}}:recon-scheduled-to`;
  }
  /** ZSET reconciliation id → createdAt (ms): runs requested and not started yet, for the recovery pass. */
  reconQueued(): string {
    return `${this.prefix}:{sweep}:recon-queued`;
  }

  /** BullMQ prefix for a queue: the hash tag keeps each queue's keys in one slot. */
  queuePrefix(queue: string): string {
    return `${this.prefix}:{q:${queue}}`;
  }
}
