/** Partners, API keys and webhook-secret rotation (CONTRACT §2). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { conflict, notFound } from '../../lib/errors.js';
import { ROLES } from '../../store/apikey.repository.js';
import { PartnerExistsError, type Partner, type PartnerRepository } from '../../store/partner.repository.js';
import type { ApiKeyRepository } from '../../store/apikey.repository.js';
import { newWebhookSecret } from '../../sources/signature.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';

export interface PartnerRoutesOptions {
  partners: PartnerRepository;
  apiKeys: ApiKeyRepository;
  rotationGraceMs: number;
}

const Cron = z.string().refine((s) => {
  try {
    CronExpressionParser.parse(s, { tz: 'UTC' });
    return s.trim().split(/\s+/).length >= 5;
  } catch {
    return false;
  }
}, 'not a valid cron expression');

const CreatePartner = z.object({
  id: IdSchema,
  name: z.string().min(1).max(200),
  attributionWindowHours: z.number().int().min(1).max(24 * 90).default(168),
  reconcileCron: Cron.default('0 3 * * *'),
  reconcileLookbackDays: z.number().int().min(1).max(90).default(3),
});
const PartnerParams = z.object({ partnerId: IdSchema });
const CreateKey = z
  .object({ role: z.enum(ROLES), partnerId: IdSchema.optional() })
  .refine((k) => (k.role === 'partner') === (k.partnerId !== undefined), { message: 'partnerId is required for (and only for) role partner', path: ['partnerId'] });

export const partnerRoutes: FastifyPluginAsyncZod<PartnerRoutesOptions> = async (app, opts) => {
  const { partners, apiKeys } = opts;

  app.post('/v1/api-keys', { preHandler: app.requireRole(), schema: { tags: ['auth'], summary: 'Create an API key (shown once, stored hashed)', body: CreateKey } }, async (req, reply) => {
    if (req.body.partnerId && !(await partners.get(req.body.partnerId))) throw notFound(`partner ${req.body.partnerId}`);
    const created = await apiKeys.create(req.body.role, req.body.partnerId);
    return reply.status(201).send({ ...created, role: req.body.role, partnerId: req.body.partnerId });
  });

  app.post('/v1/partners', { preHandler: app.requireRole('operator'), schema: { tags: ['partners'], summary: 'Onboard a partner', body: CreatePartner } }, async (req, reply) => {
    const partner: Partner = { ...req.body, createdAt: new Date().toISOString() };
    const webhookSecret = newWebhookSecret();
    try {
      await partners.create(partner, webhookSecret);
    } catch (err) {
      if (err instanceof PartnerExistsError) throw conflict(`partner ${partner.id} already exists`);
      throw err;
    }
    await partners.audit(partner.id, { who: req.principal?.id, action: 'partner.created' });
    return reply.status(201).send({ ...partner, webhookSecret });
  });

  app.get('/v1/partners', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['partners'], summary: 'List partners' } }, async (req) => {
    const all = await partners.list();
    const p = req.principal;
    return { partners: p?.role === 'partner' ? all.filter((x) => x.id === p.partnerId) : all };
  });

  app.get('/v1/partners/:partnerId', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['partners'], params: PartnerParams } }, async (req) => {
    assertPartnerAccess(req, req.params.partnerId);
    const p = await partners.get(req.params.partnerId);
    if (!p) throw notFound(`partner ${req.params.partnerId}`);
    return p;
  });

  app.post(
    '/v1/partners/:partnerId/webhook-secret/rotate',
    { preHandler: app.requireRole('operator'), schema: { tags: ['partners'], summary: 'Rotate the inbound webhook secret (the old one verifies for 24 h more)', params: PartnerParams } },
    async (req, reply) => {
      const { partnerId } = req.params;
      if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
      const webhookSecret = newWebhookSecret();
      await partners.rotateSecret(partnerId, webhookSecret, opts.rotationGraceMs);
      await partners.audit(partnerId, { who: req.principal?.id, action: 'webhook_secret.rotated' });
      return reply.status(200).send({ id: partnerId, webhookSecret, previousSecretValidUntil: new Date(Date.now() + opts.rotationGraceMs).toISOString() });
    },
  );
};
