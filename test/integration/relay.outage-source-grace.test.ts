/**
 * A relay whose readers read another process's edge (RELAY_EDGE=none) keeps them through a Redis outage
 * longer than the edge's source TTL: its first pass back finds the show's source missing (it lapsed
 * while Redis was down, and the edge writes it again only at its next renewal), and that pass stopped
 * the readers, the next one started them again (≈ 2.3 s without video on every platform). Now a source
 * missing right after an outage keeps the readers for two of the edges' renewal intervals and a pass;
 * past that a missing source is missing. The real RelayService (passes and renewals by hand), real
 * Redis restarted (its source key lapses while it is down), real ffmpeg reading a TCP listener that
 * holds what connects (another process's edge nobody answers on: the reader waits in its handshake).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { RelayService } from '../../src/relay/relay.service.js';
import { addOfflineWhatnotTarget, handRunRelay, linkOperatorMirror } from '../helpers/hand-relay.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

const sockets: Socket[] = [];
const servers: Server[] = [];
afterAll(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

/**
 * Partner `P`'s show `show` live, mirrored to an offline Whatnot target linked by hand, and another
 * process's edge for its readers: a TCP listener that holds what connects (the reader waits in its
 * handshake), counting the connections.
 */
async function liveShowOnHeldEdge(P: string, show: string): Promise<{ edgeUrl: string; connections: () => number }> {
  const secret = await createPartner(svc, P);
  await addOfflineWhatnotTarget(svc, P, `${P}-a`);
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(show, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, P, show, `${P}-a`, 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  let connections = 0;
  const server = createServer((s) => {
    connections += 1;
    sockets.push(s);
    s.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { edgeUrl: `rtmp://127.0.0.1:${(server.address() as { port: number }).port}/live`, connections: () => connections };
}

test('a source missing right after a Redis outage keeps its readers until its edge writes it again, and only for a while', async () => {
  const P = 'outsrc';
  const show = 'outsrc1';
  const { edgeUrl, connections } = await liveShowOnHeldEdge(P, show);
  const source = { edgeUrl, session: 'other-edge:1', since: new Date().toISOString() };
  // The edge's renewals every 200 ms (a 1 s source TTL), a pass every second: a grace of 1.4 s.
  const relay: RelayService = handRunRelay(svc, { pollMs: 1_000, sourceTtlMs: 1_000 });
  const renewAll = (): Promise<void> => (relay as unknown as { renewAll(): Promise<void> }).renewAll();
  try {
    await svc.rt.relay.setSourceFor(P, show, source, 60_000);
    await relay.tick();
    await waitFor(async () => connections() === 1 && relay.pids().length === 1, 10_000);
    const reader = relay.pids()[0];

    // Redis goes down; the source lapses meanwhile (its edge cannot renew it); the renewal fails.
    await svc.rt.relay.setSourceFor(P, show, source, 1_000);
    await svc.redis.stop('SIGKILL');
    await renewAll();
    await new Promise((r) => setTimeout(r, 1_500));
    await svc.redis.start();
    await waitFor(async () => (await svc.rt.redis.ping().catch(() => undefined)) === 'PONG', 15_000);
    expect(await svc.rt.relay.source(P, show)).toBeNull();

    await relay.tick(); // the first pass back: the source missing, the readers go on
    await svc.rt.relay.setSourceFor(P, show, source, 60_000); // the edge's next renewal writes it again
    await relay.tick();
    await new Promise((r) => setTimeout(r, 500));
    expect({ connections: connections(), pids: relay.pids() }).toEqual({ connections: 1, pids: [reader] });

    // Missing again right after (Redis answered again less than the grace ago): kept for the grace only.
    await renewAll();
    await svc.rt.relay.clearSource(P, show, source.session);
    await relay.tick();
    expect(relay.pids()).toEqual([reader]);
    await new Promise((r) => setTimeout(r, 1_600));
    await relay.tick();
    await waitFor(async () => relay.pids().length === 0, 10_000);
    expect(connections()).toBe(1);
  } finally {
    await relay.close();
  }
}, 60_000);

/**
 * Found attacking the relay under `npm start`: the encoder dropped during a 5 s Redis outage and
 * reconnected. The readers' restart asked the fence just after Redis came back, before the renewal that
 * takes the lapsed lease back: "no", and the supervisor stayed idle for good (neither running nor
 * halted, so no pass started it again); every platform was without video 40 s later. A pass (which runs
 * for shows whose lease this process holds) now starts such a supervisor again.
 */
test("a reader whose restart the fence refused (its lease lapsed in an outage) is started again by a pass once the lease is back", async () => {
  const P = 'fencedorm';
  const show = 'fencedorm1';
  const { edgeUrl, connections } = await liveShowOnHeldEdge(P, show);
  const relay: RelayService = handRunRelay(svc, { pollMs: 1_000 });
  const renewAll = (): Promise<void> => (relay as unknown as { renewAll(): Promise<void> }).renewAll();
  try {
    await svc.rt.relay.setSourceFor(P, show, { edgeUrl, session: 'other-edge:2', since: new Date().toISOString() }, 60_000);
    await relay.tick();
    await waitFor(async () => connections() === 1 && relay.pids().length === 1, 10_000);
    // The lease lapses (Redis was down past it) and the reader drops: its restart (0.5 s back-off) asks the fence, which says no.
    await svc.rt.redis.del(svc.rt.keys.relayLease(P, show));
    process.kill(relay.pids()[0]!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2_000));
    const refused = { connections: connections(), pids: relay.pids() };
    await renewAll(); // takes the lapsed lease back: it was this process's
    await relay.tick();
    const restarted = await waitFor(async () => connections() === 2 && relay.pids().length === 1, 5_000).then(() => true, () => false);
    expect({ refused, restarted }).toEqual({ refused: { connections: 1, pids: [] }, restarted: true });
  } finally {
    await relay.close();
  }
}, 60_000);
