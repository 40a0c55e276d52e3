/**
 * HLS pull SSRF (issue 10 item 1, §8): the top-level `sourceUrl` passing the SSRF check is not
 * enough, since a playlist names further URLs (variants, segments, keys) that ffmpeg would fetch
 * from wherever they point. The relay's ffmpeg reads HLS only through the guarded loopback proxy
 * (src/relay/hls.proxy.ts). Here the guard refuses private addresses (ALLOW_PRIVATE_DESTINATIONS
 * off); the source itself has to live on loopback in a test, so this test's guard allows exactly
 * its origin (127.0.0.1:{port}) and nothing else. The playlist names one segment on 127.0.0.2 (a
 * counting server that serves a real segment) and one on 169.254.169.254: neither gets a request
 * through the proxy, while ffmpeg reading the same playlist directly does fetch from 127.0.0.2 (the
 * hole this closes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import http, { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { destinationGuard } from '../../src/lib/destination-guard.js';
import { HlsProxy, rewritePlaylist, type ProxyGuard } from '../../src/relay/hls.proxy.js';
import { testFfmpeg } from '../helpers/ffmpeg.js';

let dir: string;
let origin: Server;
let other: Server;
let originPort = 0;
let otherHits: string[] = [];
let proxy: HlsProxy;

function serve(root: string, onHit?: (url: string) => void): Server {
  return createServer((req, res) => {
    onHit?.(req.url ?? '');
    const file = join(root, (req.url ?? '/').split('?')[0]!.replace(/\.\.+/g, ''));
    if (!existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200).end(readFileSync(file));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'syndicast-hlsproxy-'));
  execFileSync(testFfmpeg(), [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '25', '-c:a', 'aac',
    '-f', 'hls', '-hls_time', '1', '-hls_list_size', '0', '-hls_playlist_type', 'vod', '-hls_segment_filename', join(dir, 'seg%d.ts'), join(dir, 'generated.m3u8'),
  ]);
  origin = serve(dir);
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  originPort = (origin.address() as AddressInfo).port;
  other = serve(dir, (u) => otherHits.push(u));
  await new Promise<void>((r) => other.listen(0, '127.0.0.2', r));
  const otherPort = (other.address() as AddressInfo).port;
  // A master playlist with one variant; the variant names a segment of its own origin, one on another
  // loopback address and one on the cloud metadata address.
  writeFileSync(join(dir, 'master.m3u8'), '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nmedia.m3u8\n');
  writeFileSync(
    join(dir, 'media.m3u8'),
    ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-PLAYLIST-TYPE:VOD',
      '#EXTINF:1.0,', 'seg0.ts', '#EXTINF:1.0,', `http://127.0.0.2:${otherPort}/seg1.ts`, '#EXTINF:1.0,', 'http://169.254.169.254/latest/meta-data/seg2.ts', '#EXT-X-ENDLIST', ''].join('\n'),
  );
  // ALLOW_PRIVATE_DESTINATIONS off, with this test's one exception: its own source origin.
  const guard = destinationGuard({ allowPrivate: false });
  class OneOriginAgent extends http.Agent {
    override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
      if (options.host === '127.0.0.1' && Number(options.port) === originPort) return super.createConnection(options, cb);
      return (guard.httpAgent as unknown as OneOriginAgent).createConnection(options, cb);
    }
  }
  const testGuard: ProxyGuard = { httpAgent: new OneOriginAgent(), httpsAgent: guard.httpsAgent };
  proxy = await HlsProxy.start(testGuard, pino({ level: 'silent' }));
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  origin?.close();
  other?.close();
});

/** ffmpeg copying an HLS input into a file, as the relay's pull does (`-f hls -protocol_whitelist http,tcp`). */
async function pull(input: string, out: string, viaProxy: boolean): Promise<number | null> {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', ...(viaProxy ? ['-f', 'hls', '-protocol_whitelist', 'http,tcp'] : []), '-i', input, '-map', '0:v?', '-map', '0:a?', '-c', 'copy', '-f', 'mpegts', '-y', out];
  const child = spawn(testFfmpeg(), args, { stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return code;
}

test('rewritePlaylist points every URI (media lines and URI attributes) at the proxy', () => {
  const base = new URL('http://a.example/live/index.m3u8');
  const out = rewritePlaylist('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="key.bin"\n#EXT-X-MAP:URI="/init.mp4"\n#EXTINF:1,\nseg0.ts\nhttp://b.example/x.ts\n', base, (u) => `P(${u.toString()})`);
  expect(out).toBe('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="P(http://a.example/live/key.bin)"\n#EXT-X-MAP:URI="P(http://a.example/init.mp4)"\n#EXTINF:1,\nP(http://a.example/live/seg0.ts)\nP(http://b.example/x.ts)\n');
});

test('read directly, the playlist makes ffmpeg fetch a segment from another (private) address', async () => {
  otherHits = [];
  await pull(`http://127.0.0.1:${originPort}/master.m3u8`, join(dir, 'direct.ts'), false);
  expect(otherHits).toContain('/seg1.ts');
}, 60_000);

test('through the proxy, the allowed origin is relayed and the segments on private addresses are refused: no request reaches them', async () => {
  otherHits = [];
  const session = proxy.open(`http://127.0.0.1:${originPort}/master.m3u8`);
  const out = join(dir, 'proxied.ts');
  try {
    await pull(session.url, out, true);
    expect(otherHits).toEqual([]);
    expect(session.lastRefusal).toMatch(/^refused http:\/\/(127\.0\.0\.2|169\.254\.169\.254)/);
    // The allowed segment came through (ffmpeg went on past the refused ones).
    expect(existsSync(out) && statSync(out).size).toBeGreaterThan(10_000);
  } finally {
    session.close();
  }
  // A closed session (or a made-up token) fetches nothing.
  const r = await fetch(session.url);
  expect(r.status).toBe(404);
}, 60_000);

/**
 * Found running the relay by hand: a live source whose playlist stopped moving (its packager died, the
 * list kept) was relayed in a loop. The pull's ffmpeg stalls and is restarted, each run starts three
 * segments from the list's end, and the proxy handed it the same segments every time: every platform
 * got the show's last seconds again every ~10 s, reported `sending`. A session now leaves out of a live
 * media playlist the leading segments it served whole already, the media sequence moved on with them.
 */
test('a live playlist that stops moving is not served again: segments a pull got whole are left out of its later playlists', async () => {
  writeFileSync(
    join(dir, 'stuck.m3u8'),
    ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:7', '#EXTINF:1.0,', 'seg0.ts', '#EXTINF:1.0,', 'seg1.ts', '#EXTINF:1.0,', 'seg2.ts', ''].join('\n'),
  );
  const session = proxy.open(`http://127.0.0.1:${originPort}/stuck.m3u8`);
  const segmentsOf = (list: string): string[] => list.split('\n').filter((l) => l && !l.startsWith('#'));
  try {
    const first = await (await fetch(session.url)).text();
    expect(segmentsOf(first)).toHaveLength(3);
    // A run of ffmpeg reads the first two segments whole, then is restarted: the list it reads next.
    // (ffmpeg asks for each file from its start: `Range: bytes=0-`.)
    for (const seg of segmentsOf(first).slice(0, 2)) expect((await fetch(seg, { headers: { range: 'bytes=0-' } })).status).toBe(200);
    const again = await (await fetch(session.url)).text();
    expect({ segments: segmentsOf(again), sequence: /#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(again)?.[1], durations: again.match(/#EXTINF/g)?.length }).toEqual({ segments: [segmentsOf(first)[2]], sequence: '9', durations: 1 });
    // Another pull (a new session) gets the whole list.
    const other = proxy.open(`http://127.0.0.1:${originPort}/stuck.m3u8`);
    expect(segmentsOf(await (await fetch(other.url)).text())).toHaveLength(3);
    other.close();
  } finally {
    session.close();
  }
}, 30_000);
