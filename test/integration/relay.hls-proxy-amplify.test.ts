/**
 * The relay's loopback HLS proxy (src/relay/hls.proxy.ts) against a source whose playlist grows when
 * rewritten, over real TCP. Every URI of a playlist becomes the proxy's origin, the session token and
 * the base64 of the absolute URL: a playlist of one-letter lines read against a long URL (a redirect
 * to a long path here; a 2,000-character sourceUrl does the same) grew ~300-fold. A 4 MiB playlist
 * (the most the proxy reads) made gigabytes against a 2,000-character path and the relay process died
 * out of memory (every show's relay with it); the smaller one here made ~56 MB, all of it held and
 * sent to ffmpeg. The rewritten playlist is now bounded (MAX_REWRITTEN_PLAYLIST_CHARS): past it the
 * request is a 502 and a warning, as for a source that fails.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { HlsProxy, MAX_REWRITTEN_PLAYLIST_CHARS } from '../../src/relay/hls.proxy.js';
import { logSink } from '../helpers/log-sink.js';

type Line = { level: number; msg: string; err?: { message: string } };
const sink = logSink<Line>('debug');
let proxy: HlsProxy;
let source: http.Server;
let port = 0;

const LONG_PATH = `/${'p'.repeat(150)}/many.m3u8`;
/** 200,000 one-letter media lines: 400 KB read, ~56 MB once rewritten against LONG_PATH. */
const MANY = `#EXTM3U\n#EXT-X-TARGETDURATION:2\n${'#EXTINF:2,\na\n'.repeat(200_000)}`;
/** A long VOD playlist as a packager writes it (20,000 two-second segments, 11 h): passes whole. */
const VOD = `#EXTM3U\n#EXT-X-TARGETDURATION:2\n${Array.from({ length: 20_000 }, (_, i) => `#EXTINF:2.000,\nsegment_${String(i).padStart(6, '0')}.ts\n`).join('')}#EXT-X-ENDLIST\n`;

beforeAll(async () => {
  proxy = await HlsProxy.start({ httpAgent: new http.Agent(), httpsAgent: new https.Agent() }, sink.log);
  source = http.createServer((req, res) => {
    if (req.url === '/start.m3u8') {
      res.writeHead(302, { location: LONG_PATH }).end();
      return;
    }
    const body = req.url === LONG_PATH ? MANY : req.url === '/vod/index.m3u8' ? VOD : undefined;
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(body);
  });
  await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
  port = (source.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((r) => source.close(() => r()));
});

test('a playlist that would grow past the bound when rewritten is a 502 and a warning, not tens of MB held and sent', async () => {
  const before = sink.lines.length;
  const s = proxy.open(`http://127.0.0.1:${port}/start.m3u8`);
  const r = await fetch(s.url);
  const bytes = (await r.arrayBuffer()).byteLength;
  s.close();
  expect({ status: r.status, bytes }).toEqual({ status: 502, bytes: 0 });
  const warned = sink.lines.slice(before).filter((l) => l.level >= 40);
  expect(warned.map((l) => [l.msg, l.err?.message])).toEqual([['hls proxy request failed', `the rewritten playlist would pass ${MAX_REWRITTEN_PLAYLIST_CHARS} characters`]]);
}, 30_000);

test('a long VOD playlist (20,000 segments) is still rewritten whole', async () => {
  const s = proxy.open(`http://127.0.0.1:${port}/vod/index.m3u8`);
  const r = await fetch(s.url);
  const text = await r.text();
  s.close();
  expect(r.status).toBe(200);
  const media = text.split('\n').filter((l) => l && !l.startsWith('#'));
  expect(media).toHaveLength(20_000);
  expect(media.every((l) => l.startsWith(`${new URL(s.url).origin}/s/`))).toBe(true);
  expect(text.endsWith('#EXT-X-ENDLIST\n')).toBe(true);
});
