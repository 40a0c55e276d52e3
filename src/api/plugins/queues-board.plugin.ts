/**
 * GET /admin/queues: the bull-board dashboard, admin keys only — by bearer header, or by the session
 * cookie the ops console's sign-in sets (a browser cannot add a header to a page it opens). Every
 * queue is shown: sync per platform and shard, attribution, outbound delivery, reconcile, scheduler.
 * The page loads nothing from outside: bull-board's link to Google Fonts is removed (its CSS falls
 * back to the system sans-serif and monospace fonts).
 */
import { createBullBoard } from '@bull-board/api';
import type { HTTPStatus } from '@bull-board/api/typings/app';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, forbidden, unauthorized } from '../../lib/errors.js';
import { isRedisUnavailable } from '../../store/redis.js';
import type { SessionRepository } from '../../store/session.repository.js';
import { parseCookies, SESSION_COOKIE } from '../routes/ops.routes.js';
import { problem } from './errors.plugin.js';

const EXTERNAL_STYLESHEET = /<link\s[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/gi;
// bull-board's HTTPStatus type lists the statuses it uses itself; its Fastify adapter sends any number.
const UNAVAILABLE = 503 as unknown as HTTPStatus;
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };

/**
 * The audit action of a dashboard change, from bull-board's route: `queues.pause`, `queues.clean`,
 * `queues.job_retry`, `queues.job_update_data`, `queues.job_schedulers_update`, … (the words of the
 * path without its parameters; `job_` when it acts on one job).
 */
export function dashboardAction(method: string, template: string): string {
  const parts = template.replace(/^\/admin\/queues/, '').replace(/^\/api\//, '').replace(/^queues\//, '').split('/').filter(Boolean);
  const words = parts.filter((p) => !p.startsWith(':')).map((p) => p.toLowerCase().replace(/[^a-z]+/g, '_'));
  // A path that ends in what it acts on (…/job-schedulers/:schedulerId) says what it does by its method.
  if (words.length === 0 || /^:(jobId|schedulerId)$/.test(parts[parts.length - 1]!)) words.push(VERBS[method] ?? 'change');
  return `queues.${parts.includes(':jobId') ? 'job_' : ''}${words.join('_')}`;
}

export async function queuesBoard(app: FastifyInstance, opts: { queues: Queue[]; sessions: SessionRepository }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath('/admin/queues');
  // bull-board answers every error its routes throw as a 500 of its own; Redis down or not answering
  // is a 503 problem (as on every other route), marked for the onSend hook below.
  const setErrorHandler = serverAdapter.setErrorHandler.bind(serverAdapter);
  serverAdapter.setErrorHandler = (handler) =>
    setErrorHandler((error) => (isRedisUnavailable(error) ? { status: UNAVAILABLE, body: problem(503, 'storage is temporarily unavailable, retry later') } : handler(error)));
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
  // Every change made on the dashboard (pause, retry, clean, obliterate, add or edit a job, …) is an
  // admin action like any other: audited with who made it, once bull-board has done it. Reads are not.
  app.addHook('onSend', async (req, reply, payload) => {
    if (READS.has(req.method) || reply.statusCode >= 400 || !req.principal) return payload;
    const template = req.routeOptions.url ?? req.url.split('?')[0]!;
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    const { queueName, ...rest } = params;
    await app.audit(req, { action: dashboardAction(req.method, template), detail: { method: req.method, path: template, ...(queueName ? { queue: queueName } : {}), ...rest } });
    return payload;
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (reply.statusCode === 503) void reply.type('application/problem+json').header('retry-after', '5');
    const type = String(reply.getHeader('content-type') ?? '');
    if (typeof payload !== 'string' || !type.startsWith('text/html')) return payload;
    return payload.replace(EXTERNAL_STYLESHEET, '');
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
}
