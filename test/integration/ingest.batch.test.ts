/**
 * On a single Redis the show events waiting at one moment are stored by one Lua call
 * (ShowRepository.ingestOne → INGEST_SHOWS_LUA, batched by TurnBatcher). What each caller is told
 * must not depend on which events shared its call: every distinct webhook-id is stored exactly once,
 * every delivery of it gets the first delivery's event id, a delivery naming another show is a
 * duplicate with the holder's scope, each stored event leaves a dispatch entry, and an event Redis
 * refuses fails alone while the others of its call are stored.
 */
import fc from 'fast-check';
import { orderKey } from '../../src/domain/desired-state.js';
import { showScope } from '../../src/store/webhook-id.repository.js';
import { startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  // No dispatcher in this process: the dispatch entries stay in the stream to be counted.
  svc = await startService({ dispatch: false });
});
afterAll(async () => {
  await svc?.close();
});

const single = (): boolean => svc.rt.shows.singleNode;
const OCCURRED = '2026-11-24T18:00:00Z';

function pin(partnerId: string, showId: string, webhookId: string, productId = 'p1') {
  const event = { type: 'product.pinned', occurredAt: OCCURRED, data: { showId, productId } };
  return svc.rt.shows.ingestOne(partnerId, showId, webhookId, showScope(showId), JSON.stringify(event), orderKey(OCCURRED, webhookId), { field: `pin:${productId}`, value: '1' }, undefined, undefined);
}

test('deliveries issued together (one call): each webhook-id stored once, repeats get its event id, another show is a duplicate', async () => {
  if (!single()) return; // the batched call is the single-Redis path; a Cluster stores each event in its own steps
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.record({ id: fc.integer({ min: 0, max: 5 }), show: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 40 }), async (deliveries) => {
      const partnerId = `bp${++run}`;
      const dispatchBefore = await svc.rt.redis.xlen(svc.rt.keys.syncDispatch());
      // all issued in the same event-loop turn: they leave in one call (≤ 64 per call)
      const results = await Promise.all(deliveries.map((d) => pin(partnerId, `s${d.show}`, `msg_${d.id}`)));
      const firstShow = new Map<number, number>();
      for (const d of deliveries) if (!firstShow.has(d.id)) firstShow.set(d.id, d.show);
      const eventIds = new Map<number, string>();
      deliveries.forEach((d, i) => {
        const r = results[i]!;
        const owner = firstShow.get(d.id)!;
        const isFirst = deliveries.findIndex((x) => x.id === d.id) === i;
        if (isFirst) {
          expect(r.duplicate).toBe(false);
          expect(r.eventId).toMatch(/^\d+-\d+$/);
          eventIds.set(d.id, r.eventId);
        } else if (d.show === owner) {
          expect(r).toEqual({ duplicate: true, eventId: eventIds.get(d.id), version: 0, changed: false });
        } else {
          expect(r).toMatchObject({ duplicate: true, holder: showScope(`s${owner}`) });
        }
      });
      // one stored event per distinct webhook-id, in its owner show's log
      for (const show of [0, 1, 2]) {
        const ids = [...firstShow].filter(([, s]) => s === show).map(([id]) => eventIds.get(id));
        const log = await svc.rt.redis.xrange(svc.rt.keys.showEvents(partnerId, `s${show}`), '-', '+');
        expect(log.map(([id]) => id).sort()).toEqual(ids.sort());
      }
      // a dispatch entry per delivery of an owner show (stored or stored duplicate), none for another show's id
      const written = deliveries.filter((d) => d.show === firstShow.get(d.id)).length;
      expect((await svc.rt.redis.xlen(svc.rt.keys.syncDispatch())) - dispatchBefore).toBe(written);
    }),
    { numRuns: 25 },
  );
});

test('an event Redis refuses fails alone; the others of its call are stored', async () => {
  if (!single()) return;
  // the show's event log is a string, not a stream: its XADD fails with WRONGTYPE
  await svc.rt.redis.set(svc.rt.keys.showEvents('bx', 'bad'), 'not a stream');
  const [a, bad, b] = await Promise.allSettled([pin('bx', 'ok1', 'msg_a'), pin('bx', 'bad', 'msg_bad'), pin('bx', 'ok2', 'msg_b')]);
  expect(a).toMatchObject({ status: 'fulfilled', value: { duplicate: false, version: 1, changed: true } });
  expect(b).toMatchObject({ status: 'fulfilled', value: { duplicate: false, version: 1, changed: true } });
  expect(bad.status).toBe('rejected');
  expect(String((bad as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
  expect(await svc.rt.redis.hget(svc.rt.keys.desired('bx', 'ok1'), 'pin:p1')).toBe('1');
  expect(await svc.rt.redis.hget(svc.rt.keys.desired('bx', 'ok2'), 'pin:p1')).toBe('1');
  expect(await svc.rt.redis.exists(svc.rt.keys.desired('bx', 'bad'))).toBe(0);
});
