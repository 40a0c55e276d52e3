/**
 * The walking skeleton end to end: signed partner events in, the show mirrored onto the YouTube
 * simulator (created → live → pin as a chat message with the tracked link → ended), every step
 * visible over REST.
 */
import { sampleShow, sendEvent, showEvent, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { settled, syncQueues } from '../helpers/settle.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import { simRigPerFile, simTarget, youtubeEncoderNow } from '../helpers/mirrors.js';

let svc: TestService;
let sim: TestSim;
let secret: string;

interface ShowDoc {
  show: { state: string };
  mirrors: { targetId: string; state: string; externalId: string | null; ingest?: { url: string; streamKey: string }; pins: { productId: string; state: string; linkUrl: string | null }[]; lastError: string | null }[];
}

async function showDoc(showId: string): Promise<ShowDoc> {
  const r = await svc.api(`/v1/partners/tsl/shows/${showId}`);
  expect(r.status).toBe(200);
  return (await r.json()) as ShowDoc;
}

async function mirrorIn(showId: string, state: string): Promise<ShowDoc['mirrors'][number]> {
  return waitFor(async () => {
    const d = await showDoc(showId);
    const m = d.mirrors[0];
    return m && m.state === state ? m : undefined;
  }, 20_000);
}

simRigPerFile('tsl', (s) => [simTarget(s, 'youtube', { id: 'yt1', name: 'YT', commissionRateBps: 1000 })], (rig) => ({ sim, svc, secret } = rig), { prepare: youtubeEncoderNow });

test('scheduled → live → pinned → ended on the YouTube simulator, each effect once', async () => {
  const show = sampleShow('s1');
  expect((await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'))).status).toBe(202);
  const ready = await mirrorIn('s1', 'ready');
  expect(ready.externalId).toBeTruthy();
  expect(ready.ingest?.url).toMatch(/^rtmps?:\/\//);
  expect(ready.ingest?.streamKey).toBeTruthy();

  expect((await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'))).status).toBe(202);
  await mirrorIn('s1', 'live');

  expect((await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 's1', productId: 'p1' } })).status).toBe(202);
  const pinned = await waitFor(async () => {
    const m = (await showDoc('s1')).mirrors[0];
    return m?.pins.find((p) => p.productId === 'p1' && p.state === 'pinned');
  });
  expect(pinned.linkUrl).toMatch(new RegExp(`^${svc.url}/l/[A-Za-z0-9_-]+$`));
  // The ops console's timeline has the reported change (written by the sync's last save) and the run.
  const timeline = await waitFor(async () => {
    const d = (await (await svc.api('/v1/ops/partners/tsl/shows/s1')).json()) as { timeline: { kind: string; summary: string }[] };
    return d.timeline.some((e) => e.kind === 'effect' && /^youtube mirror live \(.+\), pinned p1$/.test(e.summary)) ? d.timeline : undefined;
  });
  expect(timeline).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'sync', summary: expect.stringMatching(/^sync run: live in \d+ ms$/) })]));

  // The tracked link redirects to the product with the click id.
  const click = await fetch(pinned.linkUrl!, { redirect: 'manual' });
  expect(click.status).toBe(302);
  const loc = new URL(click.headers.get('location')!);
  expect(loc.origin + loc.pathname).toBe('https://shop.example.com/p1');
  expect(loc.searchParams.get('sclid')).toMatch(/^clk_/);
  expect(loc.searchParams.get('utm_source')).toBe('youtube');
  expect(loc.searchParams.get('utm_campaign')).toBe('s1');

  expect((await sendEvent(svc, 'tsl', secret, showEvent('show.ended', { ...show, state: 'ended', pinnedProductIds: ['p1'] }, '2026-11-24T19:00:00Z'))).status).toBe(202);
  const ended = await mirrorIn('s1', 'ended');
  expect(ended.lastError).toBeNull();

  const effects = (await sim.effects('youtube')).filter((e) => e.externalId === ended.externalId);
  expect(effects.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted', 'show.ended']);
  expect(effects[2]!.url).toBe(pinned.linkUrl);
});

test('a title change after creation is mirrored as an update', async () => {
  const show = sampleShow('s2');
  await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'));
  const ready = await mirrorIn('s2', 'ready');
  await sendEvent(svc, 'tsl', secret, showEvent('show.updated', { ...show, title: 'Holiday glow edit' }, '2026-11-24T17:10:00Z'));
  await waitFor(async () => (await sim.effects('youtube')).find((e) => e.externalId === ready.externalId && e.type === 'show.updated' && e.title === 'Holiday glow edit'));
  // A late, older snapshot does not roll the title back.
  await sendEvent(svc, 'tsl', secret, showEvent('show.updated', { ...show, title: 'Stale title' }, '2026-11-24T17:05:00Z'));
  // Its sync job was queued before the 202: once the queues are empty it has run (no fixed sleep).
  await settled(syncQueues(svc));
  expect((await svc.rt.shows.getMirror('tsl', 's2', 'yt1'))?.syncedVersion).toBe(await svc.rt.shows.version('tsl', 's2'));
  const updates = (await sim.effects('youtube')).filter((e) => e.externalId === ready.externalId && e.type === 'show.updated');
  expect(updates.map((u) => u.title)).toEqual(['Holiday glow edit']);
});

/** The show's yt1 mirror once it is in one of `states`. */
async function yt1In(showId: string, states: string[]): Promise<ShowDoc['mirrors'][number]> {
  return waitFor(async () => (await showDoc(showId)).mirrors.find((m) => m.targetId === 'yt1' && states.includes(m.state)), 20_000);
}

// YouTube refuses liveBroadcasts.delete once a broadcast is testing or live (403
// liveBroadcastDeletionNotAllowed): a show cancelled on air is ended with the transition to complete.
test.each([
  ['show.cancelled', 's4'],
  ['show.updated', 's5'],
])('a show cancelled (%s) while its YouTube mirror is live is ended on YouTube, not deleted; the mirror is cancelled without an error', async (type, id) => {
  const show = sampleShow(id);
  await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'));
  await yt1In(id, ['ready']);
  await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
  const live = await yt1In(id, ['live']);
  await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: id, productId: 'p1' } });
  await waitFor(async () => (await yt1In(id, ['live'])).pins.find((p) => p.productId === 'p1' && p.state === 'pinned'));

  expect((await sendEvent(svc, 'tsl', secret, showEvent(type, { ...show, state: 'cancelled', pinnedProductIds: ['p1'] }, '2026-11-24T18:30:00Z'))).status).toBe(202);
  const done = await yt1In(id, ['cancelled', 'ended', 'failed']);
  expect({ state: done.state, lastError: done.lastError }).toEqual({ state: 'cancelled', lastError: null });
  // The broadcast is over, so nothing stays pinned on it (as after an end).
  expect(done.pins.map((p) => [p.productId, p.state])).toEqual([['p1', 'unpinned']]);
  // A crash after YouTube ended the broadcast but before the mirror was saved: the mirror is still
  // live and the cancel runs again. It finds the broadcast complete and does nothing more (each
  // effect once: no second end, no delete of the ended broadcast).
  await svc.rt.shows.updateMirror('tsl', id, 'yt1', () => { throw new Error('the mirror exists'); }, (m) => {
    m.state = 'live';
    return true;
  });
  expect((await svc.api(`/v1/partners/tsl/shows/${id}/mirrors/yt1/resync`, { method: 'POST' })).status).toBe(202);
  const again = await yt1In(id, ['cancelled', 'ended', 'failed']);
  expect({ state: again.state, lastError: again.lastError }).toEqual({ state: 'cancelled', lastError: null });

  const effects = (await sim.effects('youtube')).filter((e) => e.externalId === live.externalId);
  expect(effects.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted', 'show.ended']);
});

test('a revoked refresh token fails the mirror with a readable error', async () => {
  // Revoked after the target was saved (saving checks it: 422, test/e2e/targets.verify.test.ts): the
  // target is saved without the check, and the account owner revokes the token on the simulator (a
  // never-seen token would be a new channel's, CONTRACT §9).
  await sim.control('POST', '/_sim/youtube/revocations', { token: 'revoked-1' });
  const r = await svc.api('/v1/partners/tsl/targets?verify=false', {
    json: { id: 'yt-revoked', platform: 'youtube', name: 'YT revoked', credentials: { ...CREDENTIALS.youtube, refreshToken: 'revoked-1' }, baseUrl: sim.base('youtube'), commissionRateBps: 1000 },
  });
  expect(r.status).toBe(201);
  await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', sampleShow('s3'), '2026-11-24T17:00:00Z'));
  const failed = await waitFor(async () => (await showDoc('s3')).mirrors.find((m) => m.targetId === 'yt-revoked' && m.state === 'failed'));
  expect(failed.lastError).toMatch(/re-?authori[sz]e/i);
  await svc.api('/v1/partners/tsl/targets/yt-revoked', { method: 'DELETE' });
});

test('a channel not enabled for live streaming: the target is refused when saved (422), and saved anyway its mirror fails once with what to do, not retried', async () => {
  // refused calls: the check's stream list, and this show's inserts (its broadcast's, the first; the other
  // shows still on air get a mirror on the new target too, each refused once: their titles differ)
  const refusals = async (): Promise<string[]> =>
    ((await sim.control('GET', '/_sim/youtube/requests')) as { method: string; path: string; status: number; body: string }[])
      .filter((r) => r.status === 403 && ((r.method === 'GET' && r.path === '/youtube/v3/liveStreams') || (r.method === 'POST' && /^\/youtube\/v3\/live(Streams|Broadcasts)$/.test(r.path) && r.body.includes('"Show s-nolive"'))))
      .map((r) => r.method);
  const before = (await refusals()).length;
  const channel = (await sim.control('POST', '/_sim/youtube/accounts', {})) as { channelId: string; credentials: Record<string, string> };
  await sim.control('PUT', '/_sim/youtube/live-streaming', { account: channel.channelId, enabled: false });
  const target = { id: 'yt-nolive', platform: 'youtube', name: 'YT not enabled', credentials: channel.credentials, baseUrl: sim.base('youtube'), commissionRateBps: 1000 };
  const refused = await svc.api('/v1/partners/tsl/targets', { json: target });
  expect(refused.status).toBe(422);
  expect(JSON.stringify(await refused.json())).toMatch(/live streaming is not enabled on this YouTube channel: enable it in YouTube Studio/);
  expect((await svc.api('/v1/partners/tsl/targets?verify=false', { json: target })).status).toBe(201);

  await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', sampleShow('s-nolive'), '2026-11-24T17:00:00Z'));
  const failed = await waitFor(async () => (await showDoc('s-nolive')).mirrors.find((m) => m.targetId === 'yt-nolive' && m.state === 'failed'));
  expect(failed.lastError).toMatch(/live streaming is not enabled on this YouTube channel: enable it in YouTube Studio .*then resync/);
  expect((await refusals()).slice(before)).toEqual(['GET', 'POST']); // the save's check, the mirror's one insert (its broadcast's)
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect((await refusals()).slice(before)).toEqual(['GET', 'POST']); // failed, not retried
  await svc.api('/v1/partners/tsl/targets/yt-nolive', { method: 'DELETE' });
});

test('a broadcast made by hand without a stream, linked by an operator: the sync binds a stream to it, the show goes live and its pin posts', async () => {
  // YouTube refuses to take a broadcast with no bound, active stream to testing/live (errorStreamInactive):
  // the link used to only read the broadcast, so the mirror had no ingest and never went live.
  const show = sampleShow('s9');
  await sendEvent(svc, 'tsl', secret, showEvent('show.scheduled', show, '2026-11-24T17:00:00Z'));
  const created = await yt1In('s9', ['ready']);
  const { externalId } = (await sim.control('POST', '/_sim/youtube/shows', { title: 'Made in YouTube Studio' })) as { externalId: string };
  const r = await svc.api(`/v1/partners/tsl/shows/s9/mirrors/yt1`, { method: 'PUT', json: { externalId } });
  expect(r.status).toBe(200);
  const linked = await waitFor(async () => {
    const m = (await showDoc('s9')).mirrors.find((x) => x.targetId === 'yt1');
    return m && m.externalId === externalId && m.ingest ? m : undefined;
  }, 20_000);
  expect(linked.ingest?.url).toMatch(/^rtmps?:\/\//);

  await sendEvent(svc, 'tsl', secret, showEvent('show.live', { ...show, state: 'live' }, '2026-11-24T18:00:00Z'));
  const live = await yt1In('s9', ['live']);
  expect(live.externalId).toBe(externalId);
  await sendEvent(svc, 'tsl', secret, { type: 'product.pinned', occurredAt: '2026-11-24T18:05:00Z', data: { showId: 's9', productId: 'p1' } });
  await waitFor(async () => (await showDoc('s9')).mirrors.find((m) => m.targetId === 'yt1')?.pins.find((p) => p.productId === 'p1' && p.state === 'pinned'), 20_000);

  await settled(syncQueues(svc));
  const fx = (await sim.effects('youtube')).filter((e) => e.externalId === externalId);
  // (show.updated: the sync writes the partner's title and start onto the adopted broadcast)
  expect(fx.map((e) => e.type)).toEqual(['show.created', 'show.updated', 'show.started', 'message.posted']);
  // the linked broadcast was bound once, to one stream
  const binds = ((await sim.control('GET', '/_sim/youtube/requests?since=0')) as { path: string; query: Record<string, string> }[]).filter(
    (q) => q.path === '/youtube/v3/liveBroadcasts/bind' && q.query.id === externalId,
  );
  expect(binds).toHaveLength(1);
  expect(created.externalId).not.toBe(externalId);
});
