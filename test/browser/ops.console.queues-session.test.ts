/**
 * The console's Queues link opens /admin/queues for as long as the console is signed in. The link
 * relies on the session cookie of the sign-in, which ends after 8 hours (SessionRepository's TTL),
 * while the console itself keeps its key for the tab's life: on a console kept open through a shift
 * (or reloaded the next day) the link answered a 401 problem ("sign in on /ops first") to an admin
 * the console showed as signed in. Likewise after another tab signed in with a viewer key (the
 * browser's one cookie was then the viewer's: 403). The link now renews the session with the tab's
 * key first. And after a reload (the tab keeps its key) the header said nobody and an admin's
 * Queues link stayed hidden: both were set at sign-in only, and a reload learns who it is from the
 * first board. And a page on the same site (another port of the host) could frame the signed-in
 * dashboard, the SameSite=Strict cookie going along: it now says frame-ancestors 'none'. A sign-in
 * with a revoked or expired key says so (it said "That key is not known."), and so does a console
 * whose key is revoked while it is open (it said "Your key is no longer accepted"). Debian's
 * chromium (playwright-core), real service and redis-server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { sha256Hex } from '../../src/lib/crypto.js';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import { ADMIN_KEY, type TestService } from '../helpers/service.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

let svc: TestService;
let browser: Browser;

browserPerFile((started) => ({ svc, browser } = started));

test('after a reload the header says who is signed in, and an admin has the Queues link', async () => {
  const context = await guardedContext(browser);
  const page = await context.newPage();
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  expect(await page.locator('#me').textContent()).toBe('admin');
  await page.reload();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  await page.getByRole('link', { name: 'Queues' }).waitFor({ timeout: 10_000 });
  expect(await page.locator('#me').textContent()).toBe('admin');
  await context.close();
});

test("an admin's Queues link opens the dashboard after the sign-in's session has ended, and after another tab signed in with a viewer key", async () => {
  const context = await guardedContext(browser);
  const page = await context.newPage();
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(ADMIN_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();

  // Eight hours later: the session the sign-in made has expired in Redis (the console's key has not).
  const token = (await context.cookies()).find((c) => c.name === 'syndicast_ops')!.value;
  expect(await svc.rt.redis.del(svc.rt.keys.consoleSession(sha256Hex(token)))).toBe(1);
  const opened = page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/queues');
  await page.getByRole('link', { name: 'Queues' }).click();
  expect((await opened).status()).toBe(200);
  await page.getByText('sync-youtube-0', { exact: true }).first().waitFor({ timeout: 30_000 });

  // Another tab of the same browser signs in with a viewer key: the browser's cookie is now the viewer's.
  const r = await svc.api('/v1/api-keys', { json: { role: 'viewer' } });
  const viewerKey = ((await r.json()) as { key: string }).key;
  const other = await context.newPage();
  await other.goto(`${svc.url}/ops`);
  await other.getByLabel('API key').fill(viewerKey);
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  await page.goto(`${svc.url}/ops`);
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  const replaced = (await context.cookies()).find((c) => c.name === 'syndicast_ops')!.value;
  const again = page.waitForResponse((r2) => new URL(r2.url()).pathname === '/admin/queues');
  await page.getByRole('link', { name: 'Queues' }).click();
  expect((await again).status()).toBe(200);
  // The renewal ended the session its cookie replaced (it made a new 8-hour one and left the old alive).
  const renewed = (await context.cookies()).find((c) => c.name === 'syndicast_ops')!.value;
  expect(renewed).not.toBe(replaced);
  expect(await svc.rt.redis.exists(svc.rt.keys.consoleSession(sha256Hex(replaced)))).toBe(0);
  expect(await svc.rt.redis.exists(svc.rt.keys.consoleSession(sha256Hex(renewed)))).toBe(1);
  await context.close();
});

test('no page frames /admin/queues, not even one on the same site that the SameSite=Strict cookie reaches', async () => {
  // A page on another port of this host: the same site as the service, another origin.
  const framer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>framer</title><iframe name="dash" src="${svc.url}/admin/queues" width="1000" height="600"></iframe>`));
  await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve));
  const context = await guardedContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(`${svc.url}/ops`);
    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
    // The signed-in browser opens /admin/queues itself: the dashboard.
    const own = await context.newPage();
    await own.goto(`${svc.url}/admin/queues`);
    await own.getByText('sync-youtube-0', { exact: true }).first().waitFor({ timeout: 30_000 });
    // Framed by the other page the cookie goes along (same site) and the dashboard answers 200, but the
    // browser does not show it in the frame.
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/queues');
    await page.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`);
    const res = await answered;
    expect(res.status()).toBe(200);
    expect(res.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    // What the frame would show is drawn a moment after the answer (bull-board's script, its queue list).
    await page.waitForTimeout(3000);
    const frame = page.frame({ name: 'dash' });
    const text = frame ? await frame.evaluate<string>("document.body?.innerText ?? ''").catch(() => '') : '';
    expect(text).not.toContain('sync-youtube-0');
  } finally {
    await context.close();
    await new Promise((resolve) => framer.close(resolve));
  }
});

test('a sign-in with a revoked or expired key says so, not "That key is not known."', async () => {
  // The API answers 401 "this API key was revoked" / "has expired"; the console's sign-in said "That
  // key is not known." for both, and the operator looked for a typo in a key that had been revoked.
  const create = async (body: object): Promise<{ id: string; key: string; expiresAt: string | null }> => (await (await svc.api('/v1/api-keys', { json: body })).json()) as { id: string; key: string; expiresAt: string | null };
  const revoked = await create({ role: 'operator' });
  expect((await svc.api(`/v1/api-keys/${revoked.id}`, { method: 'DELETE' })).status).toBe(200);
  const expiring = await create({ role: 'viewer', expiresAt: new Date(Date.now() + 1500).toISOString() });
  const context = await guardedContext(browser);
  const page = await context.newPage();
  await page.goto(`${svc.url}/ops`);
  const signIn = async (key: string): Promise<string> => {
    await page.getByLabel('API key').fill(key);
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/ops/session' && r.request().method() === 'POST');
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect((await answered).status()).toBe(401);
    await page.locator('#sign-in-error').filter({ hasText: /\S/ }).waitFor();
    return (await page.locator('#sign-in-error').textContent()) ?? '';
  };
  expect(await signIn(revoked.key)).toBe('That key was revoked: ask an admin for a new one.');
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiring.expiresAt!) - Date.now()) + 100));
  expect(await signIn(expiring.key)).toBe('That key has expired: ask an admin for a new one.');
  expect(await signIn('sk_viewer_not-a-key-at-all')).toBe('That key is not known.');
  await context.close();
});

test('a console whose key is revoked while signed in says so, not "Your key is no longer accepted"', async () => {
  // The board's stream ends and its reconnect gets 401 "this API key was revoked"; the console signed
  // out saying "Your key is no longer accepted: sign in again." for every 401 (a call, the stream, the
  // Queues link's renewal), whatever the API's reason.
  const created = (await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { id: string; key: string };
  const context = await guardedContext(browser);
  const page = await context.newPage();
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(created.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  expect((await svc.api(`/v1/api-keys/${created.id}`, { method: 'DELETE' })).status).toBe(200);
  await page.locator('#sign-in-error').filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
  expect(await page.locator('#sign-in-error').textContent()).toBe('That key was revoked: ask an admin for a new one.');
  await context.close();
});
