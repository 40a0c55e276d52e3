/**
 * The relay's loopback HLS proxy (src/relay/hls.proxy.ts) against a hostile source, over real TCP:
 *
 * - a source that answers `101 Switching Protocols` with an Upgrade: Node closes such a request with
 *   neither a response nor an error, and the proxy's request for it waited for good (ffmpeg with it,
 *   until the relay restarted ffmpeg; the proxy's handler never ended). Now a 502 at once.
 * - a source that trickles a playlist without end: the proxy kept reading it after ffmpeg (the client)
 *   had gone, for as long as the source went on, one more such upstream connection on every ffmpeg
 *   restart. Now the upstream request ends with its client.
 */
import http from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { HlsProxy } from '../../src/relay/hls.proxy.js';
import { waitFor } from '../helpers/service.js';

let proxy: HlsProxy;
let source: Server;
let port = 0;
const open = new Set<Socket>();

beforeAll(async () => {
  // The test's source is on loopback: plain agents (the guard's checks are relay.hls-proxy.test.ts's).
  proxy = await HlsProxy.start({ httpAgent: new http.Agent(), httpsAgent: new (await import('node:https')).Agent() }, pino({ level: 'silent' }));
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
    });
  });
  await new Promise<void>((r) => source.listen(0, '127.0.0.1', r));
  port = (source.address() as AddressInfo).port;
});

afterAll(async () => {
  await proxy?.close();
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
});
