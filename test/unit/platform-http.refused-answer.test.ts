/**
 * isRefusedAnswer (src/targets/platform-http.ts) tells our own refusals of an answer (past
 * MAX_RESPONSE_BYTES or MAX_RESPONSE_VALUES) from a real network failure by their text: networkFailure
 * then says "<api> answered what cannot be read: …", not "<api> unreachable (ERR_BAD_RESPONSE)". Its test
 * restated the texts the refusals build, and the one past the byte bound is axios' own (its
 * maxContentLength error, copied by the raw request): a text changed on one side only (ours, or axios'
 * on an upgrade) silently made a refusal "unreachable" again. Here every refusal both transports
 * actually make is checked against isRefusedAnswer, and the raw request's byte refusal against axios'
 * own text. Real HTTP on loopback; no Redis.
 */
import { createPlatformHttp, createPlatformJson, isRefusedAnswer, MAX_RESPONSE_BYTES, MAX_RESPONSE_VALUES } from '../../src/targets/platform-http.js';
import { buildAdapterContext } from '../helpers/adapter-context.js';
import { loopbackServer, type LoopbackServer } from '../helpers/loopback-server.js';

let server: LoopbackServer;
let base = '';
/** Just past the byte bound (not JSON: it is refused before it is parsed). */
const TOO_LARGE = Buffer.alloc(MAX_RESPONSE_BYTES + 1, 'x');
/** Just past the value bound: empty objects (~300 KB). */
const MANY = `{"data":[${'{},'.repeat(MAX_RESPONSE_VALUES + 10)}{}]}`;

beforeAll(async () => {
  server = await loopbackServer((req, res) => {
    if (req.url === '/large') res.writeHead(200, { 'content-type': 'application/json' }).end(TOO_LARGE);
    else if (req.url === '/many') res.writeHead(200, { 'content-type': 'application/json' }).end(MANY);
    else {
      // A connection reset half-way through an answer: a real network failure, ERR_BAD_RESPONSE too.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"data":[', () => setTimeout(() => res.destroy(), 20));
    }
  });
  base = server.base;
});
afterAll(() => server.close());

// No destination guard: plain agents (the server is on loopback).
const { ctx } = buildAdapterContext({ baseUrl: undefined, credentials: {}, timeoutMs: 10_000 });
const json = createPlatformJson(ctx, 10_000);
const http = createPlatformHttp(ctx, { timeout: 10_000, validateStatus: () => true, maxRedirects: 0 });

async function failure(p: Promise<unknown>): Promise<{ code: string | undefined; message: string }> {
  return p.then(
    () => ({ code: 'answered', message: '' }),
    (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }),
  );
}

test("axios' own refusal past maxContentLength (MAX_RESPONSE_BYTES) is one isRefusedAnswer knows", async () => {
  const f = await failure(http.get(`${base}/large`));
  expect(f.code).toBe('ERR_BAD_RESPONSE');
  expect(isRefusedAnswer(f.code, f.message)).toBe(true);
});

test("the raw request's refusal past MAX_RESPONSE_BYTES says axios' text, and isRefusedAnswer knows it", async () => {
  const raw = await failure(json({ method: 'GET', url: `${base}/large`, headers: {} }));
  expect(raw).toEqual(await failure(http.get(`${base}/large`)));
  expect(isRefusedAnswer(raw.code, raw.message)).toBe(true);
});

test('both transports refuse an answer past MAX_RESPONSE_VALUES with a text isRefusedAnswer knows', async () => {
  for (const f of [await failure(json({ method: 'GET', url: `${base}/many`, headers: {} })), await failure(http.get(`${base}/many`))]) {
    expect(f.code).toBe('ERR_BAD_RESPONSE');
    expect(isRefusedAnswer(f.code, f.message)).toBe(true);
  }
  // A request's own bound (maxJsonValues: Bambuser's report) too.
  const f = await failure(http.get(`${base}/many`, { maxJsonValues: 1000 }));
  expect([f.code, isRefusedAnswer(f.code, f.message)]).toEqual(['ERR_BAD_RESPONSE', true]);
});

test('a connection reset half-way through an answer is not a refusal', async () => {
  // axios: ERR_BAD_RESPONSE "stream has been aborted", the code of a refusal.
  const f = await failure(http.get(`${base}/reset`));
  expect(f.code).toBe('ERR_BAD_RESPONSE');
  expect(isRefusedAnswer(f.code, f.message)).toBe(false);
  const raw = await failure(json({ method: 'GET', url: `${base}/reset`, headers: {} }));
  expect(raw.code).not.toBe('answered');
  expect(isRefusedAnswer(raw.code, raw.message)).toBe(false);
});
