/**
 * POST /v1/partners/{partnerId}/events — signed partner events (README "Walkthrough with curl" and docs/architecture.md). The body is read raw
 * (≤ 1 MiB) because the signature covers the exact bytes; parsing happens after verification.
 */
import type { FastifyPluginAsync } from 'fastify';
import { acceptAnyContentType } from '../plugins/raw-body.js';
import { ID_PATTERN } from '../../lib/ids.js';
import { notFound } from '../../lib/errors.js';
import type { IngestService } from '../../sources/ingest.service.js';
import { PartnerEventSchema } from '../../domain/events.js';
import { z } from 'zod';
import { ok } from '../openapi.js';

const EventAnswer = z.object({
  eventId: z.string().describe("Syndicast's id of the stored event (time-ordered; a repeat gets the first delivery's)"),
  webhookId: z.string().describe("the partner's webhook-id header, echoed"),
  duplicate: z.boolean(),
});

export const EVENT_BODY_LIMIT = 1024 * 1024;

export interface EventRoutesOptions {
  ingest: IngestService;
  onAccepted?: (type: 'accepted' | 'duplicate') => void;
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(' ') : v;
}

export const eventRoutes: FastifyPluginAsync<EventRoutesOptions> = async (app, opts) => {
  // Encapsulated: only this route keeps the raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: EVENT_BODY_LIMIT }, (_req, body, done) => done(null, body));
  acceptAnyContentType(app);

  app.post<{ Params: { partnerId: string } }>(
    '/v1/partners/:partnerId/events',
    {
      bodyLimit: EVENT_BODY_LIMIT,
      schema: {
        tags: ['events'],
        summary: 'Signed partner event (Standard Webhooks)',
        description:
          'Headers webhook-id, webhook-timestamp (unix s, ±300 s) and webhook-signature (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}">`, space-separated list allowed). ' +
          'Answer `{eventId, webhookId, duplicate}`: `eventId` is Syndicast\'s id of the stored event (time-ordered; a repeat gets the first delivery\'s), `webhookId` echoes the partner\'s `webhook-id` header. ' +
          'An optional field given as `null` (clickId, showId, description, sourceUrl, imageUrl, sku) is read as absent; a required field given `null` is a 400 naming it. ' +
          '202 after the event is durably stored; 200 for a repeated webhook-id; 409 for a webhook-id first used for another show or order whose event is not stored; 401 bad signature; 404 unknown partner; 400 invalid body (an `occurredAt` more than EVENT_FUTURE_SLACK_SEC, default 24 h, past now included: a later occurredAt wins, so it would freeze the show); 413 over 1 MiB; 415 a compressed body (Content-Encoding) or one declared in a charset other than UTF-8 (any media type is read as the bytes the signature covers: the Content-Type decides nothing else); 422 an event that would add a register to a show that already holds 2,500, a refund whose id was first sent for another order, or a refund in another currency than its stored order (nothing stored; see 422); 503 storage down, or a secret of the partner that no configured key opens and none of the others verifies (problem type `secret-unreadable`: the service\'s SECRETS_KEY is misconfigured; retried once it is restored).',
        // Documentation only (validation runs on the raw body after the signature check).
        body: PartnerEventSchema,
        docResponses: {
          200: ok('a repeated webhook-id: already stored, nothing new done', EventAnswer),
          202: ok('stored durably; mirrors are synced asynchronously', EventAnswer),
          400: 'body is not valid JSON or not a valid event (also: occurredAt more than EVENT_FUTURE_SLACK_SEC, default 24 h, in the future), or webhook-id is not 1-256 printable ASCII characters other than a space (0x21-0x7E)',
          401: 'signature headers missing, timestamp outside ±300 s, or no valid signature for this partner',
          404: 'unknown partner',
          413: 'body over 1 MiB',
          409: "the webhook-id was first used for another show or order whose event is not stored (its delivery failed, or is still under way): that event's retry stores it, after which this one is its duplicate; or send this event under a new webhook-id (Retry-After)",
          415: 'a compressed body (a Content-Encoding other than identity): send it uncompressed; or a body declared in a charset other than UTF-8 (`charset=iso-8859-1`, utf-16, …): send UTF-8, labelled charset=utf-8 or without a charset',
          422: 'the show already holds SHOW_REGISTERS_MAX (2,500) registers, counted over its whole life (none is ever freed): its snapshot is one, each product id of its product.updated events one, and each product id of its pin events (product.pinned/unpinned) another, so a product both updated and pinned takes two. An event that would add another register is not stored (its webhook-id stays free); events about existing registers are taken. Also an order.refunded whose refund.id was first sent for another order: a refund id names one refund of one order, partner-wide (refunds are idempotent by id); nothing stored, its webhook-id stays free. Also an order.refunded in another currency than its order (no FX: it could never be applied), from the moment the order.created is stored (its currency is recorded then; the attribution ledger\'s once it holds the order): field data.refund.amount.currency, nothing stored, the corrected refund (in the order\'s currency) is taken under the same webhook-id and refund id; but when a refund under that refund id is already stored for the order (e.g. sent before the order in this other currency and kept unapplied), also field data.refund.id: the same id in the order\'s currency would be taken and book nothing (a refund id is booked once), so send the refund in the order\'s currency under a new refund id',
        },
      },
      validatorCompiler: () => () => true,
    },
    async (req, reply) => {
      const { partnerId } = req.params;
      if (!ID_PATTERN.test(partnerId)) throw notFound(`partner ${partnerId}`);
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = await opts.ingest.ingest(
        partnerId,
        { id: header(req.headers['webhook-id']), timestamp: header(req.headers['webhook-timestamp']), signature: header(req.headers['webhook-signature']) },
        raw,
      );
      opts.onAccepted?.(result.duplicate ? 'duplicate' : 'accepted');
      if (result.replicated) req.replicated = true; // WAITed on the masters it wrote to (ingest.service.ts)
      // eventId: Syndicast's id of the stored event (time-ordered; the same for a repeat). webhookId:
      // the partner's own `webhook-id` header, echoed so the partner can match the answer to its delivery.
      return reply.status(result.duplicate ? 200 : 202).send({ eventId: result.eventId, webhookId: header(req.headers['webhook-id']), duplicate: result.duplicate });
    },
  );
};
