/**
 * The operator API's JSON routes read application/json only; OpenAPI promises a 415 problem for a
 * body of any other media type. Fastify's built-in text/plain parser made `text/plain` the exception:
 * a JSON body sent with that label reached the route as a string and was a 400 ("expected object,
 * received string"; on a route without a body schema it was taken silently), while application/xml or a
 * form was a 415. The signed partner events and platform webhooks read every media type as bytes
 * (the signature covers them): a text/plain event is still stored. Real Redis, real HTTP.
 */
import { signatureHeader } from '../../src/sources/signature.js';
import { ADMIN_KEY, sampleShow, showEvent, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

servicePerFile('ct', (started) => ({ svc, secret } = started));

const post = (path: string, contentType: string, body: string): Promise<Response> =>
  fetch(`${svc.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType }, body });

async function expect415(r: Response): Promise<void> {
  expect(r.status).toBe(415);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await r.json()) as { status: number }).status).toBe(415);
}

test('a text/plain body on a JSON route is a 415 problem, as any other media type, and changes nothing', async () => {
  await expect415(await post('/v1/partners', 'text/plain', JSON.stringify({ id: 'plain', name: 'Plain' })));
  await expect415(await post('/v1/partners', 'text/plain; charset=utf-8', JSON.stringify({ id: 'plain', name: 'Plain' })));
  await expect415(await post('/v1/api-keys', 'text/plain', JSON.stringify({ role: 'viewer' })));
  // A route without a body schema took a text/plain body silently.
  await expect415(await post('/v1/partners/ct/webhook-secret/rotate', 'text/plain', 'anything'));
  expect((await svc.api('/v1/partners/plain')).status).toBe(404);
  // The same requests as application/json work.
  expect((await post('/v1/partners', 'application/json', JSON.stringify({ id: 'plain', name: 'Plain' }))).status).toBe(201);
});

test('a signed partner event labelled text/plain is still read as bytes and stored', async () => {
  const body = JSON.stringify(showEvent('show.scheduled', sampleShow('plain-event'), new Date().toISOString()));
  const ts = Math.floor(Date.now() / 1000);
  const r = await fetch(`${svc.url}/v1/partners/ct/events`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'webhook-id': 'msg_plain', 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, 'msg_plain', ts, body) },
    body,
  });
  expect(r.status).toBe(202);
  expect((await svc.api('/v1/partners/ct/shows/plain-event')).status).toBe(200);
});
