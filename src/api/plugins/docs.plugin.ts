/**
 * OpenAPI 3.1 generated from the route schemas (@fastify/swagger) and served at /docs (swagger-ui).
 * Each operation's answers come from its `schema.docResponses` (src/api/openapi.ts) plus the answers
 * every route of its kind can give (400 on invalid input, 401 without a valid key, 413/415 on a JSON
 * body, 503 while storage is down; 408/417/431 on any request), every 4xx/5xx as an
 * application/problem+json `Problem`.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ProblemSchema, type DocResponse, type DocResponses } from '../openapi.js';

/** Routes without an API key: health, metrics, signed partner events, tracked links, platform webhooks, nginx-rtmp callbacks (the stream key is the credential). The ops console's page and sign-in declare `security: []` themselves. */
const PUBLIC = [/^\/health\//, /^\/metrics$/, /^\/v1\/partners\/:partnerId\/events$/, /^\/l\//, /^\/v1\/platform-webhooks\//, /^\/v1\/relay\/edge\//];

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };
/**
 * Marks, from transform to transformObject, an operation whose body schema takes no body (NoBody: the
 * rotations, a resync): @fastify/swagger says `requestBody.required: true` of every route with a body
 * schema (it copies `x-` keys onto the operation), and the document said a body was required.
 */
const OPTIONAL_BODY = 'x-syndicast-optional-body';
const TAGS: { name: string; description: string }[] = [
  { name: 'health', description: 'Liveness, readiness and Prometheus metrics (no API key)' },
  { name: 'events', description: 'Signed partner events in (Standard Webhooks)' },
  { name: 'links', description: 'Tracked product links (no API key)' },
  { name: 'auth', description: 'API keys (admin)' },
  { name: 'audit', description: 'Operator actions' },
  { name: 'partners', description: 'Partners and their inbound webhook secret' },
  { name: 'targets', description: "A partner's target platform accounts" },
  { name: 'shows', description: 'Shows, their mirrors and operator actions on them' },
  { name: 'relay', description: "The deployment's video relay (admin) and the callbacks of an external nginx-rtmp ingest edge (no API key)" },
  { name: 'attribution', description: 'Attributed sales and the ledger' },
  { name: 'platform-webhooks', description: "Target platforms' own webhooks (no API key; each platform's signature)" },
  { name: 'reconciliation', description: 'Ledger against platform reports' },
  { name: 'webhooks', description: 'Outbound webhooks to the partner' },
  { name: 'ops', description: 'The ops console (/ops) and the reads it needs' },
];

/** `post /v1/partners/:partnerId/targets` → `postPartnersTargets`-style ids, unique per method and path. */
export function operationId(method: string, url: string): string {
  const words = url
    .replace(/^\/v1\//, '/')
    .split('/')
    .filter(Boolean)
    .map((seg) => (seg.startsWith(':') ? `By${seg.slice(1, 2).toUpperCase()}${seg.slice(2)}` : seg.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))))
    .map((w) => w.slice(0, 1).toUpperCase() + w.slice(1));
  return method + words.join('');
}

export function isPublicRoute(url: string, schema: FastifySchema | undefined): boolean {
  return (Array.isArray(schema?.security) && schema.security.length === 0) || PUBLIC.some((re) => re.test(url));
}

/** The error handler's 503 (src/api/plugins/errors.plugin.ts), which sends Retry-After. */
const STORAGE_DOWN = 'storage (Redis) is unavailable, did not answer in time or could not confirm the write on a replica: nothing was acknowledged, but a write sent to a Redis that stalled may still land after the answer; retry later (Retry-After) — a partner event with the same webhook-id (a stored one is answered as a duplicate); or, problem type `secret-unreadable`, a stored secret the request needs that neither SECRETS_KEY nor SECRETS_KEY_PREVIOUS opens (a misconfiguration of the service: ops restore the key; retry later)';

/** The error handler's 500 for a stored record that does not read (src/api/plugins/errors.plugin.ts): no Retry-After. */
const RECORD_UNREADABLE = 'problem type `stored-record-unreadable`: a stored record the request reads does not read (not JSON, the wrong shape, a Redis key of another type: a data fault, not an outage); the detail names its family and id; nothing was done, and a retry does not help until ops repair or delete it';

/** Methods whose request body fastify parses (any of them can get 413/415, with or without a body schema). */
const WITH_BODY = new Set(['post', 'put', 'patch', 'delete']);

/**
 * Answers any request can get, whatever its operation, before a route runs: the HTTP parser's (408,
 * 431: problemClientError) and the onRequest hook's (417, src/api/app.ts). OpenAPI 3 has no
 * document-wide responses, so they are listed on every operation, like 503. (A 405 is the answer to a
 * method a path has no operation for, so it belongs to no operation: the document's description says it.)
 */
const EVERY_REQUEST: DocResponses = {
  408: 'the request (headers and body) was not received whole within HTTP_REQUEST_TIMEOUT_MS (30 s by default); the connection is closed',
  417: 'an `Expect` header other than `100-continue`',
  431: 'request headers over 16 KiB; the connection is closed',
};

/** The answers of one operation: its own, then those every route of its kind gives. */
export function answersOf(method: string, schema: FastifySchema, isPublic: boolean, hasPathParams = false): Map<number, DocResponse | string> {
  const own: DocResponses = schema.docResponses ?? {};
  const input = schema.body !== undefined || schema.params !== undefined || schema.querystring !== undefined;
  const defaults: DocResponses = {};
  if (input) defaults[400] = 'invalid path, query or body (`errors` lists each field)';
  // Fastify's JSON parser answers 400 before the handler, on a route without a body schema too.
  else if (WITH_BODY.has(method)) defaults[400] = 'a body declared application/json that is not valid JSON';
  if (!isPublic) defaults[401] = 'no API key, or an unknown, revoked or expired one';
  // The onRequest hook's answer (src/api/app.ts overlongParam), before the key is checked.
  if (hasPathParams) defaults[414] = 'a path parameter longer than it may be, decoded (an id over 128 characters; an order id over 256)';
  if (WITH_BODY.has(method)) Object.assign(defaults, { 413: 'body over 256 KiB', 415: 'a body of a media type this route does not read' + (schema.body !== undefined ? ' (it reads application/json)' : '') + ', a compressed one (a Content-Encoding other than identity), or one declared in a charset other than UTF-8' });
  defaults[500] = RECORD_UNREADABLE;
  defaults[503] = STORAGE_DOWN;
  Object.assign(defaults, EVERY_REQUEST);
  const out = new Map<number, DocResponse | string>();
  for (const [status, answer] of [...Object.entries(defaults), ...Object.entries(own)]) {
    if (answer === false) out.delete(Number(status));
    else out.set(Number(status), answer);
  }
  return new Map([...out].sort(([a], [b]) => a - b));
}

async function docsPlugin(app: FastifyInstance): Promise<void> {
  const problem = z.toJSONSchema(ProblemSchema, { target: 'draft-2020-12' });
  delete (problem as { $schema?: unknown }).$schema;
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Syndicast',
        version: '0.1.0',
        description:
          'Live-shopping syndication: partner events in, mirrored shows out, attribution back. Guide: the repository README.md and docs/ (architecture, attribution, operations, platforms). ' +
          'Every error is `application/problem+json` (RFC 9457); every answer carries an `x-request-id` header. ' +
          'A path asked with a method it has no operation for is a `405` with an `Allow` header listing the methods it has (a `CONNECT` too, with an empty `Allow`); a path with no operation at all is a `404`. ' +
          'Any operation can also answer `408` (the request not received whole in time), `417` (an `Expect` other than `100-continue`) and `431` (headers over 16 KiB). ' +
          'An id `.` or `..` in a path is written with each dot as `%252E` (URL normalisation removes a `.` or `..` segment, `%2E` forms included): a path parameter that decodes to `%2E` or `%2E%2E` is read as `.` or `..`.',
      },
      // Relative: the service that serves this document, wherever it is reached (PUBLIC_BASE_URL or not).
      servers: [{ url: '/', description: 'this service' }],
      tags: TAGS,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key: ADMIN_API_KEY, or one from POST /v1/api-keys (roles admin, operator, viewer, partner)' } },
        schemas: { Problem: problem as Record<string, unknown> },
      },
      security: [{ bearer: [] }],
    },
    transform: (args) => {
      const { docResponses: _docs, response: served, ...rest } = (args.schema ?? {}) as FastifySchema & { hide?: boolean };
      const given = (args.schema ?? {}) as FastifySchema;
      const isPublic = isPublicRoute(args.url, given);
      // A GET+HEAD route (tracked links) is one handler: the HEAD operation gets its own id below.
      const method = String(Array.isArray(args.route.method) ? args.route.method[0] : args.route.method).toLowerCase();
      const answers = answersOf(method, given, isPublic, args.url.includes(':'));
      // JSON bodies through zod → JSON Schema (a route's own serializer schema, where it has one, wins).
      const servedBy = (served ?? {}) as Record<number, z.ZodType>;
      const zodAnswers: Record<number, unknown> = {};
      for (const [status, a] of answers) {
        if (typeof a === 'string') continue;
        const body = servedBy[status] ?? a.schema;
        if (!body && !a.also) continue;
        zodAnswers[status] = { description: a.description, content: { ...(body ? { [a.contentType ?? 'application/json']: { schema: body } } : {}), ...Object.fromEntries(Object.entries(a.also ?? {}).map(([t, s]) => [t, { schema: s }])) } };
      }
      const out = jsonSchemaTransform({ ...args, schema: { ...rest, response: zodAnswers } });
      const schema = out.schema as Record<string, unknown> & { response?: Record<number, unknown> };
      if (schema['hide']) return out;
      const response = (schema.response ??= {});
      for (const [status, a] of answers) {
        if (response[status]) continue;
        const headers = typeof a === 'string' ? (a === STORAGE_DOWN ? { 'retry-after': 'seconds to wait before retrying' } : undefined) : a.headers;
        const head = headers ? { headers: Object.fromEntries(Object.entries(headers).map(([h, d]) => [h, { type: 'string', description: d }])) } : {};
        response[status] = typeof a === 'string' ? { description: a, ...head, content: { 'application/problem+json': { schema: PROBLEM_REF } } } : { description: a.description, type: 'null', ...head };
      }
      schema['operationId'] ??= operationId(method, args.url);
      if (isPublic) schema['security'] = [];
      if (given.body instanceof z.ZodType && given.body.safeParse(undefined).success) schema[OPTIONAL_BODY] = true;
      return out;
    },
    // Operation ids are unique: a HEAD that shares its GET's handler is `head…`.
    transformObject: (doc) => {
      if (!('openapiObject' in doc)) return doc.swaggerObject;
      const { openapiObject } = doc;
      for (const item of Object.values(openapiObject.paths ?? {}) as Record<string, ({ operationId?: string; requestBody?: { required?: boolean } } & Record<string, unknown>) | undefined>[]) {
        const head = item['head'];
        if (head?.operationId && head.operationId === item['get']?.operationId) item['head'] = { ...head, operationId: head.operationId.replace(/^get/, 'head') };
        // A body the route takes none of (or `{}`): not required (see OPTIONAL_BODY).
        for (const op of Object.values(item)) {
          if (!op?.[OPTIONAL_BODY]) continue;
          delete op[OPTIONAL_BODY];
          if (op.requestBody) op.requestBody.required = false;
        }
      }
      return openapiObject;
    },
  });
  // The UI's own files only (its scripts are files: no inline script; React sets its styles through the
  // DOM, which style-src does not govern), the OpenAPI document from here, no validator badge (an image
  // from validator.swagger.io), and no page may frame it (a clickjacking frame around "Authorize").
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null }, staticCSP: DOCS_CSP });
}

/**
 * The Content-Security-Policy of /docs (swagger-ui): checked in chromium by
 * test/browser/ops.console.checks.test.ts (docs-csp). The one hash is of the <style> element swagger-ui's bundle
 * adds to the page (its text is fixed by the bundle's version: a new swagger-ui that changes it fails
 * that test with the hash to put here).
 */
export const DOCS_CSP = "default-src 'self'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export default fp(docsPlugin, { name: 'docs' });
