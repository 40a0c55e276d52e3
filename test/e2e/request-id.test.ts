/**
 * Request ids (issue 11 item 5) against a real `npm start`-style child process (src/main/all.ts, every
 * role in one process, JSON logs on stdout at LOG_LEVEL=debug): a partner event sent with
 * `x-request-id` is answered with it, and the log lines of its whole journey carry it — the HTTP
 * request, the ingest, the sync job on the platform queue, and the mirror.updated delivery that sync
 * caused; an order event's attribution job too. Without a usable header the service makes an id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { sampleShow, showEvent, waitFor } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { FAKE_CLOCK_ENV } from '../helpers/worker-process.js';
import { signatureHeader } from '../../src/sources/signature.js';

const ADMIN = 'sk_admin_request_id_0123456789';
let redis: TestRedis;
let sim: TestSim;
let child: ChildProcess;
let out = '';
let url = '';
let receiver: Server;
let receiverUrl = '';
const received: string[] = [];

interface Line {
  msg?: string;
  requestId?: string;
  queue?: string;
  [k: string]: unknown;
}
function lines(): Line[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

beforeAll(async () => {
  redis = await startRedis();
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(body);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
  const root = resolve(import.meta.dirname ?? '.', '../..');
  child = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'src/main/all.ts')], {
    cwd: root,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      ...FAKE_CLOCK_ENV,
      REDIS_URL: redis.url,
      PORT: '0',
      RELAY_RTMP_PORT: '0', // not 1935: an npm start elsewhere on the machine holds it
      HOST: '127.0.0.1',
      ADMIN_API_KEY: ADMIN,
      SECRETS_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: 'debug',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'syndicast-reqid-')),
      KEY_PREFIX: 'r' + randomBytes(3).toString('hex'),
      // No sweep during the test: a sweep-made sync (no request id) must not win the race with the event's.
      SWEEP_INTERVAL_MS: '600000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  url = await waitFor(async () => lines().find((l) => typeof l['url'] === 'string' && String(l.msg).startsWith('syndicast started'))?.['url'] as string | undefined, 60_000, 100);
  url = url.replace('localhost', '127.0.0.1');
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    await new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGTERM');
    });
  }
  await sim?.close();
  await new Promise((r) => receiver?.close(r));
  await redis?.destroy();
});

async function api(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function signed(secret: string, event: unknown, requestId: string): Promise<Response> {
  const body = JSON.stringify(event);
  const id = `msg_${randomBytes(6).toString('hex')}`;
  const ts = Math.floor(Date.now() / 1000);
  return fetch(`${url}/v1/partners/rq/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) },
    body,
  });
}

test("one request id finds every log line of an event's journey: request, ingest, sync job, the delivery it caused", async () => {
  const p = await api('/v1/partners', { id: 'rq', name: 'Request ids' });
  expect(p.status).toBe(201);
  const secret = ((await p.json()) as { webhookSecret: string }).webhookSecret;
  expect((await api('/v1/partners/rq/targets', { id: 'rq-yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 })).status).toBe(201);
  expect((await api('/v1/partners/rq/endpoints', { url: receiverUrl, events: ['mirror.updated'] })).status).toBe(201);

  const rid = 'journey-7c1e9f';
  const r = await signed(secret, showEvent('show.scheduled', sampleShow('rq-show'), '2026-11-24T17:00:00Z'), rid);
  expect(r.status).toBe(202);
  expect(r.headers.get('x-request-id')).toBe(rid);
  // The mirror got its remote show and the partner heard about it.
  await waitFor(async () => received.some((b) => b.includes('"mirror.updated"') && b.includes('rq-show')), 60_000, 100);
  await waitFor(async () => lines().some((l) => l.requestId === rid && l.queue === 'delivery' && l.msg === 'job finished'), 30_000, 100);

  const mine = lines().filter((l) => l.requestId === rid);
  const msgs = mine.map((l) => `${l.msg}${l.queue ? ` [${String(l.queue).replace(/-\d+$/, '')}]` : ''}`);
  expect(msgs).toEqual(
    expect.arrayContaining([
      'incoming request',
      'show event stored; marked for sync',
      'request completed',
      'job started [sync-youtube]',
      'job finished [sync-youtube]',
      'job started [delivery]',
      'job finished [delivery]',
    ]),
  );
  // The id is on those lines only: another request's lines do not carry it.
  expect(lines().filter((l) => l.requestId && l.requestId !== rid).every((l) => !JSON.stringify(l).includes(rid))).toBe(true);

  // An order event: its attribution job carries the id of the request that delivered it.
  const oid = 'order-journey-41';
  const o = await signed(secret, { type: 'order.created', occurredAt: '2026-11-24T18:05:00Z', data: { order: { id: 'o-1', createdAt: '2026-11-24T18:05:00Z', lines: [], total: { amount: 1000, currency: 'USD' } } } }, oid);
  expect(o.status).toBe(202);
  await waitFor(async () => lines().some((l) => l.requestId === oid && l.queue === 'attribution' && l.msg === 'job finished'), 30_000, 100);
  expect(lines().filter((l) => l.requestId === oid).map((l) => l.msg)).toEqual(expect.arrayContaining(['incoming request', 'order event stored; attribution queued', 'job started', 'job finished']));
}, 120_000);

test('without a usable x-request-id the service makes one and answers it; the audit entry of an operator action carries it', async () => {
  const a = await api('/v1/partners');
  const made = a.headers.get('x-request-id');
  expect(made).toMatch(/^req_[A-Za-z0-9_-]{12}$/);
  const bad = await api('/v1/partners', undefined, { 'x-request-id': 'has spaces and "quotes"' });
  expect(bad.headers.get('x-request-id')).toMatch(/^req_/);
  const notFound = await api('/v1/nowhere', undefined, { 'x-request-id': 'nf-1' });
  expect(notFound.status).toBe(404);
  expect(notFound.headers.get('x-request-id')).toBe('nf-1');

  const rid = 'resync-5511';
  const rs = await fetch(`${url}/v1/partners/rq/shows/rq-show/mirrors/rq-yt/resync`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'x-request-id': rid } });
  expect(rs.status).toBe(202);
  const audit = (await (await api('/v1/audit?action=mirror.resync')).json()) as { entries: { requestId?: string }[] };
  expect(audit.entries[0]?.requestId).toBe(rid);
  await waitFor(async () => lines().some((l) => l.requestId === rid && String(l.queue).startsWith('sync-youtube') && l.msg === 'job finished'), 30_000, 100);
});
