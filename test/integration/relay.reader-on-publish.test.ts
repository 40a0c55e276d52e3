/**
 * The relay starts a destination's ffmpeg only once an edge reports the show's publish (its source),
 * and reads it from that edge. It used to arm one reader per destination on its own edge as soon as a
 * show was live: 150 live shows nobody published to made ~300 idle ffmpeg on a 2-core machine, and
 * another partner's show with video took 75.6 s to send (4.8 s without them). Here: live shows with
 * no publish start no ffmpeg (nothing connects to the edge, each destination `idle` saying it waits);
 * a publish accepted on another relay process's edge (its source in Redis) starts that show's readers
 * alone, on that edge, at once when the relay is woken; its end stops them. The real RelayService
 * (started, passes every 60 s, so only wake() makes one), real Redis, real ffmpeg; the edges are TCP
 * listeners that hold what connects (an ffmpeg reader waits there in its RTMP handshake).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { newMirror } from '../../src/domain/mirror.js';
import type { RelayService } from '../../src/relay/relay.service.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { addOfflineWhatnotTarget, handRunRelay } from '../helpers/hand-relay.js';

let svc: TestService;
let relay: RelayService | undefined;
const servers: Server[] = [];
const sockets: Socket[] = [];

/** A TCP listener that keeps every connection open and counts them: an edge nobody answers on. */
async function holdingEdge(): Promise<{ url: string; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n += 1;
    sockets.push(s);
    s.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `rtmp://127.0.0.1:${port}/live`, connections: () => n };
}

beforeAll(async () => {
  svc = await startService({});
});
afterAll(async () => {
  await relay?.close();
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  await svc.close();
});

const P = 'rop';
const SHOWS = ['rop-1', 'rop-2', 'rop-3', 'rop-4', 'rop-5'];
const TARGETS = ['rop-a', 'rop-b'];
const WAITING = "waiting for the show's stream (nothing is publishing to its ingest)";

test("live shows nobody publishes to start no ffmpeg; a publish on another process's edge starts that show's readers there, its end stops them", async () => {
  const secret = await createPartner(svc, P);
  for (const t of TARGETS) await addOfflineWhatnotTarget(svc, P, t);
  for (const id of SHOWS) {
    expect((await sendEvent(svc, P, secret, showEvent('show.live', sampleShow(id, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
    for (const t of TARGETS) {
      // Linked by hand to an ingest that resolves (loopback; the test service allows private destinations).
      await svc.rt.shows.updateMirror(P, id, t, () => newMirror(t, 'whatnot'), (m) => {
        m.state = 'live';
        m.remote = { externalId: `${id}-${t}`, url: undefined, ingest: undefined, data: {} };
        m.operatorIngest = { url: 'rtmp://127.0.0.1:9/app', streamKeySealed: svc.rt.box.encrypt(`op-${id}-${t}`) };
        return true;
      });
    }
  }
  const own = await holdingEdge(); // this process's edge
  const other = await holdingEdge(); // another relay process's edge, where the publish lands
  relay = handRunRelay(svc, { edgeUrl: () => own.url });
  relay.start(); // its first pass takes every show; the next would come in 60 s

  const statuses = async (id: string) => svc.rt.relay.statuses(P, id, TARGETS);
  await waitFor(async () => (await Promise.all(SHOWS.map(statuses))).every((st) => st.every((s) => s?.state === 'idle' && s.lastError === WAITING)), 10_000);
  // The old relay had ten readers connecting to its edge by now (two starts at a time); give them a second.
  await new Promise((r) => setTimeout(r, 1000));
  expect({ pids: relay.pids(), ownEdge: own.connections(), otherEdge: other.connections() }).toEqual({ pids: [], ownEdge: 0, otherEdge: 0 });

  // The show's publish lands on the other process's edge, which writes its source (Redis).
  await svc.rt.relay.setSourceFor(P, 'rop-3', { edgeUrl: other.url, session: 'other-edge:1', since: new Date().toISOString() }, 60_000);
  relay.wake({ partnerId: P, showId: 'rop-3' });
  await waitFor(async () => other.connections() >= TARGETS.length && relay!.pids().length === TARGETS.length, 10_000);
  expect((await statuses('rop-3')).map((s) => s?.state)).toEqual(['connecting', 'connecting']);
  expect(own.connections()).toBe(0);
  for (const id of SHOWS.filter((s) => s !== 'rop-3')) expect((await statuses(id)).map((s) => s?.lastError)).toEqual([WAITING, WAITING]);

  // The publish ends: its readers stop, and the destinations wait again.
  await svc.rt.relay.clearSource(P, 'rop-3', 'other-edge:1');
  relay.wake({ partnerId: P, showId: 'rop-3' });
  await waitFor(async () => relay!.pids().length === 0 && (await statuses('rop-3')).every((s) => s?.state === 'idle' && s.lastError === WAITING), 10_000);
  expect(other.connections()).toBe(TARGETS.length); // none started again
});
