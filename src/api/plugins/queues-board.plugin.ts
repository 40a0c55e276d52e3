/** GET /admin/queues: the bull-board dashboard, admin keys only. */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../lib/errors.js';
import { problem } from './errors.plugin.js';

export async function queuesBoard(app: FastifyInstance, opts: { queues: Queue[] }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath('/admin/queues');
  createBullBoard({ queues: opts.queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  const requireAdmin = app.requireRole();
  // Answer here: bull-board installs its own error handler, which would turn a thrown 401 into a 500.
  app.addHook('onRequest', async (req, reply) => {
    try {
      await requireAdmin.call(app, req, reply);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return reply.status(err.status).type('application/problem+json').send(problem(err.status, err.message));
    }
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
}
