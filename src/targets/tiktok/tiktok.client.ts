/**
 * Low-level client of the TikTok Shop Open API for one shop authorisation. Every call is signed
 * (tiktok.sign.ts) with a fresh timestamp, carries `app_key`, `timestamp`, `shop_cipher` and `sign` in
 * the query and the access token in `x-tts-access-token`, takes a slot from the shared limiter first,
 * and is judged by the envelope `code`, never by the HTTP status alone. An access token TikTok calls
 * expired or invalid (105002; 101000 and a 36009004 naming the access token; 105001, 36004001) is
 * refreshed once and the call retried once.
 * Tokens: GET {auth}/api/v2/token/refresh (unsigned); `access_token_expire_in` is an absolute unix time.
 * The refresh token TikTok returns is cached with the access token and preferred over the one in the
 * credentials (TikTok may rotate it); after a refused refresh token the cache is dropped (not after a
 * refused app secret: tiktok.errors.ts tokenRefusal).
 * Nothing here logs tokens, secrets, signatures or bodies.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { AdapterContext } from '../target.adapter.js';
import { asUnsent, PermanentError, malformedResponse } from '../target.errors.js';
import { CODE, isTokenRejection, mapApiFailure, mapTokenFailure, type MappedFailure, type TiktokFailure } from './tiktok.errors.js';
import { EnvelopeSchema, TokenDataSchema, type Envelope } from './tiktok.schemas.js';
import { signRequest } from './tiktok.sign.js';
import { parseTargetCredentials, trimSlash } from '../target.credentials.js';
import { adviceTarget } from '../credentials-advice.js';
import { raiseMapped } from '../target.failure.js';
import { accessTokens, whileRefreshing } from '../oauth2.js';
import { createPlatformHttp } from '../platform-http.js';

const OPEN_API = 'https://open-api.tiktokglobalshop.com';
const AUTH_API = 'https://auth.tiktok-shops.com';
/** Access tokens live about a week; refresh a little early so one never expires mid-call. */
const TOKEN_EARLY_REFRESH_MS = 5 * 60_000;

const CredentialsSchema = z.object({
  appKey: z.string().min(1),
  appSecret: z.string().min(1),
  refreshToken: z.string().min(1),
  shopCipher: z.string().min(1),
  /** Optional: a current access token, used until TikTok says it expired. */
  accessToken: z.string().min(1).optional(),
  /** Optional: the TikTok @username that goes live, for the mirror's watch URL. */
  creatorUsername: z
    .string()
    .regex(/^@?[A-Za-z0-9._]{1,64}$/)
    .optional(),
});
/** The credential fields Syndicast knows: advice texts name no other key (credentials-advice.ts). */
export const CREDENTIAL_FIELDS: readonly string[] = Object.keys(CredentialsSchema.shape);
export type TiktokCredentials = z.infer<typeof CredentialsSchema>;

export type QueryValue = string | number | undefined;

export interface TiktokCall<T> {
  method: 'GET' | 'POST';
  /** API path, e.g. `/affiliate_seller/202410/orders/search` (what is signed). */
  path: string;
  query?: Record<string, QueryValue>;
  /** JSON body; serialised once, and that exact text is signed and sent. */
  body?: unknown;
  /** A shop-independent call (Get Authorized Shops): sent without shop_cipher. */
  shopless?: boolean;
  /** Scope the call needs (named when TikTok answers 105005). */
  scope: string;
  /** What the call is for, for error messages ("generate a promotion link"). */
  what: string;
  /** The parameter naming the product a pin is about (tiktok.errors.ts FailureContext.item). */
  item?: string;
  /** Schema of the envelope's `data`. */
  schema: z.ZodType<T>;
}

export interface TiktokClient {
  readonly credentials: TiktokCredentials;
  call<T>(req: TiktokCall<T>): Promise<T>;
  /**
   * The scopes the shop granted the app, as the last token refresh of this client named them
   * (`granted_scopes`); undefined when no refresh happened here or TikTok did not say.
   */
  grantedScopes(): readonly string[] | undefined;
  /**
   * A token refresh now, whatever token is at hand: the credential check exercises the refresh token
   * (what keeps a target working past its access token's week) even when an access token was given.
   */
  refreshNow(): Promise<void>;
}

function parseCredentials(raw: Record<string, string>): TiktokCredentials | PermanentError {
  return parseTargetCredentials(CredentialsSchema, raw, 'TikTok Shop', 'appKey, appSecret, refreshToken and shopCipher are required; accessToken and creatorUsername are optional');
}

function networkFailure(err: unknown): TiktokFailure {
  // Only code and message leave here: the AxiosError carries the request (token header, secrets in the URL).
  if (axios.isAxiosError(err)) return { kind: 'network', code: err.code, message: err.message };
  throw err;
}

function envelopeOf(data: unknown): Envelope | undefined {
  const parsed = EnvelopeSchema.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}

function apiFailure(res: AxiosResponse, env: Envelope | undefined): TiktokFailure {
  const retryAfter = res.headers['retry-after'];
  return { kind: 'api', status: res.status, code: env?.code, message: env?.message, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined };
}

function queryString(query: Record<string, string>): string {
  return new URLSearchParams(query).toString();
}

export function createTiktokClient(ctx: AdapterContext, now: () => number = Date.now): TiktokClient {
  const log = ctx.log.child({ module: 'tiktok.client', targetId: ctx.target.id });
  const apiBase = trimSlash(ctx.target.baseUrl ?? OPEN_API);
  const authBase = trimSlash(ctx.target.baseUrl ?? AUTH_API);
  const creds = parseCredentials(ctx.target.credentials);
  const target = adviceTarget(ctx.target, CREDENTIAL_FIELDS);
  const http: AxiosInstance = createPlatformHttp(ctx, {
    timeout: ctx.timeoutMs,
    validateStatus: () => true,
    maxRedirects: 0, // a redirect would carry the access token somewhere else
    transformRequest: [(data: unknown) => data], // the signed text goes out byte for byte
  });
  let scopes: readonly string[] | undefined;

  function credentials(): TiktokCredentials {
    if (creds instanceof PermanentError) throw creds;
    return creds;
  }

  const raise = (mapped: MappedFailure): Promise<never> => raiseMapped(ctx.limiter, mapped);

  function refreshNow(again = false): Promise<string> {
    return whileRefreshing(ctx, () => refreshOnce(again));
  }

  async function refreshOnce(again: boolean): Promise<string> {
    const c = credentials();
    const cached = await ctx.tokens.get();
    const params = {
      app_key: c.appKey,
      app_secret: c.appSecret,
      refresh_token: cached?.refreshToken ?? c.refreshToken,
      grant_type: 'refresh_token',
      // Not a parameter of TikTok's (it ignores it): the simulator takes it as the cipher of a shop
      // whose refresh token it has never seen, so a target with made-up credentials has its shop
      // listed by Get Authorized Shops (CONTRACT §9: the simulators accept any non-empty credentials).
      shop_cipher: c.shopCipher,
    };
    let res: AxiosResponse;
    try {
      res = await http.get(`${authBase}/api/v2/token/refresh?${queryString(params)}`, { headers: { accept: 'application/json' } });
    } catch (err) {
      return raise(mapTokenFailure(networkFailure(err), now(), target));
    }
    const env = envelopeOf(res.data);
    // A 2xx that is no envelope (an HTML page, `ok`: a baseUrl that is not TikTok's auth API) says
    // nothing about the refresh token: malformed, as for the API calls, not "authorisation lost".
    if (res.status >= 200 && res.status < 300 && !env) throw new PermanentError('malformed response from TikTok Shop token refresh: not an API envelope', 'malformed_response');
    if (res.status < 200 || res.status >= 300 || !env || env.code !== CODE.OK) {
      const mapped = mapTokenFailure(apiFailure(res, env), now(), target);
      log.warn({ status: res.status, code: env?.code }, 'tiktok token refresh failed');
      // Only a refused refresh token drops the record (a refused app secret, or an answer not told
      // apart, leaves it: tokenRefusal). The refresh token read here may be one another process (or
      // this one) rotated since: the record then holds the live one, which stays, and one more
      // refresh uses it (src/targets/oauth2.ts).
      if (mapped.error.reason === 'refresh_refused' && !(await ctx.tokens.dropGrant(cached?.refreshToken)) && !again) return refreshNow(true);
      return raise(mapped);
    }
    const data = TokenDataSchema.safeParse(env.data);
    if (!data.success) throw malformedResponse('TikTok Shop token refresh', data.error);
    // Stored only while the record still holds the grant refreshed here (src/store/token.repository.ts
    // refreshed): new credentials saved meanwhile keep their record, whose token is used.
    const ours = { accessToken: data.data.access_token, expiresAt: data.data.access_token_expire_in * 1000, refreshToken: data.data.refresh_token ?? params.refresh_token };
    const kept = await ctx.tokens.refreshed(ours, params.refresh_token, cached);
    if (kept === ours) scopes = data.data.granted_scopes;
    log.debug({ expiresAt: new Date(data.data.access_token_expire_in * 1000).toISOString(), stored: kept === ours }, 'tiktok access token refreshed');
    return kept.accessToken;
  }

  /** Concurrent calls share one refresh, outside any one caller's attempt. */
  const { current: accessToken, refresh, rejected } = accessTokens(ctx, refreshNow, { now, earlyMs: TOKEN_EARLY_REFRESH_MS, given: () => credentials().accessToken });

  async function send<T>(req: TiktokCall<T>, token: string): Promise<{ res: AxiosResponse; env: Envelope | undefined }> {
    const c = credentials();
    await ctx.limiter.acquire();
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) query[k] = String(v);
    query.app_key = c.appKey;
    if (!req.shopless) query.shop_cipher = c.shopCipher;
    query.timestamp = String(Math.floor(now() / 1000));
    const body = req.body === undefined ? '' : JSON.stringify(req.body);
    query.sign = signRequest({ appSecret: c.appSecret, path: req.path, query, body });
    const started = now();
    try {
      const res = await http.request({
        method: req.method,
        url: `${apiBase}${req.path}?${queryString(query)}`,
        ...(body !== '' ? { data: body } : {}),
        headers: { 'x-tts-access-token': token, 'content-type': 'application/json', accept: 'application/json' },
      });
      const env = envelopeOf(res.data);
      log.debug({ method: req.method, path: req.path, status: res.status, code: env?.code, ms: now() - started }, 'tiktok api call');
      return { res, env };
    } catch (err) {
      const failure = networkFailure(err);
      log.debug({ method: req.method, path: req.path, code: failure.kind === 'network' ? failure.code : undefined }, 'tiktok api call failed');
      return raise(mapApiFailure(failure, now(), { scope: req.scope, what: req.what, target }));
    }
  }

  const neverSent = (err: unknown): never => {
    throw asUnsent(err);
  };

  async function call<T>(req: TiktokCall<T>): Promise<T> {
    credentials();
    // A token that could not be had (the refresh failed: a reset, or for good, a dead refresh token)
    // means the request was never sent: `unsent`, whatever the error's class (which the caller keeps),
    // so a step of one request (the promotion link) is forgotten rather than left for a settle wait.
    const token = await accessToken().catch(neverSent);
    let { res, env } = await send(req, token);
    if (env && isTokenRejection(env.code, env.message)) {
      // Expired or revoked access token: one fresh token, one more try. (The refused request did
      // nothing: a refresh that fails now leaves the call as unsent as one that failed first.)
      await rejected(token);
      ({ res, env } = await send(req, await accessToken().catch(neverSent)));
    }
    if (res.status < 200 || res.status >= 300 || !env || env.code !== CODE.OK) {
      if (res.status >= 200 && res.status < 300 && !env) throw new PermanentError(`malformed response from TikTok Shop ${req.method} ${req.path}: not an API envelope`, 'malformed_response');
      const mapped = mapApiFailure(apiFailure(res, env), now(), { scope: req.scope, what: req.what, target, ...(req.item !== undefined ? { item: req.item } : {}) });
      log.info({ method: req.method, path: req.path, status: res.status, code: env?.code, requestId: env?.request_id }, 'tiktok api error');
      return raise(mapped);
    }
    const parsed = req.schema.safeParse(env.data ?? {});
    if (!parsed.success) throw malformedResponse(`TikTok Shop ${req.method} ${req.path}`, parsed.error);
    return parsed.data;
  }

  return {
    get credentials(): TiktokCredentials {
      return credentials();
    },
    call,
    grantedScopes: () => scopes,
    async refreshNow() {
      credentials();
      await refresh();
    },
  };
}
