/**
 * Attack round on Bambuser's webhooks into the service (POST /v1/platform-webhooks/{targetId}): verified
 * (the custom header is the target's) but hostile deliveries, and ones whose header is missing, repeated
 * or odd. None may answer 5xx; a verified one is acknowledged 200 with nothing stored (no Bambuser topic
 * carries orders), an unverified one 401, errors as problem+json. Real redis-server, real HTTP.
 */
import { request } from 'node:http';
import { CREDENTIALS, webhookTargetPerFile } from '../helpers/platforms.js';
import type { TestService } from '../helpers/service.js';

const P = 'pwbbh';
const HEADER = CREDENTIALS.bambuser['webhookHeaderValue']!;
let svc: TestService;

webhookTargetPerFile(P, (s) => ({ id: 'bbh', platform: 'bambuser', name: 'bb', credentials: CREDENTIALS.bambuser, baseUrl: s.base('bambuser') }), ({ svc: started }) => {
  svc = started;
});

const ACK = { received: 0, stored: 0, new: 0, otherTargetOrders: 0, conflicting: 0, conflictingOrders: [] };
const envelope = (over: Record<string, unknown> = {}): string => JSON.stringify({ collection: 'show', action: 'update', payload: { id: 's1' }, eventId: 'ev-1', timestamp: '2026-12-07T10:00:00Z', ...over });

/** Raw HTTP: repeated headers, odd bytes, no content-type. */
function raw(path: string, headers: [string, string][], body: Buffer | string): Promise<{ status: number; type: string; body: string }> {
  const url = new URL(path, svc.url);
  return new Promise((resolve, reject) => {
    const flat: string[] = ['host', url.host];
    for (const [k, v] of headers) flat.push(k, v);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: flat }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const deep = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const VERIFIED: [string, string, string][] = [
  ['__proto__ ids and payload', 'application/json', envelope({ eventId: '__proto__', collection: '__proto__', action: 'constructor', payload: JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}') })],
  ['odd unicode (bidi, zero-width, lone surrogate escapes, NUL)', 'application/json', envelope({ eventId: '\u202e\u200b\\ud800\u0000', collection: '\ud83d\ude00', payload: { title: '\u202egnp.exe' } })],
  ['a payload nested 100 000 deep', 'application/json', envelope({ payload: { x: 1 } }).replace('{"x":1}', `{"x":${deep(100_000)}}`)],
  ['a bare array nested 200 000 deep', 'application/json', '['.repeat(200_000) + ']'.repeat(200_000)],
  ['a body of 1 MiB less a byte', 'application/json', envelope({ payload: { big: 'x'.repeat(1024 * 1024 - 200) } }).slice(0, 1024 * 1024 - 1)],
  ['numbers at the edges', 'application/json', envelope({ payload: {} }).replace('"payload":{}', '"payload":{"amount":1e309,"n":-0,"big":9007199254740993,"tiny":5e-324}')],
  ['content-type text/plain', 'text/plain', envelope()],
  ['content-type form-encoded', 'application/x-www-form-urlencoded', envelope()],
  ['content-type multipart without boundary', 'multipart/form-data', envelope()],
  ['content-type application/json; charset=latin1', 'application/json; charset=latin1', envelope()],
  ['an empty body as JSON', 'application/json', ''],
  ['a UTF-8 BOM before the JSON', 'application/json', `\ufeff${envelope()}`],
];

test.each(VERIFIED)('a verified Bambuser webhook with %s: 200, nothing stored', async (_what, type, body) => {
  const r = await raw('/v1/platform-webhooks/bbh', [['content-type', type], ['x-webhook-secret', HEADER]], body);
  expect([r.status, JSON.parse(r.body)]).toEqual([200, ACK]);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
});

test('the same delivery twice, and out of order: 200 each time, nothing stored', async () => {
  for (const body of [envelope({ eventId: 'e2', timestamp: '2026-12-07T10:00:02Z' }), envelope({ eventId: 'e1', timestamp: '2026-12-07T10:00:01Z' }), envelope({ eventId: 'e2', timestamp: '2026-12-07T10:00:02Z' })]) {
    const r = await raw('/v1/platform-webhooks/bbh', [['content-type', 'application/json'], ['x-webhook-secret', HEADER]], body);
    expect([r.status, JSON.parse(r.body)]).toEqual([200, ACK]);
  }
});

test.each<[string, [string, string][]]>([
  ['no header', [['content-type', 'application/json']]],
  ['the header twice (same value)', [['content-type', 'application/json'], ['x-webhook-secret', HEADER], ['x-webhook-secret', HEADER]]],
  ['the header twice (a wrong value first)', [['content-type', 'application/json'], ['x-webhook-secret', 'nope'], ['x-webhook-secret', HEADER]]],
  ['the value with a trailing byte', [['content-type', 'application/json'], ['x-webhook-secret', `${HEADER}\u00e9`]]],
  ['an empty value', [['content-type', 'application/json'], ['x-webhook-secret', '']]],
  ['the value under another name', [['content-type', 'application/json'], ['authorization', HEADER]]],
])('a Bambuser webhook with %s: 401 problem+json', async (_what, headers) => {
  const r = await raw('/v1/platform-webhooks/bbh', headers, envelope());
  expect(r.status).toBe(401);
  expect(r.type).toMatch(/^application\/problem\+json/);
  expect(r.body).not.toContain(HEADER);
});

test.each<[string, string, [string, string][], Buffer | string, number]>([
  ['a body over 1 MiB', '/v1/platform-webhooks/bbh', [['content-type', 'application/json'], ['x-webhook-secret', HEADER]], 'x'.repeat(1024 * 1024 + 1), 413],
  ['a gzip Content-Encoding', '/v1/platform-webhooks/bbh', [['content-type', 'application/json'], ['content-encoding', 'gzip'], ['x-webhook-secret', HEADER]], envelope(), 415],
  ['target __proto__', '/v1/platform-webhooks/__proto__', [['content-type', 'application/json'], ['x-webhook-secret', HEADER]], envelope(), 404],
  ['target constructor', '/v1/platform-webhooks/constructor', [['content-type', 'application/json'], ['x-webhook-secret', HEADER]], envelope(), 404],
])('a Bambuser webhook with %s: 4xx problem+json', async (_what, path, headers, body, status) => {
  const r = await raw(path, headers, body);
  expect([r.status, r.type.split(';')[0]]).toEqual([status, 'application/problem+json']);
});
