/**
 * Attribution reports (README / OpenAPI at /docs): partner totals (JSON, or CSV with `Accept: text/csv`), a show's
 * breakdown by target and product, and one order with its ledger entries.
 */
import type { FastifyRequest } from 'fastify';
import { exactJson } from '../../lib/exact-json.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { reportCsv } from '../../attribution/attribution.report.js';
import type { AttributionService } from '../../attribution/attribution.service.js';
import { IdSchema, Timestamp } from '../../domain/events.js';
import { AppError, badRequest, notFound } from '../../lib/errors.js';
import { PLATFORM_ORDER_ID_MAX_LENGTH } from '../../lib/ids.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import type { ShowRepository } from '../../store/show.repository.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import { FORBIDDEN_PARTNER, ok } from '../openapi.js';

const Row = { currency: z.string().describe('ISO 4217'), orders: z.number().int(), grossAmount: z.number().int().describe('minor units') };
const Report = z.object({
  totals: z.array(z.object({ showId: z.string(), targetId: z.string(), ...Row, refundedAmount: z.number().int(), commission: z.number().int() })),
  unattributed: z.array(z.object(Row)),
});
const Breakdown = z.object({ targetId: z.string().optional(), productId: z.string().optional(), ...Row, refundedAmount: z.number().int(), commission: z.number().int(), commissionPending: z.number().int(), commissionApproved: z.number().int() });
const Money = z.object({ amount: z.number().int().describe('minor units'), currency: z.string() });
const OrderViewSchema = z.looseObject({ orderId: z.string(), source: z.string(), createdAt: z.string(), total: Money, status: z.string(), refundedAmount: z.number().int(), commission: Money, entries: z.array(z.looseObject({})) });

export interface AttributionRoutesOptions {
  attribution: AttributionService;
  partners: PartnerRepository;
  shows: ShowRepository;
}

const Range = {
  from: Timestamp.optional().describe('orders created at or after (inclusive)'),
  to: Timestamp.optional().describe('orders created before (exclusive)'),
};
const ReportQuery = z.object({ ...Range, showId: IdSchema.optional(), targetId: IdSchema.optional(), format: z.enum(['json', 'csv']).optional() });
const ShowQuery = z.object(Range);
const Params = z.object({ partnerId: IdSchema });
const ShowParams = z.object({ partnerId: IdSchema, showId: IdSchema });
const OrderParams = z.object({ partnerId: IdSchema, orderId: z.string().min(1).max(PLATFORM_ORDER_ID_MAX_LENGTH) });
const OrderQuery = z.object({ targetId: IdSchema.optional().describe('for an order a target platform reported (its own order id)') });

function range(q: { from?: string | undefined; to?: string | undefined }): { fromMs?: number; toMs?: number } {
  const fromMs = q.from ? Date.parse(q.from) : undefined;
  const toMs = q.to ? Date.parse(q.to) : undefined;
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) throw badRequest('from must not be after to', [{ path: 'querystring.from', message: 'must not be after to' }]);
  return { ...(fromMs !== undefined ? { fromMs } : {}), ...(toMs !== undefined ? { toMs } : {}) };
}

/** `Accept` negotiation between JSON (default) and CSV, honouring q-values; `format` wins when given. */
function wantsCsv(req: FastifyRequest, format: string | undefined): boolean {
  if (format) return format === 'csv';
  const prefs = (req.headers.accept ?? '').split(',').map((part, i) => {
    const [type = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return { type: type.trim(), q: q === undefined ? 1 : Number(q), i };
  });
  const best = (t: string): { q: number; i: number } => prefs.filter((p) => p.type === t).sort((a, b) => b.q - a.q)[0] ?? { q: 0, i: Infinity };
  const csv = best('text/csv');
  const json = best('application/json');
  return csv.q > 0 && (csv.q > json.q || (csv.q === json.q && csv.i < json.i));
}

export const attributionRoutes: FastifyPluginAsyncZod<AttributionRoutesOptions> = async (app, opts) => {
  const { attribution, partners, shows } = opts;
  // Money totals past 2^53 are bigints: written as their exact digits (plain JSON.stringify otherwise).
  // Only in this plugin's routes: an app-wide reply serializer would take the place of every other
  // route's response schema (Fastify uses a default reply serializer before a route's schema).
  app.setReplySerializer((payload) => exactJson(payload));
  const readers = app.requireRole('operator', 'viewer', 'partner');

  const partnerOr404 = async (req: FastifyRequest, partnerId: string): Promise<void> => {
    assertPartnerAccess(req, partnerId);
    if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
  };

  app.get(
    '/v1/partners/:partnerId/attribution',
    {
      preHandler: readers,
      schema: {
        tags: ['attribution'],
        summary: 'Attribution totals per (show, target, currency) and unattributed orders per currency',
        description: 'Orders with createdAt in [from, to). Amounts are integers in minor units; no FX. `Accept: text/csv` (or `format=csv`) returns the same rows as CSV.',
        params: Params,
        querystring: ReportQuery,
        docResponses: {
          200: ok('the totals (CSV: one row per totals/unattributed row)', Report, { also: { 'text/csv': z.string() } }),
          400: 'invalid query, or from after to',
          403: FORBIDDEN_PARTNER,
          404: 'unknown partner',
        },
      },
    },
    async (req, reply) => {
      const { partnerId } = req.params;
      await partnerOr404(req, partnerId);
      const { showId, targetId, format } = req.query;
      const report = await attribution.report(partnerId, { ...range(req.query), ...(showId ? { showId } : {}), ...(targetId ? { targetId } : {}) });
      if (wantsCsv(req, format)) {
        return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="attribution-${partnerId}.csv"`).send(reportCsv(report));
      }
      return report;
    },
  );

  app.get(
    '/v1/partners/:partnerId/shows/:showId/attribution',
    {
      preHandler: readers,
      schema: {
        tags: ['attribution'],
        summary: "A show's attributed sales by target and by product",
        params: ShowParams,
        querystring: ShowQuery,
        docResponses: { 200: ok('by target and by product', z.object({ showId: z.string(), byTarget: z.array(Breakdown), byProduct: z.array(Breakdown) })), 400: 'invalid query, or from after to', 403: FORBIDDEN_PARTNER, 404: 'unknown partner or show' },
      },
    },
    async (req) => {
      const { partnerId, showId } = req.params;
      await partnerOr404(req, partnerId);
      if (!(await shows.desired(partnerId, showId))) throw notFound(`show ${showId}`);
      return attribution.showReport(partnerId, showId, range(req.query));
    },
  );

  app.get(
    '/v1/partners/:partnerId/attribution/orders/:orderId',
    {
      preHandler: readers,
      schema: {
        tags: ['attribution'],
        summary: 'One order: its attribution, commission status, refunds and ledger entries',
        params: OrderParams,
        querystring: OrderQuery,
        docResponses: { 200: ok('the order', OrderViewSchema), 400: 'targetId missing for an order a target platform reported', 403: FORBIDDEN_PARTNER, 404: 'unknown partner or order' },
      },
    },
    async (req) => {
      const { partnerId, orderId } = req.params;
      await partnerOr404(req, partnerId);
      const { targetId } = req.query;
      const view = await attribution.order(partnerId, orderId, targetId);
      if (view) return view;
      if (targetId !== undefined) throw notFound(`order ${orderId} of target ${targetId}`);
      // Without targetId only the partner's own orders are looked up: an order a target platform reported
      // (by its platform order id) needs it. Its 404 said only "order … not found".
      const targets = (await partners.bundle(partnerId))?.targets.map((t) => t.id) ?? [];
      const reportedBy = await attribution.reportedBy(partnerId, orderId, targets);
      if (reportedBy.length > 0) {
        const which = reportedBy.join(', ');
        throw badRequest(`order ${orderId} is an order a target platform reported (target ${which}): the query parameter targetId is required for it`, [
          { path: 'querystring.targetId', message: `required for an order a target platform reported (here: ${which})` },
        ]);
      }
      throw new AppError(404, 'Not Found', `order ${orderId} not found among the partner's orders; an order a target platform reported is looked up with ?targetId=<target id>`);
    },
  );
};
