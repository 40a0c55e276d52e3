/**
 * A platform's Retry-After is honoured up to MAX_PLATFORM_WAIT_MS (26 h: longer than YouTube's wait for
 * its quota reset). Whatnot (or a proxy in front of it) answering `429` with `Retry-After:
 * 99999999999999999999` made a block the shared limiter could not store (Redis refused its PX): the run
 * failed with a Redis error instead of waiting, the mirror said nothing (no `lastError`), and BullMQ,
 * then every sweep, ran it into the same answer again. Now the mirror waits (at most 26 h) and says so.
 * Real service and workers, Whatnot simulator over HTTP, real Redis.
 */
import { MAX_PLATFORM_WAIT_MS } from '../../src/targets/target.failure.js';
import { sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';
import { syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, simTarget, waitForMirror, type MirrorView } from '../helpers/mirrors.js';
import { CREDENTIALS } from '../helpers/platforms.js';

const PARTNER = 'rab';
let svc: TestService;
let sim: TestSim;
let secret: string;

simRigPerFile(
  PARTNER,
  (s) => [simTarget(s, 'whatnot', { id: 'wn', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken! }, commissionRateBps: 800 })],
  (rig) => ({ sim, svc, secret } = rig),
);

const at = eventClock();

test('a 429 with an absurd Retry-After: the mirror waits at most MAX_PLATFORM_WAIT_MS and says so; the job is not failed', async () => {
  const show = sampleShow('s1');
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, at()))).status).toBe(202);
  await waitForMirror(svc, PARTNER, 's1', (m) => m.state === 'action_required', { targetId: 'wn' });
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'Retry-After show' })) as { externalId: string };
  expect((await svc.api(`/v1/partners/${PARTNER}/shows/s1/mirrors/wn`, { method: 'PUT', json: { externalId } })).status).toBe(200);
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.live', { ...show, state: 'live' }, at()))).status).toBe(202);
  await waitForMirror(svc, PARTNER, 's1', (m) => m.state === 'live', { targetId: 'wn' });

  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['429'], retryAfter: '99999999999999999999' });
  try {
    expect((await sendEvent(svc, PARTNER, secret, { type: 'product.pinned', occurredAt: at(), data: { showId: 's1', productId: 'p1' } })).status).toBe(202);
    const m = await waitForMirror<MirrorView>(svc, PARTNER, 's1', (x) => /^waiting \d+ s: whatnot: /.test(x.lastError ?? ''), { targetId: 'wn', timeoutMs: 10_000 });
    expect(m.state).toBe('live');
    const waitS = Number(/^waiting (\d+) s/.exec(m.lastError!)![1]);
    expect(waitS).toBeGreaterThan(MAX_PLATFORM_WAIT_MS / 1000 - 1);
    expect(waitS).toBeLessThanOrEqual(Math.ceil((MAX_PLATFORM_WAIT_MS * 1.1) / 1000));
    let failed = 0;
    for (const q of syncQueues(svc, ['whatnot'])) failed += await q.getFailedCount();
    expect(failed).toBe(0);
  } finally {
    await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  }
}, 60_000);
