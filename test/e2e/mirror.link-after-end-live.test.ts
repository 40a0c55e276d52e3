/**
 * A mirror linked after its show was over (PUT …/mirrors/{t} {"externalId": <a hand-made show>}) only
 * records the link (mirror.link-after-end): nothing is ended or changed on that platform show. Should
 * the partner's show then be live again (a later `show.live` wins, contract §3), that platform show is
 * mirrored like any linked one: the mirror goes live and pins, instead of `action_required` saying the
 * platform show "has ended and cannot start again" (false: nothing ended it) with its pins failed and
 * a re-link of the same id a no-op. Likewise a mirror over before a platform show was made for it: the
 * target creates shows by API, so the show live again is created and mirrored. Real service and
 * workers, real Redis, the Bambuser simulator over HTTP.
 */
import { sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, simTarget, waitForMirror, type MirrorView as BaseMirrorView } from '../helpers/mirrors.js';

const P = 'lael';
let svc: TestService;
let sim: TestSim;
let secret: string;
const next = eventClock();

interface MirrorView extends BaseMirrorView {
  pins: { productId: string; state: string }[];
}

const mirrorWhere = (showId: string, pred: (m: MirrorView) => boolean): Promise<MirrorView> => waitForMirror(svc, P, showId, pred, { timeoutMs: 30_000 });

// Bambuser's window (5 requests per 10 s) lifted on the simulator and in our limiter (the target's
// rateLimit; PLATFORM_LIMITS keeps to 5 per 11 s): each test's syncs otherwise waited ~10 s for it, for
// nothing this file tests.
simRigPerFile(P, (s) => [simTarget(s, 'bambuser', { id: 'bb', name: 'BB', commissionRateBps: 100, rateLimit: { requests: 10_000, windowMs: 1000 } })], (rig) => ({ sim, svc, secret } = rig), {
  prepare: (s) => s.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null }),
  timeoutMs: 60_000,
});

test('linked after the end, then live again: the hand-made show is mirrored (live, pinned), not action_required', async () => {
  const show = sampleShow('s1', { scheduledAt: new Date(Date.now() + 3600_000).toISOString() });
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', show, next()))).status).toBe(202);
  await mirrorWhere('s1', (m) => m.state === 'ready' && m.externalId !== null);
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...show, state: 'ended' }, next()))).status).toBe(202);
  await mirrorWhere('s1', (m) => m.state === 'ended');
  await settled(syncQueues(svc));

  const made = (await sim.control('POST', '/_sim/bambuser/shows', { title: 'Made by hand' })) as { externalId: string };
  const r = await svc.api(`/v1/partners/${P}/shows/s1/mirrors/bb`, { method: 'PUT', json: { externalId: made.externalId } });
  expect(r.status).toBe(200);
  await mirrorWhere('s1', (m) => m.externalId === made.externalId && m.state === 'ended');
  await settled(syncQueues(svc));

  expect((await sendEvent(svc, P, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, next()))).status).toBe(202);
  // The first state it leaves `ended` for is live (ready first at most), never action_required.
  const moved = await mirrorWhere('s1', (m) => m.state !== 'ended' && m.state !== 'ready');
  expect(moved.state).toBe('live');
  const pinned = await mirrorWhere('s1', (m) => m.state !== 'live' || m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));
  expect(pinned.state).toBe('live');
  expect(pinned.pins).toEqual([expect.objectContaining({ productId: 'p1', state: 'pinned' })]);
  expect(pinned.externalId).toBe(made.externalId);
  await settled(syncQueues(svc));
  // Nothing ended or took down the hand-made show.
  const fx = (await sim.effects('bambuser')).filter((e) => e.externalId === made.externalId);
  expect(fx.map((e) => e.type).filter((t) => /end|delete|cancel/.test(t))).toEqual([]);

  // Over again: the mirror follows (it went live on that show, so it is ended like any live mirror).
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...show, state: 'ended' }, next()))).status).toBe(202);
  await mirrorWhere('s1', (m) => m.state === 'ended');
});

test('ended before its mirror had a platform show, then live again: the show is created by API and mirrored, not action_required', async () => {
  const show = sampleShow('s2');
  expect((await sendEvent(svc, P, secret, showEvent('show.ended', { ...show, state: 'ended' }, next()))).status).toBe(202);
  const ended = await mirrorWhere('s2', (m) => m.state === 'ended');
  expect(ended.externalId).toBeNull();
  await settled(syncQueues(svc));

  expect((await sendEvent(svc, P, secret, showEvent('show.live', { ...show, state: 'live', pinnedProductIds: ['p1'] }, next()))).status).toBe(202);
  const moved = await mirrorWhere('s2', (m) => m.state === 'live' || m.state === 'action_required' || m.state === 'failed');
  expect(moved.state).toBe('live');
  expect(moved.externalId).not.toBeNull();
  const pinned = await mirrorWhere('s2', (m) => m.state !== 'live' || m.pins.some((p) => p.productId === 'p1' && p.state === 'pinned'));
  expect(pinned.state).toBe('live');
});
