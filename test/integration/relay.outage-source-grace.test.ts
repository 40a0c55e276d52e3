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
import type { RelayService } from '../../src/relay/relay.service.js';
import { addOfflineWhatnotTarget, closeHeldListeners, handRunRelay, heldListener, linkOperatorMirror } from '../helpers/hand-relay.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

afterAll(closeHeldListeners);

/**
 * Partner `P`'s show `show` live, mirrored to an offline Whatnot target linked by hand, and another
 * process's edge for its readers: a TCP listener that holds what connects (the reader waits in its
 * handshake), counting the connections.
 */
async function liveShowOnHeldEdge(P: string, show: string, sourceUrl?: string): Promise<{ edgeUrl: string; connections: () => number }> {
  const secret = await createPartner(svc, P);
  await addOfflineWhatnotTarget(svc, P, `${P}-a`);
  expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(show, { state: 'live', sourceUrl }), new Date().toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, P, show, `${P}-a`, 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  const { url, connections } = await heldListener();
  return { edgeUrl: url, connections };
}

/**
 * Show `show`'s lease lapses (Redis was down past it) and its ffmpeg `pid` drops: the restart (0.5 s
 * back-off) asks the fence, which says no. `refused`: `seen()` 2 s later; then the renewal takes the
 * lapsed lease back (it was this process's), a pass runs, and `restarted`: whether `back()` within 5 s.
 */
async function fenceRefusesRestart<T>(relay: RelayService, P: string, show: string, pid: number, seen: () => T, back: () => boolean): Promise<{ refused: T; restarted: boolean }> {
  await svc.rt.redis.del(svc.rt.keys.relayLease(P, show));
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 2_000));
  const refused = seen();
  await (relay as unknown as { renewAll(): Promise<void> }).renewAll();
  await relay.tick();
  const restarted = await waitFor(async () => back(), 5_000).then(() => true, () => false);
  return { refused, restarted };
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
  try {
    await svc.rt.relay.setSourceFor(P, show, { edgeUrl, session: 'other-edge:2', since: new Date().toISOString() }, 60_000);
    await relay.tick();
    await waitFor(async () => connections() === 1 && relay.pids().length === 1, 10_000);
    const seen = () => ({ connections: connections(), pids: relay.pids() });
    const got = await fenceRefusesRestart(relay, P, show, relay.pids()[0]!, seen, () => connections() === 2 && relay.pids().length === 1);
    expect(got).toEqual({ refused: { connections: 1, pids: [] }, restarted: true });
  } finally {
    await relay.close();
  }
}, 60_000);

/**
 * Found reviewing 65e723e: a pass started a dormant destination again, not a dormant pull. A show with a
 * `sourceUrl` whose pull ffmpeg dropped while its lease had lapsed (a Redis outage) had the pull's
 * restart refused by the fence, and ensurePuller keeps the pull it has: nothing started it again, and
 * every destination waited for a publish that never came, for good. Here the pull's source and this
 * process's edge are listeners that hold what connects.
 */
test("a show's pull whose restart the fence refused (its lease lapsed in an outage) is started again by a pass once the lease is back", async () => {
  const P = 'fencepull';
  const show = 'fencepull1';
  const src = await heldListener(); // the pull's source
  const own = await liveShowOnHeldEdge(P, show, `${src.url}/src-key`); // this process's edge
  const relay: RelayService = handRunRelay(svc, { pollMs: 1_000, edgeUrl: () => own.edgeUrl });
  // The pull's ffmpeg (this relay also takes the shows of the tests above: relay.pids() has theirs).
  const owned = (relay as unknown as { owned: Map<string, { showId: string; puller?: { sup: { pid?: number } } }> }).owned;
  const pullPid = (): number | undefined => [...owned.values()].find((o) => o.showId === show)?.puller?.sup.pid;
  try {
    await relay.tick();
    await waitFor(async () => src.connections() === 1 && own.connections() >= 1 && pullPid() !== undefined, 10_000);
    const seen = () => ({ pulls: src.connections(), running: pullPid() !== undefined });
    const got = await fenceRefusesRestart(relay, P, show, pullPid()!, seen, () => src.connections() === 2 && pullPid() !== undefined);
    expect(got).toEqual({ refused: { pulls: 1, running: false }, restarted: true });
  } finally {
    await relay.close();
  }
}, 60_000);

/**
 * The pass starts every dormant supervisor of a show (a start the fence refused), not one made and never
 * started: a destination waiting for a publish, with no reader armed for it, has such a supervisor (no
 * input); started, it ran an ffmpeg with no input that failed and retried until the next pass.
 */
test('a destination waiting for a publish with no reader armed runs no ffmpeg (its supervisor was never started, so it is not dormant)', async () => {
  const P = 'dormnone';
  const show = 'dormnone1';
  await liveShowOnHeldEdge(P, show);
  const relay: RelayService = handRunRelay(svc, { pollMs: 1_000 }); // no edge of its own: nothing armed
  try {
    await relay.tick();
    await new Promise((r) => setTimeout(r, 1_500));
    const [st] = await svc.rt.relay.statuses(P, show, [`${P}-a`]);
    expect({ state: st?.state, restarts: st?.restarts, lastError: st?.lastError }).toEqual({ state: 'idle', restarts: 0, lastError: "waiting for the show's stream (nothing is publishing to its ingest)" });
  } finally {
    await relay.close();
  }
}, 30_000);
