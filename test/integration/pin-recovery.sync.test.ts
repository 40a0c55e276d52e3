/**
 * A re-pin whose attempt died before its message reached the platform, end to end: real redis-server,
 * the real SyncService (its pin episodes and their markers) and the YouTube / Facebook adapters, the
 * simulators behind a proxy that drops the re-pin's POST (the connection is reset, nothing is posted:
 * the run cannot tell whether it was). The retry recovers the uncertain step. The old lookup took any
 * message with the product's link from the last 10 minutes: it adopted the first episode's message and
 * the re-pin was never posted. It now looks for the episode's own tag, finds nothing, and posts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { startLateProxy, type LateProxy } from '../helpers/late-proxy.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';

const TIMEOUT_MS = 400;
const SETTLE_MS = 300;

let svc: TestService;
let sim: TestSim;
let proxy: LateProxy;
let secret: string;

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { requestsPerWindow: null, quotaPerDay: null, simulatedEncoder: 1, streamActivationMs: 0 });
  await sim.control('PUT', '/_sim/facebook/limits', { requestsPerWindow: null });
  proxy = await startLateProxy(sim.url);
  // no workers: the test plays the runs, as BullMQ would
  svc = await startService({ env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS), PLATFORM_SETTLE_MS: String(SETTLE_MS) } });
  secret = await createPartner(svc, 'repin');
});
afterAll(async () => {
  await svc?.close();
  await proxy?.close();
  await sim?.close();
});

/** Runs the job as BullMQ would (a new token each time, waiting each delay) until it is done. */
async function converge(job: { partnerId: string; showId: string; targetId: string }, name: string): Promise<SyncOutcome> {
  let outcome = await svc.rt.syncService.sync(job, { token: `${name}-0` });
  for (let i = 1; outcome.kind === 'delay' && i < 30; i++) {
    await sleep(outcome.delayMs);
    outcome = await svc.rt.syncService.sync(job, { token: `${name}-${i}` });
  }
  return outcome;
}

const CASES = [
  { platform: 'youtube' as const, post: (method: string, path: string) => method === 'POST' && path === '/youtube/youtube/v3/liveChat/messages' },
  { platform: 'facebook' as const, post: (method: string, path: string) => method === 'POST' && /^\/facebook\/v[\d.]+\/\d+\/comments$/.test(path) },
];

test.each(CASES)('$platform: a re-pin of the same product whose post never went out is posted (the earlier episode\'s message is not adopted)', async ({ platform, post }) => {
  const targetId = `t-${platform}`;
  // ?verify=false: the credentials check (a platform call through the proxy) is not what this test is
  // about, and on a loaded CI machine it timed out into a 503 before the test began
  const r = await svc.api('/v1/partners/repin/targets?verify=false', {
    json: { id: targetId, platform, name: platform, credentials: CREDENTIALS[platform], baseUrl: `${proxy.url}/${platform}`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const showId = `show-repin-${platform}`;
  const job = { partnerId: 'repin', showId, targetId };
  const event = async (type: string, minute: number): Promise<void> => {
    const at = `2026-11-24T18:${String(minute).padStart(2, '0')}:00Z`;
    const body = type === 'show.live' ? showEvent('show.live', sampleShow(showId, { state: 'live' }), at) : { type, occurredAt: at, data: { showId, productId: 'p1' } };
    expect((await sendEvent(svc, 'repin', secret, body)).status).toBe(202);
  };
  const posted = async (linkUrl: string | undefined) => (await sim.effects(platform)).filter((e) => e.type === 'message.posted' && e.url === linkUrl);

  await event('show.live', 0);
  expect(await converge(job, 'live')).toEqual({ kind: 'done', state: 'live' });
  await event('product.pinned', 1);
  expect(await converge(job, 'pin1')).toEqual({ kind: 'done', state: 'live' });
  const first = (await svc.rt.shows.getMirror('repin', showId, targetId))!.pins['p1']!;
  expect(first).toMatchObject({ state: 'pinned', episode: 1 });
  await event('product.unpinned', 2);
  expect(await converge(job, 'unpin')).toEqual({ kind: 'done', state: 'live' });

  // Pinned again a minute later: episode 2, the same tracked link. Its post never reaches the platform.
  await event('product.pinned', 3);
  proxy.dropNext(post);
  expect(await converge(job, 'pin2')).toEqual({ kind: 'done', state: 'live' });
  expect(proxy.dropped).toContainEqual(expect.objectContaining({ method: 'POST' }));
  proxy.dropped.length = 0;

  const second = (await svc.rt.shows.getMirror('repin', showId, targetId))!.pins['p1']!;
  expect(second).toMatchObject({ state: 'pinned', episode: 2, linkUrl: first.linkUrl });
  expect(second.ref).not.toBe(first.ref);
  expect(await posted(first.linkUrl)).toHaveLength(2);
}, 60_000);
