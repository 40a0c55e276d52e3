/**
 * A PATCH of a target's credentials re-queues the target's active shows at once (targets.routes kick),
 * as a create or a re-enable does: the shows whose syncs failed with the old credentials (revoked,
 * expired: an auth failure) go again with the new ones now, not at the next sweep. A PATCH of anything
 * else (a name) queues nothing. Real Redis; no dispatcher and no workers, so the sync queue holds only
 * what the PATCH put there.
 */
import { shardOf, syncJobId } from '../../src/queues/queues.js';
import { createPartner, sampleShow, sendEvent, showEvent, serviceForFile, type TestService } from '../helpers/service.js';
import { queuesIdle, syncQueues } from '../helpers/settle.js';

let svc: TestService;
const P = 'pck';
const SHOWS = ['kick1', 'kick2', 'kick3'];

serviceForFile((started) => (svc = started), { dispatch: false });

async function hasJob(showId: string, targetId: string): Promise<boolean> {
  const q = svc.rt.syncProducer.queue('youtube', shardOf(P, showId, svc.config.syncShards));
  return !!(await q.getDeduplicationJobId(syncJobId({ partnerId: P, showId, targetId })));
}
/** No sync waits: the events' dispatch entries (the Redis Cluster path) and every job gone. */
async function emptyQueues(): Promise<void> {
  await svc.rt.redis.del(svc.rt.keys.syncDispatch());
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  expect(await queuesIdle(syncQueues(svc))).toBe(true);
}

test("a credentials PATCH queues a sync of each of the target's active shows before it answers; a name PATCH queues none", async () => {
  const secret = await createPartner(svc, P);
  const path = `/v1/partners/${P}/targets/pck-yt`;
  expect((await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'pck-yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'old' }, commissionRateBps: 500 } })).status).toBe(201);
  for (const id of SHOWS) expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await emptyQueues();

  expect((await svc.api(path, { method: 'PATCH', json: { name: 'YT renamed' } })).status).toBe(200);
  for (const id of SHOWS) expect(await hasJob(id, 'pck-yt')).toBe(false);

  expect((await svc.api(`${path}?verify=false`, { method: 'PATCH', json: { credentials: { refreshToken: 'new' } } })).status).toBe(200);
  for (const id of SHOWS) expect(await hasJob(id, 'pck-yt')).toBe(true);
});
