/**
 * Composition root for every process role (api, worker, scheduler, all-in-one): one place that turns
 * configuration into connections, repositories and services. Roles take only what they use.
 */
import type { ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { resolveRuntimeSecrets } from '../config/runtime-secrets.js';
import { SecretBox } from '../lib/crypto.js';
import { destinationGuard, type DestinationGuard } from '../lib/destination-guard.js';
import { createLogger } from '../lib/logger.js';
import { AttributionService } from '../attribution/attribution.service.js';
import { LinkService } from '../links/link.service.js';
import { SyncService } from '../mirror/sync.service.js';
import { SyncProducer } from '../queues/queues.js';
import { mirrorUpdatedHook } from '../outbound/mirror-updated.js';
import { createOutbound } from '../outbound/outbound.module.js';
import type { DeliveryService } from '../outbound/delivery.service.js';
import type { OutboundService } from '../outbound/outbound.service.js';
import { AttributionProducer } from '../queues/attribution.queue.js';
import { AttributionRepository } from '../store/attribution.repository.js';
import { ReconcileRepository } from '../store/reconcile.repository.js';
import { ReconcileService } from '../reconcile/reconcile.service.js';
import { ExternalShowIndex } from '../store/external-show.index.js';
import { IngestService } from '../sources/ingest.service.js';
import { ApiKeyRepository } from '../store/apikey.repository.js';
import { resolveRedis, type ResolvedRedis } from '../store/embedded-redis.js';
import { IntentRepository } from '../store/intent.repository.js';
import { Keys } from '../store/keys.js';
import { PartnerRepository } from '../store/partner.repository.js';
import { createRedis, waitForRedis, type ConnectionRole, type RedisClient } from '../store/redis.js';
import { OrderEventRepository, ShowRepository } from '../store/show.repository.js';
import { WebhookIdClaims } from '../store/webhook-id.repository.js';

export interface Runtime {
  config: Config;
  log: Logger;
  redisInfo: ResolvedRedis;
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
  shows: ShowRepository;
  orderEvents: OrderEventRepository;
  /** Partner-wide claims of inbound webhook-ids. */
  webhookIds: WebhookIdClaims;
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
  close(): Promise<void>;
}

export async function createRuntime(config: Config, role: ConnectionRole, opts: { log?: Logger; redisInfo?: ResolvedRedis } = {}): Promise<Runtime> {
  const log = opts.log ?? createLogger(config.logLevel);
  const secrets = resolveRuntimeSecrets(config);
  for (const file of secrets.generated) log.warn({ file }, 'generated a secret for the zero-configuration default (set SECRETS_KEY / ADMIN_API_KEY in production)');
  const redisInfo =
    opts.redisInfo ?? (config.redisClusterNodes ? { url: '', source: 'env' as const, stop: async () => undefined } : await resolveRedis({ url: config.redisUrl, dataDir: config.dataDir, appendfsync: config.redisAppendfsync }));
  const target = { url: redisInfo.url || undefined, clusterNodes: config.redisClusterNodes };
  const redis = createRedis(target, role);
  redis.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'redis connection error'));
  await waitForRedis(redis, 15_000);

  const keys = new Keys(config.keyPrefix);
  const box = new SecretBox(secrets.secretsKey, (config.secretsKeyPrevious ?? '').split(','));
  const partners = new PartnerRepository(redis, keys, box);
  const shows = new ShowRepository(redis, keys, config.inboxTtlDays * 86_400);
  const orderEvents = new OrderEventRepository(redis, keys, config.inboxTtlDays * 86_400);
  const intents = new IntentRepository(redis, keys);
  const webhookIds = new WebhookIdClaims(redis, keys, config.inboxTtlDays * 86_400);
  const links = new LinkService(redis, keys, box, config.publicBaseUrl);
  const destinations = destinationGuard({ allowPrivate: config.allowPrivateDestinations });
  // BullMQ gets a dedicated client per Queue/Worker; the API's producers fail fast like the API itself.
  const owned: RedisClient[] = [];
  const bullConnection = (r: ConnectionRole): ConnectionOptions => {
    const c = createRedis(target, r, `syndicast-bull`);
    c.on('error', () => undefined); // surfaced through the calls that use it
    owned.push(c);
    return c as ConnectionOptions;
  };
  const producerConn = bullConnection(role);
  const syncProducer = new SyncProducer(producerConn, keys, config.syncShards);
  const { outbound, delivery } = createOutbound({ redis, keys, box, config, connection: producerConn, log });
  const attributionProducer = new AttributionProducer(producerConn, keys);
  const ingest = new IngestService({
    partners,
    shows,
    orders: orderEvents,
    sync: syncProducer,
    webhookIds,
    toleranceSec: config.webhookToleranceSec,
    log: log.child({ module: 'ingest' }),
    onOrderEvent: (partnerId, eventId, event) => attributionProducer.enqueue(partnerId, eventId, event),
  });
  const attribution = new AttributionService({
    repo: new AttributionRepository(redis, keys),
    partners,
    links,
    externalShows: new ExternalShowIndex(redis, keys),
    log: log.child({ module: 'attribution' }),
    holdDays: config.commissionHoldDays,
    onOrderAttributed: async (partnerId, payload, idempotencyKey) => {
      await outbound.emit(partnerId, 'attribution.order_attributed', payload, idempotencyKey);
    },
  });
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
    platformSettings: { facebookGraphVersion: config.facebookGraphVersion },
    maxRetries: config.syncMaxRetries,
    leaseMs: config.workerLockMs,
    destinations,
    onRemoteIndexed: async (partnerId, targetId, externalId) => {
      await attribution.attributeWaiting(partnerId, targetId, externalId);
    },
    onMirrorChanged: mirrorUpdatedHook(outbound, log.child({ module: 'outbound' })),
  });
  const reconcile = new ReconcileService({
    repo: new ReconcileRepository(redis, keys),
    partners,
    attribution,
    outbound,
    adapterFor: (t) => syncService.adapterFor(t),
    connection: producerConn,
    keys,
    log: log.child({ module: 'reconcile' }),
  });

  return {
    config,
    log,
    redisInfo,
    redis,
    bullConnection,
    keys,
    box,
    destinations,
    adminApiKey: secrets.adminApiKey,
    partners,
    apiKeys: new ApiKeyRepository(redis, keys),
    shows,
    orderEvents,
    webhookIds,
    intents,
    links,
    syncProducer,
    ingest,
    syncService,
    reconcile,
    outbound,
    delivery,
    attributionProducer,
    attribution,
    close: async () => {
      await syncProducer.close();
      await outbound.close();
      await attributionProducer.close();
      await reconcile.close();
      for (const c of owned) c.disconnect();
      destinations.httpAgent?.destroy();
      destinations.httpsAgent?.destroy();
      await redis.quit().catch(() => undefined);
    },
  };
}
