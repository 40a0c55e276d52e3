/**
 * A pin whose request reached the platform after its caller had given up (a timeout) leaves the mirror
 * with the pin `pending`. When the partner unpins the product before a retry, the mirror must take the
 * pin back on the platform: it treated the pending pin as never sent ("nothing to undo") and the
 * product stayed in the Whatnot lineup / featured on the Bambuser player for the rest of the show.
 * Likewise a pinned product the partner drops from the show (its next snapshot no longer lists it) was
 * marked unpinned without being taken back on the platform. And a pin that timed out, whose take-back
 * timed out too, pinned again: the take-back is finished first, then it is pinned as a new episode
 * (each of pin, unpin, pin once on the platform; known mutant repin-unknown-pinned-only).
 *
 * Real redis-server, the real SyncService and adapters, the simulators behind a proxy that delivers the
 * pin late. The test plays the runs as BullMQ would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CREDENTIALS } from '../helpers/platforms.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';
import { useLateRig } from '../helpers/late-rig.js';

const TIMEOUT_MS = 400;
const HOLD_MS = 800;

// no workers: the test plays the runs, as BullMQ would
const rig = useLateRig({
  limits: { whatnot: { requestsPerWindow: null }, bambuser: { requestsPerWindow: null } },
  env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS), PLATFORM_SETTLE_MS: String(TIMEOUT_MS) },
  partnerId: 'tb',
});

const CASES = [
  { platform: 'whatnot' as const, pin: (method: string, path: string) => method === 'POST' && path === '/whatnot/merchandising/products/p1' },
  { platform: 'bambuser' as const, pin: (method: string, path: string) => method === 'POST' && /^\/bambuser\/v1\/shows\/[^/]+\/highlights$/.test(path) },
];

type Platform = (typeof CASES)[number]['platform'];

/**
 * Target `{prefix}-{platform}` behind the proxy mirroring show `show-{prefix}-{platform}`, live. Both
 * platforms' shows are made by the seller in their app (Bambuser's API could; link it anyway: one path).
 * `pinEvent` sends p1's pin event at 18:{minute}; `effects` lists the product effects on the platform show.
 */
async function liveBehindProxy(prefix: string, platform: Platform) {
  const targetId = `${prefix}-${platform}`;
  const r = await rig.svc.api('/v1/partners/tb/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${rig.proxy.url}/${platform}`, commissionRateBps: 500, rateLimit: { requests: 1000, windowMs: 1000 } },
  });
  expect(r.status).toBe(201);
  const showId = `show-${prefix}-${platform}`;
  const job = { partnerId: 'tb', showId, targetId };
  const pinEvent = async (type: string, minute: number): Promise<void> => {
    const body = { type, occurredAt: `2026-11-24T18:${String(minute).padStart(2, '0')}:00Z`, data: { showId, productId: 'p1' } };
    expect((await sendEvent(rig.svc, 'tb', rig.secret, body)).status).toBe(202);
  };
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  await rig.converge(job, `${prefix}-first`);
  const { externalId } = (await rig.sim.control('POST', `/_sim/${platform}/shows`, { title: showId })) as { externalId: string };
  if (platform === 'whatnot') {
    expect((await rig.svc.api(`/v1/partners/tb/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  }
  expect(await rig.converge(job, `${prefix}-live`)).toEqual({ kind: 'done', state: 'live' });
  const remoteId = (await rig.svc.rt.shows.getMirror('tb', showId, targetId))!.remote!.externalId;
  const effects = async (): Promise<string[]> => (await rig.sim.effects(platform)).filter((e) => e.externalId === remoteId && e.type.startsWith('product.')).map((e) => e.type);
  const pinOf = async () => (await rig.svc.rt.shows.getMirror('tb', showId, targetId))!.pins['p1'];
  return { job, pinEvent, effects, pinOf };
}

test.each(CASES)('$platform: a pin that took effect after its caller timed out is taken back when the partner unpins it', async ({ platform, pin }) => {
  const { job, pinEvent, effects, pinOf } = await liveBehindProxy('tb', platform);

  // The pin reaches the platform after the run timed out.
  await pinEvent('product.pinned', 1);
  rig.proxy.holdNext(pin, HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 'pin-0' })).toMatchObject({ kind: 'delay' });
  await rig.proxy.idle();
  // The partner takes the product back before any retry.
  await pinEvent('product.unpinned', 2);
  expect(await rig.converge(job, 'unpin')).toEqual({ kind: 'done', state: 'live' });

  expect(await effects()).toEqual(['product.pinned', 'product.unpinned']);
  expect(await pinOf()).toMatchObject({ state: 'unpinned' });
}, 30_000);

test.each(CASES)('$platform: a pinned product the partner drops from the show is taken back on the platform', async ({ platform }) => {
  const targetId = `drop-${platform}`;
  const r = await rig.svc.api('/v1/partners/tb/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${rig.sim.url}/${platform}`, commissionRateBps: 500, rateLimit: { requests: 1000, windowMs: 1000 } },
  });
  expect(r.status).toBe(201);
  const showId = `show-drop-${platform}`;
  const job = { partnerId: 'tb', showId, targetId };
  const live = sampleShow(showId, { state: 'live', pinnedProductIds: ['p1'] });
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.live', live, '2026-11-24T18:00:00Z'))).status).toBe(202);
  await rig.converge(job, 'd-first');
  if (platform === 'whatnot') {
    const { externalId } = (await rig.sim.control('POST', `/_sim/${platform}/shows`, { title: showId })) as { externalId: string };
    expect((await rig.svc.api(`/v1/partners/tb/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  }
  expect(await rig.converge(job, 'd-live')).toEqual({ kind: 'done', state: 'live' });
  expect((await rig.svc.rt.shows.getMirror('tb', showId, targetId))!.pins['p1']).toMatchObject({ state: 'pinned' });
  const remoteId = (await rig.svc.rt.shows.getMirror('tb', showId, targetId))!.remote!.externalId;

  // Sold out: the partner's next snapshot no longer lists the product (nor pins it).
  const products = (live['products'] as { id: string }[]).filter((p) => p.id !== 'p1');
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.updated', { ...live, products, pinnedProductIds: [] }, '2026-11-24T18:05:00Z'))).status).toBe(202);
  expect(await rig.converge(job, 'd-drop')).toEqual({ kind: 'done', state: 'live' });

  const effects = (await rig.sim.effects(platform)).filter((e) => e.externalId === remoteId && e.type.startsWith('product.')).map((e) => e.type);
  expect(effects).toEqual(['product.pinned', 'product.unpinned']);
  expect((await rig.svc.rt.shows.getMirror('tb', showId, targetId))!.pins['p1']).toMatchObject({ state: 'unpinned' });
}, 30_000);

/** The show's products, p1 with `sku` (Whatnot knows a product by its sku, the platform's product id, not by the partner's id). */
const withSku = (base: Record<string, unknown>, sku: string): Record<string, unknown>[] => (base['products'] as Record<string, unknown>[]).map((p) => (p['id'] === 'p1' ? { ...p, sku } : p));

/** Whatnot target `targetId` (behind the proxy) mirroring show `showId`, live, p1 with `sku`; the show as sent and its Whatnot id. */
async function liveOnWhatnot(targetId: string, showId: string, sku: string): Promise<{ job: { partnerId: string; showId: string; targetId: string }; base: Record<string, unknown>; externalId: string }> {
  const r = await rig.svc.api('/v1/partners/tb/targets?verify=false', {
    json: { id: targetId, platform: 'whatnot', name: 'whatnot', credentials: CREDENTIALS.whatnot, baseUrl: `${rig.proxy.url}/whatnot`, commissionRateBps: 500, rateLimit: { requests: 1000, windowMs: 1000 } },
  });
  expect(r.status).toBe(201);
  const job = { partnerId: 'tb', showId, targetId };
  const base = sampleShow(showId, { state: 'live' });
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.live', { ...base, products: withSku(base, sku) }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  await rig.converge(job, `${targetId}-first`);
  const { externalId } = (await rig.sim.control('POST', '/_sim/whatnot/shows', { title: showId })) as { externalId: string };
  expect((await rig.svc.api(`/v1/partners/tb/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect(await rig.converge(job, `${targetId}-live`)).toEqual({ kind: 'done', state: 'live' });
  return { job, base, externalId };
}

test('whatnot: a timed-out pin of a product with a sku is taken back by that sku when the partner drops the product from the show', async () => {
  const platform = 'whatnot';
  const { job, base, externalId } = await liveOnWhatnot('sku-whatnot', 'show-sku-whatnot', 'wn-lip-oil');
  const products = withSku(base, 'wn-lip-oil');
  const live = { ...base, products };

  // The pin reaches Whatnot after the run timed out.
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.updated', { ...live, pinnedProductIds: ['p1'] }, '2026-11-24T18:01:00Z'))).status).toBe(202);
  rig.proxy.holdNext((method, path) => method === 'POST' && path === '/whatnot/merchandising/products/wn-lip-oil', HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 's-pin-0' })).toMatchObject({ kind: 'delay' });
  await rig.proxy.idle();
  // Sold out before any retry: the next snapshot no longer lists the product.
  const left = products.filter((p) => p['id'] !== 'p1');
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.updated', { ...live, products: left, pinnedProductIds: [] }, '2026-11-24T18:02:00Z'))).status).toBe(202);
  expect(await rig.converge(job, 's-drop')).toEqual({ kind: 'done', state: 'live' });

  const effects = (await rig.sim.effects(platform)).filter((e) => e.externalId === externalId && e.type.startsWith('product.')).map((e) => `${e.type} ${String(e.productId)}`);
  expect(effects).toEqual(['product.pinned wn-lip-oil', 'product.unpinned wn-lip-oil']);
}, 30_000);

test.each(CASES)('$platform: a pin sent by a run that died before it could save (its lease gone) is taken back when the partner unpins it', async ({ platform, pin }) => {
  const { job, pinEvent, effects } = await liveBehindProxy('crash', platform);

  // The run sends the pin, then dies (its job lock lapses: the run gives its lease up) before it saves anything.
  await pinEvent('product.pinned', 1);
  rig.proxy.holdNext(pin, HOLD_MS);
  const heldBefore = rig.proxy.held.length;
  const died = new AbortController();
  const run = rig.svc.rt.syncService.sync(job, { token: 'c-pin-0', signal: died.signal });
  // It dies once its pin request is out (held at the proxy): a fixed sleep let a loaded CI machine
  // abort the run before it had sent anything, and then there was nothing to take back.
  const sentBy = Date.now() + 10_000;
  while (rig.proxy.held.length === heldBefore && Date.now() < sentBy) await sleep(5);
  expect(rig.proxy.held.length).toBe(heldBefore + 1);
  died.abort();
  await run;
  await rig.proxy.idle();
  // The partner takes the product back before any retry.
  await pinEvent('product.unpinned', 2);
  expect(await rig.converge(job, 'c-unpin')).toEqual({ kind: 'done', state: 'live' });

  expect(await effects()).toEqual(['product.pinned', 'product.unpinned']);
}, 30_000);

test.each(CASES)('$platform: a pin taken back while its timed-out request may still reach the platform is taken back after it could have', async ({ platform, pin }) => {
  const { job, pinEvent, effects } = await liveBehindProxy('soon', platform);

  await pinEvent('product.pinned', 1);
  rig.proxy.holdNext(pin, HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 's-pin-0' })).toMatchObject({ kind: 'delay' });
  // Taken back at once: the pin request is still on its way (it lands after HOLD_MS).
  await pinEvent('product.unpinned', 2);
  expect(await rig.converge(job, 's-unpin')).toEqual({ kind: 'done', state: 'live' });
  await rig.proxy.idle();

  expect(await effects()).toEqual(['product.pinned', 'product.unpinned']);
}, 30_000);

test("whatnot: a pin whose sku changes while its timed-out request may still land takes the old sku back after it could have", async () => {
  const { job, base, externalId } = await liveOnWhatnot('sku-change-whatnot', 'show-sku-change-whatnot', 'wn-old');
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.updated', { ...base, products: withSku(base, 'wn-old'), pinnedProductIds: ['p1'] }, '2026-11-24T18:01:00Z'))).status).toBe(202);
  rig.proxy.holdNext((method, path) => method === 'POST' && path === '/whatnot/merchandising/products/wn-old', HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 'c-pin-0' })).toMatchObject({ kind: 'delay' });
  // The sku changes while the pin of the old one is still on its way (it lands after HOLD_MS): taken
  // back at once, the old id would come back into the lineup after the removal.
  expect((await sendEvent(rig.svc, 'tb', rig.secret, showEvent('show.updated', { ...base, products: withSku(base, 'wn-new'), pinnedProductIds: ['p1'] }, '2026-11-24T18:02:00Z'))).status).toBe(202);
  expect(await rig.converge(job, 'c-change')).toEqual({ kind: 'done', state: 'live' });
  await rig.proxy.idle();

  const effects = (await rig.sim.effects('whatnot')).filter((e) => e.externalId === externalId && e.type.startsWith('product.')).map((e) => `${e.type} ${String(e.productId)}`);
  expect(effects).toEqual(['product.pinned wn-old', 'product.unpinned wn-old', 'product.pinned wn-new']);
}, 30_000);

const UNPINS = {
  whatnot: (method: string, path: string) => method === 'POST' && path === '/whatnot/merchandising/products/p1',
  bambuser: (method: string, path: string) => method === 'DELETE' && /^\/bambuser\/v1\/shows\/[^/]+\/highlights\/[^/]+$/.test(path),
};

test.each(CASES)('$platform: a pin that timed out, whose take-back timed out too, pinned again: pinned, unpinned and pinned there once each, and pinned in the end', async ({ platform, pin }) => {
  const { job, pinEvent, effects, pinOf } = await liveBehindProxy('twice', platform);

  // The pin times out (its outcome unknown: it lands late).
  await pinEvent('product.pinned', 1);
  rig.proxy.holdNext(pin, HOLD_MS);
  expect(await rig.svc.rt.syncService.sync(job, { token: 't-pin-0' })).toMatchObject({ kind: 'delay' });
  await rig.proxy.idle();
  // Taken back: its unpin times out too (it lands late).
  await pinEvent('product.unpinned', 2);
  rig.proxy.holdNext(UNPINS[platform], HOLD_MS);
  const heldBefore = rig.proxy.held.length;
  // (The first runs wait until the timed-out pin can no longer land.)
  for (let i = 0; rig.proxy.held.length === heldBefore && i < 10; i++) {
    const o = await rig.svc.rt.syncService.sync(job, { token: `t-unpin-${i}` });
    expect(o).toMatchObject({ kind: 'delay' });
    if (rig.proxy.held.length === heldBefore) await sleep((o as { delayMs: number }).delayMs);
  }
  expect(rig.proxy.held.length).toBe(heldBefore + 1);
  await rig.proxy.idle();
  expect(await pinOf()).toMatchObject({ state: 'pending' });
  expect((await pinOf())!.unpinTriedAt).toBeDefined();
  // Pinned again.
  await pinEvent('product.pinned', 3);
  expect(await rig.converge(job, 't-repin')).toEqual({ kind: 'done', state: 'live' });
  // A later run (any event of the show) changes nothing more there.
  expect(await rig.converge(job, 't-after')).toEqual({ kind: 'done', state: 'live' });

  expect(await effects()).toEqual(['product.pinned', 'product.unpinned', 'product.pinned']);
  expect(await pinOf()).toMatchObject({ state: 'pinned', episode: 2 });
}, 30_000);
