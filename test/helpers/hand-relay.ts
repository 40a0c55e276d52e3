/**
 * The relay tests that run the real RelayService's passes by hand (`relay.tick()`) over a test service's
 * own stores, and the operator-linked mirrors they relay (no platform API needed for the ingest).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { newMirror } from '../../src/domain/mirror.js';
import type { SecretBox } from '../../src/lib/crypto.js';
import { ffmpegPath } from '../../src/lib/ffmpeg-path.js';
import { RelayService, type RelayServiceDeps } from '../../src/relay/relay.service.js';
import type { TestService } from './service.js';

/**
 * A RelayService over `svc`'s stores whose passes the test runs: no pass of its own within a test
 * (pollMs 60 s), a 60 s lease, a silent log, and no publish (`edgeUrl` none: a destination that is
 * relayed waits idle, no ffmpeg needed). `deps` replaces any of that.
 */
export function handRunRelay(svc: TestService, deps: Partial<RelayServiceDeps> = {}): RelayService {
  return new RelayService({
    relay: svc.rt.relay,
    shows: svc.rt.shows,
    partners: svc.rt.partners,
    box: svc.rt.box,
    destinations: svc.rt.destinations,
    ffmpeg: ffmpegPath(),
    log: pino({ level: 'silent' }),
    leaseMs: 60_000,
    pollMs: 60_000,
    stallMs: 5_000,
    edgeUrl: () => undefined,
    ...deps,
  });
}

/**
 * The mirror of `showId` to the Whatnot target `targetId` made live and linked by hand, as an operator
 * does: pushed to an operator-given ingest (`url`; the default's name does not resolve in a sandbox, a
 * loopback one does: the test service allows private destinations) whose stream key `streamKey` is sealed by `box`.
 */
export async function linkOperatorMirror(svc: TestService, partnerId: string, showId: string, targetId: string, streamKey: string, box: SecretBox = svc.rt.box, url = 'rtmp://live.example.com/app'): Promise<void> {
  await svc.rt.shows.updateMirror(partnerId, showId, targetId, () => newMirror(targetId, 'whatnot'), (m) => {
    m.state = 'live';
    m.remote = { externalId: `${showId}-${targetId}`, url: undefined, ingest: undefined, data: {} };
    m.operatorIngest = { url, streamKeySealed: box.encrypt(streamKey) };
    return true;
  });
}

/** Creates the Whatnot target `id` of `partnerId` (no platform behind it: its base URL refuses) and expects 201. */
export async function addOfflineWhatnotTarget(svc: TestService, partnerId: string, id: string): Promise<void> {
  const r = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, { json: { id, platform: 'whatnot', name: id, baseUrl: 'http://127.0.0.1:9/whatnot', credentials: { apiKey: 'k' }, commissionRateBps: 500 } });
  expect(r.status).toBe(201);
}

const heldSockets: Socket[] = [];
const heldServers: Server[] = [];

/**
 * A TCP listener on loopback that holds what connects (an RTMP peer that never answers the handshake:
 * a source, or an edge, nobody answers on), counting the connections. closeHeldListeners ends them all.
 */
export async function heldListener(): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server = createServer((s) => {
    connections += 1;
    heldSockets.push(s);
    s.on('error', () => undefined);
  });
  heldServers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `rtmp://127.0.0.1:${(server.address() as { port: number }).port}/live`, connections: () => connections };
}

/** Ends every connection heldListener held and closes its listeners (afterAll). */
export function closeHeldListeners(): void {
  for (const s of heldSockets.splice(0)) s.destroy();
  for (const s of heldServers.splice(0)) s.close();
}
