/**
 * The one place every platform client gets its axios instance: the API calls and the token
 * endpoints (Google OAuth, TikTok auth host) of a target go through the context's connect-time SSRF
 * guard (src/lib/destination-guard.ts), so a base URL whose DNS name later resolves to a private,
 * loopback or link-local address never receives a token or a client secret. A refused connection
 * is a PermanentError whose message names the host and the address, never a credential.
 */
import axios, { AxiosError, type AxiosInstance, type CreateAxiosDefaults, type InternalAxiosRequestConfig } from 'axios';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { urlToHttpOptions } from 'node:url';
import type { AdapterContext } from './target.adapter.js';
import { attemptDeadline } from './attempt-deadline.js';
import { PermanentError, RetryableError } from './target.errors.js';

const PLATFORM_NAMES: Record<string, string> = { youtube: 'YouTube', tiktok: 'TikTok Shop', whatnot: 'Whatnot', bambuser: 'Bambuser', facebook: 'Facebook' };

/**
 * A request's timeout inside an intent step: no later than the step's attempt deadline
 * (attempt-deadline.ts; `timeoutMs` 0 = none), and a RetryableError, with nothing sent, once it passed.
 */
function timeoutWithinDeadline(timeoutMs: number): number {
  const deadline = attemptDeadline();
  if (deadline === undefined) return timeoutMs;
  const left = deadline - Date.now();
  if (left <= 0) throw new RetryableError('the attempt ran out of time before its platform request was sent (nothing was sent)', { reason: 'attempt_deadline', unsent: true });
  return timeoutMs ? Math.min(timeoutMs, left) : left;
}

/** The destination guard refused the connection: the message names host and address, never a credential. */
function destinationRefused(ctx: AdapterContext, message: string): PermanentError {
  const name = PLATFORM_NAMES[ctx.target.platform] ?? ctx.target.platform;
  return new PermanentError(
    `destination refused: ${message}; ${name} API calls carry credentials and never go to private, loopback or link-local addresses (check the target's baseUrl and its DNS, or set ALLOW_PRIVATE_DESTINATIONS=true for simulators on this machine)`,
    'destination_refused',
  );
}

/**
 * The largest platform answer read: past it the request fails (a network failure, retried) instead of
 * the whole body being held in memory (a wrong baseUrl served hundreds of MiB, all of it read). 8 MiB,
 * not the 32 it was: a real answer holds at most MAX_RESPONSE_VALUES values, far below it, while 32 MiB
 * of tiny JSON values parsed took ~1.1 GiB of the process for one request.
 */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * The most values (array elements and object members, at any depth) a platform's JSON answer may hold:
 * past it the request fails as an answer past MAX_RESPONSE_BYTES does. The byte bound alone let 32 MiB
 * of `{"data":[{},{},…]}` (11 million empty objects, from a hostile or wrong baseUrl) through: parsed
 * it took 700 MiB, and each element the response schema then refused cost zod ~2 KiB of issues, so the
 * worker died out of memory (4 GiB heap) after 90 s with every partner's syncs in it. The largest real
 * answers are pages (100 orders: a few thousand values); an unpaged answer that may be larger asks for
 * its own bound per request (`maxJsonValues`, MAX_REPORT_VALUES).
 */
export const MAX_RESPONSE_VALUES = 100_000;

/**
 * The bound of an unpaged report (Bambuser's per-show order report: about ten values per order, every
 * order of the show in one answer). At MAX_RESPONSE_VALUES a show with more than ~8,000 orders was
 * refused on every run, and its reconciliation never completed. At this bound MAX_RESPONSE_BYTES is
 * what limits a real report (8 MiB is ~50,000 orders of ~160 bytes and ten values: ~500,000 values).
 * An answer this large is only safe with a schema that stops at its first refused element
 * (`firstRefusalArray`): a million refused elements at ~2 KiB of zod issues each would be 2 GiB.
 */
export const MAX_REPORT_VALUES = 1_000_000;

declare module 'axios' {
  interface AxiosRequestConfig {
    /** The most JSON values this request's answer may hold (a platform client's; MAX_RESPONSE_VALUES when unset). */
    maxJsonValues?: number;
  }
}

/** Whether `v` (parsed JSON) holds more than `max` values; stops counting once it does. */
export function jsonValuesOver(v: unknown, max: number): boolean {
  if (v === null || typeof v !== 'object') return false;
  const stack: object[] = [v];
  let n = 0;
  while (stack.length > 0) {
    const o = stack.pop()!;
    if (Array.isArray(o)) {
      n += o.length;
      if (n > max) return true;
      for (const x of o) if (x !== null && typeof x === 'object') stack.push(x as object);
    } else {
      for (const k in o) {
        if (++n > max) return true;
        const x = (o as Record<string, unknown>)[k];
        if (x !== null && typeof x === 'object') stack.push(x);
      }
    }
  }
  return false;
}

/**
 * Our two refusals of an answer, each its text before and after its bound: the one source of the
 * refusal's message (refusalText) and of isRefusedAnswer's test of it (REFUSED_ANSWER), which restated
 * both texts, so a text changed in one place only would have made a refusal read "<api> unreachable
 * (ERR_BAD_RESPONSE)" again. Past MAX_RESPONSE_BYTES it is axios' own text (its maxContentLength error),
 * which the raw request says too (test/unit/platform-http.refused-answer.test.ts checks it against axios).
 */
const REFUSALS = {
  bytes: ['maxContentLength size of ', ' exceeded'],
  values: ['the answer holds more than ', ' JSON values'],
} as const;

/** The message of a refusal of an answer past `max` (bytes or JSON values). */
function refusalText(kind: keyof typeof REFUSALS, max: number): string {
  const [before, after] = REFUSALS[kind];
  return `${before}${max}${after}`;
}

const literally = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const REFUSED_ANSWER = new RegExp(`^(?:${Object.values(REFUSALS).map(([before, after]) => `${literally(before)}\\d+${literally(after)}`).join('|')})$`);

/**
 * Whether a network failure is one of our own two refusals of an answer (past MAX_RESPONSE_BYTES or
 * MAX_RESPONSE_VALUES): the platform answered, we would not read it. Both carry axios'
 * ERR_BAD_RESPONSE, as does a connection reset half-way through an answer ("stream has been
 * aborted", a real network failure): the text tells them apart, since only code and message leave an
 * adapter's client (the error carries the request, secrets with it).
 */
export function isRefusedAnswer(code: string | undefined, message: string): boolean {
  return code === 'ERR_BAD_RESPONSE' && REFUSED_ANSWER.test(message);
}

export function createPlatformHttp(ctx: AdapterContext, config: CreateAxiosDefaults): AxiosInstance {
  const guard = ctx.destinations;
  const http = axios.create({
    maxContentLength: MAX_RESPONSE_BYTES,
    ...config,
    ...(guard?.httpAgent ? { httpAgent: guard.httpAgent } : {}),
    ...(guard?.httpsAgent ? { httpsAgent: guard.httpsAgent } : {}),
  });
  // Inside an intent step, no request leaves after the step's attempt deadline (attempt-deadline.ts).
  // Synchronous: runs inline when the request is made (no promise hop per request); a throw still
  // rejects the request before anything is sent.
  // axios' `timeout` is only the socket's idle time: a platform (or a wrong baseUrl) that sent its answer
  // a byte at a time held the request — a worker's sync, an operator's target create — for as long as it
  // kept sending. The whole request (answer included) now ends at `timeout`, as a timeout (ECONNABORTED).
  const checkDeadline = (req: InternalAxiosRequestConfig): InternalAxiosRequestConfig => {
    req.timeout = timeoutWithinDeadline(req.timeout ?? 0);
    if (req.timeout > 0 && !req.signal) req.signal = AbortSignal.timeout(req.timeout);
    return req;
  };
  http.interceptors.request.use(checkDeadline, undefined, { synchronous: true });
  http.interceptors.response.use(
    (res) => {
      const max = res.config.maxJsonValues ?? MAX_RESPONSE_VALUES;
      if (jsonValuesOver(res.data, max)) throw new AxiosError(refusalText('values', max), AxiosError.ERR_BAD_RESPONSE, res.config);
      return res;
    },
    (err: unknown) => {
      if (axios.isAxiosError(err) && err.code === 'EDESTREFUSED') throw destinationRefused(ctx, err.message);
      if (axios.isCancel(err) && err.config?.timeout && err.config.signal?.aborted && (err.config.signal as AbortSignal).reason instanceof DOMException) {
        throw new AxiosError(`timeout of ${err.config.timeout}ms exceeded`, AxiosError.ECONNABORTED, err.config);
      }
      throw err;
    },
  );
  return http;
}

/** A network failure of a platformJson request (refused, reset, timed out): code and message only, never the request. */
export class PlatformNetworkError extends Error {
  override readonly name = 'PlatformNetworkError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface PlatformJsonRequest {
  method: string;
  /** Absolute URL, query included (see `withQuery`). */
  url: string;
  headers: Record<string, string>;
  /** JSON text; sent with content-type application/json. */
  body?: string;
}

export interface PlatformJsonResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON; the text itself when it is not JSON; '' when empty (axios' default transform). */
  data: unknown;
}

/** Query parameters serialised as axios does (`params`): undefined and null left out, its encoding. */
export function withQuery(url: string, query: Record<string, string | number | boolean | undefined | null>): string {
  let qs = '';
  for (const k in query) {
    const v = query[k];
    if (v === undefined || v === null) continue;
    qs += `${qs ? '&' : ''}${encodeParam(k)}=${encodeParam(String(v))}`;
  }
  if (!qs) return url;
  return `${url}${url.includes('?') ? '&' : '?'}${qs}`;
}

function encodeParam(s: string): string {
  return encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%24/g, '$').replace(/%2C/gi, ',').replace(/%20/g, '+');
}

/** Where a request goes: the fields http.request reads of `urlToHttpOptions(url)` (what it does with a URL argument). */
interface RequestTarget {
  protocol: string;
  hostname: string;
  port: number | undefined;
  path: string;
  auth: string | undefined;
}

/**
 * The request target of a URL, kept per URL text: a client calls the same few URLs again and again
 * (every pin of a YouTube target posts to the same one), and a URL parse per request (plus the options
 * object http.request made of it) was part of a pin sync's CPU. At most URL_TARGETS_MAX kept, then
 * started over.
 */
const urlTargets = new Map<string, RequestTarget>();
const URL_TARGETS_MAX = 1000;
export function requestTarget(url: string): RequestTarget {
  let t = urlTargets.get(url);
  if (t === undefined) {
    const o = urlToHttpOptions(new URL(url));
    t = { protocol: o.protocol ?? 'http:', hostname: o.hostname ?? '', port: o.port === undefined || o.port === null ? undefined : Number(o.port), path: o.path ?? '/', auth: o.auth ?? undefined };
    if (urlTargets.size >= URL_TARGETS_MAX) urlTargets.clear();
    urlTargets.set(url, t);
  }
  return t;
}

/**
 * The hot-path request of a platform client (a sync's API calls): one JSON request over `node:http` /
 * `node:https`, with what `createPlatformHttp` gives an axios request — the destination guard's
 * agents, the attempt deadline (refused before anything is sent once it passed, timed out at it at
 * the latest), `timeoutMs`, no redirects followed (a 3xx is answered as it is), every status answered
 * (the caller interprets it), a refused destination as a PermanentError — without axios' per-request
 * config merging, header objects and transforms (≈ 10 % of a mirror worker's CPU per pin sync in a
 * profile). Other failures reject with a PlatformNetworkError (axios' codes: ECONNABORTED on timeout).
 */
export function createPlatformJson(ctx: AdapterContext, timeoutMs: number): (req: PlatformJsonRequest) => Promise<PlatformJsonResponse> {
  const guard = ctx.destinations;
  return (req) => {
    let timeout: number;
    try {
      timeout = timeoutWithinDeadline(timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<PlatformJsonResponse>((resolve, reject) => {
      let target: RequestTarget;
      try {
        target = requestTarget(req.url);
      } catch (err) {
        reject(new PlatformNetworkError(err instanceof Error ? err.message : String(err), 'ERR_INVALID_URL'));
        return;
      }
      const secure = target.protocol === 'https:';
      // (The caller's headers are only read, by node:http as by the copy it replaced.)
      const headers: Record<string, string | number> =
        req.body === undefined ? req.headers : { ...req.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(req.body) };
      const agent = secure ? guard?.httpsAgent : guard?.httpAgent;
      // What http.request(url, opts) made of a URL and its options (urlToHttpOptions, then the options over it).
      const opts: RequestOptions = { protocol: target.protocol, hostname: target.hostname, path: target.path, method: req.method, headers };
      if (target.port !== undefined) opts.port = target.port;
      if (target.auth !== undefined) opts.auth = target.auth;
      if (agent) opts.agent = agent;
      // The whole-exchange timer (below), cleared once the request settled. (No named closure per request
      // for it, nor for the answer's handler: tsx's keepNames renames every named one as it is made.)
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(err.code === 'EDESTREFUSED' ? destinationRefused(ctx, err.message) : new PlatformNetworkError(err.message, err.code));
      };
      const r = (secure ? httpsRequest : httpRequest)(opts, (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > MAX_RESPONSE_BYTES) {
            fail(Object.assign(new Error(refusalText('bytes', MAX_RESPONSE_BYTES)), { code: 'ERR_BAD_RESPONSE' }));
            r.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
          if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
          let data: unknown = text;
          if (text) {
            try {
              data = JSON.parse(text);
            } catch {
              data = text;
            }
          }
          if (jsonValuesOver(data, MAX_RESPONSE_VALUES)) {
            reject(new PlatformNetworkError(refusalText('values', MAX_RESPONSE_VALUES), 'ERR_BAD_RESPONSE'));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, data });
        });
      });
      r.on('error', fail);
      if (timeout > 0) {
        // The whole exchange, answer included: a socket idle timeout (r.setTimeout) never fired while the
        // platform sent its answer a byte at a time, and the sync waited for as long as it kept sending.
        timer = setTimeout(() => {
          // Settled here: what the destroyed request or response emits after this (ECONNRESET) is not the cause.
          reject(new PlatformNetworkError(`timeout of ${timeout}ms exceeded`, 'ECONNABORTED'));
          r.destroy();
        }, timeout);
      }
      r.end(req.body);
    });
  };
}
