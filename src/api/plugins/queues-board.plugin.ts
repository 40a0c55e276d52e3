/** GET /admin/queues: the bull-board dashboard, admin keys only. */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';

export async function queuesBoard(app: FastifyInstance, opts: { queues: Queue[] }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath('/admin/queues');
  createBullBoard({ queues: opts.queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  app.addHook('onRequest', app.requireRole());
  await app.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
}
