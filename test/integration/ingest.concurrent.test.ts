/**
 * Concurrent partner events (runs on one Redis and, in `npm run test:cluster`, on the 3+3 Cluster,
 * where concurrent deliveries share calls: the webhook-id claims and the show writes of one master go
 * to it as one call each, the dispatch entries as one call; src/store/webhook-id.repository.ts,
 * src/store/show.repository.ts). Sharing a call must not change what each delivery gets: the same
 * webhook-id sent at once for three shows is stored for exactly one of them and a duplicate of that
 * one for the other two (partner-wide, contract §3), and every accepted event is stored in its own
 * show with one sync-dispatch entry (INGEST_SYNC_JOBS=dispatch and the dispatcher off here, so the
 * entries stay in the stream; the inline mode's jobs: test/integration/ingest.inline-sync.test.ts).
 */
import { sendEvent, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

servicePerFile('cc', (started) => ({ svc, secret } = started), { dispatch: false, env: { INGEST_SYNC_JOBS: 'dispatch' } });

const pin = (showId: string) => ({ type: 'product.pinned', occurredAt: '2026-11-24T18:10:00Z', data: { showId, productId: 'p1' } });

async function storedEvents(showId: string): Promise<number> {
  return svc.rt.redis.xlen(svc.rt.keys.showEvents('cc', showId));
}

test('the same webhook-id sent at once for three shows is stored once; the other two are its duplicates', async () => {
  const ids = Array.from({ length: 20 }, (_, i) => `msg_cc_${i}`);
  const answers = await Promise.all(
    ids.flatMap((id, i) => ['a', 'b', 'c'].map(async (s) => ({ id, show: `${s}${i}`, res: await sendEvent(svc, 'cc', secret, pin(`${s}${i}`), { webhookId: id }) }))),
  );
  for (const id of ids) {
    const mine = answers.filter((a) => a.id === id);
    const bodies = await Promise.all(mine.map(async (a) => ({ ...a, body: (await a.res.json()) as { eventId: string | null; duplicate: boolean } })));
    const accepted = bodies.filter((b) => b.res.status === 202);
    expect(accepted).toHaveLength(1);
    // The other two: duplicates of the stored one, or — on a Cluster, where the id is claimed before
    // the show write — a 409 while that first delivery's write is still in flight (65791fd: such an
    // answer is no acknowledgement), whose retry then gets the duplicate answer.
    const inFlight = bodies.filter((b) => b.res.status === 409);
    expect(bodies.filter((b) => b.res.status === 200 && b.body.duplicate).length + inFlight.length).toBe(2);
    expect(accepted[0]!.body.eventId).toEqual(expect.any(String));
    for (const b of inFlight) {
      const again = await sendEvent(svc, 'cc', secret, pin(b.show), { webhookId: id });
      expect(again.status).toBe(200);
      expect(((await again.json()) as { eventId: string | null; duplicate: boolean })).toMatchObject({ duplicate: true, eventId: accepted[0]!.body.eventId });
    }
    // A duplicate names the event the id was stored as, or null while that first delivery is not
    // stored yet (answered at the same moment: IngestResult.eventId).
    for (const b of bodies) if (b.res.status !== 409) expect([accepted[0]!.body.eventId, null]).toContain(b.body.eventId);
    for (const b of bodies) expect(await storedEvents(b.show)).toBe(b === accepted[0] ? 1 : 0);
  }
});

test('concurrent events for many shows are each stored in their own show, each with one dispatch entry', async () => {
  const stream = svc.rt.keys.syncDispatch();
  const before = await svc.rt.redis.xlen(stream);
  const shows = Array.from({ length: 150 }, (_, i) => `m${i}`);
  const res = await Promise.all(shows.map((s) => sendEvent(svc, 'cc', secret, pin(s))));
  expect(res.map((r) => r.status)).toEqual(shows.map(() => 202));
  for (const s of shows) {
    expect(await storedEvents(s)).toBe(1);
    expect(await svc.rt.redis.hget(svc.rt.keys.desired('cc', s), 'pin:p1')).toBe('1');
  }
  const entries = await svc.rt.redis.xrange(stream, '-', '+');
  expect(entries.length - before).toBe(shows.length);
  const named = entries.map(([, f]) => f[f.indexOf('s') + 1]);
  for (const s of shows) expect(named.filter((n) => n === s)).toHaveLength(1);
});
