/**
 * Bearer API keys with roles (README / OpenAPI at /docs): admin (all), operator (setup and actions), viewer (read),
 * partner (read its own partner's data only). ADMIN_API_KEY is an admin key; other keys are stored hashed.
 */
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { sha256Hex, safeEqual } from '../../lib/crypto.js';
import { forbidden, unauthorized } from '../../lib/errors.js';
import type { ApiKeyRepository, Principal, Role } from '../../store/apikey.repository.js';
import { actorOf, type AuditRepository, type AuditScope, type AuditWrite, type EndpointAuditScope, type PendingAudit, type ShowAuditScope } from '../../store/audit.repository.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** preHandler: require one of `roles` (admin always passes). */
    requireRole(...roles: Role[]): preHandlerAsyncHookHandler;
    /**
     * The principal an API key stands for, or why it stands for none (the console's sign-in checks a
     * key this way; `keyRefusedDetail` words the reason as the API does). One lookup: the reason was a
     * second one, an extra GET per refused sign-in.
     */
    principalOfKey(key: string): Promise<{ principal: Principal } | { refused: KeyRefusal }>;
    /**
     * Whether the key a principal came from still works (not revoked, not expired): sessions and
     * open streams that authenticated once ask again, so that revoking a key ends them too.
     */
    principalActive(p: Principal): Promise<boolean>;
    /** Appends an operator action to the audit log: who (the request's key), what, on which partner/show/target. */
    audit(req: FastifyRequest, entry: AuditWrite): Promise<void>;
    /**
     * The audit entry of a change that cannot be redone by a retry (a delete, a revocation), for the
     * change's own script to record pending (same slot, `auditPending`): `auditSettle` then writes it.
     * `id`: the change's own id when a retry may record the same change again (written once per id).
     */
    auditPending(req: FastifyRequest, entry: AuditWrite, id?: string): PendingAudit;
    /**
     * Before a change whose entry is recorded pending in an endpoint's or a show's slot: settling the
     * partner then finds it there (`AuditRepository.announce`).
     */
    auditAnnounce(scope: EndpointAuditScope | ShowAuditScope): Promise<void>;
    /** Writes the scope's pending audit entries, each once (`AuditRepository.settle`); never throws (a failure is logged, the entries stay pending). */
    auditSettle(scope: AuditScope): Promise<void>;
  }
}

export interface AuthOptions {
  apiKeys: ApiKeyRepository;
  adminApiKey: string;
  audit: AuditRepository;
}

/** Why an API key opens nothing: not one of ours, revoked, past its expiry. */
export type KeyRefusal = 'unknown' | 'revoked' | 'expired';

/** A refused key's 401 detail, the same for a bearer request and a console sign-in (whose page words each). */
export const keyRefusedDetail = (r: KeyRefusal): string => (r === 'revoked' ? 'this API key was revoked' : r === 'expired' ? 'this API key has expired' : 'unknown API key');

/** Throws 403 unless the principal may see `partnerId` (partner keys are scoped to their partner). */
export function assertPartnerAccess(req: FastifyRequest, partnerId: string): void {
  const p = req.principal;
  if (p?.role === 'partner' && p.partnerId !== partnerId) throw forbidden('this key is scoped to another partner');
}

async function authPlugin(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const adminHash = sha256Hex(opts.adminApiKey);
  // Sessions store the principal: this tells the current ADMIN_API_KEY's from a rotated-out one's.
  const adminKey = sha256Hex(`syndicast admin session:${adminHash}`).slice(0, 32);
  const admin = (): Principal => ({ id: 'admin', role: 'admin', partnerId: undefined, name: 'ADMIN_API_KEY', adminKey });
  app.decorateRequest('principal', null);

  const authenticate = async (req: FastifyRequest): Promise<Principal> => {
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
    if (!m?.[1]) throw unauthorized('Authorization: Bearer <api key> required');
    const key = m[1];
    if (safeEqual(sha256Hex(key), adminHash)) return admin();
    const found = await opts.apiKeys.lookup(key);
    if (!found) throw unauthorized(keyRefusedDetail('unknown'));
    if ('refused' in found) throw unauthorized(keyRefusedDetail(found.refused));
    // Its last use is bookkeeping, not part of the answer: not awaited. It was, before the role check,
    // so a write Redis was slow to answer (an fsync on a loaded disk, appendfsync always) past the
    // command timeout made a request that needs one GET a 503: a viewer key's PUT on /admin/queues got
    // 503 where its answer is 403. The HSET still leaves on this connection after the GET, ahead of
    // any later command of the request; a failure is logged, the next use after a minute writes again.
    opts.apiKeys.touch(found.principal.id).catch((err: unknown) => req.log.warn({ err, keyId: found.principal.id }, 'API key last use not recorded'));
    return found.principal;
  };

  // The console's sign-in: a revoked or expired key is no key.
  app.decorate('principalOfKey', async (key: string): Promise<{ principal: Principal } | { refused: KeyRefusal }> => {
    if (safeEqual(sha256Hex(key), adminHash)) return { principal: admin() };
    return (await opts.apiKeys.lookup(key)) ?? { refused: 'unknown' };
  });

  app.decorate('principalActive', async (p: Principal): Promise<boolean> => {
    // ADMIN_API_KEY: configuration, not a stored key; active while it is still the configured one.
    if (p.id === 'admin' && p.role === 'admin') return p.adminKey !== undefined && safeEqual(p.adminKey, adminKey);
    return (await opts.apiKeys.get(p.id))?.status === 'active';
  });

  app.decorate('audit', async (req: FastifyRequest, entry: AuditWrite): Promise<void> => {
    await opts.audit.record(actorOf(req.principal), { ...entry, requestId: req.id });
  });
  app.decorate('auditPending', (req: FastifyRequest, entry: AuditWrite, id?: string): PendingAudit => opts.audit.pending(actorOf(req.principal), { ...entry, requestId: req.id }, id));
  app.decorate('auditAnnounce', async (scope: EndpointAuditScope | ShowAuditScope): Promise<void> => {
    await opts.audit.announce(scope);
  });
  app.decorate('auditSettle', async (scope: AuditScope): Promise<void> => {
    // Best effort: the request's own change is made and its entry is stored pending with it (same
    // script), so a write that fails now (the audit stream's node failing over, Redis refusing writes)
    // must not fail the request. A 5xx there made the client retry a change that was done: a second API
    // key or endpoint whose secret nobody saw, a second secret rotation. The entry stays pending and the
    // next change of its scope, a read of the log or the scheduler's minute tick writes it.
    let failed: { id: string; error: unknown }[];
    try {
      ({ failed } = await opts.audit.settle(scope));
    } catch (err) {
      app.log.warn({ err, scope }, 'pending audit entries not written now (they stay pending and are written later)');
      return;
    }
    // Unreadable, left pending for an operator to look at: the request's own change goes on.
    for (const f of failed) app.log.warn({ err: f.error, pendingAuditId: f.id, scope }, 'pending audit entry is unreadable');
  });

  app.decorate('requireRole', (...roles: Role[]): preHandlerAsyncHookHandler => {
    const check: preHandlerAsyncHookHandler = async (req) => {
      const p = await authenticate(req);
      req.principal = p;
      if (p.role !== 'admin' && !roles.includes(p.role)) throw forbidden(`requires role ${['admin', ...roles].join(' or ')}`);
    };
    ROLE_CHECKS.add(check);
    return check;
  });

  // Routes give their role check as a preHandler, which runs after the body is parsed and the input
  // validated: a request with no key and an invalid body got a 400 listing the fields (not the 401
  // the document gives), a viewer key a 400 from a route it may not use (not 403). The check needs only
  // the headers: it is moved ahead, to the route's onRequest (after the app's own onRequest steps).
  app.addHook('onRoute', (route) => {
    const pre = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
    const checks = pre.filter((h) => ROLE_CHECKS.has(h as preHandlerAsyncHookHandler));
    if (checks.length === 0) return;
    route.preHandler = pre.filter((h) => !ROLE_CHECKS.has(h as preHandlerAsyncHookHandler));
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [...own, ...(checks as unknown as onRequestAsyncHookHandler[])];
  });
}

/** The hooks requireRole made (moved from a route's preHandler to its onRequest). */
const ROLE_CHECKS = new WeakSet<preHandlerAsyncHookHandler>();

export default fp(authPlugin, { name: 'auth' });
