/** problem+json for every error (RFC 9457); 5xx details never reach the client. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler, preValidationHookHandler } from 'fastify';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ZodError } from 'zod';
import { SecretUnreadableError } from '../../lib/crypto.js';
import { AppError, zodFieldErrors, type FieldError } from '../../lib/errors.js';
import { newRequestId } from '../../lib/request-context.js';
import { isRedisUnavailable } from '../../store/redis.js';
import { corruptRecord, isWrongType, StoredRecordCorruptError } from '../../store/stored-record.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The status's title: RFC 9110's name (TITLES), else Node's reason phrase — never a bare "Error" (a 414 was one). */
export function problem(status: number, detail?: string, errors?: FieldError[]): Problem {
  const title = TITLES[status] ?? STATUS_CODES[status] ?? 'Error';
  return { type: `https://syndicast.dev/problems/${title.toLowerCase().replace(/\s+/g, '-')}`, title, status, ...(detail ? { detail } : {}), ...(errors ? { errors } : {}) };
}

/**
 * A stored secret no configured key opens (SecretUnreadableError): the service is misconfigured, not
 * the request wrong, so a 503 (a partner retries its event, and it is taken once the key is back), with
 * a type of its own that names the cause and a detail that tells ops what to restore.
 */
export const SECRET_UNREADABLE_TYPE = 'https://syndicast.dev/problems/secret-unreadable';
export const SECRET_UNREADABLE_DETAIL =
  'a stored secret cannot be opened with this service\'s SECRETS_KEY or SECRETS_KEY_PREVIOUS (the key that sealed it was changed or removed without rotation); nothing was done. ' +
  'Operators: restore that key as SECRETS_KEY or in SECRETS_KEY_PREVIOUS (docs/operations.md, "Secrets and rotation"); retry later';

/**
 * A stored record the request reads does not read (StoredRecordCorruptError: not JSON, the wrong shape,
 * a key of another type): a fault of the data, not of the request nor an outage, so a 500 no retry
 * mends (never a 503 with Retry-After), with a type of its own. The detail names the record's family and
 * id (never its content); the log line names its key, once per request.
 */
export const STORED_RECORD_UNREADABLE_TYPE = 'https://syndicast.dev/problems/stored-record-unreadable';
export function storedRecordProblem(err: StoredRecordCorruptError): Problem {
  return {
    ...problem(500, `${err.family === 'other' ? 'a stored record this request reads' : `the stored ${err.family} record ${err.id}`} does not read (${err.reason}); nothing was done. Operators: repair or delete it (docs/operations.md, "Unreadable stored record"); a retry does not help until then`),
    type: STORED_RECORD_UNREADABLE_TYPE,
  };
}

/**
 * JSON.parse's error (V8's messages all name JSON) thrown by a route: never the request's body (Fastify's
 * parser answers that 400, with a statusCode), so text the service stored and reads back.
 */
function isStoredJsonError(err: FastifyError): boolean {
  return err instanceof SyntaxError && err.statusCode === undefined && /\bJSON\b/.test(err.message);
}

/**
 * The answer to a request Node's HTTP parser refuses before Fastify sees it — headers over the 16 KiB
 * limit (431), a client that never finished its request, headers or body (408), bytes that are not HTTP (400) — as a
 * problem too, where Fastify's default writes its own JSON shape. The connection is closed after it.
 * For Fastify's `clientErrorHandler` option (src/api/app.ts).
 */
export function problemClientError(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, detail] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'the request headers exceed 16 KiB'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'the request was not received whole in time'] : [400, 'not a valid HTTP request'];
  // Never a request to take an id from: a new one, as every answer carries one.
  const requestId = newRequestId();
  this.log.debug({ err: { message: err.message, code: err.code }, requestId }, 'client error');
  writeProblem(socket, requestId, status, detail);
  socket.destroy(err);
}

/** A problem written straight to a socket that no request/reply owns, the connection closed after it. */
function writeProblem(socket: Duplex, requestId: string, status: number, detail: string, headers = ''): void {
  const body = JSON.stringify(problem(status, detail));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\n${headers}Connection: close\r\n\r\n${body}`);
  }
}

/**
 * For the HTTP server's `connect` event (src/api/app.ts): a CONNECT request (a proxy tunnel) is for no
 * resource of the API. Without a listener Node closed the connection with no answer at all; now a 405
 * problem whose empty Allow says no method applies to that target (RFC 9110 §10.2.1), then the close.
 */
export function problemConnect(req: IncomingMessage, socket: Duplex): void {
  writeProblem(socket, newRequestId(), 405, 'CONNECT is not supported: this is an HTTP API, not a proxy', 'Allow: \r\n');
  socket.end();
  // A client that never reads its answer does not hold the socket.
  socket.once('error', () => socket.destroy());
  setTimeout(() => socket.destroy(), 1000).unref();
  req.resume();
}

/**
 * For Fastify's `frameworkErrors` option (src/api/app.ts): errors the router raises before a route is
 * chosen, so before the onRequest hook that answers the request id. The status is Fastify's own
 * (400 for a URL that does not decode, 414 for a path parameter longer than maxParamLength).
 */
export function problemFrameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  const detail = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long' : err.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid' : 'the request was refused';
  void reply.status(status).header('x-request-id', req.id).type('application/problem+json').send(problem(status, detail));
}

export interface ErrorsOptions {
  /**
   * onResponse hook of the not-found context (the HTTP histogram, observeNotFound). Fastify's
   * setNotFoundHandler types list preValidation and preHandler only, but it gives the context every
   * lifecycle hook of its options (lib/four-oh-four.js), onResponse too (test/integration/http-metrics.test.ts).
   */
  notFoundOnResponse?: onResponseHookHandler;
  /** preValidation hook of the not-found context (app.ts gives it the body checks its routes get: a body that is not Unicode is a 400 there too). */
  notFoundPreValidation?: preValidationHookHandler;
}

/** The methods the API has routes for (OPTIONS has none: no CORS). */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/**
 * The 503 of a Redis that is down, refusing or did not answer in time. Not "nothing was stored": a
 * command sent to a Redis that then stalled (paused, a long fork, a slow disk) times out here and is
 * still run once Redis goes on, so the write may land after the answer. A retry is safe where the
 * route is idempotent by id: an event's retry with its webhook-id is answered as a duplicate.
 */
export const STORAGE_DOWN_DETAIL = 'storage is temporarily unavailable or did not answer in time; the request may or may not have taken effect, retry later';
export const WEBHOOK_ID_STORAGE_DOWN = 'storage is temporarily unavailable or did not answer in time; the event may or may not have been stored: retry later with the same webhook-id (a stored event is answered as a duplicate, never stored twice)';

async function errorsPlugin(app: FastifyInstance, opts: ErrorsOptions): Promise<void> {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    let body: Problem;
    if (err instanceof AppError) {
      body = problem(err.status, err.message, err.errors);
      if (err.headers) void reply.headers(err.headers);
    } else if (hasZodFastifySchemaValidationErrors(err)) {
      const ctx = (err as { validationContext?: string }).validationContext ?? 'body';
      const errors = err.validation.flatMap((v) => {
        const at = [ctx, ...v.instancePath.split('/').filter(Boolean)];
        // A strict body's unknown fields (a typo, a field the operation does not take): one error each, at its own path.
        const keys = v.keyword === 'unrecognized_keys' ? (v.params as { keys?: unknown }).keys : undefined;
        if (Array.isArray(keys) && keys.length > 0) return keys.map((k) => ({ path: [...at, String(k)].join('.'), message: 'unknown field (this operation does not take it)' }));
        return [{ path: at.join('.'), message: v.message ?? 'invalid' }];
      });
      body = problem(400, `invalid ${ctx}`, errors);
    } else if (err instanceof ZodError) {
      body = problem(400, 'invalid request', zodFieldErrors(err.issues));
    } else if (err instanceof SecretUnreadableError) {
      // No secret in the line: only that one could not be opened, and on which request (its id is bound).
      req.log.error({ err: { message: err.message, code: err.code }, method: req.method, route: req.routeOptions.url }, 'stored secret cannot be opened: restore SECRETS_KEY / SECRETS_KEY_PREVIOUS');
      void reply.header('retry-after', '60');
      body = { ...problem(503, SECRET_UNREADABLE_DETAIL), type: SECRET_UNREADABLE_TYPE };
    } else if (err instanceof StoredRecordCorruptError || isWrongType(err) || isStoredJsonError(err)) {
      // A key of another type, or stored JSON that does not parse, read without a family (no
      // StoredRecordCorruptError around its read): the same problem, its family unknown.
      const corrupt = err instanceof StoredRecordCorruptError ? err : corruptRecord('other', '(unknown)', '(unknown)', isWrongType(err) ? 'a Redis key of another type' : 'not JSON');
      // Never a parse error's message: V8 quotes the text (the record's content). Where it was read instead.
      const where = err instanceof StoredRecordCorruptError ? {} : { at: err.stack?.split('\n').slice(1, 4).join('\n') };
      req.log.error({ ...where, family: corrupt.family, recordId: corrupt.id, key: corrupt.key, method: req.method, route: req.routeOptions.url }, 'stored record does not read: repair or delete its key');
      body = storedRecordProblem(corrupt);
    } else if (isRedisUnavailable(err)) {
      req.log.warn({ err: { message: err.message } }, 'redis unavailable');
      void reply.header('retry-after', '5');
      body = problem(
        503,
        /NOREPLICAS/.test(err.message)
          ? 'storage could not confirm the write on a replica; it is not acknowledged, retry later (a retry with the same webhook-id is safe)'
          : req.headers['webhook-id'] !== undefined
            ? WEBHOOK_ID_STORAGE_DOWN
            : STORAGE_DOWN_DETAIL,
      );
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      const detail = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body exceeds the size limit' : err.message;
      body = problem(err.statusCode, detail);
    } else {
      req.log.error({ err }, 'unhandled error');
      body = problem(500, 'internal error');
    }
    return reply.status(body.status).type('application/problem+json').send(body);
  });
  const notFoundOpts = { ...(opts.notFoundOnResponse ? { onResponse: opts.notFoundOnResponse } : {}), ...(opts.notFoundPreValidation ? { preValidation: opts.notFoundPreValidation } : {}) } as Parameters<FastifyInstance['setNotFoundHandler']>[0];
  // A path that has routes for other methods only is a 405 with `Allow` (RFC 9110 §15.5.6), not a 404:
  // the router is asked for each method (HEAD comes with GET); a path no method has stays a 404.
  app.setNotFoundHandler(notFoundOpts, (req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    // A route of this very method that sent its request here (reply.callNotFound: a missing file of a
    // static route) found nothing: a 404.
    const routed = app.findRoute({ method: req.method, url: path }) !== null;
    const allow = routed ? [] : METHODS.filter((m) => m !== req.method && app.findRoute({ method: m, url: path }) !== null);
    if (allow.length > 0) {
      return reply
        .status(405)
        .header('allow', allow.join(', '))
        .type('application/problem+json')
        .send(problem(405, `${req.method} is not allowed on ${path}; allowed: ${allow.join(', ')}`));
    }
    return reply.status(404).type('application/problem+json').send(problem(404, `no route for ${req.method} ${path}`));
  });
}

export default fp(errorsPlugin, { name: 'errors' });
