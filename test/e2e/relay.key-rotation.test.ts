/**
 * Relay review R4: after `POST …/ingest/rotate` the encoder still publishing with the old key is cut
 * off (README: "the old one is refused from then on"), like a publish whose show ended, and the show
 * no longer has that publish as its source: every mirror waits (`idle`) for the new key's publish.
 * Before, the edge checked only the show's state, so the old-key encoder stayed on air and the relay
 * paired the new key with the old source (every mirror `connecting` with no error, then retrying).
 */
import { waitFor } from '../helpers/service.js';
import { ALL_PLATFORMS } from '../helpers/platforms.js';
import { encode, goLive, scheduleRelayedShow, viewOf } from '../helpers/relay.js';
import { relayProcesses } from '../helpers/relay-processes.js';

const P = 'rot-p';
const h = relayProcesses({ keyPrefix: 'rk', edge: true, partner: P });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('rotating the stream key cuts off the encoder still publishing with the old key', async () => {
  h.relayProcess();
  await scheduleRelayedShow(h.svc, h.sim, P, h.secret, 'rot1');
  await goLive(h.svc, P, h.secret, 'rot1');
  const v0 = await viewOf(h.svc, P, 'rot1');
  const enc = encode(`${v0.show.ingest.url}/${v0.show.ingest.streamKey}`);
  try {
    await waitFor(async () => (await viewOf(h.svc, P, 'rot1')).mirrors.every((m) => m.relay.state === 'sending'), 60_000);
    const r = await h.svc.api(`/v1/partners/${P}/shows/rot1/ingest/rotate`, { method: 'POST' });
    expect(r.status).toBe(200);
    // Like a show that ended (checked every 2 s): the old key's publish is refused from now on.
    const exited = await Promise.race([enc.exited.then(() => true), sleep(10_000).then(() => false)]);
    // The relay sees the cleared source on its next pass (RELAY_POLL_MS): the mirrors then wait for the new key.
    const idle = async (): Promise<boolean> => (await viewOf(h.svc, P, 'rot1')).mirrors.every((m) => m.relay.state === 'idle');
    await waitFor(idle, 8_000).catch(() => undefined);
    const v = await viewOf(h.svc, P, 'rot1');
    expect({ oldPublishCutOff: exited, states: v.mirrors.map((m) => m.relay.state) }).toEqual({ oldPublishCutOff: true, states: ALL_PLATFORMS.map(() => 'idle') });
  } finally {
    await enc.stop();
  }
}, 120_000);
