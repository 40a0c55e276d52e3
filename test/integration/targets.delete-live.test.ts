/**
 * Deleting a target while a mirror of it still holds a show on the platform: the target's credentials
 * are the only way the service can end or delete that broadcast, so the delete is refused (409
 * problem naming the shows) until the mirrors have followed their shows to the end. Before, the
 * delete answered 204 and the YouTube broadcast stayed live for good (no sync runs for a target that
 * is gone). Real Redis, the simulators over HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { simServicePerFile, youtubeEncoderNow } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: youtubeEncoderNow });

async function problem(r: Response, status: number): Promise<{ detail?: string }> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await r.json()) as { detail?: string };
}

test('a target whose mirror is live cannot be deleted (409 naming the show); once the show ended there, it can', async () => {
  const secret = await createPartner(svc, 'tdl');
  const path = '/v1/partners/tdl/targets/yt';
  expect((await svc.api('/v1/partners/tdl/targets', { json: { id: 'yt', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } })).status).toBe(201);
  expect((await sendEvent(svc, 'tdl', secret, showEvent('show.live', { ...sampleShow('on-air'), state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  const m = await waitFor(async () => {
    const x = await svc.rt.shows.getMirror('tdl', 'on-air', 'yt');
    return x?.state === 'live' ? x : null;
  });

  const p = await problem(await svc.api(path, { method: 'DELETE' }), 409);
  expect(p.detail).toContain('on-air');
  expect(await svc.rt.partners.getTarget('tdl', 'yt')).not.toBeNull();

  // Disabled, it still holds the broadcast: still refused.
  expect((await svc.api(path, { method: 'PATCH', json: { enabled: false } })).status).toBe(200);
  await problem(await svc.api(path, { method: 'DELETE' }), 409);
  expect((await svc.api(path, { method: 'PATCH', json: { enabled: true } })).status).toBe(200);

  expect((await sendEvent(svc, 'tdl', secret, showEvent('show.ended', { ...sampleShow('on-air'), state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('tdl', 'on-air', 'yt'))?.state === 'ended');

  expect((await svc.api(path, { method: 'DELETE' })).status).toBe(204);
  expect(await svc.rt.partners.getTarget('tdl', 'yt')).toBeNull();
  // The broadcast was ended on the platform, once.
  const ended = (await sim.effects('youtube')).filter((e) => e.externalId === m.remote!.externalId && e.type === 'show.ended');
  expect(ended).toHaveLength(1);
});

test('a target with no show on the platform is deleted at once (204)', async () => {
  await createPartner(svc, 'tdl2');
  expect((await svc.api('/v1/partners/tdl2/targets?verify=false', { json: { id: 'yt2', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } })).status).toBe(201);
  expect((await svc.api('/v1/partners/tdl2/targets/yt2', { method: 'DELETE' })).status).toBe(204);
  await problem(await svc.api('/v1/partners/tdl2/targets/yt2', { method: 'DELETE' }), 404);
});

test('?force=true deletes a target whose mirror is live (the operator ends that show by hand): 204, and the audit names the show left on the platform', async () => {
  const secret = await createPartner(svc, 'tdl3');
  const path = '/v1/partners/tdl3/targets/yt3';
  expect((await svc.api('/v1/partners/tdl3/targets', { json: { id: 'yt3', platform: 'youtube', name: 'YT', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 500 } })).status).toBe(201);
  expect((await sendEvent(svc, 'tdl3', secret, showEvent('show.live', { ...sampleShow('left-on'), state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('tdl3', 'left-on', 'yt3'))?.state === 'live');
  await problem(await svc.api(`${path}?force=false`, { method: 'DELETE' }), 409);
  await problem(await svc.api(`${path}?force=yes`, { method: 'DELETE' }), 400);
  expect((await svc.api(`${path}?force=true`, { method: 'DELETE' })).status).toBe(204);
  expect(await svc.rt.partners.getTarget('tdl3', 'yt3')).toBeNull();
  const audit = (await (await svc.api('/v1/audit?action=target.deleted')).json()) as { entries: { targetId?: string; detail?: { forced?: boolean; leftOnPlatform?: string[] } }[] };
  const entry = audit.entries.find((e) => e.targetId === 'yt3');
  expect(entry?.detail).toEqual({ forced: true, leftOnPlatform: ['left-on'] });
});
