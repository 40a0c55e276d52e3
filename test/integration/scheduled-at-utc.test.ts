/**
 * Timestamps are ISO-8601 UTC (contract, conventions): a show snapshot's `scheduledAt` sent with an
 * offset (`+02:00`) was stored and echoed as given, in the show view, the show list and the ops board.
 * Now it is the same instant in `Z`; a `Z` time is kept as sent. Real HTTP, real redis-server.
 */
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
serviceForFile(async (started) => {
  svc = started;
  secret = await createPartner(svc, 'utc');
});

const cases: [string, string, string][] = [
  ['plus', '2026-11-24T20:00:00+02:00', '2026-11-24T18:00:00Z'],
  ['minus', '2026-11-24T13:30:00.250-04:30', '2026-11-24T18:00:00.250Z'],
  ['zero', '2026-11-24T18:00:00+00:00', '2026-11-24T18:00:00Z'],
  ['day', '2026-11-25T01:00:00+09:00', '2026-11-24T16:00:00Z'],
  ['zulu', '2026-11-24T18:00:00Z', '2026-11-24T18:00:00Z'],
  ['zulu-ms', '2026-11-24T18:00:00.000Z', '2026-11-24T18:00:00.000Z'],
];

test.each(cases)('%s: scheduledAt %s is shown as %s (show view, show list, ops view)', async (id, sent, shown) => {
  expect((await sendEvent(svc, 'utc', secret, showEvent('show.scheduled', sampleShow(id, { scheduledAt: sent }), '2026-11-24T10:00:00Z'))).status).toBe(202);
  const view = (await (await svc.api(`/v1/partners/utc/shows/${id}`)).json()) as { show: { scheduledAt: string } };
  expect(view.show.scheduledAt).toBe(shown);
  const list = (await (await svc.api('/v1/partners/utc/shows?limit=100')).json()) as { shows: { id: string; scheduledAt: string }[] };
  expect(list.shows.find((s) => s.id === id)?.scheduledAt).toBe(shown);
  const ops = (await (await svc.api(`/v1/ops/partners/utc/shows/${id}`)).json()) as { show: { scheduledAt: string } };
  expect(ops.show.scheduledAt).toBe(shown);
});
