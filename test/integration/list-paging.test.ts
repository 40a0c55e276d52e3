/**
 * The shows and reconciliations lists page from a stable cursor (the last item's score and id,
 * src/store/zset-page.ts), not a position: a show scheduled or rescheduled, or a run requested, while
 * a client pages neither repeats nor skips anything (a position shifted under the client: the last
 * show of a page came again on the next, or the first show of the next page was never given). Real
 * redis-server, real HTTP.
 */
import { randomInt } from 'node:crypto';
import { zrevPage, type PageStart } from '../../src/store/zset-page.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
let secretF: string;
let occurred = 0;

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'pg');
  secretF = await createPartner(svc, 'pf');
  await createPartner(svc, 'rc');
});
afterAll(async () => {
  await svc.close();
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
