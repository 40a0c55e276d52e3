/**
 * Low-level client of the Bambuser Live Video Shopping REST API for one target (one API key).
 * `Authorization: Token <apiKey>` (not Bearer). Bambuser allows 5 requests per 10 s moving window per
 * key, shared by every worker through the Redis limiter (PLATFORM_LIMITS.bambuser): every request
 * takes a slot first. A non-idempotent write that runs inside `op.once` takes its slot with the
 * intent's start (OnceOptions.limitedRequest): a full window then costs nothing, instead of leaving a
 * "started" intent whose next attempt must spend a rate-limited list request on recovery.
 * Responses are parsed with zod; failures become TargetErrors. Never logs the key or bodies.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { AdapterContext } from '../target.adapter.js';
import { PermanentError, malformedResponse } from '../target.errors.js';
import { mapBambuserFailure, type BambuserFailure, type MappedFailure } from './bambuser.errors.js';
import { adviceTarget } from '../credentials-advice.js';
import { parseTargetCredentials } from '../target.credentials.js';
import { raiseMapped } from '../target.failure.js';
import { createPlatformHttp } from '../platform-http.js';

const GLOBAL_API = 'https://liveshopping-api.bambuser.com';
const EU_API = 'https://liveshopping-api-eu.bambuser.com';
/** The media type Bambuser documents for v1 responses. */
const ACCEPT = 'application/vnd.bambuser.v1+json, application/json';

const CredentialsSchema = z.object({
  apiKey: z.string().min(1),
  /** The BamHub workspace's region: keys only work on their own region's host. */
  region: z.enum(['global', 'eu']).default('global'),
  /** The custom header registered with the webhook (POST /webhooks {headers}) and its value. */
  webhookHeaderName: z.string().min(1).default('x-webhook-secret'),
  webhookHeaderValue: z.string().min(1).optional(),
  /** Where viewers watch (the merchant page with the player), e.g. `https://shop.example/live?autoplayLiveShopping={showId}`. */
  showUrlTemplate: z.string().includes('{showId}').optional(),
});
/** The credential fields Syndicast knows: advice texts name no other key (credentials-advice.ts). */
export const CREDENTIAL_FIELDS: readonly string[] = Object.keys(CredentialsSchema.shape);
export type BambuserCredentials = z.infer<typeof CredentialsSchema>;

export type QueryValue = string | number | boolean | undefined;

export interface ApiCall<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** e.g. `/v1/shows` */
  path: string;
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** The scope the endpoint requires (named in the 403 message). */
  scope: string;
  schema: z.ZodType<T>;
  /** The pinned product this call carries (its id as sent): a validation refusal is that pin's alone (FailureContext.pinOf). */
  pinOf?: string;
  /** An unpaged answer's bound on its JSON values (MAX_REPORT_VALUES); MAX_RESPONSE_VALUES when unset. */
  maxJsonValues?: number;
}

export interface BambuserClient {
  readonly credentials: BambuserCredentials;
  call<T>(req: ApiCall<T>): Promise<T>;
}

function parseCredentials(raw: Record<string, string>): BambuserCredentials | PermanentError {
  return parseTargetCredentials(CredentialsSchema, raw, 'Bambuser', 'apiKey is required; region is global or eu; showUrlTemplate must contain {showId}');
}

function failureOf(err: unknown): BambuserFailure {
  // Only code and message leave here: the AxiosError carries the request headers (the key).
  if (axios.isAxiosError(err)) return { kind: 'network', code: err.code, message: err.message };
  throw err;
}

export function createBambuserClient(ctx: AdapterContext, now: () => number = Date.now): BambuserClient {
  const log = ctx.log.child({ module: 'bambuser.client', targetId: ctx.target.id });
  const advice = adviceTarget(ctx.target, CREDENTIAL_FIELDS);
  const creds = parseCredentials(ctx.target.credentials);
  const apiBase = (ctx.target.baseUrl ?? (creds instanceof PermanentError || creds.region === 'global' ? GLOBAL_API : EU_API)).replace(/\/+$/, '');
  const http: AxiosInstance = createPlatformHttp(ctx, {
    timeout: ctx.timeoutMs,
    validateStatus: () => true,
    // A redirect could carry the Token header to another host.
    maxRedirects: 0,
  });

  function credentials(): BambuserCredentials {
    if (creds instanceof PermanentError) throw creds;
    return creds;
  }

  const raise = (mapped: MappedFailure): Promise<never> => raiseMapped(ctx.limiter, mapped);

  async function call<T>(req: ApiCall<T>): Promise<T> {
    const { apiKey } = credentials();
    await ctx.limiter.acquire();
    const what = `${req.method} ${req.path}`;
    const failureCtx = { partnerId: ctx.target.partnerId, targetId: ctx.target.id, advice, scope: req.scope, what, ...(req.pinOf !== undefined ? { pinOf: req.pinOf } : {}) };
    const started = now();
    let res: AxiosResponse;
    try {
      res = await http.request({
        method: req.method,
        url: `${apiBase}${req.path}`,
        params: req.query,
        data: req.body,
        ...(req.maxJsonValues !== undefined ? { maxJsonValues: req.maxJsonValues } : {}),
        headers: {
          authorization: `Token ${apiKey}`,
          accept: ACCEPT,
          ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
      });
    } catch (err) {
      const failure = failureOf(err);
      log.debug({ method: req.method, path: req.path, code: failure.kind === 'network' ? failure.code : undefined }, 'bambuser api call failed');
      return raise(mapBambuserFailure(failure, now(), failureCtx));
    }
    log.debug({ method: req.method, path: req.path, status: res.status, ms: now() - started }, 'bambuser api call');
    if (res.status < 200 || res.status >= 300) {
      const retryAfter = res.headers['retry-after'];
      const mapped = mapBambuserFailure(
        { kind: 'http', status: res.status, body: res.data, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined },
        now(),
        failureCtx,
      );
      log.info({ method: req.method, path: req.path, status: res.status, reason: mapped.error.reason }, 'bambuser api error');
      return raise(mapped);
    }
    const parsed = req.schema.safeParse(res.status === 204 ? undefined : res.data);
    if (!parsed.success) throw malformedResponse(`Bambuser ${what}`, parsed.error);
    return parsed.data;
  }

  return {
    get credentials(): BambuserCredentials {
      return credentials();
    },
    call,
  };
}
