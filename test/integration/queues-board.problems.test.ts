/**
 * Errors under /admin/queues are application/problem+json like every other route's: bull-board
 * answered its own as application/json (`{"error":{"key":"ERRORS.QUEUE_NOT_FOUND"}}` for a queue or
 * job that does not exist, `{"error":…,"message":"Body is not valid JSON…"}` for a bad body). Its
 * `error` stays in the problem (the board's page reads it); the page and the board's API still answer
 * as before. Real redis-server, the dashboard over real HTTP.
 */
import { ADMIN_KEY, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

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
