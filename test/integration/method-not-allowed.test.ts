/**
 * A known path asked with a method it has no route for is a 405 problem with `Allow` listing the
 * methods it has (RFC 9110 §15.5.6); a path no method has stays a 404. Before, both were 404, which
 * told a client its URL was wrong when only the method was. Real redis-server, real HTTP.
 */
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

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
