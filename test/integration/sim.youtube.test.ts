/**
 * The YouTube Live simulator and the simulator control plane, over real HTTP (no mocks): the
 * production adapter will run against exactly this, so these tests pin the protocol it sees.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import { startSimulators, type StartedSimulators } from '../../src/simulators/sim.server.js';

/** Channel a's and channel b's OAuth credentials (src/simulators/sim.accounts.ts). */
const A = SIM_ACCOUNTS.youtube[0]!;
const B = SIM_ACCOUNTS.youtube[1]!;
const form = (refreshToken: string, client = A): string =>
  new URLSearchParams({ grant_type: 'refresh_token', client_id: client.clientId, client_secret: client.clientSecret, refresh_token: refreshToken }).toString();

type Json = Record<string, unknown> & { error?: { code: number; message: string; errors: Array<Record<string, string>>; status?: string } };
interface Res {
  status: number;
  headers: Headers;
  json: Json;
  text: string;
}

let srv: StartedSimulators;
let base: string;

beforeAll(async () => {
  srv = await startSimulators({ port: 0 });
  base = srv.url;
});
afterAll(async () => {
  await srv.close();
});
beforeEach(async () => {
  await control('POST', '/_sim/reset');
  // the API flow without video: a simulated encoder makes a bound stream active (test/integration/sim.rtmp.test.ts pushes real RTMP)
  await control('PUT', '/_sim/youtube/limits', { simulatedEncoder: 1 });
});

async function call(method: string, url: string, init: { headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}): Promise<Res> {
  const res = await fetch(url, { method, ...init });
  const text = await res.text();
  let json: Json = {};
  try {
    json = text ? (JSON.parse(text) as Json) : {};
  } catch {
    // non-JSON body: keep text
  }
  return { status: res.status, headers: res.headers, json, text };
}

function control(method: string, path: string, body?: unknown): Promise<Res> {
  return call(method, `${base}${path}`, body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function getToken(refreshToken = A.refreshToken): Promise<string> {
  const r = await call('POST', `${base}/youtube/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form(refreshToken),
  });
  expect(r.status).toBe(200);
  return r.json.access_token as string;
}

/** Data API call: `path` like `liveBroadcasts?part=snippet`. */
function yt(method: string, path: string, token: string | undefined, body?: unknown, signal?: AbortSignal): Promise<Res> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return call(method, `${base}/youtube/youtube/v3/${path}`, { headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
}

const reasonOf = (r: Res): string | undefined => r.json.error?.errors[0]?.reason;
const domainOf = (r: Res): string | undefined => r.json.error?.errors[0]?.domain;

const streamBody = { snippet: { title: 'Show ingest' }, cdn: { frameRate: '30fps', ingestionType: 'rtmp', resolution: '1080p' }, contentDetails: { isReusable: false } };
function broadcastBody(title = 'Spring drop', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    snippet: { title, description: 'syndicast:mk-123', scheduledStartTime: new Date(Date.now() + 3_600_000).toISOString() },
    status: { privacyStatus: 'unlisted' },
    contentDetails: { monitorStream: { enableMonitorStream: true }, enableAutoStart: false, enableAutoStop: false, ...extra },
  };
}

async function effects(): Promise<Array<Record<string, unknown>>> {
  return (await control('GET', '/_sim/youtube/effects')).json as unknown as Array<Record<string, unknown>>;
}

/** stream + broadcast + bind; returns ids. */
async function provision(token: string, extra: Record<string, unknown> = {}): Promise<{ streamId: string; broadcastId: string; liveChatId: string }> {
  const s = await yt('POST', 'liveStreams?part=snippet,cdn,contentDetails,status', token, streamBody);
  expect(s.status).toBe(200);
  const b = await yt('POST', 'liveBroadcasts?part=snippet,status,contentDetails', token, broadcastBody('Spring drop', extra));
  expect(b.status).toBe(200);
  const broadcastId = b.json.id as string;
  const streamId = s.json.id as string;
  const bound = await yt('POST', `liveBroadcasts/bind?id=${broadcastId}&streamId=${streamId}&part=id,contentDetails,status`, token);
  expect(bound.status).toBe(200);
  return { streamId, broadcastId, liveChatId: (b.json.snippet as { liveChatId: string }).liveChatId };
}

async function waitStreamActive(token: string, streamId: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await yt('GET', `liveStreams?part=status&id=${streamId}`, token);
    const item = (r.json.items as Array<{ status: { streamStatus: string } }>)[0];
    if (item?.status.streamStatus === 'active') return;
    await sleep(25);
  }
  throw new Error('stream never became active');
}

describe('OAuth token endpoint', () => {
  it('exchanges a refresh token for a Bearer access token', async () => {
    const r = await call('POST', `${base}/youtube/token`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form(A.refreshToken),
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ access_token: expect.stringMatching(/^ya29\./), expires_in: 3599, token_type: 'Bearer', scope: expect.any(String) });
    const list = await yt('GET', 'liveBroadcasts?part=id&mine=true', r.json.access_token as string);
    expect(list.status).toBe(200);
  });

  it('refuses a known OAuth client with a wrong client secret (401 invalid_client) and a refresh token of another client (invalid_grant); never-seen credentials are a new channel', async () => {
    const post = (body: string) => call('POST', `${base}/youtube/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    // channel a's refresh token under a client it was not issued to
    const unknown = await post(form(A.refreshToken, { ...A, clientId: 'someone-else.apps.googleusercontent.com' }));
    expect([unknown.status, unknown.json]).toEqual([400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }]);
    // a client never seen is registered with the secret given; a refresh token never seen is a new channel's grant
    const made = { ...A, clientId: 'made-up.apps.googleusercontent.com', clientSecret: 'GOCSPX-made-up' };
    const fresh = await post(form('1//made-up-refresh', made));
    expect(fresh.status).toBe(200);
    const freshToken = fresh.json.access_token as string;
    const created = await yt('POST', 'liveBroadcasts?part=snippet,status', freshToken, broadcastBody('Made-up channel'));
    expect(created.status).toBe(200);
    const madeChannel = (created.json.snippet as { channelId: string }).channelId;
    expect([A.channelId, B.channelId]).not.toContain(madeChannel);
    const tokenA = await getToken();
    expect((await yt('DELETE', `liveBroadcasts?id=${created.json.id as string}`, tokenA)).status).toBe(404);
    // the registered client now takes its own secret only
    const madeWrong = await post(form('1//made-up-refresh', { ...made, clientSecret: 'GOCSPX-other' }));
    expect([madeWrong.status, madeWrong.json.error]).toEqual([401, 'invalid_client']);
    const wrongSecret = await post(form(A.refreshToken, { ...A, clientSecret: 'GOCSPX-guessed' }));
    expect([wrongSecret.status, wrongSecret.json]).toEqual([401, { error: 'invalid_client', error_description: 'Unauthorized' }]);
    const other = (await control('POST', '/_sim/youtube/accounts', { clientId: 'client-2.apps.googleusercontent.com', clientSecret: 'GOCSPX-2' })).json as unknown as { refreshToken: string };
    const crossed = await post(form(other.refreshToken));
    expect([crossed.status, crossed.json.error]).toEqual([400, 'invalid_grant']);
  });

  it('a refresh token granted only youtube.readonly: the token endpoint says so, reads work, every write is 403 insufficientPermissions', async () => {
    const readonly = 'https://www.googleapis.com/auth/youtube.readonly';
    const acct = (await control('POST', '/_sim/youtube/accounts', { scope: readonly })).json as unknown as { refreshToken: string };
    const r = await call('POST', `${base}/youtube/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(acct.refreshToken) });
    expect(r.json.scope).toBe(readonly);
    const token = r.json.access_token as string;
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(200);
    for (const w of [
      await yt('POST', 'liveBroadcasts?part=snippet,status', token, broadcastBody('Read only')),
      await yt('POST', 'liveStreams?part=snippet,cdn', token, streamBody),
    ]) {
      expect([w.status, reasonOf(w), domainOf(w)]).toEqual([403, 'insufficientPermissions', 'global']);
    }
    expect((await control('GET', '/_sim/youtube/effects')).json).toEqual([]);
    // the seeded channels' grants are the full youtube scope
    const full = await call('POST', `${base}/youtube/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(A.refreshToken) });
    expect(full.json.scope).toBe('https://www.googleapis.com/auth/youtube');
  });

  it("a channel's token does not reach another channel's broadcasts and streams: 404, not listed, nothing changed", async () => {
    const tokenA = await getToken();
    const tokenB = await getToken(B.refreshToken);
    const created = await yt('POST', 'liveBroadcasts?part=snippet,status', tokenA, {
      snippet: { title: 'Channel a', scheduledStartTime: '2030-01-01T00:00:00Z' },
      status: { privacyStatus: 'private' },
    });
    const stream = await yt('POST', 'liveStreams?part=snippet,cdn,contentDetails,status', tokenA, streamBody);
    expect([created.status, stream.status]).toEqual([200, 200]);
    const id = created.json.id as string;
    const sid = stream.json.id as string;
    for (const r of [
      await yt('PUT', 'liveBroadcasts?part=snippet', tokenB, { id, snippet: { title: 'taken', scheduledStartTime: '2030-01-01T00:00:00Z' } }),
      await yt('POST', `liveBroadcasts/bind?id=${id}&part=id`, tokenB),
      await yt('POST', `liveBroadcasts/transition?id=${id}&broadcastStatus=live&part=id`, tokenB),
      await yt('DELETE', `liveBroadcasts?id=${id}`, tokenB),
    ]) {
      expect([r.status, reasonOf(r)]).toEqual([404, 'liveBroadcastNotFound']);
    }
    const ownB = await yt('POST', 'liveBroadcasts?part=snippet,status', tokenB, { snippet: { title: 'Channel b', scheduledStartTime: '2030-01-01T00:00:00Z' }, status: { privacyStatus: 'private' } });
    const bindToA = await yt('POST', `liveBroadcasts/bind?id=${ownB.json.id as string}&streamId=${sid}&part=id`, tokenB);
    expect([bindToA.status, reasonOf(bindToA)]).toEqual([404, 'liveStreamNotFound']);
    expect((await yt('DELETE', `liveStreams?id=${sid}`, tokenB)).status).toBe(404);
    expect(((await yt('GET', `liveBroadcasts?part=id&id=${id}`, tokenB)).json.items as unknown[]).length).toBe(0);
    expect(((await yt('GET', 'liveBroadcasts?part=id&mine=true', tokenB)).json.items as Array<{ id: string }>).map((b) => b.id)).toEqual([ownB.json.id]);
    expect(((await yt('GET', `liveStreams?part=id&mine=true`, tokenB)).json.items as unknown[]).length).toBe(0);
    expect(((await yt('GET', `liveBroadcasts?part=snippet&id=${id}`, tokenA)).json.items as Array<{ snippet: { title: string; channelId: string } }>)[0]?.snippet).toMatchObject({
      title: 'Channel a',
      channelId: A.channelId,
    });
  });

  it('answers invalid_grant for a revoked refresh token and invalid_request for missing fields', async () => {
    expect((await control('POST', '/_sim/youtube/revocations', { token: A.refreshToken })).status).toBe(204);
    const revoked = await call('POST', `${base}/youtube/token`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form(A.refreshToken),
    });
    expect(revoked.status).toBe(400);
    expect(revoked.json).toEqual({ error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
    await control('POST', '/_sim/reset');
    const missing = await call('POST', `${base}/youtube/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=refresh_token&client_id=${encodeURIComponent(A.clientId)}&client_secret=${A.clientSecret}` });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toBe('invalid_request');
  });

  it('rejects missing, unknown and expired access tokens with Google’s 401', async () => {
    for (const token of [undefined, 'ya29.nope']) {
      const r = await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(r.json.error).toMatchObject({
        code: 401,
        message: expect.stringMatching(/^Request had invalid authentication credentials\. Expected OAuth 2 access token/),
        errors: [{ message: 'Invalid Credentials', domain: 'global', reason: 'authError', location: 'Authorization', locationType: 'header' }],
        status: 'UNAUTHENTICATED',
      });
    }
    await control('PUT', '/_sim/youtube/limits', { tokenTtlSec: 1 });
    const token = await getToken();
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(200);
    await sleep(1100);
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(401);
  });
});

describe('live lifecycle', () => {
  it('insert stream + broadcast, bind, transitions with the real rules, effects', async () => {
    await control('PUT', '/_sim/youtube/limits', { streamActivationMs: 300 });
    const token = await getToken();
    // The early transition must come within streamActivationMs (300 ms) of the bind: a round that took
    // longer (a stalled loop on a busy machine; the simulator runs in this process) found the stream
    // active, which proves nothing, and is played again on a new stream and broadcast (left over: their
    // show.created comes first in the effects).
    const abandoned: string[] = [];
    let s: Res;
    let id = '';
    let early: Res;
    for (let round = 1; ; round++) {
      s = await yt('POST', 'liveStreams?part=snippet,cdn,contentDetails,status', token, streamBody);
      expect(s.status).toBe(200);
      expect(s.json).toMatchObject({
        kind: 'youtube#liveStream',
        snippet: { title: 'Show ingest' },
        cdn: { ingestionType: 'rtmp', ingestionInfo: { ingestionAddress: `${srv.rtmpUrl}/youtube`, backupIngestionAddress: expect.any(String), streamName: expect.any(String) } },
        status: { streamStatus: 'ready' },
      });

      const b = await yt('POST', 'liveBroadcasts?part=snippet,status,contentDetails', token, broadcastBody());
      expect(b.status).toBe(200);
      expect(b.json).toMatchObject({
        kind: 'youtube#liveBroadcast',
        snippet: { title: 'Spring drop', description: 'syndicast:mk-123', liveChatId: expect.any(String) },
        status: { lifeCycleStatus: 'created', privacyStatus: 'unlisted' },
        contentDetails: { monitorStream: { enableMonitorStream: true }, enableAutoStart: false },
      });
      id = b.json.id as string;
      // only the requested parts come back
      const idOnly = await yt('GET', `liveBroadcasts?part=id&id=${id}`, token);
      expect(Object.keys((idOnly.json.items as object[])[0] ?? {}).sort()).toEqual(['etag', 'id', 'kind']);

      const t0 = Date.now();
      const bound = await yt('POST', `liveBroadcasts/bind?id=${id}&streamId=${s.json.id as string}&part=id,contentDetails,status`, token);
      expect(bound.json).toMatchObject({ contentDetails: { boundStreamId: s.json.id }, status: { lifeCycleStatus: 'ready' } });

      // the encoder has not reached YouTube yet
      early = await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${id}&part=status`, token);
      if (Date.now() - t0 < 300 || round === 5) break;
      abandoned.push(id);
    }
    expect(early.status).toBe(403);
    expect(reasonOf(early)).toBe('errorStreamInactive');
    // monitor stream on: live needs testing first
    const skip = await yt('POST', `liveBroadcasts/transition?broadcastStatus=live&id=${id}&part=status`, token);
    expect(reasonOf(skip)).toBe('invalidTransition');

    await waitStreamActive(token, s.json.id as string);
    const testing = await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${id}&part=status`, token);
    expect(testing.status).toBe(200);
    expect((testing.json.status as { lifeCycleStatus: string }).lifeCycleStatus).toBe('testing');
    const again = await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${id}&part=status`, token);
    expect(again.status).toBe(403);
    expect(again.json.error).toMatchObject({ code: 403, errors: [{ domain: 'youtube.liveBroadcast', reason: 'redundantTransition' }] });

    const live = await yt('POST', `liveBroadcasts/transition?broadcastStatus=live&id=${id}&part=status,snippet`, token);
    expect(live.json).toMatchObject({ status: { lifeCycleStatus: 'live', recordingStatus: 'recording' }, snippet: { actualStartTime: expect.any(String) } });
    expect(reasonOf(await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${id}&part=status`, token))).toBe('invalidTransition');
    expect(reasonOf(await yt('DELETE', `liveBroadcasts?id=${id}`, token))).toBe('liveBroadcastDeletionNotAllowed');

    const active = await yt('GET', 'liveBroadcasts?part=id&broadcastStatus=active', token);
    expect((active.json.items as Array<{ id: string }>).map((i) => i.id)).toEqual([id]);

    const done = await yt('POST', `liveBroadcasts/transition?broadcastStatus=complete&id=${id}&part=status`, token);
    expect((done.json.status as { lifeCycleStatus: string }).lifeCycleStatus).toBe('complete');

    const missing = await yt('POST', 'liveBroadcasts/transition?broadcastStatus=live&id=nope&part=status', token);
    expect(missing.status).toBe(404);
    expect(reasonOf(missing)).toBe('liveBroadcastNotFound');

    const n = abandoned.length;
    expect(await effects()).toEqual([
      ...abandoned.map((gone, i) => ({ seq: i + 1, type: 'show.created', externalId: gone, title: 'Spring drop', at: expect.any(String) })),
      { seq: n + 1, type: 'show.created', externalId: id, title: 'Spring drop', at: expect.any(String) },
      { seq: n + 2, type: 'show.started', externalId: id, title: 'Spring drop', at: expect.any(String) },
      { seq: n + 3, type: 'show.ended', externalId: id, title: 'Spring drop', at: expect.any(String) },
    ]);
  });

  it('update (title → show.updated), delete (show.cancelled), list filters and pagination', async () => {
    const token = await getToken();
    const ids: string[] = [];
    for (const t of ['A', 'B', 'C']) ids.push((await yt('POST', 'liveBroadcasts?part=snippet,status', token, broadcastBody(t))).json.id as string);

    const upd = await yt('PUT', 'liveBroadcasts?part=snippet', token, {
      id: ids[0],
      snippet: { title: 'A (moved)', description: 'syndicast:mk-1', scheduledStartTime: '2030-01-01T10:00:00Z' },
    });
    expect(upd.status).toBe(200);
    expect(upd.json.snippet).toMatchObject({ title: 'A (moved)', scheduledStartTime: '2030-01-01T10:00:00.000Z' });

    const p1 = await yt('GET', 'liveBroadcasts?part=snippet&mine=true&maxResults=2', token);
    expect(p1.json).toMatchObject({ kind: 'youtube#liveBroadcastListResponse', pageInfo: { totalResults: 3, resultsPerPage: 2 }, nextPageToken: expect.any(String) });
    const p2 = await yt('GET', `liveBroadcasts?part=snippet&mine=true&maxResults=2&pageToken=${p1.json.nextPageToken as string}`, token);
    expect((p2.json.items as unknown[]).length).toBe(1);
    expect(p2.json.nextPageToken).toBeUndefined();
    // descriptions come back: the adapter finds what it created by its marker
    const all = [...(p1.json.items as Array<{ snippet: { description: string } }>), ...(p2.json.items as Array<{ snippet: { description: string } }>)];
    expect(all.map((i) => i.snippet.description)).toContain('syndicast:mk-1');

    const upcoming = await yt('GET', 'liveBroadcasts?part=id&broadcastStatus=upcoming&maxResults=50', token);
    expect((upcoming.json.items as unknown[]).length).toBe(3);
    expect(reasonOf(await yt('GET', 'liveBroadcasts?part=id&mine=true&broadcastStatus=all', token))).toBe('incompatibleParameters');
    expect(reasonOf(await yt('GET', 'liveBroadcasts?part=id', token))).toBe('missingRequiredParameter');
    expect(reasonOf(await yt('GET', 'liveBroadcasts?part=bogus&mine=true', token))).toBe('unknownPart');

    const del = await yt('DELETE', `liveBroadcasts?id=${ids[1] ?? ''}`, token);
    expect(del.status).toBe(204);
    expect(reasonOf(await yt('DELETE', `liveBroadcasts?id=${ids[1] ?? ''}`, token))).toBe('liveBroadcastNotFound');

    const types = (await effects()).map((e) => `${e.type as string}:${e.title as string}`);
    expect(types).toEqual(['show.created:A', 'show.created:B', 'show.created:C', 'show.updated:A (moved)', 'show.cancelled:B']);
  });

  it('validates inserts like the real API', async () => {
    const token = await getToken();
    const noTitle = await yt('POST', 'liveBroadcasts?part=snippet,status', token, { snippet: { scheduledStartTime: '2030-01-01T00:00:00Z' }, status: { privacyStatus: 'public' } });
    expect(noTitle.status).toBe(400);
    expect(reasonOf(noTitle)).toBe('titleRequired');
    // scheduledStartTime is "ISO 8601 (YYYY-MM-DDThh:mm:ss.sZ)": Date.parse alone took a day that does not
    // exist (as March 2nd) and a time without an offset (as the simulator's local time)
    for (const at of ['2030-02-30T10:00:00Z', '2030-01-01T10:00', '2030-01-01T10:00:00', '2030-01-01 10:00:00Z', '2030-01-01T10:00:00+01']) {
      const odd = await yt('POST', 'liveBroadcasts?part=snippet,status', token, { snippet: { title: 'odd', scheduledStartTime: at }, status: { privacyStatus: 'private' } });
      expect([at, odd.status, reasonOf(odd)]).toEqual([at, 400, 'invalidScheduledStartTime']);
    }
    // the format is checked, not the year: a valid event may schedule a show before 1970 (years 0000–9999)
    for (const at of ['1969-12-31T23:59:59Z', '0000-01-01T00:00:00Z']) {
      const early = await yt('POST', 'liveBroadcasts?part=snippet,status', token, { snippet: { title: 'early', scheduledStartTime: at }, status: { privacyStatus: 'private' } });
      expect([at, early.status]).toEqual([at, 200]);
    }
    const offset = await yt('POST', 'liveBroadcasts?part=snippet,status', token, { snippet: { title: 'offset', scheduledStartTime: '2030-01-01T10:00:00.5+01:00' }, status: { privacyStatus: 'private' } });
    expect(offset.json.snippet).toMatchObject({ scheduledStartTime: '2030-01-01T09:00:00.500Z' });
    const longTitle = await yt('POST', 'liveBroadcasts?part=snippet,status', token, broadcastBody('x'.repeat(101)));
    expect(reasonOf(longTitle)).toBe('invalidTitle');
    // a liveStream's title may be 128 characters (LiveStreamSnippet), a broadcast's only 100
    const streamBody = (title: string) => ({ snippet: { title }, cdn: { frameRate: 'variable', ingestionType: 'rtmp', resolution: 'variable' } });
    expect((await yt('POST', 'liveStreams?part=snippet,cdn', token, streamBody('s'.repeat(128)))).status).toBe(200);
    expect(reasonOf(await yt('POST', 'liveStreams?part=snippet,cdn', token, streamBody('s'.repeat(129))))).toBe('invalidTitle');
    // counted in UTF-16 units, the strictest reading: 65 emoji are 130
    expect(reasonOf(await yt('POST', 'liveStreams?part=snippet,cdn', token, streamBody('💄'.repeat(65))))).toBe('invalidTitle');
    const badCdn = await yt('POST', 'liveStreams?part=snippet,cdn', token, { snippet: { title: 's' }, cdn: { frameRate: '30fps', ingestionType: 'rtmp', resolution: '999p' } });
    expect(reasonOf(badCdn)).toBe('invalidResolution');
    const parseError = await call('POST', `${base}/youtube/youtube/v3/liveStreams?part=snippet`, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(parseError.status).toBe(400);
    expect(reasonOf(parseError)).toBe('parseError');
  });

  it('refuses what YouTube refuses in a withdraw: deleting a stream bound to a broadcast that has not completed (upcoming too), a deleted one, binding a deleted broadcast, going live unbound', async () => {
    // The stream delete was refused only while the broadcast was testing or live: a stream deleted from
    // under a ready broadcast left it unable to go live, and the adapter's order (broadcast first) went unchecked.
    const token = await getToken();
    const { streamId, broadcastId } = await provision(token);
    const bound = await yt('DELETE', `liveStreams?id=${streamId}`, token);
    expect([bound.status, reasonOf(bound), domainOf(bound)]).toEqual([403, 'liveStreamDeletionNotAllowed', 'youtube.liveStream']);
    expect((await yt('DELETE', `liveBroadcasts?id=${broadcastId}`, token)).status).toBe(204);
    expect((await yt('DELETE', `liveStreams?id=${streamId}`, token)).status).toBe(204);
    const twice = await yt('DELETE', `liveStreams?id=${streamId}`, token);
    expect([twice.status, reasonOf(twice)]).toEqual([404, 'liveStreamNotFound']);
    // a deleted broadcast takes no bind
    const s = await yt('POST', 'liveStreams?part=id,snippet,cdn,contentDetails', token, streamBody);
    const gone = await yt('POST', `liveBroadcasts/bind?id=${broadcastId}&streamId=${s.json.id as string}&part=id`, token);
    expect([gone.status, reasonOf(gone)]).toEqual([404, 'liveBroadcastNotFound']);
    // a broadcast with no stream bound goes neither to testing nor to live
    const bare = await yt('POST', 'liveBroadcasts?part=id,snippet,status,contentDetails', token, broadcastBody('Unbound'));
    for (const to of ['testing', 'live']) {
      const r = await yt('POST', `liveBroadcasts/transition?broadcastStatus=${to}&id=${bare.json.id as string}&part=status`, token);
      expect([r.status, reasonOf(r)]).toEqual([403, 'invalidTransition']);
    }
  });

  it('liveStreams.list mine=true leaves out non-reusable streams; only id= reads them (LiveStreamContentDetails.isReusable)', async () => {
    const token = await getToken();
    const once = await yt('POST', 'liveStreams?part=snippet,cdn,contentDetails', token, streamBody); // isReusable: false
    const reusable = await yt('POST', 'liveStreams?part=snippet,cdn,contentDetails', token, { ...streamBody, contentDetails: { isReusable: true } });
    const byDefault = await yt('POST', 'liveStreams?part=snippet,cdn', token, { snippet: streamBody.snippet, cdn: streamBody.cdn });
    expect([once.status, reusable.status, byDefault.status]).toEqual([200, 200, 200]);
    const mine = await yt('GET', 'liveStreams?part=id,contentDetails&mine=true&maxResults=50', token);
    expect((mine.json.items as Array<{ id: string }>).map((s) => s.id).sort()).toEqual([reusable.json.id as string, byDefault.json.id as string].sort());
    const byId = await yt('GET', `liveStreams?part=id,contentDetails&id=${once.json.id as string}`, token);
    expect((byId.json.items as Array<{ id: string; contentDetails: { isReusable: boolean } }>).map((s) => [s.id, s.contentDetails.isReusable])).toEqual([[once.json.id, false]]);
  });

  it('with transitionMs the broadcast passes through testStarting / liveStarting', async () => {
    // What is read of an in-between state must be read within TRANSITION_MS of the transition. This
    // process runs the simulator too: on a busy machine a stalled event loop (100 ms is not rare on CI's
    // 2 cores) let the state move on between two requests, and the test read the next one. Such a round
    // says nothing and is played again on a new broadcast; a simulator that skips or keeps a state fails
    // every round. The states that follow are waited for, not slept for (the timer runs in this process).
    const TRANSITION_MS = 100;
    await control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0, transitionMs: TRANSITION_MS });
    const token = await getToken();
    const status = async (id: string): Promise<string | undefined> =>
      ((await yt('GET', `liveBroadcasts?part=status&id=${id}`, token)).json.items as Array<{ status: { lifeCycleStatus: string } }>)[0]?.status.lifeCycleStatus;
    /** The state after `from` (or `from` still, 5 s on). */
    const after = async (id: string, from: string): Promise<string | undefined> => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const now = await status(id);
        if (now !== from || Date.now() > deadline) return now;
        await sleep(10);
      }
    };
    const round = async (): Promise<{ seen: unknown[]; late: boolean }> => {
      const { broadcastId } = await provision(token);
      let t0 = Date.now();
      const t = await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${broadcastId}&part=status`, token);
      const seen: unknown[] = [
        (t.json.status as { lifeCycleStatus: string }).lifeCycleStatus,
        // "already in the requested status or processing to the requested status"
        reasonOf(await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${broadcastId}&part=status`, token)),
        reasonOf(await yt('POST', `liveBroadcasts/transition?broadcastStatus=live&id=${broadcastId}&part=status`, token)),
      ];
      let late = Date.now() - t0 >= TRANSITION_MS;
      seen.push(await after(broadcastId, 'testStarting'));
      t0 = Date.now();
      await yt('POST', `liveBroadcasts/transition?broadcastStatus=live&id=${broadcastId}&part=status`, token);
      seen.push(await status(broadcastId));
      late ||= Date.now() - t0 >= TRANSITION_MS;
      seen.push(await after(broadcastId, 'liveStarting'));
      return { seen, late };
    };
    let r = await round();
    for (let again = 0; again < 4 && r.late; again++) r = await round();
    expect(r.seen).toEqual(['testStarting', 'redundantTransition', 'invalidTransition', 'testing', 'liveStarting', 'live']);
  });

  it('enableAutoStart goes live by itself once the stream is active; a manual transition is then redundant', async () => {
    await control('PUT', '/_sim/youtube/limits', { streamActivationMs: 50 });
    const token = await getToken();
    const { broadcastId, streamId } = await provision(token, { enableAutoStart: true });
    await waitStreamActive(token, streamId);
    const b = await yt('GET', `liveBroadcasts?part=status&id=${broadcastId}`, token);
    expect((b.json.items as Array<{ status: { lifeCycleStatus: string } }>)[0]?.status.lifeCycleStatus).toBe('live');
    expect(reasonOf(await yt('POST', `liveBroadcasts/transition?broadcastStatus=live&id=${broadcastId}&part=status`, token))).toBe('redundantTransition');
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.started']);
  });
});

describe('live chat', () => {
  it('posts messages only while testing/live; message.posted carries the first URL', async () => {
    await control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
    const token = await getToken();
    const { broadcastId, liveChatId } = await provision(token);
    const msg = (text: string): Record<string, unknown> => ({ snippet: { liveChatId, type: 'textMessageEvent', textMessageDetails: { messageText: text } } });

    const early = await yt('POST', 'liveChat/messages?part=snippet', token, msg('too early'));
    expect(early.status).toBe(403);
    expect(domainOf(early)).toBe('youtube.liveChat');

    await yt('POST', `liveBroadcasts/transition?broadcastStatus=testing&id=${broadcastId}&part=status`, token);
    await yt('POST', `liveBroadcasts/transition?broadcastStatus=live&id=${broadcastId}&part=status`, token);
    const posted = await yt('POST', 'liveChat/messages?part=snippet,authorDetails', token, msg('Linen shirt $49 → https://sc.example/l/Ab3d. Grab it!'));
    expect(posted.status).toBe(200);
    expect(posted.json).toMatchObject({
      kind: 'youtube#liveChatMessage',
      id: expect.any(String),
      snippet: { type: 'textMessageEvent', liveChatId, publishedAt: expect.any(String), authorChannelId: expect.any(String), textMessageDetails: { messageText: expect.stringContaining('Linen') } },
      authorDetails: { isChatOwner: true },
    });
    await yt('POST', 'liveChat/messages?part=snippet', token, msg('no link here'));

    const POLLING_MS = 400;
    await control('PUT', '/_sim/youtube/limits', { chatPollingIntervalMs: POLLING_MS });
    // "pollingIntervalMillis … how long your API client should wait before requesting additional
    // results": sooner is refused (rateLimitExceeded, liveChatMessages.list); the simulator answered it.
    // The poll is sooner only when it comes within POLLING_MS of the list: a round that took longer (a
    // stalled loop on a busy machine; the simulator runs in this process) proves nothing, and the list
    // is read again (a read: a new page token).
    let pollUrl = '';
    let tooSoon: Res;
    for (let round = 1; ; round++) {
      const t0 = Date.now();
      const list = await yt('GET', `liveChat/messages?liveChatId=${liveChatId}&part=snippet`, token);
      expect(list.json).toMatchObject({ kind: 'youtube#liveChatMessageListResponse', pollingIntervalMillis: POLLING_MS, nextPageToken: expect.any(String) });
      expect((list.json.items as unknown[]).length).toBe(2);
      pollUrl = `liveChat/messages?liveChatId=${liveChatId}&part=snippet&pageToken=${list.json.nextPageToken as string}`;
      tooSoon = await yt('GET', pollUrl, token);
      if (Date.now() - t0 < POLLING_MS || round === 5) break;
    }
    expect(tooSoon.status).toBe(403);
    expect(reasonOf(tooSoon)).toBe('rateLimitExceeded');
    await new Promise((r) => setTimeout(r, 450));
    const poll = await yt('GET', pollUrl, token);
    expect(poll.json.items).toEqual([]);

    const chatEffects = (await effects()).filter((e) => e.type === 'message.posted');
    expect(chatEffects).toEqual([
      { seq: expect.any(Number), type: 'message.posted', externalId: broadcastId, url: 'https://sc.example/l/Ab3d', at: expect.any(String) },
      { seq: expect.any(Number), type: 'message.posted', externalId: broadcastId, at: expect.any(String) },
    ]);

    await yt('POST', `liveBroadcasts/transition?broadcastStatus=complete&id=${broadcastId}&part=status`, token);
    expect(reasonOf(await yt('POST', 'liveChat/messages?part=snippet', token, msg('after')))).toBe('liveChatEnded');
    expect(reasonOf(await yt('POST', 'liveChat/messages?part=snippet', token, { snippet: { liveChatId: 'nope', type: 'textMessageEvent', textMessageDetails: { messageText: 'x' } } }))).toBe(
      'liveChatNotFound',
    );
  });
});

describe('quota and request window', () => {
  it('charges 50 per write and 1 per list; past quotaPerDay answers quotaExceeded', async () => {
    await control('PUT', '/_sim/youtube/limits', { quotaPerDay: 101 });
    const token = await getToken();
    expect((await yt('POST', 'liveBroadcasts?part=id,snippet,status', token, broadcastBody())).status).toBe(200);
    expect((await yt('POST', 'liveStreams?part=id', token, streamBody)).status).toBe(400); // invalid: no cdn part, still costs 50
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(200); // 101
    const over = await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
    expect(over.status).toBe(403);
    expect(over.json.error).toMatchObject({ code: 403, errors: [{ domain: 'youtube.quota', reason: 'quotaExceeded' }] });
    const limits = await control('GET', '/_sim/youtube/limits');
    expect(limits.json.quota).toMatchObject({ used: 101, limit: 101, timeZone: 'America/Los_Angeles' });
  });

  it('requestsPerWindow answers 429 rateLimitExceeded when the window is full', async () => {
    const token = await getToken();
    await control('PUT', '/_sim/youtube/limits', { requestsPerWindow: 2, windowMs: 60_000 });
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(200);
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(200);
    const third = await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
    expect(third.status).toBe(429);
    expect(reasonOf(third)).toBe('rateLimitExceeded');
  });

  it('latencyMs delays every API request', async () => {
    const token = await getToken();
    await control('PUT', '/_sim/youtube/limits', { latencyMs: 150 });
    const t0 = Date.now();
    await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });
});

describe('faults', () => {
  it('429 and 500 look like YouTube; the token endpoint only gets 500/timeout', async () => {
    const token = await getToken();
    await control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['429'] });
    const r429 = await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
    expect(r429.status).toBe(429);
    expect(r429.json.error).toMatchObject({ code: 429, errors: [{ domain: 'youtube.api', reason: 'rateLimitExceeded' }] });
    await getToken(); // exempt from 429

    await control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['500'] });
    const r500 = await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
    expect(r500.status).toBe(500);
    expect(reasonOf(r500)).toBe('backendError');
    const tok500 = await call('POST', `${base}/youtube/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(A.refreshToken) });
    expect(tok500.status).toBe(500);

    const log = (await control('GET', '/_sim/youtube/requests')).json as unknown as Array<{ fault?: string; status: number }>;
    expect(log.filter((r) => r.fault).map((r) => `${r.fault ?? ''}:${r.status}`)).toEqual(['429:429', '500:500', '500:500']);
    // faulted requests have no effect
    expect(await effects()).toEqual([]);
  });

  it('token_expired invalidates the current access token until the client refreshes', async () => {
    const token = await getToken();
    await control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['token_expired'] });
    const r = await yt('GET', 'liveBroadcasts?part=id&mine=true', token);
    expect(r.status).toBe(401);
    expect(reasonOf(r)).toBe('authError');
    await control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(401);
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', await getToken())).status).toBe(200);
  });

  it('timeout: the request is processed, the answer never comes', async () => {
    const token = await getToken();
    await control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['timeout'], hangMs: 2000 });
    const t0 = Date.now();
    await expect(yt('POST', 'liveBroadcasts?part=id,snippet,status', token, broadcastBody('Ghost'), AbortSignal.timeout(200))).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(1500);
    // the effect happened even though the client never heard back: the client must recover by lookup
    expect((await effects()).map((e) => `${e.type as string}:${e.title as string}`)).toEqual(['show.created:Ghost']);

    // without a client timeout the socket is destroyed after hangMs
    await control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['timeout'], hangMs: 100 });
    await expect(yt('GET', 'liveBroadcasts?part=id&mine=true', token)).rejects.toThrow();
    await control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
    const log = (await control('GET', '/_sim/youtube/requests')).json as unknown as Array<{ path: string; fault?: string; status: number }>;
    expect(log.filter((r) => r.fault === 'timeout').map((r) => `${r.path}:${r.status}`)).toEqual(['/youtube/v3/liveBroadcasts:200', '/youtube/v3/liveBroadcasts:200']);
  });

  it('timeout on a request its token does not allow: the 401 is withheld and nothing happens', async () => {
    // The answer of a timeout fault is held back; the auth check's 401 must still stop the request
    // (it used to run the handler anyway and create a broadcast owned by no channel, which no
    // channel's recovery lookup could find, so the adapter created it a second time).
    const token = await getToken();
    await control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['timeout'], hangMs: 2000 });
    await expect(yt('POST', 'liveBroadcasts?part=id,snippet,status', 'ya29.not-a-token', broadcastBody('Refused'), AbortSignal.timeout(200))).rejects.toThrow();
    await control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
    const log = (await control('GET', '/_sim/youtube/requests')).json as unknown as Array<{ path: string; fault?: string; status: number }>;
    expect(log.filter((r) => r.fault === 'timeout').map((r) => `${r.path}:${r.status}`)).toEqual(['/youtube/v3/liveBroadcasts:401']);
    expect(await effects()).toEqual([]);
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).json.items).toEqual([]);
  });

  it('a seed makes the fault sequence reproducible', async () => {
    const token = await getToken();
    const run = async (): Promise<number[]> => {
      await control('PUT', '/_sim/youtube/faults', { rate: 0.5, kinds: ['429', '500'], seed: 7 });
      const out: number[] = [];
      for (let i = 0; i < 12; i++) out.push((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status);
      return out;
    };
    const a = await run();
    expect(await run()).toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(1);
  });
});

describe('control plane', () => {
  it('request log keeps method, path (without /youtube), query, headers and the raw body', async () => {
    const token = await getToken();
    const raw = '{"snippet":{"title":"Logged","scheduledStartTime":"2030-01-01T00:00:00Z"},"status":{"privacyStatus":"private"}}';
    await call('POST', `${base}/youtube/youtube/v3/liveBroadcasts?part=snippet,status`, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-trace': 't1' },
      body: raw,
    });
    const log = (await control('GET', '/_sim/youtube/requests')).json as unknown as Array<Record<string, unknown>>;
    expect(log).toHaveLength(2);
    expect(log[0]).toMatchObject({ seq: 1, method: 'POST', path: '/token', status: 200, body: expect.stringContaining(`refresh_token=${encodeURIComponent(A.refreshToken)}`) });
    expect(log[1]).toMatchObject({
      seq: 2,
      method: 'POST',
      path: '/youtube/v3/liveBroadcasts',
      query: { part: 'snippet,status' },
      headers: expect.objectContaining({ authorization: `Bearer ${token}`, 'x-trace': 't1' }),
      body: raw,
      status: 200,
      at: expect.any(String),
    });
    const since = (await control('GET', '/_sim/youtube/requests?since=1')).json as unknown as unknown[];
    expect(since).toHaveLength(1);
  });

  it('orders, refunds and hand-made shows', async () => {
    const created = await control('POST', '/_sim/youtube/shows', { title: 'Made in YouTube Studio' });
    expect(created.status).toBe(201);
    const externalId = created.json.externalId as string;
    const token = await getToken();
    const found = await yt('GET', `liveBroadcasts?part=status&id=${externalId}`, token);
    expect((found.json.items as Array<{ status: { lifeCycleStatus: string } }>)[0]?.status.lifeCycleStatus).toBe('created');

    const order = await control('POST', '/_sim/youtube/orders', { externalId, productId: 'p1', total: { amount: 4900, currency: 'USD' }, clickId: 'c1' });
    expect(order.status).toBe(201);
    const orderId = order.json.orderId as string;
    expect((await control('POST', `/_sim/youtube/orders/${orderId}/refunds`, { amount: { amount: 900, currency: 'USD' } })).json).toEqual({ refundId: expect.any(String) });
    expect((await control('POST', `/_sim/youtube/orders/${orderId}/refunds`, { amount: { amount: 4001, currency: 'USD' } })).status).toBe(409);
    expect((await control('POST', '/_sim/youtube/orders', { externalId: 'nope', productId: 'p', total: { amount: 1, currency: 'USD' } })).status).toBe(404);
    const orders = (await control('GET', '/_sim/youtube/orders')).json as unknown as Array<Record<string, unknown>>;
    expect(orders).toEqual([expect.objectContaining({ orderId, externalId, status: 'partially_refunded', clickId: 'c1' })]);
    expect((await effects()).map((e) => e.type)).toEqual(['show.created']);
  });

  it('validates control bodies as problem+json; unknown platforms are 404', async () => {
    const bad = await control('PUT', '/_sim/youtube/faults', { rate: 2, kinds: ['boom'] });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(bad.json).toMatchObject({ status: 400, errors: expect.any(Array) });
    expect((await control('PUT', '/_sim/youtube/limits', { nope: 1 })).status).toBe(400);
    // a known platform whose simulator is not served (if any is left), and a name that is no platform
    const served = ((await control('GET', '/_sim')).json as { platforms: string[] }).platforms;
    const unserved = ['youtube', 'tiktok', 'whatnot', 'bambuser', 'facebook'].filter((p) => !served.includes(p));
    for (const p of ['/_sim/myspace/effects', ...unserved.map((u) => `/_sim/${u}/requests`)]) {
      const r = await control('GET', p);
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.json).toMatchObject({ status: 404, title: 'Unknown platform' });
    }
  });

  it('reset clears state, logs, tokens, faults and limits', async () => {
    const token = await getToken();
    await yt('POST', 'liveBroadcasts?part=id,snippet,status', token, broadcastBody());
    await control('PUT', '/_sim/youtube/limits', { quotaPerDay: 5, latencyMs: 10 });
    await control('PUT', '/_sim/youtube/faults', { rate: 0.1, kinds: ['500'] });
    expect((await control('POST', '/_sim/reset')).status).toBe(200);
    expect(await effects()).toEqual([]);
    expect((await control('GET', '/_sim/youtube/requests')).json).toEqual([]);
    expect((await control('GET', '/_sim/youtube/faults')).json).toMatchObject({ rate: 0, kinds: [] });
    expect((await control('GET', '/_sim/youtube/limits')).json).toMatchObject({ quotaPerDay: 10000, latencyMs: 0, requestsPerWindow: null, simulatedEncoder: 0, streamActivationMs: 300 });
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', token)).status).toBe(401);
    const fresh = await getToken();
    expect((await yt('GET', 'liveBroadcasts?part=id&mine=true', fresh)).json.items).toEqual([]);
  });
});
