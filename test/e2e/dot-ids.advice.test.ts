/**
 * Ids `.` and `..` are valid (`[A-Za-z0-9_.:-]{1,128}`) but cannot be a path segment as they are: URL
 * normalisation (curl, fetch, browsers) removes such a segment, so they are written with each dot as
 * `%252E` (README "Edges of the API"). The paths the service itself tells an operator to call — the
 * `action_required` mirror's link advice in `lastError`, the readiness checks' actions, the credentials
 * PATCH — wrote the ids as they are: followed with fetch, the advice for show `..` of partner `.` went
 * to another path (a 404). Found by an attack round against `npm start` (h-edge, 2026-12-07).
 */
import { sampleShow, sendEvent, showEvent, startService, waitFor, createPartner, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';

let svc: TestService;
let sim: TestSim;

beforeAll(async () => {
  sim = await startSim();
  svc = await startService({ workers: true });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

interface View {
  mirrors: { targetId: string; state: string; lastError: string | null }[];
  readiness?: unknown;
}

test("the link advice of show '..' of partner '.' on target '..' is a path that, followed with fetch, links the mirror", async () => {
  const secret = await createPartner(svc, '.');
  const t = await svc.api('/v1/partners/%252E/targets', { json: { id: '..', platform: 'whatnot', name: 'Whatnot', credentials: CREDENTIALS.whatnot, baseUrl: sim.base('whatnot'), commissionRateBps: 100 } });
  expect(t.status).toBe(201);
  expect((await sendEvent(svc, '%252E', secret, showEvent('show.scheduled', sampleShow('..'), '2026-11-24T17:00:00Z'))).status).toBe(202);
  const viewPath = '/v1/partners/%252E/shows/%252E%252E';
  const mirror = await waitFor(async () => {
    const r = await svc.api(viewPath);
    return r.status === 200 ? ((await r.json()) as View).mirrors.find((m) => m.state === 'action_required') : undefined;
  }, 20_000);
  const advised = /PUT (\/v1\/\S+)/.exec(mirror.lastError ?? '')?.[1];
  expect(advised).toBe('/v1/partners/%252E/shows/%252E%252E/mirrors/%252E%252E');

  // The readiness checks' actions (the scheduler's pre-show checks, run here at once) name the ids the same way.
  const desired = (await svc.rt.shows.desired('.', '..'))!;
  const target = (await svc.rt.partners.getTarget('.', '..'))!;
  const [m] = await svc.rt.shows.getMirrors('.', '..', [target]);
  const checks = JSON.stringify(await svc.rt.readiness.check(desired, target, m ?? null));
  const paths = [...checks.matchAll(/(?:PUT|POST|PATCH) (\/v1\/[^\s"]+)/g)].map((x) => x[1]);
  expect(paths.length).toBeGreaterThan(0);
  for (const p of paths) expect(p).toMatch(/^\/v1\/partners\/%252E\/(shows\/%252E%252E\/mirrors|targets)\/%252E%252E(\/|$)/);

  const hand = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'by hand' })) as { externalId: string };
  const r = await svc.api(advised!, { method: 'PUT', json: { externalId: hand.externalId } });
  expect(r.status).toBe(200);
  expect(((await r.json()) as { externalId: string }).externalId).toBe(hand.externalId);
});
