/**
 * `GET /v1/partners/{p}/shows?state=…` of a partner with many shows. The filter is no index: the list
 * read every show the partner ever had on every request (to count `total`), whatever `limit` and
 * `cursor` said. Against `npm start` with one partner of 10,000 shows, one `?state=live&limit=1` took
 * 3.3 s, and twenty at once from that partner's own key took 30 s and held every other request of the
 * API for seconds (another partner's unfiltered list: 5.6 s). Now a request reads at most
 * SHOW_FILTER_SCAN_MAX shows (20 here) from its cursor on: a page may hold fewer than `limit` shows,
 * even none, `nextCursor` reads on from where it stopped, and `total` is null; paging to the end gives
 * every matching show once, in order. A partner with at most that many shows is listed as before.
 * Real Redis, real HTTP (an app on the service's runtime with a small scan bound).
 */
import { buildApp } from '../../src/api/app.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const SCAN_MAX = 20;

let svc: TestService;
let app: Awaited<ReturnType<typeof buildApp>>;
let base: string;
let occurred = 0;

type ShowPage = { shows: { id: string; state: string }[]; nextCursor: string | null; total: number | null };

/** Show `n` of a partner, scheduled `n` hours after a fixed day: a higher `n` lists first. */
const at = (n: number): string => new Date(Date.parse('2026-10-01T00:00:00Z') + n * 3_600_000).toISOString();

async function send(partnerId: string, secret: string, type: string, show: Record<string, unknown>): Promise<void> {
  occurred += 1;
  const when = new Date(Date.parse('2026-11-20T10:00:00Z') + occurred * 1000).toISOString();
  expect((await sendEvent(svc, partnerId, secret, showEvent(type, show, when))).status).toBe(202);
}

beforeAll(async () => {
  svc = await startService();
  const big = await createPartner(svc, 'big');
  // 60 shows: the 10 oldest ended (positions 50-59 of the list), the 50 newer scheduled.
  for (let n = 0; n < 60; n++) {
    if (n < 10) await send('big', big, 'show.ended', sampleShow(`e${n}`, { scheduledAt: at(n), state: 'ended' }));
    else await send('big', big, 'show.scheduled', sampleShow(`s${n}`, { scheduledAt: at(n) }));
  }
  const small = await createPartner(svc, 'small');
  for (let n = 0; n < 8; n++) await send('small', small, n % 2 ? 'show.ended' : 'show.scheduled', sampleShow(`m${n}`, { scheduledAt: at(n), state: n % 2 ? 'ended' : 'scheduled' }));
  app = await buildApp(svc.rt, { logger: false, dashboard: false, showFilterScanMax: SCAN_MAX });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await svc?.close();
});

async function page(path: string): Promise<ShowPage> {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(r.status).toBe(200);
  return (await r.json()) as ShowPage;
}

/** Every page of `list` from `cursor` on (the cursor of each page to the next); at most 50 pages. */
async function pages(list: string, cursor?: string): Promise<ShowPage[]> {
  const out = [await page(cursor === undefined ? list : `${list}&cursor=${cursor}`)];
  while (out.at(-1)!.nextCursor !== null && out.length < 50) out.push(await page(`${list}&cursor=${encodeURIComponent(out.at(-1)!.nextCursor!)}`));
  return out;
}

const ids = (ps: ShowPage[]): string[] => ps.flatMap((p) => p.shows.map((s) => s.id));

test('a request reads at most the bound: the ended shows past it are not on the first page, paging on gives each once, in order', async () => {
  const first = await page('/v1/partners/big/shows?state=ended&limit=5');
  // The 10 ended shows are the 51st to 60th of the list: a request that reads 20 shows finds none.
  expect(first).toEqual({ shows: [], nextCursor: expect.any(String), total: null });
  const all = await pages('/v1/partners/big/shows?state=ended&limit=5');
  expect(ids(all)).toEqual(['e9', 'e8', 'e7', 'e6', 'e5', 'e4', 'e3', 'e2', 'e1', 'e0']);
  expect(all.every((p) => p.shows.length <= 5 && p.shows.every((s) => s.state === 'ended'))).toBe(true);
  expect(all.length).toBeGreaterThanOrEqual(4); // 20 shows a request at most: 60 shows need 3 requests before the last ended ones
});

test('a page that fills up before the bound goes on right after its last show', async () => {
  const all = await pages('/v1/partners/big/shows?state=scheduled&limit=7');
  expect(ids(all)).toEqual(Array.from({ length: 50 }, (_, i) => `s${59 - i}`));
  expect(all[0]!.shows).toHaveLength(7);
});

test('an old numeric cursor is a position in the whole list: shows may repeat, none is skipped', async () => {
  const all = await pages('/v1/partners/big/shows?state=ended&limit=5', '3');
  expect(ids(all)).toEqual(['e9', 'e8', 'e7', 'e6', 'e5', 'e4', 'e3', 'e2', 'e1', 'e0']);
});

test('a partner with no more shows than the bound is listed whole: exact total, full pages', async () => {
  const first = await page('/v1/partners/small/shows?state=ended&limit=3');
  expect(first.total).toBe(4);
  expect(ids(await pages('/v1/partners/small/shows?state=ended&limit=3'))).toEqual(['m7', 'm5', 'm3', 'm1']);
});
