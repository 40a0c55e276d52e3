/**
 * `POST /v1/ops/session` in a loop. Every sign-in stored a session in Redis for 8 hours, for any valid
 * key, a partner's or a viewer's too (whose sessions open nothing: /admin/queues is for admins): one
 * partner key signing in in a loop filled Redis, the system of record, without bound (~110 sessions a
 * second from 8 clients against `npm start` on a loaded 2-core machine, each kept 8 hours). Now one
 * key holds at most SESSIONS_PER_KEY sessions; a sign-in past that ends the key's oldest (its cookie
 * is refused), the newest ones and other keys' sessions stay. Ended sessions (replaced by a renewal,
 * signed out) do not count: a renewal's replaced session makes room for its new one, at the cap too.
 * A sign-out clears the cookie also while Redis is down. A refused sign-in reads its key once.
 * Real Redis, real HTTP.
 */
import { jest } from '@jest/globals';
import { SESSIONS_PER_KEY } from '../../src/store/session.repository.js';
import { waitForOwnTime } from '../helpers/loop-stalls.js';
import { ADMIN_KEY, createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  await createPartner(svc, 'sp');
});
afterAll(async () => {
  await svc?.close();
});

/** A sign-in; with `cookie` (the one it replaces), a renewal. The new cookie. */
async function signIn(key: string, cookie?: string): Promise<string> {
  const r = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ key }) });
  expect(r.status).toBe(201);
  return r.headers.get('set-cookie')!.split(';')[0]!;
}

/** The session records in Redis. */
async function sessionRecords(): Promise<number> {
  const pattern = svc.rt.keys.consoleSession('*');
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await svc.rt.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

const queues = async (cookie: string): Promise<number> => (await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } })).status;

test("a key's sign-ins past the cap end its oldest sessions: Redis holds at most the cap per key", async () => {
  const before = await sessionRecords();
  const partnerKey = ((await (await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId: 'sp' } })).json()) as { key: string }).key;
  for (let i = 0; i < SESSIONS_PER_KEY + 15; i++) await signIn(partnerKey);
  expect((await sessionRecords()) - before).toBe(SESSIONS_PER_KEY);

  const admin: string[] = [];
  for (let i = 0; i < SESSIONS_PER_KEY + 5; i++) admin.push(await signIn(ADMIN_KEY));
  expect((await sessionRecords()) - before).toBe(2 * SESSIONS_PER_KEY);
  expect(await queues(admin[0]!)).toBe(401); // the oldest ended
  expect(await queues(admin[4]!)).toBe(401);
  expect(await queues(admin[5]!)).toBe(200); // the newest SESSIONS_PER_KEY stay
  expect(await queues(admin.at(-1)!)).toBe(200);
});

test("ended sessions do not count towards the cap: another browser's renewals leave a live session of the same key alone", async () => {
  // Two admins on the shared ADMIN_API_KEY. A renewal (the console's hourly one, or its Queues link)
  // replaces the browser's session; the replaced one stayed on the key's list, so after
  // SESSIONS_PER_KEY renewals in browser B the cap ended browser A's live session (two were alive).
  const signInWith = (cookie?: string): Promise<string> => signIn(ADMIN_KEY, cookie);
  const a = await signInWith();
  let b = await signInWith();
  for (let i = 0; i < SESSIONS_PER_KEY + 2; i++) b = await signInWith(b);
  expect(await queues(b)).toBe(200);
  expect(await queues(a)).toBe(200);
  // A sign-out takes its session off the list too.
  const c = await signInWith();
  const listed = await svc.rt.redis.zcard(svc.rt.keys.consoleSessionsOfKey('admin'));
  expect((await fetch(`${svc.url}/v1/ops/session`, { method: 'DELETE', headers: { cookie: c } })).status).toBe(204);
  expect(await svc.rt.redis.zcard(svc.rt.keys.consoleSessionsOfKey('admin'))).toBe(listed - 1);
  expect(await queues(a)).toBe(200);
});

test("a renewal at the cap ends no other browser's session: the session it replaces makes room", async () => {
  // The renewal made its new session first: SESSIONS_PER_KEY + 1 on the list, the cap ended the key's
  // oldest live session (another browser's, signed out on each renewal), then the replaced one went.
  const key = ((await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { key: string }).key;
  const signInWith = (cookie?: string): Promise<string> => signIn(key, cookie);
  const browsers: string[] = [];
  for (let i = 0; i < SESSIONS_PER_KEY; i++) browsers.push(await signInWith());
  expect(await queues(browsers[0]!)).toBe(403); // a viewer's live session: 403; an ended one: 401
  const last = browsers.length - 1;
  browsers[last] = await signInWith(browsers[last]);
  browsers[last] = await signInWith(browsers[last]);
  for (const b of browsers) expect(await queues(b)).toBe(403);
});

test('two tabs renewing the same cookie at the same instant leave one session, not an orphan', async () => {
  // Both renewals (the hourly one, a Queues link) carried the browser's cookie and each made a random
  // new session: the browser kept the one answered last, the other stayed alive for 8 hours, counted
  // in the key's cap. Now renewals of one cookie with one key make the same session.
  const key = (await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { id: string; key: string };
  const list = svc.rt.keys.consoleSessionsOfKey(key.id);
  const old = await signIn(key.key);
  const [a, b] = await Promise.all([signIn(key.key, old), signIn(key.key, old)]);
  expect(a).toBe(b);
  expect(await svc.rt.redis.zcard(list)).toBe(1);
  expect(await queues(a)).toBe(403); // live (a viewer's): 403; ended: 401
  expect(await queues(old)).toBe(401);
  // Another key renewing the same cookie gets a session of its own: a new sign-in, each time.
  const other = await signIn(ADMIN_KEY, a);
  expect(other).not.toBe(a);
  expect(await queues(other)).toBe(200);
  expect(await signIn(ADMIN_KEY, a)).not.toBe(other);
});

test('a renewal with a signed-out or replaced cookie is a new sign-in: the ended session does not come back', async () => {
  // A renewal's token was derived from any cookie sent, live or not: renewing with a cookie already
  // replaced brought back its renewal after a sign-out, with a fresh 8 hours.
  const key = (await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { id: string; key: string };
  const list = svc.rt.keys.consoleSessionsOfKey(key.id);
  const x = await signIn(key.key);
  const a = await signIn(key.key, x);
  // The other tab, just after (the cookie it sent already replaced): the same session, none created.
  expect(await signIn(key.key, x)).toBe(a);
  expect(await svc.rt.redis.zcard(list)).toBe(1);
  expect((await fetch(`${svc.url}/v1/ops/session`, { method: 'DELETE', headers: { cookie: a } })).status).toBe(204);
  expect(await queues(a)).toBe(401);
  const late = await signIn(key.key, x);
  expect(late).not.toBe(a);
  expect(await queues(a)).toBe(401);
  expect(await queues(late)).toBe(403); // live (a viewer's)

  // A late tab after a second renewal (x2 → a2 → b2): its cookie does not bring a2 back.
  const x2 = await signIn(key.key);
  const a2 = await signIn(key.key, x2);
  const b2 = await signIn(key.key, a2);
  const late2 = await signIn(key.key, x2);
  expect(late2).not.toBe(a2);
  expect(await queues(a2)).toBe(401);
  expect(await queues(b2)).toBe(403);
  // Garbage is a new sign-in too, a different one each time.
  expect(await signIn(key.key, 'syndicast_ops=nothing')).not.toBe(await signIn(key.key, 'syndicast_ops=nothing'));
});

test('a refused sign-in looks its key up once (it looked again for the reason: a second GET)', async () => {
  const created = (await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { id: string; key: string };
  expect((await svc.api(`/v1/api-keys/${created.id}`, { method: 'DELETE' })).status).toBe(200);
  const lookup = jest.spyOn(svc.rt.apiKeys, 'lookup');
  try {
    const r = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: created.key }) });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { detail: string }).detail).toBe('this API key was revoked');
    expect(lookup).toHaveBeenCalledTimes(1);
  } finally {
    lookup.mockRestore();
  }
});

test('a sign-out while Redis is down clears the cookie all the same (503): the browser is not left signed in to /admin/queues', async () => {
  const cookie = await signIn(ADMIN_KEY);
  await svc.redis.stop();
  let out: Response;
  try {
    out = await fetch(`${svc.url}/v1/ops/session`, { method: 'DELETE', headers: { cookie } });
  } finally {
    await svc.redis.start();
  }
  expect(out.status).toBe(503);
  expect(out.headers.get('set-cookie')).toMatch(/^syndicast_ops=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/);
  // Back in service before the file ends (its clients reconnected), as the other outage tests leave it.
  expect(await waitForOwnTime(async () => (await fetch(`${svc.url}/health/ready`)).status === 200, 10_000, { stepMs: 200 })).toBe(true);
}, 60_000);
