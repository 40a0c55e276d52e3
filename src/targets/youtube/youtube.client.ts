/**
 * Low-level client of the YouTube Data API v3 and Google's OAuth token endpoint for one target account.
 * API calls go out as plain node:http(s) JSON requests (platform-http.ts createPlatformJson), the token
 * endpoint through one axios instance per adapter; every call takes its quota units from the shared limiter first, uses a
 * cached access token (refreshed when it expires within a minute), retries once after a 401 with a fresh
 * token, parses the response with zod, and turns every failure into a TargetError.
 * It never logs tokens, credentials or request bodies.
 */
import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import type { AdapterContext } from '../target.adapter.js';
import { asUnsent, PermanentError, malformedResponse } from '../target.errors.js';
import { mapApiFailure, mapTokenFailure, type MappedFailure } from './youtube.errors.js';
import { parseTargetCredentials, trimSlash } from '../target.credentials.js';
import { adviceTarget } from '../credentials-advice.js';
import { raiseMapped } from '../target.failure.js';
import { accessTokens, httpFailureOf as httpFailure, isSuccess, networkFailureOf as failureOf, refreshAccessToken, type HttpAnswer } from '../oauth2.js';
import { createPlatformHttp, createPlatformJson, withQuery } from '../platform-http.js';

/**
 * Quota units per call, as each method's reference states them ("Quota impact"): inserts, updates,
 * bind, transition and delete 50; liveChatMessages.insert 20 and liveChatMessages.list 5
 * (developers.google.com/youtube/data/live/reference/rest/v3/liveChatMessages/insert, …/list); lists 1.
 */
export const QUOTA_COST = { write: 50, list: 1, chatInsert: 20, chatList: 5 } as const;

const GOOGLE_API = 'https://www.googleapis.com';
const GOOGLE_OAUTH = 'https://oauth2.googleapis.com';
/** Refresh a little early so a token never expires between our check and Google's. */
const TOKEN_EARLY_REFRESH_MS = 60_000;

const CredentialsSchema = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  refreshToken: z.string().min(1),
  privacyStatus: z.enum(['public', 'unlisted', 'private']).default('unlisted'),
});
/** The credential fields Syndicast knows: advice texts name no other key (credentials-advice.ts). */
export const CREDENTIAL_FIELDS: readonly string[] = Object.keys(CredentialsSchema.shape);
export type YoutubeCredentials = z.infer<typeof CredentialsSchema>;

export type QueryValue = string | number | boolean | undefined;

export interface ApiCall<T> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** e.g. `/youtube/v3/liveBroadcasts` */
  path: string;
  query: Record<string, QueryValue>;
  body?: unknown;
  /** Quota units, taken from the limiter before the request goes out. */
  cost: number;
  schema: z.ZodType<T>;
  /** The pinned product this call's text is about (the pin's chat message): its refusal is that pin's alone (youtube.errors.ts). */
  pinOf?: string;
}

export interface YoutubeClient {
  readonly credentials: YoutubeCredentials;
  call<T>(req: ApiCall<T>): Promise<T>;
  /** The OAuth scopes the last token refresh of this client named; undefined before one, or when Google did not say. */
  grantedScopes(): readonly string[] | undefined;
}

function parseCredentials(raw: Record<string, string>): YoutubeCredentials | PermanentError {
  return parseTargetCredentials(CredentialsSchema, raw, 'YouTube', 'clientId, clientSecret and refreshToken are required; privacyStatus is public, unlisted or private');
}

export function createYoutubeClient(ctx: AdapterContext, now: () => number = Date.now): YoutubeClient {
  const log = ctx.log.child({ module: 'youtube.client', targetId: ctx.target.id });
  const apiBase = trimSlash(ctx.target.baseUrl ?? GOOGLE_API);
  const oauthBase = trimSlash(ctx.target.baseUrl ?? GOOGLE_OAUTH);
  const creds = parseCredentials(ctx.target.credentials);
  const http: AxiosInstance = createPlatformHttp(ctx, {
    timeout: ctx.timeoutMs,
    // Statuses are interpreted below; redirects are refused (a redirect could leak the bearer token).
    validateStatus: () => true,
    maxRedirects: 0,
  });
  // API calls (every sync makes them) go without axios: same guard, deadline, timeout, no redirects.
  const json = createPlatformJson(ctx, ctx.timeoutMs);
  let scopes: readonly string[] | undefined;

  function credentials(): YoutubeCredentials {
    if (creds instanceof PermanentError) throw creds;
    return creds;
  }

  const raise = (mapped: MappedFailure): Promise<never> => raiseMapped(ctx.limiter, mapped);

  async function refreshNow(): Promise<string> {
    const c = credentials();
    const fresh = await refreshAccessToken({
      ctx,
      http,
      log,
      now,
      url: `${oauthBase}/token`,
      endpoint: 'Google OAuth token endpoint',
      clientId: c.clientId,
      clientSecret: c.clientSecret,
      refreshToken: c.refreshToken,
      mapFailure: (failure) => mapTokenFailure(failure, now(), adviceTarget(ctx.target, CREDENTIAL_FIELDS)),
      deadGrant: (mapped) => mapped.error.reason === 'invalid_grant',
    });
    scopes = fresh.scopes;
    return fresh.accessToken;
  }

  const { current: accessToken, rejected } = accessTokens(ctx, refreshNow, { now, earlyMs: TOKEN_EARLY_REFRESH_MS });

  async function send<T>(req: ApiCall<T>, token: string): Promise<HttpAnswer> {
    await ctx.limiter.acquire(req.cost);
    const started = now();
    try {
      const res = await json({
        method: req.method,
        url: withQuery(`${apiBase}${req.path}`, req.query),
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
      // (The line's object only when debug lines are written: every sync makes these calls.)
      if (log.isLevelEnabled('debug')) log.debug({ method: req.method, path: req.path, status: res.status, ms: now() - started }, 'youtube api call');
      return res;
    } catch (err) {
      const failure = failureOf(err);
      if (log.isLevelEnabled('debug')) log.debug({ method: req.method, path: req.path, code: failure.kind === 'network' ? failure.code : undefined }, 'youtube api call failed');
      return raise(mapApiFailure(failure, now()));
    }
  }

  const neverSent = (err: unknown): never => {
    throw asUnsent(err);
  };

  async function call<T>(req: ApiCall<T>): Promise<T> {
    credentials();
    // A token that could not be had (the refresh failed, for a while or for good) means the request
    // was never sent: `unsent`, whatever the error's class, so a step of one request is forgotten
    // rather than left for a settle wait and a lookup.
    const token = await accessToken().catch(neverSent);
    let res = await send(req, token);
    if (res.status === 401) {
      // The cached token was revoked or expired early: one fresh token, one more try.
      await rejected(token);
      res = await send(req, await accessToken().catch(neverSent));
    }
    if (!isSuccess(res)) {
      const mapped = mapApiFailure(httpFailure(res), now(), req.pinOf);
      log.info({ method: req.method, path: req.path, status: res.status, reason: mapped.error.reason }, 'youtube api error');
      return raise(mapped);
    }
    const parsed = req.schema.safeParse(res.data);
    if (!parsed.success) throw malformedResponse(`YouTube ${req.method} ${req.path}`, parsed.error);
    return parsed.data;
  }

  return {
    get credentials(): YoutubeCredentials {
      return credentials();
    },
    call,
    grantedScopes: () => scopes,
  };
}
