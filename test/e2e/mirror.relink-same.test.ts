/**
 * Re-linking a live mirror to the platform show it is already linked to
 * (PUT /v1/partners/{p}/shows/{s}/mirrors/{t} {"externalId": <the same>}) changes nothing on the
 * platform: the live video is not started again and the pinned product is not posted again (contract:
 * each platform side effect once). The link still re-reads the platform's url and ingest (a Facebook
 * stream URL that expired unused); until then a live mirror keeps its ingest, so the relay keeps
 * pushing its video. A finished (ended, cancelled) mirror is not synced again: the link leaves its url
 * (the replay) and platform data as they are. Real service and workers, real Redis, the Facebook
 * simulator over HTTP.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { mirrorIngest } from '../../src/relay/relay.service.js';
import { simRigPerFile, simTarget, waitForMirror } from '../helpers/mirrors.js';

const PARTNER = 'rls';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView {
  state: string;
  externalId: string | null;
  url: string | null;
  pins: { productId: string; state: string; linkUrl: string | null }[];
  lastError: string | null;
}

const mirrorWhere = (pred: (m: MirrorView) => boolean, showId = 'rl1'): Promise<MirrorView> => waitForMirror(svc, PARTNER, showId, pred);

simRigPerFile(PARTNER, (s) => [simTarget(s, 'facebook', { id: 'fb', name: 'Facebook Page', commissionRateBps: 1000 })], (rig) => ({ sim, svc, secret } = rig));

test('re-linking a live mirror to the same Facebook live video neither starts it again nor posts its pin again', async () => {
  const show = sampleShow('rl1', { state: 'live', pinnedProductIds: ['p1'] });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', show, new Date().toISOString()))).status).toBe(202);
  const live = await mirrorWhere((m) => m.state === 'live' && m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));
  await settled(syncQueues(svc));

  const r = await svc.api(`/v1/partners/${PARTNER}/shows/rl1/mirrors/fb`, { method: 'PUT', json: { externalId: live.externalId } });
  expect(r.status).toBe(200);
  // Linked again: the url is read again from Facebook, and the mirror is live with its pin.
  const after = await mirrorWhere((m) => m.state === 'live' && m.url !== null && m.lastError === null);
  await settled(syncQueues(svc));
  expect(after.externalId).toBe(live.externalId);
  expect(after.url).toBe(live.url);
  expect(after.pins).toEqual(live.pins);
  const stored = await svc.rt.shows.getMirror(PARTNER, 'rl1', 'fb');
  expect(stored?.remote?.data['attach']).toBeUndefined(); // the link's own sync ran (attachShow)

  const fx = (await sim.effects('facebook')).filter((e) => e.externalId === live.externalId);
  expect(fx.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted']);
});

test('re-linking the same Facebook live video after its stream URL expired unused re-reads the URL and the show goes live', async () => {
  const show = sampleShow('rl2', { scheduledAt: new Date(Date.now() + 3 * 3600_000).toISOString() });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, new Date().toISOString()))).status).toBe(202);
  const ready = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror(PARTNER, 'rl2', 'fb');
    return m?.state === 'ready' && m.remote ? m : undefined;
  });
  await settled(syncQueues(svc));
  // 25 h later, as far as the mirror knows: the stream URL Facebook gave with the live video is past its 24 h.
  await svc.rt.shows.updateMirror(PARTNER, 'rl2', 'fb', () => ready, (m) => {
    m.remote!.data['ingestExpiresAt'] = new Date(Date.now() - 3_600_000).toISOString();
    return true;
  });
  await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, new Date().toISOString()));
  const asked = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror(PARTNER, 'rl2', 'fb');
    return m?.state === 'action_required' ? m : undefined;
  });
  expect(asked.lastError).toContain('Re-link the live video');

  const r = await svc.api(`/v1/partners/${PARTNER}/shows/rl2/mirrors/fb`, { method: 'PUT', json: { externalId: ready.remote!.externalId } });
  expect(r.status).toBe(200);
  const live = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror(PARTNER, 'rl2', 'fb');
    return m?.state === 'live' && m.pins['p1']?.state === 'pinned' ? m : undefined;
  }, 30_000);
  expect(Date.parse(live.remote!.data['ingestExpiresAt'] ?? '')).toBeGreaterThan(Date.now() + 23 * 3_600_000);
  await settled(syncQueues(svc));
  const fx = (await sim.effects('facebook')).filter((e) => e.externalId === ready.remote!.externalId);
  expect(fx.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted']);
}, 60_000);

test('re-linking a live mirror to the same live video keeps its ingest until the sync has read the platform one again', async () => {
  const show = sampleShow('rl3', { state: 'live' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', show, new Date().toISOString()))).status).toBe(202);
  await mirrorWhere((m) => m.state === 'live', 'rl3');
  await settled(syncQueues(svc));
  const live = (await svc.rt.shows.getMirror(PARTNER, 'rl3', 'fb'))!;
  const platformIngest = live.remote!.ingest!;
  expect(platformIngest.streamKey).toBeTruthy();

  // The sync is held back (no workers): the relay's view of the mirror right after the link is what counts.
  await svc.stopWorkers();
  try {
    // What the mirror had before (say an older stream URL): kept until the platform's is read again.
    const older = { url: platformIngest.url, streamKey: 'older-key' };
    await svc.rt.shows.updateMirror(PARTNER, 'rl3', 'fb', () => live, (m) => {
      m.remote!.ingest = older;
      return true;
    });
    const r = await svc.api(`/v1/partners/${PARTNER}/shows/rl3/mirrors/fb`, { method: 'PUT', json: { externalId: live.remote!.externalId } });
    expect(r.status).toBe(200);
    const linked = (await svc.rt.shows.getMirror(PARTNER, 'rl3', 'fb'))!;
    // The relay pushes a ready/live mirror to mirrorIngest(m) (src/relay/relay.service.ts): still there.
    expect(mirrorIngest(linked, svc.rt.box)).toEqual(older);
    expect(linked.state).toBe('live');
    expect(linked.remote?.data['attach']).toBe('1');
    expect(linked.remote?.url).toBe(live.remote!.url);
  } finally {
    await svc.startWorkers();
  }

  // The link's sync read the live video again: Facebook's stream URL replaced the older one.
  const attached = await waitFor(async () => {
    const m = await svc.rt.shows.getMirror(PARTNER, 'rl3', 'fb');
    return m && m.remote?.data['attach'] === undefined ? m : undefined;
  });
  expect(attached.state).toBe('live');
  expect(attached.remote?.ingest).toEqual(platformIngest);
  expect(mirrorIngest(attached, svc.rt.box)).toEqual(platformIngest);
  await settled(syncQueues(svc));
  const fx = (await sim.effects('facebook')).filter((e) => e.externalId === live.remote!.externalId);
  expect(fx.map((e) => e.type)).toEqual(['show.created', 'show.started']);
}, 60_000);

test.each([
  ['ended', 'rl4'],
  ['cancelled', 'rl5'],
])('re-linking a mirror that is %s to the same live video keeps its url and platform data', async (how, showId) => {
  const show = sampleShow(showId, { state: 'live' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', show, new Date().toISOString()))).status).toBe(202);
  await mirrorWhere((m) => m.state === 'live', showId);
  expect((await sendEvent(svc, PARTNER, secret, showEvent(`show.${how}`, { ...show, state: how }, new Date().toISOString()))).status).toBe(202);
  await mirrorWhere((m) => m.state === how && m.url !== null, showId);
  await settled(syncQueues(svc));
  const over = (await svc.rt.shows.getMirror(PARTNER, showId, 'fb'))!;

  const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}/mirrors/fb`, { method: 'PUT', json: { externalId: over.remote!.externalId } });
  expect(r.status).toBe(200);
  expect(((await r.json()) as { state: string }).state).toBe(how);
  await settled(syncQueues(svc));
  const stored = await svc.rt.shows.getMirror(PARTNER, showId, 'fb');
  expect(stored?.state).toBe(how);
  expect(stored?.remote).toEqual(over.remote);
  expect(stored?.pins).toEqual(over.pins);
}, 60_000);
