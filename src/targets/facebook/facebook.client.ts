/**
 * Low-level Graph API client for one Facebook Page target. The Page access token goes in the
 * `Authorization` header (never in the URL, which ends up in logs); POST parameters are sent
 * form-encoded, GET/DELETE parameters in the query, as the Graph API takes them. Every request takes a
 * limiter slot (Facebook has no per-second window for Pages; the limiter holds the block set after a
 * throttling error: an app-level one holds every call, a Business Use Case one only the calls of that
 * use case, GraphCall.useCase). Writes inside `op.once` take their slot with the intent's start
 * (OnceOptions.limitedRequest; see bambuser.client.ts for why). Responses are parsed with zod; failures
 * become TargetErrors.
 *
 * The Graph version comes from the settings (FACEBOOK_GRAPH_VERSION). A call to an expired version is
 * not refused: Graph serves it with the oldest live version ("defaulted to the next oldest, usable
 * version", developers.facebook.com/docs/apps/versions) and names the version that answered in the
 * `facebook-api-version` response header. Behaviour can change under us without any error, so the
 * client warns (once per adapter) when the answering version is not the one it asked for.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { AdapterContext } from '../target.adapter.js';
import { PermanentError, malformedResponse } from '../target.errors.js';
import { PAGES_USE_CASE, mapFacebookFailure, type FacebookFailure, type MappedFailure } from './facebook.errors.js';
import { adviceTarget } from '../credentials-advice.js';
import { parseTargetCredentials } from '../target.credentials.js';
import { raiseMapped } from '../target.failure.js';
import { createPlatformHttp } from '../platform-http.js';
import { idRecord } from '../../lib/id-record.js';

const GRAPH_HOST = 'https://graph.facebook.com';

const CredentialsSchema = z.object({
  pageId: z.string().regex(/^\d+$/, 'a numeric Page id'),
  pageAccessToken: z.string().min(1),
});
/** The credential fields Syndicast knows: advice texts name no other key (credentials-advice.ts). */
export const CREDENTIAL_FIELDS: readonly string[] = Object.keys(CredentialsSchema.shape);
export type FacebookCredentials = z.infer<typeof CredentialsSchema>;

export type ParamValue = string | number | boolean | undefined;

export interface GraphCall<T> {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path after the version, e.g. `/123/live_videos` */
  path: string;
  params?: Record<string, ParamValue>;
  schema: z.ZodType<T>;
  preReserved?: boolean;
  /** The pinned product this call names (facebook.errors.ts FailureContext.pinOf). */
  pinOf?: string;
  /** The Business Use Case the call counts under (default `pages`): its throttle holds only such calls. */
  useCase?: string;
  /**
   * Other use cases whose blocks hold this call too (Live Shopping's `pages`: which use case Graph
   * counts it under is assumed, so it waits on both).
   */
  waitsOn?: readonly string[];
}

export interface FacebookClient {
  readonly credentials: FacebookCredentials;
  /** The Graph version every call names, e.g. `v27.0`. */
  readonly version: string;
  call<T>(req: GraphCall<T>): Promise<T>;
  /** A `preReserved` call's slot (a Page call: the `pages` use case). */
  reserve(): Promise<void>;
}

function parseCredentials(raw: Record<string, string>): FacebookCredentials | PermanentError {
  return parseTargetCredentials(CredentialsSchema, raw, 'Facebook', 'pageId (numeric) and pageAccessToken are required');
}

function failureOf(err: unknown): FacebookFailure {
  if (axios.isAxiosError(err)) return { kind: 'network', code: err.code, message: err.message };
  throw err;
}

function headerRecord(res: AxiosResponse): Record<string, string | undefined> {
  const out = idRecord<string | undefined>(); // header names come from the platform
  for (const [k, v] of Object.entries(res.headers as Record<string, unknown>)) out[k.toLowerCase()] = typeof v === 'string' ? v : undefined;
  return out;
}

function defined(params: Record<string, ParamValue> | undefined): Record<string, string> {
  const out = idRecord<string>();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
}

export function createFacebookClient(ctx: AdapterContext, now: () => number = Date.now): FacebookClient {
  const log = ctx.log.child({ module: 'facebook.client', targetId: ctx.target.id });
  const advice = adviceTarget(ctx.target, CREDENTIAL_FIELDS);
  const creds = parseCredentials(ctx.target.credentials);
  const version = ctx.settings.facebookGraphVersion;
  const base = `${(ctx.target.baseUrl ?? GRAPH_HOST).replace(/\/+$/, '')}/${version}`;
  let warnedVersion: string | undefined;
  const http: AxiosInstance = createPlatformHttp(ctx, { timeout: ctx.timeoutMs, validateStatus: () => true, maxRedirects: 0 });

  function credentials(): FacebookCredentials {
    if (creds instanceof PermanentError) throw creds;
    return creds;
  }

  const raise = (mapped: MappedFailure): Promise<never> => raiseMapped(ctx.limiter, mapped);

  async function call<T>(req: GraphCall<T>): Promise<T> {
    const { pageAccessToken } = credentials();
    const useCase = req.useCase ?? PAGES_USE_CASE;
    if (!req.preReserved) await ctx.limiter.acquire(1, [useCase, ...(req.waitsOn ?? [])]);
    const what = `${req.method} ${req.path}`;
    const failureCtx = { partnerId: ctx.target.partnerId, targetId: ctx.target.id, advice, what, useCase, ...(req.pinOf !== undefined ? { pinOf: req.pinOf } : {}) };
    const params = defined(req.params);
    const form = req.method === 'POST';
    const started = now();
    let res: AxiosResponse;
    try {
      res = await http.request({
        method: req.method,
        url: `${base}${req.path}`,
        params: form ? undefined : params,
        data: form ? new URLSearchParams(params).toString() : undefined,
        headers: {
          authorization: `Bearer ${pageAccessToken}`,
          accept: 'application/json',
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
      });
    } catch (err) {
      const failure = failureOf(err);
      log.debug({ method: req.method, path: req.path, code: failure.kind === 'network' ? failure.code : undefined }, 'graph api call failed');
      return raise(mapFacebookFailure(failure, now(), failureCtx));
    }
    log.debug({ method: req.method, path: req.path, status: res.status, ms: now() - started }, 'graph api call');
    const served = headerRecord(res)['facebook-api-version'];
    if (served && served !== version && served !== warnedVersion) {
      warnedVersion = served;
      log.warn(
        { requestedVersion: version, servedVersion: served },
        `Graph API ${version} is no longer served: Facebook answered with ${served}. Set FACEBOOK_GRAPH_VERSION to a current version (https://developers.facebook.com/docs/graph-api/changelog)`,
      );
    }
    if (res.status < 200 || res.status >= 300) {
      const mapped = mapFacebookFailure({ kind: 'http', status: res.status, body: res.data, headers: headerRecord(res) }, now(), failureCtx);
      log.info({ method: req.method, path: req.path, status: res.status, reason: mapped.error.reason }, 'graph api error');
      return raise(mapped);
    }
    const parsed = req.schema.safeParse(res.data);
    if (!parsed.success) throw malformedResponse(`Facebook ${what}`, parsed.error);
    return parsed.data;
  }

  return {
    get credentials(): FacebookCredentials {
      return credentials();
    },
    version,
    call,
    reserve: () => ctx.limiter.acquire(1, PAGES_USE_CASE),
  };
}
