/**
 * Relay review R1: a relay process that dies (SIGKILL, no other relay process) used to leave every
 * mirror reported as `sending` at its last bitrate for good, in the REST show view and the ops
 * console (statuses are stored for 30 days, read without looking at the show's relay lease). Now a
 * status whose show no relay process holds is reported `idle`, bitrate 0, saying nobody relays it.
 */
import { waitFor } from '../helpers/service.js';
import { ALL_PLATFORMS } from '../helpers/platforms.js';
import { encode, goLive, scheduleRelayedShow, viewOf } from '../helpers/relay.js';
import { relayProcesses } from '../helpers/relay-processes.js';
import { UNOWNED_ERROR } from '../../src/store/relay.repository.js';

const P = 'dead-p';
const h = relayProcesses({ keyPrefix: 'rd', edge: true, partner: P });

test('a relay process that died is not reported as still sending', async () => {
  // A 3 s lease (RELAY_LEASE_MS, default 6 s): the wait below for it to lapse is that much shorter.
  const relay = h.relayProcess({ RELAY_LEASE_MS: '3000' });
  // Scheduled near now: the board lists live shows scheduled within the last week (LIVE_LOOKBACK_MS), and
  // sampleShow's fixed 2026-11-24 fell out of that after 2026-12-01 18:00 UTC.
  const near = { scheduledAt: new Date(Date.now() + 3_600_000).toISOString() };
  await scheduleRelayedShow(h.svc, h.sim, P, h.secret, 'dead1', near);
  await goLive(h.svc, P, h.secret, 'dead1', 'live', near);
  const v0 = await viewOf(h.svc, P, 'dead1');
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(h.svc, P, 'dead1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    await relay.kill('SIGKILL');
    // Past the lease (RELAY_LEASE_MS, 3 s here; the relay heartbeat's TTL is shorter): nothing relays this show
    // now. Waited for, not slept out (12 s): the views below are read once it has lapsed.
    await waitFor(async () => (await h.svc.rt.relay.leaseHolder(P, 'dead1')) === null, 30_000, 100);
    const v = await viewOf(h.svc, P, 'dead1');
    expect(v.mirrors.map((m) => [m.platform, m.relay.state, m.relay.bitrateKbps])).toEqual(ALL_PLATFORMS.map((p) => [p, 'idle', 0]));
    const board = (await (await h.svc.api('/v1/ops/board')).json()) as { shows: { showId: string; mirrors: { platform: string; relay: { state: string; bitrateKbps: number } | null }[] }[] };
    const row = board.shows.find((s) => s.showId === 'dead1');
    expect(row?.mirrors.map((m) => [m.platform, m.relay?.state, m.relay?.bitrateKbps])).toEqual(ALL_PLATFORMS.map((p) => [p, 'idle', 0]));
  } finally {
    await enc.stop();
  }
}, 120_000);

/**
 * Relay review: a relay process stopped by SIGTERM (a deploy, a scale-down) while its shows were live
 * reported every destination `stopped` — a show's end — to the views and in mirror.updated, kept while
 * no relay process took the show over, where the README says a show whose relay process was stopped is
 * reported `idle`, nobody relaying it, as after a crash.
 */
test('a relay process stopped by SIGTERM hands its live shows back: idle, nobody relays them, not stopped', async () => {
  const relay = h.relayProcess();
  const near = { scheduledAt: new Date(Date.now() + 3_600_000).toISOString() };
  await scheduleRelayedShow(h.svc, h.sim, P, h.secret, 'term1', near);
  await goLive(h.svc, P, h.secret, 'term1', 'live', near);
  const v0 = await viewOf(h.svc, P, 'term1');
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(h.svc, P, 'term1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    await relay.kill('SIGTERM');
    // Handed back at once: no lease to wait out.
    expect(await h.svc.rt.relay.leaseHolder(P, 'term1')).toBeNull();
    const v = await viewOf(h.svc, P, 'term1');
    expect(v.mirrors.map((m) => [m.platform, m.relay.state, m.relay.bitrateKbps, m.relay.lastError])).toEqual(ALL_PLATFORMS.map((p) => [p, 'idle', 0, UNOWNED_ERROR]));
    // And the next relay process takes the show over.
    const next = h.relayProcess();
    await waitFor(async () => (await viewOf(h.svc, P, 'term1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    await next.kill('SIGTERM');
  } finally {
    await enc.stop();
  }
}, 180_000);
