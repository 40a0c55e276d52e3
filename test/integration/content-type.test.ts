/**
 * The operator API's JSON routes read application/json only; OpenAPI promises a 415 problem for a
 * body of any other media type. Fastify's built-in text/plain parser made `text/plain` the exception:
 * a JSON body sent with that label reached the route as a string and was a 400 ("expected object,
 * received string"; on a route without a body schema it was taken silently), while application/xml or a
 * form was a 415. The signed partner events and platform webhooks read every media type as bytes
 * (the signature covers them): a text/plain event is still stored. Real Redis, real HTTP.
 */
import { request } from 'node:http';
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

/**
 * A body declared in another charset than UTF-8 was read as UTF-8 all the same: a Latin-1 "Café" became
 * "Caf\uFFFD", stored (202/201) and sent on. Every route reads UTF-8: a 415 naming the charset, nothing
 * stored. UTF-8 (any spelling, quoted or not), ASCII or no charset at all are read as before, also the
 * `text/plain;charset=UTF-8` fetch sends for a string body without a Content-Type.
 */
describe('a body declared in a charset other than UTF-8', () => {
  const signed = (id: string, contentType: string, body: Buffer): Promise<Response> => {
    const ts = Math.floor(Date.now() / 1000);
    return fetch(`${svc.url}/v1/partners/ct/events`, {
      method: 'POST',
      headers: { 'content-type': contentType, 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body.toString('latin1')) },
      body,
    });
  };
  let utf = 0;
  const latin1Event = (showId: string): Buffer => Buffer.from(JSON.stringify(showEvent('show.scheduled', sampleShow(showId, { title: 'Café' }), new Date().toISOString())), 'latin1');

  test.each(['application/json; charset=iso-8859-1', 'application/json;charset=UTF-16', 'text/plain; charset="windows-1252"'])('a signed partner event labelled %s is a 415 naming the charset, nothing stored', async (ct) => {
    const showId = `latin-${ct.length}-${ct.charCodeAt(ct.length - 2)}`;
    const r = await signed(`msg_cs_${showId}`, ct, latin1Event(showId));
    await expect415(r.clone());
    expect(((await r.json()) as { detail: string }).detail).toMatch(/charset ".+" is not supported: send the body as UTF-8/);
    expect((await svc.api(`/v1/partners/ct/shows/${showId}`)).status).toBe(404);
  });

  test('an operator request labelled charset=iso-8859-1 is a 415, nothing stored', async () => {
    await expect415(await fetch(`${svc.url}/v1/partners`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json; charset=iso-8859-1' }, body: Buffer.from(JSON.stringify({ id: 'latin', name: 'Café' }), 'latin1') }));
    expect((await svc.api('/v1/partners/latin')).status).toBe(404);
  });

  test.each(['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8', 'application/json; charset=us-ascii', 'text/plain;charset=UTF-8', 'application/json'])('%s is read as UTF-8, as before', async (ct) => {
    const showId = `utf-${++utf}`;
    const body = Buffer.from(JSON.stringify(showEvent('show.scheduled', sampleShow(showId, { title: 'Cafe' }), new Date().toISOString())), 'utf8');
    expect((await signed(`msg_cs_${showId}`, ct, body)).status).toBe(202);
  });
});

test('a signed partner event without any Content-Type is read as bytes and stored (contract §3 names none; a sender may omit it)', async () => {
  const body = JSON.stringify(showEvent('show.scheduled', sampleShow('no-ctype'), new Date().toISOString()));
  const ts = Math.floor(Date.now() / 1000);
  const { status } = await new Promise<{ status: number }>((resolve, reject) => {
    const u = new URL(`${svc.url}/v1/partners/ct/events`);
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-length': Buffer.byteLength(body), 'webhook-id': 'msg_noct', 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, 'msg_noct', ts, body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  expect(status).toBe(202);
  expect((await svc.api('/v1/partners/ct/shows/no-ctype')).status).toBe(200);
});

test("a platform webhook declared in another charset is not refused for its label (a platform's delivery is verified as bytes)", async () => {
  const r = await fetch(`${svc.url}/v1/platform-webhooks/nosuch`, { method: 'POST', headers: { 'content-type': 'application/json; charset=iso-8859-1' }, body: '{}' });
  expect(r.status).not.toBe(415);
});
