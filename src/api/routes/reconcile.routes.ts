/** Reconciliations (README "Reconciliation"). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { AppError, notFound } from '../../lib/errors.js';
import type { ReconcileService } from '../../reconcile/reconcile.service.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { PageCursorSchema, pageCursor, parsePageCursor } from '../../store/zset-page.js';
import { DiscrepancySchema, FORBIDDEN_PARTNER, FORBIDDEN_ROLE, ok, ReconciliationSchema } from '../openapi.js';
import { logLeftOut } from '../../store/stored-record.js';

const Timestamp = z.iso.datetime({ offset: true });

const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), cursor: PageCursorSchema.optional() });

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
        docResponses: { 200: ok('one page, newest first', z.object({ reconciliations: z.array(ReconciliationSchema), nextCursor: z.string().nullable().describe('`cursor` for the next page (opaque: it marks the last run of this page, so runs requested meanwhile shift nothing); null on the last page'), total: z.number().int() })), 403: FORBIDDEN_PARTNER, 404: 'unknown partner' },
      },
    },
    async (req) => {
      const { partnerId } = req.params;
      assertPartnerAccess(req, partnerId);
      if (!(await opts.partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
      const start = parsePageCursor(req.query.cursor);
      if (start === null) throw new AppError(400, 'Bad Request', 'cursor: a nextCursor from a previous page of this list expected'); // the schema refused it already
      const { items, total, next } = await opts.reconcile.list(partnerId, start, req.query.limit, logLeftOut(req.log, 'reconciliation'));
      return {
        reconciliations: items.map(({ id, status, trigger, from, to, createdAt, completedAt, summary, error }) => ({ id, partnerId, status, trigger, from, to, createdAt, completedAt, summary, ...(error ? { error } : {}) })),
        nextCursor: next ? pageCursor(next) : null,
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
        body: z.strictObject({ from: Timestamp, to: Timestamp }),
        docResponses: { 202: ok('queued; GET /v1/reconciliations/{id} for its result', z.object({ id: z.string() })), 400: 'invalid body, from not before to, a period over 92 days, or a bound outside the years 0000-9999 once in UTC (an offset can move 9999-12-31 into 10000)', 403: FORBIDDEN_ROLE, 404: 'unknown partner' },
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
        docResponses: { 200: ok('the reconciliation', ReconciliationSchema.extend({ discrepancies: z.array(DiscrepancySchema) })), 403: FORBIDDEN_PARTNER, 404: 'unknown reconciliation' },
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
