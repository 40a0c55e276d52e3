/**
 * The Fastify app as a composition of plugins in a visible order (fastify/demo's app.ts):
 * infrastructure (errors, auth, metrics, docs), then routes. server.ts-like concerns (listen,
 * shutdown) live in src/main/.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { REDACT_PATHS } from '../lib/logger.js';
import type { Runtime } from '../main/runtime.js';
import authPlugin from './plugins/auth.plugin.js';
import docsPlugin from './plugins/docs.plugin.js';
import errorsPlugin from './plugins/errors.plugin.js';
import metricsPlugin, { createMetrics } from './plugins/metrics.plugin.js';
import { attributionRoutes } from './routes/attribution.routes.js';
import { eventRoutes } from './routes/events.routes.js';
import { healthRoutes } from './routes/health.routes.js';
import { linkRoutes } from './routes/links.routes.js';
import { outboundRoutes } from './routes/outbound.routes.js';
import { partnerRoutes } from './routes/partners.routes.js';
import { platformWebhookRoutes } from './routes/platform-webhooks.routes.js';
import { showRoutes } from './routes/shows.routes.js';
import { targetRoutes } from './routes/targets.routes.js';
import { reconcileRoutes } from './routes/reconcile.routes.js';

export interface AppOptions {
  /** Log requests (off in tests and benchmarks). */
  logger?: boolean;
  dashboard?: boolean;
}

export async function buildApp(rt: Runtime, opts: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger === false ? false : { level: rt.config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    trustProxy: true,
    bodyLimit: 256 * 1024,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Infrastructure
  await app.register(errorsPlugin);
  await app.register(authPlugin, { apiKeys: rt.apiKeys, adminApiKey: rt.adminApiKey });
  const metrics = createMetrics(() => rt.syncProducer.allQueues());
  await app.register(metricsPlugin, { metrics });
  await app.register(docsPlugin, { publicBaseUrl: rt.config.publicBaseUrl });

  // Routes
  await app.register(healthRoutes, { redis: rt.redis });
  await app.register(eventRoutes, { ingest: rt.ingest, onAccepted: (r) => metrics.events.inc({ result: r }) });
  await app.register(linkRoutes, { links: rt.links, shows: rt.shows, onClick: (bot) => metrics.clicks.inc({ kind: bot ? 'bot' : 'human' }) });
  await app.register(partnerRoutes, { partners: rt.partners, apiKeys: rt.apiKeys, rotationGraceMs: rt.config.secretRotationGraceHours * 3_600_000 });
  await app.register(targetRoutes, { partners: rt.partners, shows: rt.shows, sync: rt.syncProducer, allowPrivateDestinations: rt.config.allowPrivateDestinations, sweepPageSize: rt.config.sweepPageSize });
  await app.register(showRoutes, { partners: rt.partners, shows: rt.shows, sync: rt.syncProducer });
  await app.register(attributionRoutes, { attribution: rt.attribution, partners: rt.partners, shows: rt.shows });
  await app.register(platformWebhookRoutes, { partners: rt.partners, syncService: rt.syncService, attribution: rt.attribution });
  await app.register(reconcileRoutes, { reconcile: rt.reconcile });
  await app.register(outboundRoutes, { outbound: rt.outbound, partners: rt.partners, allowPrivateDestinations: rt.config.allowPrivateDestinations });
  if (opts.dashboard !== false) {
    // Loaded lazily: bull-board pulls in @fastify/static, which tests and benchmarks do not need.
    const { queuesBoard } = await import('./plugins/queues-board.plugin.js');
    await app.register(queuesBoard, { queues: [...rt.syncProducer.allQueues(), rt.attributionProducer.queue, rt.outbound.queue] });
  }
  return app;
}
