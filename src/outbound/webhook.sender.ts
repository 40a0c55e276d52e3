/**
 * One HTTP POST to a partner endpoint with node:http(s): no redirects (a 3xx is the answer), a hard
 * deadline, no connection reuse, at most MAX_RESPONSE_BODY_BYTES of the answer's body read, and —
 * unless private destinations are allowed — a DNS lookup that refuses private/loopback/link-local
 * answers at connect time. The lookup is sharedLookup's (src/lib/ssrf.ts): one system lookup in
 * flight per host name and per owner (the partner), at most DNS_LOOKUP_CONCURRENCY in the process,
 * which an attempt's deadline cannot cancel.
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { sharedConnectLookup } from '../lib/ssrf.js';

export interface SendResult {
  /** null when no HTTP response arrived (timeout, refused, reset, DNS). */
  statusCode: number | null;
  retryAfter: string | undefined;
  location: string | undefined;
  error: string | null;
  durationMs: number;
}

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** Whose lookup this is (the partner): at most LOOKUPS_PER_OWNER system lookups in flight per owner. */
  owner?: string;
}

/** How much of an answer's body an attempt reads (and discards) before it closes the connection. */
export const MAX_RESPONSE_BODY_BYTES = 64 * 1024;

export type WebhookSender = (url: string, body: string, headers: Record<string, string>, opts: SendOptions) => Promise<SendResult>;

export const postWebhook: WebhookSender = (url, body, headers, opts) => {
  const started = performance.now();
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (r: Omit<SendResult, 'durationMs'>): void => {
      if (settled) return;
      settled = true;
      resolve({ ...r, durationMs: Math.round(performance.now() - started) });
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      finish({ statusCode: null, retryAfter: undefined, location: undefined, error: 'invalid URL' });
      return;
    }
    const mod = target.protocol === 'https:' ? https : http;
    const req = mod.request(target, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      agent: false,
      lookup: sharedConnectLookup(opts.owner, opts.allowPrivate),
    });
    // The deadline covers DNS, connect, sending and the response headers; a body still trickling in
    // after the status arrived is cut off at the same deadline (the status already counts).
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    // A request can close with neither a response nor an error: Node closes it so when the endpoint
    // answers `101 Switching Protocols` with an Upgrade and nobody listens for 'upgrade'. The attempt
    // then never ended (the deadline was cleared with it): its slot held and the delivery pending
    // for good, never retried. Every close ends the attempt; the 101 is the answer (not 2xx: retried).
    req.on('close', () => {
      clearTimeout(timer);
      finish({ statusCode: null, retryAfter: undefined, location: undefined, error: 'connection closed before an answer' });
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      finish({ statusCode: res.statusCode ?? null, retryAfter: firstHeader(res.headers['retry-after']), location: firstHeader(res.headers.location), error: null });
    });
    req.on('response', (res) => {
      const h = res.headers;
      finish({ statusCode: res.statusCode ?? null, retryAfter: firstHeader(h['retry-after']), location: firstHeader(h.location), error: null });
      res.on('error', () => undefined);
      // We never read what an endpoint answers: a short body is let through (the answer ends
      // cleanly), a longer one closes the connection (no reuse), so an endpoint that streams bytes
      // without end cannot keep this process reading until the deadline after its slot is free.
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_RESPONSE_BODY_BYTES) req.destroy();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish({ statusCode: null, retryAfter: undefined, location: undefined, error: err.code === 'EDESTREFUSED' ? `destination refused: ${err.message}` : err.message || String(err.code) });
    });
    req.end(body);
  });
};

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
