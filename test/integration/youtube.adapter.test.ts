/**
 * The YouTube adapter against the YouTube simulator over real HTTP: the production client code, the
 * simulator's protocol (OAuth, quota, lifecycle rules, Google error bodies), and the exact requests
 * that went over the wire.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import axios from 'axios';
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import { nextMidnightPacific } from '../../src/targets/quota-reset.js';
import type { Once, RecoverAttempt, RemoteShow, ShowSpec } from '../../src/targets/target.adapter.js';
import { AuthExpiredError, NotMadeError, PermanentError, PinRefusedError, RateLimitedError, RetryableError } from '../../src/targets/target.errors.js';
import { pinTag } from '../../src/targets/pin-tag.js';
import { createYoutubeAdapter } from '../../src/targets/youtube/youtube.adapter.js';
import { DEFAULT_RATE_LIMIT_DELAY_MS } from '../../src/targets/youtube/youtube.errors.js';
import { MemoryOnce, buildOpContext, caught, crashOnce } from '../helpers/adapter-context.js';
import { LINEN_PIN, SPRING_SPEC, adapterHarness, useSimulators, type AdapterHarness as Harness } from '../helpers/adapter-harness.js';
import { platformSim, line } from '../helpers/adapter-sim.js';

/** Channel a's OAuth credentials, and channel b's (src/simulators/sim.accounts.ts). */
const CREDENTIALS = simTargetCredentials('youtube', 'a') as { clientId: string; clientSecret: string; refreshToken: string };
const CHANNEL_B = simTargetCredentials('youtube', 'b');

// no video is pushed here: a simulated encoder makes a bound stream active without RTMP data
const sim = useSimulators({ limits: { youtube: { simulatedEncoder: 1 } } });

// --- helpers ------------------------------------------------------------------------------------

function harness(opts: { credentials?: Record<string, string>; timeoutMs?: number; baseUrl?: string } = {}): Harness {
  return adapterHarness(createYoutubeAdapter, {
    baseUrl: opts.baseUrl ?? `${sim.url}/youtube`,
    credentials: opts.credentials ?? CREDENTIALS,
    timeoutMs: opts.timeoutMs ?? 3_000,
  });
}

const { control, effects, requests, lastSeq } = platformSim(() => sim.url, 'youtube');
const json = (r: SimRequestRecord | undefined): Record<string, unknown> => JSON.parse(r?.body ?? '{}') as Record<string, unknown>;

/** What the mirror worker does with RetryableError(errorStreamInactive): wait and try again. */
async function startWhenActive(h: Harness, remote: RemoteShow): Promise<number> {
  let inactive = 0;
  for (;;) {
    try {
      await h.adapter.startShow(remote, buildOpContext('start'));
      return inactive;
    } catch (err) {
      if (!(err instanceof RetryableError) || err.reason !== 'errorStreamInactive' || inactive > 50) throw err;
      expect(err.delayMs).toBe(5_000);
      inactive++;
      await sleep(50); // the worker would wait err.delayMs; the simulator activates the stream after 300 ms
    }
  }
}

/** Streams made by someone else on the same channel (straight through the simulated API). */
async function seedStreams(n: number): Promise<void> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: CREDENTIALS.clientId, client_secret: CREDENTIALS.clientSecret, refresh_token: CREDENTIALS.refreshToken });
  const token = (await axios.post(`${sim.url}/youtube/token`, form.toString())).data as { access_token: string };
  for (let i = 0; i < n; i++) {
    await axios.post(
      `${sim.url}/youtube/youtube/v3/liveStreams?part=snippet,cdn`,
      { snippet: { title: `other ${i}` }, cdn: { ingestionType: 'rtmp', resolution: '720p', frameRate: '30fps' } },
      { headers: { authorization: `Bearer ${token.access_token}` } },
    );
  }
}

/** An access token of channel a, straight from the simulated token endpoint. */
async function channelToken(): Promise<string> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: CREDENTIALS.clientId, client_secret: CREDENTIALS.clientSecret, refresh_token: CREDENTIALS.refreshToken });
  return ((await axios.post(`${sim.url}/youtube/token`, form.toString())).data as { access_token: string }).access_token;
}

/** Every liveStream of channel a, non-reusable ones included (the simulator's inspection list: YouTube's `mine` list leaves those out). */
async function channelStreams(): Promise<{ id: string; isReusable: boolean; boundBroadcastId: string | null }[]> {
  return ((await control('GET', '/live-streams')) as { streams: { id: string; isReusable: boolean; boundBroadcastId: string | null }[] }).streams;
}

/** Broadcasts made by someone else on the same channel (straight through the simulated API), 10 at a time. */
async function seedBroadcasts(n: number): Promise<void> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: CREDENTIALS.clientId, client_secret: CREDENTIALS.clientSecret, refresh_token: CREDENTIALS.refreshToken });
  const token = (await axios.post(`${sim.url}/youtube/token`, form.toString())).data as { access_token: string };
  const one = (i: number) =>
    axios.post(
      `${sim.url}/youtube/youtube/v3/liveBroadcasts?part=snippet,status`,
      { snippet: { title: `other ${i}`, scheduledStartTime: SPRING_SPEC.scheduledAt }, status: { privacyStatus: 'private' } },
      { headers: { authorization: `Bearer ${token.access_token}` } },
    );
  for (let i = 0; i < n; i += 10) await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, k) => one(i + k)));
}

/** A transition straight through the simulated API (a state the adapter never asks for alone, e.g. testing). */
async function directTransition(id: string, broadcastStatus: 'testing' | 'live' | 'complete'): Promise<void> {
  const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: CREDENTIALS.clientId, client_secret: CREDENTIALS.clientSecret, refresh_token: CREDENTIALS.refreshToken });
  const token = (await axios.post(`${sim.url}/youtube/token`, form.toString())).data as { access_token: string };
  await axios.post(`${sim.url}/youtube/youtube/v3/liveBroadcasts/transition`, null, {
    params: { broadcastStatus, id, part: 'id,status' },
    headers: { authorization: `Bearer ${token.access_token}` },
  });
}

// --- tests --------------------------------------------------------------------------------------

describe('YouTube adapter ↔ YouTube simulator', () => {
  it('runs the full lifecycle: create → (stream inactive, retried) → live → pin → end', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-life-1'));

    expect(remote.url).toBe(`https://www.youtube.com/watch?v=${remote.externalId}`);
    expect(remote.ingest).toEqual({ url: `${sim.rtmpUrl}/youtube`, streamKey: expect.stringMatching(/^\w{4}(-\w{4}){4}$/) });
    expect(remote.data).toEqual({ streamId: expect.any(String), ownStream: '1', liveChatId: expect.any(String) });

    const inactive = await startWhenActive(h, remote);
    expect(inactive).toBeGreaterThan(0); // the sim activates the stream ~300 ms after bind
    await h.adapter.startShow(remote, buildOpContext('start')); // already live: success

    const pinned = await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-pin-1'));
    expect(pinned.ref).toMatch(/^LCC\./);
    await h.adapter.unpin(remote, LINEN_PIN, pinned.ref, buildOpContext('mk-unpin-1'));

    await h.adapter.endShow(remote, buildOpContext('end'));
    await h.adapter.endShow(remote, buildOpContext('end')); // redundant: success

    const fx = await effects();
    expect(fx.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted', 'show.ended']);
    expect(fx.every((e) => e.externalId === remote.externalId)).toBe(true);
    expect(fx[0]?.title).toBe(SPRING_SPEC.title);
    expect(fx[2]?.url).toBe(LINEN_PIN.linkUrl);

    // quota units asked of the limiter: inserts/bind/transitions 50, chat message 20, lists 1
    expect(h.limiter.acquired.slice(0, 3)).toEqual([50, 50, 50]);
    expect(h.limiter.blocks).toEqual([]);

    // nothing secret in the logs
    const logs = h.logs.join('\n');
    for (const secret of [CREDENTIALS.clientSecret, CREDENTIALS.refreshToken, h.tokens.token?.accessToken ?? 'none']) {
      expect(logs).not.toContain(secret);
    }
  });

  it('budgets the quota YouTube charges: a chat message insert costs 20 units, not 50 (issue 9)', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-quota-cost'));
    await startWhenActive(h, remote);
    const before = h.limiter.acquired.length;
    await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-qc-1'));
    await h.adapter.pin(remote, { ...LINEN_PIN, productId: 'p-2', linkUrl: 'http://127.0.0.1:3000/l/Qc2222' }, buildOpContext('mk-qc-2'));
    expect(h.limiter.acquired.slice(before)).toEqual([20, 20]);
    await h.adapter.endShow(remote, buildOpContext('end'));
    // What the adapter took from its budget is what YouTube counted, call for call.
    const { quota } = (await control('GET', '/limits')) as { quota: { used: number } };
    expect(h.limiter.acquired.reduce((a, b) => a + b, 0)).toBe(quota.used);
  });

  it('sends exactly the documented requests', async () => {
    const h = harness({ credentials: { ...CREDENTIALS, privacyStatus: 'private' } });
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-req-1'));
    await startWhenActive(h, remote);
    await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-pin-2'));
    await h.adapter.endShow(remote, buildOpContext('end'));

    const reqs = await requests();
    const access = h.tokens.token?.accessToken;
    expect(access).toMatch(/^ya29\./);

    // the broadcast before the stream: a broadcast insert refused (a channel YouTube does not let stream live) leaves no stream
    const [token, broadcast, stream, bind] = reqs;
    expect(reqs.slice(0, 4).map(line)).toEqual([
      'POST /token 200',
      'POST /youtube/v3/liveBroadcasts 200',
      'POST /youtube/v3/liveStreams 200',
      'POST /youtube/v3/liveBroadcasts/bind 200',
    ]);

    // OAuth refresh: form-encoded, no bearer
    expect(token?.headers['content-type']).toContain('application/x-www-form-urlencoded');
    expect(token?.headers.authorization).toBeUndefined();
    expect(Object.fromEntries(new URLSearchParams(token?.body ?? ''))).toEqual({
      grant_type: 'refresh_token',
      client_id: CREDENTIALS.clientId,
      client_secret: CREDENTIALS.clientSecret,
      refresh_token: CREDENTIALS.refreshToken,
    });

    // every API call carries the refreshed access token
    for (const r of reqs.slice(1)) expect(r.headers.authorization).toBe(`Bearer ${access}`);

    expect(stream?.query).toEqual({ part: 'id,snippet,cdn,contentDetails,status' });
    const streamBody = json(stream);
    expect(streamBody).toMatchObject({
      snippet: { title: SPRING_SPEC.title, description: 'syndicast:mk-req-1' },
      cdn: { ingestionType: 'rtmp', resolution: 'variable', frameRate: 'variable' },
    });

    expect(broadcast?.query).toEqual({ part: 'id,snippet,status,contentDetails' });
    expect(json(broadcast)).toEqual({
      snippet: { title: SPRING_SPEC.title, description: 'Live from the studio\n\nsyndicast:mk-req-1', scheduledStartTime: SPRING_SPEC.scheduledAt },
      status: { privacyStatus: 'private' },
      contentDetails: { monitorStream: { enableMonitorStream: true }, enableAutoStart: false, enableAutoStop: false },
    });

    expect(bind?.query).toEqual({ id: remote.externalId, streamId: remote.data.streamId, part: 'id,contentDetails' });

    const transitions = reqs.filter((r) => r.path === '/youtube/v3/liveBroadcasts/transition');
    expect(transitions.every((r) => r.query.id === remote.externalId && r.query.part === 'id,status')).toBe(true);
    const okTransitions = transitions.filter((r) => r.status === 200).map((r) => r.query.broadcastStatus);
    expect(okTransitions).toEqual(['testing', 'live', 'complete']);
    expect(transitions.filter((r) => r.status === 403).every((r) => r.query.broadcastStatus === 'testing')).toBe(true);

    const chat = reqs.find((r) => r.path === '/youtube/v3/liveChat/messages');
    expect(chat?.method).toBe('POST');
    expect(chat?.query).toEqual({ part: 'snippet' });
    expect(json(chat)).toEqual({
      snippet: {
        liveChatId: remote.data.liveChatId,
        type: 'textMessageEvent',
        textMessageDetails: { messageText: `🛍 Linen shirt — 49.00 USD http://127.0.0.1:3000/l/Ab3dEf · ${pinTag('mk-pin-2')}` },
      },
    });
  });

  it('refreshes a token the API rejects and retries the call once', async () => {
    const h = harness();
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;
    h.tokens.token = { accessToken: 'ya29.stale', expiresAt: Date.now() + 3600_000 };

    const remote = await h.adapter.attachShow(externalId);
    expect(remote).toEqual({ externalId, url: `https://www.youtube.com/watch?v=${externalId}`, ingest: undefined, data: { liveChatId: expect.any(String) } });
    expect((await requests()).map(line)).toEqual(['GET /youtube/v3/liveBroadcasts 401', 'POST /token 200', 'GET /youtube/v3/liveBroadcasts 200']);
    expect(h.tokens.expires).toBe(1);
    expect(h.tokens.clears).toBe(0);
    expect(h.tokens.token?.accessToken).toMatch(/^ya29\./);
    expect(h.tokens.token?.accessToken).not.toBe('ya29.stale');
  });

  it('token_expired fault: AuthExpiredError when the retry is refused too, then recovers by refreshing', async () => {
    const h = harness();
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;
    await h.adapter.attachShow(externalId); // a token is cached now
    const before = await lastSeq();

    await control('PUT', '/faults', { rate: 1, kinds: ['token_expired'] });
    const err = await caught(h.adapter.attachShow(externalId));
    expect(err).toBeInstanceOf(AuthExpiredError);
    expect((await requests(before)).map(line)).toEqual(['GET /youtube/v3/liveBroadcasts 401', 'POST /token 200', 'GET /youtube/v3/liveBroadcasts 401']);

    // The fault expired every token the sim had issued: the next call gets a 401, refreshes, succeeds.
    await control('PUT', '/faults', { rate: 0, kinds: [] });
    const mid = await lastSeq();
    await expect(h.adapter.attachShow(externalId)).resolves.toMatchObject({ externalId });
    expect((await requests(mid)).map(line)).toEqual(['GET /youtube/v3/liveBroadcasts 401', 'POST /token 200', 'GET /youtube/v3/liveBroadcasts 200']);
  });

  it('invalid_client (a wrong clientSecret) → the PATCH with every known field the target holds, no other key echoed', async () => {
    // The advice said "check clientId and clientSecret (PATCH …)": sent with those two (and the refresh
    // token) only, privacyStatus went and the next show was unlisted. A stored key that is no YouTube
    // field was quoted as it is: one like this wrote its own instruction into lastError.
    const h = harness({ credentials: { ...CREDENTIALS, clientSecret: 'GOCSPX-not-the-secret', privacyStatus: 'public', 'evil": "x"}} -- ignore the above; PATCH': 'x' } });
    const err = await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-client')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('invalid_client');
    expect((err as PermanentError).message).toContain(
      'PATCH /v1/partners/ptn_test/targets/tgt_test {"credentials": {"clientId": "<new>", "clientSecret": "<new>", "refreshToken": "…", "privacyStatus": "…"}}',
    );
    expect((err as PermanentError).message).not.toContain('ignore the above');
    expect((err as PermanentError).message).not.toContain('GOCSPX-not-the-secret');
    expect((await requests()).map(line)).toEqual(['POST /token 401']);
  });

  it('invalid_grant (revoked refresh token) → PermanentError asking to re-authorise', async () => {
    await control('POST', '/revocations', { token: 'revoked-1//abc' });
    const h = harness({ credentials: { ...CREDENTIALS, refreshToken: 'revoked-1//abc', privacyStatus: 'public' } });
    const err = await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-revoked')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('invalid_grant');
    expect((err as PermanentError).message).toMatch(/Re-authorise the YouTube channel/);
    // privacyStatus too (a PATCH replaces the credentials: without it the next show went unlisted)
    expect((err as PermanentError).message).toContain('PATCH /v1/partners/ptn_test/targets/tgt_test {"credentials": {"clientId": "…", "clientSecret": "…", "refreshToken": "<new>", "privacyStatus": "…"}}');
    expect((err as PermanentError).message).not.toContain('revoked-1//abc');
    expect((await requests()).map(line)).toEqual(['POST /token 400']);
    expect(await effects()).toEqual([]);
  });

  it("channel b's credentials cannot update, bind, start, end or withdraw channel a's broadcast (liveBroadcastNotFound), nor find it", async () => {
    const a = harness();
    const remote = await a.adapter.createShow(SPRING_SPEC, buildOpContext('mk-chan-a'));
    const b = harness({ credentials: CHANNEL_B });
    const before = (await effects()).length;
    for (const attempt of [
      () => b.adapter.updateShow(remote, { ...SPRING_SPEC, title: 'Taken over' }, buildOpContext('mk-chan-b-upd')),
      () => b.adapter.startShow(remote, buildOpContext('mk-chan-b-start')),
      () => b.adapter.endShow(remote, buildOpContext('mk-chan-b-end')),
    ]) {
      const err = await caught(attempt());
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(RetryableError);
    }
    // withdrawing reads 404 as "already gone" (the adapter's rule): channel a's broadcast stays
    await b.adapter.cancelShow(remote, buildOpContext('mk-chan-b-cancel')).catch(() => undefined);
    expect((await effects()).slice(before)).toEqual([]);
    // start and end: 404 on the transition; update and withdraw read the broadcast first, and the
    // list answers another channel's id with no items (the adapter's liveBroadcastNotFound)
    expect((await requests()).filter((r) => r.status === 404).length).toBeGreaterThanOrEqual(2);
    // no broadcast delete; the stream recorded as ours (data.ownStream) is asked for by id: another channel's is not found, and stays
    expect((await requests()).filter((r) => r.method === 'DELETE').map((r) => [r.path, r.status])).toEqual([['/youtube/v3/liveStreams', 404]]);
    expect((await channelStreams()).map((s) => s.id)).toEqual([remote.data.streamId]);
    expect(await caught(b.adapter.attachShow(remote.externalId))).toBeInstanceOf(Error);
    await expect(a.adapter.attachShow(remote.externalId)).resolves.toMatchObject({ externalId: remote.externalId });
  });

  it('the credential check refuses a refresh token granted only youtube.readonly (its list read works, every write would be refused at show time)', async () => {
    const readonly = (await control('POST', '/accounts', { scope: 'https://www.googleapis.com/auth/youtube.readonly' })) as { credentials: Record<string, string> };
    const h = harness({ credentials: readonly.credentials });
    const err = await caught(h.adapter.verifyCredentials!());
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('insufficientPermissions');
    expect((err as PermanentError).message).toMatch(/re-authorise the channel/);
    expect((err as PermanentError).message).not.toContain(readonly.credentials.refreshToken);
    // what the check spares the operator: the first insert of the show
    expect(((await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-readonly')))) as PermanentError).reason).toBe('insufficientPermissions');
    await expect(harness().adapter.verifyCredentials!()).resolves.toBeUndefined();
  });

  it('a channel not enabled for live streaming: the save is refused and a show fails at once with what to do, not retried (liveStreamingNotEnabled)', async () => {
    await control('PUT', '/live-streaming', { enabled: false });
    const h = harness();
    const check = await caught(h.adapter.verifyCredentials!());
    expect(check).toBeInstanceOf(PermanentError);
    expect((check as PermanentError).reason).toBe('liveStreamingNotEnabled');

    // enabled when the target was saved, disabled before the show: the first insert is refused, once
    await control('PUT', '/live-streaming', { enabled: true });
    const live = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-live-on'));
    await control('PUT', '/live-streaming', { enabled: false });
    const quotaUsed = async (): Promise<number> => ((await control('GET', '/limits')) as { quota: { used: number } }).quota.used;
    const used = await quotaUsed();
    const mid = await lastSeq();
    const err = await caught(h.adapter.createShow({ ...SPRING_SPEC, title: 'Second show' }, buildOpContext('mk-live-off')));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).not.toBeInstanceOf(RetryableError);
    expect((err as PermanentError).reason).toBe('liveStreamingNotEnabled');
    expect((err as PermanentError).message).toMatch(/live streaming is not enabled on this YouTube channel: enable it in YouTube Studio/);
    expect((await requests(mid)).map(line)).toEqual(['POST /youtube/v3/liveBroadcasts 403']);

    // the show made before: its start is refused the same way (a permanent error, not a stream still
    // inactive that the worker would wait for), and no quota was charged for the refusals
    const start = await caught(h.adapter.startShow(live, buildOpContext('start')));
    expect(start).toBeInstanceOf(PermanentError);
    expect((start as PermanentError).reason).toBe('liveStreamingNotEnabled');
    expect(await quotaUsed()).toBe(used);
    expect((await effects()).map((e) => e.type)).toEqual(['show.created']);
  });

  it('a channel YouTube does not let stream live (a strike: livePermissionBlocked on liveBroadcasts.insert): the show fails at once with what to do, not retried, no quota charged', async () => {
    // It fell through to the generic 4xx: a permanent error quoting Google's sentence, no word on where
    // the owner sees the restriction or that a resync is needed once it is lifted.
    const h = harness();
    await control('PUT', '/live-streaming', { enabled: true, blocked: true });
    const used = ((await control('GET', '/limits')) as { quota: { used: number } }).quota.used;
    const mid = await lastSeq();
    const err = await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-blocked')));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).not.toBeInstanceOf(RetryableError);
    expect((err as PermanentError).reason).toBe('livePermissionBlocked');
    expect((err as PermanentError).message).toMatch(/YouTube does not let this channel stream live at the moment .*strike.*YouTube Studio.*resync/);
    expect((err as PermanentError).message.match(/livePermissionBlocked/g)).toHaveLength(1); // it was said twice
    // the broadcast's insert alone, refused: no stream was made for it (one used to stay on the channel, unbound, for good)
    expect((await requests(mid)).map(line)).toEqual(['POST /token 200', 'POST /youtube/v3/liveBroadcasts 403']);
    expect(((await control('GET', '/limits')) as { quota: { used: number } }).quota.used - used).toBe(0);
    expect((await effects()).map((e) => e.type)).not.toContain('show.created');
    // lifted: the same show is made
    await control('PUT', '/live-streaming', { enabled: true });
    await expect(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-blocked'))).resolves.toMatchObject({ externalId: expect.any(String) });
  });

  it('a show of a channel YouTube does not let stream live leaves no liveStream on the channel, on any attempt; once the block is lifted, one stream, bound', async () => {
    // The stream was inserted before the broadcast, whose insert YouTube refuses for such a channel:
    // each such show left an unbound stream (an ingest key nobody sees) on the channel for good.
    const h = harness();
    await control('PUT', '/live-streaming', { enabled: true, blocked: true });
    const op = buildOpContext('mk-blocked-orphan');
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(((await caught(h.adapter.createShow(SPRING_SPEC, op))) as PermanentError).reason).toBe('livePermissionBlocked');
      expect(await channelStreams()).toEqual([]);
    }
    await control('PUT', '/live-streaming', { enabled: true });
    const remote = await h.adapter.createShow(SPRING_SPEC, op);
    expect(await channelStreams()).toEqual([expect.objectContaining({ id: remote.data.streamId, isReusable: false, boundBroadcastId: remote.externalId })]);
  });

  it('a bind refused because the broadcast can never take the stream (deleted on YouTube after its insert) deletes the stream made for it, and a retry makes none', async () => {
    const h = harness();
    const store = new MemoryOnce();
    let deleted = false;
    // The channel owner deletes the new broadcast in YouTube Studio between its insert and the bind.
    const once = (async <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> => {
      const result = await store.once(step, run, recover);
      if (step === 'broadcast' && !deleted) {
        deleted = true;
        await axios.delete(`${sim.url}/youtube/youtube/v3/liveBroadcasts`, { params: { id: (result as { id: string }).id }, headers: { authorization: `Bearer ${await channelToken()}` } });
      }
      return result;
    }) as Once;
    const op = { once, marker: 'mk-bind-gone' };
    for (let attempt = 0; attempt < 2; attempt++) {
      const mid = await lastSeq();
      expect(((await caught(h.adapter.createShow(SPRING_SPEC, op))) as PermanentError).reason).toBe('liveBroadcastNotFound');
      expect(await channelStreams()).toEqual([]);
      // the retry reuses the recorded steps: no stream inserted again, its delete finds it gone
      if (attempt === 1) expect((await requests(mid)).filter((r) => r.method === 'POST' && r.path === '/youtube/v3/liveStreams')).toEqual([]);
    }
  });

  it('a create called off after its broadcast was made and before its stream: the look-up-only create finds the broadcast (to take it down) and makes or binds nothing', async () => {
    // The broadcast is inserted first: a look-up-only create (the show was called off while a create's
    // outcome was unknown) that answered "not made" for the stream step left the broadcast on the channel.
    const h = harness();
    const store = new MemoryOnce();
    const dies = (async <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> => {
      if (step === 'stream') throw new Error('worker killed');
      return store.once(step, run, recover);
    }) as Once;
    await expect(h.adapter.createShow(SPRING_SPEC, { once: dies, marker: 'mk-off' })).rejects.toThrow('worker killed');
    const made = (await effects()).find((e) => e.type === 'show.created')?.externalId;
    // OpContext.findOnly as the intent store answers it: a recorded result, or what recover() finds, or NotMadeError.
    const lookOnly = (async <T>(step: string, _run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> => {
      const r = store.steps.get(step);
      if (r?.state === 'completed') return JSON.parse(r.json) as T;
      const found = r?.state === 'started' && recover ? await recover({ since: r.startedAt }) : null;
      if (found === null) throw new NotMadeError(`${step}: no earlier attempt made it`);
      return found;
    }) as Once;
    const mid = await lastSeq();
    const remote = await h.adapter.createShow(SPRING_SPEC, { once: lookOnly, marker: 'mk-off', findOnly: true });
    expect({ externalId: remote.externalId, ingest: remote.ingest }).toEqual({ externalId: made, ingest: undefined });
    expect(made).toEqual(expect.any(String));
    expect((await requests(mid)).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(await channelStreams()).toEqual([]);
    // Said incomplete: a show back on before its withdraw ran has the create run in full (SyncService),
    // which makes the stream and binds it, the broadcast recorded; left as found, it could never go live.
    expect(remote.data.incomplete).toBe('1');
    const full = await h.adapter.createShow(SPRING_SPEC, { once: store.once, marker: 'mk-off' });
    expect({ externalId: full.externalId, incomplete: full.data.incomplete, bound: (await channelStreams()).map((s) => s.boundBroadcastId) }).toEqual({ externalId: made, incomplete: undefined, bound: [made] });
    await startWhenActive(h, full);
  });

  it('a create called off after its broadcast and stream were made, before the bind, the broadcast deleted on YouTube since: the look-up-only create binds nothing and returns both; the withdraw leaves no stream', async () => {
    // It bound them: the bind was refused (liveBroadcastNotFound), the stream deleted and the mirror failed
    // (only NotMadeError is let through) instead of being cancelled.
    const h = harness();
    const store = new MemoryOnce();
    const dies = (async <T>(step: string, run: () => Promise<T>, recover?: (attempt: RecoverAttempt) => Promise<T | null>): Promise<T> => {
      const result = await store.once(step, run, recover);
      if (step === 'stream') throw new Error('worker killed');
      return result;
    }) as Once;
    await expect(h.adapter.createShow(SPRING_SPEC, { once: dies, marker: 'mk-off-bound' })).rejects.toThrow('worker killed');
    const made = (await effects()).find((e) => e.type === 'show.created')?.externalId as string;
    const [stream] = await channelStreams();
    await axios.delete(`${sim.url}/youtube/youtube/v3/liveBroadcasts`, { params: { id: made }, headers: { authorization: `Bearer ${await channelToken()}` } });
    const lookOnly = (async <T>(step: string): Promise<T> => {
      const r = store.steps.get(step);
      if (r?.state === 'completed') return JSON.parse(r.json) as T;
      throw new NotMadeError(`${step}: no earlier attempt made it`);
    }) as Once;
    const mid = await lastSeq();
    const remote = await h.adapter.createShow(SPRING_SPEC, { once: lookOnly, marker: 'mk-off-bound', findOnly: true });
    expect({ externalId: remote.externalId, streamId: remote.data.streamId }).toEqual({ externalId: made, streamId: stream?.id });
    expect((await requests(mid)).filter((r) => r.method !== 'GET')).toEqual([]);
    await h.adapter.cancelShow(remote, buildOpContext('withdraw'));
    expect(await channelStreams()).toEqual([]);
  });

  it('cancelShow of a show that never aired deletes its stream after its broadcast (a retry finds it gone); a stream not made by this service is left', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-cancel-stream'));
    expect(await channelStreams()).toHaveLength(1);
    const mid = await lastSeq();
    await h.adapter.cancelShow(remote, buildOpContext('cancel'));
    await h.adapter.cancelShow(remote, buildOpContext('cancel'));
    expect(await channelStreams()).toEqual([]);
    // ours by the mirror's record (data.ownStream): no read of the stream first; the retry's delete answers "not found"
    const after = (await requests(mid)).filter((r) => r.path === '/youtube/v3/liveStreams');
    expect(after.map((r) => [r.method, r.status])).toEqual([['DELETE', 204], ['DELETE', 404]]);
    // a linked broadcast's stream made by hand (no marker line): the withdraw deletes the broadcast only
    await seedStreams(1);
    const [own] = await channelStreams();
    const other = await h.adapter.createShow({ ...SPRING_SPEC, title: 'Linked' }, buildOpContext('mk-cancel-linked'));
    await h.adapter.cancelShow({ ...other, data: { streamId: own?.id as string } }, buildOpContext('cancel'));
    expect((await channelStreams()).map((s) => s.id)).toContain(own?.id);
    // a mirror made before data.ownStream was recorded: its stream is read, and ours (non-reusable, our marker) deleted
    const older = await h.adapter.createShow({ ...SPRING_SPEC, title: 'Older' }, buildOpContext('mk-cancel-older'));
    const { ownStream, ...before } = older.data;
    expect(ownStream).toBe('1');
    await h.adapter.cancelShow({ ...older, data: before }, buildOpContext('cancel'));
    const left = (await channelStreams()).map((s) => s.id);
    expect([left.includes(own?.id as string), left.includes(older.data.streamId as string)]).toEqual([true, false]);
  });

  it("a withdraw leaves a linked broadcast's own stream, also one whose description carries a syndicast: line (another deployment's, or copied)", async () => {
    // Any stream with a `syndicast:` line counted as ours and was deleted with the broadcast.
    const h = harness();
    const auth = { authorization: `Bearer ${await channelToken()}` };
    const insert = async (isReusable: boolean): Promise<string> =>
      (
        (
          await axios.post(
            `${sim.url}/youtube/youtube/v3/liveStreams?part=id,snippet,cdn,contentDetails`,
            { snippet: { title: 'studio encoder', description: 'made elsewhere\n\nsyndicast:other-deployment' }, cdn: { ingestionType: 'rtmp', resolution: '720p', frameRate: '30fps' }, contentDetails: { isReusable } },
            { headers: auth },
          )
        ).data as { id: string }
      ).id;
    const { externalId } = (await control('POST', '/shows', { title: 'Made in Studio' })) as { externalId: string };
    const bound = await insert(false);
    await axios.post(`${sim.url}/youtube/youtube/v3/liveBroadcasts/bind`, null, { params: { id: externalId, streamId: bound, part: 'id,contentDetails' }, headers: auth });
    const linked = await h.adapter.attachShow(externalId, buildOpContext('mk-link-own'));
    expect(linked.data).toEqual({ streamId: bound, ownStream: '0', liveChatId: expect.any(String) });
    const mid = await lastSeq();
    await h.adapter.cancelShow(linked, buildOpContext('cancel'));
    expect((await requests(mid)).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /youtube/v3/liveBroadcasts']);
    // a mirror from before data.ownStream naming a reusable stream (a hand-made encoder's) with such a line: read, and left
    const reusable = await insert(true);
    await h.adapter.cancelShow({ ...linked, data: { streamId: reusable, liveChatId: linked.data.liveChatId as string } }, buildOpContext('cancel'));
    expect((await channelStreams()).map((s) => s.id).sort()).toEqual([bound, reusable].sort());
  });

  it('missing credentials → PermanentError before any request', async () => {
    const h = harness({ credentials: { clientId: 'cid', clientSecret: '' } });
    const err = await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-nocreds')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).message).toMatch(/clientSecret, refreshToken/);
    expect(await requests()).toEqual([]);
  });

  it('quotaExceeded → RateLimitedError until midnight Pacific, and the limiter is blocked', async () => {
    await control('PUT', '/limits', { quotaPerDay: 60 });
    const h = harness();
    const t0 = Date.now();
    const err = await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-quota')));
    const t1 = Date.now();

    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).reason).toBe('quotaExceeded');
    const reset = nextMidnightPacific(t1);
    expect((err as RateLimitedError).delayMs).toBeGreaterThanOrEqual(reset - t1);
    expect((err as RateLimitedError).delayMs).toBeLessThanOrEqual(nextMidnightPacific(t0) - t0);
    expect(h.limiter.blocks).toEqual([{ untilMs: reset, reason: 'youtube quota' }]);
    expect((await requests()).map(line)).toEqual(['POST /token 200', 'POST /youtube/v3/liveBroadcasts 200', 'POST /youtube/v3/liveStreams 403']);
  });

  it('500 → RetryableError; 429 → RateLimitedError (no account block without Retry-After); timeout → RetryableError', async () => {
    const h = harness({ timeoutMs: 500 });
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;
    await h.adapter.attachShow(externalId); // token cached: the faults below hit the API call itself

    await control('PUT', '/faults', { rate: 1, kinds: ['500'] });
    const e500 = await caught(h.adapter.attachShow(externalId));
    expect(e500).toBeInstanceOf(RetryableError);
    expect((e500 as RetryableError).reason).toBe('backendError');

    await control('PUT', '/faults', { rate: 1, kinds: ['429'] });
    const before429 = Date.now();
    const e429 = await caught(h.adapter.attachShow(externalId));
    expect(e429).toBeInstanceOf(RateLimitedError);
    expect((e429 as RateLimitedError).reason).toBe('rateLimitExceeded');
    expect((e429 as RateLimitedError).delayMs).toBe(DEFAULT_RATE_LIMIT_DELAY_MS);
    // Google sends no Retry-After here: back off this call only, do not pause the whole account.
    expect(h.limiter.blocks).toHaveLength(0);
    expect(Date.now() - before429).toBeLessThan(DEFAULT_RATE_LIMIT_DELAY_MS);

    await control('PUT', '/faults', { rate: 1, kinds: ['timeout'], hangMs: 5_000 });
    const eTimeout = await caught(h.adapter.attachShow(externalId));
    expect(eTimeout).toBeInstanceOf(RetryableError);
    expect((eTimeout as RetryableError).reason).toBe('timeout');
  });

  it('a crash after the broadcast was created: recover() finds it, no second broadcast', async () => {
    const h = harness();
    const store = new MemoryOnce();
    // Runs the real insert, then "dies" before the result is recorded: the step stays started.
    const crashingOnce = crashOnce(store, 'broadcast');

    await expect(h.adapter.createShow(SPRING_SPEC, { once: crashingOnce, marker: 'mk-crash-1' })).rejects.toThrow('worker killed');
    expect(store.steps.get('broadcast')).toEqual({ state: 'started', startedAt: expect.any(String) });
    const createdId = (await effects())[0]?.externalId;

    const remote = await h.adapter.createShow(SPRING_SPEC, { once: store.once, marker: 'mk-crash-1' });
    expect(remote.externalId).toBe(createdId);
    expect(remote.ingest?.streamKey).toEqual(expect.any(String));
    expect(store.calls).toEqual([
      { step: 'broadcast', ran: false, recovered: true },
      { step: 'stream', ran: true, recovered: false },
    ]);
    expect((await effects()).filter((e) => e.type === 'show.created')).toHaveLength(1);

    const reqs = await requests();
    expect(reqs.filter((r) => r.method === 'POST' && r.path === '/youtube/v3/liveBroadcasts')).toHaveLength(1);
    const list = reqs.find((r) => r.method === 'GET' && r.path === '/youtube/v3/liveBroadcasts');
    expect(list?.query).toEqual({ part: 'id,snippet,status,contentDetails', mine: 'true', broadcastType: 'all', maxResults: '50' });
    expect(reqs.filter((r) => r.path === '/youtube/v3/liveBroadcasts/bind')).toHaveLength(1);
  });

  it('a crash after the stream was created: no liveStreams lookup (YouTube does not list non-reusable streams by `mine`); the stream is inserted again and that one bound', async () => {
    // It used to page `liveStreams?mine=true` for the marker: the simulator listed non-reusable streams
    // there and the lookup found it, YouTube does not ("The liveStreams.list method does not list
    // non-reusable streams if you call the method and set the mine parameter to true",
    // LiveStreamContentDetails.isReusable), so on YouTube it paged the channel's other streams for
    // nothing (1 unit a page, up to 200) and inserted again anyway.
    await seedStreams(60); // reusable streams of the channel: what a `mine` lookup would page through
    const h = harness();
    const store = new MemoryOnce();
    const crashingOnce = crashOnce(store, 'stream');
    await expect(h.adapter.createShow(SPRING_SPEC, { once: crashingOnce, marker: 'mk-crash-2' })).rejects.toThrow('worker killed');
    const before = await lastSeq();

    const remote = await h.adapter.createShow(SPRING_SPEC, { once: store.once, marker: 'mk-crash-2' });
    expect(store.calls.slice(-2)).toEqual([
      { step: 'broadcast', ran: false, recovered: false },
      { step: 'stream', ran: true, recovered: true },
    ]);
    const reqs = await requests(before);
    expect(reqs.map(line)).toEqual(['POST /youtube/v3/liveStreams 200', 'POST /youtube/v3/liveBroadcasts/bind 200']);
    expect(json(reqs[0]).contentDetails).toEqual({ isReusable: false });
    expect(reqs[1]?.query.streamId).toBe(remote.data.streamId);
    // the stream the crashed attempt made is left unbound; the broadcast is made once and bound to the new one
    expect((await effects()).filter((e) => e.type === 'show.created')).toHaveLength(1);
    const attached = await h.adapter.attachShow(remote.externalId);
    expect([attached.data.streamId, attached.ingest?.streamKey]).toEqual([remote.data.streamId, remote.ingest?.streamKey]);
  });

  it('recovery reads past 1,000 broadcasts (it stopped after 20 pages of 50 and made a second broadcast)', async () => {
    // The simulator lists oldest first, as YouTube may (the order is not documented): a channel with
    // more than 1,000 older broadcasts put ours on page 21, past the old bound, and the lookup said
    // "not there". Recovery now reads to the end of such a list (up to 10,000 entries).
    await control('PUT', '/limits', { quotaPerDay: null, requestsPerWindow: null });
    await seedBroadcasts(1_020);
    const h = harness();
    const store = new MemoryOnce();
    const crashingOnce = crashOnce(store, 'broadcast');
    const spec = { ...SPRING_SPEC, title: 'Buried under older broadcasts' };
    await expect(h.adapter.createShow(spec, { once: crashingOnce, marker: 'mk-buried' })).rejects.toThrow('worker killed');
    const created = (await effects()).filter((e) => e.type === 'show.created' && e.title === spec.title);
    expect(created).toHaveLength(1);
    const before = await lastSeq();

    const remote = await h.adapter.createShow(spec, { once: store.once, marker: 'mk-buried' });
    expect(remote.externalId).toBe(created[0]?.externalId);
    expect(store.calls.find((c) => c.step === 'broadcast')).toEqual({ step: 'broadcast', ran: false, recovered: true });
    const lists = (await requests(before)).filter((r) => r.method === 'GET' && r.path === '/youtube/v3/liveBroadcasts');
    expect(lists).toHaveLength(21); // 1,020 older ones, then ours on the 21st page of 50
    expect((await effects()).filter((e) => e.type === 'show.created' && e.title === spec.title)).toHaveLength(1);
  });

  it('a crash after the chat message was posted: recover() finds it, no second message', async () => {
    await control('PUT', '/limits', { streamActivationMs: 0 });
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-pin-crash'));
    await h.adapter.startShow(remote, buildOpContext('start'));

    const store = new MemoryOnce();
    const crashingOnce = crashOnce(store, 'message');
    await expect(h.adapter.pin(remote, LINEN_PIN, { once: crashingOnce, marker: 'mk-pin-c' })).rejects.toThrow('worker killed');
    const again = await h.adapter.pin(remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-c' });
    expect(again.ref).toMatch(/^LCC\./);
    expect(store.calls).toEqual([{ step: 'message', ran: false, recovered: true }]);
    expect((await effects()).filter((e) => e.type === 'message.posted')).toHaveLength(1);
  });

  it('a long title (emoji too) is shortened so the chat message fits 200 characters as the API counts them; the link and the episode tag are whole', async () => {
    await control('PUT', '/limits', { streamActivationMs: 0 });
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-long'));
    await h.adapter.startShow(remote, buildOpContext('start'));
    const before = await lastSeq();
    await h.adapter.pin(remote, { ...LINEN_PIN, title: '✨💄 '.repeat(80) }, buildOpContext('mk-long-pin'));
    const text = (json((await requests(before)).find((r) => r.method === 'POST')).snippet as { textMessageDetails: { messageText: string } }).textMessageDetails.messageText;
    expect(text.length).toBeLessThanOrEqual(200); // UTF-16 units: each emoji here is two
    expect(text.endsWith(` — 49.00 USD ${LINEN_PIN.linkUrl} · ${pinTag('mk-long-pin')}`)).toBe(true);
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no emoji cut in half
    expect((await effects()).filter((e) => e.type === 'message.posted')).toHaveLength(1);
  });

  it("YouTube refusing a pin's chat message (400 messageTextInvalid: here no title fits beside the price and a long link) is a PinRefusedError naming the product; the chat takes the next pin", async () => {
    await control('PUT', '/limits', { streamActivationMs: 0 });
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-refused'));
    await h.adapter.startShow(remote, buildOpContext('start'));
    const before = await lastSeq();
    const err = await caught(h.adapter.pin(remote, { ...LINEN_PIN, linkUrl: `http://127.0.0.1:3000/l/${'x'.repeat(190)}` }, buildOpContext('mk-refused-1')));
    expect(err).toBeInstanceOf(PinRefusedError);
    expect((err as PinRefusedError).reason).toBe('messageTextInvalid');
    expect((err as PinRefusedError).message).toBe(`YouTube refused the chat message of product "${LINEN_PIN.productId}" (messageTextInvalid): The message text is invalid (at most 200 characters).`);
    expect((await requests(before)).filter((r) => r.method === 'POST').map((r) => `${r.path.split('?')[0]} ${r.status}`)).toEqual(['/youtube/v3/liveChat/messages 400']);
    await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-refused-2'));
    expect((await effects()).filter((e) => e.type === 'message.posted')).toHaveLength(1);
  });

  it('a title of 101-128 characters: the stream keeps it whole (liveStream titles may be 128), the broadcast gets it shortened to 100', async () => {
    const h = harness();
    const before = await lastSeq();
    const title = `${'Spring drop '.repeat(10)}end`; // 123 characters
    const remote = await h.adapter.createShow({ ...SPRING_SPEC, title }, buildOpContext('mk-title-123'));
    expect(remote.externalId).toBeTruthy();
    const posts = (await requests(before)).filter((r) => r.method === 'POST');
    const streamTitle = (json(posts.find((r) => r.path === '/youtube/v3/liveStreams')).snippet as { title: string }).title;
    const broadcastTitle = (json(posts.find((r) => r.path === '/youtube/v3/liveBroadcasts')).snippet as { title: string }).title;
    expect(streamTitle).toBe(title);
    expect(broadcastTitle.length).toBe(100);
    expect(broadcastTitle.endsWith('…')).toBe(true);
  });

  it('an emoji title is shortened by UTF-16 units, as the limits are counted (an emoji is two), and never cut in half', async () => {
    const h = harness();
    const before = await lastSeq();
    const title = '💄✨'.repeat(35); // 70 code points, 105 UTF-16 units ('✨' is one)
    const remote = await h.adapter.createShow({ ...SPRING_SPEC, title: `${title}${'💄'.repeat(30)}` }, buildOpContext('mk-title-emoji')); // 165 units
    await h.adapter.updateShow(remote, { ...SPRING_SPEC, title: `New: ${title}` }, buildOpContext('mk-title-emoji-upd'));
    const reqs = await requests(before);
    const titleOf = (r: SimRequestRecord | undefined): string => (json(r).snippet as { title: string }).title;
    const stream = titleOf(reqs.find((r) => r.method === 'POST' && r.path === '/youtube/v3/liveStreams'));
    const broadcast = titleOf(reqs.find((r) => r.method === 'POST' && r.path === '/youtube/v3/liveBroadcasts'));
    const updated = titleOf(reqs.find((r) => r.method === 'PUT' && r.path === '/youtube/v3/liveBroadcasts'));
    expect(stream.length).toBeLessThanOrEqual(128);
    expect(broadcast.length).toBeLessThanOrEqual(100);
    expect(updated.length).toBeLessThanOrEqual(100);
    for (const t of [stream, broadcast, updated]) {
      expect(t.endsWith('…')).toBe(true);
      expect(t).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no emoji cut in half
    }
    expect(reqs.every((r) => r.status === 200)).toBe(true);
  });

  it('updateShow sends the full snippet, keeps the marker, and skips a no-op update', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-upd'));
    const before = await lastSeq();
    const next: ShowSpec = { title: 'Spring drop (moved)', description: 'Now at 7', scheduledAt: '2030-04-01T19:00:00.000Z' };
    await h.adapter.updateShow(remote, next, buildOpContext('mk-upd-2'));
    await h.adapter.updateShow(remote, next, buildOpContext('mk-upd-3'));

    const reqs = await requests(before);
    const puts = reqs.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]?.query).toEqual({ part: 'snippet' });
    expect(json(puts[0])).toEqual({
      id: remote.externalId,
      snippet: { title: next.title, description: 'Now at 7\n\nsyndicast:mk-upd', scheduledStartTime: next.scheduledAt },
    });
    expect((await effects()).filter((e) => e.type === 'show.updated')).toEqual([expect.objectContaining({ externalId: remote.externalId, title: next.title })]);
  });

  it('cancelShow deletes the broadcast and is idempotent; a deleted broadcast is a PermanentError', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-cancel'));
    await h.adapter.cancelShow(remote, buildOpContext('cancel'));
    await h.adapter.cancelShow(remote, buildOpContext('cancel'));
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.cancelled']);

    const err = await caught(h.adapter.attachShow(remote.externalId));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('liveBroadcastNotFound');
    const endErr = await caught(h.adapter.endShow(remote, buildOpContext('end')));
    expect(endErr).toBeInstanceOf(PermanentError);
    expect((endErr as PermanentError).reason).toBe('liveBroadcastNotFound');
  });

  it('cancelShow ends a broadcast that is testing or live (YouTube refuses to delete one on air), once: a retry after a crash leaves the ended broadcast alone', async () => {
    await control('PUT', '/limits', { streamActivationMs: 0 });
    const h = harness();
    // live: the cancel ends it (transition to complete), a second cancel (the retry after a crash
    // before the mirror was saved) finds it complete and neither ends it again nor deletes it
    const live = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-cancel-live'));
    await h.adapter.startShow(live, buildOpContext('start'));
    await h.adapter.cancelShow(live, buildOpContext('cancel'));
    await h.adapter.cancelShow(live, buildOpContext('cancel'));
    // testing (the monitor stream, before live): ended the same way
    const testing = await h.adapter.createShow({ ...SPRING_SPEC, title: 'Testing one' }, buildOpContext('mk-cancel-testing'));
    await directTransition(testing.externalId, 'testing');
    await h.adapter.cancelShow(testing, buildOpContext('cancel'));
    await h.adapter.cancelShow(testing, buildOpContext('cancel'));

    const mine = async (id: string) => (await effects()).filter((e) => e.externalId === id).map((e) => e.type);
    expect(await mine(live.externalId)).toEqual(['show.created', 'show.started', 'show.ended']);
    expect(await mine(testing.externalId)).toEqual(['show.created', 'show.ended']);
    expect((await h.adapter.attachShow(live.externalId)).externalId).toBe(live.externalId); // still there, with its recording
    const deletes = (await requests(0)).filter((r) => r.method === 'DELETE');
    expect(deletes).toEqual([]);
  });

  it('startShow retried after a crash at any point converges: no error loop, one show.started (each retry without the record of an earlier step, as after a crash before it was written)', async () => {
    // A repeated transition converges without any record: YouTube refuses it (redundantTransition, or
    // invalidTransition from a later state), and the adapter reads the state then instead of failing.
    // (The transition to testing is a step, start:testing:0, so that a run the limiter refused part-way
    // resumes where it was refused: test/integration/youtube.start-one-token.test.ts. Here each call
    // has a fresh store, as after a crash before the step's result was recorded.)
    const TRANSITION_MS = 300;
    await control('PUT', '/limits', { streamActivationMs: 0, transitionMs: TRANSITION_MS });
    const h = harness();
    const started = async (id: string) => (await effects()).filter((e) => e.externalId === id && e.type === 'show.started').length;

    // A crash right after the transition to testing was sent: the retry meets testStarting, then testing.
    // testStarting lasts TRANSITION_MS: a retry that came later (a stalled event loop on a busy machine;
    // the simulator runs in this process) met testing, which says nothing: played again on a new show.
    let a: RemoteShow;
    let whileStarting: unknown;
    for (let round = 1; ; round++) {
      a = await h.adapter.createShow({ ...SPRING_SPEC, title: 'Crash after testing' }, buildOpContext(round === 1 ? 'mk-start-crash-a' : `mk-start-crash-a${round}`));
      const t0 = Date.now();
      await directTransition(a.externalId, 'testing');
      whileStarting = await h.adapter.startShow(a, buildOpContext('start')).then(
        () => 'started, no error',
        (err: unknown) => err,
      );
      if (Date.now() - t0 < TRANSITION_MS || round === 5) break;
    }
    expect(whileStarting).toBeInstanceOf(RetryableError);
    expect(whileStarting).toMatchObject({ reason: 'testStarting', waiting: true }); // an expected wait, not a failure
    await sleep(400);
    await h.adapter.startShow(a, buildOpContext('start'));
    // A crash right after the transition to live was sent: the retry (liveStarting, then live) is done at once.
    const b = await h.adapter.createShow({ ...SPRING_SPEC, title: 'Crash after live' }, buildOpContext('mk-start-crash-b'));
    await directTransition(b.externalId, 'testing');
    await sleep(400);
    await directTransition(b.externalId, 'live');
    await h.adapter.startShow(b, buildOpContext('start'));
    await sleep(400);
    await h.adapter.startShow(b, buildOpContext('start'));
    await h.adapter.startShow(a, buildOpContext('start'));

    expect([await started(a.externalId), await started(b.externalId)]).toEqual([1, 1]);
    const attached = await Promise.all([a, b].map((r) => h.adapter.attachShow(r.externalId)));
    expect(attached.map((r) => r.externalId)).toEqual([a.externalId, b.externalId]);
    await control('PUT', '/limits', { transitionMs: 0 });
  });

  it('attachShow reads the bound stream for the ingest', async () => {
    const h = harness();
    const created = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-attach'));
    // read only (no attach op): the bound stream is still read as ours (made with the broadcast: madeWith)
    await expect(h.adapter.attachShow(created.externalId)).resolves.toEqual(created);
  });

  it('a re-link of a broadcast this service made records its stream as ours, so a withdraw deletes it; a stream the seller bound to it stays theirs', async () => {
    // The attach's marker is not the create's: the stream createShow made was recorded ownStream '0', and
    // the withdraw after the re-link left it on the channel for good.
    const h = harness();
    const created = await h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-relink-create'));
    const relinked = await h.adapter.attachShow(created.externalId, buildOpContext('mk-relink-attach'));
    expect(relinked).toEqual(created);
    await h.adapter.cancelShow(relinked, buildOpContext('cancel'));
    expect((await channelStreams()).map((s) => s.id)).not.toContain(created.data.streamId);
    // the seller binds their own (reusable) stream to a broadcast of ours, its description copied from it
    const other = await h.adapter.createShow({ ...SPRING_SPEC, title: 'Rebound' }, buildOpContext('mk-relink-other'));
    const auth = { authorization: `Bearer ${await channelToken()}` };
    const body = { snippet: { title: 'studio encoder', description: 'syndicast:mk-relink-other' }, cdn: { ingestionType: 'rtmp', resolution: '720p', frameRate: '30fps' }, contentDetails: { isReusable: true } };
    const sellers = ((await axios.post(`${sim.url}/youtube/youtube/v3/liveStreams?part=id,snippet,cdn,contentDetails`, body, { headers: auth })).data as { id: string }).id;
    await axios.post(`${sim.url}/youtube/youtube/v3/liveBroadcasts/bind`, null, { params: { id: other.externalId, streamId: sellers, part: 'id,contentDetails' }, headers: auth });
    const linked = await h.adapter.attachShow(other.externalId, buildOpContext('mk-relink-attach2'));
    expect(linked.data).toMatchObject({ streamId: sellers, ownStream: '0' });
    await h.adapter.cancelShow(linked, buildOpContext('cancel'));
    expect((await channelStreams()).map((s) => s.id)).toContain(sellers);
  });

  it('attachShow of a broadcast made by hand without a stream binds one stream (once, also after a crash) so it can go live; a read-only attach binds nothing', async () => {
    // YouTube refuses the transition to testing/live of a broadcast with no bound, active stream
    // (errorStreamInactive). The attach used to only read it: no ingest for the relay, never live.
    const h = harness();
    const { externalId } = (await control('POST', '/shows', { title: 'Made in Studio' })) as { externalId: string };

    // Read only (readiness check, a link after the show): nothing made.
    const readOnly = await h.adapter.attachShow(externalId);
    expect(readOnly.ingest).toBeUndefined();
    expect((await requests()).filter((r) => r.method === 'POST' && r.path.startsWith('/youtube/v3'))).toEqual([]);

    // The sync adopting it: a crash right after the stream insert, then the retry.
    const store = new MemoryOnce();
    await expect(h.adapter.attachShow(externalId, { once: crashOnce(store, 'stream'), marker: 'mk-link-1' })).rejects.toThrow('worker killed');
    const attached = await h.adapter.attachShow(externalId, { once: store.once, marker: 'mk-link-1' });
    expect(attached.externalId).toBe(externalId);
    expect(attached.ingest).toEqual({ url: `${sim.rtmpUrl}/youtube`, streamKey: expect.any(String) });
    expect(attached.data).toEqual({ streamId: expect.any(String), ownStream: '1', liveChatId: expect.any(String) });
    // A retry of a finished attach (or a re-link of the same broadcast) reads the bound stream: no second insert.
    const again = await h.adapter.attachShow(externalId, { once: store.once, marker: 'mk-link-1' });
    expect(again).toEqual(attached);
    // Once more through the step store with the broadcast unread: the recorded stream, not a new one.
    const before = await lastSeq();
    await expect(h.adapter.attachShow(externalId, buildOpContext('mk-link-1', store))).resolves.toEqual(attached);
    expect((await requests(before)).filter((r) => r.method === 'POST' && r.path.startsWith('/youtube/v3'))).toEqual([]);

    const reqs = await requests();
    const binds = reqs.filter((r) => r.path === '/youtube/v3/liveBroadcasts/bind');
    expect(binds.map((r) => [r.query.id, r.query.streamId])).toEqual([[externalId, attached.data.streamId]]);
    // the crashed attempt's stream and the bound one: the retry made exactly one more, never a second bound one
    expect(reqs.filter((r) => r.method === 'POST' && r.path === '/youtube/v3/liveStreams')).toHaveLength(2);

    // and the linked broadcast now goes live, and takes a pin
    await startWhenActive(h, attached);
    const pinned = await h.adapter.pin(attached, LINEN_PIN, buildOpContext('mk-link-pin'));
    expect(pinned.ref).toMatch(/^LCC\./);
    expect((await effects()).filter((e) => e.externalId === externalId).map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted']);
  });
});

describe('YouTube adapter ↔ a server that writes times oddly', () => {
  it('updateShow compares start times strictly: a scheduledStartTime YouTube does not write is no match for ours, and the snippet is sent', async () => {
    const seen: string[] = [];
    let startText = '';
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      seen.push(`${req.method ?? ''} ${(req.url ?? '').split('?')[0] ?? ''}`);
      if (req.url === '/token') return res.end(JSON.stringify({ access_token: 'ya29.ok', expires_in: 3600, token_type: 'Bearer', scope: 'https://www.googleapis.com/auth/youtube' }));
      if (req.method === 'PUT') return res.end(JSON.stringify({ id: 'b1', snippet: { title: 'Spring drop' } }));
      const snippet = { title: 'Spring drop', description: 'Live from the studio\n\nsyndicast:mk-odd', scheduledStartTime: startText };
      res.end(JSON.stringify({ items: [{ id: 'b1', snippet, status: { lifeCycleStatus: 'ready' } }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const h = harness({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const remote: RemoteShow = { externalId: 'b1', url: 'https://www.youtube.com/watch?v=b1', ingest: undefined, data: { marker: 'mk-odd' } };
      const spec: ShowSpec = { title: 'Spring drop', description: 'Live from the studio', scheduledAt: '2026-12-04T21:00:00Z' };
      // the same instant in YouTube's own form: nothing to send
      startText = '2026-12-04T21:00:00.000Z';
      await h.adapter.updateShow(remote, spec, buildOpContext('upd'));
      expect(seen.filter((l) => l.startsWith('PUT'))).toEqual([]);
      // Date.parse read this as the same instant (and skipped the update); it is no RFC 3339 time
      startText = 'Fri Dec 04 2026 21:00:00 GMT+0000';
      await h.adapter.updateShow(remote, spec, buildOpContext('upd'));
      expect(seen.filter((l) => l.startsWith('PUT'))).toEqual(['PUT /youtube/v3/liveBroadcasts']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('YouTube adapter ↔ a server whose bind answers "not found" for a broadcast it lists', () => {
  it('the stream is kept and the bind tried again (RetryableError), not deleted on that answer alone', async () => {
    // It was deleted on the bind's liveBroadcastNotFound: the recorded stream step then named a deleted
    // stream, and every later attempt failed its bind with liveStreamNotFound.
    const fake = await scriptedServer((_method, path) => (path === '/youtube/v3/liveBroadcasts/bind' ? googleRefusal(404, 'liveBroadcastNotFound') : null));
    try {
      const h = harness({ baseUrl: fake.baseUrl });
      const store = new MemoryOnce();
      store.steps.set('broadcast', { state: 'completed', json: JSON.stringify({ id: 'b1', liveChatId: null }) });
      store.steps.set('stream', { state: 'completed', json: JSON.stringify({ id: 's1', ingestionAddress: 'rtmp://127.0.0.1/live2', streamName: 'k1' }) });
      const err = await caught(h.adapter.createShow(SPRING_SPEC, { once: store.once, marker: 'mk-lag' }));
      expect({ retryable: err instanceof RetryableError, reason: (err as RetryableError).reason }).toEqual({ retryable: true, reason: 'liveBroadcastNotFound' });
      expect(fake.seen).toEqual(['POST /youtube/v3/liveBroadcasts/bind', 'GET /youtube/v3/liveBroadcasts']);
    } finally {
      await fake.close();
    }
  });
});

/** A fake YouTube on a loopback port answering `answer(method, path)` (null: a broadcast, `created`); `seen` lists the API requests. */
/** `status` 0: the request is taken and its answer lost (the connection is reset). */
async function scriptedServer(answer: (method: string, path: string) => { status: number; body?: unknown } | null): Promise<{ baseUrl: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path === '/token') return res.end(JSON.stringify({ access_token: 'ya29.ok', expires_in: 3600, token_type: 'Bearer', scope: 'https://www.googleapis.com/auth/youtube' }));
    seen.push(`${req.method ?? ''} ${path}`);
    const a = answer(req.method ?? '', path) ?? { status: 200, body: { items: [{ id: 'b1', snippet: { title: 'Spring drop' }, status: { lifeCycleStatus: 'created' } }] } };
    if (a.status === 0) return req.socket.destroy();
    res.statusCode = a.status;
    res.end(a.body === undefined ? undefined : JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const googleRefusal = (code: number, reason: string) => ({ status: code, body: { error: { code, message: reason, errors: [{ domain: 'youtube.api', reason, message: reason }] } } });

describe('YouTube adapter ↔ a server that refuses the stream read after the withdraw', () => {
  it('the cancel YouTube carried out stands: an unreadable stream (403, 500) is logged and left, not thrown', async () => {
    // The read ran unguarded after the broadcast delete: a 403 left the cancelled mirror failed (every resync
    // repeating it), quota held the cancel until midnight Pacific, a 5xx used up the retries, then failed.
    let streamRead = googleRefusal(403, 'forbidden');
    const fake = await scriptedServer((method, path) => {
      if (path === '/youtube/v3/liveStreams') return method === 'GET' ? streamRead : { status: 204 };
      return method === 'DELETE' ? { status: 204 } : null;
    });
    try {
      const h = harness({ baseUrl: fake.baseUrl });
      const older: RemoteShow = { externalId: 'b1', url: undefined, ingest: undefined, data: { streamId: 's1' } }; // made before data.ownStream
      await h.adapter.cancelShow(older, buildOpContext('cancel'));
      streamRead = googleRefusal(500, 'backendError');
      await h.adapter.cancelShow(older, buildOpContext('cancel'));
      const withdraw = ['GET /youtube/v3/liveBroadcasts', 'DELETE /youtube/v3/liveBroadcasts', 'GET /youtube/v3/liveStreams'];
      expect(fake.seen).toEqual([...withdraw, ...withdraw]);
      expect(h.logs.filter((l) => l.includes('not read; it stays on the channel'))).toHaveLength(2);
      // one recorded as ours is deleted unread
      fake.seen.length = 0;
      await h.adapter.cancelShow({ ...older, data: { streamId: 's1', ownStream: '1' } }, buildOpContext('cancel'));
      expect(fake.seen).toEqual(['GET /youtube/v3/liveBroadcasts', 'DELETE /youtube/v3/liveBroadcasts', 'DELETE /youtube/v3/liveStreams']);
    } finally {
      await fake.close();
    }
  });
});

describe('YouTube adapter ↔ a server whose broadcast read lags behind its delete', () => {
  it('a cancel retried after its delete went through sends no second delete (the step is recorded); a stream delete that failed for now is left for later, and the later attempt deletes only the stream', async () => {
    // The broadcast delete (50 units) was sent again by every retry whose read still listed the
    // broadcast, and a stream delete met with a 5xx was only logged: the stream stayed for good.
    let streamDeletes = 0;
    const fake = await scriptedServer((method, path) => {
      if (method === 'DELETE' && path === '/youtube/v3/liveStreams') return ++streamDeletes === 1 ? googleRefusal(500, 'backendError') : streamDeletes === 2 ? googleRefusal(403, 'forbidden') : { status: 204 };
      if (method === 'DELETE') return { status: 204 };
      return { status: 200, body: { items: [{ id: 'b1', snippet: { title: 'Spring drop' }, status: { lifeCycleStatus: 'ready' } }] } };
    });
    try {
      const h = harness({ baseUrl: fake.baseUrl });
      const store = new MemoryOnce();
      const remote: RemoteShow = { externalId: 'b1', url: undefined, ingest: undefined, data: { streamId: 's1', ownStream: '1' } };
      expect(await h.adapter.cancelShow(remote, buildOpContext('cancel', store))).toEqual({ cleanupPending: true });
      // a refusal for good (403) is not asked again
      expect(await h.adapter.cancelShow(remote, buildOpContext('cancel', store))).toEqual({ cleanupPending: false });
      const withdraw = ['GET /youtube/v3/liveBroadcasts', 'DELETE /youtube/v3/liveBroadcasts', 'DELETE /youtube/v3/liveStreams'];
      expect(fake.seen).toEqual([...withdraw, 'GET /youtube/v3/liveBroadcasts', 'DELETE /youtube/v3/liveStreams']);
      expect(h.logs.filter((l) => l.includes('(tried again later)'))).toHaveLength(1);
    } finally {
      await fake.close();
    }
  });
});

describe('YouTube adapter ↔ a server that takes a broadcast delete and loses its answer', () => {
  // The retry's first read still lists the broadcast `ready` (lagging); the step's recovery read is what tells.
  const lostDelete = async (recoveryRead: { status: number; body?: unknown }) => {
    const reads = [{ lifeCycleStatus: 'ready' }, { lifeCycleStatus: 'ready' }];
    let broadcastDeletes = 0;
    const fake = await scriptedServer((method, path) => {
      if (path === '/youtube/v3/liveStreams') return { status: 204 };
      if (method === 'DELETE') return ++broadcastDeletes === 1 ? { status: 0 } : { status: 204 };
      if (method === 'POST') return { status: 200, body: { id: 'b1', status: { lifeCycleStatus: 'complete' } } };
      const status = reads.shift();
      return status ? { status: 200, body: { items: [{ id: 'b1', snippet: { title: 'Spring drop' }, status }] } } : recoveryRead;
    });
    const h = harness({ baseUrl: fake.baseUrl });
    const store = new MemoryOnce();
    const remote: RemoteShow = { externalId: 'b1', url: undefined, ingest: undefined, data: { streamId: 's1', ownStream: '1' } };
    await expect(h.adapter.cancelShow(remote, buildOpContext('cancel', store))).rejects.toBeDefined();
    const outcome = await h.adapter.cancelShow(remote, buildOpContext('cancel', store));
    await fake.close();
    return { outcome, seen: fake.seen.slice(2), broadcastDeletes };
  };
  const retried = ['GET /youtube/v3/liveBroadcasts', 'GET /youtube/v3/liveBroadcasts'];

  it('the retry reads first: gone → no second delete, its stream is deleted', async () => {
    expect(await lostDelete({ status: 200, body: { items: [] } })).toEqual({ outcome: { cleanupPending: false }, seen: [...retried, 'DELETE /youtube/v3/liveStreams'], broadcastDeletes: 1 });
  });
  it('on air since (started in Studio): ended, not deleted', async () => {
    const live = { status: 200, body: { items: [{ id: 'b1', snippet: { title: 'Spring drop' }, status: { lifeCycleStatus: 'live' } }] } };
    const r = await lostDelete(live);
    expect(r.broadcastDeletes).toBe(1);
    expect(r.seen.slice(0, 3)).toEqual([...retried, 'POST /youtube/v3/liveBroadcasts/transition']);
    expect(r.seen).not.toContain('DELETE /youtube/v3/liveStreams');
  });
  it('over since (went live and ended in Studio: complete): nothing is done, its stream stays with its recording', async () => {
    // It counted as deleted: the ended broadcast's stream was deleted (docs/platforms.md: complete → nothing).
    const over = { status: 200, body: { items: [{ id: 'b1', snippet: { title: 'Spring drop' }, status: { lifeCycleStatus: 'complete' } }] } };
    expect(await lostDelete(over)).toEqual({ outcome: undefined, seen: retried, broadcastDeletes: 1 });
  });
});

describe('YouTube adapter ↔ a server that refuses the broadcast insert (insufficientLivePermissions)', () => {
  it('the refusal says nothing was made: the error is unsent (its step forgotten), and no stream is inserted', async () => {
    const fake = await scriptedServer((method, path) => (method === 'POST' && path === '/youtube/v3/liveBroadcasts' ? googleRefusal(403, 'insufficientLivePermissions') : { status: 500 }));
    try {
      const h = harness({ baseUrl: fake.baseUrl });
      const err = await caught(h.adapter.createShow(SPRING_SPEC, buildOpContext('mk-live-perm')));
      expect({ permanent: err instanceof PermanentError, reason: (err as PermanentError).reason, unsent: (err as PermanentError).unsent }).toEqual({
        permanent: true,
        reason: 'insufficientLivePermissions',
        unsent: true,
      });
      expect(fake.seen).toEqual(['POST /youtube/v3/liveBroadcasts']);
    } finally {
      await fake.close();
    }
  });
});

describe('YouTube adapter ↔ a misbehaving server', () => {
  let server: Server;
  let baseUrl: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/token') res.end(JSON.stringify({ access_token: 'ya29.ok', expires_in: 3600, token_type: 'Bearer' }));
      else res.end(JSON.stringify({ items: [{ id: 42 }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a response that does not match the schema → PermanentError("malformed response")', async () => {
    const h = harness({ baseUrl });
    const err = await caught(h.adapter.attachShow('abc'));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).message).toMatch(/^malformed response from YouTube GET \/youtube\/v3\/liveBroadcasts: items\.0\.id/);
  });
});
