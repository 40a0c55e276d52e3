import type { FastifyPluginAsync } from 'fastify';
import type { RedisClient } from '../../store/redis.js';
import { problem } from '../plugins/errors.plugin.js';

export const healthRoutes: FastifyPluginAsync<{ redis: RedisClient }> = async (app, opts) => {
  app.get('/health/live', { schema: { tags: ['health'] } }, async () => ({ status: 'ok' }));
  app.get('/health/ready', { schema: { tags: ['health'], summary: 'Ready when Redis answers' } }, async (_req, reply) => {
    try {
      await opts.redis.ping();
      return { status: 'ok', redis: 'up' };
    } catch {
      return reply.status(503).type('application/problem+json').send(problem(503, 'redis is not reachable'));
    }
  });
};
