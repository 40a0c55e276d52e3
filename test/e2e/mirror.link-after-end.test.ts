/**
 * Linking a mirror of a show that is already over (ended or cancelled) to a platform show made by hand
 * (PUT /v1/partners/{p}/shows/{s}/mirrors/{t} {"externalId": <another id>}) records the link and
 * nothing else: the platform show is read (url) and indexed (platform orders naming it are attributed
 * to the show), and the mirror takes the show's end state. Found on npm start (2026-12-02): linking an
 * ended show's YouTube mirror to a broadcast made by hand retitled that broadcast with the show's
 * title and deleted it (the never-aired withdrawal), and a cancelled show's link deleted it at once;
 * one typo in the id takes down someone's broadcast. A link that a live show's run takes up, and
 * re-linking the same id, are unchanged (mirror.relink-same, mirror.operator-link). Real service and
 * workers, real Redis, the YouTube simulator over HTTP.
 */
import { sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';
import { settled, syncQueues } from '../helpers/settle.js';
import type { TestSim } from '../helpers/sim.js';
import { eventClock, simRigPerFile, simTarget, waitForMirror, type MirrorView } from '../helpers/mirrors.js';

const PARTNER = 'lae';

let svc: TestService;
let sim: TestSim;
let secret: string;
const next = eventClock();

const mirrorWhere = (showId: string, pred: (m: MirrorView) => boolean): Promise<MirrorView> => waitForMirror(svc, PARTNER, showId, pred);

simRigPerFile(PARTNER, (s) => [simTarget(s, 'youtube', { id: 'yt', name: 'YouTube', commissionRateBps: 1000 })], (rig) => ({ sim, svc, secret } = rig));

test.each([
  ['show.ended', 'ended'],
  ['show.cancelled', 'cancelled'],
])('after %s, linking a hand-made YouTube broadcast records it: not retitled, not deleted, mirror %s', async (type, state) => {
  const showId = `lae-${state}`;
  const show = sampleShow(showId, { title: `Over ${state}`, scheduledAt: new Date(Date.now() + 3600_000).toISOString() });
  expect((await sendEvent(svc, PARTNER, secret, showEvent('show.scheduled', show, next()))).status).toBe(202);
  await mirrorWhere(showId, (m) => m.state === 'ready' && m.externalId !== null);
  expect((await sendEvent(svc, PARTNER, secret, showEvent(type, { ...show, state }, next()))).status).toBe(202);
  await mirrorWhere(showId, (m) => m.state === state);
  await settled(syncQueues(svc));

  const made = (await sim.control('POST', '/_sim/youtube/shows', { title: 'Made by hand' })) as { externalId: string };
  const r = await svc.api(`/v1/partners/${PARTNER}/shows/${showId}/mirrors/yt`, { method: 'PUT', json: { externalId: made.externalId } });
  expect(r.status).toBe(200);
  const linked = await mirrorWhere(showId, (m) => m.externalId === made.externalId && m.state === state);
  await settled(syncQueues(svc));
  expect(linked.lastError).toBeNull();
  expect(linked.url).toContain(made.externalId);
  const stored = await svc.rt.shows.getMirror(PARTNER, showId, 'yt');
  expect(stored?.remote?.data['attach']).toBeUndefined(); // read from YouTube once (attachShow)
  // Indexed: a platform order naming this broadcast finds the show (attribution rule 2).
  expect(await svc.rt.redis.exists(svc.rt.keys.targetExternalShow('yt', made.externalId))).toBe(1);
  const fx = (await sim.effects('youtube')).filter((e) => e.externalId === made.externalId);
  expect(fx.map((e) => [e.type, e.title])).toEqual([['show.created', 'Made by hand']]);
});
