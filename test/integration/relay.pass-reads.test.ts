/**
 * What a relay pass reads once and keeps, or reads in advance (src/relay/relay.service.ts reconcile), must
 * still follow what changed. The real RelayService (passes by hand), real Redis, real ffmpeg; this
 * process's edge and a pull's source are listeners that hold what connects (no media ever flows).
 *
 * - The edge play token a show's readers play with (`?play=`) is made once per stream key and kept
 *   (OwnedShow.playToken): a rotated key gets a token made from the new key (a kept old one is refused
 *   by the edge: the readers never play again). Only the e2e relay.pull HLS test caught this before.
 * - A pull that runs arms its show's readers on this process's edge before its publish is seen (a pull
 *   that cannot run arms none: nothing will publish).
 * - A pulled show switched back to push: the pass's source is read after its pull stopped (that stop
 *   ends the pull's publish, and with it the source it wrote), not with the partner's bundle at the
 *   pass's start, so the readers do not go on reading the pull's ended publish.
 * - The stream keys a show's passes open (its own, its operator-given mirror keys) are kept from one
 *   pass to the next (OwnedShow.opened: no decryption per pass), but only those the last pass read: a
 *   rotated show key or a relinked mirror key is not kept in memory, in plaintext, after the next pass.
 */
import { EDGE_PLAY_LABEL, edgePlayToken } from '../../src/relay/ingest.edge.js';
import type { SecretBox } from '../../src/lib/crypto.js';
import type { RelayService } from '../../src/relay/relay.service.js';
import { addOfflineWhatnotTarget, closeHeldListeners, handRunRelay, heldListener, linkOperatorMirror } from '../helpers/hand-relay.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

afterAll(closeHeldListeners);

interface Owned {
  showId: string;
  opened?: Map<string, string>;
  puller?: { sup: { stop: (...a: unknown[]) => Promise<void> } };
  sourceError: string | null;
  dests: Map<string, { spec: { input: string } }>;
}

/** Partner P with an operator-linked Whatnot mirror `${P}-a` of its live `show` (`extra`: more of the snapshot). */
async function liveShow(P: string, show: string, extra: Record<string, unknown> = {}): Promise<{ secret: string }> {
  const secret = await createPartner(svc, P);
  await addOfflineWhatnotTarget(svc, P, `${P}-a`);
  const live = sampleShow(show, { state: 'live', ...extra });
  expect((await sendEvent(svc, P, secret, showEvent('show.live', live, new Date(Date.now() - 60_000).toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, P, show, `${P}-a`, 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  return { secret };
}

function ownedShow(relay: RelayService, show: string): Owned | undefined {
  return [...(relay as unknown as { owned: Map<string, Owned> }).owned.values()].find((o) => o.showId === show);
}

const playToken = (key: string): string => edgePlayToken(svc.rt.box.derivedKeys(EDGE_PLAY_LABEL)[0]!, key);

test("a rotated stream key's readers play with a token made from the new key, not the kept one of the old", async () => {
  const P = 'passplay';
  const show = 'passplay1';
  const edge = await heldListener();
  await liveShow(P, show);
  const relay = handRunRelay(svc, { edgeUrl: () => edge.url });
  const input = (): string | undefined => ownedShow(relay, show)?.dests.get(`${P}-a`)?.spec.input;
  try {
    const oldKey = await svc.rt.relay.ingestKey(P, show);
    await relay.tick();
    // Armed on this process's edge (nothing publishes yet), with the key's play token.
    expect(input()).toBe(`${edge.url}/${oldKey}?play=${playToken(oldKey)}`);
    await relay.tick(); // the kept token, the same reader
    expect(input()).toBe(`${edge.url}/${oldKey}?play=${playToken(oldKey)}`);

    const newKey = await svc.rt.relay.rotateIngestKey(P, show);
    await relay.tick();
    expect(input()).toBe(`${edge.url}/${newKey}?play=${playToken(newKey)}`);
  } finally {
    await relay.close();
  }
}, 30_000);

test("a pulled show switched back to push stops its pull and its readers leave the pull's ended publish for this process's edge", async () => {
  const P = 'passpush';
  const show = 'passpush1';
  const src = await heldListener();
  const edge = await heldListener();
  // Where the pull's publish was accepted (as the edge reports it in the show's source).
  const pullEdge = await heldListener();
  const { secret } = await liveShow(P, show, { sourceUrl: `${src.url}/src-key` });
  const relay = handRunRelay(svc, { edgeUrl: () => edge.url });
  const input = (): string | undefined => ownedShow(relay, show)?.dests.get(`${P}-a`)?.spec.input;
  try {
    const key = await svc.rt.relay.ingestKey(P, show);
    await relay.tick();
    const o = ownedShow(relay, show)!;
    expect(o.puller).toBeDefined();
    // A pull that runs, before its publish is seen: the readers wait armed on this process's edge
    // (where the pull publishes), as for an encoder's publish.
    expect(input()).toBe(`${edge.url}/${key}?play=${playToken(key)}`);
    // The pull publishes: its edge writes the show's source, and clears it when that publish ends (the pull stops).
    const session = 'the-pulls-publish';
    await svc.rt.relay.setSourceFor(P, show, { edgeUrl: pullEdge.url, session, since: new Date().toISOString() }, 60_000);
    const pull = o.puller!.sup;
    const stop = pull.stop.bind(pull);
    pull.stop = async (...a: unknown[]) => {
      await stop(...a);
      await svc.rt.relay.clearSource(P, show, session);
    };
    await relay.tick();
    expect(input()).toBe(`${pullEdge.url}/${key}?play=${playToken(key)}`);

    // Pushed to from now on: the snapshot names no sourceUrl.
    expect((await sendEvent(svc, P, secret, showEvent('show.updated', sampleShow(show, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
    await relay.tick();
    expect({ pull: o.puller, sourceError: o.sourceError, input: input() }).toEqual({ pull: undefined, sourceError: null, input: `${edge.url}/${key}?play=${playToken(key)}` });
  } finally {
    await relay.close();
  }
}, 30_000);

test("a rotated show key and a relinked mirror key are not kept by the show after the next pass; unchanged keys are not opened again", async () => {
  const P = 'passkeys';
  const show = 'passkeys1';
  const edge = await heldListener();
  await liveShow(P, show);
  const link = (key: string): Promise<void> => linkOperatorMirror(svc, P, show, `${P}-a`, key, svc.rt.box, 'rtmp://127.0.0.1:9/app');
  await link('passkeys-op-1'); // a mirror key of this show alone (the other tests' shows, still live, are relayed too)
  // The keys the relay's box opens (the passes' only use of it after the constructor), in order.
  const opens: string[] = [];
  const box = new Proxy(svc.rt.box, {
    get(target, prop) {
      if (prop === 'decrypt') {
        return (sealed: string): string => {
          const key = target.decrypt(sealed);
          opens.push(key);
          return key;
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as SecretBox;
  const relay = handRunRelay(svc, { edgeUrl: () => edge.url, box });
  const kept = (): string[] => [...(ownedShow(relay, show)?.opened?.values() ?? [])].sort();
  const opened = (keys: string[]): string[] => opens.filter((k) => keys.includes(k)).sort();
  try {
    const oldKey = await svc.rt.relay.ingestKey(P, show);
    const oldKeys = [oldKey, 'passkeys-op-1'].sort();
    await relay.tick();
    expect({ kept: kept(), opened: opened(oldKeys) }).toEqual({ kept: oldKeys, opened: oldKeys });
    await relay.tick(); // the same sealed values: nothing opened again
    expect({ kept: kept(), opened: opened(oldKeys) }).toEqual({ kept: oldKeys, opened: oldKeys });

    const newKey = await svc.rt.relay.rotateIngestKey(P, show);
    await link('passkeys-op-2');
    const newKeys = [newKey, 'passkeys-op-2'].sort();
    await relay.tick();
    // The new keys only (each opened once): the old ones are out of the show's memory.
    expect({ kept: kept(), opened: opened(newKeys) }).toEqual({ kept: newKeys, opened: newKeys });
    expect(ownedShow(relay, show)?.dests.get(`${P}-a`)?.spec.input).toBe(`${edge.url}/${newKey}?play=${playToken(newKey)}`);
  } finally {
    await relay.close();
  }
}, 30_000);
