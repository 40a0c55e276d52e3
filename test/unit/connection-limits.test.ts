/** src/lib/connection-limits.ts: the API's bound on connections, from the process's open-files limit. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { loadConfig } from '../../src/config/config.js';
import {
  closeServerNow,
  connectionsCheckingInterval,
  HLS_PROXY_CONNECTION_SHARE,
  HTTP_CONNECTION_SHARE,
  HTTP_IDLE_TIMEOUT_MS,
  HTTP_REQUEST_TIMEOUT_MS,
  limitConnections,
  limitHttpServer,
  maxHttpConnections,
  maxRtmpConnections,
  METRICS_CONNECTION_SHARE,
  openFilesLimit,
  RTMP_CONNECTION_SHARE,
} from '../../src/lib/connection-limits.js';
import { serveProcessMetrics } from '../../src/lib/metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'limits-'));
function limits(line: string): string {
  const p = join(dir, `limits-${Math.random().toString(36).slice(2)}`);
  writeFileSync(p, `Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \n${line}\n`);
  return p;
}

test('openFilesLimit reads the soft limit; unlimited or unreadable is no bound', () => {
  expect(openFilesLimit(limits('Max open files            20000                40000                files     '))).toBe(20000);
  expect(openFilesLimit(limits('Max open files            unlimited            unlimited            files     '))).toBeUndefined();
  expect(openFilesLimit(join(dir, 'absent'))).toBeUndefined();
});

test('maxHttpConnections and maxRtmpConnections leave a quarter of the descriptors to the rest of the process', () => {
  expect(maxHttpConnections(1024)).toBe(640);
  expect(maxRtmpConnections(1024)).toBe(128);
  expect(maxHttpConnections(20000)).toBe(12500);
  expect(maxRtmpConnections(20000)).toBe(2500);
  expect(maxHttpConnections(8)).toBe(16);
  expect(maxHttpConnections(0)).toBeUndefined();
});

test('the shares of the descriptors: API 5/8, RTMP 1/8, HLS proxy 1/16, METRICS_PORT 1/64; 11/64 left for Redis, platforms and ffmpeg pipes', () => {
  expect([HTTP_CONNECTION_SHARE, RTMP_CONNECTION_SHARE, HLS_PROXY_CONNECTION_SHARE, METRICS_CONNECTION_SHARE]).toEqual([5 / 8, 1 / 8, 1 / 16, 1 / 64]);
  expect(1 - HTTP_CONNECTION_SHARE - RTMP_CONNECTION_SHARE - HLS_PROXY_CONNECTION_SHARE - METRICS_CONNECTION_SHARE).toBe(11 / 64);
});

test("limitConnections (the API's server, src/api/app.ts): its share of the descriptors, the same as maxHttpConnections; no bound when the limit is unknown", () => {
  const api = createServer();
  limitConnections(api, HTTP_CONNECTION_SHARE, 1024);
  expect(api.maxConnections).toBe(maxHttpConnections(1024));
  expect(api.maxConnections).toBe(640);
  const unbounded = createServer();
  limitConnections(unbounded, HTTP_CONNECTION_SHARE, 0);
  expect(unbounded.maxConnections ?? Infinity).toBe(Infinity);
});

/** Opens `n` connections that send `first` (nothing by default); resolves once each connected or failed. */
async function openMany(port: number, n: number, first = ''): Promise<Socket[]> {
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: n }, () => new Promise<void>((res) => {
      const s = connect(port, '127.0.0.1');
      sockets.push(s);
      s.on('error', () => res());
      s.once('connect', () => {
        if (first) s.write(first);
        res();
      });
    })),
  );
  return sockets;
}

test('limitHttpServer (HLS proxy, METRICS_PORT, simulators): connections over the share are closed at once, and the idle and request timeouts are the API\'s', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  // 1/16 of 1024 descriptors: 64 connections.
  limitHttpServer(server, HLS_PROXY_CONNECTION_SHARE, 1024);
  expect({ max: server.maxConnections, idle: server.timeout, headers: server.headersTimeout, request: server.requestTimeout }).toEqual({
    max: 64,
    idle: HTTP_IDLE_TIMEOUT_MS,
    headers: HTTP_REQUEST_TIMEOUT_MS,
    request: HTTP_REQUEST_TIMEOUT_MS,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const sockets = await openMany((server.address() as AddressInfo).port, 100);
  try {
    // The server closes them as it accepts them, which may come after every client's connect (the kernel
    // completes the handshake): waited for, not slept for — after a stall of the loop the 300 ms sleep
    // this was ended before the accepts had run. 10 s is still a third of the idle and request timeouts.
    const closed = (): number => sockets.filter((s) => s.destroyed || s.closed).length;
    for (const deadline = Date.now() + 10_000; closed() < 36 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(closed()).toBeGreaterThanOrEqual(36);
  } finally {
    for (const s of sockets) s.destroy();
    await closeServerNow(server);
  }
});

test('HTTP_IDLE_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS: 30 s by default, at least 1 s; Node checks for requests over time every 30 s or every request timeout when shorter', () => {
  const defaults = loadConfig({}, '/nonexistent');
  expect([defaults.httpIdleTimeoutMs, defaults.httpRequestTimeoutMs]).toEqual([HTTP_IDLE_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS]);
  expect([HTTP_IDLE_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS]).toEqual([30_000, 30_000]);
  const set = loadConfig({ HTTP_IDLE_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2500' }, '/nonexistent');
  expect([set.httpIdleTimeoutMs, set.httpRequestTimeoutMs]).toEqual([1000, 2500]);
  expect(() => loadConfig({ HTTP_IDLE_TIMEOUT_MS: '999' }, '/nonexistent')).toThrow(/HTTP_IDLE_TIMEOUT_MS/);
  expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '999' }, '/nonexistent')).toThrow(/HTTP_REQUEST_TIMEOUT_MS/);
  expect([connectionsCheckingInterval(HTTP_REQUEST_TIMEOUT_MS), connectionsCheckingInterval(60_000), connectionsCheckingInterval(2500)]).toEqual([30_000, 30_000, 2500]);
});

test('limitHttpServer with the timeouts of the settings: a silent connection is closed after the idle timeout, an unfinished request cut within two request timeouts', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  limitHttpServer(server, HLS_PROXY_CONNECTION_SHARE, 1024, { idleMs: 1000, requestMs: 1500 });
  expect({ idle: server.timeout, headers: server.headersTimeout, request: server.requestTimeout }).toEqual({ idle: 1000, headers: 1500, request: 1500 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const [silent] = await openMany(port, 1);
  const [slow] = await openMany(port, 1, 'GET / HTTP/1.1\r\nHost: x\r\n');
  // A header line every 300 ms: never idle for the idle timeout, never finished.
  const drip = setInterval(() => slow!.writable && slow!.write('X-Slow: 1\r\n'), 300);
  const t0 = Date.now();
  const closedAt = (s: Socket) => new Promise<number>((r) => s.once('close', () => r(Date.now() - t0)));
  try {
    const [silentMs, slowMs] = await Promise.all([closedAt(silent!), closedAt(slow!)]);
    // Closed after about 1 s and 1.5 to 3 s; the bound leaves a loaded machine room, and is still far
    // below what Node's default check (every 30 s) would have taken to cut the slow one.
    expect(silentMs).toBeLessThan(10_000);
    expect(slowMs).toBeLessThan(10_000);
  } finally {
    clearInterval(drip);
    silent!.destroy();
    slow!.destroy();
    await closeServerNow(server);
  }
});

test('METRICS_PORT: closing its server does not wait on a client that never finishes its request', async () => {
  const metrics = await serveProcessMetrics('127.0.0.1', 0);
  const sockets = await openMany(Number(new URL(metrics.url).port), 3, 'GET /metrics HTTP/1.1\r\nHost: x\r\n');
  try {
    await new Promise((r) => setTimeout(r, 200));
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([metrics.close().then(() => 'closed'), new Promise((r) => (timer = setTimeout(() => r('held'), 3000)))]);
    clearTimeout(timer);
    expect(outcome).toBe('closed');
  } finally {
    for (const s of sockets) s.destroy();
  }
});
