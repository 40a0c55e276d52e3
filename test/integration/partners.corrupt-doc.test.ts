/**
 * A partner whose stored document does not read (an operator's hand edit with redis-cli, a half-migrated
 * key: truncated JSON, a string where the partner hash is) is left out of the partner list, alone:
 * GET /v1/partners still lists the others. Before, its error answered 500 for every partner (and failed
 * /metrics and the reconcile-schedules tick, which read the same list). One that is not valid UTF-8
 * is still changed by PATCH (its compare-and-set compares bytes).
 */
import { createPartner, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;

serviceForFile((started) => (svc = started));

test.each([
  ['truncated JSON', 'pc1', async (key: string) => void (await svc.rt.redis.hset(key, 'doc', '{"id":"pc1-bad","na'))],
  ['a string where the hash is', 'pc2', async (key: string) => {
    await svc.rt.redis.del(key);
    await svc.rt.redis.set(key, 'hand edit');
  }],
])('a partner whose document is %s does not hide the others from GET /v1/partners', async (_what, p, corrupt) => {
  await createPartner(svc, `${p}-bad`);
  await createPartner(svc, `${p}-good`);
  await corrupt(svc.rt.keys.partner(`${p}-bad`));
  const r = await svc.api('/v1/partners');
  expect(r.status).toBe(200);
  const list = ((await r.json()) as { partners: { id: string }[] }).partners;
  expect(list.map((x) => x.id)).toContain(`${p}-good`);
  expect(list.map((x) => x.id)).not.toContain(`${p}-bad`);
  expect((await svc.rt.partners.list()).map((x) => x.id)).toContain(`${p}-good`);
}, 60_000);

test('a partner whose document is not valid UTF-8 (a Latin-1 hand edit of its name) is changed by PATCH: the compare-and-set compares the bytes', async () => {
  await createPartner(svc, 'pu1');
  const key = svc.rt.keys.partner('pu1');
  const doc = JSON.parse((await svc.rt.redis.hget(key, 'doc')) as string) as { name: string };
  // 'é' as the single byte 0xE9: read as text it is U+FFFD, never equal to what Redis holds.
  await svc.rt.redis.hset(key, 'doc', Buffer.from(JSON.stringify({ ...doc, name: 'Caf\u00e9' }), 'latin1'));
  const r = await svc.api('/v1/partners/pu1', { method: 'PATCH', json: { name: 'Cafe' } });
  expect(r.status).toBe(200);
  expect(((await r.json()) as { name: string }).name).toBe('Cafe');
  expect((JSON.parse((await svc.rt.redis.hget(key, 'doc')) as string) as { name: string }).name).toBe('Cafe');
}, 60_000);
