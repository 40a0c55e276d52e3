/**
 * What a new operator tripped over in the API (issue 11 item 7): `GET …/shows?state=` counts only the
 * shows in that state, event answers carry both ids (ours and the partner's webhook-id), a partner
 * can be updated (reconcileCron, window, lookback) and its reconciliations listed. Real redis-server,
 * real HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'op');
  await createPartner(svc, 'other');
});
afterAll(async () => {
  await svc.close();
});

test('GET …/shows?state= returns a total of the shows in that state, and pages through them', async () => {
  for (let i = 0; i < 7; i++) {
    const show = sampleShow(`s${i}`, { scheduledAt: `2026-11-2${i}T18:00:00Z` });
    expect((await sendEvent(svc, 'op', secret, showEvent('show.scheduled', show, '2026-11-20T10:00:00Z'))).status).toBe(202);
    if (i % 3 === 0) expect((await sendEvent(svc, 'op', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-20T11:00:00Z'))).status).toBe(202);
  }
  const all = (await (await svc.api('/v1/partners/op/shows')).json()) as { total: number; shows: unknown[] };
  expect(all.total).toBe(7);
  const live = (await (await svc.api('/v1/partners/op/shows?state=live')).json()) as { total: number; shows: { id: string; state: string }[]; nextCursor: number | null };
  expect(live.total).toBe(3);
  expect(live.shows.map((s) => s.id).sort()).toEqual(['s0', 's3', 's6']);
  expect(live.nextCursor).toBeNull();
  const scheduled = (await (await svc.api('/v1/partners/op/shows?state=scheduled&limit=3')).json()) as { total: number; shows: { id: string }[]; nextCursor: string | null };
  expect(scheduled).toMatchObject({ total: 4, nextCursor: expect.any(String) });
  const rest = (await (await svc.api(`/v1/partners/op/shows?state=scheduled&limit=3&cursor=${scheduled.nextCursor}`)).json()) as { total: number; shows: { id: string }[]; nextCursor: string | null };
  expect(rest).toMatchObject({ total: 4, nextCursor: null });
  expect([...scheduled.shows, ...rest.shows].map((s) => s.id).sort()).toEqual(['s1', 's2', 's4', 's5']);
  expect(((await (await svc.api('/v1/partners/op/shows?state=ended')).json()) as { total: number }).total).toBe(0);
  // Unfiltered paging still covers every show once.
  const p1 = (await (await svc.api('/v1/partners/op/shows?limit=4')).json()) as { shows: { id: string }[]; nextCursor: string };
  const p2 = (await (await svc.api(`/v1/partners/op/shows?limit=4&cursor=${p1.nextCursor}`)).json()) as { shows: { id: string }[]; nextCursor: string | null };
  expect(p2.nextCursor).toBeNull();
  expect(new Set([...p1.shows, ...p2.shows].map((s) => s.id)).size).toBe(7);
});

test("an event's answer has our eventId and the partner's webhookId", async () => {
  const r = await sendEvent(svc, 'op', secret, showEvent('show.updated', sampleShow('s1', { title: 'x' }), '2026-11-20T12:00:00Z'), { webhookId: 'partner-msg-123' });
  expect(r.status).toBe(202);
  const body = (await r.json()) as { eventId: string; webhookId: string; duplicate: boolean };
  expect(body.webhookId).toBe('partner-msg-123');
  expect(body.eventId).not.toBe('partner-msg-123');
  expect(body.eventId).toMatch(/^\d+-\d+$/); // the id of the stored event in the show's event log
  const again = (await (await sendEvent(svc, 'op', secret, showEvent('show.updated', sampleShow('s1', { title: 'x' }), '2026-11-20T12:00:00Z'), { webhookId: 'partner-msg-123' })).json()) as typeof body;
  expect(again).toEqual({ ...body, duplicate: true });
});

test('PATCH /v1/partners/{p} changes the reconcile schedule, window and lookback; invalid values are 400; unknown partner 404', async () => {
  const r = await svc.api('/v1/partners/op', { method: 'PATCH', json: { reconcileCron: '30 2 * * *', attributionWindowHours: 48, reconcileLookbackDays: 7 } });
  expect(r.status).toBe(200);
  expect(await r.json()).toMatchObject({ id: 'op', reconcileCron: '30 2 * * *', attributionWindowHours: 48, reconcileLookbackDays: 7 });
  expect(await svc.rt.partners.get('op')).toMatchObject({ reconcileCron: '30 2 * * *', attributionWindowHours: 48, reconcileLookbackDays: 7, name: 'Partner op' });
  for (const bad of [{ reconcileCron: 'every night' }, { attributionWindowHours: 0 }, {}, { id: 'renamed' }, { webhookSecret: 'x' }]) {
    const res = await svc.api('/v1/partners/op', { method: 'PATCH', json: bad });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  }
  expect((await svc.api('/v1/partners/nobody', { method: 'PATCH', json: { name: 'x' } })).status).toBe(404);
  expect((await svc.rt.partners.get('op'))!.id).toBe('op');
});

test("reconciliations are listed per partner, newest first, paged; another partner's key cannot list them", async () => {
  const ids: string[] = [];
  for (let d = 1; d <= 3; d++) {
    const r = await svc.api('/v1/partners/op/reconciliations', { json: { from: `2026-11-0${d}T00:00:00Z`, to: `2026-11-0${d + 1}T00:00:00Z` } });
    expect(r.status).toBe(202);
    ids.push(((await r.json()) as { id: string }).id);
  }
  const list = (await (await svc.api('/v1/partners/op/reconciliations')).json()) as { reconciliations: { id: string; from: string; status: string }[]; total: number; nextCursor: string | null };
  expect(list.total).toBe(3);
  expect(list.reconciliations.map((r) => r.id)).toEqual([...ids].reverse());
  expect(list.reconciliations[0]).toMatchObject({ from: '2026-11-03T00:00:00.000Z', status: expect.stringMatching(/queued|running|completed/) });
  const page = (await (await svc.api('/v1/partners/op/reconciliations?limit=2')).json()) as typeof list;
  expect(page).toMatchObject({ total: 3, nextCursor: expect.any(String) });
  const last = (await (await svc.api(`/v1/partners/op/reconciliations?limit=2&cursor=${page.nextCursor}`)).json()) as typeof list;
  expect(last).toMatchObject({ total: 3, nextCursor: null });
  expect([...page.reconciliations, ...last.reconciliations].map((r) => r.id)).toEqual([...ids].reverse());
  expect(((await (await svc.api('/v1/partners/other/reconciliations')).json()) as typeof list).total).toBe(0);
  const k = (await (await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId: 'other' } })).json()) as { key: string };
  expect((await svc.api('/v1/partners/op/reconciliations', { key: k.key })).status).toBe(403);
  expect((await svc.api('/v1/partners/nobody/reconciliations')).status).toBe(404);
});

test('OpenAPI: every operation has a unique operationId; public routes declare security: []', async () => {
  const doc = (await (await fetch(`${svc.url}/docs/json`)).json()) as { paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>> };
  const ids: string[] = [];
  const open: string[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      expect(op.operationId).toBeTruthy();
      ids.push(op.operationId!); // GET /l/{code} also answers HEAD: `headLByCode`
      if (Array.isArray(op.security) && op.security.length === 0) open.push(`${method} ${path}`);
    }
  }
  expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  // The ops console's page, its static files and its sign-in/sign-out are public too (the key is in the body);
  // so are the Prometheus scrape and nginx-rtmp's callbacks (the stream key is the credential).
  expect(open.sort()).toEqual(
    [
      'get /health/live',
      'get /health/ready',
      'get /metrics',
      'get /l/{code}',
      'head /l/{code}',
      'post /v1/partners/{partnerId}/events',
      'post /v1/platform-webhooks/{targetId}',
      'post /v1/relay/edge/on-publish',
      'post /v1/relay/edge/on-publish-done',
      'get /ops',
      'get /ops/{file}',
      'post /v1/ops/session',
      'delete /v1/ops/session',
    ].sort(),
  );
  expect(JSON.stringify(doc)).not.toContain('CONTRACT');
});

test('a reconciliation period that leaves the years 0000-9999 once in UTC → 400 naming the bound (it was queued and answered "+010000-…", and Whatnot refused it); one within them is queued', async () => {
  await createPartner(svc, 'rng');
  const ask = (from: string, to: string): Promise<Response> => svc.api('/v1/partners/rng/reconciliations', { json: { from, to } });
  const late = await ask('9999-12-30T00:00:00Z', '9999-12-31T23:59:59-23:59');
  expect(late.status).toBe(400);
  expect(((await late.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(['body.to']);
  const early = await ask('0000-01-01T00:00:00+01:00', '0000-01-02T00:00:00Z');
  expect(early.status).toBe(400);
  expect(((await early.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual(['body.from']);
  expect(((await (await svc.api('/v1/partners/rng/reconciliations')).json()) as { total: number }).total).toBe(0);
  const edge = await ask('9999-12-30T00:00:00Z', '9999-12-31T23:59:59Z');
  expect(edge.status).toBe(202);
  const id = ((await edge.json()) as { id: string }).id;
  expect(await (await svc.api(`/v1/reconciliations/${id}`)).json()).toMatchObject({ from: '9999-12-30T00:00:00.000Z', to: '9999-12-31T23:59:59.000Z' });
});

test('a reconciliation period must be non-empty and at most 92 days: from = to, from after to, and 92 days + 1 ms → 400 naming the field, nothing queued; exactly 92 days is queued', async () => {
  await createPartner(svc, 'per');
  const ask = (from: string, to: string): Promise<Response> => svc.api('/v1/partners/per/reconciliations', { json: { from, to } });
  const refused = async (r: Response): Promise<string[]> => {
    expect(r.status).toBe(400);
    return ((await r.json()) as { errors: { path: string }[] }).errors.map((e) => e.path);
  };
  expect(await refused(await ask('2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z'))).toEqual(['body.to']);
  // The same instant written with an offset is no period either.
  expect(await refused(await ask('2026-11-01T01:00:00+01:00', '2026-11-01T00:00:00Z'))).toEqual(['body.to']);
  expect(await refused(await ask('2026-11-02T00:00:00Z', '2026-11-01T00:00:00Z'))).toEqual(['body.to']);
  expect(await refused(await ask('2026-08-01T00:00:00Z', '2026-11-01T00:00:00.001Z'))).toEqual(['body.from']);
  expect(((await (await svc.api('/v1/partners/per/reconciliations')).json()) as { total: number }).total).toBe(0);
  // 2026-08-01 → 2026-11-01 is 31 + 30 + 31 = 92 days: the longest period taken.
  const longest = await ask('2026-08-01T00:00:00Z', '2026-11-01T00:00:00Z');
  expect(longest.status).toBe(202);
  const shortest = await ask('2026-11-01T00:00:00.000Z', '2026-11-01T00:00:00.001Z');
  expect(shortest.status).toBe(202);
  expect(((await (await svc.api('/v1/partners/per/reconciliations')).json()) as { total: number }).total).toBe(2);
});
