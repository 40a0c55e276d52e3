/**
 * The Fastify app as a composition of plugins in a visible order (fastify/demo's app.ts):
 * infrastructure (errors, auth, metrics, docs), then routes. server.ts-like concerns (listen,
 * shutdown) live in src/main/.
 */
import { checkRequestsEvery, HTTP_CONNECTION_SHARE, limitConnections } from '../lib/connection-limits.js';
import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { AppError, badRequest } from '../lib/errors.js';
import { acceptEmptyJsonBody } from '../lib/empty-json-body.js';
import { REDACT_PATHS, stdoutStream } from '../lib/logger.js';
import { LONE_SURROGATE_MESSAGE, loneSurrogateAt } from '../lib/well-formed.js';
import { newRequestId, REQUEST_ID_PATTERN, withRequestId } from '../lib/request-context.js';
import { ID_MAX_LENGTH, PLATFORM_ORDER_ID_MAX_LENGTH } from '../lib/ids.js';
import { connectionErrorSummary, RedisOutageLog } from '../lib/redis-outage-log.js';
import { SCHEDULER_QUEUE } from '../main/scheduler.js';
import { RECONCILE_QUEUE } from '../reconcile/reconcile.service.js';
import type { Runtime } from '../main/runtime.js';
import authPlugin from './plugins/auth.plugin.js';
import docsPlugin from './plugins/docs.plugin.js';
import errorsPlugin, { problem, problemClientError, problemConnect, problemFrameworkError } from './plugins/errors.plugin.js';
import metricsPlugin, { createMetrics, observeNotFound, observeRoutes, observeWhenSent } from './plugins/metrics.plugin.js';
import { auditRoutes } from './routes/audit.routes.js';
import { keyRoutes } from './routes/keys.routes.js';
import { attributionRoutes } from './routes/attribution.routes.js';
import { eventRoutes } from './routes/events.routes.js';
import { healthRoutes } from './routes/health.routes.js';
import { linkRoutes } from './routes/links.routes.js';
import { outboundRoutes } from './routes/outbound.routes.js';
import { partnerRoutes } from './routes/partners.routes.js';
import { platformWebhookRoutes } from './routes/platform-webhooks.routes.js';
import { showRoutes } from './routes/shows.routes.js';
import { ExternalShowIndex } from '../store/external-show.index.js';
import { readyWarnings } from '../store/redis-durability.js';
import { relayEdgeRoutes } from './routes/relay-edge.routes.js';
import { relayRoutes } from './routes/relay.routes.js';
import { targetRoutes } from './routes/targets.routes.js';
import { reconcileRoutes } from './routes/reconcile.routes.js';
import { opsRoutes } from './routes/ops.routes.js';
import { OpsService } from './ops/ops.service.js';
import { closeQueue } from '../queues/close-queue.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: the route runs without a request-id context (see the onRequest hook in buildApp). */
    requestContext?: boolean;
    /**
     * false: the route observes its own answers in the HTTP histogram (Metrics.observeHttp) and gets no
     * onResponse hook for it (the tracked-link redirect; see the metrics plugin).
     */
    httpMetrics?: boolean;
  }
  interface FastifyInstance {
    /**
     * Shutdown, first step (src/main/process.ts): /health/ready answers 503 from now on and every
     * answer says `Connection: close`, so that a load balancer stops sending and each keep-alive client
     * moves to a new connection after its current request, while the API still serves. Then app.close().
     */
    drain(): void;
    /**
     * Shutdown, second step: every request is answered 503 with `Retry-After` and `Connection: close`
     * (the onRequest hook), while the API still listens: a client that honours Retry-After stops
     * opening connections here, so that none is left in the accept queue when it stops listening
     * (the kernel resets those).
     */
    refuse(): void;
    /**
     * Shutdown, third step: no new connection is accepted. The open connections are left open
     * (app.close() closes the idle ones), so that one accepted a moment ago still delivers its request
     * and gets the 503 instead of being destroyed with its request unread (ECONNRESET).
     */
    stopListening(): void;
  }
  interface FastifyRequest {
    /**
     * Set by a handler whose writes a replica holds already (the redirect's click in its master's
     * batch on a Cluster, which WAITs itself): the replica ack does not WAIT again.
     */
    replicated: boolean;
  }
}

/** The charsets a body may be declared in: UTF-8, and ASCII (a subset of it). */
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/** The charset a Content-Type declares when it is not UTF-8 (lower-cased, unquoted); undefined when it declares none or UTF-8. */
export function foreignCharset(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !/charset/i.test(contentType)) return undefined;
  const m = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  const charset = (m?.[1] ?? m?.[2])?.toLowerCase();
  return charset === undefined || UTF8_CHARSETS.has(charset) ? undefined : charset;
}

export interface AppOptions {
  /** Log requests (off in tests and benchmarks). */
  logger?: boolean;
  dashboard?: boolean;
  /** The ops stream's stall bound (tests; default STREAM_STALL_MS in ops.routes.ts). */
  opsStreamStallMs?: number;
  /** How often the ops stream looks for board changes (tests; 1 s by default in ops.routes.ts). */
  opsStreamIntervalMs?: number;
  /** Shows a `?state=` show list reads at most per request (tests; SHOW_FILTER_SCAN_MAX by default in shows.routes.ts). */
  showFilterScanMax?: number;
}

const ESCAPED_DOT_ID = /^%2e(?:%2e)?$/i;

/** `%2E` → `.`, `%2E%2E` → `..` in the path parameters (see buildApp). */
function dotIdParams(req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const params = req.params as Record<string, unknown> | undefined;
  if (params) {
    for (const [name, value] of Object.entries(params)) {
      if (typeof value === 'string' && value.length <= 6 && ESCAPED_DOT_ID.test(value)) params[name] = value.length === 3 ? '.' : '..';
    }
  }
  done();
}

/**
 * The longest a path parameter may be, decoded, by its name: an id (ID_MAX_LENGTH) unless named here.
 * The order view's `orderId` is a platform's order id too (`?targetId=`), stored up to
 * PLATFORM_ORDER_ID_MAX_LENGTH: with the router's limit at 128 such an order was stored and could
 * never be viewed (414).
 */
const PARAM_MAX_LENGTH: Readonly<Record<string, number>> = { orderId: PLATFORM_ORDER_ID_MAX_LENGTH };
const ROUTER_MAX_PARAM_LENGTH = Math.max(ID_MAX_LENGTH, ...Object.values(PARAM_MAX_LENGTH));

/**
 * Whether a path parameter of the route is longer than it may be (`*`, a wildcard's or the not-found
 * context's, is a path, not one: a request no route takes is a 404 or 405, as for any path without a
 * route, unless the router refused it first).
 */
function overlongParam(params: unknown): boolean {
  if (params === null || typeof params !== 'object') return false;
  for (const name in params) {
    if (name === '*' || !Object.hasOwn(params, name)) continue;
    const v = (params as Record<string, unknown>)[name];
    if (typeof v === 'string' && v.length > (Object.hasOwn(PARAM_MAX_LENGTH, name) ? PARAM_MAX_LENGTH[name]! : ID_MAX_LENGTH)) return true;
  }
  return false;
}

export async function buildApp(rt: Runtime, opts: AppOptions = {}): Promise<FastifyInstance> {
  const metrics = createMetrics({
    queues: () => [...rt.syncProducer.allQueues(), rt.attributionProducer.queue, rt.outbound.queue],
    extraQueues: { names: [RECONCILE_QUEUE, SCHEDULER_QUEUE], keys: rt.keys, connection: () => rt.bullConnection('api') },
    redis: rt.redis,
    shows: rt.shows,
    partners: rt.partners,
    outbound: rt.outbound,
  });
  const app = Fastify({
    // The process's stdout stream (src/lib/logger.ts): capped while stdout is not read, its exit flush bounded.
    logger: opts.logger === false ? false : { level: rt.config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, stream: stdoutStream() },
    // Whose X-Forwarded-For / -Proto / -Host is believed (req.ip, req.protocol, req.host): TRUST_PROXY.
    trustProxy: rt.config.trustProxy,
    bodyLimit: 256 * 1024,
    // A plugin's start may take as long as the machine makes it (Fastify's default gives each 10 s of
    // wall time). Ours only register routes and hooks, load code and read local files: 'docs' takes
    // 0.1 s idle (@fastify/swagger and swagger-ui load their code as they are registered; the OpenAPI
    // document is built at the first /docs/json, not here). A fresh-clone CI at load 10 on two cores
    // still failed a start with "plugin did not start in time: 'docs'", and a production start on a
    // starved machine, or one whose libuv threadpool is busy (swagger-ui reads its logo), would fail
    // the same way and be restarted into the same load. Five minutes is no load's doing: a plugin that
    // never finishes (a bug) still fails the start with its name (test/integration/app.start-slow.test.ts).
    pluginTimeout: 300_000,
    // A request not received whole in time is answered 408 and closed (HTTP_REQUEST_TIMEOUT_MS,
    // src/lib/connection-limits.ts; Node looks for them every 30 s, or every timeout when shorter: below).
    requestTimeout: rt.config.httpRequestTimeoutMs,
    // A path parameter is an id of up to 128 characters (the contract's [A-Za-z0-9_.:-]{1,128}); the
    // router's default limit, 100, answered 414 for a partner, show or target whose id the API itself
    // had accepted (a partner with a 120-character id could send no event at all). Checked decoded.
    // The router takes the longest any parameter may be (a platform's order id, 256: the order view);
    // the onRequest hook below answers 414 for any other parameter over its own length (PARAM_MAX_LENGTH).
    routerOptions: { maxParamLength: ROUTER_MAX_PARAM_LENGTH },
    // A request that arrives while the app closes gets our 503 problem (the onRequest hook below), not
    // Fastify's plain JSON one.
    return503OnClosing: false,
    // A request the HTTP parser refuses (oversized headers, not HTTP) is answered with a problem too.
    clientErrorHandler: problemClientError,
    // An HTTP/1.1 request without Host is refused in the onRequest hook below, as a problem with a request
    // id: Node's own check answered 400 with an empty body.
    http: { requireHostHeader: false },
    // A URL the router refuses before any route runs (a malformed %-escape: 400; a path parameter over
    // maxParamLength: 414) is answered with a problem too, where Fastify's default writes its own JSON.
    // Its context has no hooks: observed here, as a request no route took.
    frameworkErrors: (err, req, reply) => {
      observeWhenSent(metrics, 'unmatched', req, reply);
      problemFrameworkError(err, req, reply);
    },
    // Request ids (src/lib/request-context.ts): the caller's x-request-id when it is a plain id, else ours.
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    genReqId: (req) => {
      const h = req.headers['x-request-id'];
      return typeof h === 'string' && REQUEST_ID_PATTERN.test(h) ? h : newRequestId();
    },
  }).withTypeProvider<ZodTypeProvider>();
  // The JSON routes read application/json only (the docs promise a 415 for any other media type), but
  // Fastify's built-in text/plain parser handed a `text/plain` body to them as a string: a JSON body
  // sent with that label was a 400 "expected object, received string" (and a route without a body
  // schema took it silently), where `application/xml` or a form was a 415. The raw-body routes
  // (partner events, platform webhooks) read every media type with their own catch-all parser.
  app.removeContentTypeParser('text/plain');
  // An empty application/json body is no body (webhook-secret and ingest rotations, resync, DELETEs
  // from a client that labels every request JSON were a 400).
  acceptEmptyJsonBody(app);
  // A flood of connections takes at most a share of the file descriptors; the ones over it are closed at once.
  limitConnections(app.server, HTTP_CONNECTION_SHARE);
  // Requests over requestTimeout are looked for every 30 s (Node's default), or every timeout when shorter.
  checkRequestsEvery(app.server, rt.config.httpRequestTimeoutMs);
  // Fastify sets the server's requestTimeout alone, leaving Node's headersTimeout at 60 s; with the
  // headers timeout above the request timeout Node never cut a request whose headers had arrived and
  // whose body had not: a client that sent half a body and then nothing held its connection for ever
  // (the idle timeout is off while a request is in progress, below). Now it is a 408 like the rest.
  app.server.headersTimeout = rt.config.httpRequestTimeoutMs;
  // A connection that sends nothing is closed after HTTP_IDLE_TIMEOUT_MS (the setting); once a request arrives that
  // timeout is off, so a handler that takes long (a credential check: several platform calls of up to
  // PLATFORM_TIMEOUT_MS) is not cut (not Fastify's connectionTimeout, which also timed out requests in
  // progress). Between requests Node's keepAliveTimeout applies.
  const idleMs = rt.config.httpIdleTimeoutMs;
  app.server.on('connection', (socket: net.Socket) => socket.setTimeout(idleMs));
  app.server.on('request', (req: IncomingMessage) => req.socket.setTimeout(0));
  // A CONNECT (proxy tunnel) gets a 405 problem instead of a connection closed without an answer.
  app.server.on('connect', problemConnect);
  // An Expect other than 100-continue: Node answered a bare 417 itself (no body, no request id, not
  // problem+json). Routed like any request instead: the onRequest hook below answers the 417 problem.
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => app.server.emit('request', req, res));
  // HTTP latency per route (before any route is added, so that every one gets its hook).
  app.addHook('onRoute', observeRoutes(metrics));
  // The id is answered on every response and is the current id for everything the request runs
  // (set again before the handler: body parsing may run outside the onRequest context).
  // A route with `config: { requestContext: false }` (the tracked-link redirect: it logs nothing and
  // causes no jobs) answers the id but runs without a context, which costs CPU on every request.
  // Which routes those are is known by the plugin instance the hook is bound to (`this`, one per
  // route's plugin): req.routeOptions is an object built on every access.
  const withoutContext = new WeakMap<object, boolean>();
  app.addHook('onRoute', function (this: FastifyInstance, route) {
    const without = route.config?.requestContext === false;
    if (withoutContext.has(this) && withoutContext.get(this) !== without) throw new Error(`${route.url}: a route with config.requestContext false must be in a plugin of its own (the onRequest hook tells them apart by plugin)`);
    withoutContext.set(this, without);
  });
  // A compressed body (Content-Encoding gzip, br, …) is not decoded by any route: read as it came, a
  // gzip body was a 400 "not valid JSON" (a signed partner event's signature checked against the
  // compressed bytes), and a body labelled gzip but sent plain was taken as if the label were not
  // there. RFC 9110 §15.5.16: an unsupported content coding is a 415, which tells the sender to send
  // the body uncompressed. (In the same hook as the id: one onRequest step per request, not two.)
  // Shutdown (src/main/process.ts): `draining` from app.drain() on, `closing` once app.close() began.
  const shutdown = { draining: false, closing: false };
  app.decorate('drain', () => {
    shutdown.draining = true;
  });
  app.decorate('refuse', () => {
    shutdown.draining = shutdown.closing = true;
  });
  app.decorate('stopListening', () => {
    shutdown.draining = shutdown.closing = true;
    // net.Server's close, not http.Server's: the latter also destroys every connection without a
    // request in progress at once, including one accepted a moment ago whose request is not read yet.
    if (app.server.listening) net.Server.prototype.close.call(app.server);
  });
  app.addHook('preClose', (done) => {
    shutdown.draining = shutdown.closing = true;
    done();
  });
  app.addHook('onRequest', function (this: FastifyInstance, req, reply, done) {
    void reply.header('x-request-id', req.id);
    if (shutdown.draining) {
      // The client's next request goes on a new connection (to another instance, or to this one while
      // it still listens) instead of on one this process is about to close under it (ECONNRESET).
      void reply.header('connection', 'close');
      // After the drain (app.refuse(), app.close()): a clean answer the client may retry elsewhere or
      // later, nothing was done.
      if (shutdown.closing) {
        void reply.code(503).header('retry-after', '1').type('application/problem+json').send(problem(503, 'this instance is shutting down; nothing was done, retry (another instance answers)'));
        return;
      }
    }
    // A path parameter longer than it may be: the router's 414 (it takes up to the longest any may be).
    if (overlongParam(req.params)) return withRequestId(req.id, () => done(new AppError(414, 'URI Too Long', 'a path segment is too long')));
    // (The routes' answers are observed by their own onResponse hooks, observeRoutes; the not-found
    // context's by its own, observeNotFound, given to the errors plugin.)
    // HTTP/1.1 requires Host (RFC 9112 §3.2: a 400 without it).
    if (req.headers.host === undefined && req.raw.httpVersionMajor === 1 && req.raw.httpVersionMinor >= 1) {
      void reply.header('connection', 'close');
      return withRequestId(req.id, () => done(badRequest('an HTTP/1.1 request must carry a Host header')));
    }
    // RFC 9110 §10.1.1: 100-continue is the only expectation; Node sends its interim 100 itself.
    const expect = req.headers.expect;
    if (expect !== undefined && !/^\s*100-continue\s*$/i.test(expect)) {
      return withRequestId(req.id, () => done(new AppError(417, 'Expectation Failed', 'the Expect header can only be 100-continue')));
    }
    const coding = req.headers['content-encoding'];
    if (coding !== undefined && req.method !== 'GET' && req.method !== 'HEAD' && !/^\s*(identity\s*)?$/i.test(coding)) {
      return withRequestId(req.id, () => done(new AppError(415, 'Unsupported Media Type', `Content-Encoding ${JSON.stringify(coding.slice(0, 40))} is not supported: send the body uncompressed`)));
    }
    // A body declared in another charset than UTF-8 (`application/json; charset=iso-8859-1`, utf-16, …)
    // was read as UTF-8 all the same: its non-ASCII bytes became U+FFFD, a title "Café" stored and sent to
    // every platform as "Caf\uFFFD" (202). Every route reads UTF-8, so it is a 415 naming the charset.
    // Platform webhooks are the exception: a platform's delivery cannot be refused for its label (it is
    // verified as bytes and read like any other).
    const charset = foreignCharset(req.headers['content-type']);
    if (charset !== undefined && req.method !== 'GET' && req.method !== 'HEAD' && !req.url.startsWith('/v1/platform-webhooks/')) {
      return withRequestId(req.id, () => done(new AppError(415, 'Unsupported Media Type', `charset ${JSON.stringify(charset.slice(0, 40))} is not supported: send the body as UTF-8 (JSON is UTF-8, RFC 8259 §8.1), labelled charset=utf-8 or without a charset`)));
    }
    if (withoutContext.get(this) === true) return done();
    withRequestId(req.id, done);
  });
  // (A GET or HEAD has no body: its handler runs in the onRequest context already.) Attached to the
  // routes that take another method only, ahead of their own preHandlers: a GET-only route (the
  // redirect) runs no preHandler step at all.
  const bodyContext = (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => (req.method === 'GET' || req.method === 'HEAD' ? done() : withRequestId(req.id, done));
  // Text in a parsed JSON body must be Unicode: a lone surrogate escape (`\ud800`) is refused before
  // any route stores it (src/lib/well-formed.ts). The raw-body routes (partner events, platform
  // webhooks) have a Buffer here and check what they parse themselves. Attached like bodyContext, to
  // the routes that take a body (and the not-found handler's, errors plugin): a GET-only route (the
  // redirect) runs no preValidation step at all.
  const wellFormedBody = (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const body = req.body;
    if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return done();
    const at = loneSurrogateAt(body);
    if (at === undefined) return done();
    done(badRequest('invalid body', [{ path: at === '(root)' ? 'body' : `body.${at}`, message: LONE_SURROGATE_MESSAGE }]));
  };
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((m) => m === 'GET' || m === 'HEAD')) return;
    const own = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    route.preHandler = [bodyContext, ...own];
    const ownValidation = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [wellFormedBody, ...ownValidation];
  });
  // `.` and `..` are valid ids, but not as a path segment: URL normalisation (browsers, fetch, curl)
  // takes the segment, also written `%2E`/`%2E%2E`, for a step in the path and removes it (the ops
  // console's request for show `..` went to its partner's URL). Such an id is written with each dot as
  // `%252E`, which reaches the route as `%2E`/`%2E%2E`, no id (an id has no `%`): read as the dots.
  // On the /v1 routes with a path parameter only, ahead of their validation.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/') || !route.url.includes(':')) return;
    const own = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [dotIdParams, ...own];
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Infrastructure
  await app.register(errorsPlugin, { notFoundOnResponse: observeNotFound(metrics), notFoundPreValidation: wellFormedBody });
  await app.register(authPlugin, { apiKeys: rt.apiKeys, adminApiKey: rt.adminApiKey, audit: rt.audit });
  // Before any route: @fastify/swagger documents the routes registered after it (/metrics included).
  await app.register(docsPlugin);
  await app.register(metricsPlugin, { metrics });

  // A write is acknowledged (2xx/3xx) only once the replicas hold it, where WAIT is on
  // (src/store/replica-ack.ts); a WAIT that fails turns the answer into a 503 through the error handler.
  app.decorateRequest('replicated', false);
  if (rt.replicaAck.active) {
    app.addHook('onSend', (req, reply, payload, done) => {
      // (req.replicated first: the usual redirect on a Cluster answers without reading routeOptions, an object built per access)
      if (req.replicated || reply.statusCode >= 400) return done(null, payload);
      const writes = (req.method !== 'GET' && req.method !== 'HEAD') || req.routeOptions.url === '/l/:code';
      if (!writes) return done(null, payload);
      rt.replicaAck.confirm().then(
        () => done(null, payload),
        (err: unknown) => {
          // Not acknowledged: the error's problem goes out instead, without the redirect's target.
          reply.removeHeader('location');
          done(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  // Routes
  await app.register(healthRoutes, { redis: rt.redis, keys: rt.keys, draining: () => shutdown.draining, warnings: readyWarnings(rt.redisDurability) });
  await app.register(eventRoutes, { ingest: rt.ingest, onAccepted: (r) => metrics.events.inc({ result: r }) });
  await app.register(linkRoutes, { links: rt.links, shows: rt.shows, onClick: metrics.countClick, metrics, ackOnSend: rt.replicaAck.active, logLevel: rt.config.logLevel });
  await app.register(keyRoutes, { apiKeys: rt.apiKeys, partners: rt.partners });
  await app.register(auditRoutes, { audit: rt.audit });
  await app.register(partnerRoutes, { partners: rt.partners, rotationGraceMs: rt.config.secretRotationGraceHours * 3_600_000 });
  await app.register(targetRoutes, { partners: rt.partners, shows: rt.shows, sync: rt.syncProducer, allowPrivateDestinations: rt.config.allowPrivateDestinations, sweepPageSize: rt.config.sweepPageSize, verifier: rt.credentialVerifier, accounts: rt.reconcile.accounts, adapterFor: (t) => rt.syncService.adapterFor(t) });
  await app.register(showRoutes, {
    partners: rt.partners,
    shows: rt.shows,
    sync: rt.syncProducer,
    relay: rt.relay,
    box: rt.box,
    relayPublicUrl: rt.relayPublicUrl,
    allowPrivateDestinations: rt.config.allowPrivateDestinations,
    readiness: rt.readiness,
    externalShows: new ExternalShowIndex(rt.redis, rt.keys),
    ...(opts.showFilterScanMax ? { filterScanMax: opts.showFilterScanMax } : {}),
  });
  await app.register(relayRoutes, { relay: rt.relay, audit: rt.audit });
  await app.register(relayEdgeRoutes, { relay: rt.relay, shows: rt.shows, edgeUrl: rt.config.relayEdge === 'none' ? rt.config.relayEdgeInternalUrl : undefined, relayEdge: rt.config.relayEdge });
  await app.register(attributionRoutes, { attribution: rt.attribution, partners: rt.partners, shows: rt.shows });
  await app.register(platformWebhookRoutes, { partners: rt.partners, syncService: rt.syncService, attribution: rt.attribution, accounts: rt.reconcile.accounts });
  await app.register(reconcileRoutes, { reconcile: rt.reconcile, partners: rt.partners });
  await app.register(outboundRoutes, { outbound: rt.outbound, partners: rt.partners, allowPrivateDestinations: rt.config.allowPrivateDestinations });
  const ops = new OpsService({ redis: rt.redis, keys: rt.keys, partners: rt.partners, shows: rt.shows, activity: rt.activity, attribution: rt.attribution, reconciliations: rt.reconciliations, outbound: rt.outbound, relay: rt.relay, readiness: rt.readiness });
  await app.register(opsRoutes, { ops, sessions: rt.sessions, streamsPerKey: rt.config.opsStreamsPerKey, ...(opts.opsStreamStallMs ? { streamStallMs: opts.opsStreamStallMs } : {}), ...(opts.opsStreamIntervalMs ? { streamIntervalMs: opts.opsStreamIntervalMs } : {}) });
  if (opts.dashboard !== false) {
    // Loaded lazily: bull-board pulls in @fastify/static, which tests and benchmarks do not need.
    const { queuesBoard } = await import('./plugins/queues-board.plugin.js');
    const { Queue } = await import('bullmq');
    const { SCHEDULER_QUEUE } = await import('../main/scheduler.js');
    const { RECONCILE_QUEUE } = await import('../reconcile/reconcile.service.js');
    // Handles on the scheduler's and the reconcile worker's queues for the dashboard (their roles may run elsewhere).
    const extra = [SCHEDULER_QUEUE, RECONCILE_QUEUE].map((name) => new Queue(name, { connection: rt.producerConnection, prefix: rt.keys.queuePrefix(name) }));
    // Connection trouble surfaces through the dashboard's own requests; an unhandled 'error' event would crash the process.
    // While Redis is down they err on every reconnect attempt: logged once per outage (RedisOutageLog).
    const outage = new RedisOutageLog(app.log, 'queue dashboard connections');
    for (const q of extra) {
      q.on('error', (err) => outage.error(connectionErrorSummary(err), { queue: q.name }, 'queue connection error'));
      void q.client.then((c) => c.on('ready', () => outage.recovered()), () => undefined);
    }
    app.addHook('onClose', async () => {
      await Promise.all(extra.map((q) => closeQueue(q)));
    });
    await app.register(queuesBoard, { queues: [...rt.syncProducer.allQueues(), rt.attributionProducer.queue, rt.outbound.queue, ...extra], sessions: rt.sessions });
  }
  return app;
}
