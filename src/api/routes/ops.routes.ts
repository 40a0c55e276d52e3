/**
 * The ops console (/ops): its static page, and the read APIs it needs on top of the REST API —
 * the board, a live stream of it (server-sent events read with fetch, so the API key travels in the
 * Authorization header and never in a URL), a show's detail, reconciliations, outbound endpoints —
 * plus the sign-in that gives /admin/queues (which a browser opens without headers) a session cookie.
 */
import { createHash } from 'node:crypto';
import { exactJson } from '../../lib/exact-json.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IdSchema } from '../../domain/events.js';
import { AppError, badRequest, notFound, unauthorized } from '../../lib/errors.js';
import { PageCursorSchema, parsePageCursor } from '../../store/zset-page.js';
import type { SessionRepository } from '../../store/session.repository.js';
import type { Principal } from '../../store/apikey.repository.js';
import { ENDPOINT_CURSOR, type EndpointCursor, type OpsService } from '../ops/ops.service.js';
import { parseTupleCursor, tupleCursorSchema } from '../../lib/tuple-cursor.js';
import { assertPartnerAccess, keyRefusedDetail } from '../plugins/auth.plugin.js';
import { problem } from '../plugins/errors.plugin.js';
import { ENDPOINT_URL_DESCRIPTION, FORBIDDEN_PARTNER, ok } from '../openapi.js';
import { logLeftOut } from '../../store/stored-record.js';

const Me = z.object({ id: z.string(), role: z.string(), partnerId: z.string().nullable() });
const PartnerRef = z.object({ id: z.string(), name: z.string() });
const Board = z.object({
  me: Me,
  generatedAt: z.string(),
  partners: z.array(PartnerRef).describe("the partners with shows on the board (for its partner filter); a partner key's: its own. The board reads only the partners with a show scheduled within a day of now or live, from an index the show writes keep"),
  shows: z.array(z.looseObject({ partnerId: z.string(), showId: z.string(), title: z.string(), state: z.string(), scheduledAt: z.string(), mirrors: z.array(z.looseObject({ targetId: z.string(), platform: z.string(), state: z.string(), needsAction: z.boolean(), lastError: z.string().nullable() })) })),
  leftOff: z.number().int().describe("shows scheduled within a day of now that are not in `shows`: of each partner's, the board holds the 300 scheduled nearest to now (and every live one)"),
  unreadable: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("parts left off the board because their stored record does not read (a data fault for an operator, counted in syndicast_stored_records_unreadable_total): a partner's show index of another type (all of that partner's shows: 1), or one show's record (1 each); absent when none"),
});

export const SESSION_COOKIE = 'syndicast_ops';
/** The cookie is sent everywhere (so that sign-out can end it) but only /admin/queues accepts it. */
export const SESSION_COOKIE_PATH = '/';

export interface OpsRoutesOptions {
  ops: OpsService;
  sessions: SessionRepository;
  /** How often the live stream looks for board changes. */
  streamIntervalMs?: number;
  /** How long a stream's client may read nothing before the stream is closed (default STREAM_STALL_MS). */
  streamStallMs?: number;
  /** Streams one API key may hold open at once in this process (OPS_STREAMS_PER_KEY; default STREAMS_PER_KEY). */
  streamsPerKey?: number;
}

/**
 * A stream whose socket has not drained for this long is closed: its client reads nothing (asleep,
 * or holding the connection open on purpose, with a key that may since have been revoked, which is
 * only checked when a board is read). A client that reads again reconnects (`retry: 2000`).
 */
export const STREAM_STALL_MS = 60_000;

/**
 * OPS_STREAMS_PER_KEY's default. Each open stream holds a connection and a timer here, and a key's
 * streams were not bounded: one key (a script, a leaked viewer key) could open thousands.
 */
export const STREAMS_PER_KEY = 10;
/** Retry-After of the 429 for one stream too many: streams are long-lived, a slot frees when one closes. */
const STREAM_CAP_RETRY_AFTER_SEC = 5;

/** A board as the streams send it: the hash of what they compare, and the board's JSON. */
interface SharedBoard {
  hash: string;
  json: string;
}

const STATIC_DIR = fileURLToPath(new URL('../ops/static/', import.meta.url));
const ASSETS: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8', 'index.html': 'text/html; charset=utf-8' };
/** Nothing but our own origin: no CDN, no fonts, no inline script. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const ShowParams = z.object({ partnerId: IdSchema, showId: IdSchema });
/** The reconciliations view's page: as GET /v1/partners/{partnerId}/reconciliations pages. */
const ReconciliationsQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), cursor: PageCursorSchema.optional() });
const EndpointsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: tupleCursorSchema(ENDPOINT_CURSOR).optional(),
});
/**
 * A name that is not one of the console's files is a 404, like any path that is not there (one over
 * 128 characters, the longest id, is refused first: 414, src/api/app.ts PARAM_MAX_LENGTH).
 */
const AssetParams = z.object({ file: z.string() });
const SessionBody = z.strictObject({ key: z.string().min(1).max(512) });

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (name && !(name in out)) out[name] = value;
  }
  return out;
}

export const opsRoutes: FastifyPluginAsyncZod<OpsRoutesOptions> = async (app, opts) => {
  // Money totals past 2^53 are bigints: written as their exact digits (plain JSON.stringify otherwise).
  // Only in this plugin's routes: an app-wide reply serializer would take the place of every other
  // route's response schema (Fastify uses a default reply serializer before a route's schema).
  app.setReplySerializer((payload) => exactJson(payload));
  const { ops, sessions } = opts;
  const readers = app.requireRole('operator', 'viewer', 'partner');
  const assets = new Map(Object.keys(ASSETS).map((f) => [f, readFileSync(STATIC_DIR + f)]));

  const sendAsset = (file: string) => ({ type: ASSETS[file]!, body: assets.get(file)! });
  app.get('/ops', { schema: { tags: ['ops'], summary: 'The ops console (HTML)', operationId: 'opsConsole', security: [], docResponses: { 200: ok('the page', z.string(), { contentType: 'text/html' }), 503: false } } }, async (_req, reply) => {
    const a = sendAsset('index.html');
    return reply.type(a.type).header('content-security-policy', CSP).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(a.body);
  });
  // `/ops/` would otherwise reach `/ops/:file` with an empty name (a 400): the console has one address,
  // `/ops`, so the slash form redirects there (query kept; a browser keeps the #fragment). Only here: a
  // router-wide ignoreTrailingSlash would also give every /v1 route a second address. An alias of a
  // page, not an operation: out of the OpenAPI document (whose lint refuses a path ending in a slash).
  app.get('/ops/', { schema: { hide: true } }, async (req, reply) => {
    const q = req.url.indexOf('?');
    return reply.redirect(q < 0 ? '/ops' : '/ops' + req.url.slice(q), 301);
  });
  // The address `npm start` prints: a person opening it in a browser gets the console, not a 404 problem.
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ops', 302));
  app.get('/ops/:file', { schema: { tags: ['ops'], summary: 'The ops console script and style sheet', operationId: 'opsAsset',
        security: [],
        params: AssetParams,
        docResponses: { 200: ok('the file', undefined, { also: { 'text/javascript': z.string(), 'text/css': z.string() } }), 404: 'not app.js or app.css', 503: false },
      },
    }, async (req, reply) => {
    const { file } = req.params;
    if (file === 'index.html' || !Object.hasOwn(ASSETS, file)) throw notFound(`/ops/${file}`);
    const a = sendAsset(file);
    return reply.type(a.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(a.body);
  });

  app.get(
    '/v1/ops/board',
    { preHandler: readers, schema: { tags: ['ops'], summary: "Today's and live shows × targets, as the caller may see them", operationId: 'opsBoard', docResponses: { 200: ok('the board', Board) } } },
    async (req) => {
      const p = req.principal!;
      return { me: { id: p.id, role: p.role, partnerId: p.partnerId ?? null }, ...(await ops.board(p)) };
    },
  );

  /** Open streams, each with its stop (ends its timer and any write of a board read in flight). */
  const streams = new Map<ServerResponse, () => void>();
  /** Open streams by API key id. */
  const streamsOfKey = new Map<string, number>();
  const streamsPerKey = opts.streamsPerKey ?? STREAMS_PER_KEY;
  const streamIntervalMs = opts.streamIntervalMs ?? 1000;
  /**
   * The board a stream sends, read once per stream interval for every stream that shows the same board
   * (a partner key's: its partner's; any other role's: all partners'), with its hash and its JSON. Each
   * stream read the whole board from Redis and serialised it itself every second: a hundred streams
   * (one viewer or partner key's console tabs, or a script) were a hundred board reads a second, enough
   * to hold the API's event loop so long that signed events timed out into 503s (Redis up and idle).
   * A failed read is not kept: the next tick reads again.
   */
  const shared = new Map<string, { at: number; board: Promise<SharedBoard> }>();
  const sharedBoard = (p: Principal): Promise<SharedBoard> => {
    const scope = p.role === 'partner' ? `partner:${p.partnerId ?? ''}` : 'all';
    const now = Date.now();
    const hit = shared.get(scope);
    if (hit && now - hit.at < streamIntervalMs) return hit.board;
    const board = ops.board(p).then((b) => ({
      hash: createHash('sha256').update(JSON.stringify(b.shows)).update(JSON.stringify(b.partners)).update(String(b.leftOff)).update(String(b.unreadable ?? 0)).digest('base64url'),
      json: JSON.stringify(b),
    }));
    // Scopes no stream asked for in two intervals (a partner's console closed) are not kept.
    for (const [k, v] of shared) if (now - v.at > 2 * streamIntervalMs) shared.delete(k);
    shared.set(scope, { at: now, board });
    board.catch(() => {
      if (shared.get(scope)?.board === board) shared.delete(scope);
    });
    return board;
  };
  app.addHook('preClose', async () => {
    // Stopped before it is ended: a board read that finishes after the end (before the response's
    // 'close' event) would otherwise write to the ended response, and its timer read again.
    for (const [res, stopStream] of [...streams]) {
      stopStream();
      // A client that reads nothing (its socket not drained) would hold the shutdown: cut, not ended
      // (the stall timer that cut it before is stopped with the stream).
      if (res.writableNeedDrain) res.destroy();
      else res.end();
    }
    streams.clear();
  });
  app.get(
    '/v1/ops/stream',
    {
      preHandler: readers,
      schema: {
        tags: ['ops'],
        summary: 'The board as server-sent events (`event: board`, sent whenever it changes; a comment every 15 s keeps the connection open; a client that reads nothing for 60 s is disconnected)',
        description: 'Read it with fetch and an Authorization header (EventSource cannot send one).',
        operationId: 'opsStream',
        docResponses: {
          200: ok('an endless stream of `event: board` (data: the board as JSON) and `event: problem` (data: a Problem while storage is down)', z.string(), { contentType: 'text/event-stream' }),
          429: 'this API key already holds OPS_STREAMS_PER_KEY (default 10) streams open on this API process: close one (another console tab), then retry (Retry-After)',
        },
      },
    },
    async (req, reply) => {
      const p = req.principal!;
      const me = { id: p.id, role: p.role, partnerId: p.partnerId ?? null };
      // (A HEAD holds no stream: it is answered at once below.) Counted below, with no await in between.
      const held = streamsOfKey.get(p.id) ?? 0;
      if (req.method !== 'HEAD' && held >= streamsPerKey) {
        throw new AppError(429, 'Too Many Requests', `this API key already has ${held} live streams open here, the most one key may (OPS_STREAMS_PER_KEY): close one (another console tab), then retry`, undefined, {
          'retry-after': String(STREAM_CAP_RETRY_AFTER_SEC),
        });
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
      // A HEAD request gets these headers and nothing else. Node drops every write of a HEAD response
      // (its headers too, until end()), so a HEAD was never answered while the stream read the board
      // for it every second until the client gave up.
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.write('retry: 2000\n\n');
      streamsOfKey.set(p.id, (streamsOfKey.get(p.id) ?? 0) + 1);
      let open = true;
      let timer: NodeJS.Timeout | undefined;
      const stop = (): void => {
        if (open) {
          const left = (streamsOfKey.get(p.id) ?? 1) - 1;
          if (left > 0) streamsOfKey.set(p.id, left);
          else streamsOfKey.delete(p.id);
        }
        open = false;
        streams.delete(res);
        clearTimeout(timer);
      };
      streams.set(res, stop);
      req.raw.on('close', stop);
      res.on('close', stop);
      // A client gone before these listeners were there (during the key check) holds no stream.
      if (req.raw.socket.destroyed) stop();
      let lastHash = '';
      let lastWrite = Date.now();
      /** Since when the socket has not drained (undefined: it has). */
      let stalledSince: number | undefined;
      const tick = async (): Promise<void> => {
        if (!open) return;
        // A client that reads nothing (stalled, or holding the connection open on purpose) would have
        // every board we write (~100 KB a change, a change a second on a busy board) queue in this
        // process without bound once the kernel's buffers are full. While the socket has not drained,
        // nothing is read or written; the board sent once it drains is the current one (lastHash has
        // not moved), the ones in between are skipped.
        if (res.writableNeedDrain) {
          stalledSince ??= Date.now();
          if (Date.now() - stalledSince >= (opts.streamStallMs ?? STREAM_STALL_MS)) {
            req.log.info('ops stream: client read nothing for too long; closing');
            stop();
            res.destroy();
            return;
          }
          next();
          return;
        }
        stalledSince = undefined;
        try {
          if (!(await app.principalActive(p))) {
            // Revoked (or expired) since the stream opened: say so and end it; a reconnect gets 401.
            // Not when the stream was stopped during the check (preClose ended it, the client left).
            if (open) res.end(`event: problem\ndata: ${JSON.stringify(problem(401, 'this API key is no longer valid (revoked or expired)'))}\n\n`);
            stop();
            return;
          }
          const { hash, json } = await sharedBoard(p);
          if (hash !== lastHash && open) {
            lastHash = hash;
            // { me, ...board } as JSON: the shared board's text with this stream's `me` put first.
            res.write(`event: board\ndata: {"me":${JSON.stringify(me)},${json.slice(1)}\n\n`);
            lastWrite = Date.now();
          }
        } catch (err) {
          req.log.warn({ err }, 'ops stream: board read failed');
          if (open) res.write(`event: problem\ndata: ${JSON.stringify(problem(503, 'storage is temporarily unavailable; the board is not current'))}\n\n`);
          lastHash = '';
        }
        if (open && Date.now() - lastWrite >= 15_000) {
          res.write(': keep-alive\n\n');
          lastWrite = Date.now();
        }
        if (open) next();
      };
      const next = (): void => {
        timer = setTimeout(() => void tick(), streamIntervalMs);
      };
      await tick();
    },
  );

  app.get(
    '/v1/ops/partners/:partnerId/shows/:showId',
    { preHandler: readers, schema: { tags: ['ops'], summary: "A show's mirrors, timeline (events, sync runs, platform effects, operator actions) and sales per target", operationId: 'opsShowDetail',
        params: ShowParams,
        docResponses: {
          200: ok('the show', z.looseObject({ partner: PartnerRef, show: z.looseObject({ id: z.string(), state: z.string() }), mirrors: z.array(z.looseObject({})), timeline: z.array(z.looseObject({ at: z.string(), kind: z.string(), summary: z.string() })), sales: z.array(z.looseObject({ targetId: z.string(), currency: z.string(), minorUnits: z.number().int().describe("the currency's ISO 4217 minor unit: the amounts are in 10^-minorUnits of the currency"), orders: z.number().int(), grossAmount: z.number().int(), refundedAmount: z.number().int(), commission: z.number().int() })) })),
          403: FORBIDDEN_PARTNER,
          404: 'unknown partner or show',
        },
      },
    },
    async (req) => {
      const { partnerId, showId } = req.params;
      assertPartnerAccess(req, partnerId);
      const detail = await ops.showDetail(partnerId, showId);
      if (!detail) throw notFound(`show ${showId} of partner ${partnerId}`);
      return detail;
    },
  );

  app.get(
    '/v1/ops/reconciliations',
    { preHandler: readers, schema: { tags: ['ops'], summary: 'Latest reconciliation runs with their discrepancies, for the partners the caller may see: a page, newest first across them', operationId: 'opsReconciliations',
        querystring: ReconciliationsQuery,
        docResponses: {
          200: ok('one page of the runs, newest first', z.object({ partners: z.array(PartnerRef), reconciliations: z.array(z.looseObject({ id: z.string(), partnerId: z.string(), status: z.string(), discrepancyCount: z.number().int() })), nextCursor: z.string().nullable().describe('`cursor` for the next page (opaque: it marks the last run of this page, so runs requested meanwhile shift nothing); null on the last page') })),
          400: 'limit not 1-100, or a cursor this list did not give',
        },
      },
    },
    async (req) => {
      const start = parsePageCursor(req.query.cursor);
      // A position (an old numeric cursor of a one-partner list) means nothing across partners.
      if (start === null || (start && 'offset' in start)) throw badRequest('cursor: a nextCursor from a previous page of this list expected', [{ path: 'querystring.cursor', message: 'a nextCursor from a previous page of this list expected' }]);
      return ops.reconciliations(req.principal!, req.query.limit, start?.after, logLeftOut(req.log, 'reconciliation'));
    },
  );

  app.get(
    '/v1/ops/endpoints',
    { preHandler: readers, schema: { tags: ['ops'], summary: 'Outbound webhook endpoints, disabled and failing first, with their recent failed deliveries: a page', operationId: 'opsEndpoints',
        querystring: EndpointsQuery,
        docResponses: {
          200: ok('one page: disabled, then failing, then healthy, each by partner id and endpoint id', z.object({ partners: z.array(PartnerRef), endpoints: z.array(z.looseObject({ id: z.string(), partnerId: z.string(), url: z.string().describe(ENDPOINT_URL_DESCRIPTION), enabled: z.boolean(), failingSince: z.string().nullable(), recentFailures: z.array(z.looseObject({ at: z.string(), messageId: z.string() })) })), nextCursor: z.string().nullable().describe("`cursor` for the next page (opaque: it marks the last endpoint of this page; one whose health changed meanwhile is listed where its new health puts it); null on the last page") })),
          400: 'limit not 1-100, or a cursor this list did not give',
        },
      },
    },
    async (req) => ops.endpoints(req.principal!, req.query.limit, req.query.cursor === undefined ? undefined : ((parseTupleCursor(req.query.cursor, ENDPOINT_CURSOR) as EndpointCursor | null) ?? undefined), logLeftOut(req.log, 'delivery attempt')),
  );

  const cookie = (value: string, maxAgeSec: number, secure: boolean): string =>
    `${SESSION_COOKIE}=${value}; Path=${SESSION_COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`;

  app.post(
    '/v1/ops/session',
    {
      schema: {
        tags: ['ops'],
        summary: 'Console sign-in: checks the API key in the body and sets an HttpOnly, SameSite=Strict session cookie for /admin/queues (the session of the cookie it replaces ends)',
        operationId: 'opsSignIn',
        security: [],
        body: SessionBody,
        docResponses: { 201: ok('signed in; the session cookie is set', Me, { headers: { 'set-cookie': 'the HttpOnly session cookie' } }), 401: 'unknown, revoked or expired API key (the detail says which: `unknown API key`, `this API key was revoked`, `this API key has expired`)' },
      },
    },
    async (req, reply) => {
      const found = await app.principalOfKey(req.body.key);
      // Said as the API says it: the console answered "That key is not known." to an operator whose
      // key had expired or been revoked, who then looked for a typo.
      if ('refused' in found) throw unauthorized(keyRefusedDetail(found.refused));
      const p = found.principal;
      // The new cookie replaces the one the browser sent (the console renews its session on the Queues
      // link and hourly): that session ends now, not 8 hours later, one live session per renewal left.
      // It leaves the key's list as the new one joins it (create), so it makes room under the cap.
      // Renewals of one live cookie by one principal (two tabs at once) make one session (signIn).
      const replaced = parseCookies(req.headers.cookie)[SESSION_COOKIE] || undefined;
      const token = await sessions.signIn(p, replaced);
      void reply.header('set-cookie', cookie(token, sessions.ttlSec, req.protocol === 'https'));
      return reply.status(201).send({ id: p.id, role: p.role, partnerId: p.partnerId ?? null });
    },
  );

  app.delete('/v1/ops/session', { schema: { tags: ['ops'], summary: 'Console sign-out: ends the session and clears its cookie (cleared also on a 503, storage down: the stored session then stays valid until it expires or its key is revoked or rotated)', operationId: 'opsSignOut', security: [], docResponses: { 204: ok('signed out; the cookie is cleared', undefined, { headers: { 'set-cookie': 'the cookie, expired' } }) } } }, async (req, reply) => {
    const token = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    // The cookie is cleared whatever becomes of the stored session: set after the delete, a sign-out
    // while Redis was down (503) left the browser holding it, and /admin/queues opened again from that
    // browser, signed in, once Redis was back (for the rest of the session's 8 hours).
    void reply.header('set-cookie', cookie('', 0, req.protocol === 'https'));
    if (token) await sessions.delete(token);
    return reply.status(204).send();
  });
};
