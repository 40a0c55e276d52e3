/**
 * The ops console's browser tests: Debian's chromium (playwright-core, no browser download) against the
 * real service. `browserPerFile` starts both once for a test file and closes them after it; `guardedContext`
 * keeps every page on loopback.
 */
import { existsSync } from 'node:fs';
import pw from 'playwright-core';
import type { Browser, BrowserContext, BrowserContextOptions } from 'playwright-core';
import { startService, type TestService, type TestServiceOptions } from './service.js';

/** .ci/run installs Debian's chromium (apt); the tests fail at once without it. */
export const CHROMIUM = '/usr/bin/chromium';

/** Where a page may load from: loopback, or no network at all (data:, blob:, about:). */
export const isLoopback = (url: URL): boolean => ['data:', 'blob:', 'about:'].includes(url.protocol) || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);

/**
 * The service (`opts`) and chromium for one test file: started before the file's tests (within
 * `timeoutMs`, jest's default unless told) and handed to `use`, which runs in the same beforeAll;
 * the browser, then the service, closed after them.
 */
export function browserPerFile(use: (started: { svc: TestService; browser: Browser }) => unknown, opts: TestServiceOptions = {}, timeoutMs?: number): void {
  let svc: TestService | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    svc = await startService(opts);
    browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    await use({ svc, browser });
  }, timeoutMs);
  afterAll(async () => {
    await browser?.close();
    await svc?.close();
  });
}

/**
 * A browser context (1280×800 unless `opts` says otherwise) whose every request outside loopback is
 * aborted, and recorded in `outside` when given (the test then checks it is empty).
 */
export async function guardedContext(browser: Browser, outside?: string[], opts: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
  if (outside) {
    context.on('request', (req) => {
      if (!isLoopback(new URL(req.url()))) outside.push(req.url());
    });
  }
  await context.route((url) => !isLoopback(url), (route) => route.abort('blockedbyclient'));
  return context;
}
