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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, forbidden, unauthorized } from '../../lib/errors.js';
import { isRedisUnavailable } from '../../store/redis.js';
import type { SessionRepository } from '../../store/session.repository.js';
import { StoredRecordCorruptError } from '../../store/stored-record.js';
import { parseCookies, SESSION_COOKIE } from '../routes/ops.routes.js';
import { problem, storedRecordProblem } from './errors.plugin.js';

const EXTERNAL_STYLESHEET = /<link\s[^>]*href="https?:\/\/[^"]*"[^>]*>\s*/gi;
// bull-board's HTTPStatus type lists the statuses it uses itself; its Fastify adapter sends any number.
const UNAVAILABLE = 503 as unknown as HTTPStatus;
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const VERBS: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };
/**
 * The job states a queue's "clean" takes (BullMQ `Queue.clean`'s `type`). bull-board hands the route's
 * `:queueStatus` to it as it comes, and BullMQ cleans the queue's key of that name: one of another type
 * (`meta`, `events`, `id`) was a WRONGTYPE from its script, a 500, and a name no job state has (`stalled`,
 * `__proto__`) a 200 that cleaned nothing, audited as a clean.
 */
export const CLEANABLE_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'delayed', 'prioritized', 'wait', 'waiting', 'paused', 'active']);

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

/** bull-board's error keys (ERRORS.QUEUE_NOT_FOUND, …) for a person: what its handlers answer 4xx with. */
function boardErrorDetail(req: FastifyRequest, error: { key?: unknown; options?: unknown } | undefined, message: unknown): string {
  const { queueName, jobId } = (req.params ?? {}) as Record<string, string | undefined>;
  const key = typeof error?.key === 'string' ? error.key.replace(/^ERRORS\./, '') : '';
  if (key === 'QUEUE_NOT_FOUND') return `queue ${queueName ?? '(none)'} not found`;
  if (key === 'JOB_NOT_FOUND') return `job ${jobId ?? '(none)'} of queue ${queueName ?? '(none)'} not found`;
  const options = error?.options && typeof error.options === 'object' ? ` (${JSON.stringify(error.options)})` : '';
  return typeof message === 'string' && message ? message : `${key.toLowerCase().replace(/_/g, ' ') || 'refused'}${options}`;
}

/**
 * An error answer under /admin/queues as application/problem+json, like every other route's: bull-board
 * answers its own (a queue or job that does not exist: 404 `{"error":{"key":"ERRORS.QUEUE_NOT_FOUND"}}`)
 * as application/json. Its `error` stays in the problem as an extension member: the board's page reads it.
 */
function boardProblem(req: FastifyRequest, reply: FastifyReply, payload: unknown): unknown {
  if (String(reply.getHeader('content-type') ?? '').startsWith('application/problem+json')) return payload;
  let body: { error?: { key?: unknown; options?: unknown }; message?: unknown } | undefined;
  try {
    body = typeof payload === 'string' ? (JSON.parse(payload) as typeof body) : undefined;
  } catch {
    body = undefined;
  }
  void reply.type('application/problem+json; charset=utf-8');
  const error = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : undefined;
  return JSON.stringify({ ...problem(reply.statusCode, boardErrorDetail(req, error, body?.message)), ...(error ? { error } : {}) });
}

export async function queuesBoard(app: FastifyInstance, opts: { queues: Queue[]; sessions: SessionRepository }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath('/admin/queues');
  // bull-board answers every error its routes throw with a body of its own (`{"error":{"key":…},
  // "message":…}`, the thrown message even on a 500): Redis down or not answering is a 503 problem (as on
  // every other route, marked for the onSend hook below), a request error (a body that is not JSON) a
  // 4xx problem with its status, anything else a 500 "internal error", logged.
  const setErrorHandler = serverAdapter.setErrorHandler.bind(serverAdapter);
  serverAdapter.setErrorHandler = () =>
    setErrorHandler((error) => {
      if (isRedisUnavailable(error)) return { status: UNAVAILABLE, body: problem(503, 'storage is temporarily unavailable, retry later') };
      const status = (error as { statusCode?: unknown }).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) return { status: status as HTTPStatus, body: problem(status, error.message) };
      app.log.error({ err: error }, 'queue dashboard: unhandled error');
      return { status: 500 as HTTPStatus, body: problem(500, 'internal error') };
    });
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
      if (err instanceof StoredRecordCorruptError) {
        // The session's record does not read: the typed problem (bull-board's handler answered a generic
        // 500). Signing in again on /ops replaces it.
        req.log.error({ family: err.family, key: err.key, reason: err.reason, route: '/admin/queues' }, 'stored record does not read: repair or delete its key');
        return reply.status(500).type('application/problem+json').send(storedRecordProblem(err));
      }
      if (!(err instanceof AppError)) throw err;
      return reply.status(err.status).type('application/problem+json').send(problem(err.status, err.message));
    }
    const { queueStatus } = (req.params ?? {}) as Record<string, string | undefined>;
    if (req.routeOptions.url?.endsWith('/clean/:queueStatus') && !CLEANABLE_STATES.has(queueStatus ?? '')) {
      return reply.status(400).type('application/problem+json').send(problem(400, `queueStatus: a queue is cleaned of its ${[...CLEANABLE_STATES].join(', ')} jobs, not ${JSON.stringify(queueStatus)}`));
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
  // No page may frame the dashboard (its buttons pause, clean and obliterate queues). The session cookie
  // is SameSite=Strict, which keeps it from other sites' frames but not from a frame on the same site:
  // another port of this host, a sibling subdomain (a page there framed the dashboard signed in and
  // could have a click land on its buttons). The console's page says the same in its CSP.
  app.addHook('onSend', async (_req, reply, payload) => {
    void reply.header('content-security-policy', "frame-ancestors 'none'").header('x-frame-options', 'DENY');
    return payload;
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode === 503) void reply.type('application/problem+json').header('retry-after', '5');
    if (reply.statusCode >= 400) return boardProblem(req, reply, payload);
    const type = String(reply.getHeader('content-type') ?? '');
    if (typeof payload !== 'string' || !type.startsWith('text/html')) return payload;
    return payload.replace(EXTERNAL_STYLESHEET, '');
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: '/admin/queues' });
}
