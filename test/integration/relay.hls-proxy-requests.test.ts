/**
 * The relay's loopback HLS proxy (src/relay/hls.proxy.ts), request by request, against a loopback
 * source with plain agents (the guard's address checks are relay.hls-proxy.test.ts's): what it
 * forwards, what it refuses, and which answers count as a segment served whole.
 *
 * - a URL with user:password in it is refused (403, and the session's lastRefusal says why), as the
 *   SSRF guard refuses them for every other outbound request;
 * - redirects are followed up to five hops, the sixth is a 502;
 * - ffmpeg's Range header reaches the source (a byte range of a segment is that range, not the file);
 * - only GET and HEAD are proxied;
 * - only a whole answer marks a segment served (left out of the pull's later playlists): a part of
 *   one does not, and playlists that end (EXT-X-ENDLIST) or address byte ranges keep every segment.
 */
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { HlsProxy, type HlsProxySession } from '../../src/relay/hls.proxy.js';

let source: Server;
let port = 0;
let proxy: HlsProxy;
/** Paths the source was asked for. */
let hits: string[] = [];
const SEGMENT = Buffer.from(Array.from({ length: 2000 }, (_, i) => i % 251));

function playlist(lines: string[]): string {
  return ['#EXTM3U', '#EXT-X-VERSION:4', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0', ...lines, ''].join('\n');
}

beforeAll(async () => {
  source = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.push(path);
    const redirect = /^\/r\/(\d+)$/.exec(path);
    if (redirect) {
      const n = Number(redirect[1]);
      return res.writeHead(302, { location: n > 0 ? `/r/${n - 1}` : '/seg0.ts' }).end();
    }
    const lists: Record<string, string> = {
      '/live.m3u8': playlist(['#EXTINF:1.0,', 'seg0.ts', '#EXTINF:1.0,', 'seg1.ts']),
      '/vod.m3u8': playlist(['#EXTINF:1.0,', 'seg0.ts', '#EXTINF:1.0,', 'seg1.ts', '#EXT-X-ENDLIST']),
      '/ranges.m3u8': playlist(['#EXTINF:1.0,', '#EXT-X-BYTERANGE:1000@0', 'whole.ts', '#EXTINF:1.0,', '#EXT-X-BYTERANGE:1000@1000', 'whole.ts']),
      '/creds.m3u8': playlist(['#EXTINF:1.0,', `http://enc:secret@127.0.0.1:${port}/seg0.ts`]),
    };
    const list = lists[path];
    if (list) return res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(list);
    if (!/^\/(seg\d|whole)\.ts$/.test(path)) return res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!range) return res.writeHead(200, { 'content-type': 'video/mp2t', 'content-length': SEGMENT.length }).end(SEGMENT);
    const from = Number(range[1]);
    const to = range[2] ? Number(range[2]) : SEGMENT.length - 1;
    res.writeHead(206, { 'content-type': 'video/mp2t', 'content-range': `bytes ${from}-${to}/${SEGMENT.length}`, 'content-length': to - from + 1 });
    res.end(SEGMENT.subarray(from, to + 1));
  });
  await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
  port = (source.address() as AddressInfo).port;
  proxy = await HlsProxy.start({ httpAgent: new http.Agent(), httpsAgent: new (await import('node:https')).Agent() }, pino({ level: 'silent' }));
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((r) => source.close(() => r()));
});

const segmentsOf = (list: string): string[] => list.split('\n').filter((l) => l && !l.startsWith('#'));

/** A proxy session for `path` on the source. */
const through = (path: string): HlsProxySession => proxy.open(`http://127.0.0.1:${port}${path}`);

test('a URL with user:password in it is refused: 403, and lastRefusal says why; nothing reaches the source', async () => {
  const session = through('/creds.m3u8');
  try {
    const [segment] = segmentsOf(await (await fetch(session.url)).text());
    hits = [];
    const r = await fetch(segment!);
    expect(r.status).toBe(403);
    expect(hits).toEqual([]);
    expect(session.lastRefusal).toMatch(/credentials in URLs are not allowed/);
    expect(session.lastRefusal).not.toContain('secret');
  } finally {
    session.close();
  }
});

test('redirects: five hops are followed, a sixth is a 502', async () => {
  const five = through('/r/4'); // /r/4 → … → /r/0 → /seg0.ts: five redirects
  const six = through('/r/5');
  try {
    const r = await fetch(five.url);
    expect(r.status).toBe(200);
    expect(Buffer.from(await r.arrayBuffer()).equals(SEGMENT)).toBe(true);
    expect((await fetch(six.url)).status).toBe(502);
  } finally {
    five.close();
    six.close();
  }
});

test("the client's Range reaches the source: a 206 with that range", async () => {
  const session = through('/seg1.ts');
  try {
    const r = await fetch(session.url, { headers: { range: 'bytes=100-109' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe('bytes 100-109/2000');
    expect(Buffer.from(await r.arrayBuffer()).equals(SEGMENT.subarray(100, 110))).toBe(true);
  } finally {
    session.close();
  }
});

test('only GET and HEAD are proxied: another method is a 404', async () => {
  const session = through('/seg0.ts');
  try {
    expect((await fetch(session.url, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(session.url, { method: 'POST', body: 'x' })).status).toBe(404);
    expect((await fetch(session.url, { method: 'DELETE' })).status).toBe(404);
  } finally {
    session.close();
  }
});

test('a part of a segment (a Range not from 0) does not mark it served: the live playlist keeps it', async () => {
  const session = through('/live.m3u8');
  try {
    const first = segmentsOf(await (await fetch(session.url)).text());
    expect(first).toHaveLength(2);
    const part = await fetch(first[0]!, { headers: { range: 'bytes=1000-' } });
    expect(part.status).toBe(206);
    await part.arrayBuffer();
    expect(segmentsOf(await (await fetch(session.url)).text())).toEqual(first);
    // Got whole (from byte 0), it is left out.
    const whole = await fetch(first[0]!, { headers: { range: 'bytes=0-' } });
    await whole.arrayBuffer();
    expect(segmentsOf(await (await fetch(session.url)).text())).toEqual([first[1]]);
  } finally {
    session.close();
  }
});

test('playlists that end (EXT-X-ENDLIST) or address byte ranges keep every segment, served or not', async () => {
  for (const path of ['/vod.m3u8', '/ranges.m3u8']) {
    const session = through(path);
    try {
      const first = await (await fetch(session.url)).text();
      expect(segmentsOf(first)).toHaveLength(2);
      for (const seg of new Set(segmentsOf(first))) await (await fetch(seg)).arrayBuffer(); // whole, no Range
      expect(await (await fetch(session.url)).text()).toBe(first);
    } finally {
      session.close();
    }
  }
});
