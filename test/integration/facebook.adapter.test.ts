/**
 * The Facebook Live adapter against the Facebook (Graph API) simulator over real HTTP: scheduled and
 * preview live videos, going live and ending by API, pins as comments on the live video's video object
 * or as Live Shopping product pins (per target, from the token's permissions), the Graph version from
 * the settings, Graph error codes (190, throttling with usage headers, transient errors), crash
 * recovery, the 24 h stream URL, and the exact requests that went over the wire.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import axios from 'axios';
import { DEFAULT_FACEBOOK_GRAPH_VERSION } from '../../src/config/config.js';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import { createFacebookAdapter } from '../../src/targets/facebook/facebook.adapter.js';
import { pinTag } from '../../src/targets/pin-tag.js';
import type { RemoteShow, ShowSpec } from '../../src/targets/target.adapter.js';
import { ActionRequiredError, PermanentError, PinRefusedError, RateLimitedError, RetryableError } from '../../src/targets/target.errors.js';
import { MemoryOnce, buildOpContext, caught, crashOnce } from '../helpers/adapter-context.js';
import { LINEN_PIN, adapterHarness, useSimulators, type AdapterHarness as Harness } from '../helpers/adapter-harness.js';
import { platformSim, line } from '../helpers/adapter-sim.js';

/** Page a and its token; Page b's token (src/simulators/sim.accounts.ts). */
const PAGE_ID = SIM_ACCOUNTS.facebook[0]!.pageId;
const TOKEN = SIM_ACCOUNTS.facebook[0]!.pageAccessToken;
const CREDENTIALS = { pageId: PAGE_ID, pageAccessToken: TOKEN };
const PAGE_B = SIM_ACCOUNTS.facebook[1]!;
/** The Graph version the adapter calls by default (FACEBOOK_GRAPH_VERSION). */
const GV = DEFAULT_FACEBOOK_GRAPH_VERSION;
const HOUR = 3600_000;

function specAt(ms: number, title = 'Spring drop: linen & denim'): ShowSpec {
  return { title, description: 'Live from the studio', scheduledAt: new Date(ms).toISOString() };
}

const sim = useSimulators();

// --- helpers ------------------------------------------------------------------------------------

function harness(opts: { credentials?: Record<string, string>; timeoutMs?: number; baseUrl?: string; graphVersion?: string } = {}): Harness {
  return adapterHarness(createFacebookAdapter, {
    platform: 'facebook',
    baseUrl: opts.baseUrl ?? `${sim.url}/facebook`,
    credentials: opts.credentials ?? CREDENTIALS,
    timeoutMs: opts.timeoutMs ?? 3_000,
    ...(opts.graphVersion ? { settings: { facebookGraphVersion: opts.graphVersion } } : {}),
  });
}

const { control, effects, requests, lastSeq } = platformSim(() => sim.url, 'facebook');
const form = (r: SimRequestRecord | undefined): Record<string, string> => Object.fromEntries(new URLSearchParams(r?.body ?? ''));

/** Live videos made by someone else on the same Page (straight through the simulated Graph API). */
async function seedVideos(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await axios.post(`${sim.url}/facebook/${GV}/${PAGE_ID}/live_videos`, new URLSearchParams({ title: `other ${i}`, status: 'UNPUBLISHED' }).toString(), {
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
    });
  }
}

// --- tests --------------------------------------------------------------------------------------

describe('Facebook adapter ↔ Facebook (Graph API) simulator', () => {
  it('runs the lifecycle: scheduled live video → LIVE_NOW → pin comment → end', async () => {
    const h = harness();
    const start = Date.now() + 2 * 24 * HOUR;
    const remote = await h.adapter.createShow(specAt(start), buildOpContext('mk-life-1'));

    expect(remote.externalId).toMatch(/^\d+$/);
    expect(remote.url).toMatch(new RegExp(`^https://www\\.facebook\\.com/${PAGE_ID}/videos/\\d+/$`));
    expect(remote.ingest).toEqual({ url: `${sim.rtmpUrl}/facebook/`, streamKey: expect.stringMatching(/^FB-\d+-0-/) });
    expect(remote.data).toEqual({
      marker: 'mk-life-1',
      mode: 'scheduled',
      plannedStart: String(Math.floor(start / 1000)),
      ingestExpiresAt: expect.any(String),
      videoId: expect.stringMatching(/^\d+$/), // the video object that takes the pin comments
    });
    // the stream URL is good until 24 h after the planned start
    expect(Date.parse(remote.data.ingestExpiresAt ?? '')).toBe(start + 24 * HOUR);

    await h.adapter.startShow(remote, buildOpContext('start'));
    await h.adapter.startShow(remote, buildOpContext('start')); // already live: success
    const pinned = await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-pin-1'));
    expect(pinned.ref).toMatch(/^\d+_\d+$/);
    await h.adapter.unpin(remote, LINEN_PIN, pinned.ref, buildOpContext('unpin')); // nothing remote
    await h.adapter.endShow(remote, buildOpContext('end'));
    await h.adapter.endShow(remote, buildOpContext('end')); // already stopped: success

    const fx = await effects();
    expect(fx.map((e) => e.type)).toEqual(['show.created', 'show.started', 'message.posted', 'show.ended']);
    expect(fx.every((e) => e.externalId === remote.externalId)).toBe(true);
    expect(fx[2]?.url).toBe(LINEN_PIN.linkUrl);
    expect(h.logs.join('\n')).not.toContain(TOKEN);
    expect(h.limiter.blocks).toEqual([]);
  });

  it('sends exactly the documented requests (token in the Authorization header, form-encoded parameters)', async () => {
    const h = harness();
    const start = Date.now() + 3 * HOUR;
    const remote = await h.adapter.createShow(specAt(start), buildOpContext('mk-req-1'));
    await h.adapter.updateShow(remote, specAt(start + HOUR, 'Spring drop (moved)'), buildOpContext('mk-upd'));
    await h.adapter.startShow(remote, buildOpContext('start'));
    await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-pin'));
    await h.adapter.endShow(remote, buildOpContext('end'));

    const reqs = await requests();
    const v = `/${GV}/${remote.externalId}`;
    expect(reqs.map(line)).toEqual([
      `POST /${GV}/${PAGE_ID}/live_videos 200`,
      `GET ${v} 200`,
      `POST ${v} 200`,
      `POST ${v} 200`,
      `GET /${GV}/debug_token 200`, // which pin this target can make: read once, then cached
      `POST /${GV}/${remote.data.videoId}/comments 200`,
      `POST ${v} 200`,
    ]);
    for (const r of reqs) {
      expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(r.query.access_token).toBeUndefined(); // never in the URL
    }
    // debug_token can only name the token it inspects in the query (our logs never carry a query)
    expect(reqs[4]?.query).toEqual({ input_token: TOKEN });
    expect(reqs[0]?.headers['content-type']).toContain('application/x-www-form-urlencoded');
    expect(form(reqs[0])).toEqual({
      title: 'Spring drop: linen & denim',
      description: 'Live from the studio\n\nsyndicast:mk-req-1',
      status: 'SCHEDULED_UNPUBLISHED',
      event_params: JSON.stringify({ start_time: Math.floor(start / 1000) }),
    });
    expect(reqs[1]?.query).toEqual({ fields: 'id,status,title,description,secure_stream_url,permalink_url,creation_time,planned_start_time,video' });
    expect(form(reqs[2])).toEqual({
      title: 'Spring drop (moved)',
      description: 'Live from the studio\n\nsyndicast:mk-req-1',
      event_params: JSON.stringify({ start_time: Math.floor((start + HOUR) / 1000) }),
    });
    expect(form(reqs[3])).toEqual({ status: 'LIVE_NOW' });
    expect(form(reqs[5])).toEqual({ message: `🛍 Linen shirt — 49.00 USD http://127.0.0.1:3000/l/Ab3dEf · ${pinTag('mk-pin')}` });
    expect(form(reqs[6])).toEqual({ end_live_video: 'true' });
  });

  it('a show starting within 10 minutes gets an UNPUBLISHED preview that startShow publishes', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(specAt(Date.now() - 60_000), buildOpContext('mk-preview'));
    expect(remote.data.mode).toBe('preview');
    expect(form((await requests())[0]).status).toBe('UNPUBLISHED');
    expect(form((await requests())[0]).event_params).toBeUndefined();
    await h.adapter.startShow(remote, buildOpContext('start'));
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.started']);
  });

  it('a start ~10 min out is scheduled only if it is still 10+ min ahead when the request reaches Facebook: the lead is measured as the request goes, with a 1 min margin (create and reschedule)', async () => {
    // Facebook refuses a scheduled start less than 10 minutes ahead (field reports). The lead used to be
    // measured before the limiter and the intent's round trips, with no margin: a show 10 min + 1 s out
    // was sent as SCHEDULED_UNPUBLISHED and reached Facebook 9:59 ahead.
    const MINUTE = 60_000;
    const h = harness();
    const acquire = h.limiter.acquire.bind(h.limiter);
    h.limiter.acquire = async (cost?: number) => {
      // A slow limiter / intent store before the request goes: more than the 1 s the near start has over
      // 10 min (it was 1.5 s; the case makes six requests, each one waits it).
      await sleep(1_200);
      await acquire(cost);
    };
    const near = await h.adapter.createShow(specAt(Date.now() + 10 * MINUTE + 1_000), buildOpContext('mk-lead-1'));
    expect(near.data.mode).toBe('preview');
    const far = await h.adapter.createShow(specAt(Date.now() + 12 * MINUTE), buildOpContext('mk-lead-2'));
    expect(far.data.mode).toBe('scheduled');
    await h.adapter.updateShow(far, specAt(Date.now() + 10 * MINUTE + 1_000), buildOpContext('mk-lead-u1')); // too close: title only
    const later = Date.now() + 14 * MINUTE;
    await h.adapter.updateShow(far, specAt(later), buildOpContext('mk-lead-u2')); // moved

    const posts = (await requests()).filter((r) => r.method === 'POST');
    expect(posts.map((r) => form(r).status ?? null)).toEqual(['UNPUBLISHED', 'SCHEDULED_UNPUBLISHED', null, null]);
    const scheduledStarts = posts.filter((r) => form(r).event_params !== undefined);
    expect(scheduledStarts).toHaveLength(2); // the far create and the second update
    expect(JSON.parse(form(scheduledStarts[1]).event_params!)).toEqual({ start_time: Math.floor(later / 1000) });
    for (const r of scheduledStarts) {
      const startTime = (JSON.parse(form(r).event_params!) as { start_time: number }).start_time;
      // never under 10 minutes ahead as Facebook received it
      expect(startTime * 1000 - Date.parse(r.at)).toBeGreaterThanOrEqual(10 * MINUTE);
    }
  });

  it('a show more than 7 days ahead is not created yet: RetryableError with a delay, nothing sent', async () => {
    const h = harness();
    const err = await caught(h.adapter.createShow(specAt(Date.now() + 20 * 24 * HOUR), buildOpContext('mk-far')));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).reason).toBe('schedule_window');
    expect((err as RetryableError).delayMs).toBe(3 * 24 * HOUR); // looked at again at most 3 days later
    const nearer = await caught(h.adapter.createShow(specAt(Date.now() + 7 * 24 * HOUR + HOUR), buildOpContext('mk-far-2')));
    expect((nearer as RetryableError).delayMs).toBeGreaterThan(HOUR);
    expect((nearer as RetryableError).delayMs).toBeLessThan(2 * HOUR);
    expect(await requests()).toEqual([]);
  });

  it('code 190 → PermanentError asking to re-authorise the Page (dead token, and the token_expired fault)', async () => {
    const h = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: 'expired-EAAG-xyz' } });
    const err = await caught(h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-190')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('oauth_190');
    expect((err as PermanentError).message).toMatch(/re-authorise the Page/);
    // pageId too (a PATCH replaces the credentials): the token alone was refused for lacking it.
    expect((err as PermanentError).message).toContain('PATCH /v1/partners/ptn_test/targets/tgt_test {"credentials": {"pageId": "…", "pageAccessToken": "<new>"}}');
    expect((err as PermanentError).message).not.toContain('expired-EAAG-xyz');
    const body = (await requests())[0];
    expect(body?.status).toBe(400);

    const ok = harness();
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;
    await control('PUT', '/faults', { rate: 1, kinds: ['token_expired'] });
    const e2 = await caught(ok.adapter.attachShow(externalId));
    expect(e2).toBeInstanceOf(PermanentError);
    expect((e2 as PermanentError).message).toMatch(/code 190, subcode 463/);
  });

  // --- issue 13: a Page token works for its own Page only -----------------------------------------

  it("Page b's token cannot create live videos on Page a, nor read, change, end, delete or comment on Page a's (code 100 subcode 33)", async () => {
    const a = harness();
    const remote = await a.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-page-a'));
    await a.adapter.startShow(remote, buildOpContext('start-a'));
    // the adapter configured with Page a's id but Page b's token
    const b = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: PAGE_B.pageAccessToken } });
    const created = await caught(b.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-page-b')));
    expect(created).toBeInstanceOf(PermanentError);
    expect(await caught(b.adapter.attachShow(remote.externalId))).toBeInstanceOf(PermanentError);
    expect(await caught(b.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-page-b-pin')))).toBeInstanceOf(PermanentError);
    const asB = { authorization: `Bearer ${PAGE_B.pageAccessToken}`, 'content-type': 'application/x-www-form-urlencoded' };
    const direct = async (method: 'GET' | 'POST' | 'DELETE', path: string, form = ''): Promise<{ status: number; data: { error?: { code: number; error_subcode?: number } } }> =>
      axios.request({ method, url: `${sim.url}/facebook/${GV}${path}`, headers: asB, data: form || undefined, validateStatus: () => true });
    for (const [method, path, form] of [
      ['GET', `/${remote.externalId}`, ''],
      ['POST', `/${remote.externalId}`, 'end_live_video=true'],
      ['DELETE', `/${remote.externalId}`, ''],
      ['GET', `/${PAGE_ID}/live_videos`, ''],
      ['POST', `/${String(remote.data.videoId)}/comments`, 'message=hijack'],
    ] as const) {
      const r = await direct(method, path, form);
      expect([method, path, r.status, r.data.error?.code, r.data.error?.error_subcode]).toEqual([method, path, 400, 100, 33]);
    }
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.started']);
    // Page b's token on Page b works
    const own = harness({ credentials: { pageId: PAGE_B.pageId, pageAccessToken: PAGE_B.pageAccessToken } });
    await expect(own.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-page-b-own'))).resolves.toMatchObject({ externalId: expect.any(String) });
  });

  it("a token never seen, for a Page id nobody has, is that new Page's (CONTRACT §9): the check passes, it makes live videos there, and Page a's token cannot reach them", async () => {
    const made = harness({ credentials: { pageId: '555000111222333', pageAccessToken: 'EAAGoutsidetoken' } });
    await expect(made.adapter.verifyCredentials!()).resolves.toBeUndefined();
    const remote = await made.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-made-page'));
    const asA = await axios.get(`${sim.url}/facebook/${GV}/${remote.externalId}`, { headers: { authorization: `Bearer ${TOKEN}` }, validateStatus: () => true });
    expect([asA.status, (asA.data as { error?: { code: number } }).error?.code]).toEqual([400, 100]);
    // another made-up token for that Page (now an existing one) is no token of it: 190
    const other = harness({ credentials: { pageId: '555000111222333', pageAccessToken: 'EAAGanotherguess' } });
    expect(((await caught(other.adapter.verifyCredentials!())) as PermanentError).reason).toBe('oauth_190');
  });

  it("a made-up token for an existing Page is refused with code 190 (it is no token of that Page), and debug_token says it is not valid", async () => {
    const h = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: 'EAAGmadeuptoken' } });
    const err = await caught(h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-madeup')));
    expect((err as PermanentError).reason).toBe('oauth_190');
    const dbg = await axios.get(`${sim.url}/facebook/${GV}/debug_token`, { params: { input_token: 'EAAGmadeuptoken' }, headers: { authorization: `Bearer ${TOKEN}` } });
    expect((dbg.data as { data: { is_valid: boolean; scopes: string[] } }).data).toMatchObject({ is_valid: false, scopes: [] });
  });

  /** A second token of Page a whose admin granted everything but pages_read_engagement. */
  async function narrowToken(): Promise<string> {
    const { pageAccessToken } = (await control('POST', '/accounts', { pageId: PAGE_ID })) as { pageAccessToken: string };
    await control('PUT', '/permissions', { token: pageAccessToken, granted: ['pages_show_list', 'pages_manage_posts', 'pages_manage_engagement'] });
    return pageAccessToken;
  }

  it('a Page token without pages_read_engagement: Graph refuses to create a live video (#200), as the Broadcasting guide requires both permissions', async () => {
    const NARROW = await narrowToken();
    const direct = await axios.post(`${sim.url}/facebook/${GV}/${PAGE_ID}/live_videos`, new URLSearchParams({ title: 'x', status: 'UNPUBLISHED' }).toString(), {
      headers: { authorization: `Bearer ${NARROW}`, 'content-type': 'application/x-www-form-urlencoded' },
      validateStatus: () => true,
    });
    expect([direct.status, (direct.data as { error?: { code?: number; message?: string } }).error]).toEqual([403, expect.objectContaining({ code: 200, message: expect.stringContaining('pages_read_engagement') })]);
    const h = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: NARROW } });
    const created = await caught(h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-narrow')));
    expect(created).toBeInstanceOf(PermanentError);
    expect((created as PermanentError).reason).toBe('code_200');
    expect((await effects()).filter((e) => e.type === 'show.created')).toHaveLength(0);
  });

  it('the credential check refuses a Page token that lacks a permission the mirror needs, when the target is saved instead of at show time', async () => {
    const NARROW = await narrowToken();
    const h = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: NARROW } });
    const err = await caught(h.adapter.verifyCredentials!());
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('missing_permissions');
    expect((err as PermanentError).message).toContain('lacks pages_read_engagement');
    expect((err as PermanentError).message).not.toContain(NARROW);
    // a token with every permission passes
    await expect(harness().adapter.verifyCredentials!()).resolves.toBeUndefined();
  });

  it('missing credentials → PermanentError before any request', async () => {
    const h = harness({ credentials: { pageId: 'my-page' } });
    const err = await caught(h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-nocreds')));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).message).toMatch(/pageId, pageAccessToken/);
    expect(await requests()).toEqual([]);
  });

  it('throttling: code 4 (X-App-Usage) → 60 s; a Page token past its Business Use Case limit, code 80001 with X-Business-Use-Case-Usage estimated_time_to_regain_access → that long; both block the limiter', async () => {
    const h = harness();
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;

    await control('PUT', '/faults', { rate: 1, kinds: ['429'] });
    const e4 = await caught(h.adapter.attachShow(externalId));
    expect(e4).toBeInstanceOf(RateLimitedError);
    expect((e4 as RateLimitedError).reason).toBe('code_4');
    expect((e4 as RateLimitedError).delayMs).toBe(60_000);
    await control('PUT', '/faults', { rate: 0, kinds: [] });

    await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 170_000 });
    await h.adapter.attachShow(externalId);
    const t = Date.now();
    // "requests made with system user or page access tokens are subject to Business Use Case Rate
    // Limits" (Graph rate-limiting guide): Pages BUC is code 80001 (the simulator answered code 32 with
    // X-Page-Usage, what a user token gets)
    const eBuc = await caught(h.adapter.attachShow(externalId));
    expect(eBuc).toBeInstanceOf(RateLimitedError);
    expect((eBuc as RateLimitedError).reason).toBe('code_80001');
    expect((eBuc as RateLimitedError).delayMs).toBe(3 * 60_000); // estimated_time_to_regain_access: 3 (minutes)
    expect((await requests()).at(-1)?.status).toBe(400); // Graph throttles with HTTP 400 and the code in the body
    const buc = await fetch(`${sim.url}/facebook/v21.0/${externalId}?fields=id`, { headers: { authorization: `Bearer ${CREDENTIALS.pageAccessToken}` } });
    const usage = JSON.parse(buc.headers.get('x-business-use-case-usage') ?? '{}') as Record<string, Array<Record<string, unknown>>>;
    expect(usage[CREDENTIALS.pageId]?.[0]).toMatchObject({ type: 'pages', estimated_time_to_regain_access: expect.any(Number) });
    expect(buc.headers.get('x-page-usage')).toBeNull();
    // Code 4 (the app's) holds every call; 80001 the Pages use case's only.
    expect(h.limiter.blocks.map((b) => [b.reason, b.useCase])).toEqual([
      ['facebook throttling', undefined],
      ['facebook throttling (pages)', 'pages'],
    ]);
    expect(h.limiter.blocks[1]?.untilMs).toBeGreaterThanOrEqual(t + 3 * 60_000 - 50);
  });

  it('faults: 500 (code 2, transient) → RetryableError; timeout → RetryableError', async () => {
    const h = harness({ timeoutMs: 500 });
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;
    await control('PUT', '/faults', { rate: 1, kinds: ['500'] });
    const e500 = await caught(h.adapter.attachShow(externalId));
    expect(e500).toBeInstanceOf(RetryableError);
    expect((e500 as RetryableError).reason).toBe('code_2');

    await control('PUT', '/faults', { rate: 1, kinds: ['timeout'], hangMs: 3_000 });
    const eTimeout = await caught(h.adapter.attachShow(externalId));
    expect(eTimeout).toBeInstanceOf(RetryableError);
    expect((eTimeout as RetryableError).reason).toBe('timeout');

    await control('PUT', '/faults', { rate: 0, kinds: [] });
    await expect(h.adapter.attachShow(externalId)).resolves.toMatchObject({ externalId });
  });

  it('the simulator refuses a scheduled start under 10 minutes or over 7 days ahead, as Facebook does (create and reschedule)', async () => {
    const post = (path: string, body: Record<string, string>) =>
      axios.post(`${sim.url}/facebook/${GV}/${path}`, new URLSearchParams(body).toString(), {
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
        validateStatus: () => true,
      });
    const at = (msAhead: number) => JSON.stringify({ start_time: Math.floor((Date.now() + msAhead) / 1000) });
    const MINUTE = 60_000;
    const near = await post(`${PAGE_ID}/live_videos`, { status: 'SCHEDULED_UNPUBLISHED', title: 'near', event_params: at(9 * MINUTE) });
    expect(near.status).toBe(400);
    expect(near.data).toMatchObject({ error: { type: 'OAuthException', code: 100 } });
    expect((near.data as { error: { message: string } }).error.message).toMatch(/at least 10 minutes/);
    const far = await post(`${PAGE_ID}/live_videos`, { status: 'SCHEDULED_UNPUBLISHED', title: 'far', event_params: at(7 * 24 * HOUR + 5 * MINUTE) });
    expect(far.status).toBe(400);
    const ok = await post(`${PAGE_ID}/live_videos`, { status: 'SCHEDULED_UNPUBLISHED', title: 'ok', event_params: at(11 * MINUTE) });
    expect(ok.status).toBe(200);
    const id = (ok.data as { id: string }).id;
    const moveNear = await post(id, { event_params: at(5 * MINUTE) });
    expect(moveNear.status).toBe(400);
    const moveOk = await post(id, { event_params: at(30 * MINUTE) });
    expect(moveOk.status).toBe(200);
  });

  // Graph refuses the whole request: a POST /{id} with a part it refuses (a start under 10 minutes, a
  // status change the video cannot make) changes nothing. Before, the title and description were
  // applied before the start was checked: the answer was the (#100) error, but the title had changed
  // anyway (and no show.updated effect said so).
  it('the simulator changes nothing of a live video when it refuses part of the POST (title with a start too near, or with a status change it cannot make)', async () => {
    const post = (path: string, body: Record<string, string>) =>
      axios.post(`${sim.url}/facebook/${GV}/${path}`, new URLSearchParams(body).toString(), {
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
        validateStatus: () => true,
      });
    const read = async (id: string) =>
      (await axios.get(`${sim.url}/facebook/${GV}/${id}`, { headers: { authorization: `Bearer ${TOKEN}` }, params: { fields: 'title,description,status,planned_start_time' } })).data as Record<string, unknown>;
    const at = (msAhead: number) => JSON.stringify({ start_time: Math.floor((Date.now() + msAhead) / 1000) });
    const MINUTE = 60_000;
    const scheduled = await post(`${PAGE_ID}/live_videos`, { status: 'SCHEDULED_UNPUBLISHED', title: 'kept', description: 'kept too', event_params: at(30 * MINUTE) });
    expect(scheduled.status).toBe(200);
    const id = (scheduled.data as { id: string }).id;
    const draft = await post(`${PAGE_ID}/live_videos`, { status: 'UNPUBLISHED', title: 'draft' });
    expect(draft.status).toBe(200);
    const draftId = (draft.data as { id: string }).id;
    const before = { scheduled: await read(id), draft: await read(draftId) };
    const seq = (await effects()).at(-1)?.seq ?? 0;

    const refused = [
      [id, { title: 'renamed', description: 'changed', event_params: at(5 * MINUTE) }, /at least 10 minutes/],
      [id, { title: 'renamed', event_params: 'not a time' }, /event_params/],
      [id, { title: 'renamed', event_params: at(20 * MINUTE), status: 'LIVE' }, /param status must be one of/],
      [draftId, { title: 'renamed', status: 'SCHEDULED_CANCELED' }, /Only a scheduled live video can be cancelled/],
    ] as const;
    for (const [video, body, message] of refused) {
      const r = await post(video, body);
      expect(r.status).toBe(400);
      expect(r.data).toMatchObject({ error: { type: 'OAuthException', code: 100 } });
      expect((r.data as { error: { message: string } }).error.message).toMatch(message);
    }
    expect(await read(id)).toEqual(before.scheduled);
    expect(await read(draftId)).toEqual(before.draft);
    expect((await effects()).filter((e) => e.seq > seq)).toEqual([]);

    // The same changes, each part acceptable: applied, one show.updated each.
    expect((await post(id, { title: 'renamed', event_params: at(20 * MINUTE) })).status).toBe(200);
    expect(await read(id)).toMatchObject({ title: 'renamed', description: 'kept too', status: 'SCHEDULED_UNPUBLISHED' });
    expect((await post(id, { title: 'renamed again', status: 'SCHEDULED_CANCELED' })).status).toBe(200);
    expect(await read(id)).toMatchObject({ title: 'renamed again', status: 'SCHEDULED_CANCELED' });
    expect((await effects()).filter((e) => e.seq > seq).map((e) => [e.type, e.externalId, e.title])).toEqual([
      ['show.updated', id, 'renamed'],
      ['show.updated', id, 'renamed again'],
      ['show.cancelled', id, 'renamed again'],
    ]);
  });

  it('invalid parameter (code 100) → PermanentError quoting Facebook', async () => {
    const h = harness();
    const res = await axios.post(`${sim.url}/facebook/${GV}/${PAGE_ID}/live_videos`, 'status=SCHEDULED_UNPUBLISHED', {
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
      validateStatus: () => true,
    });
    expect(res.status).toBe(400);
    expect(res.data).toMatchObject({ error: { type: 'OAuthException', code: 100, fbtrace_id: expect.any(String) } });
    const err = await caught(h.adapter.attachShow('999'));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).reason).toBe('code_100_33');
    expect((err as PermanentError).message).toMatch(/^Facebook refused GET \/999 \(code 100\): Unsupported get request\. Object with ID '999' does not exist/);
  });

  it('a crash after the live video was created: recover() finds it by the description marker', async () => {
    const h = harness();
    await seedVideos(10);
    const store = new MemoryOnce();
    const spec = specAt(Date.now() + 5 * HOUR);
    await expect(h.adapter.createShow(spec, { once: crashOnce(store, 'live_video'), marker: 'mk-crash-1' })).rejects.toThrow('worker killed');
    const created = (await effects()).find((e) => e.title === spec.title)?.externalId;
    // lists are newest first: 60 newer videos push ours to the second page of 50
    await seedVideos(60);
    const before = await lastSeq();

    const remote = await h.adapter.createShow(spec, { once: store.once, marker: 'mk-crash-1' });
    expect(remote.externalId).toBe(created);
    expect(remote.ingest?.streamKey).toEqual(expect.any(String));
    expect(store.calls).toEqual([{ step: 'live_video', ran: false, recovered: true }]);
    const reqs = await requests(before);
    expect(reqs.map(line)).toEqual([
      `GET /${GV}/${PAGE_ID}/live_videos 200`,
      `GET /${GV}/${PAGE_ID}/live_videos 200`,
      `GET /${GV}/${created} 200`,
    ]);
    expect(reqs[0]?.query).toEqual({ fields: 'id,description,status,secure_stream_url,creation_time', limit: '50' });
    expect(reqs[1]?.query.after).toEqual(expect.any(String));
    expect((await effects()).filter((e) => e.type === 'show.created' && e.title === spec.title)).toHaveLength(1);
  });

  it('recovery pages back to the attempt however many live videos were made since (600 here: it used to stop after 500)', async () => {
    // The scale-out run's second live video: a worker died with its create answered, and by the time
    // the takeover looked for it 775 newer live videos were on the Page; the lookup read 10 pages of 50.
    const h = harness();
    const store = new MemoryOnce();
    const spec = specAt(Date.now() + 5 * HOUR, 'Buried under newer videos');
    await expect(h.adapter.createShow(spec, { once: crashOnce(store, 'live_video'), marker: 'mk-buried' })).rejects.toThrow('worker killed');
    const created = (await effects()).find((e) => e.title === spec.title)?.externalId;
    await seedVideos(600);
    const before = await lastSeq();

    const remote = await h.adapter.createShow(spec, { once: store.once, marker: 'mk-buried' });
    expect(remote.externalId).toBe(created);
    expect(store.calls).toEqual([{ step: 'live_video', ran: false, recovered: true }]);
    const lists = (await requests(before)).filter((r) => r.method === 'GET' && r.path.endsWith('/live_videos'));
    expect(lists).toHaveLength(13); // 600 newer, then ours on the 13th page of 50
    expect((await effects()).filter((e) => e.type === 'show.created' && e.title === spec.title)).toHaveLength(1);
  });

  it('recovery stops at live videos older than the attempt (less a clock margin), then creates', async () => {
    const h = harness();
    await seedVideos(120); // three pages of live videos, all made before the attempt below
    const store = new MemoryOnce();
    // An attempt that started (and made nothing) an hour from now on the simulator's clock: every
    // live video on the Page is older than it by more than the clock margin.
    store.markStarted('live_video', new Date(Date.now() + HOUR).toISOString());
    const before = await lastSeq();
    const spec = specAt(Date.now() + 5 * HOUR, 'Never made before');

    const remote = await h.adapter.createShow(spec, { once: store.once, marker: 'mk-never' });
    expect(store.calls).toEqual([{ step: 'live_video', ran: true, recovered: true }]);
    expect((await requests(before)).map(line)).toEqual([`GET /${GV}/${PAGE_ID}/live_videos 200`, `POST /${GV}/${PAGE_ID}/live_videos 200`, `GET /${GV}/${remote.externalId} 200`]);
  });

  it('simulator: live_videos cursors mark a video, as Graph cursors do: videos made or deleted while paging shift nothing', async () => {
    await seedVideos(6);
    const auth = { authorization: `Bearer ${TOKEN}` };
    type Page = { data: { id: string; title: string }[]; paging?: { cursors?: { after?: string }; next?: string } };
    const list = async (after?: string): Promise<Page> =>
      (await axios.get<Page>(`${sim.url}/facebook/${GV}/${PAGE_ID}/live_videos`, { headers: auth, params: { fields: 'id,title', limit: 3, ...(after ? { after } : {}) } })).data;
    const first = await list();
    expect(first.data.map((v) => v.title)).toEqual(['other 5', 'other 4', 'other 3']);
    await seedVideos(2); // newest first: they go on top
    const deleted = (await effects()).find((e) => e.title === 'other 5')!.externalId;
    await axios.delete(`${sim.url}/facebook/${GV}/${deleted}`, { headers: auth });
    const second = await list(first.paging?.cursors?.after);
    expect(second.data.map((v) => v.title)).toEqual(['other 2', 'other 1', 'other 0']);
    expect(second.paging?.next).toBeUndefined();
  });

  it('a crash after the pin comment was posted: recover() finds the Page comment with the link', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-pin-crash'));
    await h.adapter.startShow(remote, buildOpContext('start'));
    const store = new MemoryOnce();
    await expect(h.adapter.pin(remote, LINEN_PIN, { once: crashOnce(store, 'comment'), marker: 'mk-pc' })).rejects.toThrow('worker killed');
    const again = await h.adapter.pin(remote, LINEN_PIN, { once: store.once, marker: 'mk-pc' });
    expect(again.ref).toMatch(/^\d+_\d+$/);
    expect(store.calls).toEqual([{ step: 'comment', ran: false, recovered: true }]);
    expect((await effects()).filter((e) => e.type === 'message.posted')).toHaveLength(1);
    const list = (await requests()).find((r) => r.method === 'GET' && r.path.endsWith('/comments'));
    expect(list?.query).toEqual({ fields: 'id,message,created_time,from', order: 'reverse_chronological', filter: 'stream', limit: '100' });
  });

  it('a stream URL that expired unused: startShow → ActionRequired (re-link); re-linking reads the new URL and the show goes live', async () => {
    await control('PUT', '/limits', { ingestTtlSec: 1 });
    const h = harness();
    const remote = await h.adapter.createShow(specAt(Date.now()), buildOpContext('mk-expire'));
    await sleep(1_100);
    // Facebook's clock ran out (the simulator's TTL is 1 s); ours still thinks it has 24 h: Facebook refuses.
    const err = await caught(h.adapter.startShow(remote, buildOpContext('start')));
    expect(err).toBeInstanceOf(ActionRequiredError);
    expect((err as ActionRequiredError).reason).toBe('ingest_expired');
    expect((err as ActionRequiredError).message).toMatch(/Facebook has issued a new one.*Re-link the live video/);
    expect((await requests()).slice(-2).map(line)).toEqual([`POST /${GV}/${remote.externalId} 400`, `GET /${GV}/${remote.externalId} 200`]);

    // Past our own 24 h record, startShow does not even try LIVE_NOW.
    const stale: RemoteShow = { ...remote, data: { ...remote.data, ingestExpiresAt: new Date(Date.now() - 1000).toISOString() } };
    const before = await lastSeq();
    await expect(h.adapter.startShow(stale, buildOpContext('start'))).rejects.toBeInstanceOf(ActionRequiredError);
    expect((await requests(before)).map(line)).toEqual([`GET /${GV}/${remote.externalId} 200`]);

    await control('PUT', '/limits', { ingestTtlSec: 86_400 });
    await sleep(1_100); // let the 1 s URL handed out above lapse too, so the re-link gets a 24 h one
    const relinked = await h.adapter.attachShow(remote.externalId);
    expect(relinked.ingest?.streamKey).not.toBe(remote.ingest?.streamKey);
    expect(relinked.data.marker).toBe('mk-expire');
    await h.adapter.startShow(relinked, buildOpContext('start'));
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.started']);
  });

  it('cancelShow deletes a scheduled video (idempotently) and ends one that is streaming, once: a retry leaves the ended video alone', async () => {
    const h = harness();
    const scheduled = await h.adapter.createShow(specAt(Date.now() + 2 * HOUR), buildOpContext('mk-cancel-1'));
    await h.adapter.cancelShow(scheduled, buildOpContext('cancel'));
    await h.adapter.cancelShow(scheduled, buildOpContext('cancel')); // code 100 subcode 33: gone already
    const live = await h.adapter.createShow(specAt(Date.now() + 2 * HOUR, 'Live one'), buildOpContext('mk-cancel-2'));
    await h.adapter.startShow(live, buildOpContext('start'));
    await h.adapter.cancelShow(live, buildOpContext('cancel'));
    // The retry after a crash that followed the end (the mirror was not saved): the video is over and
    // stays, with its recording; nothing deletes it (a DELETE of an ended video succeeds on Facebook).
    const before = await lastSeq();
    await h.adapter.cancelShow(live, buildOpContext('cancel'));
    expect((await requests(before)).filter((r) => r.method !== 'GET')).toEqual([]);
    expect((await h.adapter.attachShow(live.externalId)).externalId).toBe(live.externalId);
    expect((await effects()).map((e) => `${e.type}:${e.externalId === scheduled.externalId ? 'a' : 'b'}`)).toEqual([
      'show.created:a',
      'show.cancelled:a',
      'show.created:b',
      'show.started:b',
      'show.ended:b',
    ]);
  });

  it('Facebook reports no orders: the simulator stores them, the adapter has no order API', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-orders'));
    await control('POST', '/orders', { externalId: remote.externalId, productId: LINEN_PIN.productId, total: { amount: 4900, currency: 'USD' } });
    expect(((await control('GET', '/orders')) as unknown[]).length).toBe(1);
    expect(h.adapter.capabilities).toMatchObject({ orderReport: false, orderWebhooks: false, lifecycle: true, ingest: true, pin: 'comment', unpin: false });
    expect(h.adapter.listOrders).toBeUndefined();
    expect(h.adapter.handleWebhook).toBeUndefined();
  });

  // --- issue 9: platform fidelity --------------------------------------------------------------

  it('a pin comment goes on the live video\'s video object: Graph refuses a comment POSTed to the LiveVideo', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-video-obj'));
    await h.adapter.startShow(remote, buildOpContext('start'));
    // What the old adapter did: POST /{live-video-id}/comments. The LiveVideo comments edge only reads.
    const refused = await axios.post(`${sim.url}/facebook/${GV}/${remote.externalId}/comments`, 'message=hello', {
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
      validateStatus: () => true,
    });
    expect(refused.status).toBe(400);
    expect(refused.data).toMatchObject({ error: { code: 100, error_subcode: 33, message: expect.stringMatching(/^Unsupported post request/) } });

    const before = await lastSeq();
    const pinned = await h.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-pin-vo'));
    expect(pinned.ref).toMatch(new RegExp(`^${remote.data.videoId}_\\d+$`));
    expect((await requests(before)).map(line)).toEqual([`GET /${GV}/debug_token 200`, `POST /${GV}/${remote.data.videoId}/comments 200`]);
    expect((await effects()).filter((e) => e.type === 'message.posted')).toEqual([expect.objectContaining({ externalId: remote.externalId, url: LINEN_PIN.linkUrl })]);

    // A mirror made before the video id was kept reads it once.
    const { videoId: _dropped, ...olderData } = remote.data;
    const older: RemoteShow = { ...remote, data: olderData };
    const b2 = await lastSeq();
    await h.adapter.pin(older, { ...LINEN_PIN, linkUrl: 'http://127.0.0.1:3000/l/Zz9yXw' }, buildOpContext('mk-pin-vo2'));
    expect((await requests(b2)).map(line)).toEqual([`GET /${GV}/${remote.externalId} 200`, `POST /${GV}/${remote.data.videoId}/comments 200`]);
  });

  it('Live Shopping: with live_shopping_manage_video the product is pinned from the Page catalog and unpinned; capabilities per target', async () => {
    const { pageAccessToken: SHOP_TOKEN } = (await control('POST', '/accounts', { pageId: PAGE_ID })) as { pageAccessToken: string };
    await control('PUT', '/permissions', {
      token: SHOP_TOKEN,
      granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
    });
    await control('PUT', '/catalog', { items: [{ retailer_id: 'sku-other', name: 'Other' }, { retailer_id: LINEN_PIN.platformProductId, name: 'Linen shirt' }] });
    const shop = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: SHOP_TOKEN } });
    const plain = harness();
    // The capability is the target's, found from its token: the worker never looks at the platform name.
    await expect(shop.adapter.resolveCapabilities?.()).resolves.toMatchObject({ pin: 'product_pin', unpin: true });
    await expect(plain.adapter.resolveCapabilities?.()).resolves.toMatchObject({ pin: 'comment', unpin: false });
    expect(shop.adapter.capabilities).toMatchObject({ pin: 'comment', unpin: false }); // what every Facebook target can do

    const remote = await shop.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-ls'));
    await shop.adapter.startShow(remote, buildOpContext('start'));
    const pinned = await shop.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-ls-pin'));
    expect(pinned.ref).toMatch(/^lsp:\d+$/);
    await shop.adapter.unpin(remote, LINEN_PIN, pinned.ref, buildOpContext('mk-ls-unpin'));
    await shop.adapter.unpin(remote, LINEN_PIN, pinned.ref, buildOpContext('mk-ls-unpin')); // already down: nothing to do
    // A pin whose outcome was unknown (no ref): the featured item is looked up by the product's SKU and
    // taken down when it is that product's (before, nothing was sent and it stayed featured); another
    // product's featured item is left.
    await shop.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-ls-pin-2'));
    await shop.adapter.unpin(remote, { ...LINEN_PIN, productId: 'prod-other', platformProductId: 'sku-other' }, undefined, buildOpContext('mk-ls-unpin-other'));
    // the linen shirt is still the featured one: only the first unpin took a product down so far
    expect((await effects()).filter((e) => e.type === 'product.unpinned')).toHaveLength(1);
    await shop.adapter.unpin(remote, LINEN_PIN, undefined, buildOpContext('mk-ls-unpin-unknown'));

    // Not in the Page's catalog: a comment with the link instead.
    const other = { ...LINEN_PIN, productId: 'prod-not-in-catalog', platformProductId: 'prod-not-in-catalog', linkUrl: 'http://127.0.0.1:3000/l/NoCat1' };
    const fallback = await shop.adapter.pin(remote, other, buildOpContext('mk-ls-cat'));
    expect(fallback.ref).toMatch(new RegExp(`^${remote.data.videoId}_\\d+$`));

    const fx = (await effects()).filter((e) => e.externalId === remote.externalId).map((e) => `${e.type}:${e.productId ?? e.url ?? ''}`);
    expect(fx).toEqual(['show.created:', 'show.started:', `product.pinned:${LINEN_PIN.platformProductId}`, `product.unpinned:${LINEN_PIN.platformProductId}`, `product.pinned:${LINEN_PIN.platformProductId}`, `product.unpinned:${LINEN_PIN.platformProductId}`, `message.posted:${other.linkUrl}`]);
    // The permissions were read once for all of that.
    expect((await requests()).filter((r) => r.path.endsWith('/debug_token') && r.headers.authorization === `Bearer ${SHOP_TOKEN}`)).toHaveLength(1);

    // The Page admin takes the permission away mid-show: the refused product pin becomes a comment.
    await control('PUT', '/permissions', { token: SHOP_TOKEN, granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement'] });
    const again = await shop.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-ls-revoked'));
    expect(again.ref).toMatch(new RegExp(`^${remote.data.videoId}_\\d+$`));
    expect((await requests()).filter((r) => /\/(pinnable|pinned)_products?$/.test(r.path)).map((r) => `${r.method} ${r.status}`).at(-1)).toBe('GET 403');
    await expect(shop.adapter.resolveCapabilities?.()).resolves.toMatchObject({ pin: 'comment', unpin: false }); // read again
  });

  it("Live Shopping: Facebook refusing a pin's catalog item (code 100 naming product_id: out of stock) is a PinRefusedError naming the product, not a comment; the video takes the next pin", async () => {
    const { pageAccessToken: SHOP_TOKEN } = (await control('POST', '/accounts', { pageId: PAGE_ID })) as { pageAccessToken: string };
    await control('PUT', '/permissions', {
      token: SHOP_TOKEN,
      granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
    });
    await control('PUT', '/catalog', {
      items: [
        { retailer_id: LINEN_PIN.platformProductId, name: 'Linen shirt', availability: 'out of stock' },
        { retailer_id: 'sku-denim', name: 'Denim jacket' },
      ],
    });
    const shop = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: SHOP_TOKEN } });
    const remote = await shop.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-ls-refused'));
    await shop.adapter.startShow(remote, buildOpContext('start'));
    const before = await lastSeq();
    const err = await caught(shop.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-ls-refused-1')));
    expect(err).toBeInstanceOf(PinRefusedError);
    expect((err as PinRefusedError).reason).toBe('code_100');
    // The seller can put the item back in stock during the show: asked again while it is live.
    expect((err as PinRefusedError).mendable).toBe(true);
    expect((err as PinRefusedError).message).toMatch(new RegExp(`^Facebook refused to pin product "${LINEN_PIN.platformProductId}" \\(catalog item \\d+\\) \\(code 100\\): This product is not available to buy`));
    // Refused, not posted as a comment instead: nothing else was sent.
    expect((await requests(before)).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path.split('/').at(-1)} ${r.status}`)).toEqual(['POST pinned_product 400']);
    const next = await shop.adapter.pin(remote, { ...LINEN_PIN, productId: 'prod-denim', platformProductId: 'sku-denim' }, buildOpContext('mk-ls-refused-2'));
    expect(next.ref).toMatch(/^lsp:\d+$/);
    expect((await effects()).filter((e) => e.type === 'product.pinned').map((e) => e.productId)).toEqual(['sku-denim']);
    // A product whose platform id is the catalog item's own id (not its retailer_id) is that item: pinned, not a comment.
    const byItemId = await shop.adapter.pin(remote, { ...LINEN_PIN, productId: 'prod-denim-item', platformProductId: next.ref!.slice('lsp:'.length) }, buildOpContext('mk-ls-refused-3'));
    expect(byItemId.ref).toBe(next.ref);
  });

  it('Live Shopping throttled: a Business Use Case code other than 80001 (80009, Catalog Management, on the catalog edges) is a RateLimitedError for estimated_time_to_regain_access and blocks the limiter, not a failed pin', async () => {
    const { pageAccessToken: SHOP_TOKEN } = (await control('POST', '/accounts', { pageId: PAGE_ID })) as { pageAccessToken: string };
    await control('PUT', '/permissions', {
      token: SHOP_TOKEN,
      granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', 'live_shopping_manage_video'],
    });
    await control('PUT', '/catalog', { items: [{ retailer_id: LINEN_PIN.platformProductId, name: 'Linen shirt' }, { retailer_id: 'sku-denim', name: 'Denim jacket' }] });
    const shop = harness({ credentials: { pageId: PAGE_ID, pageAccessToken: SHOP_TOKEN } });
    const remote = await shop.adapter.createShow(specAt(Date.now() + HOUR), buildOpContext('mk-ls-buc'));
    await shop.adapter.startShow(remote, buildOpContext('start'));
    expect((await shop.adapter.pin(remote, LINEN_PIN, buildOpContext('mk-ls-buc-1'))).ref).toMatch(/^lsp:\d+$/); // the permissions are read (once)

    // One request in the window: the catalog read takes it, the pin itself is throttled.
    await control('PUT', '/limits', { requestsPerWindow: 1, windowMs: 170_000 });
    const before = await lastSeq();
    const t = Date.now();
    const err = await caught(shop.adapter.pin(remote, { ...LINEN_PIN, productId: 'prod-denim', platformProductId: 'sku-denim' }, buildOpContext('mk-ls-buc-2')));
    expect((await requests(before)).map((r) => `${r.method} ${r.path.split('/').at(-1)} ${r.status}`)).toEqual(['GET pinnable_products 200', 'POST pinned_product 400']);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).reason).toBe('code_80009');
    expect((err as RateLimitedError).delayMs).toBe(3 * 60_000); // estimated_time_to_regain_access: 3 (minutes)
    expect(shop.limiter.blocks.map((b) => [b.reason, b.useCase])).toEqual([['facebook throttling (catalog_management)', 'catalog_management']]);
    expect(shop.limiter.blocks[0]?.untilMs).toBeGreaterThanOrEqual(t + 3 * 60_000 - 50);
  });

  it('the Graph version comes from the settings (default current); an expired version is served by the oldest usable one, and the adapter says so', async () => {
    const h = harness();
    const externalId = ((await control('POST', '/shows', { title: 'Made by hand' })) as { externalId: string }).externalId;
    await h.adapter.attachShow(externalId);
    const last = (await requests()).at(-1);
    expect(last?.path).toBe(`/${GV}/${externalId}`);
    expect(GV).toBe('v27.0');

    // 2027-02-01: v21.0 expired on 2027-01-21. Graph does not refuse the call; it answers as v22.0.
    await control('PUT', '/limits', { graphClockMs: Date.parse('2027-02-01T00:00:00Z') });
    const raw = await axios.get(`${sim.url}/facebook/v21.0/${externalId}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(raw.status).toBe(200);
    expect(raw.headers['facebook-api-version']).toBe('v22.0');
    const old = harness({ graphVersion: 'v21.0' });
    await old.adapter.attachShow(externalId);
    await old.adapter.attachShow(externalId);
    const warnings = old.logs.filter((l) => l.includes('"level":40'));
    expect(warnings).toHaveLength(1); // once per adapter
    expect(warnings[0]).toContain('Graph API v21.0 is no longer served: Facebook answered with v22.0');
    await h.adapter.attachShow(externalId);
    expect(h.logs.some((l) => l.includes('no longer served'))).toBe(false);
    // A version that does not exist is no path at all.
    const unknown = await axios.get(`${sim.url}/facebook/v99.0/${externalId}`, { headers: { authorization: `Bearer ${TOKEN}` }, validateStatus: () => true });
    expect(unknown.data).toMatchObject({ error: { code: 2500 } });
  });

  it('Graph times are read strictly: a creation_time or planned_start_time that is not a date-time is no time (Date.parse read "1.5" as 2001-01-05)', async () => {
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      const odd = { creation_time: '1.5', planned_start_time: '1.5', secure_stream_url: 'rtmps://127.0.0.1:1/rtmp/FB-1-0-key' };
      res.end(JSON.stringify(req.method === 'POST' ? { id: '123', secure_stream_url: odd.secure_stream_url } : { id: '123', status: 'UNPUBLISHED', description: 'x\n\nsyndicast:mk-odd', ...odd }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const h = harness({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const t0 = Date.now();
      const created = await h.adapter.createShow(specAt(t0 + 60_000), buildOpContext('mk-odd'));
      // the stream URL's 24 h run from now (no creation time), not from 2001: startShow would refuse it as expired
      expect(Date.parse(created.data.ingestExpiresAt ?? '')).toBeGreaterThanOrEqual(t0 + 24 * HOUR);
      const attached = await h.adapter.attachShow('123');
      expect(attached.data.plannedStart).toBeUndefined(); // was "978652800" (2001-01-05)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("the credential check refuses a pageId that Graph answers for with another id, before asking what the token was granted", async () => {
    // The pageId must be the Page's own id: pin recovery finds the Page's comments by from.id === pageId.
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: '1000000000001' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const h = harness({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, credentials: { pageId: '1000000000002', pageAccessToken: TOKEN } });
      const err = await caught(h.adapter.verifyCredentials!());
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).reason).toBe('page_mismatch');
      expect((err as PermanentError).message).toBe('the Page token answers for Page 1000000000001, not for pageId 1000000000002');
      expect(paths.map((u) => u.split('?')[0])).toEqual([`/${GV}/1000000000002`]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a video the Page put on air between the status read and the DELETE is ended, not left live; a LIVE_NOW Graph refuses for a video already live is success', async () => {
    const calls: string[] = [];
    let status = 'SCHEDULED_UNPUBLISHED';
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const sent = new URLSearchParams(body);
        calls.push([req.method, sent.get('status') ?? (sent.get('end_live_video') ? 'end_live_video' : '')].join(' ').trim());
        res.setHeader('content-type', 'application/json');
        const refuse = (): void => {
          res.statusCode = 400;
          res.end(JSON.stringify({ error: { message: '(#100) the live video cannot be changed now', type: 'OAuthException', code: 100 } }));
        };
        if (req.method === 'GET') {
          res.end(JSON.stringify({ id: '123', status }));
          if (status === 'SCHEDULED_UNPUBLISHED') status = 'LIVE'; // the Page starts it right after the read
        } else if (req.method === 'DELETE' || sent.get('status') === 'LIVE_NOW') refuse();
        else {
          status = 'VOD';
          res.end(JSON.stringify({ success: true }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const h = harness({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const remote: RemoteShow = { externalId: '123', url: undefined, ingest: undefined, data: {} };
      await h.adapter.cancelShow(remote, buildOpContext('cancel'));
      expect(calls).toEqual(['GET', 'DELETE', 'GET', 'POST end_live_video']);
      calls.length = 0;
      status = 'LIVE';
      await h.adapter.startShow(remote, buildOpContext('start'));
      expect(calls).toEqual(['POST LIVE_NOW', 'GET']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a mirror recorded without the stream URL\'s expiry (linked while Facebook gave no URL, or stored before it was kept) goes live: no expiry is not an expired one', async () => {
    const h = harness();
    const remote = await h.adapter.createShow(specAt(Date.now()), buildOpContext('mk-no-expiry'));
    const { ingestExpiresAt: _dropped, ...data } = remote.data;
    await h.adapter.startShow({ ...remote, data }, buildOpContext('start'));
    expect((await requests()).filter((r) => r.method === 'POST').map((r) => form(r).status)).toEqual(['UNPUBLISHED', 'LIVE_NOW']);
    expect((await effects()).map((e) => e.type)).toEqual(['show.created', 'show.started']);
  });

  it('a response that does not match the schema → PermanentError("malformed response")', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'LIVE' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const h = harness({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const err = await caught(h.adapter.attachShow('123'));
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).message).toMatch(/^malformed response from Facebook GET \/123: id/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
