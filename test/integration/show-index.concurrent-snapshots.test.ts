/**
 * On a Redis Cluster a show snapshot's register write (the show's slot) and its partner index writes
 * (show index by scheduledAt, live set: the partner's slot) are separate steps, so two snapshots of
 * one show in flight at once can reach the two slots in different orders. The end state must be that
 * of in-order delivery (contract §3): the newer snapshot's scheduledAt and live state in the indexes.
 * Before, both snapshots could win their register writes in turn ("changed") and the older one's index
 * write then land last, with nothing to repair it.
 *
 * The race is driven deterministically by holding one delivery's register write (the repository's
 * `ingest`, on real Redis) until the other delivery has been answered; nothing is mocked.
 */
import { startTestRedis } from '../helpers/redis-cluster.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

describe('cluster Redis: concurrent snapshots of one show', () => {
  let svc: TestService;
  let redis: TestRedis | undefined;
  let secret: string;
  /** webhook-id → how its register write is held: 'before' (not sent until released) or 'after' (sent, its answer held). */
  const holds = new Map<string, { mode: 'before' | 'after'; released: Promise<void> }>();
  beforeAll(async () => {
    redis = await startTestRedis('cluster');
    svc = await startService({ redis, dispatch: false });
    secret = await createPartner(svc, 'cs');
    const shows = svc.rt.shows;
    const ingest = shows.ingest.bind(shows);
    shows.ingest = async (...args: Parameters<typeof ingest>) => {
      const hold = holds.get(args[2]);
      if (hold?.mode === 'before') await hold.released;
      const r = await ingest(...args);
      if (hold?.mode === 'after') await hold.released;
      return r;
    };
  }, 120_000);
  afterAll(async () => {
    // startService leaves a Redis it was given running: these servers are the test's to stop.
    await svc?.close();
    await redis?.destroy();
  });

  const score = async (showId: string): Promise<number> => Number(await svc.rt.redis.zscore(svc.rt.keys.partnerShows('cs'), showId));
  const isLive = async (showId: string): Promise<boolean> => (await svc.rt.redis.sismember(svc.rt.keys.partnerLiveShows('cs'), showId)) === 1;

  /** Sends `first` (held as `mode` says) and, once it is under way, `second`; `first` is released when `second` was answered. */
  async function race(first: { body: unknown; webhookId: string }, second: { body: unknown; webhookId: string }, mode: 'before' | 'after'): Promise<void> {
    let release!: () => void;
    holds.set(first.webhookId, { mode, released: new Promise<void>((r) => (release = r)) });
    const firstSent = sendEvent(svc, 'cs', secret, first.body, { webhookId: first.webhookId });
    // Let the first delivery reach its held step (and, for 'after', its register write land).
    await new Promise((r) => setTimeout(r, 300));
    const r2 = await sendEvent(svc, 'cs', secret, second.body, { webhookId: second.webhookId });
    release();
    const r1 = await firstSent;
    expect([200, 202]).toContain(r1.status);
    expect([200, 202]).toContain(r2.status);
  }

  test('older snapshot stored first, its index writes landing after the newer one: the newer one stays indexed', async () => {
    // B (older: live on the 5th) wins its register first; A (newer: ended, on the 3rd) is stored and
    // indexed; then B's index writes follow.
    const b = { body: showEvent('show.live', sampleShow('s1', { scheduledAt: '2030-01-05T18:00:00Z', state: 'live' }), '2026-11-24T11:00:00Z'), webhookId: 'b-s1' };
    const a = { body: showEvent('show.ended', sampleShow('s1', { scheduledAt: '2030-01-03T18:00:00Z', state: 'ended' }), '2026-11-24T12:00:00Z'), webhookId: 'a-s1' };
    await race(b, a, 'after');

    expect((await svc.rt.shows.desired('cs', 's1'))?.state).toBe('ended');
    expect(await isLive('s1')).toBe(false);
    expect(await score('s1')).toBe(Date.parse('2030-01-03T18:00:00Z'));
  }, 60_000);

  test('newer snapshot held before its register write while the older one is stored and indexed: the newer one ends indexed', async () => {
    const a = { body: showEvent('show.ended', sampleShow('s2', { scheduledAt: '2030-01-03T18:00:00Z', state: 'ended' }), '2026-11-24T12:00:00Z'), webhookId: 'a-s2' };
    const b = { body: showEvent('show.live', sampleShow('s2', { scheduledAt: '2030-01-05T18:00:00Z', state: 'live' }), '2026-11-24T11:00:00Z'), webhookId: 'b-s2' };
    await race(a, b, 'before');

    expect((await svc.rt.shows.desired('cs', 's2'))?.state).toBe('ended');
    expect(await isLive('s2')).toBe(false);
    expect(await score('s2')).toBe(Date.parse('2030-01-03T18:00:00Z'));
  }, 60_000);

  test('a late older snapshot and a duplicate leave the index at the stored snapshot', async () => {
    const newer = showEvent('show.live', sampleShow('s3', { scheduledAt: '2030-01-07T18:00:00Z', state: 'live' }), '2026-11-24T12:00:00Z');
    const older = showEvent('show.ended', sampleShow('s3', { scheduledAt: '2030-01-08T18:00:00Z', state: 'ended' }), '2026-11-24T11:00:00Z');
    for (const [body, webhookId] of [[newer, 'n-s3'], [older, 'o-s3'], [newer, 'n-s3'], [older, 'o-s3']] as const) {
      expect([200, 202]).toContain((await sendEvent(svc, 'cs', secret, body, { webhookId })).status);
    }
    expect(await isLive('s3')).toBe(true);
    expect(await score('s3')).toBe(Date.parse('2030-01-07T18:00:00Z'));
    // The order key of the indexed snapshot is kept per show (one field) in the partner's slot.
    expect(await svc.rt.redis.hget(svc.rt.keys.partnerShowsIndexed('cs'), 's3')).toMatch(/\|n-s3$/);
  }, 60_000);
});
