/**
 * One show whose stored snapshot does not read (an operator's hand edit, a half-migrated key: invalid
 * JSON, a string where the hash is) fails alone in the sweep: the other active shows are swept, and the
 * sweep itself resolves. Before, the one show's error rejected the page and no other show was swept.
 * The readiness tick likewise goes on past such a show (before, its error ended the tick).
 */
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createLogger } from '../../src/lib/logger.js';
import { shardOf, syncJobId } from '../../src/queues/queues.js';
import { createPartner, sampleShow, sendEvent, showEvent, serviceForFile, type TestService } from '../helpers/service.js';
import { queuesIdle, syncQueues } from '../helpers/settle.js';

let svc: TestService;

serviceForFile((started) => (svc = started), { dispatch: false });

async function hasJob(partnerId: string, showId: string, targetId: string): Promise<boolean> {
  const q = svc.rt.syncProducer.queue('youtube', shardOf(partnerId, showId, svc.config.syncShards));
  return !!(await q.getDeduplicationJobId(syncJobId({ partnerId, showId, targetId })));
}

test.each([
  ['truncated JSON', 'cs1', async (key: string) => void (await svc.rt.redis.hset(key, 'snap', '{"id":"bad","title":"Cook'))],
  ['a string where the hash is', 'cs2', async (key: string) => void (await svc.rt.redis.set(key, 'hand edit'))],
])('a show whose snapshot is %s does not stop the sweep of the others', async (_what, p, corrupt) => {
  await svc.rt.redis.del(svc.rt.keys.activeShows());
  const secret = await createPartner(svc, p);
  const t = await svc.api(`/v1/partners/${p}/targets?verify=false`, { json: { id: `${p}-yt`, platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
  expect(t.status).toBe(201);
  for (const id of ['bad', 'good1', 'good2']) expect((await sendEvent(svc, p, secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
  // The syncs these events scheduled got lost: only the sweep can bring them back.
  await svc.rt.redis.del(svc.rt.keys.syncDispatch());
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  expect(await queuesIdle(syncQueues(svc))).toBe(true);
  await corrupt(svc.rt.keys.desired(p, 'bad'));

  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'), svc.config.sweepPageSize);
  const r = await sweep.sweep();
  expect(r).toMatchObject({ shows: 3, enqueued: 2, finished: 0 });
  expect(await hasJob(p, 'good1', `${p}-yt`)).toBe(true);
  expect(await hasJob(p, 'good2', `${p}-yt`)).toBe(true);
  expect(await hasJob(p, 'bad', `${p}-yt`)).toBe(false);
  // Still in the active set: the next sweep tries it again (once a sweep, no hot loop).
  expect(await svc.rt.redis.zcard(svc.rt.keys.activeShows())).toBe(3);
}, 60_000);

test('the readiness tick goes on past a show whose snapshot does not read', async () => {
  await svc.rt.redis.del(svc.rt.keys.activeShows());
  const secret = await createPartner(svc, 'cr');
  for (const id of ['bad', 'good']) expect((await sendEvent(svc, 'cr', secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
  await svc.rt.redis.hset(svc.rt.keys.desired('cr', 'bad'), 'snap', '{"id":"bad","title":"Cook');
  await expect(svc.rt.readiness.sweep()).resolves.toEqual({ checked: 0 });
}, 60_000);
