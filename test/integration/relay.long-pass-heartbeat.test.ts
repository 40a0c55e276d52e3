/**
 * A relay pass over many live shows takes longer than the heartbeat's TTL (max(RELAY_LEASE_MS,
 * 5 × RELAY_POLL_MS)) when each show's reads are slow: one partner sent a few hundred live shows
 * without video to `npm start` (attack, 2026-12-05), the process was busy, a pass took 25 s, and the
 * heartbeat written at its start lapsed for most of every pass. The relay then read "not running", and
 * the video gate held every YouTube and Facebook mirror of every partner ("relay not running"), also
 * those whose video the relay was sending. The pass beats again while it makes progress.
 * The real RelayService (its pass run by hand, each show's snapshot read slowed), real Redis.
 */
import { pino } from 'pino';
import { ffmpegPath } from '../../src/lib/ffmpeg-path.js';
import { RelayService } from '../../src/relay/relay.service.js';
import type { ShowRepository } from '../../src/store/show.repository.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startService({});
});
afterAll(async () => {
  await svc.close();
});

test('a relay pass longer than the heartbeat TTL keeps the relay running (presence) while it makes progress', async () => {
  const secret = await createPartner(svc, 'lp');
  // 20 (was 12): a 3 s pass gave about 28 samples of the loop below against its bound of 25, and on a
  // loaded machine (each sample a Redis round trip and a timer, late) fewer; 5 s gives about 45.
  const SHOWS = 20;
  for (let i = 0; i < SHOWS; i++) {
    expect((await sendEvent(svc, 'lp', secret, showEvent('show.live', sampleShow(`lp${i}`, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  }
  // Each show's snapshot read takes 250 ms (a busy process, a slow Redis): the pass takes ≥ 5 s,
  // the heartbeat's TTL is 1 s.
  const shows = new Proxy(svc.rt.shows, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'desired') return async (...args: unknown[]) => {
        await new Promise((r) => setTimeout(r, 250));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as ShowRepository;
  const relay = new RelayService({
    relay: svc.rt.relay,
    shows,
    partners: svc.rt.partners,
    box: svc.rt.box,
    destinations: svc.rt.destinations,
    ffmpeg: ffmpegPath(),
    log: pino({ level: 'silent' }),
    leaseMs: 1_000,
    pollMs: 200,
    stallMs: 5_000,
    edgeUrl: () => undefined, // no publish: nothing starts, the pass only reads and reports
  });
  try {
    let done = false;
    const pass = relay.tick().finally(() => (done = true));
    const seen: boolean[] = [];
    while (!done) {
      seen.push((await svc.rt.relay.presence()).running);
      await new Promise((r) => setTimeout(r, 100));
    }
    await pass;
    expect(seen.length).toBeGreaterThan(25);
    expect(seen.filter((running) => !running)).toEqual([]);
  } finally {
    await relay.close();
  }
}, 30_000);
