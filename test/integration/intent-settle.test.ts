/**
 * The 58 doubled YouTube pin chat messages of the 1,000-show scale-out run (issue 12 §2), at the
 * smallest level that shows them.
 *
 * A run's `POST liveChat/messages` is cut off at its attempt deadline while the platform has not yet
 * acted on it; the platform acts on it later — here `LAG_MS` after it arrived, which is more than one
 * platform timeout past the attempt's `until`. Before the fix the retry waited exactly one
 * PLATFORM_TIMEOUT_MS past `until` (a bound taken from OUR client's timeout, which says nothing about
 * how late a platform acts on a request it received), listed the chat, found nothing and posted the
 * message a second time. The wait is now PLATFORM_SETTLE_MS, the platform's bound, set here above
 * the lag: the retry then finds the late message by its link and adopts it.
 *
 * Real redis-server, the real SyncService and YouTube adapter, the YouTube simulator behind a proxy
 * that hands it the first chat message `LAG_MS` after it arrived (whether or not the client still waits).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SyncOutcome } from '../../src/mirror/sync.service.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { sampleShow, sendEvent, showEvent } from '../helpers/service.js';
import { useLateRig } from '../helpers/late-rig.js';

/** The attempt may send for 2 × 400 ms; the platform acts on the first message 2.5 s after it arrived. */
const TIMEOUT_MS = 400;
const LAG_MS = 2_500;
const SETTLE_MS = 4_000;

// no workers: the test plays the runs, as BullMQ would
const rig = useLateRig({
  limits: { youtube: { requestsPerWindow: null, quotaPerDay: null, simulatedEncoder: 1, streamActivationMs: 0 } },
  env: { PLATFORM_TIMEOUT_MS: String(TIMEOUT_MS), PLATFORM_SETTLE_MS: String(SETTLE_MS) },
  partnerId: 'settle',
});

/** Runs the job as BullMQ would (a new token each time, waiting each delay) until it is done. */
async function converge(job: { partnerId: string; showId: string; targetId: string }, first: SyncOutcome, name: string): Promise<SyncOutcome> {
  let outcome = first;
  for (let i = 0; outcome.kind === 'delay' && i < 30; i++) {
    if (i > 0) await sleep(outcome.delayMs);
    outcome = await rig.svc.rt.syncService.sync(job, { token: `${name}${i}` });
  }
  return outcome;
}

test('a pin message the platform acts on later than one platform timeout after the attempt deadline is adopted, not posted twice', async () => {
  const targetId = 'yt';
  const r = await rig.svc.api('/v1/partners/settle/targets?verify=false', {
    json: { id: targetId, platform: 'youtube', name: 'YouTube', credentials: CREDENTIALS['youtube'], baseUrl: `${rig.proxy.url}/youtube`, commissionRateBps: 500 },
  });
  expect(r.status).toBe(201);
  const showId = 'show-late-pin';
  const job = { partnerId: 'settle', showId, targetId };
  expect((await sendEvent(rig.svc, 'settle', rig.secret, showEvent('show.live', sampleShow(showId, { state: 'live' }), '2026-11-24T18:00:00Z'))).status).toBe(202);
  expect(await converge(job, await rig.svc.rt.syncService.sync(job, { token: 'live' }), 'live')).toEqual({ kind: 'done', state: 'live' });

  // Run A: its chat message reaches the platform LAG_MS late; A is cut off at its deadline first.
  expect((await sendEvent(rig.svc, 'settle', rig.secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:01:00Z', data: { showId, productId: 'p1' } })).status).toBe(202);
  rig.proxy.holdNext((method, path) => method === 'POST' && path === '/youtube/youtube/v3/liveChat/messages', LAG_MS);
  const a = await rig.svc.rt.syncService.sync(job, { token: 'A' });
  expect(a).toMatchObject({ kind: 'delay' });
  expect(rig.proxy.held).toContainEqual(expect.objectContaining({ method: 'POST', path: '/youtube/youtube/v3/liveChat/messages?part=snippet' }));

  // The retries (the first at once, like a stalled job's takeover), until the pin is done.
  expect(await converge(job, a, 'R')).toEqual({ kind: 'done', state: 'live' });
  await rig.proxy.idle(); // the late message has taken effect by now, whatever the runs did
  expect(rig.proxy.held.at(-1)!.status).toBe(200);

  const m = (await rig.svc.rt.shows.getMirror('settle', showId, targetId))!;
  expect(m.pins['p1']?.state).toBe('pinned');
  const posted = (await rig.sim.effects('youtube')).filter((e) => e.type === 'message.posted' && e.url === m.pins['p1']!.linkUrl);
  expect(posted).toHaveLength(1);
}, 60_000);
