/** The operator audit log over REST: newest first, paged by cursor, filterable; a partner key reads only its partner's entries. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema, Timestamp } from '../../domain/events.js';
import { badRequest } from '../../lib/errors.js';
import type { AuditRepository } from '../../store/audit.repository.js';
import { StreamCursorSchema } from '../../store/stream-id.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import { FORBIDDEN_PARTNER, ok } from '../openapi.js';
import { logLeftOut } from '../../store/stored-record.js';

const AuditEntrySchema = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.object({ keyId: z.string(), role: z.string(), name: z.string().optional() }),
  action: z.string(),
  partnerId: z.string().optional(),
  showId: z.string().optional(),
  targetId: z.string().optional(),
  requestId: z.string().optional(),
  detail: z.record(z.string(), z.unknown()).optional().describe('ids of the objects touched, fields changed; never secrets'),
});

const AuditQuery = z.object({
  partnerId: IdSchema.optional(),
  showId: IdSchema.optional(),
  targetId: IdSchema.optional(),
  action: z
    .string()
    .regex(/^[a-z_]+(\.[a-z_]*)?$/, 'an action such as mirror.resync, or a prefix such as mirror.')
    .max(100)
    .optional(),
  from: Timestamp.optional().describe('entries at or after (inclusive)'),
  to: Timestamp.optional().describe('entries before (exclusive)'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: StreamCursorSchema.optional(),
});

export const auditRoutes: FastifyPluginAsyncZod<{ audit: AuditRepository }> = async (app, opts) => {
  app.get(
    '/v1/audit',
    {
      preHandler: app.requireRole('operator', 'viewer', 'partner'),
      schema: {
        tags: ['audit'],
        summary: 'Operator actions (who, what, when, on which partner/show/target), newest first',
        description:
          "Paged with `cursor` (the previous page's `nextCursor`). A partner key reads only its own partner's entries (`partnerId` defaults to it). `from`/`to`: entries in [from, to) (`from` = `to` is an empty page); an entry's `at` is Redis's time of the append, the clock the range is matched against.",
        querystring: AuditQuery,
        docResponses: {
          200: ok('one page, newest first', z.object({ entries: z.array(AuditEntrySchema), nextCursor: z.string().nullable() })),
          400: 'invalid query, or from after to',
          403: FORBIDDEN_PARTNER,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const p = req.principal;
      const partnerId = p?.role === 'partner' ? (q.partnerId ?? p.partnerId) : q.partnerId;
      if (p?.role === 'partner') assertPartnerAccess(req, partnerId ?? '');
      const from = q.from ? new Date(q.from) : undefined;
      const to = q.to ? new Date(q.to) : undefined;
      // As the attribution reports: [from, to) with from = to is an empty range, not a mistake; only a reversed one is.
      if (from && to && from.getTime() > to.getTime()) throw badRequest('from must not be after to', [{ path: 'querystring.from', message: 'must not be after to' }]);
      // Entries recorded pending with their change and not yet in the log (its audit write failed and
      // nobody retried) are written first, so a read never misses a change that was made.
      await app.auditSettle('keys');
      if (partnerId !== undefined) await app.auditSettle({ partnerId });
      return opts.audit.list({ partnerId, showId: q.showId, targetId: q.targetId, action: q.action, from, to, limit: q.limit, cursor: q.cursor }, logLeftOut(req.log, 'audit entry'));
    },
  );
};
