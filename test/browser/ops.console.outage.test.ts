/**
 * The ops console while Redis is down and after it is back, in Debian's chromium (playwright-core):
 * the board says the live updates are lost and recovers by itself, and the views read on demand
 * (reconciliations, endpoints) say why they could not be loaded instead of "Loading…" for ever, and
 * load once storage answers again, without a reload or a click. Real service, real redis-server
 * (stopped and started again under the running service); nothing leaves loopback.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import { ADMIN_KEY, type TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

const OUT = join(process.cwd(), 'test-output', 'browser');

let svc: TestService;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const outside: string[] = [];

browserPerFile(async (started) => {
  svc = started.svc;
  browser = started.browser;
  mkdirSync(OUT, { recursive: true });
  page = await (await guardedContext(started.browser, outside)).newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
});

test('Redis down: the page says so on the board and on the reconciliations and endpoints views, and recovers by itself once Redis is back', async () => {
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  await page.locator('#live.ok').waitFor();
  await page.getByRole('link', { name: 'Reconciliations' }).click();
  await page.getByText('No reconciliation has run yet.').waitFor();

  await svc.redis.stop();
  try {
    // The live stream tells the board (banner), whatever view is open.
    await page.locator('#lost').filter({ hasText: 'storage is temporarily unavailable' }).waitFor({ timeout: 20_000 });
    await page.getByRole('link', { name: 'Endpoints' }).click();
    const failed = page.getByRole('alert').filter({ hasText: 'Could not load the outbound endpoints' });
    await failed.waitFor({ timeout: 20_000 });
    expect(await failed.textContent()).toContain('storage is temporarily unavailable');
    await page.getByRole('link', { name: 'Reconciliations' }).click();
    await page.getByRole('alert').filter({ hasText: 'Could not load the reconciliations' }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(OUT, 'outage.png'), fullPage: true });
  } finally {
    await svc.redis.start();
  }
  // No navigation, no click: the view loads once storage answers again, and the banner goes.
  await page.getByText('No reconciliation has run yet.').waitFor({ timeout: 30_000 });
  await page.locator('#live.ok').waitFor({ timeout: 30_000 });
  expect(await page.locator('#lost').isHidden()).toBe(true);
  expect(pageErrors).toEqual([]);
  expect(outside).toEqual([]);
});

test("an operator's page (re)loaded while Redis is down says storage is unavailable, not 'stream answered 503', and recovers by itself", async () => {
  // A stored key's check needs Redis: the stream is refused with a 503 problem before it opens (the
  // admin key's is not, which the test above uses), and the banner said only "stream answered 503".
  const created = await svc.api('/v1/api-keys', { json: { role: 'operator', name: 'outage test' } });
  const { key } = (await created.json()) as { key: string };
  page = await (await guardedContext(browser, outside)).newPage();
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#live.ok').waitFor();
  await svc.redis.stop();
  try {
    await page.reload();
    await page.locator('#lost').filter({ hasText: 'storage is temporarily unavailable' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('#lost').textContent()).not.toContain('stream answered 503');
  } finally {
    await svc.redis.start();
  }
  await page.locator('#live.ok').waitFor({ timeout: 30_000 });
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  expect(pageErrors).toEqual([]);
  expect(outside).toEqual([]);
});
