/**
 * SECRETS_KEY changed across a restart without the rotation of docs/operations.md ("Secrets and
 * rotation"): the partner's stored webhook secret is sealed under a key the new process does not have.
 * Its events were a 500 (the decrypt error reached the error handler as an unknown one); now a 503
 * `secret-unreadable` problem whose detail tells ops to restore the key, with Retry-After (the partner
 * retries), and one error line in the log that names neither the secret nor the body. With the old key
 * back in SECRETS_KEY_PREVIOUS the same event is taken. Real `npm start` entry (src/main/all.ts) child
 * processes, one Redis, the config read from the environment as in production.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signatureHeader } from '../../src/sources/signature.js';
import { startAllProcess } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, sampleShow, showEvent, waitFor } from '../helpers/service.js';
import type { WorkerProcess } from '../helpers/worker-process.js';

let redis: TestRedis;
let svc: { child: WorkerProcess; url: string } | undefined;
const oldKey = randomBytes(32).toString('base64');
const newKey = randomBytes(32).toString('base64');
const shared = { KEY_PREFIX: 't' + randomBytes(3).toString('hex'), DATA_DIR: mkdtempSync(join(tmpdir(), 'syndicast-data-')), LOG_LEVEL: 'info' };

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await svc?.child.kill('SIGTERM');
  await redis?.destroy();
});

async function restart(env: Record<string, string>): Promise<{ child: WorkerProcess; url: string }> {
  await svc?.child.kill('SIGTERM');
  svc = await startAllProcess(redis.env, { ...shared, ...env });
  return svc;
}

function sendEvent(url: string, secret: string, id: string, showId: string): Promise<Response> {
  const body = JSON.stringify(showEvent('show.scheduled', sampleShow(showId), new Date().toISOString()));
  const ts = Math.floor(Date.now() / 1000);
  return fetch(`${url}/v1/partners/sk/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) }, body });
}

test('events of a partner whose secret the new SECRETS_KEY cannot open are a 503 secret-unreadable problem (was a 500), logged without the secret; SECRETS_KEY_PREVIOUS brings them back', async () => {
  const first = await restart({ SECRETS_KEY: oldKey });
  const created = await fetch(`${first.url}/v1/partners`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'sk', name: 'SK' }) });
  expect(created.status).toBe(201);
  const { webhookSecret } = (await created.json()) as { webhookSecret: string };
  expect((await sendEvent(first.url, webhookSecret, 'msg_sk_1', 'sk-1')).status).toBe(202);

  const changed = await restart({ SECRETS_KEY: newKey });
  const r = await sendEvent(changed.url, webhookSecret, 'msg_sk_2', 'sk-2');
  expect(r.status).toBe(503);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.headers.get('retry-after')).toBe('60');
  const p = (await r.json()) as { type: string; detail: string };
  expect(p.type).toBe('https://syndicast.dev/problems/secret-unreadable');
  expect(p.detail).toMatch(/restore that key as SECRETS_KEY or in SECRETS_KEY_PREVIOUS/);
  const line = await waitFor(async () => changed.child.output().split('\n').find((l) => l.includes('stored secret cannot be opened')), 10_000, 50);
  expect(JSON.parse(line) as { level: number }).toMatchObject({ level: 50 });
  expect(changed.child.output()).not.toContain(webhookSecret.slice('whsec_'.length));

  const restored = await restart({ SECRETS_KEY: newKey, SECRETS_KEY_PREVIOUS: oldKey });
  expect((await sendEvent(restored.url, webhookSecret, 'msg_sk_2', 'sk-2')).status).toBe(202);
}, 120_000);
