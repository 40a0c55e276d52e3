/**
 * A platform (or a wrong baseUrl) whose JSON answer is small in bytes but holds a great many values:
 * `{"data":[{},{},…]}`. MAX_RESPONSE_BYTES alone let 32 MiB of it through (11 million empty objects,
 * ~1.1 GiB once parsed), and the response schema then refused every element at ~2 KiB of zod issues
 * each: a Whatnot order report against it took the worker to its 4 GiB heap limit and killed it after
 * 90 s, every partner's syncs with it. Both platform transports now refuse an answer with more than
 * MAX_RESPONSE_VALUES values as they refuse one past MAX_RESPONSE_BYTES (ERR_BAD_RESPONSE, a network
 * failure: retried), and the byte bound is 8 MiB. Real HTTP on loopback. The report's error says the
 * platform answered what cannot be read, and why (it said "unreachable (ERR_BAD_RESPONSE)").
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPlatformHttp, createPlatformJson, MAX_REPORT_VALUES, MAX_RESPONSE_VALUES } from '../../src/targets/platform-http.js';
import { adapterFactory } from '../../src/targets/target.registry.js';
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { buildAdapterContext } from '../helpers/adapter-context.js';

let server: Server;
let base = '';
let bambuserReport = '';
/** Just past the bound: empty objects (3 bytes each, ~330 KB in all). */
const MANY = `{"data":[${'{},'.repeat(MAX_RESPONSE_VALUES + 10)}{}],"next_cursor":null}`;
/** Just under it: 1,000 objects of 90 members each (with the 1,000 elements, 91,000 values). */
const LARGE = JSON.stringify({ data: Array.from({ length: 1000 }, (_, i) => Object.fromEntries(Array.from({ length: 90 }, (_, k) => [`k${k}`, i]))) });

beforeAll(async () => {
  server = createServer((req, res) => {
    if (/token/.test(req.url ?? '')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'at', refresh_token: 'rt', expires_in: 3600, token_type: 'Bearer', scope: 'read:orders' }));
      return;
    }
    if (req.url?.startsWith('/v1/shows')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: [{ id: 'show1', state: 'ended', startedAt: '2030-04-01T18:00:00Z', endedAt: '2030-04-01T19:00:00Z' }], cursor: null }));
      return;
    }
    if (req.url?.startsWith('/v1/stats/')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(bambuserReport);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(req.url?.startsWith('/large') ? LARGE : MANY);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

// No destination guard: plain agents (the source is on loopback).
const { ctx } = buildAdapterContext({ baseUrl: undefined, credentials: {}, timeoutMs: 10_000 });

async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'answered',
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );
}

test('an answer with more values than MAX_RESPONSE_VALUES is refused by both transports', async () => {
  const refused = `ERR_BAD_RESPONSE: the answer holds more than ${MAX_RESPONSE_VALUES} JSON values`;
  expect(await outcome(createPlatformJson(ctx, 10_000)({ method: 'GET', url: `${base}/many`, headers: {} }))).toBe(refused);
  const http = createPlatformHttp(ctx, { timeout: 10_000, validateStatus: () => true, maxRedirects: 0 });
  expect(await outcome(http.get(`${base}/many`))).toBe(refused);
});

test('an answer just under the bound is read', async () => {
  const json = await createPlatformJson(ctx, 10_000)({ method: 'GET', url: `${base}/large`, headers: {} });
  expect((json.data as { data: unknown[] }).data).toHaveLength(1000);
  const http = createPlatformHttp(ctx, { timeout: 10_000, validateStatus: () => true, maxRedirects: 0 });
  expect(((await http.get(`${base}/large`)).data as { data: unknown[] }).data).toHaveLength(1000);
});

test("a Whatnot order report against it fails as a network failure (retried), before the schema reads a single element", async () => {
  const { ctx: wctx } = buildAdapterContext({ platform: 'whatnot', baseUrl: base, credentials: simTargetCredentials('whatnot'), timeoutMs: 10_000 });
  const adapter = await adapterFactory('whatnot')!(wctx);
  const err = await adapter.listOrders!(new Date(Date.now() - 3600_000), new Date()).then(
    () => undefined,
    (e: Error & { reason?: string }) => e,
  );
  // (It was a PermanentError 'malformed response' once zod had built an issue list for every element.)
  // (And 'Whatnot API unreachable (ERR_BAD_RESPONSE)' once it was refused: the API had answered.)
  expect([err?.name, err?.message]).toEqual(['RetryableError', `Whatnot API answered what cannot be read: the answer holds more than ${MAX_RESPONSE_VALUES} JSON values`]);
}, 30_000);

/**
 * Bambuser's per-show order report is one unpaged answer (about ten values per order), read under its
 * own bound (MAX_REPORT_VALUES): at MAX_RESPONSE_VALUES a show with more than ~8,000 orders was refused
 * on every run. Past the page bound a hostile report is refused at its first order instead (the schema
 * reads one order at a time: no zod issues for the other 100,000), and past its own bound as before.
 */
test('a Bambuser order report past MAX_RESPONSE_VALUES is refused by its first bad order; past MAX_REPORT_VALUES by the bound', async () => {
  const { ctx: bctx } = buildAdapterContext({ platform: 'bambuser', baseUrl: base, credentials: simTargetCredentials('bambuser'), timeoutMs: 10_000 });
  const adapter = await adapterFactory('bambuser')!(bctx);
  const report = (): Promise<string> =>
    adapter.listOrders!(new Date('2030-04-01T00:00:00Z'), new Date('2030-04-02T00:00:00Z')).then(
      (o) => `${o.length} orders`,
      (e: Error) => `${e.name}: ${e.message}`,
    );
  bambuserReport = `{"orders":[${'{},'.repeat(MAX_RESPONSE_VALUES + 10)}{}]}`;
  expect(await report()).toMatch(/^PermanentError: malformed response from Bambuser GET \/v1\/stats\/show\/show1\/orders: orders\.0\.orderId: /);
  bambuserReport = `{"orders":[${'{},'.repeat(MAX_REPORT_VALUES + 10)}{}]}`;
  expect(await report()).toBe(`RetryableError: Bambuser API answered what cannot be read: the answer holds more than ${MAX_REPORT_VALUES} JSON values`);
}, 30_000);
