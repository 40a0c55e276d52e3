/** API keys (admin only): create (the key is shown once), list (never the key or its hash), revoke. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema, inFourDigitYears } from '../../domain/events.js';
import { badRequest, notFound } from '../../lib/errors.js';
import { ROLES, type ApiKeyRepository } from '../../store/apikey.repository.js';
import type { PartnerRepository } from '../../store/partner.repository.js';
import { parseTupleCursor, tupleBefore, tupleCursor, tupleCursorSchema, tupleOrder } from '../../lib/tuple-cursor.js';
import { ApiKeySchema, FORBIDDEN_ROLE, ok, operatorText } from '../openapi.js';
import { logLeftOut } from '../../store/stored-record.js';

const CreatedKey = z.object({
  id: z.string(),
  key: z.string().describe('the API key: shown this once, stored only hashed'),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  role: ApiKeySchema.shape.role,
  partnerId: z.string().optional(),
  name: z.string().nullable(),
});

export interface KeyRoutesOptions {
  apiKeys: ApiKeyRepository;
  partners: PartnerRepository;
}

const CreateKey = z
  .object({
    role: z.enum(ROLES),
    partnerId: IdSchema.optional(),
    name: operatorText(100).min(1).optional(),
    // An offset can carry 9999-12-31 into the year 10000 once in UTC: the key was created and its
    // expiresAt answered (and listed, and audited) as "+010000-01-01T…Z", no ISO-8601 UTC timestamp.
    expiresAt: z.iso
      .datetime({ offset: true })
      .refine((v) => inFourDigitYears(Date.parse(v)), { message: 'must be within the years 0000-9999 once in UTC (… 9999-12-31T23:59:59.999Z)', abort: true })
      .optional(),
  })
  // A field the create does not take is a 400 naming it, not dropped: `{"role": "viewer", "expiresat": …}`
  // made a key that never expires and answered 201.
  .strict()
  .refine((k) => (k.role === 'partner') === (k.partnerId !== undefined), { message: 'partnerId is required for (and only for) role partner', path: ['partnerId'] });
const KeyParams = z.object({ keyId: IdSchema });
/** The list's cursor: the last key's createdAt and id (the list's order). */
const KEY_CURSOR = ['string', 'string'] as const;
const ListQuery = z.object({
  partnerId: IdSchema.optional(),
  status: z.enum(['active', 'expired', 'revoked']).optional(),
  // No limit: every key (the list was unpaged, CONTRACT.md); a limit pages it.
  limit: z.coerce.number().int().min(1).max(200).optional(),
  cursor: tupleCursorSchema(KEY_CURSOR).optional(),
});

export const keyRoutes: FastifyPluginAsyncZod<KeyRoutesOptions> = async (app, opts) => {
  const { apiKeys, partners } = opts;

  app.post('/v1/api-keys', { preHandler: app.requireRole(), schema: { tags: ['auth'], summary: 'Create an API key (shown once, stored hashed)', body: CreateKey, docResponses: { 201: ok('created', CreatedKey), 400: 'invalid body, partnerId missing for role partner (or given for another role), or expiresAt in the past (or past 9999-12-31T23:59:59.999Z once in UTC)', 403: FORBIDDEN_ROLE, 404: 'unknown partner', 503: 'storage is unavailable (or stalled past the create\'s deadline): no usable key was created, also not later when Redis goes on; retry (Retry-After)' } } }, async (req, reply) => {
    const { role, partnerId, name } = req.body;
    const expiresAt = req.body.expiresAt ? new Date(req.body.expiresAt) : undefined;
    if (expiresAt && expiresAt.getTime() <= Date.now()) throw badRequest('expiresAt is in the past', [{ path: 'body.expiresAt', message: 'must be in the future' }]);
    if (partnerId && !(await partners.get(partnerId))) throw notFound(`partner ${partnerId}`);
    // Recorded with the key (one script), written after it (a create whose audit write failed leaves
    // an active key listed, its secret never shown: the retry, which creates another, writes its entry).
    const created = await apiKeys.create(role, partnerId, { name, expiresAt, audit: (keyId, expires) => app.auditPending(req, { action: 'api_key.created', partnerId, detail: { keyId, role, ...(name ? { name } : {}), expiresAt: expires } }) });
    await app.auditSettle('keys');
    return reply.status(201).send({ ...created, role, partnerId, name: name ?? null });
  });

  app.get('/v1/api-keys', { preHandler: app.requireRole(), schema: { tags: ['auth'], summary: 'List API keys: role, partner, name, created, expiry, last used (never the key), oldest first; every one, or a page of `limit`', querystring: ListQuery, docResponses: { 200: ok('the keys by creation then id: all of them (after `cursor`) without `limit`, else a page', z.object({ keys: z.array(ApiKeySchema), nextCursor: z.string().nullable().describe('`cursor` for the next page (opaque: it marks the last key of this page, so keys created or revoked meanwhile shift nothing); null on the last page') })), 400: 'limit not 1-200, or a cursor this list did not give', 403: FORBIDDEN_ROLE } } }, async (req) => {
    const all = await apiKeys.list(Date.now(), logLeftOut(req.log, 'API key'));
    const { partnerId, status, limit, cursor } = req.query;
    const after = cursor === undefined ? null : parseTupleCursor(cursor, KEY_CURSOR);
    // In the list's order (createdAt, then id); after the cursor's key wherever it is now.
    const matching = all
      .sort((a, b) => tupleOrder([a.createdAt, a.id], [b.createdAt, b.id]))
      .filter((k) => (!partnerId || k.partnerId === partnerId) && (!status || k.status === status) && (!after || tupleBefore(after, [k.createdAt, k.id])));
    const keys = limit === undefined ? matching : matching.slice(0, limit);
    const last = keys.at(-1);
    return { keys, nextCursor: keys.length < matching.length && last ? tupleCursor([last.createdAt, last.id]) : null };
  });

  app.get('/v1/api-keys/:keyId', { preHandler: app.requireRole(), schema: { tags: ['auth'], summary: 'One API key (never the key)', params: KeyParams, docResponses: { 200: ok('the key', ApiKeySchema), 403: FORBIDDEN_ROLE, 404: 'unknown key' } } }, async (req) => {
    const k = await apiKeys.get(req.params.keyId);
    if (!k) throw notFound(`API key ${req.params.keyId}`);
    return k;
  });

  app.delete('/v1/api-keys/:keyId', { preHandler: app.requireRole(), schema: { tags: ['auth'], summary: 'Revoke an API key (its next request gets 401)', params: KeyParams, docResponses: { 200: ok('revoked (again: unchanged)', ApiKeySchema), 403: FORBIDDEN_ROLE, 404: 'unknown key' } } }, async (req) => {
    // The entry is recorded with the revocation (one script), only by the call that revoked it: DELETEs
    // racing on one key leave one entry. Every DELETE then writes the entries still pending, each once:
    // one whose audit write failed (5xx) after revoking leaves its entry, and its retry, which finds the
    // key revoked already, writes it (it used to write nothing: no api_key.revoked for that key ever).
    const r = await apiKeys.revokeOnce(req.params.keyId, Date.now(), (k) => app.auditPending(req, { action: 'api_key.revoked', partnerId: k.partnerId ?? undefined, detail: { keyId: k.id, role: k.role, ...(k.name ? { name: k.name } : {}) } }));
    await app.auditSettle('keys');
    if (!r) throw notFound(`API key ${req.params.keyId}`);
    return r.key;
  });
};
