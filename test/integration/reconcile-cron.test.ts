/**
 * `reconcileCron` accepted a 6-field (seconds) expression, so "* * * * * *" was stored and the
 * scheduler started a reconciliation of every target every second (each a platform order-report
 * read, and a record kept 400 days). A cron must have 5 fields and fire at most every 5 minutes
 * (MIN_RECONCILE_INTERVAL_MINUTES), on create and on update, else a 400 that says why. Real
 * redis-server, real HTTP.
 */
import { serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started), {}, 60_000);

const reason = async (r: Response): Promise<string> => {
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toContain('application/problem+json');
  const b = (await r.json()) as { errors?: { path: string; message: string }[] };
  const e = b.errors?.find((x) => x.path.includes('reconcileCron'));
  expect(e).toBeDefined();
  return e!.message;
};

test.each([
  ['* * * * * *', /seconds field is not supported/],
  ['*/10 * * * * *', /seconds field is not supported/],
  ['* * * * *', /1 minute\(s\) apart.*every 5 minutes/],
  ['*/4 * * * *', /4 minute\(s\) apart/],
  ['0,2 3 * * *', /2 minute\(s\) apart/],
  ['0,59 0,23 * * *', /1 minute\(s\) apart/], // 23:59 then 00:00 the next day
  ['0 3 * *', /5 fields expected/],
  ['61 3 * * *', /not a valid cron expression/],
  // cron-parser 5 reads a hashed field (a random minute at every read); BullMQ's 4.9, which makes the ticks, cannot.
  ['H 3 * * *', /not a valid cron expression/],
  ['0 3 * * H', /not a valid cron expression/],
  // Both day fields restricted: our cron-parser 5 fires when either matches, BullMQ's 4.9 (which makes the ticks) on other days.
  ['0 3 1,15 * */1', /both restricted/],
  ['0 3 1,15 * 1#2', /both restricted/],
  ['0 3 1,15 12 5#5', /both restricted/],
  ['30 0 29 12 */1', /both restricted/],
  ['0 0 31 2,4 *', /not a valid cron expression/], // never fires
  ['@daily', /macro \(@daily\) is not supported.*0 0 \* \* \*/],
  ['@hourly', /macro \(@hourly\) is not supported/],
])('creating a partner with reconcileCron %p is a 400 that says why', async (cron, why) => {
  const r = await svc.api('/v1/partners', { json: { id: `cron-${Math.random().toString(36).slice(2, 8)}`, name: 'Cron', reconcileCron: cron } });
  expect(await reason(r)).toMatch(why);
});

test('every 5 minutes or less often is accepted; the update path refuses the same expressions', async () => {
  expect((await svc.api('/v1/partners', { json: { id: 'cron-ok', name: 'Cron', reconcileCron: '*/5 * * * *' } })).status).toBe(201);
  const patch = (reconcileCron: string): Promise<Response> => svc.api('/v1/partners/cron-ok', { method: 'PATCH', json: { reconcileCron } });
  expect(await reason(await patch('* * * * * *'))).toMatch(/seconds field is not supported/);
  expect(await reason(await patch('*/2 * * * *'))).toMatch(/2 minute\(s\) apart/);
  expect((await patch('0 */6 * * 1-5')).status).toBe(200);
  const p = (await (await svc.api('/v1/partners/cron-ok')).json()) as { reconcileCron: string };
  expect(p.reconcileCron).toBe('0 */6 * * 1-5');
});
