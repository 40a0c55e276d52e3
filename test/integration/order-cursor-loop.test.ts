/**
 * A paged order report whose cursors loop (A → B → A): Whatnot's `next_cursor` and TikTok Shop's
 * `next_page_token` were compared with the cursor just asked for only, so a loop of two pages or more
 * went on for MAX_PAGES (1,000) page requests before the report failed `too_many_pages`. The cursors
 * handed out are kept (CursorTrail) and the report fails the same way at the first repeat. A cursor
 * pointing at its own page still ends the report. Real HTTP on loopback (a platform answering so).
 *
 * Bambuser's report pages its show list (`cursor`) before it reads each show's orders: that listing
 * stopped silently after MAX_REPORT_PAGES (50) pages, a loop included, and the run completed without
 * the shows past them (attack on npm start, 2026-12-07). It now fails too_many_pages as the others do,
 * after their 1,000 pages (at 50 an org of more than 5,000 shows failed every report).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIM_ACCOUNTS, simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import type { TargetAdapter } from '../../src/targets/target.adapter.js';
import { createBambuserAdapter } from '../../src/targets/bambuser/bambuser.adapter.js';
import { buildTiktokAdapter } from '../../src/targets/tiktok/tiktok.adapter.js';
import { buildWhatnotAdapter } from '../../src/targets/whatnot/whatnot.adapter.js';
import { caught } from '../helpers/adapter-context.js';
import { adapterHarness } from '../helpers/adapter-harness.js';

let server: Server;
let url = '';
/** The cursor each page names, by the cursor it was asked for ('' for the first); how many pages were asked for. */
let cursors: Record<string, string | null> = {};
let pages = 0;
/** Every page names a new cursor (a list that never ends). */
let endless = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    pages += 1;
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const next = cursors[q.get('cursor') ?? q.get('page_token') ?? ''] ?? null;
    res.setHeader('content-type', 'application/json');
    if (req.url?.startsWith('/orders')) res.end(JSON.stringify({ data: [], next_cursor: next }));
    else if (req.url?.startsWith('/v1/shows')) res.end(JSON.stringify({ results: [], cursor: endless ? `C${pages}` : next }));
    else res.end(JSON.stringify({ code: 0, message: 'Success', request_id: 'r1', data: { orders: [], ...(next ? { next_page_token: next } : {}) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

const adapters: [string, () => TargetAdapter][] = [
  ['Whatnot', () => adapterHarness((ctx) => buildWhatnotAdapter(ctx), { platform: 'whatnot', baseUrl: url, credentials: { accessToken: SIM_ACCOUNTS.whatnot[0]!.accessToken } }).adapter],
  ['TikTok Shop', () => adapterHarness((ctx) => buildTiktokAdapter(ctx), { platform: 'tiktok', baseUrl: url, credentials: { ...simTargetCredentials('tiktok', 'a'), accessToken: 'at-1' } }).adapter],
  ['Bambuser', () => bambuser()],
];
const bambuser = (): TargetAdapter => adapterHarness(createBambuserAdapter, { platform: 'bambuser', baseUrl: url, credentials: simTargetCredentials('bambuser') }).adapter;
beforeEach(() => {
  endless = false;
});

const report = (a: TargetAdapter): Promise<unknown> => a.listOrders!(new Date(Date.now() - 3600_000), new Date());

test.each(adapters)('%s: a cursor handed out again (A → B → A) fails the report too_many_pages at the repeat, after 3 pages', async (_name, adapter) => {
  cursors = { '': 'A', A: 'B', B: 'A' };
  pages = 0;
  const err = await caught(report(adapter()));
  expect([err?.constructor.name, (err as { reason?: string }).reason]).toEqual(['PermanentError', 'too_many_pages']);
  expect(pages).toBe(3);
});

test.each(adapters)('%s: a cursor pointing at its own page ends the report, as no cursor does', async (_name, adapter) => {
  cursors = { '': 'A', A: 'B', B: 'B' };
  pages = 0;
  await expect(report(adapter())).resolves.toEqual([]);
  expect(pages).toBe(3);
  cursors = {};
  pages = 0;
  await expect(report(adapter())).resolves.toEqual([]);
  expect(pages).toBe(1);
});

test('Bambuser: a show list that has not ended after 1,000 pages fails the report too_many_pages, instead of a report of the shows read so far', async () => {
  endless = true;
  pages = 0;
  const err = await caught(report(bambuser()));
  expect([err?.constructor.name, (err as { reason?: string }).reason, (err as Error).message]).toEqual(['PermanentError', 'too_many_pages', 'Bambuser show list did not end after 1000 pages']);
  expect(pages).toBe(1000);
});

test('Bambuser: a show list of 51 pages (an org of more than 5,000 shows) is read to its end (it failed too_many_pages after 50)', async () => {
  cursors = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [i === 0 ? '' : `P${i}`, `P${i + 1}`]));
  pages = 0;
  await expect(report(bambuser())).resolves.toEqual([]);
  expect(pages).toBe(51);
});
