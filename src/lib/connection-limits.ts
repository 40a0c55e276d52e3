/**
 * Bounds on the API's HTTP connections (src/api/app.ts), against clients that hold connections open
 * without finishing a request: a slowloris (a header line every few seconds), or connections that
 * send nothing at all. Neither was ever closed (Node's own header timeout did not apply under
 * Fastify's defaults, and a connection that sends no byte is under no request timeout), so a few
 * thousand of them took every file descriptor of the process: the API answered nothing (not even
 * /health/live), and the workers in the same process could open no connection to a platform.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';

/**
 * A connection that sends no request for this long is closed (socket timeout, off while a request is in
 * progress: src/api/app.ts). The default of the HTTP_IDLE_TIMEOUT_MS setting (src/config/config.ts).
 */
export const HTTP_IDLE_TIMEOUT_MS = 30_000;
/**
 * A request must be received whole (headers and body) within this long (Fastify requestTimeout);
 * Node checks every 30 s, so a request that does not finish is cut 30 to 60 s after it began (408).
 * A body is at most 1 MiB: 30 s is 35 KiB/s. The default of the HTTP_REQUEST_TIMEOUT_MS setting.
 */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;
/** A server's idle and request timeouts: the HTTP_IDLE_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS settings. */
export interface HttpTimeouts {
  idleMs: number;
  requestMs: number;
}
export const DEFAULT_HTTP_TIMEOUTS: Readonly<HttpTimeouts> = { idleMs: HTTP_IDLE_TIMEOUT_MS, requestMs: HTTP_REQUEST_TIMEOUT_MS };
/**
 * How often Node looks for requests over their timeout (http.Server connectionsCheckingInterval): its
 * default, every 30 s, or every request timeout when that is shorter, so that a request is cut within
 * two request timeouts whatever the setting.
 */
export function connectionsCheckingInterval(requestMs: number): number {
  return Math.min(30_000, requestMs);
}

/** Sets `server`'s checking interval for `requestMs` (before it listens: Node reads it when it starts listening). */
export function checkRequestsEvery(server: Server, requestMs: number): void {
  // A constructor option in @types/node, but read from the server when it starts listening.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = connectionsCheckingInterval(requestMs);
}
/**
 * The shares of the process's file descriptors that the API's HTTP connections and the RTMP ingest
 * edge's connections (src/relay/ingest.edge.ts, same process under npm start) may hold; the rest, a
 * quarter, stays for Redis, platform calls and the relay's ffmpeg pipes.
 */
export const HTTP_CONNECTION_SHARE = 0.625;
export const RTMP_CONNECTION_SHARE = 0.125;
/**
 * The other servers of a process take small shares of the same descriptors: the HLS proxy (src/relay/
 * hls.proxy.ts, loopback, one connection or two per HLS pull's ffmpeg) 1/16, a worker's or scheduler's
 * /metrics (METRICS_PORT, src/lib/metrics.ts, one scrape at a time) 1/64. What is left, 11/64, stays for
 * Redis, platform calls and ffmpeg pipes. (The metrics server never runs beside the API: a process with
 * the API serves /metrics there.)
 */
export const HLS_PROXY_CONNECTION_SHARE = 0.0625;
export const METRICS_CONNECTION_SHARE = 0.015625;

/** The soft RLIMIT_NOFILE of this process (Linux /proc), or undefined where it cannot be read. */
export function openFilesLimit(limits = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(limits, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

/** How many connections the API server accepts at once (net.Server maxConnections; more are closed at once), or undefined: no bound known. */
export function maxHttpConnections(openFiles = openFilesLimit()): number | undefined {
  return share(openFiles, HTTP_CONNECTION_SHARE);
}

/** How many connections the RTMP ingest edge accepts at once, or undefined: no bound known. */
export function maxRtmpConnections(openFiles = openFilesLimit()): number | undefined {
  return share(openFiles, RTMP_CONNECTION_SHARE);
}

/** At most `part` of the descriptors (RLIMIT_NOFILE) in `server`'s connections, more closed at once; no bound when the limit is unknown. */
export function limitConnections(server: Server, part: number, openFiles = openFilesLimit()): void {
  const max = share(openFiles, part);
  if (max !== undefined) server.maxConnections = max;
}

/**
 * A plain node:http server (the HLS proxy, METRICS_PORT, the simulators) under the API's bounds: at most
 * `part` of the descriptors in connections (more are closed at once), a connection silent for
 * `timeouts.idleMs` closed (the socket timeout, also between requests and while one is answered:
 * these servers answer within seconds), a request not received whole in `timeouts.requestMs` cut.
 * Called before the server listens (Node reads the checking interval when it starts listening).
 */
export function limitHttpServer(server: Server, part: number, openFiles = openFilesLimit(), timeouts: Readonly<HttpTimeouts> = DEFAULT_HTTP_TIMEOUTS): void {
  limitConnections(server, part, openFiles);
  server.timeout = timeouts.idleMs;
  server.headersTimeout = timeouts.requestMs;
  server.requestTimeout = timeouts.requestMs;
  checkRequestsEvery(server, timeouts.requestMs);
}

/** Closes `server` without waiting on a client: its connections, requests in progress too, are cut. */
export function closeServerNow(server: Server): Promise<void> {
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  return closed;
}

function share(openFiles: number | undefined, part: number): number | undefined {
  if (openFiles === undefined || !Number.isSafeInteger(openFiles) || openFiles <= 0) return undefined;
  return Math.max(16, Math.floor(openFiles * part));
}
