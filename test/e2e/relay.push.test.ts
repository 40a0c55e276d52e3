/**
 * Video relay, push mode (issue 10): a real encoder (ffmpeg test pattern, H.264 + AAC ~1.5 Mbps)
 * publishes once to the show's ingest on the service's embedded edge; the relay role pushes it to the
 * RTMP sinks of all five simulators, one supervised ffmpeg per destination. Real Redis, real HTTP,
 * real RTMP; nothing mocked.
 */
import { waitFor, type TestService } from '../helpers/service.js';
import type { SimStreamView, TestSim } from '../helpers/sim.js';
import { ALL_PLATFORMS, platformsPerFile } from '../helpers/platforms.js';
import { LONG_GAP_MS } from '../../src/simulators/rtmp-sink.js';
import { alive, encode, goLive, scheduleRelayedShow, viewOf, type ShowViewT } from '../helpers/relay.js';

let svc: TestService;
let sim: TestSim;
let secret: string;
const P = 'relay-p';

/** How much of a sink's gap this process's event loop spent stalled (the probe's stalls inside it). */
function stalledWithin(gap: { endedAt: string; ms: number }, stalls: Array<{ endedAt: string; ms: number }>): number {
  const end = Date.parse(gap.endedAt);
  const start = end - gap.ms;
  let ms = 0;
  for (const st of stalls) {
    const stEnd = Date.parse(st.endedAt);
    ms += Math.max(0, Math.min(end, stEnd) - Math.max(start, stEnd - st.ms));
  }
  return ms;
}

/** A relay pass every 250 ms (RELAY_POLL_MS; production's is 1 s): each show's readers are armed, and its end seen, that much sooner. */
const POLL_MS = 250;

platformsPerFile(P, (started) => ({ svc, sim, secret } = started), { workers: true, scheduler: true, relay: true, env: { RELAY_POLL_MS: String(POLL_MS) } });

/** The first case's publish, seconds. */
const ENCODE_S = 8;

// Both cases' shows, scheduled side by side (each mirror given its ingest) before the first case: a
// scheduled show is no relay's business until it goes live.
beforeAll(async () => {
  await Promise.all(['push1', 'push2'].map((id) => scheduleRelayedShow(svc, sim, P, secret, id)));
}, 120_000);

/** The sink stream each mirror pushes to (found by the stream key its ingest carries). */
async function sinkOf(view: ShowViewT, platform: string): Promise<SimStreamView | undefined> {
  const key = view.mirrors.find((m) => m.platform === platform)?.ingest?.streamKey;
  return (await sim.streams(platform)).find((s) => s.streamKey === key);
}

test('one publish reaches all five sinks with both codecs; YouTube and Facebook go live only after their sink saw data; nothing outlives the show', async () => {
  await goLive(svc, P, secret, 'push1');
  // Live on the partner's side, but no video yet: platforms that take an ingest must not air an empty stream.
  const before = await viewOf(svc, P, 'push1');
  expect(before.show.ingest.url).toMatch(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  expect(before.show.ingest.streamKey).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);

  // The relay arms one reader per destination on the edge as the show goes live; they wait for the publish.
  await waitFor(async () => (svc.started.relay?.pids().length ?? 0) >= ALL_PLATFORMS.length && (await viewOf(svc, P, 'push1')).mirrors.every((m) => m.relay.state === 'idle'), 30_000);
  // An 8 s publish (was 20 s): the destinations send, and YouTube and Facebook go live, within its first
  // two or three seconds, and what reaches each sink is measured against all of it.
  const enc = encode(`${before.show.ingest.url}/${before.show.ingest.streamKey}`, ENCODE_S);
  const pids = new Set<number>();
  const ready = await waitFor(async () => {
    for (const pid of svc.started.relay?.pids() ?? []) pids.add(pid);
    const v = await viewOf(svc, P, 'push1');
    return v.mirrors.every((m) => m.relay.state === 'sending') ? v : undefined;
  }, 30_000);
  expect(ready.mirrors.map((m) => m.relay.bitrateKbps > 0)).toEqual(ALL_PLATFORMS.map(() => true));
  // The edge counts the publisher's data as it comes (the readers' proof that the edge has the show's
  // stream to serve them: src/relay/destination.supervisor.ts publisherDataAt); unknown for other keys.
  const edge = svc.started.edge!;
  const input = `${edge.internalUrl}/${before.show.ingest.streamKey}`;
  const firstSent = await waitFor(async () => edge.publisherDataAt(input), 10_000);
  await waitFor(async () => (edge.publisherDataAt(input) ?? 0) > firstSent, 10_000);
  expect(edge.publisherDataAt(`${edge.internalUrl}/sk_not-a-publishing-key`)).toBeUndefined();
  await waitFor(async () => (await viewOf(svc, P, 'push1')).mirrors.every((m) => m.state === 'live'), 30_000);
  expect(await enc.exited).toBe(0);
  const sourceBytes = enc.bytes();
  expect(sourceBytes).toBeGreaterThan(ENCODE_S * 150_000); // ~1.5 Mbps for ENCODE_S

  const view = await viewOf(svc, P, 'push1');
  for (const platform of ALL_PLATFORMS) {
    // ≥ 90 % of what the encoder sent after its first second (the relay starts once the edge has it).
    const enough = 0.9 * sourceBytes * ((ENCODE_S - 1) / ENCODE_S);
    const sink = await waitFor(async () => {
      const s = await sinkOf(view, platform);
      return s && s.bytes >= enough ? s : undefined;
    }, 10_000).catch(async () => sinkOf(view, platform));
    expect({ platform, bytesOk: (sink?.bytes ?? 0) >= enough, videoCodec: sink?.videoCodec, audioCodec: sink?.audioCodec }).toEqual({
      platform,
      bytesOk: true,
      videoCodec: 'h264',
      audioCodec: 'aac',
    });
    expect(sink!.maxPublishers).toBe(1);
  }
  // The platforms that need data went live after their sink saw it.
  for (const platform of ['youtube', 'facebook']) {
    const sink = await sinkOf(view, platform);
    const started = (await sim.effects(platform)).filter((e) => e.type === 'show.started' && e.externalId === view.mirrors.find((m) => m.platform === platform)?.externalId);
    expect(started).toHaveLength(1);
    const firstData = (await sim.effects(platform)).find((e) => e.type === 'stream.started' && e.externalId === sink!.externalId);
    expect(firstData).toBeDefined();
    expect(Date.parse(started[0]!.at)).toBeGreaterThanOrEqual(Date.parse(firstData!.at));
  }

  await goLive(svc, P, secret, 'push1', 'ended');
  const ended = await waitFor(async () => {
    const v = await viewOf(svc, P, 'push1');
    return v.mirrors.every((m) => m.relay.state === 'stopped') ? v : undefined;
  }, 20_000);
  expect(ended.mirrors.every((m) => m.relay.bytesSent > 0)).toBe(true);
  expect(pids.size).toBeGreaterThanOrEqual(ALL_PLATFORMS.length);
  await waitFor(async () => [...pids].every((pid) => !alive(pid)), 10_000);

  // The ended show's key is refused now, and so is a key nobody issued.
  for (const target of [`${before.show.ingest.url}/${before.show.ingest.streamKey}`, `${before.show.ingest.url}/sk_${'x'.repeat(43)}`]) {
    const late = encode(target, 5);
    expect(await late.exited).not.toBe(0);
    expect(late.bytes()).toBeLessThan(100_000);
  }
}, 120_000);

test('a dropped destination is retried alone while the others keep flowing; a source gap resumes every destination on the same broadcast', async () => {
  await goLive(svc, P, secret, 'push2');
  const v0 = await viewOf(svc, P, 'push2');
  const target = `${v0.show.ingest.url}/${v0.show.ingest.streamKey}`;
  const enc1 = encode(target);
  await waitFor(async () => (await viewOf(svc, P, 'push2')).mirrors.every((m) => m.relay.state === 'sending' && m.state === 'live'), 40_000);
  const effectsBefore = await Promise.all(ALL_PLATFORMS.map((p) => sim.effects(p)));
  // This process's event-loop stalls (the sinks time data on it): shown if a gap shows up, to tell a
  // stall of the measuring process from one of the relay.
  const loopStalls: Array<{ endedAt: string; ms: number }> = [];
  let tick = Date.now();
  const loopProbe = setInterval(() => {
    const now = Date.now();
    if (now - tick > 70) loopStalls.push({ endedAt: new Date(now).toISOString(), ms: now - tick - 50 });
    tick = now;
  }, 50);
  const faultAt = Date.now();

  // Whatnot's ingest drops every publisher while the fault is set.
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['rtmp_drop'] });
  await waitFor(async () => (await viewOf(svc, P, 'push2')).mirrors.find((m) => m.platform === 'whatnot')?.relay.state === 'retrying', 15_000);
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  // Sending again within 10 s of the fault being lifted, with the restarts counted.
  const back = await waitFor(async () => {
    const m = (await viewOf(svc, P, 'push2')).mirrors.find((x) => x.platform === 'whatnot');
    return m?.relay.state === 'sending' ? m : undefined;
  }, 10_000);
  expect(back.relay.restarts).toBeGreaterThanOrEqual(1);
  expect(back.relay.lastError).toBeNull();
  await new Promise((r) => setTimeout(r, 2000)); // and a while after Whatnot reconnected
  const windowEnd = Date.now();
  clearInterval(loopProbe);
  const mid = await viewOf(svc, P, 'push2');
  const inWindow = (g: { endedAt: string; ms: number }): boolean => Date.parse(g.endedAt) - g.ms >= faultAt - 1000 && Date.parse(g.endedAt) <= windowEnd;
  const sinks = await Promise.all(ALL_PLATFORMS.map((p) => sinkOf(mid, p)));
  for (const [i, platform] of ALL_PLATFORMS.entries()) {
    if (platform === 'whatnot') continue;
    const s = sinks[i];
    // The other four were not disturbed (issue 10: "the others see no gap over 1 s"): one publish
    // each from start to now (never dropped or reconnected), no relay restart, and no pause in their
    // data over 1 s (the sink's LONG_GAP_MS) from the fault to after Whatnot's recovery.
    // A gap counts as the relay's when it stays over 1 s without the time this process's own event
    // loop was stalled inside it (the sink stamps data when this process reads it): on a loaded
    // 2-core CI machine a stall of the measuring process alone made a 1.03 s "gap".
    const longGaps = (s?.longGaps ?? []).filter(inWindow).filter((g) => g.ms - stalledWithin(g, loopStalls) > LONG_GAP_MS);
    if (longGaps.length) console.log(JSON.stringify({ platform, longGaps, allSinks: sinks.map((x, j) => [ALL_PLATFORMS[j], x?.longGaps.filter(inWindow)]), loopStalls }));
    expect({ platform, longGaps, publishes: s?.publishes, publishers: s?.maxPublishers, restarts: mid.mirrors.find((m) => m.platform === platform)?.relay.restarts }).toEqual({
      platform,
      longGaps: [],
      publishes: 1,
      publishers: 1,
      restarts: 0,
    });
  }

  // The encoder stops until every platform has seen its stream go quiet (no data for RECEIVING_IDLE_MS:
  // YouTube's liveStream inactive), and comes back: every destination resumes on the broadcast it had.
  // (Polled: a fixed 5 s pause was the same gap with 3 s more of waiting; nothing else in the service or
  // the simulators counts the length of a gap.)
  expect(await enc1.stop()).not.toBeUndefined();
  await waitFor(async () => (await viewOf(svc, P, 'push2')).mirrors.every((m) => m.relay.state === 'idle'), 15_000);
  const paused = await Promise.all(ALL_PLATFORMS.map(async (p) => (await sinkOf(mid, p))?.bytes ?? 0));
  await waitFor(async () => (await Promise.all(ALL_PLATFORMS.map((p) => sinkOf(mid, p)))).every((s) => s && !s.receiving), 15_000, 100);
  const enc2 = encode(target);
  const resumed = await waitFor(async () => {
    const v = await viewOf(svc, P, 'push2');
    return v.mirrors.every((m) => m.relay.state === 'sending') ? v : undefined;
  }, 20_000);
  await waitFor(async () => {
    const now = await Promise.all(ALL_PLATFORMS.map(async (p) => (await sinkOf(mid, p))?.bytes ?? 0));
    return now.every((b, i) => b > paused[i]! + 200_000);
  }, 20_000);
  expect(resumed.mirrors.map((m) => [m.platform, m.state, m.externalId])).toEqual(mid.mirrors.map((m) => [m.platform, 'live', m.externalId]));
  const effectsAfter = await Promise.all(ALL_PLATFORMS.map((p) => sim.effects(p)));
  ALL_PLATFORMS.forEach((p, i) => {
    // No new broadcast, no second go-live.
    const created = (list: typeof effectsBefore[number]) => list.filter((e) => e.type === 'show.created' || e.type === 'show.started').length;
    expect([p, created(effectsAfter[i]!)]).toEqual([p, created(effectsBefore[i]!)]);
  });
  await enc2.stop();
  await goLive(svc, P, secret, 'push2', 'ended');
  await waitFor(async () => (await viewOf(svc, P, 'push2')).mirrors.every((m) => m.relay.state === 'stopped'), 20_000);
}, 150_000);
