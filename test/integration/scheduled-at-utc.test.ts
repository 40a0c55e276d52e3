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

/**
 * A scheduledAt whose UTC instant is outside the years 0000-9999 cannot be written in ISO-8601 UTC
 * (four-digit year): it was stored and echoed with its offset (`9999-12-31T23:00:00-02:00`, which is
 * 10000-01-01T01:00:00Z). Refused with a 400 naming the field, nothing stored, as a reconciliation
 * period with such a bound is; the last instants of 9999 and the first of 0000 in UTC are accepted.
 */
test.each([
  ['y10000', '9999-12-31T23:00:00-02:00'],
  ['y10000-late', '9999-12-31T23:59:59.999-00:01'],
  ['y-1', '0000-01-01T00:30:00+01:00'],
])('%s: scheduledAt %s is outside 0000-9999 in UTC → 400 naming data.show.scheduledAt, nothing stored', async (id, sent) => {
  const r = await sendEvent(svc, 'utc', secret, showEvent('show.scheduled', sampleShow(id, { scheduledAt: sent }), '2026-11-24T10:00:00Z'));
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await r.json()) as { errors: { path: string; message: string }[] };
  expect(body.errors.map((e) => e.path)).toEqual(['data.show.scheduledAt']);
  expect(body.errors[0]!.message).toMatch(/0000-9999/);
  expect((await svc.api(`/v1/partners/utc/shows/${id}`)).status).toBe(404);
});

test.each([
  ['y9999-last', '9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
  ['y9999-offset', '9999-12-31T23:00:00+02:00', '9999-12-31T21:00:00Z'],
  ['y0000-first', '0000-01-01T00:00:00Z', '0000-01-01T00:00:00Z'],
])('%s: scheduledAt %s, within 0000-9999 in UTC, is shown as %s', async (id, sent, shown) => {
  expect((await sendEvent(svc, 'utc', secret, showEvent('show.scheduled', sampleShow(id, { scheduledAt: sent }), '2026-11-24T10:00:00Z'))).status).toBe(202);
  const view = (await (await svc.api(`/v1/partners/utc/shows/${id}`)).json()) as { show: { scheduledAt: string } };
  expect(view.show.scheduledAt).toBe(shown);
});
