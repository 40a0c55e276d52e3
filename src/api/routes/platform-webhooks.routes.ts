/**
 * POST /v1/platform-webhooks/{targetId} — where a target platform sends its own webhooks (README / OpenAPI at /docs).
 * No API key: the target's adapter verifies the platform's own scheme on the raw body. Orders in the
 * webhook are stored in the ledger before the 200 goes out (a platform retries anything else).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AttributionService } from '../../attribution/attribution.service.js';
import { AppError, notFound, unauthorized } from '../../lib/errors.js';
import { ID_PATTERN } from '../../lib/ids.js';
import { idRecord } from '../../lib/id-record.js';
import type { SyncService } from '../../mirror/sync.service.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { isTargetError, WebhookAuthError } from '../../targets/target.errors.js';
import { z } from 'zod';
import { ok } from '../openapi.js';

export const PLATFORM_WEBHOOK_BODY_LIMIT = 1024 * 1024;

export interface PlatformWebhookRoutesOptions {
  partners: PartnerRepository;
  syncService: SyncService;
  attribution: AttributionService;
}

export const platformWebhookRoutes: FastifyPluginAsync<PlatformWebhookRoutesOptions> = async (app, opts) => {
  // Encapsulated: only this plugin's route keeps the raw bytes (signatures cover them exactly).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: PLATFORM_WEBHOOK_BODY_LIMIT }, (_req, body, done) => done(null, body));

  app.post<{ Params: { targetId: string } }>(
    '/v1/platform-webhooks/:targetId',
    {
      bodyLimit: PLATFORM_WEBHOOK_BODY_LIMIT,
      schema: {
        tags: ['platform-webhooks'],
        summary: "A target platform's own webhook (orders, show state), verified with that platform's scheme",
        description: '200 after the orders it carries are stored; 401 when the platform signature does not verify; 404 for an unknown target or a platform without webhooks.',
        docResponses: {
          200: ok('the orders it carries are stored', z.object({ received: z.number().int(), stored: z.number().int(), new: z.number().int().describe('orders not seen before') })),
          400: 'the platform adapter rejects the payload',
          401: "the platform's signature does not verify",
          404: 'unknown target, or its platform sends no webhooks',
          413: 'body over 1 MiB',
          415: false, // every media type is read (as raw bytes)
        },
      },
    },
    async (req, reply) => {
      const { targetId } = req.params;
      if (!ID_PATTERN.test(targetId)) throw notFound(`target ${targetId}`);
      const partnerId = await opts.partners.targetOwner(targetId);
      const target = partnerId ? await opts.partners.getTarget(partnerId, targetId) : null;
      if (!partnerId || !target) throw notFound(`target ${targetId}`);
      const adapter = opts.syncService.adapterFor(target);
      if (!adapter?.handleWebhook) throw notFound(`webhooks for target ${targetId} (${target.platform} sends none)`);

      // Header names come from the caller: a prototype-less record (src/lib/id-record.ts).
      const headers = idRecord<string | undefined>();
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let orders;
      try {
        orders = await adapter.handleWebhook(headers, raw);
      } catch (err) {
        if (err instanceof WebhookAuthError) throw unauthorized(err.message);
        if (isTargetError(err) && err.kind === 'permanent') throw new AppError(400, 'Bad Request', `${target.platform} webhook rejected: ${err.message}`);
        throw err;
      }
      const stored = await opts.attribution.ingestPlatformOrders(partnerId, targetId, orders, 'webhook');
      return reply.status(200).send({ received: orders.length, stored: stored.length, new: stored.filter((o) => o.isNew).length });
    },
  );
};
