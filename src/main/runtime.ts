/**
 * Composition root for every process role (api, worker, scheduler, all-in-one): one place that turns
 * configuration into connections, repositories and services. Roles take only what they use.
 */
import type { ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import { printableClusterNodes, type Config } from '../config/config.js';
import { resolveRuntimeSecrets } from '../config/runtime-secrets.js';
import { SecretBox } from '../lib/crypto.js';
import { destinationGuard, type DestinationGuard } from '../lib/destination-guard.js';
import { createLogger } from '../lib/logger.js';
import { defaultRelayPublicUrl } from '../lib/net.js';
import { setLookupConcurrency } from '../lib/ssrf.js';
import { AttributionService } from '../attribution/attribution.service.js';
import { LinkService } from '../links/link.service.js';
import { SyncService } from '../mirror/sync.service.js';
import { ReadinessService } from '../mirror/readiness.service.js';
import { SyncProducer } from '../queues/queues.js';
import { ingestSyncMode, InlineSyncJobs } from '../queues/inline-sync.js';
import { mirrorUpdatedHook } from '../outbound/mirror-updated.js';
import { createOutbound } from '../outbound/outbound.module.js';
import type { DeliveryService } from '../outbound/delivery.service.js';
import type { OutboundService } from '../outbound/outbound.service.js';
import { AttributionProducer } from '../queues/attribution.queue.js';
import { AttributionRepository } from '../store/attribution.repository.js';
import { ReconcileRepository } from '../store/reconcile.repository.js';
import { ShowActivityRepository } from '../store/show-activity.repository.js';
import { SESSION_RENEWAL_LABEL, SessionRepository } from '../store/session.repository.js';
import { CredentialVerifier } from '../targets/target.verify.js';
import { ReconcileService } from '../reconcile/reconcile.service.js';
import { ExternalShowIndex } from '../store/external-show.index.js';
import { IngestService } from '../sources/ingest.service.js';
import { ApiKeyRepository } from '../store/apikey.repository.js';
import { AuditRepository } from '../store/audit.repository.js';
import { printableUrl, RedisUnavailableError, resolveRedis, type ResolvedRedis } from '../store/embedded-redis.js';
import { IntentRepository, intentTiming } from '../store/intent.repository.js';
import { ReplicaAck } from '../store/replica-ack.js';
import { StoredRecordCorruptError } from '../store/stored-record.js';
import { Keys } from '../store/keys.js';
import { PartnerRepository } from '../store/partner.repository.js';
import { clusterSeedProblem, createRedis, unresolvableClusterSeeds, waitForRedis, type ConnectionRole, type RedisClient } from '../store/redis.js';
import { redisDurabilityProblems, redisWriteRefusal } from '../store/redis-durability.js';
import { OrderEventRepository, ShowRepository } from '../store/show.repository.js';
import { RefundIdClaims } from '../store/refund-id.repository.js';
import { WebhookIdClaims } from '../store/webhook-id.repository.js';
import { RelayRepository, type RelayStatus } from '../store/relay.repository.js';
import { connectionErrorSummary, RedisOutageLog } from '../lib/redis-outage-log.js';
import { StartupStopped, unlessStopped } from '../lib/startup-stop.js';

export interface Runtime {
  config: Config;
  log: Logger;
  redisInfo: ResolvedRedis;
  /** What the Redis we were given would lose, read at start (redis-durability.ts): each a sentence, in /health/ready's `warnings`. */
  redisDurability: { node: string; problem: string }[];
  redis: RedisClient;
  /** Connection options for BullMQ (each Queue/Worker opens its own connections from these). */
  bullConnection: (role: ConnectionRole) => ConnectionOptions;
  keys: Keys;
  box: SecretBox;
  /** Connect-time SSRF guard for credential-carrying connections (platform clients, relay destinations). */
  destinations: DestinationGuard;
  adminApiKey: string;
  partners: PartnerRepository;
  apiKeys: ApiKeyRepository;
  /** Operator actions (who, what, when, on which partner/show/target). */
  audit: AuditRepository;
  shows: ShowRepository;
  orderEvents: OrderEventRepository;
  /** Partner-wide claims of inbound webhook-ids. */
  webhookIds: WebhookIdClaims;
  refundIds: RefundIdClaims;
  intents: IntentRepository;
  links: LinkService;
  syncProducer: SyncProducer;
  ingest: IngestService;
  syncService: SyncService;
  /** Outbound webhooks to partners: `emit(partnerId, type, data, idempotencyKey)`, endpoints, redelivery. */
  outbound: OutboundService;
  /** One delivery attempt per call; run by the `delivery` worker (worker role). */
  delivery: DeliveryService;
  attributionProducer: AttributionProducer;
  attribution: AttributionService;
  reconcile: ReconcileService;
  /** `await replicaAck.confirm()` before acknowledging a write: WAIT for replicas where configured. */
  replicaAck: ReplicaAck;
  /** Video relay state: ingest keys, sources, relay statuses, leases (README "Video relay"). */
  relay: RelayRepository;
  /** What partners publish to (RELAY_PUBLIC_URL, or derived from HOST and the edge's port). */
  relayPublicUrl(): string;
  /** The embedded edge of this process tells the runtime its port (RELAY_RTMP_PORT=0 in tests). */
  setRelayEdgePort(port: number): void;
  /** The API of this process tells the runtime the port it bound: links follow it unless PUBLIC_BASE_URL is set (PORT=0). */
  setApiPort(port: number): void;
  /** Pre-show readiness checks of the mirrors (scheduler tick; results on the show view and as mirror.updated). */
  readiness: ReadinessService;
  reconciliations: ReconcileRepository;
  /** Sync runs and mirror changes per show (the ops console's timeline). */
  activity: ShowActivityRepository;
  /** The connection the API's queue producers share (the queue dashboard's handles use it too). */
  producerConnection: ConnectionOptions;
  /** Ops console sessions (the cookie that opens /admin/queues). */
  sessions: SessionRepository;
  credentialVerifier: CredentialVerifier;
  close(): Promise<void>;
  /** Shutdown while Redis is unreachable: drop every connection at once (close() would wait for Redis). */
  closeNow(): void;
}

/**
 * `stop` (a stop signal during the start): each wait for Redis ends at once with StartupStopped, after
 * the connections made so far are closed and a redis-server this call spawned is stopped (SIGTERM).
 */
export async function createRuntime(config: Config, role: ConnectionRole, opts: { log?: Logger; redisInfo?: ResolvedRedis; stop?: AbortSignal | undefined } = {}): Promise<Runtime> {
  const log = opts.log ?? createLogger(config.logLevel);
  const secrets = resolveRuntimeSecrets(config);
  for (const file of secrets.generated) log.warn({ file }, 'generated a secret for the zero-configuration default (set SECRETS_KEY / ADMIN_API_KEY in production)');
  const redisInfo =
    opts.redisInfo ?? (config.redisClusterNodes
      ? { url: '', source: 'env' as const, stop: async () => undefined }
      : await resolveRedis({ url: config.redisUrl, dataDir: config.dataDir, appendfsync: config.redisAppendfsync, stop: opts.stop }));
  const target = { url: redisInfo.url || undefined, clusterNodes: config.redisClusterNodes };
  // Seeds none of whose names exist are said at once (not after the 15 s ready wait), as an unreachable REDIS_URL is.
  const seedProblem = config.redisClusterNodes ? ((await unlessStopped(unresolvableClusterSeeds(config.redisClusterNodes), opts.stop)) ?? (await unlessStopped(clusterSeedProblem(config.redisClusterNodes), opts.stop))) : null;
  if (seedProblem) throw new RedisUnavailableError(`Syndicast cannot use REDIS_CLUSTER_NODES=${printableClusterNodes(config.redisClusterNodes!)}: ${seedProblem}`);
  const redis = createRedis(target, role);
  // Once per outage (and a reminder at most every 15 s), not once per reconnect attempt: ioredis emits
  // an error on each (every 0.2-2 s by its backoff) for as long as Redis is down.
  const outage = new RedisOutageLog(log, 'redis client');
  redis.on('error', (err: Error) => outage.error(connectionErrorSummary(err), {}, 'redis connection error'));
  redis.on('ready', () => outage.recovered());
  const owned: RedisClient[] = [];
  // A redis-server this call spawned is stopped again when the start fails here, not left running.
  const giveUp = async (): Promise<void> => {
    redis.disconnect();
    for (const c of owned) c.disconnect();
    if (!opts.redisInfo) await redisInfo.stop();
  };
  try {
    await unlessStopped(waitForRedis(redis, 15_000), opts.stop);
  } catch (err) {
    await giveUp();
    if (err instanceof StartupStopped) throw err;
    const where = config.redisClusterNodes ? `the Redis Cluster nodes REDIS_CLUSTER_NODES=${printableClusterNodes(config.redisClusterNodes)}` : `Redis at ${printableUrl(redisInfo.url)}`;
    throw new RedisUnavailableError(`Syndicast could not get a ready connection to ${where} within 15 s (${(err as Error).message}). Check that the server runs, answers from this host and accepts the password/TLS settings in the URL.`);
  }

  // A Redis that persists nothing or evicts keys cannot keep what the API acknowledges: said at once.
  const durability = await unlessStopped(redisDurabilityProblems(redis), opts.stop).catch(async (err: unknown) => {
    if (err instanceof StartupStopped) await giveUp();
    throw err;
  });
  for (const { node, problem } of durability) log.warn({ redis: node }, problem);

  const keys = new Keys(config.keyPrefix);
  // A replica, a full Redis, one that cannot persist or lacks its min-replicas-to-write refuses every write (on a Cluster, every master is asked): said now, before anything else is written.
  const refusal = await unlessStopped(redisWriteRefusal(redis, keys.readinessProbe()), opts.stop).catch(async (err: unknown) => {
    if (err instanceof StartupStopped) await giveUp();
    throw err;
  });
  if (refusal !== null) {
    await giveUp();
    const where = config.redisClusterNodes ? `the Redis Cluster REDIS_CLUSTER_NODES=${printableClusterNodes(config.redisClusterNodes)}` : `Redis at REDIS_URL=${printableUrl(redisInfo.url)}`;
    throw new RedisUnavailableError(`Syndicast reached ${where}, but it refuses writes: ${refusal}, then start again. Nothing was written.`);
  }
  const box = new SecretBox(secrets.secretsKey, (config.secretsKeyPrevious ?? '').split(','));
  const partners = new PartnerRepository(redis, keys, box, log.child({ module: 'partners' }));
  const shows = new ShowRepository(redis, keys, config.inboxTtlDays * 86_400, box);
  const orderEvents = new OrderEventRepository(redis, keys, config.inboxTtlDays * 86_400);
  const webhookIds = new WebhookIdClaims(redis, keys, config.inboxTtlDays * 86_400, config.claimProvisionalSec);
  const refundIds = new RefundIdClaims(redis, keys, config.claimProvisionalSec);
  // (replicaAck is made further down, once the BullMQ producer's connection exists)
  const links = new LinkService(redis, keys, box, config.publicBaseUrl, () => replicaAck);
  setLookupConcurrency(config.dnsLookupConcurrency); // process-wide, as the threadpool it spares
  const destinations = destinationGuard({ allowPrivate: config.allowPrivateDestinations });
  const relay = new RelayRepository(redis, keys, box);
  let edgePort = config.relayRtmpPort;
  const relayPublicUrl = (): string => (config.relayPublicUrl ?? defaultRelayPublicUrl(config.host, edgePort)).replace(/\/+$/, '');
  // BullMQ gets a dedicated client per Queue/Worker; the API's producers fail fast like the API itself.
  const bullConnection = (r: ConnectionRole): ConnectionOptions => {
    const c = createRedis(target, r, `syndicast-bull`);
    c.on('error', () => undefined); // surfaced through the calls that use it
    owned.push(c);
    return c as ConnectionOptions;
  };
  const producerConn = bullConnection(role);
  // The API's producer fails fast (no offline queue), and BullMQ takes a Cluster in state 'connect' for
  // ready: without this wait the first job added right after startup fails with "Cluster isn't ready".
  await unlessStopped(waitForRedis(producerConn as RedisClient, 15_000), opts.stop).catch(async (err: unknown) => {
    await giveUp();
    if (err instanceof StartupStopped) throw err;
    throw new RedisUnavailableError(`Syndicast could not get a second ready connection to Redis within 15 s (${(err as Error).message}). Check that the server accepts more connections from this host (maxclients).`);
  });
  // The service's client first: confirmKey() (an intent's start) WAITs on its connection to the key's master.
  const replicaAck = new ReplicaAck([redis, producerConn as RedisClient], ReplicaAck.replicasFor(config.redisWaitReplicas, redis), config.redisWaitTimeoutMs, log.child({ module: 'redis' }));
  // A non-idempotent step's start is confirmed on a replica (where WAIT is on) before its platform call.
  const intents = new IntentRepository(redis, keys, box, intentTiming(config.platformTimeoutMs, config.platformSettleMs), replicaAck);
  const syncProducer = new SyncProducer(producerConn, keys, config.syncShards);
  const { outbound, delivery } = createOutbound({ redis, keys, box, config, connection: producerConn, log });
  const attributionProducer = new AttributionProducer(producerConn, keys);
  const ledger = new AttributionRepository(redis, keys);
  const ingest = new IngestService({
    partners,
    shows,
    orders: orderEvents,
    webhookIds,
    refundIds,
    toleranceSec: config.webhookToleranceSec,
    futureSlackSec: config.eventFutureSlackSec,
    log: log.child({ module: 'ingest' }),
    onOrderEvent: (partnerId, eventId, event, otherCurrency) => attributionProducer.enqueue(partnerId, eventId, event, otherCurrency),
    replicaAck,
    keys,
    ledger,
  });
  // INGEST_SYNC_JOBS: on one Redis the ingest script makes the sync jobs itself (inline); on a Cluster
  // always the dispatch entry. The dispatcher runs either way (process.ts).
  const syncMode = ingestSyncMode(config.ingestSyncJobs, !shows.singleNode);
  if (syncMode.ignored) log.info({ module: 'ingest' }, 'INGEST_SYNC_JOBS=inline has no effect on a Redis Cluster: show events ask for their syncs through the sync-dispatch stream (the dispatcher)');
  ingest.setSyncJobs(syncMode.mode, new InlineSyncJobs(keys, config.syncShards));
  const attribution = new AttributionService({
    repo: ledger,
    partners,
    links,
    externalShows: new ExternalShowIndex(redis, keys),
    log: log.child({ module: 'attribution' }),
    holdDays: config.commissionHoldDays,
    // false (nothing emitted: no endpoint subscribes) spares the order's notified mark.
    onOrderAttributed: async (partnerId, payload, idempotencyKey) => (await outbound.emit(partnerId, 'attribution.order_attributed', payload, idempotencyKey)).messageId !== null,
    recordedCurrency: (partnerId, orderId) => orderEvents.recordedCurrency(partnerId, orderId),
  });
  const activity = new ShowActivityRepository(redis, keys);
  const notifyPartner = mirrorUpdatedHook(outbound, log.child({ module: 'outbound' }));
  const syncService = new SyncService({
    redis,
    keys,
    box,
    shows,
    partners,
    intents,
    links,
    log: log.child({ module: 'mirror' }),
    timeoutMs: config.platformTimeoutMs,
    platformTimeoutsMs: config.platformTimeoutsMs,
    platformSettings: { facebookGraphVersion: config.facebookGraphVersion },
    maxRetries: config.syncMaxRetries,
    backoffBaseMs: config.syncBackoffBaseMs,
    refusedRetryBaseMs: config.pinRefusedRetryBaseMs,
    leaseMs: config.workerLockMs,
    destinations,
    onRemoteIndexed: async (partnerId, targetId, externalId) => {
      await attribution.attributeWaiting(partnerId, targetId, externalId);
    },
    // The sync records each reported change on the show's timeline after the partner was told
    // (usually in its last save's Lua step).
    onMirrorChanged: notifyPartner,
    activity,
    videoGate: async (partnerId, showId, mirror) => {
      if (!mirror.remote?.ingest && !mirror.operatorIngest) return null;
      // Only where the video comes through our relay: a deployment without a relay role (the partner
      // pushes to each platform itself) goes live as before. That is a durable fact (the marker every
      // relay pass writes, removed only by DELETE /v1/relay), not the absence of a heartbeat: a heartbeat
      // lapses in a Redis outage or while every relay process restarts, and then the mirror waits.
      const presence = await relay.presence();
      if (!presence.deployed) return null;
      if (!presence.running) return 'relay not running (no relay process has reported; DELETE /v1/relay takes the relay out of this deployment)';
      // A stored `sending` counts only while a relay process holds the show (a dead owner's last state is stale).
      let status: RelayStatus | null | undefined;
      try {
        [status] = await relay.statusesAsRelayed(partnerId, showId, [mirror.targetId]);
      } catch (err) {
        // A status that does not read (a hand edit: StoredRecordCorruptError, counted) is no `sending`:
        // the mirror waits as for any relay that does not send, its lastError naming the key, until the
        // relay writes the status afresh (every state change, and every RELAY_POLL_MS while it sends) or
        // an operator repairs or deletes it. It failed the sync run before: an internal error, retried.
        // Logged once per wait (the mirror's lastError names the key from the first wait on).
        if (!(err instanceof StoredRecordCorruptError)) throw err;
        if (!mirror.lastError?.includes(err.key)) log.warn({ partnerId, showId, targetId: mirror.targetId, family: err.family, key: err.key, reason: err.reason }, 'relay status does not read: the mirror waits for video');
        return err.message;
      }
      if (status?.state === 'sending') return null;
      return `the relay to this mirror is ${status?.state ?? 'idle'}${status?.lastError ? ` (${status.lastError})` : ''}`;
    },
  });
  const reconciliations = new ReconcileRepository(redis, keys);
  const reconcile = new ReconcileService({
    repo: reconciliations,
    partners,
    attribution,
    outbound,
    adapterFor: (t) => syncService.adapterFor(t),
    connection: producerConn,
    keys,
    log: log.child({ module: 'reconcile' }),
    clockSkewMs: config.reconcileClockSkewMs,
  });

  return {
    config,
    log,
    redisInfo,
    redisDurability: durability,
    redis,
    bullConnection,
    keys,
    box,
    destinations,
    adminApiKey: secrets.adminApiKey,
    partners,
    apiKeys: new ApiKeyRepository(redis, keys),
    audit: new AuditRepository(redis, keys),
    shows,
    orderEvents,
    webhookIds,
    refundIds,
    intents,
    links,
    syncProducer,
    ingest,
    syncService,
    reconcile,
    replicaAck,
    readiness: new ReadinessService({ redis, keys, box, shows, partners, outbound, adapterFor: (t) => syncService.adapterFor(t), forgetAdapter: (id) => syncService.forgetAdapter(id), log: log.child({ module: 'readiness' }) }),
    reconciliations,
    activity,
    sessions: new SessionRepository(redis, keys, 8 * 3600, box.derivedKeys(SESSION_RENEWAL_LABEL)[0]!),
    credentialVerifier: new CredentialVerifier({ redis, keys, box, timeoutMs: config.platformTimeoutMs, platformTimeoutsMs: config.platformTimeoutsMs, settings: { facebookGraphVersion: config.facebookGraphVersion }, destinations, log: log.child({ module: 'targets' }) }),
    producerConnection: producerConn,
    outbound,
    delivery,
    attributionProducer,
    attribution,
    relay,
    relayPublicUrl,
    setRelayEdgePort: (port) => {
      edgePort = port;
    },
    setApiPort: (port) => {
      if (config.publicBaseUrlFollowsPort) links.useBaseUrl(`http://localhost:${port}`);
    },
    close: async () => {
      await syncProducer.close();
      await outbound.close();
      await attributionProducer.close();
      await reconcile.close();
      // (One ended already, by its user — the metrics' queue handles end theirs — is left alone: a second
      // disconnect() of an ended client leaves ioredis' 2 s destroy timer running on its closed socket.)
      for (const c of owned) if (c.status !== 'end') c.disconnect();
      destinations.httpAgent?.destroy();
      destinations.httpsAgent?.destroy();
      await redis.quit().catch(() => undefined);
    },
    closeNow: () => {
      for (const c of owned) if (c.status !== 'end') c.disconnect();
      destinations.httpAgent?.destroy();
      destinations.httpsAgent?.destroy();
      redis.disconnect();
    },
  };
}
