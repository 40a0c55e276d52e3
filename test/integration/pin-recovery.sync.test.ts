/**
 * A re-pin whose attempt died before its message reached the platform, end to end: real redis-server,
 * the real SyncService (its pin episodes and their markers) and the YouTube / Facebook adapters, the
 * simulators behind a proxy that drops the re-pin's POST (the connection is reset, nothing is posted:
 * the run cannot tell whether it was). The retry recovers the uncertain step. The old lookup took any
 * message with the product's link from the last 10 minutes: it adopted the first episode's message and
 * the re-pin was never posted. It now looks for the episode's own tag, finds nothing, and posts.
 */
import { CREDENTIALS } from '../helpers/platforms.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';
import { useLateRig } from '../helpers/late-rig.js';

const TIMEOUT_MS = 400;
const SETTLE_MS = 300;

// no workers: the test plays the runs, as BullMQ would
const rig = useLateRig({
  limits: { youtube: { requestsPerWindow: null, quotaPerDay: null, simulatedEncoder: 1, streamActivationMs: 0 }, facebook: { requestsPerWindow: null } },
  env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS), PLATFORM_SETTLE_MS: String(SETTLE_MS) },
  partnerId: 'repin',
});

const CASES = [
  { platform: 'youtube' as const, post: (method: string, path: string) => method === 'POST' && path === '/youtube/youtube/v3/liveChat/messages' },
  { platform: 'facebook' as const, post: (method: string, path: string) => method === 'POST' && /^\/facebook\/v[\d.]+\/\d+\/comments$/.test(path) },
];

test.each(CASES)('$platform: a re-pin of the same product whose post never went out is posted (the earlier episode\'s message is not adopted)', async ({ platform, post }) => {
  const targetId = `t-${platform}`;
  // ?verify=false: the credentials check (a platform call through the rig.proxy) is not what this test is
  // about, and on a loaded CI machine it timed out into a 503 before the test began
  const r = await rig.svc.api('/v1/partners/repin/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${rig.proxy.url}/${platform}`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const showId = `show-repin-${platform}`;
  const job = { partnerId: 'repin', showId, targetId };
  const event = async (type: string, minute: number): Promise<void> => {
    const at = `2026-11-24T18:${String(minute).padStart(2, '0')}:00Z`;
    const body = type === 'show.live' ? showEvent('show.live', sampleShow(showId, { state: 'live' }), at) : { type, occurredAt: at, data: { showId, productId: 'p1' } };
    expect((await sendEvent(rig.svc, 'repin', rig.secret, body)).status).toBe(202);
  };
  const posted = async (linkUrl: string | undefined) => (await rig.sim.effects(platform)).filter((e) => e.type === 'message.posted' && e.url === linkUrl);

  await event('show.live', 0);
  expect(await rig.converge(job, 'live')).toEqual({ kind: 'done', state: 'live' });
  await event('product.pinned', 1);
  expect(await rig.converge(job, 'pin1')).toEqual({ kind: 'done', state: 'live' });
  const first = (await rig.svc.rt.shows.getMirror('repin', showId, targetId))!.pins['p1']!;
  expect(first).toMatchObject({ state: 'pinned', episode: 1 });
  await event('product.unpinned', 2);
  expect(await rig.converge(job, 'unpin')).toEqual({ kind: 'done', state: 'live' });

  // Pinned again a minute later: episode 2, the same tracked link. Its post never reaches the platform.
  await event('product.pinned', 3);
  rig.proxy.dropNext(post);
  expect(await rig.converge(job, 'pin2')).toEqual({ kind: 'done', state: 'live' });
  expect(rig.proxy.dropped).toContainEqual(expect.objectContaining({ method: 'POST' }));
  rig.proxy.dropped.length = 0;

  const second = (await rig.svc.rt.shows.getMirror('repin', showId, targetId))!.pins['p1']!;
  expect(second).toMatchObject({ state: 'pinned', episode: 2, linkUrl: first.linkUrl });
  expect(second.ref).not.toBe(first.ref);
  expect(await posted(first.linkUrl)).toHaveLength(2);
}, 60_000);
