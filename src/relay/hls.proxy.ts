/**
 * The HLS pull's only way out (issue 10 item 1, §8 SSRF rules): ffmpeg never fetches a partner's
 * HLS URL itself. It reads from this loopback proxy, which fetches the playlist, its variants,
 * segments, keys and init sections through the SSRF guard's agents (every connection checked
 * when it is made, the socket going to the checked address; redirects followed here, each hop
 * checked) and rewrites every URI of every playlist to point back at itself. So a playlist that
 * names a segment on 127.0.0.1 or 169.254.169.254 gets a 403 for it, and nothing is sent there.
 *
 * A session is opened per pull (`open()`), its token in every path, so nothing but that pull's
 * ffmpeg uses it; paths are `/s/{token}/{base64url(absolute upstream URL)}/{upstream file name}`
 * (the name keeps ffmpeg's extension checks happy). With ALLOW_PRIVATE_DESTINATIONS (tests, the
 * demo) the guard allows every address, the proxy still rewrites.
 *
 * Each request has a total deadline (RELAY_HLS_FETCH_TIMEOUT_MS): the upstream socket's idle timeout
 * alone let a source that trickles a byte now and then hold ffmpeg's request (and ffmpeg with it) for
 * as long as it liked. A request past it is a 504 (or, once the answer started, a cut-off body), which
 * ffmpeg sees as the failed fetch it is. A request whose client (ffmpeg) went away first ends quietly:
 * that is no failure of the source.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { closeServerNow, DEFAULT_HTTP_TIMEOUTS, HLS_PROXY_CONNECTION_SHARE, type HttpTimeouts, limitHttpServer } from '../lib/connection-limits.js';
import type { DestinationGuard } from '../lib/destination-guard.js';
import { maskSecrets } from './mask.js';

/** The agents the proxy fetches with (the guard's; a test may wrap them). */
export type ProxyGuard = Pick<DestinationGuard, 'httpAgent' | 'httpsAgent'>;

export interface HlsProxySession {
  /** What ffmpeg is given instead of the source URL. */
  readonly url: string;
  /** The last refusal (an address the guard refused, a bad URL), masked, for `lastError`. */
  readonly lastRefusal: string | null;
  /** Parts of `url` that carry the source URL (its query may hold a token): masked in logs. */
  readonly secretParts: string[];
  close(): void;
}

const MAX_PLAYLIST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const UPSTREAM_TIMEOUT_MS = 10_000;
/** RELAY_HLS_FETCH_TIMEOUT_MS's default: a request through the proxy (redirects, and the whole answer) ends within it. */
export const DEFAULT_HLS_FETCH_TIMEOUT_MS = 20_000;

class RefusedError extends Error {}

/** Media segments a session remembers as served (the oldest forgotten first): hours of 1 s segments. */
const MAX_SERVED_SEGMENTS = 20_000;
/** Tags that belong to the one media segment after them (dropped with it); any other tag stays. */
const SEGMENT_TAG = /^#EXT(INF|-X-PROGRAM-DATE-TIME|-X-DISCONTINUITY|-X-GAP|-X-BITRATE)\b/;

/**
 * The largest rewritten playlist, in characters. Each URI grows when rewritten (the proxy's origin,
 * the session token, the base64 of the absolute URL): a 4 MiB playlist of one-letter lines, read
 * against a 2,000-character URL (a long sourceUrl, or a redirect to a long path), made gigabytes and
 * the relay process died out of memory (every show's relay with it); with a short URL it still made
 * ~200 MB and held the event loop for seconds. A real playlist rewritten (tens of thousands of
 * segments) stays far below.
 */
export const MAX_REWRITTEN_PLAYLIST_CHARS = 16 * 1024 * 1024;

class PlaylistTooLargeError extends Error {}

const MEDIA_SEQUENCE = /^#EXT-X-MEDIA-SEQUENCE:\s*(\d+)/;

/**
 * Rewrites every URI of an HLS playlist (media lines and `URI="…"` attributes) with `to`; throws once
 * the result passes `maxChars` (nothing more is rewritten then). One pass over the lines, never split
 * whole first (an array of millions of lines is memory too).
 *
 * `served(absolute URL)`: the leading media segments it has are left out, with the tags that belong to
 * them, and EXT-X-MEDIA-SEQUENCE is moved on by as many, so the numbering of the rest stays. A pull's
 * ffmpeg that restarts (its source stalled, a 404, the edge dropped it) starts a live playlist three
 * segments from its end: a playlist that stopped moving handed it the same last seconds again on every
 * restart, which went out to every platform as new video, over and over. Playlists that end
 * (EXT-X-ENDLIST), master playlists and byte-range ones keep every segment.
 */
export function rewritePlaylist(
  body: string,
  base: URL,
  to: (absolute: URL) => string,
  maxChars = MAX_REWRITTEN_PLAYLIST_CHARS,
  served?: (absolute: string) => boolean,
): string {
  const abs = (ref: string): string => to(new URL(ref, base));
  const out: string[] = [];
  /** Where the EXT-X-MEDIA-SEQUENCE lines are in `out`. */
  const sequences: number[] = [];
  let chars = 0;
  const emit = (line: string): void => {
    const t = line.trim();
    const rewritten = !t ? line : t.startsWith('#') ? line.replace(/URI="([^"]*)"/g, (_m, u: string) => `URI="${abs(u)}"`) : abs(t);
    chars += rewritten.length + 1;
    if (chars > maxChars) throw new PlaylistTooLargeError(`the rewritten playlist would pass ${maxChars} characters`);
    if (MEDIA_SEQUENCE.test(rewritten)) sequences.push(out.length);
    out.push(rewritten);
  };
  let dropping = served !== undefined && !/^#EXT-X-ENDLIST\b/m.test(body) && !/^#EXT-X-BYTERANGE/m.test(body) && /^#EXTINF/m.test(body);
  let dropped = 0;
  // While segments may still be dropped, lines wait: in `held` as they came until one is dropped; from
  // then on the tags of the next segment in `tags` (dropped with it), the rest in `held` (kept).
  let held: string[] = [];
  let tags: string[] = [];
  const release = (): void => {
    for (const l of held) emit(l);
    for (const l of tags) emit(l);
    held = [];
    tags = [];
  };
  for (let at = 0; at <= body.length; ) {
    let nl = body.indexOf('\n', at);
    if (nl === -1) nl = body.length;
    const line = nl < body.length && nl > at && body.charCodeAt(nl - 1) === 13 ? body.slice(at, nl - 1) : body.slice(at, nl);
    at = nl + 1;
    const t = dropping ? line.trim() : '';
    if (!dropping) emit(line);
    else if (!t || t.startsWith('#')) (dropped > 0 && SEGMENT_TAG.test(t) ? tags : held).push(line);
    else {
      let absolute: string;
      try {
        absolute = new URL(t, base).toString();
      } catch {
        absolute = t;
      }
      if (served!(absolute)) {
        if (dropped === 0) held = held.filter((l) => !SEGMENT_TAG.test(l.trim()));
        dropped += 1;
        tags = [];
      } else {
        dropping = false;
        release();
        emit(line);
      }
    }
  }
  release();
  if (dropped > 0) {
    for (const i of sequences) {
      const was = out[i]!;
      out[i] = was.replace(MEDIA_SEQUENCE, (_m, n: string) => `#EXT-X-MEDIA-SEQUENCE:${Number(n) + dropped}`);
      chars += out[i].length - was.length;
    }
    if (chars > maxChars) throw new PlaylistTooLargeError(`the rewritten playlist would pass ${maxChars} characters`);
  }
  return out.join('\n');
}

export class HlsProxy {
  private readonly sessions = new Map<string, { refusal: string | null; served: Set<string> }>();
  private constructor(
    private readonly server: http.Server,
    private readonly guard: ProxyGuard,
    private readonly log: Logger,
    private readonly fetchTimeoutMs: number,
  ) {}

  /** `fetchTimeoutMs`: each request's total deadline (RELAY_HLS_FETCH_TIMEOUT_MS). */
  static async start(guard: ProxyGuard, log: Logger, timeouts: Readonly<HttpTimeouts> = DEFAULT_HTTP_TIMEOUTS, fetchTimeoutMs = DEFAULT_HLS_FETCH_TIMEOUT_MS): Promise<HlsProxy> {
    const server = http.createServer();
    const proxy = new HlsProxy(server, guard, log, fetchTimeoutMs);
    server.on('request', (req, res) => void proxy.handle(req, res));
    // Loopback only, but a flood of connections there takes the process's descriptors all the same.
    limitHttpServer(server, HLS_PROXY_CONNECTION_SHARE, undefined, timeouts);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  private get origin(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private pathFor(token: string, upstream: URL): string {
    const name = upstream.pathname.split('/').pop() || 'index';
    return `${this.origin}/s/${token}/${Buffer.from(upstream.toString()).toString('base64url')}/${encodeURIComponent(name)}`;
  }

  /** A session for one pull of `sourceUrl` (http or https). */
  open(sourceUrl: string): HlsProxySession {
    const token = randomBytes(16).toString('base64url');
    const state = { refusal: null as string | null, served: new Set<string>() };
    this.sessions.set(token, state);
    const url = this.pathFor(token, new URL(sourceUrl));
    return {
      url,
      secretParts: [token, url.split('/')[5] ?? token],
      get lastRefusal() {
        return state.refusal;
      },
      close: () => {
        this.sessions.delete(token);
      },
    };
  }

  async close(): Promise<void> {
    this.sessions.clear();
    await closeServerNow(this.server);
  }

  /**
   * One request, within the deadline. How it failed decides the log line: the client (ffmpeg) gone
   * first (it was restarted, or left a playlist half read) is no failure of the source, so debug only;
   * the deadline, or the source failing, is a warning. The error is judged when it arrives, before
   * this proxy closes the client's response itself.
   */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The upstream request lives as long as the client that asked for it, and no longer than the
    // deadline: ffmpeg restarted (its reader gone) while a source trickled a playlist without end kept
    // that upstream connection open for good, one more on every restart; and a source trickling to a
    // still-connected ffmpeg held it until the relay restarted ffmpeg.
    const end = new AbortController();
    let clientLeft = false;
    let timedOut = false;
    res.once('close', () => {
      if (!res.writableFinished && !timedOut) clientLeft = true;
      end.abort();
    });
    const deadline = setTimeout(() => {
      timedOut = true;
      end.abort();
    }, this.fetchTimeoutMs);
    try {
      await this.serve(req, res, end.signal, () => timedOut);
    } catch (err) {
      if (clientLeft) this.log.debug({ err: { message: (err as Error).message } }, 'hls proxy request ended: its client went away');
      else this.log.warn({ err: { message: timedOut ? `the source took longer than ${this.fetchTimeoutMs} ms (RELAY_HLS_FETCH_TIMEOUT_MS)` : (err as Error).message } }, 'hls proxy request failed');
      if (!res.headersSent) res.writeHead(timedOut ? 504 : 502).end();
      else res.destroy();
    } finally {
      clearTimeout(deadline);
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, timedOut: () => boolean): Promise<void> {
    const m = /^\/s\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)(?:\/[^/]*)?$/.exec((req.url ?? '').split('?')[0] ?? '');
    const session = m ? this.sessions.get(m[1]!) : undefined;
    if (!m || !session || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404).end();
      return;
    }
    let upstream: URL;
    try {
      upstream = new URL(Buffer.from(m[2]!, 'base64url').toString('utf8'));
    } catch {
      res.writeHead(400).end();
      return;
    }
    let got: { res: IncomingMessage; url: URL };
    try {
      got = await this.fetch(upstream, req.headers.range, signal);
    } catch (err) {
      if (timedOut()) throw err;
      const refused = err instanceof RefusedError || (err as NodeJS.ErrnoException).code === 'EDESTREFUSED';
      const msg = maskSecrets(`${upstream.protocol}//${upstream.host}: ${(err as Error).message}`);
      if (refused) {
        session.refusal = `refused ${msg}`;
        this.log.info({ reason: msg }, 'hls proxy refused an address the source named');
      }
      res.writeHead(refused ? 403 : 502).end();
      return;
    }
    const up = got.res;
    const status = up.statusCode ?? 502;
    // Playlists are read whole and rewritten (sniffed, not trusted by their content type); the rest streams.
    const first = await firstBytes(up, 16);
    // An answer that ends with its connection (no length, not chunked) ends as if complete when the
    // deadline or the client's leaving closes that connection: never passed on as a whole one.
    const cutOff = (): Error => new Error('the request ended before the answer was complete');
    if (signal.aborted) throw cutOff();
    if (status < 300 && /^(\uFEFF)?\s*#EXTM3U/.test(first.toString('utf8'))) {
      const body = await readAll(up, first, MAX_PLAYLIST_BYTES);
      if (signal.aborted) throw cutOff();
      const token = m[1]!;
      // What this pull's ffmpeg (any run of it) was served already is not in the playlist it gets now.
      const out = rewritePlaylist(body.toString('utf8'), got.url, (abs) => this.pathFor(token, abs), MAX_REWRITTEN_PLAYLIST_CHARS, (abs) => session.served.has(abs));
      res.writeHead(status, { 'content-type': 'application/vnd.apple.mpegurl', 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : out);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'content-length', 'content-range', 'accept-ranges']) {
      const v = up.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      up.destroy();
      res.end();
      return;
    }
    if (first.length) res.write(first);
    // Done when the client has the whole answer; failed when the source fails (or is cut off at the
    // deadline) first, or the client leaves first (handle() tells those apart).
    await new Promise<void>((resolve, reject) => {
      const ended = (): void => {
        if (signal.aborted) reject(cutOff());
        else res.end();
      };
      res.once('finish', () => {
        // A whole media answer (not a part of one; ffmpeg asks for every file with `Range: bytes=0-`):
        // served, never handed to this pull again.
        if (status >= 200 && status < 300 && (!req.headers.range || /^bytes=0-\s*$/.test(req.headers.range))) {
          session.served.add(upstream.toString());
          if (session.served.size > MAX_SERVED_SEGMENTS) session.served.delete(session.served.values().next().value!);
        }
        resolve();
      });
      res.once('close', () => reject(new Error('client closed before the answer was complete')));
      if (up.readableEnded) return ended();
      up.once('error', reject);
      up.once('end', ended);
      up.once('close', () => {
        if (!up.readableEnded) reject(new Error('upstream closed before its answer was complete'));
      });
      up.pipe(res, { end: false });
    });
  }

  /** GET through the guard's agents, following redirects here (each hop checked again). */
  private async fetch(start: URL, range: string | undefined, signal: AbortSignal): Promise<{ res: IncomingMessage; url: URL }> {
    let url = start;
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RefusedError(`${url.protocol} is not http(s)`);
      if (url.username || url.password) throw new RefusedError('credentials in URLs are not allowed');
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const mod = url.protocol === 'https:' ? https : http;
        const agent = url.protocol === 'https:' ? this.guard.httpsAgent : this.guard.httpAgent;
        const req = mod.get(url, { agent, headers: range ? { range } : {}, timeout: UPSTREAM_TIMEOUT_MS, signal }, resolve);
        req.once('timeout', () => req.destroy(new Error('upstream timed out')));
        req.once('error', reject);
        // A `101` with an Upgrade: Node closes the request with neither a response nor an error (no
        // 'upgrade' listener), and the client's request waited for good. Any close without an answer fails it.
        req.once('upgrade', (_res, socket) => {
          socket.destroy();
          reject(new Error('upstream answered 101 (protocol switch)'));
        });
        req.once('close', () => reject(new Error('upstream closed without an answer')));
      });
      const loc = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && loc) {
        res.resume();
        if (hop >= MAX_REDIRECTS) throw new Error('too many redirects');
        url = new URL(loc, url);
        continue;
      }
      return { res, url };
    }
  }
}

async function firstBytes(s: IncomingMessage, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const chunk = await new Promise<Buffer | null>((resolve, reject) => {
      const c = s.read() as Buffer | null;
      if (c) return resolve(c);
      if (s.readableEnded) return resolve(null);
      const onReadable = (): void => {
        cleanup();
        resolve((s.read() as Buffer | null) ?? Buffer.alloc(0));
      };
      const onEnd = (): void => {
        cleanup();
        resolve(null);
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const cleanup = (): void => {
        s.off('readable', onReadable);
        s.off('end', onEnd);
        s.off('error', onError);
      };
      s.once('readable', onReadable);
      s.once('end', onEnd);
      s.once('error', onError);
    });
    if (chunk === null) break;
    chunks.push(chunk);
    len += chunk.length;
  }
  return Buffer.concat(chunks);
}

async function readAll(s: IncomingMessage, head: Buffer, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [head];
  let len = head.length;
  for await (const c of s) {
    const b = c as Buffer;
    len += b.length;
    if (len > max) throw new Error('playlist too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
