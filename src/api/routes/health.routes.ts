import type { FastifyPluginAsync } from 'fastify';
import type { Keys } from '../../store/keys.js';
import type { RedisClient } from '../../store/redis.js';
import { z } from 'zod';
import { ok } from '../openapi.js';
import { problem } from '../plugins/errors.plugin.js';

/**
 * `warnings`: what the Redis would lose, read at start (src/store/redis-durability.ts: no persistence,
 * or a maxmemory-policy that evicts keys). Ready all the same (a throw-away development Redis is fine to
 * use), but said in every ready answer, not only in the start's log lines an operator may never read.
 * Without the node's host:port (readyWarnings): this route takes no key.
 */
export const healthRoutes: FastifyPluginAsync<{ redis: RedisClient; keys: Keys; draining?: () => boolean; warnings?: string[] }> = async (app, opts) => {
  app.get('/health/live', { schema: { tags: ['health'], summary: 'Alive (the process answers; nothing else is checked)', docResponses: { 200: ok('alive', z.object({ status: z.literal('ok') })), 503: false } } }, async () => ({ status: 'ok' }));
  // Ready: Redis answers and accepts a write. A Redis at maxmemory with noeviction (OOM), one whose
  // snapshots fail (MISCONF) or a read-only replica answers PING but refuses every event: not ready.
  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Ready when Redis answers and accepts writes',
        docResponses: { 200: ok('Redis answers and accepts writes (`warnings`: what it would lose, e.g. a maxmemory-policy that evicts keys; without the Redis node\'s address)', z.object({ status: z.literal('ok'), redis: z.literal('up'), warnings: z.array(z.string()).optional() })), 503: 'Redis is not reachable or refuses writes, or this instance is shutting down' },
      },
    },
    async (_req, reply) => {
      // Shutting down (SIGTERM, SHUTDOWN_DRAIN_MS): a load balancer stops sending here while it still serves.
      if (opts.draining?.()) return reply.status(503).type('application/problem+json').send(problem(503, 'shutting down'));
      try {
        await opts.redis.set(opts.keys.readinessProbe(), String(Date.now()), 'PX', 60_000);
        const warnings = opts.warnings ?? [];
        return { status: 'ok', redis: 'up', ...(warnings.length > 0 ? { warnings } : {}) };
      } catch (err) {
        // A reply from the server (OOM, MISCONF, READONLY): it is there and says no.
        const refused = err instanceof Error && err.name === 'ReplyError' ? `redis refuses writes (${err.message.split('\n')[0]!.slice(0, 200)})` : null;
        return reply.status(503).type('application/problem+json').send(problem(503, refused ?? 'redis is not reachable'));
      }
    },
  );
};
