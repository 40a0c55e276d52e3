/**
 * Tenant isolation when ids contain ':' (the contract's ids are `[A-Za-z0-9_.:-]{1,128}`). Key parts
 * are joined with ':', so before keyPart (src/store/keys.ts) partner "a" + show "b:c" and partner
 * "a:b" + show "c" were one key (`{s:a:b:c}`): partner "a:b" read partner "a"'s show (with its ingest
 * stream key) and overwrote it, and a webhook-id claim of one partner answered "duplicate" for the
 * other's event. Real redis-server, real HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secretA: string;
let secretAB: string;

beforeAll(async () => {
  svc = await startService();
  secretA = await createPartner(svc, 'a');
  secretAB = await createPartner(svc, 'a:b');
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

test("one partner's show is neither visible to nor writable by another partner whose id ends the same key", async () => {
  const r1 = await sendEvent(svc, 'a', secretA, showEvent('show.scheduled', sampleShow('b:c', { title: 'private show of a' }), '2026-11-24T17:00:00Z'));
  expect(r1.status).toBe(202);

  // Partner a:b never sent a show "c".
  const k = await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId: 'a:b' } });
  const { key } = (await k.json()) as { key: string };
  const seen = await svc.api('/v1/partners/a:b/shows/c', { key });
  expect(seen.status).toBe(404);

  // Partner a:b's own show "c" must not change partner a's show "b:c".
  const r2 = await sendEvent(svc, 'a:b', secretAB, showEvent('show.cancelled', sampleShow('c', { title: 'a:b wrote this', state: 'cancelled' }), '2026-11-24T18:00:00Z'));
  expect(r2.status).toBe(202);
  const a = (await (await svc.api('/v1/partners/a/shows/b:c')).json()) as { show: { title: string; state: string } };
  expect(a.show).toMatchObject({ title: 'private show of a', state: 'scheduled' });
});

test("a webhook-id of one partner is not a duplicate of another partner's", async () => {
  const r1 = await sendEvent(svc, 'a', secretA, showEvent('show.scheduled', sampleShow('s-a'), '2026-11-24T17:00:00Z'), { webhookId: 'b:msg1' });
  expect(r1.status).toBe(202);
  const r2 = await sendEvent(svc, 'a:b', secretAB, showEvent('show.scheduled', sampleShow('s-ab'), '2026-11-24T17:00:00Z'), { webhookId: 'msg1' });
  expect(r2.status).toBe(202);
  expect((await svc.api('/v1/partners/a:b/shows/s-ab')).status).toBe(200);
});
