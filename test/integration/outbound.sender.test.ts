/**
 * One webhook POST (src/outbound/webhook.sender.ts) against a loopback endpoint, over real TCP:
 *
 * - the Content-Length is the body's length in bytes: a payload with non-ASCII text (a show title
 *   "Café crème", JSON.stringify keeps it as is) counted in characters is a request Node refuses to
 *   send, an attempt failed on every retry;
 * - no connection is reused: each attempt opens its own (and asks the endpoint to close it), so an
 *   attempt's deadline and its connect-time address check are its own.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { postWebhook } from '../../src/outbound/webhook.sender.js';

let server: Server;
let url = '';
const connections = new Set<Socket>();
const received: { body: string; contentLength: string | undefined; connection: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), contentLength: req.headers['content-length'], connection: req.headers.connection });
      res.writeHead(204).end();
    });
  });
  server.on('connection', (s: Socket) => connections.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  received.length = 0;
  connections.clear();
});

test('a body with non-ASCII text is sent whole: its Content-Length counts bytes, not characters', async () => {
  const body = JSON.stringify({ type: 'mirror.updated', data: { title: 'Café crème — 限定セール 🎉' } });
  const res = await postWebhook(url, body, { 'content-type': 'application/json' }, { timeoutMs: 5000, allowPrivate: true });
  expect(res).toMatchObject({ statusCode: 204, error: null });
  expect(received).toEqual([{ body, contentLength: String(Buffer.byteLength(body)), connection: 'close' }]);
});

test('each attempt opens its own connection: none is kept alive for the next', async () => {
  for (let i = 0; i < 3; i++) expect((await postWebhook(url, '{}', {}, { timeoutMs: 5000, allowPrivate: true })).statusCode).toBe(204);
  expect(received.map((r) => r.connection)).toEqual(['close', 'close', 'close']);
  expect(connections.size).toBe(3);
});
