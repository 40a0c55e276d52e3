/**
 * How the operator API and the partner ingest answer requests at the edges of what they take: bodies
 * where none is taken, methods a path has no route for, empty PATCHes, content codings, media types and
 * charsets, unknown fields, control characters in names, the key check before validation, the queue
 * dashboard's errors; and the smoke test. Once ten files (action-no-body, method-not-allowed,
 * patch-empty, content-encoding, content-type, unknown-fields, names.control-chars,
 * auth.before-validation, queues-board.problems, smoke), each of which started its own redis-server and
 * service for two to ten cases (CI time: docs/testing.md). One service for all, with
 * startService's defaults (the api role and the sync dispatcher); each former file is a `describe` of
 * its own, with its own partner (nb, pe, p1, ct, uf, nm, pa, tsl) and targets (a target id is the service's,
 * not the partner's: patch-empty's and unknown-fields' Whatnot target, `wn` in their own files, is
 * wn-pe and wn-uf here), and reads only what it made: where a case compares a whole list
 * (unknown-fields' state, names.control-chars' key count) it compares it before and after its own
 * request, and the blocks run one after another. Real redis-server, real HTTP.
 */
import { gzipSync } from 'node:zlib';
import { request } from 'node:http';
import { signatureHeader } from '../../src/sources/signature.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('action-no-body', () => {
  /**
   * Actions that take no body (a partner's webhook secret rotation, an endpoint's secret rotation, a
   * show's ingest key rotation, a mirror's resync) refuse one with fields, as every other route refuses
   * an unknown field: a 400 problem, nothing done. Found against npm start (2026-12-05): these routes had
   * no body schema and took any body with their 2xx, so `{"graceHours": 0}` on a rotation answered 200
   * and the old secret kept verifying for 24 h, as if the field had been read. No body, an empty one and
   * `{}` (clients that label every request JSON) still work. Real redis-server, real HTTP.
   */
  let endpointId: string;

  beforeAll(async () => {
    const secret = await createPartner(svc, 'nb');
    const t = await svc.api('/v1/partners/nb/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
    expect(t.status).toBe(201);
    const e = await svc.api('/v1/partners/nb/endpoints', { json: { url: 'http://127.0.0.1:9/hooks', events: ['mirror.updated'] } });
    expect(e.status).toBe(201);
    endpointId = ((await e.json()) as { id: string }).id;
    expect((await sendEvent(svc, 'nb', secret, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  });

  const actions = (): [string, string, string][] => [
    ['partner secret rotation', '/v1/partners/nb/webhook-secret/rotate', 'webhook_secret.rotated'],
    ['endpoint secret rotation', `/v1/partners/nb/endpoints/${endpointId}/rotate-secret`, 'endpoint.secret_rotated'],
    ['ingest key rotation', '/v1/partners/nb/shows/s1/ingest/rotate', 'ingest.rotated'],
    ['resync', '/v1/partners/nb/shows/s1/mirrors/wn/resync', 'mirror.resync'],
  ];

  async function auditCount(): Promise<number> {
    const r = await svc.api('/v1/audit?partnerId=nb&limit=200');
    return ((await r.json()) as { entries: unknown[] }).entries.length;
  }

  test('a field, or a body that is no object: 400 problem naming it, and nothing done', async () => {
    for (const [name, path] of actions()) {
      for (const body of ['{"graceHours":0}', '[]', '"now"', '1']) {
        const before = await auditCount();
        const r = await svc.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect({ name, body, status: r.status, type: r.headers.get('content-type') }).toEqual({ name, body, status: 400, type: expect.stringMatching(/^application\/problem\+json/) });
        if (body.startsWith('{')) expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path: 'body.graceHours', message: 'unknown field (this operation does not take it)' }]);
        expect({ name, body, audit: await auditCount() }).toEqual({ name, body, audit: before });
      }
    }
  });

  test('no body, an empty one labelled JSON, and {} still do the action', async () => {
    for (const [name, path, action] of actions()) {
      for (const init of [{}, { headers: { 'content-type': 'application/json' }, body: '' }, { json: {} }]) {
        const r = await svc.api(path, { method: 'POST', ...init });
        expect({ name, init, status: r.status }).toEqual({ name, init, status: action === 'mirror.resync' ? 202 : 200 });
      }
    }
  });
});

describe('method-not-allowed', () => {
  /**
   * A known path asked with a method it has no route for is a 405 problem with `Allow` listing the
   * methods it has (RFC 9110 §15.5.6); a path no method has stays a 404. Before, both were 404, which
   * told a client its URL was wrong when only the method was. Real redis-server, real HTTP.
   */

  async function problem(r: Response, status: number): Promise<{ status: number; title: string; detail?: string }> {
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const p = (await r.json()) as { status: number; title: string; detail?: string };
    expect(p.status).toBe(status);
    return p;
  }

  const allowOf = (r: Response): string[] => (r.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean).sort();

  test.each([
    // [method, path, the methods its route(s) have]
    ['PUT', '/v1/partners', ['GET', 'HEAD', 'POST']],
    ['DELETE', '/v1/partners/p1/targets', ['GET', 'HEAD', 'POST']],
    ['POST', '/v1/partners/p1/targets/t1', ['DELETE', 'PATCH']],
    ['POST', '/health/live', ['GET', 'HEAD']],
    ['PATCH', '/v1/api-keys/k1', ['DELETE', 'GET', 'HEAD']],
    ['GET', '/v1/partners/p1/events', ['POST']],
  ])('%s %s → 405 with Allow', async (method, path, allowed) => {
    const r = await svc.api(path, { method });
    const p = await problem(r, 405);
    expect(p.title).toBe('Method Not Allowed');
    expect(allowOf(r)).toEqual(allowed);
    expect(p.detail).toContain(method);
  });

  test('the query string does not change the answer; an unknown path is still 404 for any method', async () => {
    const q = await svc.api('/v1/partners?limit=5', { method: 'DELETE' });
    await problem(q, 405);
    expect(allowOf(q)).toEqual(['GET', 'HEAD', 'POST']);
    await problem(await svc.api('/v1/nothing-here'), 404);
    await problem(await svc.api('/v1/nothing-here', { method: 'DELETE' }), 404);
    await problem(await svc.api('/v1/partners/p1/no-such-thing', { method: 'POST', json: {} }), 404);
    const r = await svc.api('/v1/nothing-here', { method: 'PUT' });
    expect(r.headers.get('allow')).toBeNull();
  });
});

describe('patch-empty', () => {
  /**
   * A PATCH that changes nothing is a 400 on every resource, as on a partner ("give at least one field
   * to change"). On a target and an outbound endpoint an empty body (or, for an endpoint, only fields it
   * does not have, e.g. `secret`) was a 200 that moved `updatedAt` and wrote an audit entry of no change
   * (found against npm start, 2026-12-02). Real redis-server, real HTTP.
   */
  let endpointId: string;

  beforeAll(async () => {
    await createPartner(svc, 'pe');
    const t = await svc.api('/v1/partners/pe/targets?verify=false', { json: { id: 'wn-pe', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
    expect(t.status).toBe(201);
    const e = await svc.api('/v1/partners/pe/endpoints', { json: { url: 'http://127.0.0.1:9/hooks', events: ['mirror.updated'] } });
    expect(e.status).toBe(201);
    endpointId = ((await e.json()) as { id: string }).id;
  });

  async function auditActions(): Promise<string[]> {
    const r = await svc.api('/v1/audit?partnerId=pe&limit=100');
    return ((await r.json()) as { entries: { action: string }[] }).entries.map((e) => e.action);
  }

  test.each([
    ['target, {}', '/v1/partners/pe/targets/wn-pe', {}],
    ['endpoint, {}', () => `/v1/partners/pe/endpoints/${endpointId}`, {}],
    ['endpoint, only a field it does not have', () => `/v1/partners/pe/endpoints/${endpointId}`, { secret: 'whsec_AAAA' }],
    ['partner, {}', '/v1/partners/pe', {}],
  ])('PATCH %s → 400 problem, nothing written', async (_name, path, body) => {
    const url = typeof path === 'function' ? path() : path;
    const before = await svc.api(url.startsWith('/v1/partners/pe/targets') ? '/v1/partners/pe/targets' : url);
    const beforeBody = await before.text();
    const audit = await auditActions();
    const r = await svc.api(url, { method: 'PATCH', json: body });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { errors: { message: string }[] }).errors.map((e) => e.message)).toContain('give at least one field to change');
    const after = await svc.api(url.startsWith('/v1/partners/pe/targets') ? '/v1/partners/pe/targets' : url);
    expect(await after.text()).toBe(beforeBody);
    expect(await auditActions()).toEqual(audit);
  });

  test('a PATCH with a field still works', async () => {
    expect((await svc.api('/v1/partners/pe/targets/wn-pe', { method: 'PATCH', json: { name: 'Whatnot 2' } })).status).toBe(200);
    expect((await svc.api(`/v1/partners/pe/endpoints/${endpointId}`, { method: 'PATCH', json: { description: null } })).status).toBe(200);
  });
});

describe('content-encoding', () => {
  /**
   * A request body with a Content-Encoding (gzip, br, …): no route decodes one. A gzip-compressed signed
   * partner event was a 400 "body is not valid JSON", and an event (or an operator request) labelled
   * gzip but sent plain was stored as if the label were not there. Both are now a 415 problem+json
   * (RFC 9110 §15.5.16: an unsupported content coding), nothing stored; `identity` is no coding.
   * Real Redis, real HTTP.
   */
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'p1');
  });

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
});

describe('content-type', () => {
  /**
   * The operator API's JSON routes read application/json only; OpenAPI promises a 415 problem for a
   * body of any other media type. Fastify's built-in text/plain parser made `text/plain` the exception:
   * a JSON body sent with that label reached the route as a string and was a 400 ("expected object,
   * received string"; on a route without a body schema it was taken silently), while application/xml or a
   * form was a 415. The signed partner events and platform webhooks read every media type as bytes
   * (the signature covers them): a text/plain event is still stored. Real Redis, real HTTP.
   */
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'ct');
  });

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
});

describe('unknown-fields', () => {
  /**
   * The operator API's create and update bodies refuse a field they do not take: a 400 problem whose
   * `errors` name it (`body.<field>`), and nothing written. They used to drop it (zod's default strip)
   * and answer 2xx: `{"role": "viewer", "expiresat": …}` made a key that never expires, a target's
   * misspelt `pinDelayMS` was saved as no delay. The partner event ingest stays forward-compatible: an
   * event (or a show in it) with a field this version does not know is taken (202). Real
   * redis-server, real HTTP.
   */
  type Problem = { status: number; errors?: { path: string; message: string }[] };
  interface Doc {
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }>>;
  }

  let secret: string;
  let endpointId: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'uf');
    const t = await svc.api('/v1/partners/uf/targets?verify=false', { json: { id: 'wn-uf', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'wn_x' }, commissionRateBps: 100 } });
    expect(t.status).toBe(201);
    const e = await svc.api('/v1/partners/uf/endpoints', { json: { url: 'http://127.0.0.1:9/hooks', events: ['mirror.updated'] } });
    expect(e.status).toBe(201);
    endpointId = ((await e.json()) as { id: string }).id;
  });

  const TARGET = { platform: 'whatnot', name: 'Whatnot 2', credentials: { accessToken: 'wn_y' }, commissionRateBps: 100 };

  /** [what, method, path, body, the field paths the 400 must name] */
  const CASES: [string, string, () => string, unknown, string[]][] = [
    ['api key, misspelt expiresAt', 'POST', () => '/v1/api-keys', { role: 'viewer', expiresat: '2030-01-01T00:00:00Z' }, ['body.expiresat']],
    ['api key, two unknown fields', 'POST', () => '/v1/api-keys', { role: 'viewer', nmae: 'ci', scope: 'all' }, ['body.nmae', 'body.scope']],
    ['partner', 'POST', () => '/v1/partners', { id: 'uf2', name: 'P', attributionWindowHour: 24 }, ['body.attributionWindowHour']],
    ['partner PATCH', 'PATCH', () => '/v1/partners/uf', { name: 'P', webhookSecret: 'whsec_AAAA' }, ['body.webhookSecret']],
    ['target', 'POST', () => '/v1/partners/uf/targets?verify=false', { ...TARGET, id: 'wn2', pinDelayMS: 5000 }, ['body.pinDelayMS']],
    ['target, inside rateLimit', 'POST', () => '/v1/partners/uf/targets?verify=false', { ...TARGET, id: 'wn3', rateLimit: { requests: 5, windowMs: 1000, burst: 2 } }, ['body.rateLimit.burst']],
    ['target PATCH', 'PATCH', () => '/v1/partners/uf/targets/wn-uf?verify=false', { name: 'x', platform: 'tiktok' }, ['body.platform']],
    ['endpoint', 'POST', () => '/v1/partners/uf/endpoints', { url: 'http://127.0.0.1:9/h2', events: ['mirror.updated'], secret: 'whsec_AAAA' }, ['body.secret']],
    ['endpoint PATCH', 'PATCH', () => `/v1/partners/uf/endpoints/${endpointId}`, { enabled: false, event: ['mirror.updated'] }, ['body.event']],
    ['reconciliation', 'POST', () => '/v1/partners/uf/reconciliations', { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z', targetId: 'wn-uf' }, ['body.targetId']],
    ['mirror link, inside ingest', 'PUT', () => '/v1/partners/uf/shows/s1/mirrors/wn-uf', { externalId: 'x1', ingest: { url: 'rtmp://live.example.com/app', streamKey: 'k', key: 'k' } }, ['body.ingest.key']],
    ['redeliver', 'POST', () => '/v1/partners/uf/messages/m1/redeliver', { endpointID: 'ep1' }, ['body.endpointID']],
  ];

  async function state(): Promise<string> {
    const reads = ['/v1/api-keys', '/v1/partners', '/v1/partners/uf/targets', '/v1/partners/uf/endpoints', '/v1/partners/uf/reconciliations', '/v1/audit?limit=100'];
    return JSON.stringify(await Promise.all(reads.map(async (p) => (await svc.api(p)).text())));
  }

  test.each(CASES)('%s: an unknown field → 400 problem naming it, nothing written', async (_what, method, path, json, named) => {
    const before = await state();
    const r = await svc.api(path(), { method, json });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const p = (await r.json()) as Problem;
    expect(p.errors?.filter((e) => /^unknown field/.test(e.message)).map((e) => e.path)).toEqual(named);
    expect(await state()).toBe(before);
  });

  test('the console sign-in body too', async () => {
    const r = await svc.api('/v1/ops/session', { key: null, json: { key: ADMIN_KEY, remember: true } });
    expect([r.status, ((await r.json()) as Problem).errors?.map((e) => e.path)]).toEqual([400, ['body.remember']]);
  });

  test('the same bodies without the unknown field are taken', async () => {
    expect((await svc.api('/v1/api-keys', { json: { role: 'viewer', expiresAt: '2030-01-01T00:00:00Z' } })).status).toBe(201);
    expect((await svc.api('/v1/partners/uf/targets/wn-uf?verify=false', { method: 'PATCH', json: { name: 'x' } })).status).toBe(200);
  });

  test('a partner event, and a show in it, with fields this version does not know are taken (forward-compatible)', async () => {
    const product = { id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://shop.example.com/p1', color: 'red' };
    const event = { ...(showEvent('show.scheduled', sampleShow('fw', { channel: 'tv', products: [product] }), '2026-11-24T17:00:00Z') as object), schemaVersion: 2 };
    const r = await sendEvent(svc, 'uf', secret, event);
    expect(r.status).toBe(202);
  });

  test('the OpenAPI document says so: additionalProperties false on the operator bodies, not on the partner events', async () => {
    const doc = (await (await fetch(`${svc.url}/docs/json`)).json()) as Doc;
    const body = (path: string, method: string) => doc.paths[path]?.[method]?.requestBody?.content['application/json']?.schema;
    for (const [path, method] of [
      ['/v1/api-keys', 'post'],
      ['/v1/partners', 'post'],
      ['/v1/partners/{partnerId}', 'patch'],
      ['/v1/partners/{partnerId}/targets', 'post'],
      ['/v1/partners/{partnerId}/targets/{targetId}', 'patch'],
      ['/v1/partners/{partnerId}/endpoints', 'post'],
      ['/v1/partners/{partnerId}/endpoints/{endpointId}', 'patch'],
      ['/v1/partners/{partnerId}/reconciliations', 'post'],
      ['/v1/partners/{partnerId}/shows/{showId}/mirrors/{targetId}', 'put'],
    ]) {
      expect([path, method, body(path!, method!)?.['additionalProperties']]).toEqual([path, method, false]);
    }
    expect(body('/v1/partners/{partnerId}/events', 'post')?.['additionalProperties']).toBeUndefined();
  });
});

describe('names.control-chars', () => {
  /**
   * Operators' names for partners and targets are shown in the ops console, the lists and the audit: a
   * NUL, an ESC or a line end in one was stored as sent (201). Now a 400 naming the field, nothing stored.
   * (A partner's event text is kept as sent and made fit where it leaves, src/targets/platform-text.ts:
   * test/integration/events.ingest-bounds.test.ts › events.snapshot-issues,
   * test/integration/platform-text.adapters.test.ts.)
   * Real service, real Redis.
   */
  beforeAll(async () => {
    await createPartner(svc, 'nm');
  });

  async function expectNameRefused(r: Response): Promise<void> {
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path: 'body.name', message: expect.stringMatching(/control characters/) }]);
  }

  async function targetNames(partnerId: string): Promise<string[]> {
    const r = await svc.api(`/v1/partners/${partnerId}/targets`);
    expect(r.status).toBe(200);
    return ((await r.json()) as { targets: { name: string }[] }).targets.map((t) => t.name);
  }

  test.each(['a\u0000b', 'esc \u001b[31m', 'two\nlines', 'tab\there', 'del\u007f', 'c1\u0085'])('a partner or target name holding %j is a 400 naming body.name, nothing stored', async (name) => {
    await expectNameRefused(await svc.api('/v1/partners', { json: { id: 'nm-bad', name } }));
    expect((await svc.api('/v1/partners/nm-bad')).status).toBe(404);
    await expectNameRefused(await svc.api('/v1/partners/nm', { method: 'PATCH', json: { name } }));
    const target = { platform: 'facebook', credentials: { pageId: '1', pageAccessToken: 't' }, baseUrl: 'http://127.0.0.1:9/facebook', commissionRateBps: 0 };
    await expectNameRefused(await svc.api('/v1/partners/nm/targets?verify=false', { json: { id: 'nm-t-bad', name, ...target } }));
    expect(await targetNames('nm')).toEqual([]);
  });

  test('names with emoji, right-to-left letters and inner spaces are taken as they are', async () => {
    const name = 'Boutique 🎉 مرحبا  two  spaces';
    expect((await svc.api('/v1/partners', { json: { id: 'nm-ok', name } })).status).toBe(201);
    const t = await svc.api('/v1/partners/nm-ok/targets?verify=false', { json: { id: 'nm-t-ok', name, platform: 'facebook', credentials: { pageId: '1', pageAccessToken: 't' }, baseUrl: 'http://127.0.0.1:9/facebook', commissionRateBps: 0 } });
    expect(t.status).toBe(201);
    await expectNameRefused(await svc.api('/v1/partners/nm-ok/targets/nm-t-ok', { method: 'PATCH', json: { name: 'x\u0000' } }));
    expect(await targetNames('nm-ok')).toEqual([name]);
  });

  test('an API key name is one line without control characters, an endpoint description may span lines but holds no other control character: a 400 naming the field, nothing stored', async () => {
    const refused = async (r: Response, path: string): Promise<void> => {
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path, message: expect.stringMatching(/control characters/) }]);
    };
    const keys = async (): Promise<number> => ((await (await svc.api('/v1/api-keys')).json()) as { keys: unknown[] }).keys.length;
    const before = await keys();
    for (const name of ['a\u0000b', 'esc \u001b[2J', 'two\nlines']) await refused(await svc.api('/v1/api-keys', { json: { role: 'viewer', name } }), 'body.name');
    expect(await keys()).toBe(before);
    expect((await svc.api('/v1/api-keys', { json: { role: 'viewer', name: 'CI 🎉 key' } })).status).toBe(201);

    expect((await svc.api('/v1/partners', { json: { id: 'nm-ep', name: 'Endpoints' } })).status).toBe(201);
    const endpoint = { url: 'https://hooks.example.com/nm', events: ['mirror.updated'] };
    for (const description of ['nul\u0000', 'bell\u0007', 'c1\u009b31m']) await refused(await svc.api('/v1/partners/nm-ep/endpoints', { json: { ...endpoint, description } }), 'body.description');
    const created = await svc.api('/v1/partners/nm-ep/endpoints', { json: { ...endpoint, description: 'line one\n\tline two\r\n' } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await refused(await svc.api(`/v1/partners/nm-ep/endpoints/${id}`, { method: 'PATCH', json: { description: 'x\u001b' } }), 'body.description');
  });

  /**
   * The explicit bidi controls (embedding, override, isolate) make a text read in another order than
   * it is written: an endpoint description "\u202Emoc.elpmaxe" was stored (201) and shown reversed in
   * the console beside the endpoint's URL (attack on npm start, 2026-12-07). Refused like a control
   * character in every operator text; right-to-left letters and the implicit marks stay text.
   */
  test('a bidi override or isolate in an endpoint description or a partner, target or key name is a 400 naming the field, nothing stored; RTL letters and U+200F are kept', async () => {
    const refused = async (r: Response, path: string): Promise<void> => {
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await r.json()) as { errors: { path: string; message: string }[] }).errors).toEqual([{ path, message: expect.stringMatching(/bidi control characters/) }]);
    };
    expect((await svc.api('/v1/partners', { json: { id: 'nm-bidi', name: 'Bidi' } })).status).toBe(201);
    const endpoint = { url: 'https://hooks.example.com/bidi', events: ['mirror.updated'] };
    for (const description of ['pay \u202Emoc.elpmaxe', 'x\u202Ay', 'x\u2066y\u2069', 'line\n\u2067two']) await refused(await svc.api('/v1/partners/nm-bidi/endpoints', { json: { ...endpoint, description } }), 'body.description');
    const list = async (): Promise<unknown[]> => ((await (await svc.api('/v1/partners/nm-bidi/endpoints')).json()) as { endpoints: unknown[] }).endpoints;
    expect(await list()).toEqual([]);
    const created = await svc.api('/v1/partners/nm-bidi/endpoints', { json: { ...endpoint, description: 'مرحبا \u200F shop' } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    await refused(await svc.api(`/v1/partners/nm-bidi/endpoints/${id}`, { method: 'PATCH', json: { description: '\u202Ereversed' } }), 'body.description');
    await refused(await svc.api('/v1/partners', { json: { id: 'nm-bidi2', name: 'Shop \u202Egnp.exe' } }), 'body.name');
    expect((await svc.api('/v1/partners/nm-bidi2')).status).toBe(404);
    await refused(await svc.api('/v1/partners/nm-bidi', { method: 'PATCH', json: { name: '\u2068x' } }), 'body.name');
    await refused(await svc.api('/v1/api-keys', { json: { role: 'viewer', name: 'ci \u202Dkey' } }), 'body.name');
    expect(((await (await svc.api('/v1/partners/nm-bidi')).json()) as { name: string }).name).toBe('Bidi');
  });
});

describe('auth.before-validation', () => {
  /**
   * A request is authenticated before its input is read: without a valid key it is a 401, and with a key
   * whose role may not do it a 403, whatever its body, query or path parameters hold. The key check ran
   * after validation (a route's preHandler), so a request with no key and an invalid body got a 400
   * listing the fields the route wants (the OpenAPI document's answer to it is 401), a viewer or
   * partner key got 400s from the routes it may not use at all instead of 403. Real redis-server,
   * real HTTP.
   */
  let viewerKey: string;

  beforeAll(async () => {
    expect((await svc.api('/v1/partners', { json: { id: 'pa', name: 'A' } })).status).toBe(201);
    const r = await svc.api('/v1/api-keys', { json: { role: 'viewer' } });
    viewerKey = ((await r.json()) as { key: string }).key;
  });

  const status = async (path: string, init: Parameters<TestService['api']>[1]): Promise<number> => {
    const r = await svc.api(path, init);
    await r.body?.cancel();
    return r.status;
  };

  test('no key, or an unknown one: 401 whatever the input', async () => {
    for (const key of [null, 'sk_viewer_not-a-key-at-all']) {
      expect([key, await status('/v1/partners', { key, json: {} })]).toEqual([key, 401]);
      expect([key, await status('/v1/api-keys', { key, json: { role: 'nobody' } })]).toEqual([key, 401]);
      expect([key, await status('/v1/partners/pa/shows?limit=100000', { key })]).toEqual([key, 401]);
      expect([key, await status('/v1/audit?cursor=not-a-cursor', { key })]).toEqual([key, 401]);
      expect([key, await status('/v1/partners/pa/targets', { key, json: { platform: 'myspace' } })]).toEqual([key, 401]);
    }
  });

  test("a viewer key on a route its role may not use: 403 whatever the input", async () => {
    expect(await status('/v1/partners', { key: viewerKey, json: {} })).toBe(403);
    expect(await status('/v1/api-keys', { key: viewerKey, json: { role: 'nobody' } })).toBe(403);
    expect(await status('/v1/partners/pa/targets', { key: viewerKey, json: { platform: 'myspace' } })).toBe(403);
    expect(await status('/v1/partners/pa/reconciliations', { key: viewerKey, json: { from: 'yesterday' } })).toBe(403);
  });

  test('with a key that may, invalid input is still a 400 with its field errors', async () => {
    const r = await svc.api('/v1/partners', { json: {} });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { errors: { path: string }[] }).errors.map((e) => e.path).sort()).toEqual(['body.id', 'body.name']);
    expect(await status('/v1/partners/pa/shows?limit=100000', { key: viewerKey })).toBe(400);
  });
});

describe('queues-board.problems', () => {
  /**
   * Errors under /admin/queues are application/problem+json like every other route's: bull-board
   * answered its own as application/json (`{"error":{"key":"ERRORS.QUEUE_NOT_FOUND"}}` for a queue or
   * job that does not exist, `{"error":…,"message":"Body is not valid JSON…"}` for a bad body). Its
   * `error` stays in the problem (the board's page reads it); the page and the board's API still answer
   * as before. Real redis-server, the dashboard over real HTTP.
   */

  const board = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${svc.url}/admin/queues${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(init.headers as Record<string, string> | undefined) } });

  async function expectProblem(r: Response, status: number): Promise<{ status: number; title: string; detail: string; error?: { key: string } }> {
    expect({ status: r.status, type: r.headers.get('content-type') }).toEqual({ status, type: expect.stringMatching(/^application\/problem\+json/) });
    const body = (await r.json()) as { status: number; title: string; detail: string; type: string; error?: { key: string } };
    expect(body).toMatchObject({ status, type: expect.stringMatching(/^https:\/\//), title: expect.any(String) });
    return body;
  }

  test('a queue that does not exist: 404 problem naming it (reads and changes), bull-board\'s error key kept', async () => {
    const read = await expectProblem(await board('/api/queues/no-such-queue/some-job'), 404);
    expect(read.detail).toBe('queue no-such-queue not found');
    expect(read.error).toEqual({ key: 'ERRORS.QUEUE_NOT_FOUND' });
    const change = await expectProblem(await board('/api/queues/no-such-queue/pause', { method: 'PUT' }), 404);
    expect(change.detail).toBe('queue no-such-queue not found');
  });

  test('a job that does not exist in a queue that does: 404 problem naming both', async () => {
    const queues = (await (await board('/api/queues')).json()) as { queues: { name: string }[] };
    const name = queues.queues[0]!.name;
    const r = await expectProblem(await board(`/api/queues/${encodeURIComponent(name)}/no-such-job`), 404);
    expect(r.detail).toBe(`job no-such-job of queue ${name} not found`);
  });

  test('a body that is not JSON: 400 problem; an unknown board API path: 404 problem', async () => {
    await expectProblem(await board('/api/queues/no-such-queue/add', { method: 'POST', body: '{bad', headers: { 'content-type': 'application/json' } }), 400);
    await expectProblem(await board('/api/no-such-thing'), 404);
  });

  test('the board page and its API still answer as before', async () => {
    const page = await board('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<!DOCTYPE html>/i);
    const api = await board('/api/queues');
    expect(api.status).toBe(200);
    expect(api.headers.get('content-type')).toMatch(/^application\/json/);
  });
});

describe('smoke', () => {
  test('a signed show event is accepted once and a repeat is a duplicate', async () => {
    const secret = await createPartner(svc, 'tsl');
    const ev = showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T17:00:00Z');
    const r1 = await sendEvent(svc, 'tsl', secret, ev, { webhookId: 'w1' });
    expect(r1.status).toBe(202);
    const r2 = await sendEvent(svc, 'tsl', secret, ev, { webhookId: 'w1' });
    expect(r2.status).toBe(200);
    expect(await r2.json()).toMatchObject({ duplicate: true });
    const show = await svc.api('/v1/partners/tsl/shows/s1');
    expect(show.status).toBe(200);
    expect(await show.json()).toMatchObject({ show: { id: 's1', state: 'scheduled' }, mirrors: [] });
  });

  test('the OpenAPI document is generated and lists the contract endpoints', async () => {
    const r = await fetch(`${svc.url}/docs/json`);
    expect(r.status).toBe(200);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/v1/partners', '/v1/partners/{partnerId}/events', '/v1/partners/{partnerId}/targets', '/v1/partners/{partnerId}/shows/{showId}', '/v1/api-keys', '/health/ready']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });

  test('health and metrics', async () => {
    expect((await fetch(`${svc.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${svc.url}/health/ready`)).status).toBe(200);
    const m = await fetch(`${svc.url}/metrics`);
    expect(m.status).toBe(200);
    expect(await m.text()).toContain('syndicast_events_total');
  });
});
