/**
 * The audit log's times are Redis's: `from`/`to` select entries by their stream ids (Redis's clock at
 * the append), and an entry's `at` was the clock of the API process that wrote it. With an API host
 * an hour fast (libfaketime), an entry made now was listed for `from=now-1m&to=now+1m` with an `at`
 * an hour past that `to`. Now `at` is the id's time. A real src/main/api.ts child process under
 * libfaketime; redis-server on the real clock; "now" is Redis's TIME.
 */
import { existsSync } from 'node:fs';
import { testPort } from '../helpers/ports.js';
import { serviceEnv } from '../helpers/npm-start.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { ADMIN_KEY, waitFor } from '../helpers/service.js';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) => existsSync(p));

let redis: TestRedis;
let child: WorkerProcess;
let url: string;

beforeAll(async () => {
  expect(LIBFAKETIME).toBeDefined(); // Debian's libfaketime (docs/testing.md, "Dates")
  redis = await startRedis();
  const port = await testPort();
  url = `http://127.0.0.1:${port}`;
  child = spawnWorker(serviceEnv(redis.env, port, { LD_PRELOAD: LIBFAKETIME!, FAKETIME: '+1h', FAKETIME_DONT_FAKE_MONOTONIC: '1' }), 'src/main/api.ts');
  await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.status === 200, 60_000, 200);
}, 90_000);
afterAll(async () => {
  await child?.kill('SIGKILL');
  await redis?.destroy();
});

async function redisNow(): Promise<number> {
  const client = redis.client();
  try {
    const [s, us] = (await client.time()) as [string | number, string | number];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  } finally {
    client.disconnect();
  }
}

test('an entry written by an API host whose clock is an hour fast is listed, and dated, by Redis time', async () => {
  const auth = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
  const made = await fetch(`${url}/v1/partners`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 'clock-p', name: 'Clock' }) });
  expect(made.status).toBe(201);
  const now = await redisNow();
  const from = new Date(now - 60_000).toISOString();
  const to = new Date(now + 60_000).toISOString();
  const r = await fetch(`${url}/v1/audit?action=partner.created&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { headers: auth });
  expect(r.status).toBe(200);
  const { entries } = (await r.json()) as { entries: { action: string; partnerId?: string; at: string }[] };
  expect(entries.map((e) => [e.action, e.partnerId])).toEqual([['partner.created', 'clock-p']]);
  const at = Date.parse(entries[0]!.at);
  expect(at).toBeGreaterThanOrEqual(Date.parse(from));
  expect(at).toBeLessThan(Date.parse(to));
  // `to` at the entry's own `at` leaves it out (exclusive), `from` at it keeps it: one clock for both.
  const atIso = entries[0]!.at;
  const until = (await (await fetch(`${url}/v1/audit?action=partner.created&to=${encodeURIComponent(atIso)}`, { headers: auth })).json()) as { entries: unknown[] };
  expect(until.entries).toEqual([]);
  const since = (await (await fetch(`${url}/v1/audit?action=partner.created&from=${encodeURIComponent(atIso)}`, { headers: auth })).json()) as { entries: unknown[] };
  expect(since.entries).toHaveLength(1);
}, 60_000);
