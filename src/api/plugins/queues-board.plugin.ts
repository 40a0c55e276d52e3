/**
 * GET /admin/queues: the bull-board dashboard, admin keys only — by bearer header, or by the session
 * cookie the ops console's sign-in sets (a browser cannot add a header to a page it opens). Every
 * queue is shown: sync per platform and shard, attribution, outbound delivery, reconcile, scheduler.
 * The page loads nothing from outside: bull-board's link to Google Fonts is removed (its CSS falls
 * back to the system sans-serif and monospace fonts).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, forbidden, unauthorized } from '../../lib/errors.js';
import type { SessionRepository } from '../../store/session.repository.js';
import { parseCookies, SESSION_COOKIE } from '../routes/ops.routes.js';
import { problem } from './errors.plugin.js';

const EXTERNAL_STYLESHEET = /<link\s[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/gi;

export async function queuesBoard(app: FastifyInstance, opts: { queues: Queue[]; sessions: SessionRepository }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath('/admin/queues');
  createBullBoard({ queues: opts.queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  const requireAdmin = app.requireRole();
  const bySession = async (req: FastifyRequest): Promise<void> => {
    const token = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    const p = token ? await opts.sessions.find(token) : null;
    if (!p) throw unauthorized('sign in on /ops first, or send Authorization: Bearer <admin key>');
    if (!(await app.principalActive(p))) {
      // The key it was signed in with was revoked (or expired): the session ends with it.
      await opts.sessions.delete(token!);
      throw unauthorized('the API key this session was signed in with is no longer valid: sign in on /ops again');
    }
    req.principal = p;
    if (p.role !== 'admin') throw forbidden('requires role admin');
  };
  // Answer here: bull-board installs its own error handler, which would turn a thrown 401 into a 500.
  app.addHook('onRequest', async (req, reply) => {
    try {
      if (req.headers.authorization) await requireAdmin.call(app, req, reply);
      else await bySession(req);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return reply.status(err.status).type('application/problem+json').send(problem(err.status, err.message));
    }
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '');
    if (typeof payload !== 'string' || !type.startsWith('text/html')) return payload;
    return payload.replace(EXTERNAL_STYLESHEET, '');
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
}
