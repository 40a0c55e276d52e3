/**
 * `GET /v1/ops/stream` per API key: one key could open any number of streams (each a connection and a
 * timer in the API process). Now a key holds at most OPS_STREAMS_PER_KEY (here 3) at once: one more is
 * a 429 problem with Retry-After, another key is not held back, a HEAD holds none, and a stream that
 * closes frees its place. Real HTTP, real redis-server.
 */
import { loadConfig } from '../../src/config/config.js';
import { STREAMS_PER_KEY } from '../../src/api/routes/ops.routes.js';
import { ADMIN_KEY, serviceForFile, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started), { env: { OPS_STREAMS_PER_KEY: '3' } });

const opened: AbortController[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.abort();
});

/** A stream, once its first frame (`retry:`) has arrived; null body for an answer that is no stream. */
async function open(key: string): Promise<{ res: Response; close(): void }> {
  const ctl = new AbortController();
  opened.push(ctl);
  const res = await fetch(`${svc.url}/v1/ops/stream`, { headers: { authorization: `Bearer ${key}` }, signal: ctl.signal });
  if (res.status === 200) {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    reader.releaseLock();
  }
  return { res, close: () => ctl.abort() };
}

async function viewerKey(): Promise<string> {
  const r = await svc.api('/v1/api-keys', { json: { role: 'viewer' } });
  expect(r.status).toBe(201);
  return ((await r.json()) as { key: string }).key;
}

test('OPS_STREAMS_PER_KEY defaults to 10', () => {
  expect(STREAMS_PER_KEY).toBe(10);
  const base = { REDIS_URL: 'redis://127.0.0.1:1', ADMIN_API_KEY: ADMIN_KEY, SECRETS_KEY: Buffer.alloc(32, 1).toString('base64') };
  expect(loadConfig(base).opsStreamsPerKey).toBe(10);
  expect(() => loadConfig({ ...base, OPS_STREAMS_PER_KEY: '0' })).toThrow(/OPS_STREAMS_PER_KEY/);
});

test('a key holds at most 3 streams: the 4th is a 429 with Retry-After; other keys and HEAD are not held back; a closed stream frees its place', async () => {
  const key = await viewerKey();
  const streams = [];
  for (let i = 0; i < 3; i++) streams.push(await open(key));
  expect(streams.map((s) => s.res.status)).toEqual([200, 200, 200]);

  const refused = await open(key);
  expect(refused.res.status).toBe(429);
  expect(refused.res.headers.get('content-type')).toContain('application/problem+json');
  expect(refused.res.headers.get('retry-after')).toBe('5');
  expect(await refused.res.json()).toMatchObject({ status: 429, title: 'Too Many Requests', detail: expect.stringContaining('OPS_STREAMS_PER_KEY') });

  // Another key, and a HEAD of the same key (answered at once, no stream held).
  expect((await open(ADMIN_KEY)).res.status).toBe(200);
  const head = await fetch(`${svc.url}/v1/ops/stream`, { method: 'HEAD', headers: { authorization: `Bearer ${key}` } });
  expect(head.status).toBe(200);

  streams[0]!.close();
  const again = await waitFor(async () => {
    const s = await open(key);
    if (s.res.status === 200) return s;
    s.close();
    return undefined;
  }, 10_000, 100);
  expect(again.res.status).toBe(200);
  expect((await open(key)).res.status).toBe(429);
});
