/**
 * Relay review R5: a publisher that stalls without closing (SIGSTOP: its TCP connection stays open)
 * made the relay disconnect and reconnect every platform again and again (each reconnect a new publish
 * on the platform's ingest), each mirror `retrying`/`connecting` with "relay: no data for 6 s", which
 * blamed the destinations for the source's stall. Now the edge reports the stall on the show's source
 * and the destinations wait on it, saying the source stalled.
 */
import { waitFor } from '../helpers/service.js';
import { ALL_PLATFORMS } from '../helpers/platforms.js';
import { encode, firstStartsMs, goLive, scheduleRelayedShow, viewOf } from '../helpers/relay.js';
import { relayProcesses } from '../helpers/relay-processes.js';

const P = 'stall-p';
const h = relayProcesses({ keyPrefix: 'rz', edge: true, partner: P });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a publisher that stalls without closing does not make the relay reconnect every platform over and over', async () => {
  // A 2 s stall time (RELAY_STALL_MS, default 6 s): a relay that blamed the destinations would reconnect
  // them within a few seconds of the stall, so the 10 s watched below (was 15 s at 6 s) catch it.
  h.relayProcess({ RELAY_STALL_MS: '2000' });
  await scheduleRelayedShow(h.svc, h.sim, P, h.secret, 'stall1');
  await goLive(h.svc, P, h.secret, 'stall1');
  const v0 = await viewOf(h.svc, P, 'stall1');
  const keys = new Map(v0.mirrors.map((m) => [m.platform, m.ingest!.streamKey!]));
  const sinks = async () => Promise.all(ALL_PLATFORMS.map(async (p) => (await h.sim.streams(p)).find((s) => s.streamKey === keys.get(p))!));
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(h.svc, P, 'stall1')).mirrors.every((m) => m.relay.state === 'sending'), firstStartsMs());
    const before = (await sinks()).map((s) => s.publishes);
    process.kill(enc.pid!, 'SIGSTOP'); // the encoder hangs; its TCP connection stays open
    // The old relay reconnected each platform once its destination had no data for RELAY_STALL_MS (2 s
    // here), and again after each backoff: within 10 s it had published anew at least once; so it
    // would after the hard limit (4 x RELAY_STALL_MS: a silence for all of the show's readers).
    await sleep(10_000);
    const after = (await sinks()).map((s) => s.publishes);
    const v = await viewOf(h.svc, P, 'stall1');
    process.kill(enc.pid!, 'SIGCONT');
    // The platforms should see one publish each, not a reconnect every few seconds...
    expect(after).toEqual(before);
    // ...and ops should be told the show's own stream stalled, not that each destination did.
    for (const m of v.mirrors) expect(m.relay.lastError ?? '').toMatch(/^source: the show's stream stalled/);
  } finally {
    await enc.stop();
  }
}, 180_000);
