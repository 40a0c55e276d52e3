/** GET /l/{code}: record the click (humans only) and redirect with sclid + utm (CONTRACT §4). */
import type { FastifyPluginAsync } from 'fastify';
import { notFound } from '../../lib/errors.js';
import { isBot, redirectUrl, type LinkService } from '../../links/link.service.js';

export interface LinkRoutesOptions {
  links: LinkService;
  onClick?: (bot: boolean) => void;
}

export const linkRoutes: FastifyPluginAsync<LinkRoutesOptions> = async (app, opts) => {
  app.route<{ Params: { code: string } }>({
    method: ['GET', 'HEAD'],
    url: '/l/:code',
    schema: { tags: ['links'], summary: 'Tracked link: records a click and redirects (302) to the product' },
    handler: async (req, reply) => {
      const link = await opts.links.find(req.params.code);
      if (!link) throw notFound('link');
      const bot = isBot(req.method, req.headers['user-agent'], (req.headers['purpose'] ?? req.headers['sec-purpose']) as string | undefined);
      const click = bot ? undefined : await opts.links.recordClick(link, req.ip);
      opts.onClick?.(bot);
      return reply
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer-when-downgrade')
        .redirect(redirectUrl(link, click?.id), 302);
    },
  });
};
