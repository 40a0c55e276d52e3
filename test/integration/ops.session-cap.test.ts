/**
 * `POST /v1/ops/session` in a loop. Every sign-in stored a session in Redis for 8 hours, for any valid
 * key, a partner's or a viewer's too (whose sessions open nothing: /admin/queues is for admins): one
 * partner key signing in in a loop filled Redis, the system of record, without bound (~110 sessions a
 * second from 8 clients against `npm start` on a loaded 2-core machine, each kept 8 hours). Now one
 * key holds at most SESSIONS_PER_KEY sessions; a sign-in past that ends the key's oldest (its cookie
 * is refused), the newest ones and other keys' sessions stay.
 * Real Redis, real HTTP.
 */
import { SESSIONS_PER_KEY } from '../../src/store/session.repository.js';
import { ADMIN_KEY, createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  await createPartner(svc, 'sp');
});
afterAll(async () => {
  await svc?.close();
});

async function signIn(key: string): Promise<string> {
  const r = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
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
