/** Partners and their webhook-secret rotation (docs/operations.md). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { cronRefusal, cronTimes } from '../../lib/cron.js';
import { conflict, notFound } from '../../lib/errors.js';
import { PartnerExistsError, type Partner, type PartnerRepository } from '../../store/partner.repository.js';
import { newWebhookSecret } from '../../sources/signature.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import { FORBIDDEN_PARTNER, FORBIDDEN_ROLE, NameSchema, NoBody, ok, PartnerSchema } from '../openapi.js';

export interface PartnerRoutesOptions {
  partners: PartnerRepository;
  rotationGraceMs: number;
}

/**
 * Scheduled reconciliations run at most every this many minutes: each reads every target's platform
 * order report and keeps a record for 400 days (README "Reconciliation").
 */
export const MIN_RECONCILE_INTERVAL_MINUTES = 5;

/** The shortest gap, in minutes, between two firings of a day (or the last of a day and the next day's first). */
function shortestGapMinutes(minutes: readonly number[], hours: readonly number[]): number {
  const times = hours.flatMap((h) => minutes.map((m) => h * 60 + m)).sort((a, b) => a - b);
  let gap = times[0]! + 1440 - times[times.length - 1]!;
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i]! - times[i - 1]!);
  return gap;
}

const Cron = z.string().superRefine((s, ctx) => {
  if (s.trim().startsWith('@')) {
    ctx.addIssue({ code: 'custom', message: `a macro (${s.trim().split(/\s+/)[0]}) is not supported: give the 5 fields (minute hour day-of-month month day-of-week, UTC), e.g. 0 0 * * * for @daily` });
    return;
  }
  const fields = s.trim().split(/\s+/).length;
  if (fields !== 5) {
    ctx.addIssue({ code: 'custom', message: `5 fields expected (minute hour day-of-month month day-of-week, UTC), got ${fields}${fields === 6 ? ': a seconds field is not supported' : ''}` });
    return;
  }
  const refused = cronRefusal(s);
  const times = cronTimes(s);
  if (refused !== null || !times) {
    ctx.addIssue({ code: 'custom', message: refused ?? 'not a valid cron expression' });
    return;
  }
  const gap = shortestGapMinutes(times.minutes, times.hours);
  if (gap < MIN_RECONCILE_INTERVAL_MINUTES) {
    ctx.addIssue({ code: 'custom', message: `fires ${gap} minute(s) apart; scheduled reconciliations may run at most every ${MIN_RECONCILE_INTERVAL_MINUTES} minutes` });
  }
}).describe(`UTC cron, 5 fields (no seconds), firing at most every ${MIN_RECONCILE_INTERVAL_MINUTES} minutes`);

const CreatePartner = z.object({
  id: IdSchema,
  name: NameSchema,
  attributionWindowHours: z.number().int().min(1).max(24 * 90).default(168),
  reconcileCron: Cron.default('0 3 * * *'),
  reconcileLookbackDays: z.number().int().min(1).max(90).default(3),
}).strict();
const PartnerParams = z.object({ partnerId: IdSchema });
const PatchPartner = z
  .object({
    name: NameSchema.optional(),
    attributionWindowHours: z.number().int().min(1).max(24 * 90).optional(),
    reconcileCron: Cron.optional(),
    reconcileLookbackDays: z.number().int().min(1).max(90).optional(),
  })
  .strict()
  .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change');

export const partnerRoutes: FastifyPluginAsyncZod<PartnerRoutesOptions> = async (app, opts) => {
  const { partners } = opts;

  app.post('/v1/partners', { preHandler: app.requireRole('operator'), schema: { tags: ['partners'], summary: 'Onboard a partner', body: CreatePartner, docResponses: { 201: ok('created; webhookSecret is shown this once', PartnerSchema.extend({ webhookSecret: z.string() })), 403: FORBIDDEN_ROLE, 409: 'a partner with this id exists', 503: 'storage is unavailable (or stalled past the create\'s deadline): nothing was created, also not later when Redis goes on; retry the same create (Retry-After)' } } }, async (req, reply) => {
    const partner: Partner = { ...req.body, createdAt: new Date().toISOString() };
    const webhookSecret = newWebhookSecret();
    // partner.created is recorded with the creation (one script) and written after it, once: the retry
    // of a create whose audit write failed (5xx) gets 409 and writes it.
    let exists = false;
    try {
      await partners.create(partner, webhookSecret, app.auditPending(req, { action: 'partner.created', partnerId: partner.id }));
    } catch (err) {
      if (!(err instanceof PartnerExistsError)) throw err;
      exists = true;
    }
    await app.auditSettle({ partnerId: partner.id });
    if (exists) throw conflict(`partner ${partner.id} already exists`);
    return reply.status(201).send({ ...partner, webhookSecret });
  });

  app.get('/v1/partners', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['partners'], summary: 'List partners (a partner key: its own)', docResponses: { 200: ok('the partners', z.object({ partners: z.array(PartnerSchema) })) } } }, async (req) => {
    const all = await partners.list();
    const p = req.principal;
    return { partners: p?.role === 'partner' ? all.filter((x) => x.id === p.partnerId) : all };
  });

  app.get('/v1/partners/:partnerId', { preHandler: app.requireRole('operator', 'viewer', 'partner'), schema: { tags: ['partners'], summary: 'One partner', params: PartnerParams, docResponses: { 200: ok('the partner', PartnerSchema), 403: FORBIDDEN_PARTNER, 404: 'unknown partner' } } }, async (req) => {
    assertPartnerAccess(req, req.params.partnerId);
    const p = await partners.get(req.params.partnerId);
    if (!p) throw notFound(`partner ${req.params.partnerId}`);
    return p;
  });

  app.patch(
    '/v1/partners/:partnerId',
    {
      preHandler: app.requireRole('operator'),
      schema: {
        tags: ['partners'],
        summary: 'Change a partner: name, attribution window, reconciliation schedule (applied by the scheduler within a minute)',
        params: PartnerParams,
        body: PatchPartner,
        docResponses: { 200: ok('the partner as changed', PartnerSchema), 400: 'invalid or unknown field, invalid cron expression, or nothing to change', 403: FORBIDDEN_ROLE, 404: 'unknown partner' },
      },
    },
    async (req) => {
      const { partnerId } = req.params;
      const updated = await partners.update(partnerId, req.body);
      if (!updated) throw notFound(`partner ${partnerId}`);
      const changed = Object.keys(req.body).filter((k) => JSON.stringify(updated.before[k as keyof Partner]) !== JSON.stringify(updated.after[k as keyof Partner]));
      await app.audit(req, { action: 'partner.updated', partnerId, detail: { fields: Object.keys(req.body), changed } });
      return updated.after;
    },
  );

  app.post(
    '/v1/partners/:partnerId/webhook-secret/rotate',
    {
      preHandler: app.requireRole('operator'),
      schema: {
        tags: ['partners'],
        summary: 'Rotate the inbound webhook secret (the old one verifies for 24 h more)',
        params: PartnerParams,
        body: NoBody,
        docResponses: { 200: ok('the new secret (shown this once)', z.object({ id: z.string(), webhookSecret: z.string(), previousSecretValidUntil: z.string() })), 403: FORBIDDEN_ROLE, 404: 'unknown partner' },
      },
    },
    async (req, reply) => {
      const { partnerId } = req.params;
      if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
      const webhookSecret = newWebhookSecret();
      // Recorded with the rotation (one script), written after it: the retry of a rotation whose audit
      // write failed rotates again (its own entry) and writes the first one's, which it cannot redo.
      await partners.rotateSecret(partnerId, webhookSecret, opts.rotationGraceMs, app.auditPending(req, { action: 'webhook_secret.rotated', partnerId }));
      await app.auditSettle({ partnerId });
      return reply.status(200).send({ id: partnerId, webhookSecret, previousSecretValidUntil: new Date(Date.now() + opts.rotationGraceMs).toISOString() });
    },
  );
};
