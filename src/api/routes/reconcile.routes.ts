/** Reconciliations (README "Reconciliation"). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { notFound } from '../../lib/errors.js';
import type { ReconcileService } from '../../reconcile/reconcile.service.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { FORBIDDEN_PARTNER, FORBIDDEN_ROLE, ok, ReconciliationSchema } from '../openapi.js';

const Timestamp = z.iso.datetime({ offset: true });

const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), cursor: z.coerce.number().int().min(0).default(0) });

export const reconcileRoutes: FastifyPluginAsyncZod<{ reconcile: ReconcileService; partners: PartnerRepository }> = async (app, opts) => {
  app.get(
    '/v1/partners/:partnerId/reconciliations',
    {
      preHandler: app.requireRole('operator', 'viewer', 'partner'),
      schema: {
        tags: ['reconciliation'],
        summary: "A partner's reconciliations, newest first (summary and discrepancy count; the discrepancies are on each run)",
        params: z.object({ partnerId: IdSchema }),
        querystring: ListQuery,
        docResponses: { 200: ok('one page, newest first', z.object({ reconciliations: z.array(ReconciliationSchema), nextCursor: z.number().int().nullable(), total: z.number().int() })), 403: FORBIDDEN_PARTNER, 404: 'unknown partner' },
      },
    },
    async (req) => {
      const { partnerId } = req.params;
      assertPartnerAccess(req, partnerId);
      if (!(await opts.partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
      const { items, total } = await opts.reconcile.list(partnerId, req.query.cursor, req.query.limit);
      const next = req.query.cursor + req.query.limit;
      return {
        reconciliations: items.map(({ id, status, trigger, from, to, createdAt, completedAt, summary, error }) => ({ id, partnerId, status, trigger, from, to, createdAt, completedAt, summary, ...(error ? { error } : {}) })),
        nextCursor: next < total ? next : null,
        total,
      };
    },
  );


  app.post(
    '/v1/partners/:partnerId/reconciliations',
    {
      preHandler: app.requireRole('operator'),
      schema: {
        tags: ['reconciliation'],
        summary: 'Reconcile the ledger with every target platform report for [from, to)',
        params: z.object({ partnerId: IdSchema }),
        body: z.object({ from: Timestamp, to: Timestamp }),
        docResponses: { 202: ok('queued; GET /v1/reconciliations/{id} for its result', z.object({ id: z.string() })), 400: 'invalid body, from not before to, or a period over 92 days', 403: FORBIDDEN_ROLE, 404: 'unknown partner' },
      },
    },
    async (req, reply) => {
      const { partnerId } = req.params;
      // Recorded with the run's listing (one script) and written after it, once per run: a request whose
      // audit write fails still answers 202 (a retry would request a second run), and the entry is
      // written by the next change of the partner, a read of the log or the scheduler's minute tick.
      const rec = await opts.reconcile.request(partnerId, new Date(req.body.from), new Date(req.body.to), 'manual', undefined, (id) =>
        app.auditPending(req, { action: 'reconciliation.requested', partnerId, detail: { reconciliationId: id, from: req.body.from, to: req.body.to } }, `reconciliation.requested:${id}`),
      );
      await app.auditSettle({ partnerId });
      return reply.status(202).send({ id: rec.id });
    },
  );

  app.get(
    '/v1/reconciliations/:id',
    {
      preHandler: app.requireRole('operator', 'viewer', 'partner'),
      schema: {
        tags: ['reconciliation'],
        summary: 'Status, summary and discrepancies',
        params: z.object({ id: IdSchema }),
        docResponses: { 200: ok('the reconciliation', ReconciliationSchema.extend({ discrepancies: z.array(z.looseObject({ kind: z.string(), reason: z.enum(['currency_mismatch', 'invalid_currency']).optional().describe('set when the money was not compared: another currency (no FX), or a code that is not ISO 4217') })) })), 403: FORBIDDEN_PARTNER, 404: 'unknown reconciliation' },
      },
    },
    async (req) => {
      const rec = await opts.reconcile.get(req.params.id);
      if (!rec) throw notFound(`reconciliation ${req.params.id}`);
      assertPartnerAccess(req, rec.partnerId);
      const { id, status, from, to, summary, discrepancies, partnerId, trigger, createdAt, completedAt, error } = rec;
      return { id, partnerId, status, trigger, from, to, createdAt, completedAt, summary, discrepancies, ...(error ? { error } : {}) };
    },
  );
};
