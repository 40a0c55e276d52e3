/**
 * The partner's show index (what GET /v1/partners/{p}/shows sorts by, newest scheduled first, and
 * the ops board's day) follows the show's current snapshot. It was written with the scheduledAt of
 * every snapshot event that arrived, so an older snapshot delivered late (it loses its register:
 * later occurredAt wins, contract §3) moved the show back to its old time while the show itself kept
 * the new one. Real Redis, single and Cluster (their ingest paths differ), real HTTP.
 */
import { startTestRedis } from '../helpers/redis-cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

describe.each(['single', 'cluster'] as const)('%s Redis', (topology) => {
  let svc: TestService;
  let redis: TestRedis | undefined;
  let secret: string;
  beforeAll(async () => {
    redis = await startTestRedis(topology);
    svc = await startService({ redis, dispatch: false });
    secret = await createPartner(svc, 'si');
  }, 120_000);
  afterAll(async () => {
    // startService leaves a Redis it was given running: these servers are the test's to stop.
    await svc?.close();
    await redis?.destroy();
  });

  const list = async (): Promise<{ id: string; scheduledAt: string }[]> =>
    ((await (await svc.api('/v1/partners/si/shows')).json()) as { shows: { id: string; scheduledAt: string }[] }).shows;
  const score = (showId: string): Promise<string | null> => svc.rt.redis.zscore(svc.rt.keys.partnerShows('si'), showId);

  test('a late, older snapshot does not move the show back to its old scheduledAt', async () => {
    const send = async (body: unknown, webhookId?: string): Promise<void> => {
      const r = await sendEvent(svc, 'si', secret, body, webhookId ? { webhookId } : {});
      expect([200, 202]).toContain(r.status);
    };
    await send(showEvent('show.scheduled', sampleShow('a', { scheduledAt: '2030-01-01T18:00:00Z' }), '2026-11-24T10:00:00Z'));
    await send(showEvent('show.scheduled', sampleShow('b', { scheduledAt: '2030-01-02T18:00:00Z' }), '2026-11-24T10:00:00Z'));
    // Show a moved to the 3rd (newer event), then the earlier event that had it on the 5th arrives late, twice.
    await send(showEvent('show.updated', sampleShow('a', { scheduledAt: '2030-01-03T18:00:00Z' }), '2026-11-24T12:00:00Z'));
    await send(showEvent('show.updated', sampleShow('a', { scheduledAt: '2030-01-05T18:00:00Z' }), '2026-11-24T11:00:00Z'), 'late-a');
    await send(showEvent('show.updated', sampleShow('a', { scheduledAt: '2030-01-05T18:00:00Z' }), '2026-11-24T11:00:00Z'), 'late-a');

    expect(await list()).toEqual([
      expect.objectContaining({ id: 'a', scheduledAt: '2030-01-03T18:00:00Z' }),
      expect.objectContaining({ id: 'b', scheduledAt: '2030-01-02T18:00:00Z' }),
    ]);
    expect(Number(await score('a'))).toBe(Date.parse('2030-01-03T18:00:00Z'));

    // A newer snapshot still moves it (to before b).
    await send(showEvent('show.updated', sampleShow('a', { scheduledAt: '2030-01-01T09:00:00Z' }), '2026-11-24T13:00:00Z'));
    expect((await list()).map((s) => s.id)).toEqual(['b', 'a']);
    expect(Number(await score('a'))).toBe(Date.parse('2030-01-01T09:00:00Z'));
  }, 60_000);
});
