/** GET /l/{code}: record the click (humans only) and redirect to the product's current URL with sclid + utm (docs/attribution.md). */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { notFound } from '../../lib/errors.js';
import { isBot, type ClickResult, type LinkService } from '../../links/link.service.js';
import type { ShowRepository } from '../../store/show.repository.js';
import { ok } from '../openapi.js';

export interface LinkRoutesOptions {
  links: LinkService;
  shows: ShowRepository;
  onClick?: (bot: boolean) => void;
}

export const linkRoutes: FastifyPluginAsync<LinkRoutesOptions> = async (app, opts) => {
  app.route<{ Params: { code: string } }>({
    method: ['GET', 'HEAD'],
    url: '/l/:code',
    schema: { tags: ['links'], summary: 'Tracked link: records a click and redirects (302) to the product',
      docResponses: { 302: ok("to the product's current URL with sclid and utm parameters (a bot's or HEAD request's click is not counted)", undefined, { headers: { location: 'the product URL' } }), 404: 'unknown link code' },
    },
    config: { requestContext: false },
    // Not an async handler: the usual redirect (link cached in this process) answers from the click's
    // callback (LinkService.clickCached) without a promise of its own; the first click of a link reads
    // the link record and goes the async way. Either way the 302 leaves only after the click's own
    // stored result (LinkService.click).
    handler: (req, reply) => {
      const cached = opts.links.clickCached(req.params.code, req.ip, !botRequest(req), (err, r) => {
        if (err) return void reply.send(err);
        try {
          if (r!.replicated === true) req.replicated = true;
          redirect(reply, r!, opts.onClick);
        } catch (e) {
          void reply.send(e);
        }
      });
      return cached ? undefined : firstClick(req, reply);
    },
  });

  async function firstClick(req: FastifyRequest<{ Params: { code: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    const link = await opts.links.find(req.params.code);
    if (!link) throw notFound('link');
    // The product's URL now (a product.updated may have changed it since the pin), read in the
    // same round trip as the click write (LinkService.click).
    return redirect(reply, await opts.links.click(link, req.ip, !botRequest(req)), opts.onClick);
  }
};

function botRequest(req: FastifyRequest): boolean {
  return isBot(req.method, req.headers['user-agent'], (req.headers['purpose'] ?? req.headers['sec-purpose']) as string | undefined);
}

function redirect(reply: FastifyReply, r: ClickResult, onClick: ((bot: boolean) => void) | undefined): FastifyReply {
  onClick?.(r.click === undefined);
  return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer-when-downgrade').redirect(r.location, 302);
}
