/**
 * A request body with a Content-Encoding (gzip, br, …): no route decodes one. A gzip-compressed signed
 * partner event was a 400 "body is not valid JSON", and an event (or an operator request) labelled
 * gzip but sent plain was stored as if the label were not there. Both are now a 415 problem+json
 * (RFC 9110 §15.5.16: an unsupported content coding), nothing stored; `identity` is no coding.
 * Real Redis, real HTTP.
 */
import { gzipSync } from 'node:zlib';
import { signatureHeader } from '../../src/sources/signature.js';
import { ADMIN_KEY, sampleShow, showEvent, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

servicePerFile('p1', (started) => ({ svc, secret } = started));

/** A signed partner event whose body is `bytes` as sent (the signature covers exactly those bytes). */
function postEvent(bytes: Buffer, encoding: string | undefined, webhookId: string): Promise<Response> {
  const ts = Math.floor(Date.now() / 1000);
  return fetch(`${svc.url}/v1/partners/p1/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(encoding !== undefined ? { 'content-encoding': encoding } : {}),
      'webhook-id': webhookId,
      'webhook-timestamp': String(ts),
      'webhook-signature': signatureHeader(secret, webhookId, ts, bytes.toString('latin1')),
    },
    body: bytes,
  });
}

async function expect415(r: Response): Promise<void> {
  expect(r.status).toBe(415);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await r.json()) as { detail: string }).detail).toMatch(/Content-Encoding .* is not supported: send the body uncompressed/);
}

const showStored = async (showId: string): Promise<number> => (await svc.api(`/v1/partners/p1/shows/${showId}`)).status;

test('a partner event with a Content-Encoding is a 415 and is not stored, whether the body is compressed or not', async () => {
  const plain = (id: string): Buffer => Buffer.from(JSON.stringify(showEvent('show.scheduled', sampleShow(id), new Date().toISOString())));
  await expect415(await postEvent(gzipSync(plain('gz')), 'gzip', 'msg_gz'));
  await expect415(await postEvent(plain('labelled'), 'gzip', 'msg_labelled'));
  await expect415(await postEvent(plain('br'), 'br', 'msg_br'));
  expect(await showStored('gz')).toBe(404);
  expect(await showStored('labelled')).toBe(404);
  expect(await showStored('br')).toBe(404);
  // identity is no coding at all.
  expect((await postEvent(plain('identity'), 'identity', 'msg_identity')).status).toBe(202);
  expect(await showStored('identity')).toBe(200);
  // The refused deliveries left no webhook-id behind: the partner's retry without the coding is stored.
  expect((await postEvent(plain('labelled'), undefined, 'msg_labelled')).status).toBe(202);
});

test('an operator request or a platform webhook with a Content-Encoding is a 415 too; a GET with the header is answered as usual', async () => {
  const body = Buffer.from(JSON.stringify({ role: 'viewer' }));
  const keys = (b: Buffer, encoding: string): Promise<Response> =>
    fetch(`${svc.url}/v1/api-keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', 'content-encoding': encoding }, body: b });
  await expect415(await keys(gzipSync(body), 'gzip'));
  await expect415(await keys(body, 'deflate'));
  await expect415(await fetch(`${svc.url}/v1/platform-webhooks/nosuch`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: gzipSync(body) }));
  expect((await fetch(`${svc.url}/v1/partners`, { headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-encoding': 'gzip' } })).status).toBe(200);
  expect((await keys(body, 'identity')).status).toBe(201);
});
