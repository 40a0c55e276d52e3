/**
 * Ids `.` and `..` in paths. They are valid ids (`[A-Za-z0-9_.:-]{1,128}`), but URL normalisation
 * (fetch, browsers, curl) removes such a path segment, in its `%2E` forms too: a request for show `..`
 * of partner `acme` went to `/v1/partners/acme`, and the ops console could not open such a show. Each
 * dot is written `%252E`; a `/v1` path parameter that decodes to `%2E` or `%2E%2E` (never an id: no
 * `%`) is read as `.` or `..`. Real HTTP (fetch), real redis-server.
 */
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

const DOTS = '%252E%252E';
const DOT = '%252E';

async function json(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await svc.api(path);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

test('partner `..` with shows `.` and `..`: events in, partner, show and ops views out, each by its escaped id', async () => {
  const secret = await createPartner(svc, '..', { name: 'Two dots' });
  for (const id of ['.', '..']) {
    expect((await sendEvent(svc, DOTS, secret, showEvent('show.scheduled', sampleShow(id, { title: `Show ${id}` }), '2026-11-24T10:00:00Z'))).status).toBe(202);
  }
  expect(await json(`/v1/partners/${DOTS}`)).toMatchObject({ status: 200, body: { id: '..', name: 'Two dots' } });
  expect(await json(`/v1/partners/${DOTS}/shows/${DOT}`)).toMatchObject({ status: 200, body: { show: { id: '.', title: 'Show .' } } });
  expect(await json(`/v1/partners/${DOTS}/shows/${DOTS}`)).toMatchObject({ status: 200, body: { show: { id: '..', title: 'Show ..' } } });
  expect(await json(`/v1/partners/${DOTS.toLowerCase()}/shows/${DOT.toLowerCase()}`)).toMatchObject({ status: 200, body: { show: { id: '.' } } });
  expect(await json(`/v1/ops/partners/${DOTS}/shows/${DOTS}`)).toMatchObject({ status: 200, body: { show: { id: '..' } } });
});

test('only a whole `.` or `..` is read so: `%2E` inside an id, or three escaped dots, stays what it is (no id has a `%`); `...` needs no escape', async () => {
  await createPartner(svc, '...');
  expect(await json('/v1/partners/...')).toMatchObject({ status: 200, body: { id: '...' } });
  for (const path of ['/v1/partners/a%252Eb', `/v1/partners/${DOTS}%252E`, '/v1/partners/%252E%252E%252E']) {
    const r = await json(path);
    expect([path, r.status]).toEqual([path, 400]);
  }
});
