/**
 * SIGTERM while Redis is frozen (its process stopped, SIGSTOP: a hung VM, a paused container, a
 * redis-server stuck in a long fork or fsync). Its connections stay open and the clients stay
 * `ready`, so the shutdown's "Redis unreachable for 1 s" check never fired: the first SIGTERM sat out
 * all of SHUTDOWN_TIMEOUT_MS (25 s) and exited 1, past Docker's 10 s stop grace. The shutdown now
 * also counts a Redis that answers no PING for 1 s as unreachable: exit 0 within 10 s, as with a
 * Redis that is down, and what was acknowledged before is still there once Redis runs again.
 */
import { randomBytes } from 'node:crypto';
import { signatureHeader } from '../../src/sources/signature.js';
import { Keys } from '../../src/store/keys.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, sampleShow, showEvent } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

let redis: TestRedis;
let redisPid = 0;
let frozen = false;
let child: WorkerProcess | undefined;
const prefix = 't' + randomBytes(3).toString('hex');

beforeAll(async () => {
  redis = await startRedis();
  const c = redis.client();
  redisPid = Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1]);
  c.disconnect();
}, 30_000);
afterAll(async () => {
  if (frozen) process.kill(redisPid, 'SIGCONT');
  await child?.kill('SIGKILL');
  await redis?.destroy();
});

test('npm start: SIGTERM while Redis is frozen (SIGSTOP) exits 0 within 10 s, and what it acknowledged stays stored', async () => {
  const started = await startAllProcess(redis.env, { KEY_PREFIX: prefix, LOG_LEVEL: 'warn' });
  child = started.child;
  const { url } = started;
  const created = await fetch(`${url}/v1/partners`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'fz', name: 'frozen' }),
  });
  expect(created.status).toBe(201);
  const { webhookSecret: secret } = (await created.json()) as { webhookSecret: string };
  const body = JSON.stringify(showEvent('show.scheduled', sampleShow('acked'), '2026-11-24T17:00:00Z'));
  const ts = Math.floor(Date.now() / 1000);
  const sent = await fetch(`${url}/v1/partners/fz/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': 'msg_fz', 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, 'msg_fz', ts, body) },
    body,
  });
  expect(sent.status).toBe(202);

  process.kill(redisPid, 'SIGSTOP');
  frozen = true;
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  const exited = new Promise<number | string | null>((res) => child!.proc.once('exit', (code, signal) => res(code ?? signal)));
  child.proc.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
  const tookMs = Date.now() - t0;
  process.kill(redisPid, 'SIGCONT');
  frozen = false;
  expect({ code, within10s: tookMs < 10_000, tookMs: Math.round(tookMs / 1000) * 1000 }).toMatchObject({ code: 0, within10s: true });
  expect(child.output()).not.toMatch(/killed by timeout/);

  const c = redis.client();
  const desired = await c.hgetall(new Keys(prefix).desired('fz', 'acked'));
  c.disconnect();
  expect(Object.keys(desired).length).toBeGreaterThan(0);
}, 90_000);
