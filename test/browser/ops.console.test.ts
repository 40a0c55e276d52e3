/**
 * The ops console in a real browser: playwright-core drives Debian's chromium (no browser download)
 * against the real service (startRoles, workers and scheduler) and the platform simulators.
 * Every request the page makes must stay on loopback (anything else is aborted and fails the test);
 * each test saves a screenshot under test-output/browser/. `UPDATE_DOCS_SCREENSHOTS=1` also writes
 * the README's pictures (docs/img/).
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { browserPerFile, guardedContext } from '../helpers/browser.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { shardOf } from '../../src/queues/queues.js';

import { jest } from '@jest/globals';

jest.setTimeout(120_000);

const OUT = join(process.cwd(), 'test-output', 'browser');
const DOCS = process.env['UPDATE_DOCS_SCREENSHOTS'] === '1' ? join(process.cwd(), 'docs', 'img') : null;
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let svc: TestService;
let sim: TestSim;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let acmeSecret: string;
let otherSecret: string;
let operatorKey: string;
let partnerKey: string;
const outside: string[] = [];

const soon = (minutes: number): string => new Date(Date.now() + minutes * 60_000).toISOString();
const SHOW = sampleShow('launch-1', { title: 'Winter glow launch', scheduledAt: soon(20) });
let occurred = Date.now() - 60_000;
const nextAt = (): string => new Date((occurred += 1000)).toISOString();

async function shot(name: string, docsName?: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
  if (DOCS && docsName) await page.screenshot({ path: join(DOCS, docsName), fullPage: true });
}

async function newKey(role: string, partnerId?: string): Promise<string> {
  const r = await svc.api('/v1/api-keys', { json: { role, ...(partnerId ? { partnerId } : {}) } });
  expect(r.status).toBe(201);
  return ((await r.json()) as { key: string }).key;
}

async function signIn(key: string): Promise<void> {
  await page.goto(`${svc.url}/ops`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
}

/**
 * Signs out and waits for the server to end the session: the console sends its DELETE without
 * holding up the page, and a navigation right after the click could reach the server first (it
 * would still carry the old session; on a loaded machine it did, and /admin/queues answered 403).
 */
async function signOut(): Promise<void> {
  const ended = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/ops/session' && r.request().method() === 'DELETE');
  await page.getByRole('button', { name: 'Sign out' }).click();
  expect((await ended).status()).toBe(204);
  await page.getByLabel('API key').waitFor();
}

/**
 * What the service knows of a (YouTube) mirror, for a failure message: the board can only show what is stored,
 * so this tells a page that missed an update from a sync that never ran or an error that was lost.
 */
async function diagnose(partnerId: string, showId: string, targetId: string): Promise<string> {
  const q = svc.rt.syncProducer.queue('youtube', shardOf(partnerId, showId, svc.config.syncShards));
  return JSON.stringify({
    tile: await tile(showId, targetId).textContent().catch(() => null),
    mirror: await svc.rt.shows.getMirror(partnerId, showId, targetId),
    desiredVersion: (await svc.rt.shows.desired(partnerId, showId))?.version,
    jobs: await q.getJobCounts(),
    dedupJob: await q.getDeduplicationJobId(`sync:${partnerId}:${showId}:${targetId}`),
    timeline: await svc.rt.activity.list(partnerId, showId, 30),
  });
}

const tile = (showId: string, targetId: string) => page.locator(`#board tr[data-show="${showId}"] a.tile[data-target="${targetId}"]`);

// The simulators first (this beforeAll runs before browserPerFile's), closed after the service.
beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  if (DOCS) mkdirSync(DOCS, { recursive: true });
  sim = await startSim();
  // no video is pushed here: a simulated encoder makes YouTube's bound stream active (docs/testing.md)
  await sim.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 50 });
}, 120_000);

browserPerFile(async (started) => {
  ({ svc, browser } = started);
  acmeSecret = await createPartner(svc, 'acme', { name: 'Acme Beauty' });
  otherSecret = await createPartner(svc, 'other', { name: 'Other Shop' });
  for (const [partnerId, id, name] of [
    ['acme', 'acme-yt', 'Acme YouTube'],
    ['other', 'other-yt', 'Other YouTube'],
  ] as const) {
    const r = await svc.api(`/v1/partners/${partnerId}/targets`, {
      json: { id, platform: 'youtube', name, credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 1000 },
    });
    expect(r.status).toBe(201);
  }
  operatorKey = await newKey('operator');
  partnerKey = await newKey('partner', 'other');
  const otherShow = sampleShow('other-1', { title: 'Other shop evening', scheduledAt: soon(40) });
  expect((await sendEvent(svc, 'other', otherSecret, showEvent('show.scheduled', otherShow, nextAt()))).status).toBe(202);

  context = await guardedContext(browser, outside);
  page = await context.newPage();
}, { workers: true, scheduler: true, env: { SYNC_MAX_RETRIES: '1' } }, 120_000);

afterEach(() => {
  expect(outside).toEqual([]);
});

afterAll(async () => {
  await sim?.close();
});

test('sign in with an operator key; the key stays in sessionStorage, not in any URL', async () => {
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  await signIn(operatorKey);
  await page.locator('#live.ok').waitFor();
  expect(await page.evaluate("sessionStorage.getItem('syndicast.apiKey')")).toBe(operatorKey);
  expect(await page.evaluate('localStorage.length')).toBe(0);
  expect(urls.filter((u) => u.includes(operatorKey))).toEqual([]);
  // The other partner's show is on the board for an operator.
  await page.locator('#board tr[data-show="other-1"]').waitFor();
  await shot('sign-in');
});

test('a show goes live on the board without reloading', async () => {
  await page.evaluate('window.marker = 42');
  expect((await sendEvent(svc, 'acme', acmeSecret, showEvent('show.scheduled', SHOW, nextAt()))).status).toBe(202);
  await tile('launch-1', 'acme-yt').and(page.locator('[data-state="ready"]')).waitFor({ timeout: 30_000 });
  expect((await sendEvent(svc, 'acme', acmeSecret, showEvent('show.live', { ...SHOW, state: 'live' }, nextAt()))).status).toBe(202);
  expect((await sendEvent(svc, 'acme', acmeSecret, { type: 'product.pinned', occurredAt: nextAt(), data: { showId: 'launch-1', productId: 'p1' } })).status).toBe(202);
  const live = tile('launch-1', 'acme-yt').and(page.locator('[data-state="live"]'));
  await live.waitFor({ timeout: 30_000 });
  // Measured, not asserted (timing on a shared machine): from the save that made the mirror live to the page showing it.
  const seenAt = Date.now();
  const since = (await svc.rt.shows.getMirror('acme', 'launch-1', 'acme-yt'))!.since;
  if (since?.state === 'live') process.stdout.write(`ops board: mirror live → shown on the page after ${seenAt - Date.parse(since.at)} ms\n`);
  await waitFor(async () => (await live.textContent())?.includes('pins 1/1'), 30_000, 200);
  expect(await live.textContent()).toContain('live');
  expect(await page.evaluate('window.marker')).toBe(42); // same document: no reload
  await shot('show-live', 'ops-board.png');
});

test('the readiness tooltip lists only the failing checks (checks carry ok: boolean)', async () => {
  // Readiness is shown for a scheduled show: one of its own, cancelled again at the end.
  const prep = sampleShow('prep-1', { title: 'Readiness check', scheduledAt: soon(25) });
  expect((await sendEvent(svc, 'acme', acmeSecret, showEvent('show.scheduled', prep, nextAt()))).status).toBe(202);
  await tile('prep-1', 'acme-yt').waitFor({ timeout: 30_000 });
  // A stored readiness result as the scheduler writes it (ReadinessService.publish): one check passes, one fails.
  const key = `${svc.rt.keys.showTag('acme', 'prep-1')}:readiness:acme-yt`;
  const readiness = {
    state: 'warning',
    checkedAt: new Date().toISOString(),
    checks: [
      { name: 'token', ok: true, detail: 'token refreshed', action: null },
      { name: 'quota', ok: false, detail: 'quota low for 3 pins', action: 'raise the quota' },
    ],
  };
  await svc.rt.redis.set(key, JSON.stringify(readiness), 'EX', 600);
  try {
    await page.reload();
    const cell = tile('prep-1', 'acme-yt').filter({ hasText: 'readiness warning' });
    await cell.waitFor({ timeout: 30_000 });
    const tip = page.locator(`[id="${await cell.getAttribute('aria-describedby')}"]`);
    const text = (await tip.textContent()) ?? '';
    expect(text).toContain('Readiness: quota quota low for 3 pins');
    expect(text).not.toContain('token');
  } finally {
    await svc.rt.redis.del(key);
    expect((await sendEvent(svc, 'acme', acmeSecret, showEvent('show.cancelled', { ...prep, state: 'cancelled' }, nextAt()))).status).toBe(202);
    await page.reload();
  }
});

test("a platform fault shows that mirror's reason on the board", async () => {
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
  expect((await sendEvent(svc, 'acme', acmeSecret, { type: 'product.pinned', occurredAt: nextAt(), data: { showId: 'launch-1', productId: 'p2' } })).status).toBe(202);
  // The settled end, not the first retry's "retrying in 1 s: … 500" (on the board for well under a
  // second, then "looking for its result" while the pin's intent settles): with SYNC_MAX_RETRIES=1
  // the mirror gives up on the next 500 and keeps that reason.
  const failing = tile('launch-1', 'acme-yt').and(page.locator('[data-state="failed"]')).filter({ hasText: 'YouTube API 500' });
  await failing.waitFor({ timeout: 60_000 }).catch(async (err: unknown) => {
    process.stdout.write(`fault tile not shown; the service's view: ${await diagnose('acme', 'launch-1', 'acme-yt')}\n`);
    throw err;
  });
  expect(await failing.textContent()).toContain('needs action');
  // The reason, in full, is what focus reveals.
  await failing.focus();
  const tip = page.locator(`[id="${await failing.getAttribute('aria-describedby')}"]`);
  await tip.waitFor({ state: 'visible' });
  expect(await tip.textContent()).toMatch(/^Last error: gave up after 1 retries: youtube: YouTube API 500 backendError: Backend Error/);
  await page.getByLabel('Needs action only').check();
  await expect(page.locator('#board tr[data-show="other-1"]').count()).resolves.toBe(0);
  await shot('fault');
  await page.getByLabel('Needs action only').uncheck();
});

test('after the fault is lifted, Resync on the show page brings the mirror back', async () => {
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  await page.locator('#board a.show-title', { hasText: 'Winter glow launch' }).click();
  await page.getByRole('heading', { name: 'Winter glow launch' }).waitFor();
  const card = page.locator('section[data-target="acme-yt"]');
  await card.getByRole('button', { name: /^(Resync|Retry)$/ }).click();
  await card.locator('.tile.st-live').waitFor({ timeout: 60_000 });
  await waitFor(async () => (await card.textContent())?.includes('pins 2/2') && (await card.locator('[data-role="last-error"]').textContent()) === 'No error.', 30_000, 200);
  // The timeline carries the operator's action, the sync runs and the platform effects.
  await page.locator('.timeline li[data-kind="operator"]', { hasText: /mirror\.(resync|retry) by / }).waitFor();
  await page.locator('.timeline li[data-kind="sync"]').first().waitFor();
  await page.locator('.timeline li[data-kind="effect"]', { hasText: 'live' }).first().waitFor();

  // A sale through a tracked link: the show's sales chart picks it up.
  const view = (await (await svc.api('/v1/partners/acme/shows/launch-1')).json()) as { mirrors: { pins: { productId: string; linkUrl: string | null }[] }[] };
  const linkUrl = view.mirrors[0]!.pins.find((p) => p.productId === 'p1')!.linkUrl!;
  const click = await fetch(linkUrl, { redirect: 'manual' });
  const clickId = new URL(click.headers.get('location')!).searchParams.get('sclid')!;
  const order = { id: 'order-1', clickId, showId: 'launch-1', createdAt: new Date().toISOString(), lines: [{ productId: 'p1', quantity: 2, amount: { amount: 3600, currency: 'USD' } }], total: { amount: 3600, currency: 'USD' } };
  expect((await sendEvent(svc, 'acme', acmeSecret, { type: 'order.created', occurredAt: nextAt(), data: { order } })).status).toBe(202);
  await page.locator('svg.chart').waitFor({ timeout: 30_000 });
  await page.locator('table', { hasText: 'Sales in USD' }).waitFor();
  expect(await page.locator('table', { hasText: 'Sales in USD' }).textContent()).toContain('$36.00');
  await shot('recovered', 'ops-show.png');
});

test('Update credentials on the show page: the platform checks them, a refusal says why and keeps the old ones', async () => {
  const card = page.locator('section[data-target="acme-yt"]');
  const fill = async (refreshToken: string): Promise<void> => {
    await card.getByRole('button', { name: 'Update credentials' }).click();
    const dlg = page.getByRole('dialog', { name: /New credentials for/ });
    await dlg.waitFor();
    await dlg.getByLabel('clientId', { exact: true }).fill(CREDENTIALS.youtube['clientId']!);
    await dlg.getByLabel('clientSecret', { exact: true }).fill(CREDENTIALS.youtube['clientSecret']!);
    await dlg.getByLabel('refreshToken', { exact: true }).fill(refreshToken);
    await dlg.getByRole('button', { name: 'Save' }).click();
  };
  // A token its owner revoked (a never-seen one would be a new channel's, CONTRACT §9).
  await sim.control('POST', '/_sim/youtube/revocations', { token: '1//a-revoked-refresh-token' });
  await fill('1//a-revoked-refresh-token');
  await page.locator('#action-status', { hasText: /Update credentials of .* failed: YouTube refused these credentials: .*invalid_grant/ }).waitFor({ timeout: 30_000 });
  await shot('credentials-refused');
  expect(svc.rt.partners.openCredentials((await svc.rt.partners.getTarget('acme', 'acme-yt'))!)).toEqual(CREDENTIALS.youtube);
  await fill(CREDENTIALS.youtube['refreshToken']!);
  await page.locator('#action-status', { hasText: /Update credentials of .*: done\./ }).waitFor({ timeout: 30_000 });
});

test('accessibility: axe finds no serious or critical violation on the board and the show page', async () => {
  // axe-core is injected from node_modules as an inline script, which the console's CSP (rightly)
  // refuses: this one page bypasses CSP, under the same loopback guard.
  const axeContext = await guardedContext(browser, outside, { bypassCSP: true });
  const p = await axeContext.newPage();
  await p.goto(`${svc.url}/ops`);
  await p.getByLabel('API key').fill(operatorKey);
  await p.getByRole('button', { name: 'Sign in' }).click();
  const check = async (where: string): Promise<void> => {
    await p.addScriptTag({ path: AXE });
    const violations = (await p.evaluate(
      'axe.run().then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) })))',
    )) as { id: string; impact: string | null }[];
    expect({ where, violations: violations.filter((v) => v.impact === 'serious' || v.impact === 'critical') }).toEqual({ where, violations: [] });
  };
  await p.locator('#board tr[data-show="launch-1"]').waitFor();
  await check('board');
  await p.goto(`${svc.url}/ops#/show/acme/launch-1`);
  await p.locator('svg.chart').waitFor();
  await check('show page');
  await p.goto(`${svc.url}/ops#/reconciliations`);
  await p.getByRole('heading', { name: 'Reconciliations' }).waitFor();
  await check('reconciliations');
  await p.goto(`${svc.url}/ops#/endpoints`);
  await p.getByRole('heading', { name: 'Outbound endpoints' }).waitFor();
  await check('endpoints');
  await p.screenshot({ path: join(OUT, 'axe.png'), fullPage: true });
  await axeContext.close();
});

test("a partner key sees only its own partner's shows", async () => {
  await signOut();
  await signIn(partnerKey);
  await page.locator('#board tr[data-show="other-1"]').waitFor();
  expect(await page.locator('#board tr[data-show="launch-1"]').count()).toBe(0);
  expect(await page.locator('#f-partner option').allTextContents()).toEqual(['All', 'Other Shop']);
  // Asking for the other partner's show directly is refused.
  await page.goto(`${svc.url}/ops#/show/acme/launch-1`);
  await page.getByRole('alert').filter({ hasText: 'Could not load the show' }).waitFor();
  expect(await page.locator('body').textContent()).not.toContain('Winter glow launch');
  await shot('partner-key');
});

test('/admin/queues opens in the browser after an admin sign-in, lists every queue and loads nothing from outside', async () => {
  await signOut();
  // Without a session: refused.
  expect((await page.goto(`${svc.url}/admin/queues`))!.status()).toBe(401);
  await page.goto(`${svc.url}/ops`);
  await signIn(ADMIN_KEY);
  await page.getByRole('link', { name: 'Queues' }).click();
  await page.waitForURL(/\/admin\/queues/);
  for (const q of ['reconcile', 'scheduler', 'sync-youtube-0']) await page.getByText(q, { exact: true }).first().waitFor({ timeout: 30_000 });
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'syndicast_ops')!;
  expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  await shot('admin-queues');
  expect(outside).toEqual([]);
});

test('signing in again right after signing out keeps the new session, however late the sign-out is answered', async () => {
  await page.goto(`${svc.url}/ops`);
  await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  // The sign-out's DELETE (carrying the old session) reaches the server only after 800 ms.
  await page.route('**/v1/ops/session', async (route) => {
    if (route.request().method() === 'DELETE') await new Promise((r) => setTimeout(r, 800));
    await route.continue();
  });
  try {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: "Today's and live shows" }).waitFor();
  } finally {
    await page.unroute('**/v1/ops/session');
  }
  // Had the late answer cleared the new cookie, this would be 401.
  expect((await page.goto(`${svc.url}/admin/queues`))!.status()).toBe(200);
});
