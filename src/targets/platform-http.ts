/**
 * The one place every platform client gets its axios instance: the API calls and the token
 * endpoints (Google OAuth, TikTok auth host) of a target go through the context's connect-time SSRF
 * guard (src/lib/destination-guard.ts), so a base URL whose DNS name later resolves to a private,
 * loopback or link-local address never receives a token or a client secret. A refused connection
 * is a PermanentError whose message names the host and the address, never a credential.
 */
import axios, { type AxiosInstance, type CreateAxiosDefaults, type InternalAxiosRequestConfig } from 'axios';
import type { AdapterContext } from './target.adapter.js';
import { attemptDeadline } from './attempt-deadline.js';
import { PermanentError, RetryableError } from './target.errors.js';

const PLATFORM_NAMES: Record<string, string> = { youtube: 'YouTube', tiktok: 'TikTok Shop', whatnot: 'Whatnot', bambuser: 'Bambuser', facebook: 'Facebook' };

export function createPlatformHttp(ctx: AdapterContext, config: CreateAxiosDefaults): AxiosInstance {
  const guard = ctx.destinations;
  const http = axios.create({
    ...config,
    ...(guard?.httpAgent ? { httpAgent: guard.httpAgent } : {}),
    ...(guard?.httpsAgent ? { httpsAgent: guard.httpsAgent } : {}),
  });
  // Inside an intent step, no request leaves after the step's attempt deadline (attempt-deadline.ts).
  // Synchronous: runs inline when the request is made (no promise hop per request); a throw still
  // rejects the request before anything is sent.
  const checkDeadline = (req: InternalAxiosRequestConfig): InternalAxiosRequestConfig => {
    const deadline = attemptDeadline();
    if (deadline === undefined) return req;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new RetryableError('the attempt ran out of time before its platform request was sent (nothing was sent)', { reason: 'attempt_deadline' });
    }
    req.timeout = req.timeout ? Math.min(req.timeout, left) : left;
    return req;
  };
  http.interceptors.request.use(checkDeadline, undefined, { synchronous: true });
  http.interceptors.response.use(undefined, (err: unknown) => {
    if (axios.isAxiosError(err) && err.code === 'EDESTREFUSED') {
      const name = PLATFORM_NAMES[ctx.target.platform] ?? ctx.target.platform;
      throw new PermanentError(
        `destination refused: ${err.message}; ${name} API calls carry credentials and never go to private, loopback or link-local addresses (check the target's baseUrl and its DNS, or set ALLOW_PRIVATE_DESTINATIONS=true for simulators on this machine)`,
        'destination_refused',
      );
    }
    throw err;
  });
  return http;
}
