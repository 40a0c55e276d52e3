/**
 * Pin recovery on the platforms where a pin is a message or a comment (YouTube live chat, Facebook
 * comments without Live Shopping), against the simulators over real HTTP. A crashed pin attempt is
 * looked up by the pin episode's tag (pinTag(op.marker)), read back to the attempt's start (less the
 * clock margin). The old lookup took any message with the product's link from the last 10 minutes
 * measured from now:
 *  (a) a re-pin of the same product whose attempt died before posting adopted the earlier episode's
 *      message, so the re-pin was never posted;
 *  (b) a recovery more than 10 minutes after a crash that followed the post did not find the message
 *      and posted the pin a second time.
 * "Later" is a clock moved forward in this process (Date.now: the adapter's and the simulator's), not
 * a 10-minute sleep; the attempt's start is the MemoryOnce record's, as the Redis intent store keeps it.
 */
import axios from 'axios';
import { DEFAULT_FACEBOOK_GRAPH_VERSION } from '../../src/config/config.js';
import { SIM_ACCOUNTS, simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { createFacebookAdapter } from '../../src/targets/facebook/facebook.adapter.js';
import { pinTag } from '../../src/targets/pin-tag.js';
import type { RemoteShow, ShowSpec } from '../../src/targets/target.adapter.js';
import { createYoutubeAdapter } from '../../src/targets/youtube/youtube.adapter.js';
import { MemoryOnce, buildOpContext, crashOnce } from '../helpers/adapter-context.js';
import { LINEN_PIN, adapterHarness, useSimulators, type AdapterHarness } from '../helpers/adapter-harness.js';
import { platformSim } from '../helpers/adapter-sim.js';

const MINUTE = 60_000;
const GV = DEFAULT_FACEBOOK_GRAPH_VERSION;
const FB_PAGE = SIM_ACCOUNTS.facebook[0]!;

const sim = useSimulators({
  limits: { youtube: { simulatedEncoder: 1, streamActivationMs: 0, quotaPerDay: null, requestsPerWindow: null }, facebook: { requestsPerWindow: null } },
});

/** Runs `fn` with this process's clock (Date.now: the adapter's and the simulators') moved by `offsetMs`. */
async function withClock<T>(offsetMs: number, fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  Date.now = () => real.call(Date) + offsetMs;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

interface Harness extends AdapterHarness {
  remote: RemoteShow;
}

/** A YouTube broadcast that is live (its chat open), or a Facebook live video that is LIVE. */
async function liveShow(platform: 'youtube' | 'facebook'): Promise<Harness> {
  const h = adapterHarness(platform === 'youtube' ? createYoutubeAdapter : createFacebookAdapter, { platform, baseUrl: `${sim.url}/${platform}`, credentials: simTargetCredentials(platform, 'a') });
  const spec: ShowSpec = { title: 'Spring drop', description: 'Live from the studio', scheduledAt: new Date(Date.now() + 3_600_000).toISOString() };
  const remote = await h.adapter.createShow(spec, buildOpContext(`mk-show-${platform}`));
  await h.adapter.startShow(remote, buildOpContext('start'));
  return { ...h, remote };
}

const posted = async (platform: string): Promise<number> =>
  (await platformSim(() => sim.url, platform).effects()).filter((e) => e.type === 'message.posted').length;

/** The text of every message / comment the show has, oldest first (straight through the simulated API). */
async function texts(platform: 'youtube' | 'facebook', h: Harness): Promise<{ id: string; text: string }[]> {
  if (platform === 'youtube') {
    const res = await axios.get<{ items: { id: string; snippet: { displayMessage: string } }[] }>(`${sim.url}/youtube/youtube/v3/liveChat/messages`, {
      params: { liveChatId: h.remote.data.liveChatId, part: 'snippet' },
      headers: { authorization: `Bearer ${h.tokens.token!.accessToken}` },
    });
    return res.data.items.map((m) => ({ id: m.id, text: m.snippet.displayMessage }));
  }
  const res = await axios.get<{ data: { id: string; message: string }[] }>(`${sim.url}/facebook/${GV}/${h.remote.data.videoId}/comments`, {
    params: { fields: 'id,message', limit: 100 },
    headers: { authorization: `Bearer ${FB_PAGE.pageAccessToken}` },
  });
  return res.data.data.map((c) => ({ id: c.id, text: c.message }));
}

describe.each([
  { platform: 'youtube' as const, step: 'message' },
  { platform: 'facebook' as const, step: 'comment' },
])('$platform pin recovery', ({ platform, step }) => {
  it('(a) a re-pin of the same product whose attempt died before posting posts its own message (it adopted the earlier episode\'s)', async () => {
    const h = await liveShow(platform);
    const first = await h.adapter.pin(h.remote, LINEN_PIN, buildOpContext('mk-pin-ep1'));

    // Unpinned and pinned again a minute later: episode 2, same link. Its attempt started, then the
    // worker died before the request went out.
    const store = new MemoryOnce();
    store.markStarted(step);
    const second = await withClock(MINUTE, () => h.adapter.pin(h.remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-ep2' }));

    expect(store.calls).toEqual([{ step, ran: true, recovered: true }]);
    expect(second.ref).not.toBe(first.ref);
    expect(await posted(platform)).toBe(2);
    const all = await texts(platform, h);
    expect(all.find((m) => m.id === second.ref)?.text).toContain(pinTag('mk-pin-ep2'));
  });

  it('(a) a crash after a re-pin was posted: recovery adopts that episode\'s message, not the earlier one', async () => {
    const h = await liveShow(platform);
    const first = await h.adapter.pin(h.remote, LINEN_PIN, buildOpContext('mk-pin-ep1'));
    const store = new MemoryOnce();
    await expect(h.adapter.pin(h.remote, LINEN_PIN, { once: crashOnce(store, step), marker: 'mk-pin-ep2' })).rejects.toThrow('worker killed');
    const again = await h.adapter.pin(h.remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-ep2' });

    expect(store.calls).toEqual([{ step, ran: false, recovered: true }]);
    expect(await posted(platform)).toBe(2);
    expect(again.ref).not.toBe(first.ref);
    expect((await texts(platform, h)).find((m) => m.id === again.ref)?.text).toContain(pinTag('mk-pin-ep2'));
  });

  it('(b) a crash after the post, recovered 11 minutes later: the message is found, not posted again', async () => {
    const h = await liveShow(platform);
    const store = new MemoryOnce();
    await expect(h.adapter.pin(h.remote, LINEN_PIN, { once: crashOnce(store, step), marker: 'mk-pin-late' })).rejects.toThrow('worker killed');
    const [only] = await texts(platform, h);

    const again = await withClock(11 * MINUTE, () => h.adapter.pin(h.remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-late' }));
    expect(store.calls).toEqual([{ step, ran: false, recovered: true }]);
    expect(again.ref).toBe(only?.id);
    expect(await posted(platform)).toBe(1);
  });

  it('(b) recovered hours later: still found (the lookback is the attempt\'s start, not a window from now)', async () => {
    const h = await liveShow(platform);
    const store = new MemoryOnce();
    await expect(h.adapter.pin(h.remote, LINEN_PIN, { once: crashOnce(store, step), marker: 'mk-pin-later' })).rejects.toThrow('worker killed');
    const again = await withClock(3 * 60 * MINUTE, () => h.adapter.pin(h.remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-later' }));
    expect(store.calls).toEqual([{ step, ran: false, recovered: true }]);
    expect(again.ref).toBe((await texts(platform, h))[0]?.id);
    expect(await posted(platform)).toBe(1);
  });
});

describe('Facebook pin recovery reads the comments back to the attempt', () => {
  const auth = { authorization: `Bearer ${FB_PAGE.pageAccessToken}`, 'content-type': 'application/x-www-form-urlencoded' };
  async function comment(videoId: string, n: number, text = (i: number) => `comment ${i}`): Promise<void> {
    for (let i = 0; i < n; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, n - i) }, (_, k) =>
          axios.post(`${sim.url}/facebook/${GV}/${videoId}/comments`, new URLSearchParams({ message: text(i + k) }).toString(), { headers: auth }),
        ),
      );
    }
  }
  const commentLists = async (): Promise<number> =>
    (await platformSim(() => sim.url, 'facebook').requests()).filter((r) => r.method === 'GET' && r.path.endsWith('/comments') && r.query.order === 'reverse_chronological').length;

  it('through 350 newer comments by the Page, some carrying the same link (the old lookup stopped after 3 pages of 100)', async () => {
    const h = await liveShow('facebook');
    const store = new MemoryOnce();
    await expect(h.adapter.pin(h.remote, LINEN_PIN, { once: crashOnce(store, 'comment'), marker: 'mk-pin-buried' })).rejects.toThrow('worker killed');
    const [ours] = await texts('facebook', h);
    // A busy show: the Page answers viewers, and repeats the product's link now and then.
    await comment(String(h.remote.data.videoId), 350, (i) => (i % 50 === 0 ? `Still available: ${LINEN_PIN.linkUrl}` : `thanks ${i}!`));

    const again = await h.adapter.pin(h.remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-buried' });
    expect(store.calls).toEqual([{ step: 'comment', ran: false, recovered: true }]);
    expect(again.ref).toBe(ours?.id);
    expect(await posted('facebook')).toBe(351);
    expect(await commentLists()).toBe(4);
  });

  it('stops at comments older than the attempt less the clock margin, then posts', async () => {
    const h = await liveShow('facebook');
    await withClock(-30 * MINUTE, () => comment(String(h.remote.data.videoId), 150));
    const store = new MemoryOnce();
    store.markStarted('comment');
    await h.adapter.pin(h.remote, LINEN_PIN, { once: store.once, marker: 'mk-pin-fresh' });
    expect(store.calls).toEqual([{ step: 'comment', ran: true, recovered: true }]);
    expect(await commentLists()).toBe(1); // the first 100 are all from before the horizon
    expect(await posted('facebook')).toBe(151);
  });

  it('simulator: reverse_chronological cursors mark a comment, as Graph cursors do: comments posted while paging shift nothing', async () => {
    const h = await liveShow('facebook');
    const videoId = String(h.remote.data.videoId);
    for (let i = 0; i < 6; i++) await comment(videoId, 1, () => `comment ${i}`); // one at a time: a known order
    type Page = { data: { message: string }[]; paging?: { cursors?: { after?: string }; next?: string } };
    const list = async (after?: string): Promise<Page> =>
      (
        await axios.get<Page>(`${sim.url}/facebook/${GV}/${videoId}/comments`, {
          headers: auth,
          params: { fields: 'message', order: 'reverse_chronological', limit: 3, ...(after ? { after } : {}) },
        })
      ).data;
    const first = await list();
    expect(first.data.map((c) => c.message)).toEqual(['comment 5', 'comment 4', 'comment 3']);
    await comment(videoId, 2, (i) => `late ${i}`); // newest first: they go on top
    const second = await list(first.paging?.cursors?.after);
    expect(second.data.map((c) => c.message)).toEqual(['comment 2', 'comment 1', 'comment 0']); // an offset cursor repeated 4 and 3
    expect(second.paging?.next).toBeUndefined();
  });
});

describe('YouTube simulator: liveChatMessages.list', () => {
  it('the first request returns the newest maxResults messages, oldest to newest; the page token then polls for new ones', async () => {
    const h = await liveShow('youtube');
    const token = h.tokens.token!.accessToken;
    const liveChatId = h.remote.data.liveChatId;
    const url = `${sim.url}/youtube/youtube/v3/liveChat/messages`;
    const headers = { authorization: `Bearer ${token}` };
    for (let i = 0; i < 205; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, 205 - i) }, (_, k) =>
          axios.post(
            url,
            { snippet: { liveChatId, type: 'textMessageEvent', textMessageDetails: { messageText: `m${String(i + k).padStart(3, '0')}` } } },
            { params: { part: 'snippet' }, headers },
          ),
        ),
      );
    }
    type List = { items: { snippet: { displayMessage: string; publishedAt: string } }[]; nextPageToken: string; pollingIntervalMillis: number };
    const first = (await axios.get<List>(url, { params: { liveChatId, part: 'snippet', maxResults: 200 }, headers })).data;
    expect(first.items).toHaveLength(200);
    const stamps = first.items.map((m) => Date.parse(m.snippet.publishedAt));
    expect([...stamps].sort((x, y) => x - y)).toEqual(stamps); // oldest to newest
    const all = (await texts('youtube', h)).map((m) => m.text); // maxResults 500 (the default): all 205
    expect(all).toHaveLength(205);
    expect(first.items.map((m) => m.snippet.displayMessage)).toEqual(all.slice(5));
    await new Promise((r) => setTimeout(r, first.pollingIntervalMillis)); // sooner is refused (rateLimitExceeded)
    const poll = (await axios.get<List>(url, { params: { liveChatId, part: 'snippet', maxResults: 200, pageToken: first.nextPageToken }, headers })).data;
    expect(poll.items).toEqual([]);
  });
});
