/**
 * The ops console opens shows whose ids are `.` or `..` (valid ids), of a partner `..`, in Debian's
 * chromium (playwright-core). fetch's URL parser removes a `.` or `..` path segment, `%2E` forms too:
 * the show link's request went to `/v1/ops/partners/` (`..` of `..`), and the page said it could not
 * load the show. The console writes each such dot as `%252E`, which the API reads as `.` (README,
 * Security). Real service, real redis-server.
 */
import type { Browser, Page } from 'playwright-core';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

let svc: TestService;
let browser: Browser;
let page: Page;
const problems: string[] = [];

browserPerFile((started) => ({ svc, browser } = started));

test('shows `.` and `..` of partner `..`: the board links open each show, every request answered', async () => {
  const secret = await createPartner(svc, '..', { name: 'Two dots' });
  const scheduledAt = new Date(Date.now() + 20 * 60_000).toISOString();
  for (const id of ['.', '..']) {
    const r = await sendEvent(svc, '%252E%252E', secret, showEvent('show.scheduled', sampleShow(id, { title: `Dot show ${id}`, scheduledAt }), new Date().toISOString()));
    expect(r.status).toBe(202);
  }
  const context = await guardedContext(browser);
  page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${new URL(r.url()).pathname}`);
  });
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();

  for (const id of ['.', '..']) {
    await page.goto(`${svc.url}/ops#/`);
    // The show's request, wherever it went (the old page's went to /v1/ops/ or /v1/ops/shows/).
    const loaded = page.waitForResponse((r) => {
      const path = new URL(r.url()).pathname;
      return path.startsWith('/v1/') && !['/v1/ops/stream', '/v1/ops/board', '/v1/ops/session'].includes(path);
    });
    await page.getByRole('link', { name: `Dot show ${id}`, exact: true }).click();
    const res = await loaded;
    expect([new URL(res.url()).pathname, res.status()]).toEqual([`/v1/ops/partners/%252E%252E/shows/${id === '.' ? '%252E' : '%252E%252E'}`, 200]);
    await page.getByRole('heading', { name: `Dot show ${id}`, exact: true }).waitFor();
    expect(await page.getByText('Could not load the show').count()).toBe(0);
  }
  await context.close();
  expect(problems).toEqual([]);
});

test("shows `x.y` and `x_y` of one partner: each board tile is described by its own tooltip, not the other show's", async () => {
  // The tooltip's id was made with '_' for '.', ':' and the '-' between its parts: both tiles had one id
  // and the second was described (aria-describedby) by the first one's last error.
  const secret = await createPartner(svc, 'tips', { name: 'Tips' });
  const target = await svc.api('/v1/partners/tips/targets?verify=false', { json: { id: 'tips-bmb', platform: 'bambuser', name: 'Tips Bambuser', credentials: { apiKey: 'k' }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 1000 } });
  expect(target.status).toBe(201);
  const scheduledAt = new Date(Date.now() + 20 * 60_000).toISOString();
  for (const id of ['x.y', 'x_y']) {
    expect((await sendEvent(svc, 'tips', secret, showEvent('show.scheduled', sampleShow(id, { title: `Tip show ${id}`, scheduledAt }), new Date().toISOString()))).status).toBe(202);
  }
  const context = await guardedContext(browser);
  page = await context.newPage();
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#board tr[data-partner="tips"] a.tile').nth(1).waitFor();
  // (A string: the tests are type-checked without the DOM library.)
  const described = (await page.evaluate(`[...document.querySelectorAll('#board tr[data-partner="tips"] a.tile')].map((a) => [
    a.closest('tr')?.getAttribute('data-show'),
    document.getElementById(a.getAttribute('aria-describedby') ?? '')?.closest('tr')?.getAttribute('data-show'),
  ])`)) as [string, string][];
  expect(described.sort()).toEqual([['x.y', 'x.y'], ['x_y', 'x_y']]);
  await context.close();
});
