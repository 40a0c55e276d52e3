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

test("rotating a pull show's stream key replaces its pull with one that publishes with the new key", async () => {
  const P = 'pullrot';
  const show = 'pullrot1';
  const src = await heldListener();
  const edge = await heldListener();
  const secret = await createPartner(svc, P);
  await addOfflineWhatnotTarget(svc, P, `${P}-a`);
  const live = sampleShow(show, { state: 'live', sourceUrl: `${src.url}/src-key` });
  expect((await sendEvent(svc, P, secret, showEvent('show.live', live, new Date().toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, P, show, `${P}-a`, 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  const relay: RelayService = handRunRelay(svc, { pollMs: 1_000, edgeUrl: () => edge.url });
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
