/**
 * /docs (swagger-ui) under its Content-Security-Policy: it had none, so any site could frame the page
 * (and its "Authorize" dialog, where an API key is typed) and nothing bounded what the page loads. The
 * policy (src/api/plugins/docs.plugin.ts DOCS_CSP) says frame-ancestors 'none', and the UI still works
 * under it in Debian's chromium: the operations render, one opens, and the page reports no CSP
 * violation, console error or failed request. Real service, real redis-server.
 */
import type { Browser } from 'playwright-core';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import type { TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

let svc: TestService;
let browser: Browser;

browserPerFile((started) => ({ svc, browser } = started));

test("/docs carries a CSP with frame-ancestors 'none', and the UI works under it with no violation", async () => {
  const head = await fetch(`${svc.url}/docs/static/index.html`);
  const csp = head.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-');

  const outside: string[] = [];
  const context = await guardedContext(browser, outside);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${new URL(r.url()).pathname}`);
  });
  page.on('requestfailed', (r) => problems.push(`failed ${r.url()}: ${r.failure()?.errorText ?? ''}`));
  // Chromium logs a violation as a console error too; this says which directive.
  await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));" });
  await page.goto(`${svc.url}/docs`);
  // The document was fetched and rendered: an operation of the ops tag, opened.
  const op = page.locator('#operations-ops-opsBoard');
  await op.waitFor();
  await op.locator('.opblock-summary').first().click();
  await page.getByText('Try it out').first().waitFor();
  await page.getByRole('button', { name: /Authorize/ }).first().click();
  await page.getByText('Available authorizations').waitFor();
  await context.close();
  expect(outside).toEqual([]);
  expect(problems).toEqual([]);
});
