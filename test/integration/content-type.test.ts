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

test('a request labelled application/json with an empty body is a request without one: the body-less actions work, a route that needs a body says which fields', async () => {
  // Many API clients label every request JSON; a POST or DELETE without a body was a 400 "Body cannot
  // be empty when content-type is set to 'application/json'" on routes that take no body.
  const call = (method: string, path: string): Promise<Response> => fetch(`${svc.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' } });
  const rotated = await call('POST', '/v1/partners/ct/webhook-secret/rotate');
  expect(rotated.status).toBe(200);
  expect(((await rotated.json()) as { webhookSecret: string }).webhookSecret).toMatch(/^whsec_/);
  const key = (await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { id: string };
  expect((await call('DELETE', `/v1/api-keys/${key.id}`)).status).toBe(200);
  const ep = (await (await svc.api('/v1/partners/ct/endpoints', { json: { url: 'https://hooks.example.com/ct', events: ['mirror.updated'] } })).json()) as { id: string };
  expect((await call('POST', `/v1/partners/ct/endpoints/${ep.id}/rotate-secret`)).status).toBe(200);
  expect((await call('DELETE', `/v1/partners/ct/endpoints/${ep.id}`)).status).toBe(204);
  // A route with a body schema refuses the missing body with its field errors, as a problem.
  const missing = await call('POST', '/v1/partners');
  expect(missing.status).toBe(400);
  expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await missing.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain('body');
  // Malformed JSON is still a 400, and a poisoned prototype still refused.
  expect((await post('/v1/partners', 'application/json', '{bad')).status).toBe(400);
  expect((await post('/v1/partners', 'application/json', '{"id":"pp","name":"x","__proto__":{"a":1}}')).status).toBe(400);
});
