/**
 * What the clients of OAuth platforms share: the RFC 6749 refresh_token grant (Google's token endpoint
 * for YouTube, Whatnot's for apps a seller connected) and the access token cached for every worker
 * (ctx.tokens: Redis, sealed with SECRETS_KEY) with one refresh shared by concurrent calls. TikTok's
 * token calls are its own (an unsigned GET), but its cache is this one.
 * A refresh token the platform hands back with a new access token is cached with it, encrypted like
 * the access token, and preferred over the one in the credentials (the platform may rotate it).
 * Nothing here logs tokens, secrets or bodies.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { Logger } from 'pino';
import { z } from 'zod';
import { sharedOutsideAttempt } from './attempt-deadline.js';
import { PlatformNetworkError } from './platform-http.js';
import type { AdapterContext } from './target.adapter.js';
import { malformedResponse } from './target.errors.js';
import { raiseMapped, type MappedFailure } from './target.failure.js';

/** A token endpoint's answer (RFC 6749 §5.1). */
export const TokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().int().positive(),
  token_type: z.string(),
  /** The scopes the refresh token was granted, space-separated. */
  scope: z.string().optional(),
  /** A new refresh token, where the platform rotates them. */
  refresh_token: z.string().min(1).optional(),
});

/** OAuth error body (RFC 6749 §5.2), e.g. `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`. */
export const TokenErrorSchema = z.object({
  error: z.string(),
  error_description: z.string().optional(),
});

/** A failed call as the platforms' failure mappers take it: an HTTP answer, or no answer at all. */
export type HttpFailure = { kind: 'http'; status: number; body: unknown; retryAfter: string | undefined } | { kind: 'network'; code: string | undefined; message: string };

/** What both transports answer: axios, and platform-http's createPlatformJson. */
export type HttpAnswer = Pick<AxiosResponse, 'status' | 'data'> & { headers: Record<string, unknown> };

export function networkFailureOf(err: unknown): HttpFailure {
  // Only the code and message leave here: the AxiosError itself carries the request headers (the token).
  if (axios.isAxiosError(err) || err instanceof PlatformNetworkError) return { kind: 'network', code: err.code, message: err.message };
  throw err;
}

export function httpFailureOf(res: HttpAnswer): HttpFailure {
  const retryAfter = res.headers['retry-after'];
  return { kind: 'http', status: res.status, body: res.data, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined };
}

export function isSuccess(res: HttpAnswer): boolean {
  return res.status >= 200 && res.status < 300;
}

export interface RefreshGrant {
  ctx: AdapterContext;
  http: AxiosInstance;
  log: Logger;
  now: () => number;
  /** The token endpoint. */
  url: string;
  /** For messages: "Google OAuth token endpoint". */
  endpoint: string;
  clientId: string;
  clientSecret: string;
  /** The credentials' refresh token (one the platform handed back since, cached, is preferred). */
  refreshToken: string;
  mapFailure(failure: HttpFailure): MappedFailure;
  /** The platform refused the grant for good: the cached tokens go, with a rotated refresh token. */
  deadGrant(mapped: MappedFailure): boolean;
}

/**
 * A refresh of the target's token, announced to the other processes until its result is stored (a
 * refresh token it rotated is live only in its hands until then: another process's dropGrant waits).
 * A lease left behind (Redis down at its end) ends by itself.
 */
export async function whileRefreshing<T>(ctx: AdapterContext, refresh: () => Promise<T>): Promise<T> {
  const done = await ctx.tokens.refreshing(ctx.timeoutMs);
  try {
    return await refresh();
  } finally {
    await done().catch(() => undefined);
  }
}

/** The refresh_token grant: a new access token, cached for every worker. */
export async function refreshAccessToken(g: RefreshGrant, again = false): Promise<{ accessToken: string; scopes: string[] | undefined }> {
  return whileRefreshing(g.ctx, () => refreshOnce(g, again));
}

async function refreshOnce(g: RefreshGrant, again: boolean): Promise<{ accessToken: string; scopes: string[] | undefined }> {
  const from = await g.ctx.tokens.get();
  const cachedRefresh = from?.refreshToken;
  const refreshToken = cachedRefresh ?? g.refreshToken;
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: g.clientId, client_secret: g.clientSecret, refresh_token: refreshToken });
  let res: AxiosResponse;
  try {
    res = await g.http.post(g.url, form.toString(), { headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } });
  } catch (err) {
    return raiseMapped(g.ctx.limiter, g.mapFailure(networkFailureOf(err)));
  }
  if (!isSuccess(res)) {
    const mapped = g.mapFailure(httpFailureOf(res));
    g.log.warn({ status: res.status, reason: mapped.error.reason }, 'access token refresh failed');
    // Another process (or this one, with a token it read before) may have refreshed since this one
    // read the refresh token: the platform rotated it, the one sent here is dead, and the record holds
    // the live one. That record stays, and one more refresh uses it.
    if (g.deadGrant(mapped) && !(await g.ctx.tokens.dropGrant(cachedRefresh)) && !again) return refreshAccessToken(g, true);
    return raiseMapped(g.ctx.limiter, mapped);
  }
  const parsed = TokenResponseSchema.safeParse(res.data);
  if (!parsed.success) throw malformedResponse(g.endpoint, parsed.error);
  const t = parsed.data;
  // The record names the refresh token of its grant even when it is the credentials' one: a refresh
  // of the old grant still under way when new credentials are saved tells the new record apart from
  // its own (RedisTokenStore.refreshed), and does not overwrite it.
  const ours = { accessToken: t.access_token, expiresAt: g.now() + t.expires_in * 1000, refreshToken: t.refresh_token ?? refreshToken };
  const kept = await g.ctx.tokens.refreshed(ours, refreshToken, from);
  g.log.debug({ expiresIn: t.expires_in, stored: kept === ours }, 'access token refreshed');
  return { accessToken: kept.accessToken, scopes: kept === ours ? t.scope?.split(' ').filter(Boolean) : undefined };
}

export interface AccessTokens {
  /** The cached access token while it has more than `earlyMs` to live, else a fresh one. */
  current(): Promise<string>;
  /** A fresh one now. */
  refresh(): Promise<string>;
  /**
   * The platform refused `token` (401): it is not used again. Only that access token goes (a rotated
   * refresh token beside it stays), and only if it is still the cached one: a caller whose old token
   * was refused does not drop the fresh one another caller had meanwhile. Then current() has the next.
   */
  rejected(token: string): Promise<void>;
}

/**
 * The access token of a target: the cached one, else one given with the credentials (used until the
 * platform refuses it or a refresh replaced it), else a refresh. Concurrent calls share one refresh,
 * outside any one caller's attempt.
 */
export function accessTokens(ctx: AdapterContext, refreshNow: () => Promise<string>, opts: { now: () => number; earlyMs: number; given?: () => string | undefined }): AccessTokens {
  /** The given token is done with: refused, or replaced by a refresh (the store keeps its record too). */
  let givenDone = false;
  const shared = sharedOutsideAttempt(refreshNow);
  const refresh = async (): Promise<string> => {
    const token = await shared();
    givenDone = true;
    return token;
  };
  return {
    async current() {
      const cached = await ctx.tokens.get();
      if (cached && cached.expiresAt - opts.now() > opts.earlyMs) return cached.accessToken;
      // A record that names new credentials saved without a token (`grant`) has replaced nothing yet.
      const given = (cached && cached.grant === undefined) || givenDone ? undefined : opts.given?.();
      return given ?? refresh();
    },
    refresh,
    async rejected(token) {
      if (token === opts.given?.()) givenDone = true;
      await ctx.tokens.expire(token);
    },
  };
}
