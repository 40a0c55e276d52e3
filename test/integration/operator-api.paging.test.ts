/**
 * A partner's lists and the operator's API around them: paging the shows and reconciliations from a
 * stable cursor, the shows' state filter and totals, an event's ids, a partner's PATCH, the
 * reconciliation periods, the OpenAPI document. Once two files (list-paging, operator-api), each of
 * which started its own redis-server and service (CI time: docs/testing.md). One service for both, on
 * startService's defaults; each former file is a `describe` of its own, with its own partners (pg, pf,
 * rc; op, other, rng, per), none of which has targets. Real redis-server, real HTTP.
 */
import { randomInt } from 'node:crypto';
import { zrevPage, type PageStart } from '../../src/store/zset-page.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('list-paging', () => {
  /**
   * The shows and reconciliations lists page from a stable cursor (the last item's score and id,
   * src/store/zset-page.ts), not a position: a show scheduled or rescheduled, or a run requested, while
   * a client pages neither repeats nor skips anything (a position shifted under the client: the last
   * show of a page came again on the next, or the first show of the next page was never given). Real
   * redis-server, real HTTP.
   */
  let secret: string;
  let secretF: string;
  let occurred = 0;

  beforeAll(async () => {
    secret = await createPartner(svc, 'pg');
    secretF = await createPartner(svc, 'pf');
    await createPartner(svc, 'rc');
  });

  type ShowPage = { shows: { id: string; state: string }[]; nextCursor: string | null; total: number };

  /** A show event with an `occurredAt` later than every earlier one (so each wins). */
  async function send(partnerId: string, partnerSecret: string, type: string, show: Record<string, unknown>): Promise<void> {
    occurred += 1;
    const at = new Date(Date.parse('2026-11-20T10:00:00Z') + occurred * 1000).toISOString();
    expect((await sendEvent(svc, partnerId, partnerSecret, showEvent(type, show, at))).status).toBe(202);
  }

  async function page(path: string): Promise<ShowPage> {
    const r = await svc.api(path);
    expect(r.status).toBe(200);
    return (await r.json()) as ShowPage;
  }

  const day = (d: number, hour = 18) => new Date(Date.UTC(2026, 10, 1) + (d - 1) * 86_400_000 + hour * 3_600_000).toISOString();

  test('paging the shows while shows are scheduled and rescheduled repeats and skips none of the others', async () => {
    // 12 shows, two a day (ties on scheduledAt, so pages end inside a tie).
    const originals: string[] = [];
    for (let i = 1; i <= 12; i++) {
      originals.push(`a${String(i).padStart(2, '0')}`);
      await send('pg', secret, 'show.scheduled', sampleShow(originals[i - 1]!, { scheduledAt: day(Math.ceil(i / 2)) }));
    }
    const seen: string[] = [];
    const moved = new Set<string>();
    let p = await page('/v1/partners/pg/shows?limit=3');
    expect(p.total).toBe(12);
    for (let n = 1; ; n++) {
      // a repeat fails at once (paging on from it could go round a tie for good: a hang, not a failure)
      expect(p.shows.map((s) => s.id).filter((id) => seen.includes(id) && !moved.has(id))).toEqual([]);
      seen.push(...p.shows.map((s) => s.id));
      if (p.nextCursor === null) break;
      if (n === 1) await send('pg', secret, 'show.scheduled', sampleShow('new-late', { scheduledAt: day(28) })); // newer than every show
      if (n === 2) {
        // the first show given (the newest) rescheduled before every other: it moves behind the cursor
        moved.add(seen[0]!);
        await send('pg', secret, 'show.updated', sampleShow(seen[0]!, { scheduledAt: day(0, 1) }));
      }
      if (n === 3) await send('pg', secret, 'show.scheduled', sampleShow('zz-tie', { scheduledAt: day(Math.ceil(Number(seen.at(-1)!.slice(1)) / 2)) })); // a tie of the last show given, sorting before it
      p = await page(`/v1/partners/pg/shows?limit=3&cursor=${encodeURIComponent(p.nextCursor)}`);
    }
    const once = seen.filter((id) => !moved.has(id));
    expect(once.filter((id, i) => once.indexOf(id) !== i)).toEqual([]); // nothing repeated (but the show that moved)
    for (const id of originals) expect(seen).toContain(id); // nothing skipped
    expect(seen).not.toContain('new-late'); // scheduled after the first page read, newer than it
    expect(seen).not.toContain('zz-tie');
    expect(seen.filter((id) => moved.has(id))).toHaveLength(2); // given before it moved and where it moved to
  });

  test('the filtered list (?state=) pages the same way', async () => {
    const originals: string[] = [];
    for (let i = 1; i <= 8; i++) {
      originals.push(`f${i}`);
      await send('pf', secretF, 'show.scheduled', sampleShow(`f${i}`, { scheduledAt: day(i) }));
      await send('pf', secretF, 'show.scheduled', sampleShow(`g${i}`, { scheduledAt: day(i, 12) }));
      await send('pf', secretF, 'show.live', sampleShow(`g${i}`, { scheduledAt: day(i, 12), state: 'live' }));
    }
    const seen: string[] = [];
    let p = await page('/v1/partners/pf/shows?state=scheduled&limit=3');
    expect(p.total).toBe(8);
    for (let n = 1; ; n++) {
      expect(p.shows.every((s) => s.state === 'scheduled')).toBe(true);
      seen.push(...p.shows.map((s) => s.id));
      if (p.nextCursor === null) break;
      if (n === 1) await send('pf', secretF, 'show.scheduled', sampleShow('f-new', { scheduledAt: day(20) }));
      p = await page(`/v1/partners/pf/shows?state=scheduled&limit=3&cursor=${encodeURIComponent(p.nextCursor)}`);
    }
    expect(seen).toEqual(['f8', 'f7', 'f6', 'f5', 'f4', 'f3', 'f2', 'f1']);
  });

  test('a cursor this list never gave is a 400; an old numeric cursor is still a position', async () => {
    for (const bad of ['abc', 'not a cursor!', Buffer.from('[1]').toString('base64url'), Buffer.from('["x","s"]').toString('base64url'), '-1']) {
      const r = await svc.api(`/v1/partners/pg/shows?cursor=${encodeURIComponent(bad)}`);
      expect([bad, r.status]).toEqual([bad, 400]);
      expect(r.headers.get('content-type')).toMatch(/problem\+json/);
      expect(((await r.json()) as { errors: { path: string }[] }).errors).toEqual([expect.objectContaining({ path: 'querystring.cursor' })]);
      expect((await svc.api(`/v1/partners/rc/reconciliations?cursor=${encodeURIComponent(bad)}`)).status).toBe(400);
    }
    const all = await page('/v1/partners/pg/shows?limit=200');
    const rest = await page('/v1/partners/pg/shows?limit=200&cursor=2');
    expect(rest.shows.map((s) => s.id)).toEqual(all.shows.slice(2).map((s) => s.id));
    expect((await page('/v1/partners/pg/shows?cursor=0')).shows.map((s) => s.id)).toEqual(all.shows.slice(0, 50).map((s) => s.id));
  });

  test('paging the reconciliations while runs are requested repeats none', async () => {
    const request = async (d: number) => {
      const r = await svc.api('/v1/partners/rc/reconciliations', { json: { from: day(d, 0), to: day(d + 1, 0) } });
      expect(r.status).toBe(202);
      return ((await r.json()) as { id: string }).id;
    };
    const ids: string[] = [];
    for (let d = 1; d <= 5; d++) ids.push(await request(d));
    type ReconPage = { reconciliations: { id: string }[]; nextCursor: string | null; total: number };
    const seen: string[] = [];
    let r = (await (await svc.api('/v1/partners/rc/reconciliations?limit=2')).json()) as ReconPage;
    for (;;) {
      // a repeat fails at once: paging on from it could go round the same page for good (a hang, not a failure)
      expect(r.reconciliations.map((x) => x.id).filter((id) => seen.includes(id))).toEqual([]);
      seen.push(...r.reconciliations.map((x) => x.id));
      if (r.nextCursor === null) break;
      await request(10 + seen.length); // a run requested between two pages: newest, before the cursor
      r = (await (await svc.api(`/v1/partners/rc/reconciliations?limit=2&cursor=${encodeURIComponent(r.nextCursor)}`)).json()) as ReconPage;
    }
    expect(seen).toEqual([...ids].reverse());
  });

  test('zrevPage: members added, removed and tied while paging; every member present throughout is given once, in order', async () => {
    const redis = svc.redis.client();
    try {
      for (let round = 0; round < 20; round++) {
        const key = `{zp}:set${round}`;
        // few distinct scores: long ties, members of different lengths (byte order, not length order)
        // A name is never used twice in a round: a member removed and then added again (at another
        // score, maybe after the cursor) is a new member, rightly given again.
        const used = new Set<string>();
        const member = (): string => {
          for (;;) {
            const m = `m${'x'.repeat(randomInt(3))}${randomInt(1000)}`;
            if (!used.has(m)) {
              used.add(m);
              return m;
            }
          }
        };
        for (let i = 0; i < 60; i++) await redis.zadd(key, randomInt(5), member());
        const present = new Set(await redis.zrange(key, 0, -1));
        const removed = new Set<string>();
        const seen: string[] = [];
        let start: PageStart = undefined;
        for (;;) {
          const p = await zrevPage(redis, key, start, 1 + randomInt(7));
          // a repeat fails at once: a page that goes on from the start of the cursor's tie instead of
          // after its item gives that tie again and again when it is longer than the page (a hang)
          expect([round, p.items.map((i) => i.member).filter((m) => seen.includes(m))]).toEqual([round, []]);
          seen.push(...p.items.map((i) => i.member));
          const last = p.items.at(-1);
          if (!p.more || !last) break;
          start = { after: last };
          for (let i = 0; i < 3; i++) await redis.zadd(key, randomInt(5), member()); // new members only (one re-scored would have moved)
          const gone = await redis.zrandmember(key);
          if (gone && gone !== last.member) {
            await redis.zrem(key, gone);
            removed.add(gone);
          }
        }
        expect(seen.filter((m, i) => seen.indexOf(m) !== i)).toEqual([]);
        for (const m of present) if (!removed.has(m)) expect([round, seen.includes(m)]).toEqual([round, true]);
        // in ZREVRANGE's order: score descending, then member descending by bytes
        const scores = new Map<string, number>();
        for (const m of seen) scores.set(m, Number(await redis.zscore(key, m) ?? NaN));
        const kept = seen.filter((m) => !removed.has(m));
        const sorted = [...kept].sort((a, b) => scores.get(b)! - scores.get(a)! || Buffer.compare(Buffer.from(b), Buffer.from(a)));
        expect(kept).toEqual(sorted);
        await redis.del(key);
      }
    } finally {
      redis.disconnect();
    }
  });
});

describe('operator-api', () => {
  /**
   * What a new operator tripped over in the API (issue 11 item 7): `GET …/shows?state=` counts only the
   * shows in that state, event answers carry both ids (ours and the partner's webhook-id), a partner
   * can be updated (reconcileCron, window, lookback) and its reconciliations listed. Real redis-server,
   * real HTTP.
   */
  let secret: string;

  beforeAll(async () => {
    secret = await createPartner(svc, 'op');
    await createPartner(svc, 'other');
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
});
