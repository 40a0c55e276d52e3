/**
 * The sweep and a new target's kick visit every active show, not only the first 5,000 (issue 8 item 7):
 * with 5,000 older entries in the active set (shows whose state lives elsewhere, read and skipped) and
 * a small page size (SWEEP_PAGE_SIZE=50), the shows changed last — the ones `markActive` moves to the
 * end — still get their syncs from the sweep, and a target added afterwards gets one for each of them.
 */
import { SweepService } from '../../src/mirror/sweep.service.js';
import { createLogger } from '../../src/lib/logger.js';
import { shardOf, syncJobId } from '../../src/queues/queues.js';
import { createPartner, sampleShow, sendEvent, showEvent, serviceForFile, type TestService } from '../helpers/service.js';
import { queuesIdle, syncQueues } from '../helpers/settle.js';

let svc: TestService;
const FILLERS = 5000;
const SHOWS = ['late1', 'late2', 'late3'];

serviceForFile((started) => (svc = started), { env: { SWEEP_PAGE_SIZE: '50' }, dispatch: false });

async function hasJob(showId: string, targetId: string): Promise<boolean> {
  const q = svc.rt.syncProducer.queue('youtube', shardOf('pg', showId, svc.config.syncShards));
  return !!(await q.getDeduplicationJobId(syncJobId({ partnerId: 'pg', showId, targetId })));
}

test('every active show is swept and kicked, page by page, beyond the first 5,000', async () => {
  expect(svc.config.sweepPageSize).toBe(50);
  const secret = await createPartner(svc, 'pg');
  const t = await svc.api('/v1/partners/pg/targets?verify=false', { json: { id: 'pg-yt', platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
  expect(t.status).toBe(201);

  // 5,000 older entries (score 1..5000, below any Date.now()): another partner's shows, no state here.
  const key = svc.rt.keys.activeShows();
  const args: (string | number)[] = [];
  for (let i = 1; i <= FILLERS; i++) args.push(i, JSON.stringify(['gone', `old${i}`]));
  await svc.rt.redis.zadd(key, ...args);

  for (const id of SHOWS) expect((await sendEvent(svc, 'pg', secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
  // The syncs these events scheduled got lost (their dispatch entries and any job gone): only the sweep can bring them back.
  await svc.rt.redis.del(svc.rt.keys.syncDispatch());
  for (const q of svc.rt.syncProducer.allQueues()) await q.obliterate({ force: true });
  expect(await queuesIdle(syncQueues(svc))).toBe(true);

  const sweep = new SweepService(svc.rt.shows, svc.rt.partners, svc.rt.syncProducer, createLogger('silent'), svc.config.sweepPageSize);
  const r = await sweep.sweep();
  expect(r).toMatchObject({ shows: FILLERS + SHOWS.length, enqueued: SHOWS.length });
  for (const id of SHOWS) expect(await hasJob(id, 'pg-yt')).toBe(true);

  // A target added now is kicked for each of those shows too.
  const t2 = await svc.api('/v1/partners/pg/targets?verify=false', { json: { id: 'pg-yt2', platform: 'youtube', name: 'YT 2', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
  expect(t2.status).toBe(201);
  for (const id of SHOWS) expect(await hasJob(id, 'pg-yt2')).toBe(true);
}, 120_000);
