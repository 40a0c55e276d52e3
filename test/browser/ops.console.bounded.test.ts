/**
 * The console with more shows than fit on a screen, and with addresses it cannot read. Real service,
 * real redis-server, Debian's chromium (playwright-core).
 * - A busy day (more than 300 of a partner's shows within a day of now): the board held the window's
 *   first 300, yesterday's, and none of the hours ahead; it now holds the 300 nearest to now and says
 *   how many it left off.
 * - Thousands of rows: every board event redrew every row (2,700 rows: the tab answered after up to
 *   2.3 s, 2026-12-05); at most 500 are drawn, the caption says so and search reaches the others.
 * - `#/show/%E0/x` (a cut link): decodeURIComponent threw, uncaught, and the board stayed under the
 *   show's address; now the page says the address names no show.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

const HOUR = 3_600_000;
const iso = (ms: number): string => new Date(ms).toISOString();

let svc: TestService;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const outside: string[] = [];
const pageErrors: string[] = [];

/** `n` shows of a new partner, the k-th scheduled at `at(k)`, sent 20 at a time. */
async function seed(partnerId: string, n: number, at: (k: number) => number, state = 'scheduled'): Promise<string> {
  const secret = await createPartner(svc, partnerId, { name: `Partner ${partnerId}` });
  const type = state === 'ended' ? 'show.ended' : 'show.scheduled';
  for (let i = 0; i < n; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, n - i) }, async (_, j) => {
        const k = i + j;
        const r = await sendEvent(svc, partnerId, secret, showEvent(type, sampleShow(`${partnerId}-${k}`, { title: `${partnerId} show ${k}`, scheduledAt: iso(at(k)), state, products: [] }), iso(Date.now() - 60_000)));
        expect(r.status).toBe(202);
      }),
    );
  }
  return secret;
}

browserPerFile(async (started) => {
  ({ svc, browser } = started);
  const now = Date.now();
  // 320 shows of `crowd` earlier today, all over, then one in ten minutes: 321 in the window.
  const crowdSecret = await seed('crowd', 320, (k) => now - 23 * HOUR + k * 60_000, 'ended');
  expect((await sendEvent(svc, 'crowd', crowdSecret, showEvent('show.scheduled', sampleShow('crowd-soon', { title: 'Starts in ten minutes', scheduledAt: iso(now + 10 * 60_000) }), iso(now - 60_000)))).status).toBe(202);
  // And 300 more of another partner: 600 rows on the board.
  await seed('wide', 300, (k) => now + HOUR + k * 60_000);
  context = await guardedContext(browser, outside);
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#board').waitFor();
}, {}, 120_000);

afterEach(() => {
  expect(outside).toEqual([]);
  expect(pageErrors).toEqual([]);
});

test("a busy day: the show starting in ten minutes is on the board, and the board says how many of the day's shows it left off", async () => {
  await page.locator('#f-q').fill('crowd-soon');
  await page.locator('#board tr[data-show="crowd-soon"]').waitFor();
  // 321 in the window, 300 on the board.
  await expect(page.locator('[data-role="left-off"]').textContent()).resolves.toMatch(/^21 more show\(s\) scheduled within a day of now are not on the board/);
  await page.locator('#f-q').fill('');
});

test('600 rows: 500 are drawn, the caption says so, and search reaches the others', async () => {
  await page.locator('#board tbody tr').first().waitFor();
  expect(await page.locator('#board tbody tr').count()).toBe(500);
  await expect(page.locator('#board caption').textContent()).resolves.toMatch(/^600 show\(s\), the first 500 shown: search or filter for the others/);
  // The rows after the first 500 (the scheduled ones come first, then the ended ones by time: crowd's
  // latest) are reached by search.
  expect(await page.locator('#board tr[data-show="crowd-319"]').count()).toBe(0);
  await page.locator('#f-q').fill('crowd show 319');
  await page.locator('#board tr[data-show="crowd-319"]').waitFor();
  expect(await page.locator('#board tbody tr').count()).toBe(1);
  await page.locator('#f-q').fill('');
});

test('an address with a broken escape (a cut link) says it names no show, and the board link still works', async () => {
  await page.evaluate("location.hash = '#/show/%E0%A4%A/x'");
  await page.getByText('This address names no show').waitFor();
  await page.getByRole('link', { name: '← Board' }).click();
  await page.locator('#board').waitFor();
});
