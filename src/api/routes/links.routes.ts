/** GET /l/{code}: record the click (humans only) and redirect to the product's current URL with sclid + utm (docs/attribution.md). */
import type { FastifyPluginAsync } from 'fastify';
import { notFound } from '../../lib/errors.js';
import { fastRedirectUrl, isBot, type LinkService } from '../../links/link.service.js';
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
    handler: async (req, reply) => {
      const link = await opts.links.find(req.params.code);
      if (!link) throw notFound('link');
      const bot = isBot(req.method, req.headers['user-agent'], (req.headers['purpose'] ?? req.headers['sec-purpose']) as string | undefined);
      // The product's URL now (a product.updated may have changed it since the pin), read in the
      // same round trip as the click write (LinkService.click).
      const { product, click } = await opts.links.click(link, req.ip, !bot);
      opts.onClick?.(bot);
      return reply
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer-when-downgrade')
        .redirect(fastRedirectUrl(link, click?.id, product?.url), 302);
    },
  });
};
