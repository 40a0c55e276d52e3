/**
 * `npm start` (all roles in one process) while Redis is down (issue 8 item 2, the external contract §3): the HTTP
 * API answers 503 problem+json at once — signed events and /health/ready alike — instead of queueing
 * the request's commands on a client that waits for Redis forever, whatever other roles share the
 * process. A real child process (`src/main/all.ts`, what `npm start` runs) against a redis-server this
 * test spawns and kills; after Redis is back the same process accepts events again by itself. And
 * SIGTERM while Redis is down ends the process within Docker's default 10 s stop grace, exit 0 (it
 * took all of SHUTDOWN_TIMEOUT_MS, 25 s, and exited 1), with what it had acknowledged still in Redis.
 */
import { randomBytes } from 'node:crypto';
import { signatureHeader } from '../../src/sources/signature.js';
import { Keys } from '../../src/store/keys.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, sampleShow, showEvent, waitFor } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

/** Far above the fail-fast client's 2 s command timeout: no answer by then means the request hangs. */
const HANG_MS = 15_000;

let redis: TestRedis;
let child: WorkerProcess;
let url: string;
let redisStopped = false;
const extraChildren: WorkerProcess[] = [];
const prefix = 't' + randomBytes(3).toString('hex');

/** `npm start` (src/main/all.ts) against the test's redis-server; resolves once /health/ready is 200. */
function startAll(logLevel = 'warn', env: Record<string, string> = {}): Promise<{ child: WorkerProcess; url: string }> {
  return startAllProcess(redis.env, { ...env, LOG_LEVEL: logLevel, ALLOW_PRIVATE_DESTINATIONS: 'true', KEY_PREFIX: prefix, SWEEP_INTERVAL_MS: '1000' });
}

beforeAll(async () => {
  redis = await startRedis();
  ({ child, url } = await startAll());
}, 90_000);
afterAll(async () => {
  await child?.kill('SIGTERM');
  for (const c of extraChildren) await c.kill('SIGKILL');
  if (redisStopped) await redis.start();
  await redis?.destroy();
});

function signedEvent(partnerId: string, secret: string, event: unknown, webhookId: string): Promise<Response> {
  const body = JSON.stringify(event);
  const ts = Math.floor(Date.now() / 1000);
  return fetch(`${url}/v1/partners/${partnerId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': webhookId, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, webhookId, ts, body) },
    body,
    signal: AbortSignal.timeout(HANG_MS),
  });
}

test('npm start: signed events and /health/ready answer 503 while Redis is down (no hang), 202 again after it is back', async () => {
  const created = await fetch(`${url}/v1/partners`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'ns', name: 'npm start' }),
  });
  expect(created.status).toBe(201);
  const { webhookSecret: secret } = (await created.json()) as { webhookSecret: string };
  const target = await fetch(`${url}/v1/partners/ns/targets?verify=false`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'ns-yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r' }, baseUrl: 'http://127.0.0.1:9', commissionRateBps: 500 }),
  });
  expect(target.status).toBe(201);
  expect((await signedEvent('ns', secret, showEvent('show.scheduled', sampleShow('up'), '2026-11-24T17:00:00Z'), 'msg_ns_up')).status).toBe(202);

  redisStopped = true;
  await redis.stop('SIGKILL');

  // Many at once: every one is answered (503), none waits for Redis to come back.
  const during = await Promise.all(
    Array.from({ length: 20 }, (_, i) => signedEvent('ns', secret, showEvent('show.scheduled', sampleShow(`down${i}`), '2026-11-24T17:05:00Z'), `msg_ns_down_${i}`)),
  );
  for (const r of during) {
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
  const ready = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(HANG_MS) });
  expect(ready.status).toBe(503);
  expect(ready.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const live = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(HANG_MS) });
  expect(live.status).toBe(200);

  await redis.start();
  redisStopped = false;
  await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, 30_000, 200);
  let n = 0;
  const statuses: number[] = [];
  await waitFor(
    async () => {
      const r = await signedEvent('ns', secret, showEvent('show.scheduled', sampleShow('back'), '2026-11-24T17:10:00Z'), `msg_ns_back_${++n}`);
      statuses.push(r.status);
      return r.status === 202;
    },
    30_000,
    200,
  );
  expect(statuses.filter((s) => s !== 503)).toEqual([202]);
  // The process is still the one started at the beginning.
  expect(child.proc.exitCode).toBeNull();
}, 120_000);

test('npm start: SIGTERM while Redis is down exits 0 within 10 s (Docker\'s stop grace), and what it acknowledged stays stored', async () => {
  const created = await fetch(`${url}/v1/partners`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'ns2', name: 'npm start stop' }),
  });
  expect(created.status).toBe(201);
  const { webhookSecret: secret } = (await created.json()) as { webhookSecret: string };
  expect((await signedEvent('ns2', secret, showEvent('show.scheduled', sampleShow('acked'), '2026-11-24T17:00:00Z'), 'msg_ns2_acked')).status).toBe(202);

  redisStopped = true;
  await redis.stop('SIGKILL');
  // The process has seen Redis go (its readiness says so).
  await waitFor(async () => (await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(HANG_MS) })).status === 503, 10_000, 50);
  const t0 = Date.now();
  const exited = new Promise<number | null>((res) => child.proc.once('exit', (code) => res(code)));
  child.proc.kill('SIGTERM');
  const code = await exited;
  const tookMs = Date.now() - t0;
  expect({ code, within10s: tookMs < 10_000 }).toEqual({ code: 0, within10s: true });
  expect(child.output()).not.toMatch(/killed by timeout/);

  await redis.start();
  redisStopped = false;
  const c = redis.client();
  const desired = await c.hgetall(new Keys(prefix).desired('ns2', 'acked'));
  c.disconnect();
  expect(Object.keys(desired).length).toBeGreaterThan(0);
}, 90_000);

test('npm start: SIGTERM right after Redis came back from an outage exits 0 within 10 s (connections still between reconnect attempts are not waited for)', async () => {
  // Redis down 5 s: by then each connection waits ~1.2-2 s between reconnect attempts (retryStrategy
  // min(times*200, 2000), each with its own phase), so 150 ms after Redis answers again the main
  // client may be ready while the dispatcher's and BullMQ workers' connections are still 'reconnecting'.
  // An ioredis client disconnected in that state stays 'reconnecting' and what is queued on it never
  // settles: the shutdown waited for them until SHUTDOWN_TIMEOUT_MS (25 s) and exited 1. Two children
  // (through the same outage, side by side: each connection has its own phase), so that the window is
  // hit even if one connection happens to reconnect first. SHUTDOWN_DRAIN_MS=0: the workers close at
  // once, as in a process without the API; with the default drain (1 s, then REFUSE_MS and
  // CLOSE_SETTLE_MS: 1.7 s) every connection had reconnected before the workers closed, and this test
  // passed without endBetweenReconnects' closeHandler (both children hung with it removed and no drain).
  const children = await Promise.all([0, 1].map(() => startAll('info', { SHUTDOWN_DRAIN_MS: '0' })));
  for (const started of children) extraChildren.push(started.child);
  // Every role started and SIGTERM handled (the API answers before the workers and the scheduler run).
  await waitFor(async () => children.every((started) => started.child.output().includes('syndicast started')), 30_000, 100);
  redisStopped = true;
  await redis.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 5000));
  await redis.start();
  redisStopped = false;
  await new Promise((r) => setTimeout(r, 150));
  const results = await Promise.all(
    children.map(async (started, round) => {
      const t0 = Date.now();
      const exited = new Promise<number | string | null>((res) => started.child.proc.once('exit', (code, signal) => res(code ?? signal)));
      started.child.proc.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 12_000))]);
      const tookMs = Date.now() - t0;
      return { round, code, within10s: tookMs < 10_000, output: code === 0 ? '' : started.child.output().slice(-2500) };
    }),
  );
  expect(results).toEqual([0, 1].map((round) => ({ round, code: 0, within10s: true, output: '' })));
  for (const started of children) expect(started.child.output()).not.toMatch(/killed by timeout/);
}, 120_000);
