/**
 * SIGTERM under a keep-alive load (a rolling deploy): `npm start`'s entry (src/main/all.ts) as a child
 * process, 30 partner clients each on its own keep-alive connection (http.Agent keepAlive, one socket)
 * sending signed events in a loop, SIGTERM mid-load. The shutdown closed idle keep-alive connections
 * at once, while their clients were sending the next request: about 21 of 30 clients saw ECONNRESET /
 * socket hang up on every deploy. Now the API first stops being ready (/health/ready 503), serves on
 * for SHUTDOWN_DRAIN_MS with `Connection: close` on every response (each client moves to a new
 * connection after its current request), answers a request that arrives during the close with a 503
 * problem+json, `Connection: close` and `Retry-After`, then closes. The clients here do what an HTTP
 * client does: a connection the server said `Connection: close` on is not used again; no other retry.
 * Expected: no kept-alive connection reset, no status but 202 and 503, every 202 stored in Redis,
 * exit 0. (A new connection still in the accept queue when the server stops listening is reset by the
 * kernel; a few of those may happen, because these clients, unlike a load balancer, keep opening
 * connections to the instance that is shutting down.)
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { signatureHeader } from '../../src/sources/signature.js';
import { Keys } from '../../src/store/keys.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, sampleShow, showEvent, waitFor } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

const CLIENTS = 30;

let redis: TestRedis;
let child: WorkerProcess | undefined;
const prefix = 't' + randomBytes(3).toString('hex');

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await child?.kill('SIGKILL');
  await redis?.destroy();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(agent: Agent, url: string, path: string, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    // Whether the request went on a kept-alive connection of an earlier one (node:http's reusedSocket).
    req.on('error', (err) => reject(Object.assign(err, { reused: req.reusedSocket })));
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    req.end(body);
  });
}

test('npm start: SIGTERM under a 30-client keep-alive load of signed events resets no connection; every 202 is stored; the rest are clean 503s', async () => {
  const started = await startAllProcess(redis.env, { KEY_PREFIX: prefix, LOG_LEVEL: 'warn', SHUTDOWN_DRAIN_MS: '1500' });
  child = started.child;
  const { url } = started;
  const created = await fetch(`${url}/v1/partners`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'drain', name: 'drain' }),
  });
  expect(created.status).toBe(201);
  const { webhookSecret: secret } = (await created.json()) as { webhookSecret: string };

  const acked: string[] = [];
  /** Resets of a kept-alive connection the server had not said `Connection: close` on: the defect. */
  const resets: string[] = [];
  /**
   * Resets of a connection opened for this request: one still in the listening socket's accept queue
   * when the server stops listening is reset by the kernel (nothing the process can answer on).
   */
  const newConnectionResets: string[] = [];
  const others: string[] = [];
  const unavailable: Answer[] = [];
  let served = 0;
  let signalled = false;
  let servedAfterSigterm = 0;
  let sigtermAt = 0;
  /** When the last event sent after SIGTERM was answered 202 (stored). */
  let lastAckAfterSigterm = 0;
  let stop = false;

  const client = async (c: number): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; !stop; i++) {
        const showId = `c${c}-${i}`;
        const body = JSON.stringify(showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'));
        const id = `msg_${showId}`;
        const ts = Math.floor(Date.now() / 1000);
        let a: Answer;
        try {
          a = await post(agent, url, '/v1/partners/drain/events', { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) }, body);
        } catch (err) {
          const e = err as NodeJS.ErrnoException & { reused?: boolean };
          // The server is gone (nothing listens any more): this client is done.
          if (e.code === 'ECONNREFUSED') return;
          const what = `client ${c} request ${i}: ${e.code ?? ''} ${e.message}`;
          if (e.code === 'ECONNRESET' || e.code === 'EPIPE' || /socket hang up/.test(e.message)) (e.reused ? resets : newConnectionResets).push(what);
          else others.push(what);
          continue;
        }
        served++;
        if (signalled) servedAfterSigterm++;
        if (a.status === 202) {
          acked.push(showId);
          if (signalled) lastAckAfterSigterm = Date.now();
        }
        else if (a.status === 503) {
          unavailable.push(a);
          // As a careful client does: Retry-After honoured (then this server no longer listens).
          await new Promise((r) => setTimeout(r, Math.min(Number(a.headers['retry-after'] ?? 1), 5) * 1000));
        } else others.push(`client ${c} request ${i}: ${a.status} ${a.body.slice(0, 200)}`);
      }
    } finally {
      agent.destroy();
    }
  };

  const readiness: number[] = [];
  const probe = async (): Promise<void> => {
    while (!stop) {
      try {
        const r = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(5000) });
        readiness.push(r.status);
        await r.arrayBuffer();
      } catch {
        return; // refused: closed
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
  await waitFor(async () => served >= 300, 60_000, 20); // every client is on its keep-alive connection
  const exited = new Promise<number | string | null>((res) => child!.proc.once('exit', (code, signal) => res(code ?? signal)));
  signalled = true;
  sigtermAt = Date.now();
  child.proc.kill('SIGTERM');
  const probing = probe();
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
  stop = true;
  await Promise.all([...clients, probing]);

  expect({ code, resets: resets.slice(0, 10), resetCount: resets.length, others: others.slice(0, 10) }).toEqual({ code: 0, resets: [], resetCount: 0, others: [] });
  // The kernel's part: a client that honours Retry-After has backed off before the accept queue
  // closes (0 in every run seen; 13-27 of 30 without the 503 step on a loaded machine).
  expect(newConnectionResets.length <= 2 ? [] : newConnectionResets.slice(0, 5)).toEqual([]);
  // It kept serving for the drain window after SIGTERM, not ready meanwhile.
  expect(servedAfterSigterm).toBeGreaterThan(CLIENTS);
  // Events are still taken (202) well into the drain window (SHUTDOWN_DRAIN_MS 1500), not only the
  // ones already on their way: the drain is waited out before the 503s begin.
  expect(lastAckAfterSigterm - sigtermAt).toBeGreaterThanOrEqual(1000);
  expect(readiness).toContain(503);
  for (const a of unavailable) {
    expect(a.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(a.headers['connection']).toBe('close');
    expect(a.headers['retry-after']).toMatch(/^\d+$/);
  }

  // Every event answered 202 is in Redis.
  const keys = new Keys(prefix);
  const c = redis.client();
  const missing: string[] = [];
  for (const showId of acked) if ((await c.exists(keys.desired('drain', showId))) === 0) missing.push(showId);
  c.disconnect();
  expect({ acked: acked.length > 0, missing }).toEqual({ acked: true, missing: [] });
}, 120_000);
