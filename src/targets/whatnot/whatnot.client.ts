/**
 * Low-level client of the Whatnot Seller API v2 (`https://api.whatnot.com/seller-api/rest/v2`) for one
 * seller token. Every call takes a slot from the shared limiter first and reads the RateLimit-* headers
 * of every answer: when the window is used up (`RateLimit-Remaining: 0`) every worker is kept away
 * until `RateLimit-Reset`, before Whatnot has to answer 429. Errors are problem+json → typed errors.
 * Two kinds of credentials (developers.whatnot.com, getting-started/authentication):
 * - a personal access token (`wn_pat_tk_…`, made by the seller, for their own shop; it may never
 *   expire): nothing to refresh, a 401 means the operator must issue a new one;
 * - an app the seller connected through OAuth (Syndicast as a third-party service): `clientId`,
 *   `clientSecret` and the seller's `refreshToken` (refresh tokens last a year). Access tokens issued
 *   to an app expire: the access token is had from `POST {seller-api}/rest/oauth/token`
 *   (grant_type=refresh_token, as the PHP League provider for Whatnot sends it), cached for every
 *   worker (encrypted, src/targets/oauth2.ts), refreshed shortly before it expires and once more when
 *   Whatnot answers 401 (expired or revoked early), and the call retried once.
 * Nothing here logs the token or bodies.
 */
import type { AxiosInstance, AxiosResponse } from 'axios';
import { z } from 'zod';
import type { AdapterContext } from '../target.adapter.js';
import { asUnsent, PermanentError, malformedResponse } from '../target.errors.js';
import { mapFailure, mapTokenFailure, proactiveBlock, type MappedFailure } from './whatnot.errors.js';
import { accessTokens, networkFailureOf, refreshAccessToken } from '../oauth2.js';
import { parseTargetCredentials, trimSlash } from '../target.credentials.js';
import { adviceTarget } from '../credentials-advice.js';
import { raiseMapped } from '../target.failure.js';
import { createPlatformHttp } from '../platform-http.js';

const WHATNOT_API = 'https://api.whatnot.com/seller-api/rest/v2';
/** The OAuth endpoints sit beside the API's version: `…/seller-api/rest/oauth/token`. */
const WHATNOT_OAUTH = 'https://api.whatnot.com/seller-api/rest';
/**
 * The OAuth base for a target's API base: beside the version, so `…/seller-api/rest/v2` gives
 * `…/seller-api/rest` (the token URL is `…/rest/oauth/token`, not `…/rest/v2/oauth/token`); a base
 * without a version (the simulator's) is its own OAuth base.
 */
export function whatnotOAuthBase(baseUrl: string | undefined | null): string {
  return baseUrl ? trimSlash(baseUrl).replace(/\/v2$/i, '') : WHATNOT_OAUTH;
}
/** Refresh a little early so a token never expires between our check and Whatnot's. */
const TOKEN_EARLY_REFRESH_MS = 60_000;

const CredentialFields = z.object({
  /** A personal access token, or (with the OAuth fields) a current access token of the app, used until Whatnot refuses it. */
  accessToken: z.string().min(1).optional(),
  /** OAuth: the app's client id and secret, and the refresh token the seller's authorisation gave. */
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  refreshToken: z.string().min(1).optional(),
  /** Standard Webhooks secret (`whsec_...`) of the app's webhook subscription; needed for order webhooks. */
  webhookSecret: z.string().min(1).optional(),
});
/** The credential fields Syndicast knows: advice texts name no other key (credentials-advice.ts). */
export const CREDENTIAL_FIELDS: readonly string[] = Object.keys(CredentialFields.shape);
/** Its two kinds of credentials (adviceTarget): an app the seller connected, or a personal access token. */
export const CREDENTIAL_KINDS: readonly (readonly string[])[] = [['clientId', 'clientSecret', 'refreshToken'], ['accessToken']];
const CredentialsSchema = CredentialFields.refine((c) => (c.clientId !== undefined && c.clientSecret !== undefined && c.refreshToken !== undefined) || (c.clientId === undefined && c.clientSecret === undefined && c.refreshToken === undefined && c.accessToken !== undefined), {
    path: ['accessToken'],
  });
export type WhatnotCredentials = z.infer<typeof CredentialsSchema>;

export interface WhatnotCall<T> {
  method: 'GET' | 'POST' | 'DELETE';
  /** e.g. `/shows/{id}` (relative to the API base). */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** What the call is for, for error messages ("add product X to show Y"). */
  what: string;
  /** The parameter naming the product a pin is about (whatnot.errors.ts FailureContext.item). */
  item?: string;
  schema: z.ZodType<T>;
  /** What a 404 answers instead of an error, for a call whose thing may just not be there (an order's items). */
  notFound?: T;
}

export interface WhatnotClient {
  readonly credentials: WhatnotCredentials;
  call<T>(req: WhatnotCall<T>): Promise<T>;
}

function parseCredentials(raw: Record<string, string>): WhatnotCredentials | PermanentError {
  return parseTargetCredentials(
    CredentialsSchema,
    raw,
    'Whatnot',
    'either accessToken (a personal access token) or clientId, clientSecret and refreshToken (an app the seller connected; accessToken optional); webhookSecret is optional',
  );
}

export function createWhatnotClient(ctx: AdapterContext, now: () => number = Date.now): WhatnotClient {
  const log = ctx.log.child({ module: 'whatnot.client', targetId: ctx.target.id });
  const base = trimSlash(ctx.target.baseUrl ?? WHATNOT_API);
  const oauthBase = whatnotOAuthBase(ctx.target.baseUrl);
  const creds = parseCredentials(ctx.target.credentials);
  const target = adviceTarget(ctx.target, CREDENTIAL_FIELDS, CREDENTIAL_KINDS);
  const http: AxiosInstance = createPlatformHttp(ctx, { timeout: ctx.timeoutMs, validateStatus: () => true, maxRedirects: 0 });

  function credentials(): WhatnotCredentials {
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
      url: `${oauthBase}/oauth/token`,
      endpoint: 'Whatnot OAuth token endpoint',
      clientId: c.clientId ?? '',
      clientSecret: c.clientSecret ?? '',
      refreshToken: c.refreshToken ?? '',
      mapFailure: (failure) => mapTokenFailure(failure, now(), target),
      // Only invalid_grant says the refresh token is dead (invalid_client: the app's secret, not the token).
      deadGrant: (mapped) => mapped.error.reason === 'invalid_grant',
    });
    return fresh.accessToken;
  }

  const tokens = accessTokens(ctx, refreshNow, { now, earlyMs: TOKEN_EARLY_REFRESH_MS, given: () => credentials().accessToken });
  /** An app's credentials (OAuth): its access tokens expire and are refreshed. */
  const isApp = (c: WhatnotCredentials): boolean => c.refreshToken !== undefined;

  async function send(req: WhatnotCall<unknown>, token: string): Promise<AxiosResponse> {
    await ctx.limiter.acquire();
    const started = now();
    let res: AxiosResponse;
    try {
      res = await http.request({
        method: req.method,
        url: `${base}${req.path}`,
        params: Object.fromEntries(Object.entries(req.query ?? {}).filter(([, v]) => v !== undefined)),
        ...(req.body !== undefined ? { data: req.body } : {}),
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      });
    } catch (err) {
      // Only the code and message leave here: the AxiosError carries the bearer token.
      const failure = networkFailureOf(err);
      log.debug({ method: req.method, path: req.path, code: failure.kind === 'network' ? failure.code : undefined }, 'whatnot api call failed');
      return raise(mapFailure(failure, now(), { what: req.what, target }));
    }
    log.debug({ method: req.method, path: req.path, status: res.status, ms: now() - started }, 'whatnot api call');

    const block = proactiveBlock(res.headers as Record<string, string | undefined>, now());
    if (block && res.status !== 429) await ctx.limiter.blockUntil(block.untilMs, block.reason);
    return res;
  }

  const neverSent = (err: unknown): never => {
    throw asUnsent(err);
  };

  async function call<T>(req: WhatnotCall<T>): Promise<T> {
    const c = credentials();
    const app = isApp(c);
    // A token that could not be had (the refresh failed) means the request was never sent.
    const token = app ? await tokens.current().catch(neverSent) : (c.accessToken ?? '');
    let res = await send(req, token);
    if (res.status === 401 && app) {
      // The app's access token expired (or was revoked early): one fresh token, one more try.
      await tokens.rejected(token);
      res = await send(req, await tokens.current().catch(neverSent));
    }

    if (res.status === 404 && req.notFound !== undefined) {
      log.info({ method: req.method, path: req.path, status: res.status }, 'whatnot api: not found (taken as none)');
      return req.notFound;
    }
    if (res.status < 200 || res.status >= 300) {
      const retryAfter = res.headers['retry-after'];
      const mapped = mapFailure({ kind: 'http', status: res.status, body: res.data, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined }, now(), {
        what: req.what,
        target,
        refreshed: app,
        app,
        ...(req.item !== undefined ? { item: req.item } : {}),
      });
      log.info({ method: req.method, path: req.path, status: res.status, reason: mapped.error.reason }, 'whatnot api error');
      return raise(mapped);
    }
    const parsed = req.schema.safeParse(res.data);
    if (!parsed.success) throw malformedResponse(`Whatnot ${req.method} ${req.path}`, parsed.error);
    return parsed.data;
  }

  return {
    get credentials(): WhatnotCredentials {
      return credentials();
    },
    call,
  };
}
