/**
 * Graph API plumbing shared by the Facebook simulator's parts (facebook.sim.ts: live videos and
 * comments; facebook-shopping.sim.ts: Live Shopping Tools; facebook-versions.sim.ts: versions): error
 * bodies `{"error":{"message","type","code","error_subcode","fbtrace_id"}}` (mostly HTTP 400),
 * parameters taken from query and body alike, field selection, cursor paging.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomId, type SimReply } from './sim.platform.js';
import { idRecord } from '../lib/id-record.js';

// ---------------------------------------------------------------------------------------------
// Graph errors
// ---------------------------------------------------------------------------------------------

export function graphError(
  status: number,
  code: number,
  message: string,
  extra: { type?: string; subcode?: number; userMsg?: string; transient?: boolean; headers?: Record<string, string> } = {},
): SimReply {
  return {
    status,
    ...(extra.headers ? { headers: extra.headers } : {}),
    body: {
      error: {
        message,
        type: extra.type ?? 'OAuthException',
        code,
        ...(extra.subcode !== undefined ? { error_subcode: extra.subcode } : {}),
        ...(extra.transient !== undefined ? { is_transient: extra.transient } : {}),
        ...(extra.userMsg ? { error_user_msg: extra.userMsg } : {}),
        fbtrace_id: randomId(8),
      },
    },
  };
}

export class GraphError extends Error {
  readonly reply: SimReply;
  constructor(reply: SimReply) {
    super(JSON.stringify(reply.body));
    this.reply = reply;
  }
}

export const invalidParam = (message: string, subcode?: number, userMsg?: string): GraphError =>
  new GraphError(graphError(400, 100, message, { ...(subcode !== undefined ? { subcode } : {}), ...(userMsg ? { userMsg } : {}) }));

export const noSuchObject = (id: string, verb: 'get' | 'post' | 'delete'): GraphError =>
  invalidParam(
    `Unsupported ${verb} request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
    33,
  );

export function expiredToken(): SimReply {
  return {
    ...graphError(400, 190, 'Error validating access token: Session has expired on Tuesday, 24-Nov-26 10:00:00 PST.', { subcode: 463 }),
    headers: { 'www-authenticate': 'OAuth "Facebook Platform" "invalid_token" "Error validating access token: Session has expired"' },
  };
}

export function invalidToken(): SimReply {
  return {
    ...graphError(400, 190, 'Invalid OAuth access token - Cannot parse access token'),
    headers: { 'www-authenticate': 'OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token"' },
  };
}

export function send(reply: FastifyReply, r: SimReply): FastifyReply {
  reply.code(r.status);
  if (r.headers) void reply.headers(r.headers);
  return reply.send(r.body);
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

export type Params = Record<string, string | undefined>;

/** Graph takes parameters from the query and the body alike (form, or JSON). */
export function paramsOf(req: FastifyRequest): Params {
  const out: Params = idRecord(); // parameter names come from the client
  for (const [k, v] of Object.entries(req.query as Record<string, string | string[] | undefined>)) out[k] = Array.isArray(v) ? v[0] : v;
  if (req.body && typeof req.body === 'object' && !Array.isArray(req.body)) {
    for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) {
      out[k] = typeof v === 'string' ? v : v === undefined || v === null ? undefined : JSON.stringify(v);
    }
  }
  return out;
}

export function bool(v: string | undefined): boolean {
  return v === 'true' || v === '1';
}

/** `event_params`: a bare unix time (the scheduling guide) or `{"start_time": unix}` (the reference). */
export function startTimeOf(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim());
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (v && typeof v === 'object' && 'start_time' in v) {
      const st = (v as { start_time: unknown }).start_time;
      if (typeof st === 'number' && Number.isInteger(st)) return st;
      if (typeof st === 'string' && /^\d+$/.test(st)) return Number(st);
    }
  } catch {
    // fall through
  }
  throw invalidParam('(#100) Param event_params must be a unix timestamp or an object with start_time');
}

export function fieldsOf(p: Params, allowed: Set<string>, defaults: string[], node = 'LiveVideo'): string[] {
  const raw = p.fields;
  if (!raw) return defaults;
  const fields = raw.split(',').map((f) => f.trim()).filter(Boolean);
  for (const f of fields) {
    if (!allowed.has(f)) throw invalidParam(`(#100) Tried accessing nonexisting field (${f}) on node type (${node})`);
  }
  return fields.includes('id') ? fields : ['id', ...fields];
}

export function iso(ms: number): string {
  // Graph's time format: 2026-11-24T18:00:00+0000
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+0000');
}

export function numericId(): string {
  return String(1_000_000_000_000_000 + Math.floor(Math.random() * 8_999_999_999_999_999)).slice(0, 16);
}

/**
 * One page of a list. Graph's cursors mark an item ("unless the item is deleted, the cursor will always
 * point to the same part of the list"): with `seqOf` (a list in descending seq order, newest first)
 * they do here too, so items added at the top or deleted while a client pages neither repeat nor skip
 * any; without it a cursor is an offset.
 */
export function pageOfList<T>(items: T[], p: Params, defLimit: number, seqOf?: (item: T) => number): { data: T[]; paging?: Record<string, unknown> } {
  const limit = p.limit === undefined ? defLimit : Number(p.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidParam('(#100) limit must be between 1 and 100');
  let offset = 0;
  if (p.after) {
    const m = /^([os])(\d+)$/.exec(Buffer.from(p.after, 'base64url').toString('utf8'));
    if (!m?.[2] || (m[1] === 's') !== (seqOf !== undefined)) throw invalidParam('(#100) Invalid cursor');
    const n = Number(m[2]);
    if (seqOf) {
      const i = items.findIndex((item) => seqOf(item) < n);
      offset = i < 0 ? items.length : i;
    } else {
      offset = n;
    }
  }
  const data = items.slice(offset, offset + limit);
  if (data.length === 0) return { data };
  const cursors = seqOf
    ? { before: Buffer.from(`s${seqOf(data[0]!)}`).toString('base64url'), after: Buffer.from(`s${seqOf(data.at(-1)!)}`).toString('base64url') }
    : { before: Buffer.from(`o${offset}`).toString('base64url'), after: Buffer.from(`o${offset + data.length}`).toString('base64url') };
  const more = offset + data.length < items.length;
  return { data, paging: { cursors, ...(more ? { next: `https://graph.facebook.com/next?after=${cursors.after}` } : {}) } };
}

/** `(#200)`: the token lacks a permission the call needs. */
export const permissionDenied = (permission: string): GraphError =>
  new GraphError(graphError(403, 200, `(#200) Requires ${permission} permission to manage the object`));
