/**
 * A show that goes live again after it ended (a `show.live` with a later `occurredAt` than the
 * `show.ended` wins, contract §3). No platform starts an ended broadcast again, so the mirror cannot
 * follow: it says so (`action_required`, a lastError naming what the operator can do) instead of
 * staying `ended` while the show is live, and the show's pins on it are `failed`, not `pending`
 * forever. Nothing more is sent to the ended broadcast. Linking a new platform show mirrors the show
 * again; once the show is over again the mirror is back to `ended`. YouTube (lifecycle by API) and
 * Bambuser (no lifecycle) simulators, real HTTP and Redis.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { simRigPerFile, simTarget, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';

const P = 'lae';
/** The Bambuser target's limit: Bambuser's own (5 requests per 11 s, PLATFORM_LIMITS) is not under test here. */
const NO_LIMIT = { requests: 10_000, windowMs: 1000 };
let svc: TestService;
let sim: TestSim;
let secret: string;

interface MirrorView extends BaseMirrorView {
  pins: { productId: string; state: string; linkUrl: string | null }[];
}

async function mirrors(showId: string): Promise<MirrorView[]> {
  const r = await svc.api(`/v1/partners/${P}/shows/${showId}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { mirrors: MirrorView[] }).mirrors;
}

async function send(body: unknown): Promise<void> {
  expect((await sendEvent(svc, P, secret, body)).status).toBe(202);
}

async function allIn(showId: string, pred: (m: MirrorView) => boolean): Promise<MirrorView[]> {
  return waitFor(async () => {
    const ms = await mirrors(showId);
    return ms.length === 2 && ms.every(pred) ? ms : undefined;
  }, 60_000);
}

simRigPerFile(
  P,
  (s) => [simTarget(s, 'youtube', { id: 'yt', name: 'YT', commissionRateBps: 100 }), simTarget(s, 'bambuser', { id: 'bb', name: 'BB', commissionRateBps: 100, rateLimit: NO_LIMIT })],
  (rig) => ({ sim, svc, secret } = rig),
  {
    // Bambuser's window (5 requests per 10 s) lifted here and in our limiter (NO_LIMIT): the second
    // test's syncs otherwise waited ~10 s for it twice, for nothing this file tests.
    prepare: async (s) => {
      await s.control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1, streamActivationMs: 0 });
      await s.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null });
    },
    timeoutMs: 60_000,
  },
);

test('live again after ended: the mirror asks for action, its pins are failed, nothing is sent to the ended broadcast', async () => {
  const show = sampleShow('s1');
  await send(showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, '2026-11-24T18:00:00Z'));
  await allIn('s1', (m) => m.state === 'live' && m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));
  await send(showEvent('show.ended', { ...show, state: 'ended', pinnedProductIds: ['p1'] }, '2026-11-24T19:00:00Z'));
  const ended = await allIn('s1', (m) => m.state === 'ended');
  await settled(syncQueues(svc));
  const before = { youtube: (await sim.effects('youtube')).length, bambuser: (await sim.effects('bambuser')).length };

  // The partner's show is live again (later occurredAt), with another product pinned.
  await send(showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1', 'p2'] }, '2026-11-24T19:30:00Z'));
  const again = await allIn('s1', (m) => m.state === 'action_required');
  await settled(syncQueues(svc));
  for (const m of again) {
    expect(m.externalId).toBe(ended.find((e) => e.targetId === m.targetId)!.externalId);
    expect(m.lastError).toMatch(/live again after it ended/);
    expect(m.lastError).toMatch(/cannot start a show again once it is over/);
    expect(m.lastError).toContain(`PUT /v1/partners/${P}/shows/s1/mirrors/${m.targetId}`);
    // Never pending for good: nothing will pin them on this mirror.
    expect(m.pins.map((p) => [p.productId, p.state])).toEqual([
      ['p1', 'failed'],
      ['p2', 'failed'],
    ]);
  }
  // Stored so, and told to the partner's mirror.updated the same way (the mirror document itself).
  expect((await svc.rt.shows.getMirror(P, 's1', 'yt'))!.pins['p2']?.state).toBe('failed');
  // Nothing was sent to the platforms for the ended broadcasts.
  expect((await sim.effects('youtube')).length).toBe(before.youtube);
  expect((await sim.effects('bambuser')).length).toBe(before.bambuser);

  // A product the partner takes back is no longer reported as failed.
  await send({ type: 'product.unpinned', occurredAt: '2026-11-24T19:31:00Z', data: { showId: 's1', productId: 'p2' } });
  await allIn('s1', (m) => m.state === 'action_required' && !m.pins.some((p) => p.productId === 'p2'));

  // Over again: the mirrors are back to ended, without an error.
  await send(showEvent('show.ended', { ...show, state: 'ended', pinnedProductIds: [] }, '2026-11-24T20:00:00Z'));
  const over = await allIn('s1', (m) => m.state === 'ended');
  for (const m of over) expect(m.lastError).toBeNull();
  await settled(syncQueues(svc));
  expect((await sim.effects('youtube')).length).toBe(before.youtube);
  expect((await sim.effects('bambuser')).length).toBe(before.bambuser);
}, 180_000);

test('live again after ended: a new show linked by the operator takes the show live and pins it', async () => {
  const show = sampleShow('s2');
  await send(showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
  await allIn('s2', (m) => m.state === 'live');
  await send(showEvent('show.ended', { ...show, state: 'ended' }, '2026-11-24T19:00:00Z'));
  const ended = await allIn('s2', (m) => m.state === 'ended');
  const old = ended.find((m) => m.targetId === 'bb')!.externalId!;
  await send(showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, '2026-11-24T19:30:00Z'));
  await allIn('s2', (m) => m.state === 'action_required');

  // Re-linking the ended show changes nothing: it cannot go live again.
  const same = await svc.api(`/v1/partners/${P}/shows/s2/mirrors/bb`, { method: 'PUT', json: { externalId: old } });
  expect(same.status).toBe(200);
  expect(((await same.json()) as { state: string }).state).toBe('action_required');

  // A new show made by hand in Bambuser, linked: the mirror goes live on it and pins p1 there.
  const made = (await sim.control('POST', '/_sim/bambuser/shows', { title: 'Second airing' })) as { externalId: string };
  const r = await svc.api(`/v1/partners/${P}/shows/s2/mirrors/bb`, { method: 'PUT', json: { externalId: made.externalId } });
  expect(r.status).toBe(200);
  const bb = await waitFor(async () => {
    const m = (await mirrors('s2')).find((x) => x.targetId === 'bb')!;
    return m.state === 'live' && m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned') ? m : undefined;
  }, 60_000);
  expect(bb.externalId).toBe(made.externalId);
  expect(bb.lastError).toBeNull();
  const fx = (await sim.effects('bambuser')).filter((e) => e.externalId === made.externalId && e.type === 'product.pinned');
  expect(fx.map((e) => e.productId)).toEqual(['p1']);
  expect((await sim.effects('bambuser')).filter((e) => e.externalId === old && e.type === 'product.pinned')).toEqual([]);
  // The mirror that was not linked still asks for action.
  expect((await mirrors('s2')).find((x) => x.targetId === 'yt')!.state).toBe('action_required');
}, 180_000);
