/**
 * The ops console shows a show's sales in the currency's ISO 4217 minor unit, which is what the API
 * counts money in. It divided by the browser's display digits for the currency instead (Intl's
 * maximumFractionDigits, CLDR's), which differ from ISO's for some currencies: ICU says HUF, COP and
 * IDR have 0 (ISO: 2) and IQD 0 (ISO: 3), so a HUF sale of 12,345.50 Ft read "HUF 1,234,550" and an
 * IQD one a thousand times too much. Debian's chromium (playwright-core), real service and
 * redis-server; the sale is a real click on a tracked link and a signed order event.
 */
import type { Browser } from 'playwright-core';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

let svc: TestService;
let browser: Browser;

browserPerFile((started) => ({ svc, browser } = started), { workers: true });

test('sales in HUF, IQD and USD are shown in their ISO minor units (12,345.50 Ft, not 1,234,550)', async () => {
  const secret = await createPartner(svc, 'mu', { name: 'Minor units' });
  const t = await svc.api('/v1/partners/mu/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'a' }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 1000 } });
  expect(t.status).toBe(201);
  const now = Date.now();
  const show = sampleShow('s1', { title: 'Money show', scheduledAt: new Date(now + 20 * 60_000).toISOString() });
  expect((await sendEvent(svc, 'mu', secret, showEvent('show.scheduled', show, new Date(now - 60_000).toISOString()))).status).toBe(202);
  // The tracked link a pin on the target gets (what the sync writes when it mirrors the pin), clicked for real.
  const link = await svc.rt.links.ensure({ partnerId: 'mu', showId: 's1', targetId: 'wn', platform: 'whatnot', productId: 'p1', url: 'https://shop.example/p1' });
  const orders: [string, number][] = [
    ['HUF', 1_234_550], // 12,345.50 Ft (ISO 4217: 2 digits; ICU: 0)
    ['IQD', 7_500_250], // 7,500.250 IQD (ISO: 3; ICU: 0)
    ['USD', 3600], // $36.00 (2 either way)
  ];
  for (const [i, [currency, amount]] of orders.entries()) {
    const click = await fetch(link, { redirect: 'manual' });
    const clickId = new URL(click.headers.get('location')!).searchParams.get('sclid')!;
    const order = { id: `o-${currency}`, clickId, showId: 's1', createdAt: new Date().toISOString(), lines: [{ productId: 'p1', quantity: 1, amount: { amount, currency } }], total: { amount, currency } };
    expect((await sendEvent(svc, 'mu', secret, { type: 'order.created', occurredAt: new Date(now - 30_000 + i).toISOString(), data: { order } })).status).toBe(202);
  }
  await waitFor(async () => {
    const r = await svc.api('/v1/ops/partners/mu/shows/s1');
    return ((await r.json()) as { sales: unknown[] }).sales.length === 3;
  }, 30_000, 100);

  const context = await guardedContext(browser, undefined, { locale: 'en-US' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  await page.goto(`${svc.url}/ops#/show/mu/s1`);
  await page.getByRole('heading', { name: 'Money show' }).waitFor();
  const row = async (currency: string): Promise<string[]> => {
    const table = page.locator('table', { hasText: `Sales in ${currency}` });
    await table.waitFor();
    return table.locator('tbody tr td').allTextContents();
  };
  const norm = (cells: string[]): string[] => cells.map((c) => c.replace(/\s/g, ' '));
  // Target, platform, orders, gross, refunded, commission (10 %).
  expect(norm(await row('HUF'))).toEqual(['Whatnot', 'whatnot', '1', 'HUF 12,345.50', 'HUF 0.00', 'HUF 1,234.55']);
  expect(norm(await row('IQD'))).toEqual(['Whatnot', 'whatnot', '1', 'IQD 7,500.250', 'IQD 0.000', 'IQD 750.025']);
  expect(norm(await row('USD'))).toEqual(['Whatnot', 'whatnot', '1', '$36.00', '$0.00', '$3.60']);
  // The chart's labels say the same.
  expect(await page.locator('svg.chart text', { hasText: 'gross HUF 12,345.50' }).count()).toBe(1);
  expect(errors).toEqual([]);
  await context.close();
});
