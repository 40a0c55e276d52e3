/** GET /l/{code}: record the click (humans only) and redirect to the product's current URL with sclid + utm (docs/attribution.md). */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { notFound } from '../../lib/errors.js';
import { isBot, type ClickResult, type LinkService } from '../../links/link.service.js';
import type { ShowRepository } from '../../store/show.repository.js';
import { ok } from '../openapi.js';
import { observeWhenSent, type Metrics } from '../plugins/metrics.plugin.js';

export interface LinkRoutesOptions {
  links: LinkService;
  shows: ShowRepository;
  onClick?: (bot: boolean) => void;
  /** Where the route's answers are observed (syndicast_http_request_duration_seconds): the route has no onResponse hook for it. */
  metrics?: Pick<Metrics, 'observeHttp' | 'httpSeries'>;
  /** True when an onSend hook may still change a 302 (the replica ack's WAIT, app.ts): the answer is then observed once it is sent. */
  ackOnSend?: boolean;
  /**
   * The process's log level. At `info` (the default) the route logs only warnings and errors: two access-log
   * lines per click ("incoming request", "request completed") are most of the log's volume and a real
   * part of a click's CPU, and every click is counted in Redis and in the HTTP metrics. Any other level
   * applies to the route as to every other (`debug` shows each click's lines again).
   */
  logLevel?: string;
}

const ROUTE = '/l/:code';

export const linkRoutes: FastifyPluginAsync<LinkRoutesOptions> = async (app, opts) => {
  // The usual answer's series (a browser's GET, 302), observed without prom-client's work per call.
  const redirected = opts.metrics?.httpSeries('GET', ROUTE, 302);
  app.route<{ Params: { code: string } }>({
    method: ['GET', 'HEAD'],
    url: ROUTE,
    schema: { tags: ['links'], summary: 'Tracked link: records a click and redirects (302) to the product',
      docResponses: { 302: ok("to the product's current URL with sclid and utm parameters (a bot's or HEAD request's click is not counted)", undefined, { headers: { location: 'the product URL' } }), 404: 'unknown link code' },
    },
    // No request-id context, and no onResponse hook for the HTTP histogram: the handler observes its
    // answer itself (a 302 right after it is written; anything else once it is sent).
    config: { requestContext: false, httpMetrics: false },
    ...(opts.logLevel === 'info' ? { logLevel: 'warn' } : {}),
    // Not an async handler: the usual redirect (link cached in this process) answers from the click's
    // callback (LinkService.clickCached) without a promise of its own; the first click of a link reads
    // the link record and goes the async way. Either way the 302 leaves only after the click's own
    // stored result (LinkService.click).
    handler: (req, reply) => {
      const cached = opts.links.clickCached(req.params.code, req.ip, !botRequest(req), (err, r) => {
        if (err) return void failed(req, reply, err);
        try {
          if (r!.replicated === true) req.replicated = true;
          redirect(reply, r!, opts.onClick);
          // Written already (reply.send wrote it) unless an onSend hook still waits: observed now, or once sent.
          if (opts.metrics) {
            if (req.replicated || opts.ackOnSend !== true) {
              const status = reply.statusCode;
              if (redirected !== undefined && status === 302 && req.method === 'GET') redirected(reply.elapsedTime / 1000);
              else opts.metrics.observeHttp(req.method, ROUTE, status, reply.elapsedTime / 1000);
            }
            else observeWhenSent(opts.metrics, ROUTE, req, reply);
          }
        } catch (e) {
          failed(req, reply, e);
        }
      });
      if (cached) return undefined;
      if (opts.metrics) observeWhenSent(opts.metrics, ROUTE, req, reply);
      return firstClick(req, reply);
    },
  });

  /** An error answer (the error handler's problem): observed once sent. */
  function failed(req: FastifyRequest, reply: FastifyReply, err: unknown): void {
    if (opts.metrics) observeWhenSent(opts.metrics, ROUTE, req, reply);
    void reply.send(err);
  }

  async function firstClick(req: FastifyRequest<{ Params: { code: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    const link = await opts.links.find(req.params.code);
    if (!link) throw notFound('link');
    // The product's URL now (a product.updated may have changed it since the pin), read in the
    // same round trip as the click write (LinkService.click).
    const r = await opts.links.click(link, req.ip, !botRequest(req));
    // On a Cluster the click went in its master's batch, whose own WAIT a replica answered already:
    // no second WAIT on every master before the 302 (the app's onSend hook), as for a cached link.
    if (r.replicated === true) req.replicated = true;
    return redirect(reply, r, opts.onClick);
  }
};

function botRequest(req: FastifyRequest): boolean {
  return isBot(req.method, req.headers['user-agent'], (req.headers['purpose'] ?? req.headers['sec-purpose']) as string | undefined);
}

function redirect(reply: FastifyReply, r: ClickResult, onClick: ((bot: boolean) => void) | undefined): FastifyReply {
  onClick?.(r.click === undefined);
  return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer-when-downgrade').redirect(r.location, 302);
}
