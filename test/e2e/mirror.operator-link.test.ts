/**
 * Platforms whose API cannot create a live show (TikTok Shop, Whatnot), end to end with the real
 * service and workers: the mirror waits in `action_required` with instructions, an operator creates
 * the show by hand on the platform (simulator) and links it over REST, and from then on the mirror
 * follows the partner's show: live, pins mirrored once (TikTok: a promotion link; Whatnot: the product
 * added to the show's lineup, and removed again on unpin). The platforms' signed order webhooks are
 * accepted at POST /v1/platform-webhooks/{targetId}.
 */
import { randomBytes } from 'node:crypto';
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { SimEffectView, TestSim } from '../helpers/sim.js';
import { simRigPerFile, simTarget, waitForMirror, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { mirrorIngest } from '../../src/relay/relay.service.js';

const PARTNER = 'olp';
const TIKTOK_CREDENTIALS = CREDENTIALS.tiktok as { appKey: string; appSecret: string; refreshToken: string; shopCipher: string };
const WHATNOT_WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;

let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView extends BaseMirrorView {
  platform: string;
  pins: { productId: string; state: string; linkUrl: string | null }[];
}

async function mirror(showId: string, targetId: string): Promise<MirrorView | undefined> {
  const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}`);
  if (r.status !== 200) return undefined;
  return ((await r.json()) as { mirrors: MirrorView[] }).mirrors.find((m) => m.targetId === targetId);
}

const mirrorWhere = (showId: string, targetId: string, pred: (m: MirrorView) => boolean): Promise<MirrorView> => waitForMirror(svc, PARTNER, showId, pred, { targetId });

async function link(showId: string, targetId: string, externalId: string): Promise<void> {
  const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId } });
  expect(r.status).toBe(200);
}

const only = (fx: SimEffectView[], type: string, externalId: string, productId: string): SimEffectView[] =>
  fx.filter((e) => e.type === type && e.externalId === externalId && e.productId === productId);

simRigPerFile(
  PARTNER,
  (s) => [
    simTarget(s, 'tiktok', { id: 'tt1', name: 'TikTok Shop', credentials: TIKTOK_CREDENTIALS, commissionRateBps: 1000 }),
    simTarget(s, 'whatnot', { id: 'wn1', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken!, webhookSecret: WHATNOT_WEBHOOK_SECRET }, commissionRateBps: 800 }),
  ],
  (rig) => ({ sim, svc, secret } = rig),
);

test('action_required until linked by hand, then live, pins mirrored once; Whatnot unpins', async () => {
  const show = sampleShow('s1');
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);

  // 1. Neither platform can create the show: the mirror says what the operator must do.
  for (const [targetId, platform] of [['tt1', 'tiktok'], ['wn1', 'whatnot']] as const) {
    const m = await mirrorWhere('s1', targetId, (x) => x.state === 'action_required');
    expect(m.externalId).toBeNull();
    expect(m.lastError).toContain(`create the show in the ${platform} app`);
    expect(m.lastError).toContain(`PUT /v1/partners/${PARTNER}/shows/s1/mirrors/${targetId}`);
  }
  expect((await sim.effects('tiktok')).filter((e) => e.type === 'show.created')).toEqual([]);
  expect((await sim.effects('whatnot')).filter((e) => e.type === 'show.created')).toEqual([]);

  // 2. The operator goes live by hand in each app and links the ids.
  const { externalId: roomId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'Holiday glow (TikTok LIVE)' })) as { externalId: string };
  const { externalId: wnShowId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Holiday glow (Whatnot)' })) as { externalId: string };
  await link('s1', 'tt1', roomId);
  await link('s1', 'wn1', wnShowId);
  const tt = await mirrorWhere('s1', 'tt1', (x) => x.state === 'ready');
  expect(tt.externalId).toBe(roomId);
  expect(tt.lastError).toBeNull();
  // Whatnot's attach reads the show: the watch URL appears once the worker has done it.
  const wn = await mirrorWhere('s1', 'wn1', (x) => x.state === 'ready' && x.url !== null);
  expect(wn.externalId).toBe(wnShowId);
  expect(wn.url).toBe(`https://www.whatnot.com/live/${wnShowId}`);

  // 3. The partner's show goes live: both mirrors follow (no lifecycle API to call), then a pin.
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  await mirrorWhere('s1', 'tt1', (x) => x.state === 'live');
  await mirrorWhere('s1', 'wn1', (x) => x.state === 'live');
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 's1', productId: 'p1' } })).status).toBe(202);

  const ttPinned = await mirrorWhere('s1', 'tt1', (x) => x.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));
  expect(ttPinned.pins.find((p) => p.productId === 'p1')?.linkUrl).toMatch(new RegExp(`^${svc.url}/l/`));
  await mirrorWhere('s1', 'wn1', (x) => x.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));
  await waitFor(async () => only(await sim.effects('tiktok'), 'product.pinned', roomId, 'p1').length === 1);
  await waitFor(async () => only(await sim.effects('whatnot'), 'product.pinned', wnShowId, 'p1').length === 1);

  // 4. Unpin: Whatnot takes the product out of the lineup; TikTok has nothing to take back.
  expect((await sendEvent(svc, PARTNER, secret, { type: 'product.unpinned', occurredAt: '2026-11-24T18:10:00Z', data: { showId: 's1', productId: 'p1' } })).status).toBe(202);
  await mirrorWhere('s1', 'wn1', (x) => x.pins.some((p) => p.productId === 'p1' && p.state === 'unpinned'));
  await mirrorWhere('s1', 'tt1', (x) => x.pins.some((p) => p.productId === 'p1' && p.state === 'unpinned'));
  await waitFor(async () => only(await sim.effects('whatnot'), 'product.unpinned', wnShowId, 'p1').length === 1);

  // Settled (no sync job left to run): every side effect happened exactly once.
  await settled(syncQueues(svc));
  const ttFx = await sim.effects('tiktok');
  const wnFx = await sim.effects('whatnot');
  expect(only(ttFx, 'product.pinned', roomId, 'p1')).toHaveLength(1);
  expect(ttFx.filter((e) => e.type === 'product.unpinned')).toEqual([]);
  expect(only(wnFx, 'product.pinned', wnShowId, 'p1')).toHaveLength(1);
  expect(only(wnFx, 'product.unpinned', wnShowId, 'p1')).toHaveLength(1);

  // 5. The show ends: the mirrors end without calling anything (the hosts end the lives in the apps).
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.ended', { ...show, state: 'ended' }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  const ttEnded = await mirrorWhere('s1', 'tt1', (x) => x.state === 'ended');
  const wnEnded = await mirrorWhere('s1', 'wn1', (x) => x.state === 'ended');
  expect(ttEnded.lastError).toBeNull();
  expect(wnEnded.lastError).toBeNull();
});

test("each platform's signed order webhook is verified, looked up and attributed to the linked show", async () => {
  const show = sampleShow('s2');
  await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, '2026-11-25T17:00:00Z'));
  await mirrorWhere('s2', 'tt1', (x) => x.state === 'action_required');
  const { externalId: roomId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'Orders room' })) as { externalId: string };
  const { externalId: wnShowId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Orders show' })) as { externalId: string };
  await link('s2', 'tt1', roomId);
  await link('s2', 'wn1', wnShowId);
  // live = attached and indexed: orders naming these ids now find show s2 (attribution rule 2)
  await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-25T18:00:00Z'));
  await mirrorWhere('s2', 'tt1', (x) => x.state === 'live');
  await mirrorWhere('s2', 'wn1', (x) => x.state === 'live');

  // TikTok signs with the app's key and secret (the simulator learns them when the app authorises; named here explicitly).
  await sim.control('PUT', '/_sim/tiktok/webhook', { url: `${svc.url}/v1/platform-webhooks/tt1`, secret: `${TIKTOK_CREDENTIALS.appKey}:${TIKTOK_CREDENTIALS.appSecret}` });
  await sim.control('PUT', '/_sim/whatnot/webhook', { url: `${svc.url}/v1/platform-webhooks/wn1`, secret: WHATNOT_WEBHOOK_SECRET });
  await sim.control('POST', '/_sim/tiktok/orders', { externalId: roomId, productId: 'p1', total: { amount: 1800, currency: 'USD' } });
  await sim.control('POST', '/_sim/whatnot/orders', { externalId: wnShowId, productId: 'p1', total: { amount: 2500, currency: 'USD' } });
  const deliveries = async (p: string): Promise<{ status?: number; error?: string }[]> => ((await sim.control('GET', `/_sim/${p}/webhook`)) as { deliveries: { status?: number; error?: string }[] }).deliveries;
  expect((await deliveries('tiktok')).map((d) => d.status ?? d.error)).toEqual([200]);
  expect((await deliveries('whatnot')).map((d) => d.status ?? d.error)).toEqual([200]);

  type Row = { showId: string; targetId: string; currency: string; orders: number; grossAmount: number; commission: number };
  const rows = await waitFor(async () => {
    const r = await svc.api(`/v1/partners/${PARTNER}/attribution?showId=s2`);
    const body = (await r.json()) as { totals: Row[] };
    return body.totals.length >= 2 ? body.totals : undefined;
  });
  const row = (t: string): Row | undefined => rows.find((x) => x.targetId === t);
  expect(row('tt1')).toMatchObject({ showId: 's2', currency: 'USD', orders: 1, grossAmount: 1800, commission: 180 });
  expect(row('wn1')).toMatchObject({ showId: 's2', currency: 'USD', orders: 1, grossAmount: 2500, commission: 200 });

  // A forged delivery is refused.
  const forged = await fetch(`${svc.url}/v1/platform-webhooks/tt1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'f'.repeat(64) },
    body: JSON.stringify({ type: 1, data: { order_id: 'x' } }),
  });
  expect(forged.status).toBe(401);
});

test('a hand-linked ingest must be printable ASCII: a control character (NUL) in the stream key or URL is a 400, nothing stored', async () => {
  const before = await mirror('s1', 'tt1');
  for (const ingest of [
    { url: 'rtmp://push.example.com/live', streamKey: 'key\u0000tail' },
    { url: 'rtmp://push.example.com/li\u0001ve', streamKey: 'key' },
    { url: 'rtmp://push.example.com/live', streamKey: 'key\ttab' },
  ]) {
    const r = await svc.api(`/v1/partners/${PARTNER}/shows/s1/mirrors/tt1`, { method: 'PUT', json: { externalId: 'other-live', ingest } });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  }
  expect(await mirror('s1', 'tt1')).toEqual(before);
});

test('re-linking the same TikTok room keeps the ingest linked with it unless the link gives a new one', async () => {
  const show = sampleShow('s3', { state: 'live' });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', show, new Date().toISOString()))).status).toBe(202);
  await mirrorWhere('s3', 'tt1', (x) => x.state === 'action_required');
  const { externalId: roomId } = (await sim.control('POST', '/_sim/tiktok/shows', { title: 'Relinked (TikTok LIVE)' })) as { externalId: string };
  const first = { url: 'rtmp://127.0.0.1:1935/live', streamKey: 'tt-key-1' };
  const put = (body: unknown): Promise<Response> => svc.api(`/v1/partners/${PARTNER}/shows/s3/mirrors/tt1`, { method: 'PUT', json: body });
  const ingestNow = async (): Promise<unknown> => {
    const m = await svc.rt.shows.getMirror(PARTNER, 's3', 'tt1');
    return m ? mirrorIngest(m, svc.rt.box) : undefined;
  };
  expect((await put({ externalId: roomId, ingest: first })).status).toBe(200);
  await mirrorWhere('s3', 'tt1', (x) => x.state === 'live');
  await settled(syncQueues(svc));
  expect(await ingestNow()).toEqual(first);

  // The same room again without an ingest (a repeated link): the relay keeps pushing where it did.
  expect((await put({ externalId: roomId })).status).toBe(200);
  expect(await ingestNow()).toEqual(first);
  await settled(syncQueues(svc));
  expect((await svc.rt.shows.getMirror(PARTNER, 's3', 'tt1'))?.state).toBe('live');
  expect(await ingestNow()).toEqual(first);

  // With a new ingest (the app showed another stream key): that one from now on.
  const second = { url: 'rtmp://127.0.0.1:1935/live', streamKey: 'tt-key-2' };
  expect((await put({ externalId: roomId, ingest: second })).status).toBe(200);
  expect(await ingestNow()).toEqual(second);
  await settled(syncQueues(svc));
  expect(await ingestNow()).toEqual(second);
});

test("a platform show another show's mirror has is refused for a second show (409, nothing stored): its sales went to whichever synced last", async () => {
  for (const id of ['dup-a', 'dup-b']) expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow(id), '2026-11-26T17:00:00Z'))).status).toBe(202);
  const { externalId: wnShowId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'One Whatnot show' })) as { externalId: string };
  await link('dup-a', 'wn1', wnShowId);
  await mirrorWhere('dup-a', 'wn1', (x) => x.state === 'ready' && x.url !== null);
  await settled(syncQueues(svc)); // dup-a's sync has indexed the Whatnot show
  await mirrorWhere('dup-b', 'wn1', (x) => x.state === 'action_required');

  const r = await svc.api(`/v1/partners/${PARTNER}/shows/dup-b/mirrors/wn1`, { method: 'PUT', json: { externalId: wnShowId } });
  expect(r.status).toBe(409);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await r.json()) as { detail: string }).detail).toContain('already the mirror of show dup-a on target wn1');
  expect(await mirror('dup-b', 'wn1')).toMatchObject({ state: 'action_required', externalId: null });
  // The show that has it links it again (200), and the second show links a platform show of its own.
  await link('dup-a', 'wn1', wnShowId);
  const { externalId: other } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Another Whatnot show' })) as { externalId: string };
  await link('dup-b', 'wn1', other);
});

test('the second show is refused also before the first show\'s sync has run (the link writes the index itself); a stale entry refuses nothing', async () => {
  for (const id of ['dup-c', 'dup-d']) expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', sampleShow(id), '2026-11-26T17:00:00Z'))).status).toBe(202);
  await settled(syncQueues(svc));
  const { externalId: wnShowId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'A Whatnot show linked twice at once' })) as { externalId: string };
  const { externalId: another } = (await sim.control('POST', '/_sim/whatnot/shows', { title: "dup-c's second Whatnot show" })) as { externalId: string };
  const queues = syncQueues(svc);
  await Promise.all(queues.map((q) => q.pause())); // no sync runs between the two links
  try {
    expect((await svc.api(`/v1/partners/${PARTNER}/shows/dup-c/mirrors/wn1`, { method: 'PUT', json: { externalId: wnShowId } })).status).toBe(200);
    const r = await svc.api(`/v1/partners/${PARTNER}/shows/dup-d/mirrors/wn1`, { method: 'PUT', json: { externalId: wnShowId } });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { detail: string }).detail).toContain('already the mirror of show dup-c on target wn1');
    // dup-c is linked to another Whatnot show: the index entry naming it for the first one is stale
    // (its mirror no longer has that show) and refuses nothing; dup-d links the first one.
    await link('dup-c', 'wn1', another);
    await link('dup-d', 'wn1', wnShowId);
  } finally {
    await Promise.all(queues.map((q) => q.resume()));
  }
  await mirrorWhere('dup-c', 'wn1', (x) => x.state === 'ready' && x.url !== null && x.externalId === another);
  await mirrorWhere('dup-d', 'wn1', (x) => x.state === 'ready' && x.url !== null && x.externalId === wnShowId);
});
