/**
 * "Later occurredAt wins per show and per pin" (contract §3) below the millisecond: occurredAt is
 * ISO-8601 and partners' clocks often say microseconds or nanoseconds (Python's isoformat, Java's
 * Instant, Go's RFC3339Nano). The register order key kept milliseconds only, so two events of one show
 * in the same millisecond were ordered by their webhook ids instead: a show.ended 800 µs after its
 * show.live left the show live whenever the live event's webhook id sorted last. Through the API and
 * the ingest's Lua on a real redis-server, in both arrival orders.
 */
import { sampleShow, sendEvent, showEvent, servicePerFile, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const PARTNER = 'subms';

servicePerFile(PARTNER, (started) => ({ svc, secret } = started));

async function accepted(event: unknown, webhookId: string): Promise<void> {
  const r = await sendEvent(svc, PARTNER, secret, event, { webhookId });
  expect(r.status).toBe(202);
}

async function view(showId: string): Promise<{ state: string; pinned: string[] }> {
  const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}`);
  expect(r.status).toBe(200);
  const show = ((await r.json()) as { show: { state: string; pinnedProductIds: string[] } }).show;
  return { state: show.state, pinned: show.pinnedProductIds };
}

test.each([
  ['live first', false],
  ['ended first', true],
])('a show.ended 800 µs after show.live ends the show whatever the webhook ids (%s)', async (_name, endedFirst) => {
  const showId = `subms-${endedFirst ? 'e' : 'l'}`;
  const live = (): Promise<void> => accepted(showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00.123100Z'), `z-live-${showId}`);
  const ended = (): Promise<void> => accepted(showEvent('show.ended', sampleShow(showId, { state: 'ended' }), '2026-11-24T18:00:00.123900Z'), `a-ended-${showId}`);
  if (endedFirst) await ended().then(live);
  else await live().then(ended);
  expect((await view(showId)).state).toBe('ended');
});

test('an unpin 1 µs after its pin, in the same millisecond, leaves the product unpinned', async () => {
  const showId = 'subms-pin';
  await accepted(showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'), 'subms-pin-live');
  await accepted({ type: 'product.unpinned', occurredAt: '2026-11-24T18:01:00.000002Z', data: { showId, productId: 'p1' } }, 'a-unpin');
  await accepted({ type: 'product.pinned', occurredAt: '2026-11-24T18:01:00.000001Z', data: { showId, productId: 'p1' } }, 'z-pin');
  expect((await view(showId)).pinned).toEqual([]);
});
