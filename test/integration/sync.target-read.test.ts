/**
 * A sync run parses the target record it read with its lease once per stored text
 * (SyncService.targetRead: runs of every show on a target read the same record). A changed record is
 * a new text: the next run sees the change at once (disabled: nothing done; enabled again: the run
 * goes on). Real redis-server; no simulator (an enabled target's run meets a refused connection and
 * waits to retry, a disabled one's does nothing).
 */
import { CREDENTIALS } from '../helpers/platforms.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
beforeAll(async () => {
  svc = await startService(); // no workers: the test plays the runs
  secret = await createPartner(svc, 'tr');
  const r = await svc.api('/v1/partners/tr/targets?verify=false', {
    json: { id: 'tr-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: 'http://127.0.0.1:9/youtube', commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  for (const id of ['tr-s1', 'tr-s2', 'tr-s3']) {
    expect((await sendEvent(svc, 'tr', secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
  }
}, 60_000);
afterAll(async () => {
  await svc?.close();
});

const patch = async (body: unknown): Promise<void> => {
  const r = await svc.api('/v1/partners/tr/targets/tr-yt?verify=false', { method: 'PATCH', json: body });
  expect(r.status).toBe(200);
};
const run = (showId: string) => svc.rt.syncService.sync({ partnerId: 'tr', showId, targetId: 'tr-yt' });

test('a target disabled after a run is seen disabled by the next one, and enabled again by the one after', async () => {
  expect(await run('tr-s1')).toMatchObject({ kind: 'delay' }); // enabled: the platform call is refused, retried later
  await patch({ enabled: false });
  expect(await run('tr-s2')).toEqual({ kind: 'done', state: 'none' });
  await patch({ enabled: true });
  expect(await run('tr-s3')).toMatchObject({ kind: 'delay' });
});
