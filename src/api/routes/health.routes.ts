import type { FastifyPluginAsync } from 'fastify';
import type { RedisClient } from '../../store/redis.js';
import { z } from 'zod';
import { ok } from '../openapi.js';
import { problem } from '../plugins/errors.plugin.js';

export const healthRoutes: FastifyPluginAsync<{ redis: RedisClient }> = async (app, opts) => {
  app.get('/health/live', { schema: { tags: ['health'], summary: 'Alive (the process answers; nothing else is checked)', docResponses: { 200: ok('alive', z.object({ status: z.literal('ok') })), 503: false } } }, async () => ({ status: 'ok' }));
  app.get('/health/ready', { schema: { tags: ['health'], summary: 'Ready when Redis answers', docResponses: { 200: ok('Redis answers', z.object({ status: z.literal('ok'), redis: z.literal('up') })), 503: 'Redis is not reachable' } } }, async (_req, reply) => {
    try {
      await opts.redis.ping();
      return { status: 'ok', redis: 'up' };
    } catch {
      return reply.status(503).type('application/problem+json').send(problem(503, 'redis is not reachable'));
    }
  });
};
