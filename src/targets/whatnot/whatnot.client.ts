/**
 * Low-level client of the Whatnot Seller API v2 (`https://api.whatnot.com/seller-api/rest/v2`) for one
 * seller token. Every call takes a slot from the shared limiter first and reads the RateLimit-* headers
 * of every answer: when the window is used up (`RateLimit-Remaining: 0`) every worker is kept away
 * until `RateLimit-Reset`, before Whatnot has to answer 429. Errors are problem+json → typed errors.
 * The token is a long-lived seller API token: there is no refresh; a 401 means the operator must issue
 * a new one. Nothing here logs the token or bodies.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { z } from 'zod';
import type { AdapterContext } from '../target.adapter.js';
import { PermanentError, malformedResponse } from '../target.errors.js';
import { mapFailure, proactiveBlock, type MappedFailure, type WhatnotFailure } from './whatnot.errors.js';
import { parseTargetCredentials, trimSlash } from '../target.credentials.js';
import { raiseMapped } from '../target.failure.js';
import { createPlatformHttp } from '../platform-http.js';

const WHATNOT_API = 'https://api.whatnot.com/seller-api/rest/v2';

const CredentialsSchema = z.object({
  accessToken: z.string().min(1),
  /** Standard Webhooks secret (`whsec_...`) of the app's webhook subscription; needed for order webhooks. */
  webhookSecret: z.string().min(1).optional(),
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
  schema: z.ZodType<T>;
}

export interface WhatnotClient {
  readonly credentials: WhatnotCredentials;
  call<T>(req: WhatnotCall<T>): Promise<T>;
}

function parseCredentials(raw: Record<string, string>): WhatnotCredentials | PermanentError {
  return parseTargetCredentials(CredentialsSchema, raw, 'Whatnot', 'accessToken is required; webhookSecret is optional');
}

export function createWhatnotClient(ctx: AdapterContext, now: () => number = Date.now): WhatnotClient {
  const log = ctx.log.child({ module: 'whatnot.client', targetId: ctx.target.id });
  const base = trimSlash(ctx.target.baseUrl ?? WHATNOT_API);
  const creds = parseCredentials(ctx.target.credentials);
  const target = { id: ctx.target.id, partnerId: ctx.target.partnerId };
  const http: AxiosInstance = createPlatformHttp(ctx, { timeout: ctx.timeoutMs, validateStatus: () => true, maxRedirects: 0 });

  function credentials(): WhatnotCredentials {
    if (creds instanceof PermanentError) throw creds;
    return creds;
  }

  const raise = (mapped: MappedFailure): Promise<never> => raiseMapped(ctx.limiter, mapped);

  async function call<T>(req: WhatnotCall<T>): Promise<T> {
    const c = credentials();
    await ctx.limiter.acquire();
    const started = now();
    let res: AxiosResponse;
    try {
      res = await http.request({
        method: req.method,
        url: `${base}${req.path}`,
        params: Object.fromEntries(Object.entries(req.query ?? {}).filter(([, v]) => v !== undefined)),
        ...(req.body !== undefined ? { data: req.body } : {}),
        headers: { authorization: `Bearer ${c.accessToken}`, accept: 'application/json', ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      });
    } catch (err) {
      if (!axios.isAxiosError(err)) throw err;
      // Only the code and message leave here: the AxiosError carries the bearer token.
      const failure: WhatnotFailure = { kind: 'network', code: err.code, message: err.message };
      log.debug({ method: req.method, path: req.path, code: err.code }, 'whatnot api call failed');
      return raise(mapFailure(failure, now(), { what: req.what, target }));
    }
    log.debug({ method: req.method, path: req.path, status: res.status, ms: now() - started }, 'whatnot api call');

    const block = proactiveBlock(res.headers as Record<string, string | undefined>, now());
    if (block && res.status !== 429) await ctx.limiter.blockUntil(block.untilMs, block.reason);

    if (res.status < 200 || res.status >= 300) {
      const retryAfter = res.headers['retry-after'];
      const mapped = mapFailure({ kind: 'http', status: res.status, body: res.data, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined }, now(), {
        what: req.what,
        target,
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
