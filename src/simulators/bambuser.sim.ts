/**
 * Bambuser Live Video Shopping simulator: the REST API for Live (v1) under `/bambuser/v1/...`
 * (liveshopping-api.bambuser.com/v1/...), so a target with `baseUrl = http://127.0.0.1:{port}/bambuser`
 * uses the real paths.
 *
 * Protocol, as the public API reference describes it:
 *  - `Authorization: Token <api key>` (a Bearer header is refused with 401). A key belongs to one
 *    organisation (src/simulators/sim.accounts.ts: the seeded ones, more from `POST
 *    /_sim/bambuser/accounts {orgId?, scopes?, highlights?}`: a new organisation, or another key of one;
 *    `highlights: false`, an organisation without the highlights beta); a key never
 *    seen is a new organisation's, with every scope (CONTRACT §9: any non-empty credentials). A show
 *    belongs to the organisation whose key created it (or `POST /_sim/bambuser/shows {title, account?}`, account = org id):
 *    another organisation's show answers 404 on every route, and its webhooks go to its own
 *    organisation's subscriptions only. Keys have scopes (all unless the account names fewer); an
 *    endpoint needing another answers 403 naming the scope.
 *  - 5 requests per 10 s moving window **per API key** (429 with Retry-After): the framework's window
 *    taken per caller (`windowPerCaller`), by key; `PUT /_sim/bambuser/limits {requestsPerWindow,
 *    windowMs}` changes it.
 *  - Shows (upcoming | scheduled | live | ended, isLive), products attached to a show (ProductModel:
 *    publicUrl, productReference; `DELETE /shows/{id}/products/{productId}` removes one), highlights
 *    (startAt, startRel, products; `DELETE /shows/{id}/highlights/{highlightId}` takes one back:
 *    effect `product.unpinned`), broadcasts, order stats,
 *    webhooks (`POST /v1/webhooks {name, url, topics, headers}`; deliveries carry those headers and no
 *    signature; `{collection, action, payload, eventId, timestamp}`; retried until a 200, so a receiver
 *    can see an event more than once; `GET /v1/webhooks/{eventId}` re-fetches one).
 *  - A show goes live when its host starts broadcasting, not by API: tests drive that in process with
 *    `startBroadcast(showId)` / `stopBroadcast(showId)` on the simulator object (effects show.started /
 *    show.ended).
 * Our model where the public reference says nothing: list paging (`limit` ≤ 100, opaque `cursor`,
 * newest first), error bodies `{statusCode, error, message}`, a show product's validation (400 for a
 * publicUrl that is no http(s) URL or an empty productReference; a highlight naming a product that is
 * not the show's is a 400 too, and so is any highlight of an organisation made without the highlights
 * beta, `highlights: false`), and the order stats shape (see
 * src/targets/bambuser/bambuser.schemas.ts). `PUT /_sim/bambuser/webhook {url, secret}` registers a
 * webhook for every topic whose custom header is `x-webhook-secret: <secret>`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { minorToDecimal } from '../targets/decimal-amount.js';
import { registerRevocations, seededAccounts, type BambuserSimAccount } from './sim.accounts.js';
import {
  SimPlatform,
  SimProblem,
  installSimApiHooks,
  randomId,
  type PlatformSimulator,
  type SimOrder,
  type SimReply,
  type SimWindowState,
  parseControlBody,
} from './sim.platform.js';

export const BAMBUSER_SCOPES = [
  'READ_SHOWS',
  'WRITE_SHOWS',
  'DELETE_SHOWS',
  'READ_PRODUCTS',
  'WRITE_PRODUCTS',
  'DELETE_PRODUCTS',
  'READ_BROADCASTS',
  'READ_STATS',
  'READ_WEBHOOKS',
  'WRITE_WEBHOOKS',
] as const;
const TOPICS = ['show', 'product', 'user', 'product-highlight', 'broadcast'] as const;
/** Header carrying the secret of the webhook set with PUT /_sim/bambuser/webhook. */
export const SIM_WEBHOOK_HEADER = 'x-webhook-secret';
const WEBHOOK_RETRIES = 3;
const WEBHOOK_RETRY_MS = 200;

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

type ShowState = 'upcoming' | 'scheduled' | 'live' | 'ended';

interface BmbProduct {
  id: string;
  publicUrl: string;
  productReference: string | null;
  title: string | null;
}
interface BmbHighlight {
  id: string;
  startAt: string;
  startRel: number;
  products: string[];
}
interface BmbBroadcast {
  id: string;
  createdAt: string;
  endedAt: string | null;
}
interface BmbShow {
  id: string;
  /** The organisation whose key (or whose operator, by hand) made it. */
  orgId: string;
  title: string;
  description: string;
  state: ShowState;
  published: boolean;
  isTestShow: boolean;
  allowArchivedPlayback: boolean;
  scheduledStartAt: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  products: BmbProduct[];
  highlights: BmbHighlight[];
  broadcasts: BmbBroadcast[];
  seq: number;
}
interface BmbSubscription {
  orgId: string;
  id: string;
  name: string;
  url: string;
  topics: string[];
  headers: Record<string, string>;
}
interface BmbEvent {
  collection: string;
  action: 'add' | 'update' | 'remove';
  payload: Record<string, unknown>;
  eventId: string;
  timestamp: string;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

function errorReply(status: number, message: string, headers?: Record<string, string>): SimReply {
  return { status, ...(headers ? { headers } : {}), body: { statusCode: status, error: STATUS_TEXT[status] ?? 'Error', message } };
}

class BmbError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function tooMany(window: SimWindowState): SimReply {
  const seconds = Math.max(1, Math.ceil(window.resetMs / 1000));
  return errorReply(429, `Rate limit exceeded: ${window.limit} requests per ${window.windowMs / 1000} seconds per API key`, { 'retry-after': String(seconds) });
}

// ---------------------------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function bodyOf(req: FastifyRequest): Record<string, unknown> {
  if (!isRecord(req.body)) throw new BmbError(400, 'request body must be a JSON object');
  return req.body;
}
function qp(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}
/**
 * A date-time with seconds and an offset, on a real calendar date (the strictest reading of "ISO 8601
 * date-time": Bambuser documents no looser form). The old check was Date.parse behind a `YYYY-MM-DDT`
 * prefix: `2030-02-30T10:00:00Z` was taken as March 2nd and `2030-04-01T18:00` (no offset) in the
 * simulator's local time, where Bambuser may refuse both or read the latter in UTC.
 */
const ISO_DATE_TIME = z.iso.datetime({ offset: true });
function isoOrThrow(v: unknown, field: string): string {
  if (typeof v !== 'string' || !ISO_DATE_TIME.safeParse(v).success) throw new BmbError(400, `${field} must be an ISO 8601 date-time with seconds and an offset`);
  return new Date(Date.parse(v)).toISOString();
}
function optString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BmbError(400, `${field} must be a string`);
  return v;
}
function optBool(v: unknown, field: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new BmbError(400, `${field} must be a boolean`);
  return v;
}
function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

const AccountBody = z.strictObject({ orgId: z.string().min(1).max(100).optional(), scopes: z.array(z.enum(BAMBUSER_SCOPES)).optional(), highlights: z.boolean().optional() });

function send(reply: FastifyReply, r: SimReply): FastifyReply {
  reply.code(r.status);
  if (r.headers) void reply.headers(r.headers);
  return reply.send(r.body);
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

export interface BambuserSimulator extends PlatformSimulator {
  /** The host starts broadcasting the show (the Bambuser app or an external encoder): it goes live. */
  startBroadcast(showId: string): void;
  /** The host stops broadcasting: the show ends. */
  stopBroadcast(showId: string): void;
}

export function createBambuserSimulator(): BambuserSimulator {
  // Bambuser counts requests per API key: the auth hook takes the window's slot by key.
  const sim = new SimPlatform('bambuser', { limits: { requestsPerWindow: 5, windowMs: 10_000 }, windowPerCaller: true });
  const shows = new Map<string, BmbShow>();
  const subscriptions: BmbSubscription[] = [];
  const events = new Map<string, BmbEvent>();
  /** The organisations and their keys; the account behind each request. */
  let accounts: BambuserSimAccount[] = seededAccounts('bambuser');
  /** Keys an organisation revoked (`POST /_sim/bambuser/revocations`). */
  const revoked = new Set<string>();
  const newOrgId = (): string => `simOrg${randomId(9).replace(/[-_]/g, 'x')}`;
  const accountOf = new WeakMap<object, BambuserSimAccount>();
  const eventOrg = new Map<string, string>();
  let showSeq = 0;
  sim.onReset(() => {
    shows.clear();
    subscriptions.length = 0;
    events.clear();
    showSeq = 0;
    accounts = seededAccounts('bambuser');
    revoked.clear();
    eventOrg.clear();
  });

  // --- rendering --------------------------------------------------------------------------

  function renderShow(s: BmbShow): Record<string, unknown> {
    const length = s.startedAt ? Math.round(((s.endedAt ? Date.parse(s.endedAt) : Date.now()) - Date.parse(s.startedAt)) / 1000) : 0;
    return {
      id: s.id,
      orgId: s.orgId,
      title: s.title,
      description: s.description,
      preview: null,
      state: s.state,
      published: s.published,
      isTestShow: s.isTestShow,
      isLive: s.state === 'live',
      isArchived: false,
      allowArchivedPlayback: s.allowArchivedPlayback,
      scheduledStartAt: s.scheduledStartAt,
      createdAt: s.createdAt,
      startedAt: s.startedAt,
      endedAt: s.endedAt,
      showLengthSeconds: length,
      contributors: [],
      channels: [],
      products: s.products.map((p) => p.id),
      tags: [],
      curtains: {},
      settings: {},
    };
  }
  const renderProduct = (p: BmbProduct): Record<string, unknown> => ({ ...p, thumbnail: null, brand: null });
  const renderHighlight = (s: BmbShow, h: BmbHighlight): Record<string, unknown> => ({ ...h, showId: s.id, orgId: s.orgId });

  // --- webhooks ---------------------------------------------------------------------------

  async function deliverTo(url: string, headers: Record<string, string>, body: string, attempt: number, viaControl: boolean): Promise<void> {
    let status: number | undefined;
    if (viaControl) {
      status = (await sim.sendWebhook(body, headers))?.status;
    } else {
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(5000) });
        status = res.status;
        await res.body?.cancel();
      } catch {
        status = undefined;
      }
    }
    // Bambuser retries a delivery until it is answered with 200.
    if (status !== 200 && attempt < WEBHOOK_RETRIES) {
      sim.schedule(WEBHOOK_RETRY_MS * 2 ** attempt, () => void deliverTo(url, headers, body, attempt + 1, viaControl));
    }
  }

  function emit(show: BmbShow, collection: (typeof TOPICS)[number], action: BmbEvent['action'], payload: Record<string, unknown>): void {
    const event: BmbEvent = { collection, action, payload, eventId: randomId(12), timestamp: new Date().toISOString() };
    events.set(event.eventId, event);
    eventOrg.set(event.eventId, show.orgId);
    const body = JSON.stringify(event);
    if (sim.webhook) {
      const headers: Record<string, string> = sim.webhook.secret ? { [SIM_WEBHOOK_HEADER]: sim.webhook.secret } : {};
      void deliverTo(sim.webhook.url, headers, body, 0, true);
    }
    for (const sub of subscriptions) {
      if (sub.orgId === show.orgId && sub.topics.includes(collection)) void deliverTo(sub.url, sub.headers, body, 0, false);
    }
  }

  // --- domain -----------------------------------------------------------------------------

  function newShow(orgId: string, f: { title: string; description?: string | undefined; scheduledStartAt?: string | undefined; published?: boolean | undefined; isTestShow?: boolean | undefined }): BmbShow {
    const s: BmbShow = {
      id: randomId(15).replace(/[-_]/g, 'x'),
      orgId,
      title: f.title,
      description: f.description ?? '',
      state: f.scheduledStartAt ? 'scheduled' : 'upcoming',
      published: f.published ?? false,
      isTestShow: f.isTestShow ?? false,
      allowArchivedPlayback: true,
      scheduledStartAt: f.scheduledStartAt ?? null,
      createdAt: new Date().toISOString(),
      startedAt: null,
      endedAt: null,
      products: [],
      highlights: [],
      broadcasts: [],
      seq: ++showSeq,
    };
    shows.set(s.id, s);
    sim.recordEffect({ type: 'show.created', externalId: s.id, title: s.title });
    emit(s, 'show', 'add', renderShow(s));
    return s;
  }

  /** With `req`: only a show of the calling key's organisation (another's is as unknown as a missing one). */
  function findShow(id: string, req?: FastifyRequest): BmbShow {
    const s = shows.get(id);
    if (!s || (req && s.orgId !== accountOf.get(req.raw)?.orgId)) throw new BmbError(404, `Show ${id} not found`);
    return s;
  }

  function startBroadcast(showId: string): void {
    const s = findShow(showId);
    if (s.state === 'live') return;
    if (s.state === 'ended') throw new Error(`show ${showId} has ended; Bambuser shows are not restarted`);
    const now = new Date().toISOString();
    s.state = 'live';
    s.startedAt = now;
    s.broadcasts.push({ id: randomId(12), createdAt: now, endedAt: null });
    sim.recordEffect({ type: 'show.started', externalId: s.id, title: s.title });
    emit(s, 'broadcast', 'add', { id: s.broadcasts.at(-1)?.id, showId: s.id, type: 'live', createdAt: now });
    emit(s, 'show', 'update', renderShow(s));
  }

  function stopBroadcast(showId: string): void {
    const s = findShow(showId);
    if (s.state !== 'live') return;
    const now = new Date().toISOString();
    s.state = 'ended';
    s.endedAt = now;
    const b = s.broadcasts.at(-1);
    if (b) b.endedAt = now;
    sim.recordEffect({ type: 'show.ended', externalId: s.id, title: s.title });
    emit(s, 'show', 'update', renderShow(s));
  }

  function statsOrder(o: SimOrder): Record<string, unknown> {
    // Conversion tracking reports decimal amounts in major units and knows nothing of refunds.
    const value = Number(minorToDecimal(o.total));
    return {
      orderId: o.orderId,
      createdAt: o.createdAt,
      currency: o.total.currency,
      orderValue: value,
      products: [{ productReference: o.productId, quantity: 1, price: value }],
    };
  }

  function requireScope(req: FastifyRequest, scope: (typeof BAMBUSER_SCOPES)[number]): void {
    const scopes = accountOf.get(req.raw)?.scopes ?? BAMBUSER_SCOPES;
    if (!scopes.includes(scope)) throw new BmbError(403, `Missing required scope: ${scope}`);
  }

  // --- the plugin -------------------------------------------------------------------------

  async function plugin(app: FastifyInstance): Promise<void> {
    installSimApiHooks(app, sim, {
      faultReply: (kind) => {
        if (kind === '500') return errorReply(500, 'An internal server error occurred');
        if (kind === 'token_expired') return errorReply(401, 'Invalid or revoked API key');
        return tooMany({ limit: sim.limits.requestsPerWindow ?? 5, remaining: 0, windowMs: sim.limits.windowMs, resetMs: sim.limits.windowMs });
      },
      rateLimitReply: (w) => tooMany(w),
    });

    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      if (err instanceof BmbError) return send(reply, errorReply(err.status, err.message));
      if ((err.statusCode ?? 500) < 500) return send(reply, errorReply(400, err.code === 'SIM_BODY_PARSE_ERROR' ? 'Invalid JSON body' : err.message));
      return send(reply, errorReply(500, 'An internal server error occurred'));
    });
    app.setNotFoundHandler((req, reply) => send(reply, errorReply(404, `Route ${req.method}:${(req.raw.url ?? '').split('?')[0] ?? ''} not found`)));

    await app.register(
      async (api) => {
        api.addHook('preHandler', async (req, reply) => {
          const header = req.headers.authorization ?? '';
          const m = /^Token\s+(\S+)$/.exec(header);
          if (!m?.[1]) {
            const hint = /^Bearer\s/i.test(header) ? 'use "Authorization: Token <api key>", not Bearer' : 'missing API key';
            return send(reply, errorReply(401, `Unauthorized: ${hint}`));
          }
          const key = m[1];
          if (revoked.has(key)) return send(reply, errorReply(401, 'Invalid or revoked API key'));
          // A key never seen is a new organisation's, with every scope (CONTRACT §9: any non-empty credentials).
          let account = accounts.find((a) => a.apiKey === key);
          if (!account) {
            account = { orgId: newOrgId(), apiKey: key };
            accounts.push(account);
          }
          const full = sim.takeWindowSlot(Date.now(), key);
          if (full) return send(reply, tooMany(full));
          accountOf.set(req.raw, account);
          return undefined;
        });
        registerShows(api);
        registerProductsAndHighlights(api);
        registerStatsAndWebhooks(api);
      },
      { prefix: '/v1' },
    );
  }

  function registerShows(api: FastifyInstance): void {
    api.get('/shows', async (req) => {
      requireScope(req, 'READ_SHOWS');
      const limitRaw = qp(req, 'limit');
      const limit = limitRaw === undefined ? 20 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new BmbError(400, 'limit must be an integer between 1 and 100');
      const cursor = qp(req, 'cursor');
      let offset = 0;
      if (cursor) {
        const m = /^o(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
        if (!m?.[1]) throw new BmbError(400, 'invalid cursor');
        offset = Number(m[1]);
      }
      const state = qp(req, 'state');
      const orgId = accountOf.get(req.raw)?.orgId;
      let all = [...shows.values()].filter((s) => s.orgId === orgId).sort((a, b) => b.seq - a.seq);
      if (state && state !== 'all') all = all.filter((s) => s.state === state);
      const page = all.slice(offset, offset + limit);
      const more = offset + limit < all.length;
      return { results: page.map(renderShow), cursor: more ? Buffer.from(`o${offset + limit}`).toString('base64url') : null };
    });

    api.post('/shows', async (req, reply) => {
      requireScope(req, 'WRITE_SHOWS');
      const b = bodyOf(req);
      if (typeof b.title !== 'string' || b.title.trim() === '') throw new BmbError(400, 'title is required');
      const s = newShow(accountOf.get(req.raw)?.orgId ?? '', {
        title: b.title,
        description: optString(b.description, 'description'),
        scheduledStartAt: b.scheduledStartAt === undefined || b.scheduledStartAt === null ? undefined : isoOrThrow(b.scheduledStartAt, 'scheduledStartAt'),
        published: optBool(b.published, 'published'),
        isTestShow: optBool(b.isTestShow, 'isTestShow'),
      });
      return reply.code(201).send(renderShow(s));
    });

    api.get('/shows/:showId', async (req) => {
      requireScope(req, 'READ_SHOWS');
      return renderShow(findShow((req.params as { showId: string }).showId, req));
    });

    api.patch('/shows/:showId', async (req) => {
      requireScope(req, 'WRITE_SHOWS');
      const s = findShow((req.params as { showId: string }).showId, req);
      const b = bodyOf(req);
      // A 400 changes nothing: every field is checked before any is applied.
      if (b.title !== undefined && (typeof b.title !== 'string' || b.title.trim() === '')) throw new BmbError(400, 'title must be a non-empty string');
      const description = optString(b.description, 'description');
      // An empty string clears the schedule (UpdateShow).
      const scheduledStartAt =
        b.scheduledStartAt === undefined ? undefined : b.scheduledStartAt === '' || b.scheduledStartAt === null ? null : isoOrThrow(b.scheduledStartAt, 'scheduledStartAt');
      const published = optBool(b.published, 'published');
      const before = JSON.stringify([s.title, s.description, s.scheduledStartAt, s.published]);
      if (typeof b.title === 'string') s.title = b.title;
      if (description !== undefined) s.description = description;
      if (scheduledStartAt !== undefined) {
        s.scheduledStartAt = scheduledStartAt;
        if (s.state === 'upcoming' || s.state === 'scheduled') s.state = s.scheduledStartAt ? 'scheduled' : 'upcoming';
      }
      if (published !== undefined) s.published = published;
      if (JSON.stringify([s.title, s.description, s.scheduledStartAt, s.published]) !== before) {
        sim.recordEffect({ type: 'show.updated', externalId: s.id, title: s.title });
        emit(s, 'show', 'update', renderShow(s));
      }
      return renderShow(s);
    });

    api.delete('/shows/:showId', async (req, reply) => {
      requireScope(req, 'DELETE_SHOWS');
      const s = findShow((req.params as { showId: string }).showId, req);
      shows.delete(s.id);
      sim.recordEffect({ type: 'show.cancelled', externalId: s.id, title: s.title });
      emit(s, 'show', 'remove', { id: s.id });
      return reply.code(204).send();
    });

    api.get('/shows/:showId/broadcasts', async (req) => {
      requireScope(req, 'READ_BROADCASTS');
      const s = findShow((req.params as { showId: string }).showId, req);
      return {
        results: s.broadcasts.map((b) => ({
          id: b.id,
          createdAt: b.createdAt,
          length: Math.round(((b.endedAt ? Date.parse(b.endedAt) : Date.now()) - Date.parse(b.createdAt)) / 1000),
          width: 1080,
          height: 1920,
          type: b.endedAt ? 'archived' : 'live',
        })),
      };
    });
  }

  function registerProductsAndHighlights(api: FastifyInstance): void {
    api.get('/shows/:showId/products', async (req) => {
      requireScope(req, 'READ_PRODUCTS');
      return { results: findShow((req.params as { showId: string }).showId, req).products.map(renderProduct) };
    });

    api.post('/shows/:showId/products', async (req, reply) => {
      requireScope(req, 'WRITE_PRODUCTS');
      const s = findShow((req.params as { showId: string }).showId, req);
      const b = bodyOf(req);
      if (!isHttpUrl(b.publicUrl)) throw new BmbError(400, 'publicUrl is required and must be an http(s) URL');
      // Our model (the reference names the fields, not their rules): a product reference, when given,
      // names the merchant's product, so an empty one is refused (Joi's default for a string field, in
      // the Boom error body this simulator models).
      if (b.productReference === '') throw new BmbError(400, '"productReference" is not allowed to be empty');
      // Like most "add" endpoints, adding the same URL twice adds it twice: callers look first.
      const p: BmbProduct = {
        id: randomId(10).replace(/[-_]/g, 'x'),
        publicUrl: b.publicUrl,
        productReference: optString(b.productReference, 'productReference') ?? null,
        title: optString(b.title, 'title') ?? null,
      };
      s.products.push(p);
      emit(s, 'product', 'add', { ...renderProduct(p), showId: s.id });
      return reply.code(201).send(renderProduct(p));
    });

    // Removing a product from a show also takes it out of the show's highlights (a highlight left
    // without products goes with it): our model, the reference only names the call.
    api.delete('/shows/:showId/products/:productId', async (req, reply) => {
      requireScope(req, 'WRITE_SHOWS');
      const { showId, productId } = req.params as { showId: string; productId: string };
      const s = findShow(showId, req);
      const i = s.products.findIndex((p) => p.id === productId);
      const p = s.products[i];
      if (!p) throw new BmbError(404, `Product ${productId} is not part of show ${s.id}`);
      s.products.splice(i, 1);
      const featured = s.highlights.some((h) => h.products.includes(p.id));
      s.highlights = s.highlights.map((h) => ({ ...h, products: h.products.filter((x) => x !== p.id) })).filter((h) => h.products.length > 0);
      if (featured) sim.recordEffect({ type: 'product.unpinned', externalId: s.id, productId: p.productReference ?? p.id });
      emit(s, 'product', 'remove', { id: p.id, showId: s.id });
      return reply.code(204).send();
    });

    api.get('/shows/:showId/highlights', async (req) => {
      requireScope(req, 'READ_SHOWS');
      const s = findShow((req.params as { showId: string }).showId, req);
      return { results: s.highlights.map((h) => renderHighlight(s, h)) };
    });

    api.post('/shows/:showId/highlights', async (req, reply) => {
      requireScope(req, 'WRITE_SHOWS');
      const s = findShow((req.params as { showId: string }).showId, req);
      const b = bodyOf(req);
      const startAt = isoOrThrow(b.startAt, 'startAt');
      if (!Array.isArray(b.products) || b.products.length === 0 || !b.products.every((p) => typeof p === 'string')) {
        throw new BmbError(400, 'products must be a non-empty array of product ids');
      }
      // Highlights are a beta: an organisation without it is refused (our model of that refusal).
      if (accounts.some((a) => a.orgId === s.orgId && a.highlights === false)) throw new BmbError(400, `product highlights (beta) are not enabled for organisation ${s.orgId}`);
      const products = (b.products as string[]).map((id) => {
        const p = s.products.find((x) => x.id === id);
        if (!p) throw new BmbError(400, `product ${id} is not part of show ${s.id}`);
        return p;
      });
      const origin = Date.parse(s.startedAt ?? s.scheduledStartAt ?? s.createdAt);
      const h: BmbHighlight = {
        id: randomId(10).replace(/[-_]/g, 'x'),
        startAt,
        startRel: Math.max(0, Math.round((Date.parse(startAt) - origin) / 1000)),
        products: products.map((p) => p.id),
      };
      s.highlights.push(h);
      for (const p of products) sim.recordEffect({ type: 'product.pinned', externalId: s.id, productId: p.productReference ?? p.id, url: p.publicUrl });
      emit(s, 'product-highlight', 'add', renderHighlight(s, h));
      return reply.code(201).send(renderHighlight(s, h));
    });

    api.delete('/shows/:showId/highlights/:highlightId', async (req, reply) => {
      requireScope(req, 'WRITE_SHOWS');
      const { showId, highlightId } = req.params as { showId: string; highlightId: string };
      const s = findShow(showId, req);
      const i = s.highlights.findIndex((h) => h.id === highlightId);
      const h = s.highlights[i];
      if (!h) throw new BmbError(404, `Highlight ${highlightId} not found`);
      s.highlights.splice(i, 1);
      for (const id of h.products) {
        const p = s.products.find((x) => x.id === id);
        sim.recordEffect({ type: 'product.unpinned', externalId: s.id, productId: p?.productReference ?? id });
      }
      emit(s, 'product-highlight', 'remove', { id: h.id, showId: s.id });
      return reply.code(204).send();
    });
  }

  function registerStatsAndWebhooks(api: FastifyInstance): void {
    api.get('/stats/show/:showId/orders', async (req) => {
      requireScope(req, 'READ_STATS');
      const s = findShow((req.params as { showId: string }).showId, req);
      // With the copies the report lists again (SimPlatform.copyOrder): one order may be under two shows.
      const orders = sim.reportedOrders().filter((o) => o.externalId === s.id).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      return { showId: s.id, orders: orders.map(statsOrder) };
    });

    api.post('/webhooks', async (req, reply) => {
      requireScope(req, 'WRITE_WEBHOOKS');
      const b = bodyOf(req);
      if (typeof b.name !== 'string' || b.name === '') throw new BmbError(400, 'name is required');
      if (!isHttpUrl(b.url)) throw new BmbError(400, 'url is required and must be an http(s) URL');
      if (!Array.isArray(b.topics) || b.topics.length === 0 || !b.topics.every((t) => (TOPICS as readonly unknown[]).includes(t))) {
        throw new BmbError(400, `topics must be a non-empty array of ${TOPICS.join(', ')}`);
      }
      if (!isRecord(b.headers) || !Object.values(b.headers).every((v) => typeof v === 'string')) throw new BmbError(400, 'headers is required (an object of strings)');
      const sub: BmbSubscription = {
        orgId: accountOf.get(req.raw)?.orgId ?? '',
        id: randomId(10),
        name: b.name,
        url: b.url,
        topics: b.topics as string[],
        headers: Object.fromEntries(Object.entries(b.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v])),
      };
      subscriptions.push(sub);
      return reply.code(201).send({ id: sub.id, name: sub.name, url: sub.url, topics: sub.topics });
    });

    api.get('/webhooks/:eventId', async (req) => {
      requireScope(req, 'READ_WEBHOOKS');
      const e = events.get((req.params as { eventId: string }).eventId);
      if (!e || eventOrg.get(e.eventId) !== accountOf.get(req.raw)?.orgId) throw new BmbError(404, 'Webhook event not found');
      return e;
    });
  }

  /** A new API key (what an admin makes in BamHub), of a new organisation or of `orgId`, with fewer scopes if asked. */
  async function control(app: FastifyInstance): Promise<void> {
    registerRevocations(app, revoked);
    app.post('/accounts', async (req, reply) => {
      const body = parseControlBody(AccountBody, req.body, `expected {orgId?, scopes?: [${BAMBUSER_SCOPES.join(', ')}], highlights?: boolean}`);
      // With orgId: another key of that organisation.
      if (body.orgId !== undefined && !accounts.some((a) => a.orgId === body.orgId)) throw new SimProblem(404, 'Unknown account', `no Bambuser organisation ${body.orgId}`);
      const account: BambuserSimAccount = {
        orgId: body.orgId ?? newOrgId(),
        apiKey: `bmb_sim_${randomId(24)}`,
        ...(body.scopes ? { scopes: body.scopes } : {}),
        ...(body.highlights === false ? { highlights: false } : {}),
      };
      accounts.push(account);
      return reply.code(201).send({ ...account, credentials: { apiKey: account.apiKey } });
    });
  }

  return {
    platform: 'bambuser',
    sim,
    plugin,
    control,
    createShowByHand(title: string, account?: string): string {
      const orgId = account ?? accounts[0]!.orgId;
      if (!accounts.some((a) => a.orgId === orgId)) throw new SimProblem(404, 'Unknown account', `no Bambuser organisation ${orgId}`);
      return newShow(orgId, { title, published: true }).id;
    },
    showExists: (externalId) => shows.has(externalId),
    listsOrderCopies: (orderShow, copyShow) => {
      const org = shows.get(orderShow)?.orgId;
      return org !== undefined && org === shows.get(copyShow)?.orgId;
    },
    startBroadcast,
    stopBroadcast,
  };
}
