/**
 * The relay arms readers (a destination's ffmpeg waiting on this process's edge ahead of the show's
 * publish) only within its pool (RELAY_ARMED_READERS), shared fairly between partners, and starts the
 * readers of a show left out only once an edge reports its publish (its source), reading it from that
 * edge. It used to arm one reader per destination of every live show: 150 live shows nobody published
 * to made ~300 idle ffmpeg on a 2-core machine, and another partner's show with video took 75.6 s to
 * send (4.8 s without them). Here: a pool of 4 and two destinations per show: of partner P's five live
 * shows the two it took first are armed, the others run no ffmpeg (each destination `idle` saying it
 * waits); partner Q's show going live takes its turn (P's second show gives its place back); a publish
 * of one of P's shows left out, accepted on another relay process's edge, starts that show's readers
 * there at once when the relay is woken, and its end stops them. The real RelayService (passes by hand,
 * then started with passes every 60 s, so only wake() makes one), real Redis, real ffmpeg; the edges
 * are TCP listeners that hold what connects (an ffmpeg reader waits there in its RTMP handshake).
 * An armed show whose publish begins gives its place to the next show; a pull's start is urgent in the
 * start gate.
 */
import { newMirror } from '../../src/domain/mirror.js';
import type { RelayService } from '../../src/relay/relay.service.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { addOfflineWhatnotTarget, closeHeldListeners, handRunRelay, heldListener } from '../helpers/hand-relay.js';

let svc: TestService;
let relay: RelayService | undefined;

beforeAll(async () => {
  svc = await startService({});
});
afterAll(async () => {
  await relay?.close();
  closeHeldListeners();
  await svc.close();
});

const P = 'rop';
const Q = 'rop-q';
const SHOWS = ['rop-1', 'rop-2', 'rop-3', 'rop-4', 'rop-5'];
const TARGETS = ['rop-a', 'rop-b'];
const Q_TARGETS = ['rop-qa', 'rop-qb']; // target ids are the service's, not a partner's
const WAITING = "waiting for the show's stream (nothing is publishing to its ingest)";

/** `id` of `partner` live, its mirrors to `targets` live and linked by hand to an ingest that resolves (loopback; the test service allows private destinations). */
async function liveShow(partner: string, secret: string, id: string, targets = TARGETS): Promise<void> {
  expect((await sendEvent(svc, partner, secret, showEvent('show.live', sampleShow(id, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  for (const t of targets) {
    await svc.rt.shows.updateMirror(partner, id, t, () => newMirror(t, 'whatnot'), (m) => {
      m.state = 'live';
      m.remote = { externalId: `${id}-${t}`, url: undefined, ingest: undefined, data: {} };
      m.operatorIngest = { url: 'rtmp://127.0.0.1:9/app', streamKeySealed: svc.rt.box.encrypt(`op-${id}-${t}`) };
      return true;
    });
  }
}

test("a pull's start (the run that makes its show's publish) asks the start gate as urgent", async () => {
  // Ahead of readers armed for publishes not begun (start-gate.ts): without it a pull's publish, and so
  // every reader of its show, waited behind them. First here: no other show is live yet.
  const src = await heldListener(); // the pull's source
  const own = await heldListener();
  const r = handRunRelay(svc, { edgeUrl: () => own.url });
  const asked: boolean[] = [];
  const acquire = r.startGate.acquire.bind(r.startGate);
  r.startGate.acquire = (kind, urgent) => {
    asked.push(urgent?.() === true);
    return acquire(kind, urgent);
  };
  const secret = await createPartner(svc, 'rop-pull');
  const event = async (state: 'live' | 'ended') =>
    (await sendEvent(svc, 'rop-pull', secret, showEvent(`show.${state}`, sampleShow('rop-pull-1', { state, sourceUrl: `${src.url}/src-key` }), new Date().toISOString()))).status;
  try {
    expect(await event('live')).toBe(202);
    await r.tick();
    expect(asked).toEqual([true]);
  } finally {
    await r.close();
    expect(await event('ended')).toBe(202); // not relayed by the test below
  }
});

test("readers are armed within the pool, shared between partners; a show left out starts its readers on its publish, on the edge that reports it, and its end stops them", async () => {
  const own = await heldListener(); // this process's edge
  const other = await heldListener(); // another relay process's edge, where the publish lands
  relay = handRunRelay(svc, { edgeUrl: () => own.url, armedReaders: 4 });
  const r = relay;
  const statuses = async (partner: string, id: string) => svc.rt.relay.statuses(partner, id, partner === Q ? Q_TARGETS : TARGETS);
  const secret = await createPartner(svc, P);
  for (const t of TARGETS) await addOfflineWhatnotTarget(svc, P, t);
  for (const id of SHOWS) {
    await liveShow(P, secret, id);
    await r.tick(); // taken in this order: rop-1 first
  }
  await waitFor(async () => own.connections() >= 4 && (await Promise.all(SHOWS.map((id) => statuses(P, id)))).every((st) => st.every((s) => s?.state === 'idle' && s.lastError === WAITING)), 10_000);
  // The old relay had all ten readers connecting by now (two starts at a time); give them a second.
  await new Promise((res) => setTimeout(res, 1000));
  expect({ pids: r.pids().length, ownEdge: own.connections(), otherEdge: other.connections() }).toEqual({ pids: 4, ownEdge: 4, otherEdge: 0 });

  // Partner Q's show goes live: one of P's two armed shows gives its place to it (turns: a show each).
  const secretQ = await createPartner(svc, Q);
  for (const t of Q_TARGETS) await addOfflineWhatnotTarget(svc, Q, t);
  await liveShow(Q, secretQ, 'rop-q1', Q_TARGETS);
  r.start();
  await waitFor(async () => {
    r.wake();
    return own.connections() === 6 && r.pids().length === 4;
  }, 10_000);
  expect((await statuses(Q, 'rop-q1')).map((s) => s?.lastError)).toEqual([WAITING, WAITING]);

  // rop-4 (never armed) is published to on the other process's edge, which writes its source (Redis).
  await svc.rt.relay.setSourceFor(P, 'rop-4', { edgeUrl: other.url, session: 'other-edge:1', since: new Date().toISOString() }, 60_000);
  r.wake({ partnerId: P, showId: 'rop-4' });
  await waitFor(async () => other.connections() >= TARGETS.length && r.pids().length === 4 + TARGETS.length, 10_000);
  expect((await statuses(P, 'rop-4')).map((s) => s?.state)).toEqual(['connecting', 'connecting']);
  expect(own.connections()).toBe(6);
  for (const id of ['rop-3', 'rop-5']) expect((await statuses(P, id)).map((s) => s?.lastError)).toEqual([WAITING, WAITING]);

  // The publish ends: its readers stop (the show has no place in the pool), and the destinations wait again.
  await svc.rt.relay.clearSource(P, 'rop-4', 'other-edge:1');
  r.wake({ partnerId: P, showId: 'rop-4' });
  await waitFor(async () => r.pids().length === 4 && (await statuses(P, 'rop-4')).every((s) => s?.state === 'idle' && s.lastError === WAITING), 10_000);
  expect({ ownEdge: own.connections(), otherEdge: other.connections() }).toEqual({ ownEdge: 6, otherEdge: TARGETS.length }); // none started again

  // An armed show's publish begins (on this process's edge): its readers go on, and its place in the
  // pool goes to P's next show, rop-2 (kept, it held a place no show waiting for a publish could use).
  await svc.rt.relay.setSourceFor(P, 'rop-1', { edgeUrl: own.url, session: 'own-edge:1', since: new Date().toISOString() }, 60_000);
  await waitFor(async () => {
    r.wake();
    return own.connections() === 8 && r.pids().length === 6;
  }, 10_000);
  expect((await statuses(P, 'rop-1')).map((s) => s?.state)).toEqual(['connecting', 'connecting']);
}, 60_000);
