/**
 * Outbound webhook endpoints, their attempt log, messages and manual redelivery (README "Outbound webhooks").
 * The endpoint secret is shown once (create, rotate) and stored sealed.
 */
import { logLeftOut } from '../../store/stored-record.js';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { AppError, notFound } from '../../lib/errors.js';
import { assertPublicDestination, DestinationRefusedError } from '../../lib/ssrf.js';
import type { OutboundService } from '../../outbound/outbound.service.js';
import { OUTBOUND_EVENT_TYPES, type EndpointRecord } from '../../outbound/outbound.types.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { maskEndpointUrl } from '../../relay/mask.js';
import { StreamCursorSchema } from '../../store/stream-id.js';
import { assertPartnerAccess } from '../plugins/auth.plugin.js';
import { EndpointSchema, FORBIDDEN_PARTNER, FORBIDDEN_ROLE, NoBody, ok, operatorText } from '../openapi.js';

const AttemptSchema = z.object({
  id: z.string().describe('cursor of this attempt'),
  messageId: z.string(),
  eventType: z.string(),
  attempt: z.number().int(),
  run: z.number().int(),
  trigger: z.enum(['event', 'manual']),
  at: z.string(),
  success: z.boolean(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  durationMs: z.number(),
});
const MessageSchema = z.object({
  id: z.string(),
  type: z.string(),
  timestamp: z.string(),
  data: z.unknown(),
  deliveries: z.array(z.looseObject({ endpointId: z.string(), state: z.enum(['pending', 'delivered', 'failed']), attempts: z.number().int() })),
});

export interface OutboundRoutesOptions {
  outbound: OutboundService;
  partners: PartnerRepository;
  allowPrivateDestinations: boolean;
}

const Url = z.url({ protocol: /^https?$/, message: 'http(s) URL expected' }).max(2000);
const Events = z
  .array(z.enum(OUTBOUND_EVENT_TYPES))
  .min(1)
  .max(OUTBOUND_EVENT_TYPES.length * 4)
  .describe('the event types to receive; a type given more than once is kept once (the endpoint stores and answers each type once)');
const CreateEndpoint = z.strictObject({ url: Url, events: Events, description: operatorText(500, true).optional() });
const PatchEndpoint = z
  .strictObject({ url: Url.optional(), events: Events.optional(), description: operatorText(500, true).nullable().optional(), enabled: z.boolean().optional() })
  // An empty PATCH (or one of fields an endpoint does not have) changed nothing and wrote an endpoint.updated audit entry (a 200).
  .refine((b) => Object.values(b).some((v) => v !== undefined), 'give at least one field to change');
const Params = z.object({ partnerId: IdSchema });
const EndpointParams = z.object({ partnerId: IdSchema, endpointId: IdSchema });
const MessageParams = z.object({ partnerId: IdSchema, messageId: IdSchema });
const AttemptsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: StreamCursorSchema.optional(),
});
/** Optional: without a body (or without endpointId) every endpoint of the message is redelivered. */
const Redeliver = z.strictObject({ endpointId: IdSchema.optional() }).nullish();

/**
 * An endpoint as the API shows it; `masked` (a viewer key's read) without what may authenticate its URL
 * (maskEndpointUrl: user:password, query values, the whole path but a bare `/`,
 * token-like host labels, the fragment): a receiver's `?token=`, user:password, path token (Slack,
 * Discord, Zapier, webhook.site) or host token (Pipedream) is the partner's secret, as a show's sourceUrl
 * is. Operator, admin and the partner's own key see it whole (the URL as registered, CONTRACT §8).
 */
export function publicEndpoint(e: EndpointRecord, masked: boolean) {
  return {
    id: e.id,
    partnerId: e.partnerId,
    url: masked ? maskEndpointUrl(e.url) : e.url,
    events: e.events,
    description: e.description,
    enabled: e.enabled,
    disabledAt: e.disabledAt,
    disabledReason: e.disabledReason,
    failingSince: e.failingSince === null ? null : new Date(e.failingSince).toISOString(),
    lastSuccessAt: e.lastSuccessAt,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

export const outboundRoutes: FastifyPluginAsyncZod<OutboundRoutesOptions> = async (app, opts) => {
  const { outbound, partners } = opts;
  const endpoints = outbound.endpoints;
  const readers = app.requireRole('operator', 'viewer', 'partner');

  // One partner's dead host names share one lookup slot (the owner), not one per name (src/lib/ssrf.ts).
  const checkUrl = async (url: string | undefined, partnerId: string): Promise<void> => {
    if (!url) return;
    try {
      await assertPublicDestination(url, opts.allowPrivateDestinations, undefined, partnerId);
    } catch (err) {
      if (err instanceof DestinationRefusedError) throw new AppError(400, 'Bad Request', `url refused: ${err.message}`, [{ path: 'body.url', message: err.message }]);
      throw err;
    }
  };
  const load = async (partnerId: string, endpointId: string): Promise<EndpointRecord> => {
    const e = await endpoints.get(partnerId, endpointId);
    if (!e) throw notFound(`endpoint ${endpointId}`);
    return e;
  };

  app.post(
    '/v1/partners/:partnerId/endpoints',
    { preHandler: app.requireRole('operator'), schema: { tags: ['webhooks'], summary: 'Add an outbound webhook endpoint (the secret is shown once)',
        params: Params,
        body: CreateEndpoint,
        docResponses: { 201: ok('created; `secret` is shown this once', EndpointSchema.extend({ secret: z.string() })), 400: 'invalid body, or url refused (not a public address)', 403: FORBIDDEN_ROLE, 404: 'unknown partner', 409: 'the partner has OUTBOUND_ENDPOINTS_PER_PARTNER endpoints already (20 by default; the detail names the cap): nothing created; delete one to make room', 503: "DNS cannot look up the url's host right now (nothing saved), or storage is unavailable or did not answer in time (the request may or may not have taken effect: list the endpoints before creating it again); retry later (Retry-After)" },
      },
    },
    async (req, reply) => {
      const { partnerId } = req.params;
      if (!(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
      await checkUrl(req.body.url, partnerId);
      // Recorded with the endpoint (one script), written after it: an endpoint made by a request whose
      // audit write failed gets deliveries all the same; the retry (which makes another) writes its entry.
      const { endpoint, secret } = await outbound.createEndpoint(partnerId, req.body, (endpointId) => app.auditPending(req, { action: 'endpoint.created', partnerId, detail: { endpointId } }));
      await app.auditSettle({ partnerId });
      return reply.status(201).send({ ...publicEndpoint(endpoint, false), secret });
    },
  );

  app.get('/v1/partners/:partnerId/endpoints', { preHandler: readers, schema: { tags: ['webhooks'], summary: 'List outbound webhook endpoints', params: Params, docResponses: { 200: ok('the endpoints', z.object({ endpoints: z.array(EndpointSchema) })), 403: FORBIDDEN_PARTNER, 404: 'unknown partner' } } }, async (req) => {
    assertPartnerAccess(req, req.params.partnerId);
    if (!(await partners.get(req.params.partnerId))) throw notFound(`partner ${req.params.partnerId}`);
    const masked = req.principal?.role === 'viewer';
    return { endpoints: (await endpoints.list(req.params.partnerId)).map((e) => publicEndpoint(e, masked)) };
  });

  app.get('/v1/partners/:partnerId/endpoints/:endpointId', { preHandler: readers, schema: { tags: ['webhooks'], summary: 'One outbound webhook endpoint', params: EndpointParams, docResponses: { 200: ok('the endpoint', EndpointSchema), 403: FORBIDDEN_PARTNER, 404: 'unknown endpoint' } } }, async (req) => {
    assertPartnerAccess(req, req.params.partnerId);
    return publicEndpoint(await load(req.params.partnerId, req.params.endpointId), req.principal?.role === 'viewer');
  });

  app.patch(
    '/v1/partners/:partnerId/endpoints/:endpointId',
    { preHandler: app.requireRole('operator'), schema: { tags: ['webhooks'], summary: 'Change url/events/description; enable or disable',
        params: EndpointParams,
        body: PatchEndpoint,
        docResponses: { 200: ok('the endpoint as changed', EndpointSchema), 400: 'invalid body, or url refused (not a public address)', 403: FORBIDDEN_ROLE, 404: 'unknown endpoint', 503: "DNS cannot look up the url's host right now (nothing changed), or storage is unavailable or did not answer in time (the request may or may not have taken effect); retry later (Retry-After)" },
      },
    },
    async (req) => {
      const { partnerId, endpointId } = req.params;
      const current = await load(partnerId, endpointId);
      await checkUrl(req.body.url, partnerId);
      const now = new Date().toISOString();
      const { enabled, events, ...rest } = req.body;
      const patch: Partial<EndpointRecord> = { ...rest, updatedAt: now };
      if (events) patch.events = [...new Set(events)];
      if (enabled === true && !current.enabled) Object.assign(patch, { enabled: true, disabledAt: null, disabledReason: null, failingSince: null });
      if (enabled === false && current.enabled) Object.assign(patch, { enabled: false, disabledAt: now, disabledReason: 'disabled by an operator' });
      if (!(await endpoints.update(partnerId, endpointId, patch))) throw notFound(`endpoint ${endpointId}`);
      await app.audit(req, { action: 'endpoint.updated', partnerId, detail: { endpointId, fields: Object.keys(req.body) } });
      return publicEndpoint(await load(partnerId, endpointId), false);
    },
  );

  app.delete('/v1/partners/:partnerId/endpoints/:endpointId', { preHandler: app.requireRole('operator'), schema: { tags: ['webhooks'], summary: 'Delete an outbound webhook endpoint', params: EndpointParams, docResponses: { 204: ok('deleted'), 403: FORBIDDEN_ROLE, 404: 'unknown endpoint' } } }, async (req, reply) => {
    const { partnerId, endpointId } = req.params;
    // endpoint.deleted is recorded with the delete (one script) and written after it, each entry once:
    // the retry of a DELETE whose audit write failed (5xx) finds the endpoint gone (404) and writes it.
    // Its id is the endpoint's: a retry after a process died between the index and the record's delete
    // (204 again) records the same entry, not a second one.
    const deleted = await endpoints.delete(partnerId, endpointId, app.auditPending(req, { action: 'endpoint.deleted', partnerId, detail: { endpointId } }, `endpoint.deleted:${partnerId}:${endpointId}`));
    await app.auditSettle({ partnerId });
    if (!deleted) throw notFound(`endpoint ${endpointId}`);
    return reply.status(204).send();
  });

  app.post(
    '/v1/partners/:partnerId/endpoints/:endpointId/rotate-secret',
    { preHandler: app.requireRole('operator'), schema: { tags: ['webhooks'], summary: 'New signing secret; rotated-out ones also sign for their grace period',
        params: EndpointParams,
        body: NoBody,
        docResponses: { 200: ok('the new secret (shown this once)', z.object({ id: z.string(), secret: z.string(), previousSecretValidUntil: z.string() })), 403: FORBIDDEN_ROLE, 404: 'unknown endpoint' },
      },
    },
    async (req) => {
      const { partnerId, endpointId } = req.params;
      await load(partnerId, endpointId);
      // Recorded with the rotation (one script, in the endpoint's slot) and written after it: the retry
      // of a rotation whose audit write failed rotates again, and the first (a secret that was never
      // shown and signs for the grace period) keeps its entry. Announced first, so that a read of the log
      // or the scheduler writes it also when nobody retries.
      await app.auditAnnounce({ partnerId, endpointId });
      const rotated = await outbound.rotateSecret(partnerId, endpointId, app.auditPending(req, { action: 'endpoint.secret_rotated', partnerId, detail: { endpointId } }));
      await app.auditSettle({ partnerId, endpointId });
      return { id: endpointId, ...rotated };
    },
  );

  app.get(
    '/v1/partners/:partnerId/endpoints/:endpointId/attempts',
    { preHandler: readers, schema: { tags: ['webhooks'], summary: 'Delivery attempts, newest first',
        params: EndpointParams,
        querystring: AttemptsQuery,
        docResponses: { 200: ok('one page, newest first', z.object({ attempts: z.array(AttemptSchema), nextCursor: z.string().nullable() })), 403: FORBIDDEN_PARTNER, 404: 'unknown endpoint' },
      },
    },
    async (req) => {
      const { partnerId, endpointId } = req.params;
      assertPartnerAccess(req, partnerId);
      await load(partnerId, endpointId);
      return endpoints.attempts(partnerId, endpointId, req.query.limit, req.query.cursor, logLeftOut(req.log, 'delivery attempt'));
    },
  );

  app.get('/v1/partners/:partnerId/messages/:messageId', { preHandler: readers, schema: { tags: ['webhooks'], summary: 'A message and its delivery state per endpoint', params: MessageParams, docResponses: { 200: ok('the message', MessageSchema), 403: FORBIDDEN_PARTNER, 404: 'unknown message' } } }, async (req) => {
    assertPartnerAccess(req, req.params.partnerId);
    const m = await outbound.message(req.params.partnerId, req.params.messageId);
    if (!m) throw notFound(`message ${req.params.messageId}`);
    return m;
  });

  app.post(
    '/v1/partners/:partnerId/messages/:messageId/redeliver',
    { preHandler: app.requireRole('operator'), schema: { tags: ['webhooks'], summary: 'Deliver a message again (to one endpoint or all of its endpoints)',
        params: MessageParams,
        body: Redeliver,
        docResponses: {
          202: ok('queued', z.object({ messageId: z.string(), endpointIds: z.array(z.string()) })),
          403: FORBIDDEN_ROLE,
          404: 'unknown message or endpoint',
          409: 'the endpoint is disabled, or does not subscribe to the message type; without `endpointId`, none of the message\'s endpoints can take it now (each deleted, disabled or no longer subscribed: the detail says which), nothing queued',
        },
      },
    },
    async (req, reply) => {
      const { partnerId, messageId } = req.params;
      const endpointIds = await outbound.redeliver(partnerId, messageId, req.body?.endpointId);
      await app.audit(req, { action: 'message.redelivered', partnerId, detail: { messageId, endpointIds } });
      return reply.status(202).send({ messageId, endpointIds });
    },
  );
};
