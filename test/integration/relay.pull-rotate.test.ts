/**
 * Found reviewing the pull mode: rotating the stream key of a show with a `sourceUrl` (POST …/ingest/rotate)
 * stopped its video for good. ensurePuller compared only the sourceUrl and kept the pull, whose publish
 * address still named the OLD key: the edge cut that publish off ("stream key was rotated") and refused
 * every restart of it as unknown, and every destination waited. Now a changed ingest key replaces the
 * pull: the old ffmpeg stops and a new one publishes with the new key. The real RelayService (passes by
 * hand), real Redis, real ffmpeg; the pull's source and this process's edge are listeners that hold what
 * connects.
 */
import type { RelayService } from '../../src/relay/relay.service.js';
import { addOfflineWhatnotTarget, closeHeldListeners, handRunRelay, heldListener, linkOperatorMirror } from '../helpers/hand-relay.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

afterAll(closeHeldListeners);

// A live show of partner P pulled from a held source (its pull and its reader never get media), with an
// operator-linked Whatnot mirror `${P}-a`, and a hand-run relay whose edge is another held listener.
async function livePullShow(P: string, show: string) {
  const src = await heldListener();
  const edge = await heldListener();
  const secret = await createPartner(svc, P);
  await addOfflineWhatnotTarget(svc, P, `${P}-a`);
  const live = sampleShow(show, { state: 'live', sourceUrl: `${src.url}/src-key` });
  expect((await sendEvent(svc, P, secret, showEvent('show.live', live, new Date().toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, P, show, `${P}-a`, 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  const relay: RelayService = handRunRelay(svc, { pollMs: 1_000, edgeUrl: () => edge.url });
  return { src, edge, relay };
}

test("rotating a pull show's stream key replaces its pull with one that publishes with the new key", async () => {
  const P = 'pullrot';
  const show = 'pullrot1';
  const { src, relay } = await livePullShow(P, show);
  type Puller = { spec: { output: string }; sup: { pid?: number } };
  const owned = (relay as unknown as { owned: Map<string, { showId: string; puller?: Puller }> }).owned;
  const puller = (): Puller | undefined => [...owned.values()].find((o) => o.showId === show)?.puller;
  try {
    const oldKey = await svc.rt.relay.ingestKey(P, show);
    await relay.tick();
    await waitFor(async () => src.connections() === 1 && puller()?.sup.pid !== undefined, 10_000);
    expect(puller()!.spec.output.endsWith(`/${oldKey}`)).toBe(true);
    const oldPid = puller()!.sup.pid;

    const newKey = await svc.rt.relay.rotateIngestKey(P, show);
    await relay.tick();
    await waitFor(async () => src.connections() === 2 && puller()?.sup.pid !== undefined, 10_000).catch(() => undefined);
    const p = puller();
    expect({ publishesWithNewKey: p?.spec.output.endsWith(`/${newKey}`), newPull: p?.sup.pid !== undefined && p.sup.pid !== oldPid, pulls: src.connections() }).toEqual({ publishesWithNewKey: true, newPull: true, pulls: 2 });
  } finally {
    await relay.close();
  }
}, 40_000);

// Found 2026-12-06 (e2e relay.pull): once a rotation made the edge cut the old key's publish off, the
// show's five readers (their publish ended) and its pull (cut off) started ffmpeg again on the old key
// before the next pass replaced them: six dead starts holding the start gate's two slots just as the
// new pull and readers started. Their fence now also asks whether the key is still the show's.
test("after a rotation, neither the pull nor a reader restarts ffmpeg on the old key; the next pass starts both on the new one", async () => {
  const P = 'pullrot2';
  const show = 'pullrot2-1';
  const { src, edge, relay } = await livePullShow(P, show);
  type Sup = { pid?: number };
  const owned = (relay as unknown as { owned: Map<string, { showId: string; puller?: { sup: Sup }; dests: Map<string, Sup> }> }).owned;
  const o = () => [...owned.values()].find((x) => x.showId === show);
  const pids = () => ({ pull: o()?.puller?.sup.pid, reader: o()?.dests.get(`${P}-a`)?.pid });
  try {
    await relay.tick();
    // The pull connects to its source, the reader (armed) to this process's edge.
    // Counted from here on: the edge listener also takes the pull's own connection (its output), and a
    // pull whose source never answers is restarted after its timeout (5 s), so the counts so far vary.
    await waitFor(async () => src.connections() >= 1 && edge.connections() >= 1 && pids().pull !== undefined && pids().reader !== undefined, 10_000);
    await svc.rt.relay.rotateIngestKey(P, show);
    // The old key's runs end before the next pass (the edge cut the publish off: the pull fails, the reader's input ends).
    const { pull, reader } = pids();
    const before = { pulls: src.connections(), edge: edge.connections() };
    process.kill(pull!, 'SIGKILL');
    process.kill(reader!, 'SIGKILL');
    // A supervisor's first restart comes 0.25–0.5 s after an exit (a publish's end: 0.25 s).
    await new Promise((r) => setTimeout(r, 2_500));
    expect({ pulls: src.connections(), edge: edge.connections(), pids: pids() }).toEqual({ ...before, pids: { pull: undefined, reader: undefined } });
    // The next pass starts both again, with the new key.
    await relay.tick();
    await waitFor(async () => src.connections() > before.pulls && edge.connections() > before.edge && pids().pull !== undefined && pids().reader !== undefined, 10_000).catch(() => undefined);
    const now = pids();
    expect({ newPull: src.connections() > before.pulls && now.pull !== undefined && now.pull !== pull, newReader: edge.connections() > before.edge && now.reader !== undefined && now.reader !== reader }).toEqual({ newPull: true, newReader: true });
  } finally {
    await relay.close();
  }
}, 40_000);
