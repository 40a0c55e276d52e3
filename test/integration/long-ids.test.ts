/**
 * Ids of the contract's full length, 128 characters ([A-Za-z0-9_.:-]{1,128}), in the URL paths. The
 * router refused any path parameter over 100 characters with 414, so a partner whose 120-character id
 * POST /v1/partners had accepted (201) could send no event at all, and a show or target with such an
 * id, stored from an event or a POST, could not be read, changed, linked or resynced.
 */
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started), {}, 60_000);

const id128 = (head: string): string => (head + ':' + 'x'.repeat(128)).slice(0, 128);

test('a partner, show and target with 128-character ids are reachable at every route that names them', async () => {
  const partnerId = id128('partner');
  const showId = id128('show');
  const targetId = id128('target');
  expect([partnerId.length, showId.length, targetId.length]).toEqual([128, 128, 128]);
  const secret = await createPartner(svc, partnerId);

  const ev = await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'));
  expect([ev.status, await ev.text()]).toEqual([202, expect.stringContaining('"duplicate":false')]);

  const t = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, { json: { id: targetId, platform: 'tiktok', name: 'TT', credentials: CREDENTIALS.tiktok, commissionRateBps: 500 } });
  expect(t.status).toBe(201);

  const answers: [string, number][] = [];
  const call = async (path: string, init?: Parameters<TestService['api']>[1]): Promise<void> => {
    const r = await svc.api(path, init);
    answers.push([path.replace(/x{20,}/g, '…').slice(0, 80) + ' ' + (init?.method ?? (init?.json ? 'POST' : 'GET')), r.status]);
  };
  await call(`/v1/partners/${partnerId}`);
  await call(`/v1/partners/${partnerId}/shows/${showId}`);
  await call(`/v1/partners/${partnerId}/targets/${targetId}`, { method: 'PATCH', json: { name: 'renamed' } });
  await call(`/v1/partners/${partnerId}/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId: '7301234567890123456' } });
  await call(`/v1/partners/${partnerId}/shows/${showId}/mirrors/${targetId}/resync`, { method: 'POST', json: {} });
  expect(answers.filter(([, status]) => status < 200 || status >= 300)).toEqual([]);

  const doc = (await (await svc.api(`/v1/partners/${partnerId}/shows/${showId}`)).json()) as { show: { id: string }; mirrors: { targetId: string; externalId: string | null }[] };
  expect(doc.show.id).toBe(showId);
  expect(doc.mirrors).toEqual([expect.objectContaining({ targetId, externalId: '7301234567890123456' })]);

  // One character more is no id: still refused before any route runs.
  const over = await sendEvent(svc, partnerId + 'x', secret, showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'));
  expect(over.status).toBe(414);
}, 60_000);
