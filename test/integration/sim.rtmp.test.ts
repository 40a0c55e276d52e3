/**
 * The simulators' RTMP sinks (README "Platforms", issue 10 item 7), with a real encoder: ffmpeg publishing a
 * generated H.264 + AAC test pattern to the ingest addresses the simulators hand out.
 */
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import { startSim, type SimStreamView, type TestSim } from '../helpers/sim.js';
import { spawn } from 'node:child_process';
import { publishTestPattern, testFfmpeg, type Publisher } from '../helpers/ffmpeg.js';
import { waitFor } from '../helpers/service.js';

/** Encoders run at real time on a shared machine: generous per-test limits (nothing here is timed). */
const T = 120_000;

let sim: TestSim;
const running: Publisher[] = [];

beforeAll(async () => {
  sim = await startSim();
}, T);
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await sim.close();
}, T);
beforeEach(async () => {
  await sim.control('POST', '/_sim/reset');
}, T);
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
}, T);

type Ingest = { url: string; streamKey: string };

function publish(ingest: Ingest, seconds?: number): Publisher {
  const p = publishTestPattern({ target: `${ingest.url}/${ingest.streamKey}`, ...(seconds !== undefined ? { seconds } : {}) });
  running.push(p);
  return p;
}

async function handMade(platform: string, title = 'Hand-made show'): Promise<{ externalId: string; ingest: Ingest }> {
  return (await sim.control('POST', `/_sim/${platform}/shows`, { title })) as { externalId: string; ingest: Ingest };
}

async function streamOf(platform: string, streamKey: string): Promise<SimStreamView | undefined> {
  return (await sim.streams(platform)).find((s) => s.streamKey === streamKey);
}

// --- YouTube over its own API -----------------------------------------------------------------

const clientOf = (a: { clientId: string; clientSecret: string; refreshToken: string }): Record<string, string> => ({
  client_id: a.clientId,
  client_secret: a.clientSecret,
  refresh_token: a.refreshToken,
});
async function ytToken(): Promise<string> {
  const r = await fetch(`${sim.url}/youtube/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    // the seeded channel's OAuth credentials: the simulator refuses any other (src/simulators/sim.accounts.ts)
    body: new URLSearchParams({ grant_type: 'refresh_token', ...clientOf(SIM_ACCOUNTS.youtube[0]!) }).toString(),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { access_token: string }).access_token;
}
async function yt(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${sim.url}/youtube/youtube/v3/${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
const reason = (r: { json: Record<string, unknown> }): unknown => (r.json.error as { errors: Array<{ reason: string }> } | undefined)?.errors[0]?.reason;

/** liveStream + broadcast (monitor stream on) + bind, the way the adapter does it. */
async function youtubeBroadcast(token: string): Promise<{ streamId: string; broadcastId: string; ingest: Ingest }> {
  const s = await yt(token, 'POST', 'liveStreams?part=snippet,cdn,contentDetails,status', {
    snippet: { title: 'ingest' },
    cdn: { frameRate: '30fps', ingestionType: 'rtmp', resolution: '360p' },
  });
  expect(s.status).toBe(200);
  const info = (s.json.cdn as { ingestionInfo: { ingestionAddress: string; streamName: string } }).ingestionInfo;
  const b = await yt(token, 'POST', 'liveBroadcasts?part=snippet,status,contentDetails', {
    snippet: { title: 'Spring drop', scheduledStartTime: new Date(Date.now() + 3_600_000).toISOString() },
    status: { privacyStatus: 'unlisted' },
    contentDetails: { monitorStream: { enableMonitorStream: true } },
  });
  expect(b.status).toBe(200);
  const broadcastId = b.json.id as string;
  const streamId = s.json.id as string;
  expect((await yt(token, 'POST', `liveBroadcasts/bind?id=${broadcastId}&streamId=${streamId}&part=id,status`)).status).toBe(200);
  return { streamId, broadcastId, ingest: { url: info.ingestionAddress, streamKey: info.streamName } };
}
async function ytStreamStatus(token: string, streamId: string): Promise<string> {
  const r = await yt(token, 'GET', `liveStreams?part=status&id=${streamId}`, undefined);
  return (r.json.items as Array<{ status: { streamStatus: string } }>)[0]!.status.streamStatus;
}

// ------------------------------------------------------------------------------------------------

test('every platform hands out an ingest on the sink; a real encoder reaches each one with H.264 + AAC', async () => {
  const token = await ytToken();
  const yb = await youtubeBroadcast(token);
  const ingests: Record<string, { externalId: string; ingest: Ingest }> = { youtube: { externalId: yb.broadcastId, ingest: yb.ingest } };
  for (const p of ['tiktok', 'whatnot', 'bambuser', 'facebook']) ingests[p] = await handMade(p);
  // Facebook's hand-made show is a live video: its ingest is the video's own stream key
  expect(ingests.facebook!.ingest.streamKey).toMatch(/^FB-\d+-0-/);

  for (const [platform, { ingest }] of Object.entries(ingests)) {
    expect(ingest.url).toBe(`${sim.rtmpUrl}/${platform}`);
    expect(ingest.url).toMatch(/^rtmp:\/\/127\.0\.0\.1:\d+\/\w+$/);
    expect(await streamOf(platform, ingest.streamKey)).toMatchObject({ publishing: false, publishers: 0, bytes: 0, since: null });
  }

  const pubs = Object.values(ingests).map(({ ingest }) => publish(ingest, 3));
  for (const [platform, { ingest }] of Object.entries(ingests)) {
    const live = await waitFor(async () => {
      const s = await streamOf(platform, ingest.streamKey);
      return s?.publishing && s.videoCodec && s.audioCodec ? s : undefined;
    }, 60_000);
    expect(live).toMatchObject({ publishing: true, publishers: 1, videoCodec: 'h264', audioCodec: 'aac', since: expect.any(String) });
  }
  expect(await Promise.all(pubs.map((p) => p.exited))).toEqual([0, 0, 0, 0, 0]);

  for (const [platform, { externalId, ingest }] of Object.entries(ingests)) {
    const s = await waitFor(async () => {
      const v = await streamOf(platform, ingest.streamKey);
      return v && !v.publishing ? v : undefined;
    });
    // 3 s at ~1.6 Mbps is ~600 KB; well over 100 KB whatever the load
    expect(s).toMatchObject({ externalId, publishing: false, publishers: 0, maxPublishers: 1, publishes: 1, videoCodec: 'h264', audioCodec: 'aac', since: null });
    expect(s.bytes).toBeGreaterThan(100_000);
    expect(Date.parse(s.firstDataAt!)).toBeLessThanOrEqual(Date.parse(s.lastDataAt!));
    const types = (await sim.effects(platform)).filter((e) => e.type.startsWith('stream.')).map((e) => [e.type, e.externalId]);
    expect(types).toEqual([
      ['stream.started', externalId],
      ['stream.stopped', externalId],
    ]);
  }
}, T);

test('a publish to an unknown key or platform is refused, and so is playing from an ingest', async () => {
  const { ingest } = await handMade('tiktok');
  const wrongKey = publish({ url: ingest.url, streamKey: 'not-a-key' }, 2);
  const wrongApp = publish({ url: `${sim.rtmpUrl}/nowhere`, streamKey: ingest.streamKey }, 2);
  const otherPlatform = publish({ url: `${sim.rtmpUrl}/whatnot`, streamKey: ingest.streamKey }, 2);
  for (const p of [wrongKey, wrongApp, otherPlatform]) expect(await p.exited).not.toBe(0);
  expect(wrongKey.stderr()).toMatch(/Unknown stream key/);
  expect(await sim.streams('tiktok')).toEqual([expect.objectContaining({ streamKey: ingest.streamKey, publishes: 0, bytes: 0 })]);
  expect(await sim.streams('whatnot')).toEqual([]);
  expect((await sim.effects('tiktok')).filter((e) => e.type.startsWith('stream.'))).toEqual([]);

  // an ingest is write-only: playing from it (even while someone publishes) is refused
  const enc = publish(ingest);
  await waitFor(async () => (await streamOf('tiktok', ingest.streamKey))?.publishing, 60_000);
  const player = spawn(testFfmpeg(), ['-hide_banner', '-nostdin', '-loglevel', 'error', '-rw_timeout', '10000000', '-i', `${ingest.url}/${ingest.streamKey}`, '-t', '1', '-f', 'null', '-'], { stdio: 'ignore' });
  expect(await new Promise((resolve) => player.once('exit', resolve))).not.toBe(0);
  expect(enc.child.exitCode).toBeNull();
}, T);

test('a second encoder on a key that is already publishing is refused and counted', async () => {
  const { ingest } = await handMade('bambuser');
  const first = publish(ingest);
  await waitFor(async () => (await streamOf('bambuser', ingest.streamKey))?.publishing, 60_000);
  const second = publish(ingest, 2);
  expect(await second.exited).not.toBe(0);
  const s = (await streamOf('bambuser', ingest.streamKey))!;
  expect(s).toMatchObject({ publishing: true, publishers: 1, maxPublishers: 2, refused: 1, publishes: 1 });
  expect(first.child.exitCode).toBeNull();
}, T);

test('rtmp_refuse refuses new publishes while set; API requests are not affected', async () => {
  const { ingest } = await handMade('whatnot');
  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['rtmp_refuse'] });
  const refused = publish(ingest, 2);
  expect(await refused.exited).not.toBe(0);
  expect(refused.stderr()).toMatch(/Publishing refused/);
  expect(await streamOf('whatnot', ingest.streamKey)).toMatchObject({ refused: 1, publishes: 0, bytes: 0 });
  // a platform API request still goes through (rtmp faults are not API faults)
  const api = await fetch(`${sim.url}/whatnot/no-such-endpoint`);
  expect([401, 404]).toContain(api.status);
  expect((await sim.control('GET', '/_sim/whatnot/requests')) as Array<{ fault?: string }>).toEqual([expect.not.objectContaining({ fault: expect.anything() })]);

  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  const ok = publish(ingest, 1);
  expect(await ok.exited).toBe(0);
  expect(await streamOf('whatnot', ingest.streamKey)).toMatchObject({ refused: 1, publishes: 1 });
}, T);

test('rtmp_drop drops the current publisher and keeps dropping while set', async () => {
  const { externalId, ingest } = await handMade('tiktok');
  const first = publish(ingest);
  await waitFor(async () => (await streamOf('tiktok', ingest.streamKey))?.receiving, 60_000);
  await sim.control('PUT', '/_sim/tiktok/faults', { rate: 1, kinds: ['rtmp_drop'] });
  expect(await first.exited).not.toBe(0);
  const dropped = await waitFor(async () => {
    const s = await streamOf('tiktok', ingest.streamKey);
    return s && !s.publishing ? s : undefined;
  });
  expect(dropped).toMatchObject({ drops: 1, publishes: 1, publishing: false });
  const firstByte = dropped.firstDataAt;
  expect(dropped.bytes).toBeGreaterThan(0);

  // while set, a new publisher is dropped as soon as it publishes
  const again = publish(ingest);
  expect(await again.exited).not.toBe(0);
  expect(await streamOf('tiktok', ingest.streamKey)).toMatchObject({ drops: 2, publishes: 2 });

  await sim.control('PUT', '/_sim/tiktok/faults', { rate: 0, kinds: [] });
  // The key stays without data for over a second (a fast machine re-publishes sooner than that).
  await waitFor(async () => {
    const s = await streamOf('tiktok', ingest.streamKey);
    return s?.lastDataAt && Date.now() - Date.parse(s.lastDataAt) > 1_200;
  }, 10_000, 100);
  const ok = publish(ingest, 1);
  expect(await ok.exited).toBe(0);
  const after = (await streamOf('tiktok', ingest.streamKey))!;
  expect(after).toMatchObject({ drops: 2, publishes: 3, firstDataAt: firstByte });
  // the time without data between the drops and the last publish is a gap over 1 s on the key
  expect(after.longGaps.length).toBeGreaterThanOrEqual(1);
  expect(after.maxGapMs).toBeGreaterThan(1000);
  const types = (await sim.effects('tiktok')).filter((e) => e.externalId === externalId && e.type.startsWith('stream.')).map((e) => e.type);
  expect(types).toEqual(['stream.started', 'stream.stopped', 'stream.started', 'stream.stopped', 'stream.started', 'stream.stopped']);
}, T);

test('YouTube: a stream is active only while its key receives data; going live without data fails with errorStreamInactive', async () => {
  const token = await ytToken();
  const { streamId, broadcastId, ingest } = await youtubeBroadcast(token);
  expect(await ytStreamStatus(token, streamId)).toBe('ready');

  for (const target of ['testing', 'live']) {
    const r = await yt(token, 'POST', `liveBroadcasts/transition?broadcastStatus=${target}&id=${broadcastId}&part=status`, undefined);
    expect(r.status).toBe(403);
    // live is refused before anything else: the monitor stream is on, so testing must come first
    expect(reason(r)).toBe(target === 'testing' ? 'errorStreamInactive' : 'invalidTransition');
  }

  const enc = publish(ingest);
  await waitFor(async () => (await ytStreamStatus(token, streamId)) === 'active', 60_000);
  expect(await streamOf('youtube', ingest.streamKey)).toMatchObject({ externalId: broadcastId, publishing: true, receiving: true });
  expect((await yt(token, 'POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${broadcastId}&part=status`, undefined)).status).toBe(200);
  expect((await yt(token, 'POST', `liveBroadcasts/transition?broadcastStatus=live&id=${broadcastId}&part=status`, undefined)).status).toBe(200);

  await enc.stop();
  await waitFor(async () => (await ytStreamStatus(token, streamId)) === 'inactive');
  const types = (await sim.effects('youtube')).filter((e) => e.externalId === broadcastId).map((e) => e.type);
  expect(types).toEqual(['show.created', 'stream.started', 'show.started', 'stream.stopped']);
}, T);

test('YouTube: a broadcast that is ready but whose stream stopped sending cannot go to testing', async () => {
  const token = await ytToken();
  const { streamId, broadcastId, ingest } = await youtubeBroadcast(token);
  // 1 s of data: the stream stays active for 2 s after it (RECEIVING_IDLE_MS), time enough to see it so.
  const enc = publish(ingest, 1);
  await waitFor(async () => (await ytStreamStatus(token, streamId)) === 'active', 60_000);
  await enc.exited;
  await waitFor(async () => (await ytStreamStatus(token, streamId)) === 'inactive');
  const r = await yt(token, 'POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${broadcastId}&part=status`, undefined);
  expect(r.status).toBe(403);
  expect(reason(r)).toBe('errorStreamInactive');
}, T);

test('POST /_sim/reset forgets every stream key and disconnects its publisher', async () => {
  const { ingest } = await handMade('facebook');
  const enc = publish(ingest);
  await waitFor(async () => (await streamOf('facebook', ingest.streamKey))?.publishing, 60_000);
  await sim.control('POST', '/_sim/reset');
  expect(await enc.exited).not.toBe(0);
  expect(await sim.streams('facebook')).toEqual([]);
  const after = publish(ingest, 1);
  expect(await after.exited).not.toBe(0);
}, T);

// --- Facebook: a scheduled live video goes live at its planned start ------------------------------

async function fb(method: string, path: string, params: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const { pageAccessToken } = SIM_ACCOUNTS.facebook[0]!;
  const form = new URLSearchParams(params).toString();
  const r = await fetch(`${sim.url}/facebook/v21.0/${path}`, {
    method,
    headers: { authorization: `Bearer ${pageAccessToken}`, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    ...(method === 'POST' ? { body: form } : {}),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}
async function fbStatus(id: string): Promise<unknown> {
  return (await fb('GET', `${id}?fields=status`)).json.status;
}
async function scheduled(startUnix: number): Promise<{ id: string; ingest: Ingest }> {
  const { pageId } = SIM_ACCOUNTS.facebook[0]!;
  const r = await fb('POST', `${pageId}/live_videos`, { title: 'Spring drop', status: 'SCHEDULED_UNPUBLISHED', event_params: JSON.stringify({ start_time: startUnix }) });
  expect(r.status).toBe(200);
  const url = r.json.secure_stream_url as string;
  const i = url.lastIndexOf('/');
  return { id: r.json.id as string, ingest: { url: url.slice(0, i), streamKey: url.slice(i + 1) } };
}

test('Facebook: a scheduled live video goes live by itself at its planned start while it receives data, without LIVE_NOW', async () => {
  // "The broadcast will appear on the node's timeline/feed at the planned start time as long as it is
  // receiving stream data" (Live Video API, Schedule a Broadcast). The simulator kept a scheduled video
  // SCHEDULED_UNPUBLISHED until POST status=LIVE_NOW, whatever its stream and clock said.
  await sim.control('PUT', '/_sim/facebook/limits', { minScheduleLeadSec: 0 }); // Facebook's is 10 minutes: a test cannot wait that long
  const nowS = Math.floor(Date.now() / 1000);
  const later = await scheduled(nowS + 3600); // receives data an hour before its start: a preview
  const soon = await scheduled(nowS + 2); // no data at its planned start: nothing airs
  const encLater = publish(later.ingest);
  await waitFor(async () => (await streamOf('facebook', later.ingest.streamKey))?.receiving, 60_000);
  await waitFor(async () => Date.now() > (nowS + 3) * 1000, 10_000); // a second past soon's start
  expect(await fbStatus(soon.id)).toBe('SCHEDULED_UNPUBLISHED');
  expect(await fbStatus(later.id)).toBe('SCHEDULED_UNPUBLISHED');

  // data after the planned start: on air
  publish(soon.ingest);
  await waitFor(async () => (await fbStatus(soon.id)) === 'LIVE', 60_000);
  expect(await fbStatus(later.id)).toBe('SCHEDULED_UNPUBLISHED');

  // moved to a start a few seconds out while receiving: on air at that start
  const moveTo = Math.floor(Date.now() / 1000) + 2;
  expect((await fb('POST', later.id, { event_params: JSON.stringify({ start_time: moveTo }) })).status).toBe(200);
  await waitFor(async () => (await fbStatus(later.id)) === 'LIVE', 30_000);
  expect(Date.now()).toBeGreaterThanOrEqual(moveTo * 1000);
  const started = (await sim.effects('facebook')).filter((e) => e.type === 'show.started');
  expect(started.map((e) => e.externalId).sort()).toEqual([soon.id, later.id].sort());
  await encLater.stop();
}, T);
