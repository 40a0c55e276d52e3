/**
 * The ops console loads without a single console error or failed request, in Debian's chromium
 * (playwright-core). Every load of /ops logged "Failed to load resource: 404" (found on npm start,
 * 2026-12-02): the page names no icon, so the browser asked for /favicon.ico, which is no route. The
 * page now names an empty data: icon (allowed by its CSP's img-src). Chromium asks for the icon only
 * when requests are not intercepted (the other browser tests route every request, so none saw it):
 * the first test loads the page without interception and checks that every request stayed on
 * loopback. Also: names and titles full of markup (partner, show, product) stay text, no dialog
 * opens. Real service, real redis-server.
 */
import type { Browser, Page } from 'playwright-core';
import { browserPerFile, guardedContext, isLoopback } from '../helpers/browser.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

const MARKUP = '<img src=x onerror=alert(1)>"><svg/onload=alert(2)>${alert(3)}';

let svc: TestService;
let browser: Browser;
let page: Page;
const problems: string[] = [];

function watch(target: Page): void {
  target.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  target.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  target.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  target.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${new URL(r.url()).pathname}`);
  });
  target.on('requestfailed', (r) => problems.push(`failed ${r.url()}: ${r.failure()?.errorText ?? ''}`));
}

browserPerFile((started) => ({ svc, browser } = started));

test('a fresh load of /ops, as a browser makes it (no interception): no console error, no 404', async () => {
  const context = await browser.newContext();
  const urls: string[] = [];
  context.on('request', (r) => urls.push(r.url()));
  const fresh = await context.newPage();
  watch(fresh);
  await fresh.goto(`${svc.url}/ops`);
  await fresh.getByLabel('API key').waitFor();
  // The icon request goes out after the page's own files (about 0.3 s later on an idle machine).
  await fresh.waitForTimeout(2000);
  await context.close();
  expect(urls.filter((u) => !isLoopback(new URL(u)))).toEqual([]);
  expect(problems).toEqual([]);
});

test('sign-in, board, show, reconciliations and endpoints: no console error, no failed request, markup stays text', async () => {
  problems.length = 0;
  const context = await guardedContext(browser);
  page = await context.newPage();
  watch(page);
  const secret = await createPartner(svc, 'clean', { name: MARKUP });
  const scheduledAt = new Date(Date.now() + 20 * 60_000).toISOString();
  const show = sampleShow('clean-1', { title: MARKUP, scheduledAt, products: [{ id: 'p1', title: MARKUP, price: { amount: 1200, currency: 'KWD' }, url: 'https://shop.example.com/p1?q="><script>alert(4)</script>' }], pinnedProductIds: ['p1'] });
  expect((await sendEvent(svc, 'clean', secret, showEvent('show.scheduled', show, new Date().toISOString()))).status).toBe(202);

  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  await page.getByRole('link', { name: MARKUP }).first().waitFor();
  await page.goto(`${svc.url}/ops#/show/clean/clean-1`);
  await page.getByRole('heading', { name: MARKUP }).waitFor();
  await page.getByRole('link', { name: 'Reconciliations' }).click();
  await page.getByText('No reconciliation has run yet.').waitFor();
  await page.getByRole('link', { name: 'Endpoints' }).click();
  await page.getByText('No endpoint is registered.').waitFor();
  expect(await page.locator('img[src="x"], svg[onload]').count()).toBe(0);
  expect(problems).toEqual([]);
});
