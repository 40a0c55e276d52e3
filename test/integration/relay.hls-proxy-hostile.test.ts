/**
 * The relay's loopback HLS proxy (src/relay/hls.proxy.ts) against a hostile source, over real TCP:
 *
 * - a source that answers `101 Switching Protocols` with an Upgrade: Node closes such a request with
 *   neither a response nor an error, and the proxy's request for it waited for good (ffmpeg with it,
 *   until the relay restarted ffmpeg; the proxy's handler never ended). Now a 502 at once.
 * - a source that trickles a playlist without end: the proxy kept reading it after ffmpeg (the client)
 *   had gone, for as long as the source went on, one more such upstream connection on every ffmpeg
 *   restart. Now the upstream request ends with its client, and that is no warning (the client went
 *   away, not the source: a debug line); a source that fails mid-playlist still is one.
 * - a source that trickles to a client still connected (a playlist, or a segment's body): the socket's
 *   idle timeout never fired, and ffmpeg waited on it until the relay restarted ffmpeg. Now each
 *   request has a total deadline (RELAY_HLS_FETCH_TIMEOUT_MS): a 504, or the body cut off, and ffmpeg
 *   fails its fetch.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { HlsProxy } from '../../src/relay/hls.proxy.js';
import { testFfmpeg } from '../helpers/ffmpeg.js';
import { logSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/service.js';

type Line = { level: number; msg: string; err?: { message: string } };
let proxy: HlsProxy;
/** The same proxy with a 1 s deadline per request. */
let quick: HlsProxy;
const QUICK_MS = 1000;
const sink = logSink<Line>('debug');
const quickSink = logSink<Line>('debug');
let source: Server;
let port = 0;
const open = new Set<Socket>();

beforeAll(async () => {
  // The test's source is on loopback: plain agents (the guard's checks are relay.hls-proxy.test.ts's).
  const agents = { httpAgent: new http.Agent(), httpsAgent: new (await import('node:https')).Agent() };
  proxy = await HlsProxy.start(agents, sink.log);
  quick = await HlsProxy.start(agents, quickSink.log, undefined, QUICK_MS);
  source = createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => {
      const path = d.toString('latin1').split(' ')[1];
      if (path === '/upgrade.m3u8') s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      if (path === '/trickle.m3u8') {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\n\r\n#EXTM3U\n');
        const t = setInterval(() => s.write('#\n'), 200);
        s.on('close', () => clearInterval(t));
      }
      if (path === '/trickle-sized.m3u8') {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\nContent-Length: 1000000\r\n\r\n#EXTM3U\n');
        const t = setInterval(() => s.write('#\n'), 200);
        s.on('close', () => clearInterval(t));
      }
      if (path === '/trickle.ts') {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: 1000000\r\n\r\n');
        const t = setInterval(() => s.write(Buffer.alloc(188, 0x47)), 200);
        s.on('close', () => clearInterval(t));
      }
      if (path === '/broken.m3u8') {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\nContent-Length: 1000\r\n\r\n#EXTM3U\n#EXT-X-VERSION:3\n');
        setTimeout(() => s.destroy(), 100);
      }
    });
  });
  await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
  port = (source.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy?.close();
  await quick?.close();
  for (const s of open) s.destroy();
  await new Promise<void>((r) => source.close(() => r()));
});

test('a source answering 101 with an Upgrade: the proxy answers 502 at once', async () => {
  const s = proxy.open(`http://127.0.0.1:${port}/upgrade.m3u8`);
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), 5_000);
  const status = await fetch(s.url, { signal: ac.signal }).then(
    (r) => r.status,
    () => 'no answer within 5 s',
  );
  clearTimeout(t);
  s.close();
  expect(status).toBe(502);
});

test('a source trickling a playlist without end: its upstream connection ends when the client leaves', async () => {
  const s = proxy.open(`http://127.0.0.1:${port}/trickle.m3u8`);
  const ac = new AbortController();
  const asked = fetch(s.url, { signal: ac.signal }).catch(() => undefined);
  await waitFor(async () => open.size === 1, 5_000, 20);
  await new Promise((r) => setTimeout(r, 500)); // the proxy reads the playlist as it trickles
  ac.abort(); // ffmpeg gone (the relay restarted it)
  await asked;
  await waitFor(async () => open.size === 0, 5_000, 50);
  s.close();
  // Its client went away, not the source: a debug line, no warning.
  await waitFor(async () => sink.lines.some((l) => l.msg === 'hls proxy request ended: its client went away'), 5_000, 20);
  expect(sink.lines.filter((l) => l.level >= 40)).toEqual([]);
});

test('ffmpeg leaving a playlist (with a length) half read: a debug line, not a warning', async () => {
  const before = sink.lines.length;
  const s = proxy.open(`http://127.0.0.1:${port}/trickle-sized.m3u8`);
  const ac = new AbortController();
  const asked = fetch(s.url, { signal: ac.signal }).catch(() => undefined);
  await waitFor(async () => open.size === 1, 5_000, 20);
  await new Promise((r) => setTimeout(r, 500));
  ac.abort();
  await asked;
  await waitFor(async () => open.size === 0, 5_000, 50);
  s.close();
  await waitFor(async () => sink.lines.slice(before).some((l) => l.msg === 'hls proxy request ended: its client went away'), 5_000, 20);
  // (It used to be `hls proxy request failed` at warn: the source's upstream answer "aborted".)
  expect(sink.lines.filter((l) => l.level >= 40)).toEqual([]);
});

test('a source failing mid-playlist is still a warning', async () => {
  const before = sink.lines.length;
  const s = proxy.open(`http://127.0.0.1:${port}/broken.m3u8`);
  expect((await fetch(s.url)).status).toBe(502);
  s.close();
  expect(sink.lines.slice(before).filter((l) => l.level >= 40).map((l) => l.msg)).toEqual(['hls proxy request failed']);
});

/** What a client still connected gets for `path` through the 1 s proxy: its status and whether the body came whole; 'no end' when it took 10 s. */
async function quickly(path: string): Promise<{ status: number; body: 'whole' | 'cut off' } | 'no end'> {
  const s = quick.open(`http://127.0.0.1:${port}${path}`);
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), 10_000);
  try {
    const r = await fetch(s.url, { signal: ac.signal });
    const body = await r.arrayBuffer().then(
      () => 'whole' as const,
      () => (ac.signal.aborted ? undefined : ('cut off' as const)),
    );
    return body ? { status: r.status, body } : 'no end';
  } catch {
    return 'no end';
  } finally {
    clearTimeout(t);
    s.close();
  }
}

test('a source trickling a playlist to a client still connected: a 504 at the deadline, and the upstream connection ends', async () => {
  const before = quickSink.lines.length;
  expect(await quickly('/trickle.m3u8')).toEqual({ status: 504, body: 'whole' });
  await waitFor(async () => open.size === 0, 5_000, 50);
  const warned = quickSink.lines.slice(before).filter((l) => l.level >= 40);
  expect(warned.map((l) => [l.msg, l.err?.message])).toEqual([['hls proxy request failed', `the source took longer than ${QUICK_MS} ms (RELAY_HLS_FETCH_TIMEOUT_MS)`]]);
});

test("a source trickling a segment's body: the body is cut off at the deadline", async () => {
  expect(await quickly('/trickle.ts')).toEqual({ status: 200, body: 'cut off' });
  await waitFor(async () => open.size === 0, 5_000, 50);
});

test('ffmpeg reading a trickled playlist through the proxy fails its fetch (it used to wait until the relay restarted it)', async () => {
  const s = quick.open(`http://127.0.0.1:${port}/trickle.m3u8`);
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'hls', '-protocol_whitelist', 'http,tcp', '-i', s.url, '-c', 'copy', '-f', 'null', '-'];
  const child = spawn(testFfmpeg(), args, { stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  s.close();
  expect(code === null ? 'killed after 15 s' : code).not.toBe('killed after 15 s');
  expect(code).not.toBe(0);
  await waitFor(async () => open.size === 0, 5_000, 50);
}, 30_000);
