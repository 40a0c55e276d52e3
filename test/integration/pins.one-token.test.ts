/**
 * Pins on an account whose limiter lets each sync run send one request (a target's `rateLimit`
 * {requests: 1}): a run refused part-way resumes where it was refused, as YouTube's update and start
 * do (youtube.start-one-token.test.ts). A Facebook Live Shopping pin (the catalog read, then the pin)
 * and a Bambuser pin (the show's products read, the add, then the highlight) read again in every run
 * spent the run's one token on the read and were refused the write, for ever: the product was never
 * pinned. So was a Bambuser unpin without a ref (the products read, the highlights read, then the
 * delete). The reads are now recorded steps of the pin's (the unpin's) scope; and a write's step done
 * already takes no token (a Facebook create's live video, a Bambuser add: their slot was taken before
 * the step, and what followed them was refused for ever). A product id so recorded may be stale (the
 * seller removed the product before the highlight): Bambuser's refusal of it is mendable when the
 * products read again show it gone, so the pin is asked again as a new episode that reads again, not
 * failed for good; still attached, the refusal is final (made mendable by the id's age alone, every
 * highlight refusal at one request per window was asked again for the whole show). A write whose outcome
 * is unknown (a timeout, a 5xx) is looked for on the token its step's start took, the run's one request
 * (the look took one of its own, refused every run, and the write never completed). Real redis-server, the
 * real SyncService and adapters, the simulators over HTTP. The runs are played here, as BullMQ would run
 * the delayed job; the window's passing between two runs is played by emptying the limiter's keys.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimRequestRecord } from '../../src/simulators/sim.platform.js';
import { limiterId } from '../../src/targets/target.registry.js';
import { oneTokenRuns as runWithOneToken } from '../helpers/one-token.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { testTopology } from '../helpers/redis-cluster.js';

let svc: TestService;
let sim: TestSim;

/** An attempt's request may take effect for 2 × PLATFORM_TIMEOUT_MS + PLATFORM_SETTLE_MS: 2 s here. */
const SETTLED_MS = 2_000;

beforeAll(async () => {
  sim = await startSim();
  // Bambuser's own window (5 per 10 s per key) is not what is tested: our limiter's is.
  await sim.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null });
  // No workers: the test plays the runs.
  // A mendable refusal is asked again after 100 ms (its least), not 30 s.
  svc = await startService({ env: { PLATFORM_TIMEOUT_MS: '1000', PLATFORM_SETTLE_MS: '0', PIN_REFUSED_RETRY_BASE_MS: '100' } });
});
afterAll(async () => {
  await svc?.close();
  await sim?.close();
});

type Job = { partnerId: string; showId: string; targetId: string };
const ONE = { requests: 1, windowMs: 60_000 };
/** A step's recovery look on the token its start took: one Redis only (on a Cluster the look takes its own: 2 per window, docs/operations.md). */
const lookOnStartToken = testTopology() === 'single' ? test : test.skip;
const SCHEDULED = { scheduledAt: new Date(Date.now() + 3 * 3600_000).toISOString() };

/** Up to `max` runs of the job, each with one token, until one is done; the delays' reasons (test/helpers/one-token.ts). */
const oneTokenRuns = (job: Job, name: string, max: number): Promise<string[]> => runWithOneToken(svc, job, name, max, '*');

const requests = async (platform: string): Promise<SimRequestRecord[]> => (await sim.control('GET', `/_sim/${platform}/requests`)) as SimRequestRecord[];

async function event(job: Job, secret: string, type: string, fields: Record<string, unknown>, at: string): Promise<void> {
  expect((await sendEvent(svc, job.partnerId, secret, showEvent(type, sampleShow(job.showId, { ...SCHEDULED, ...fields }), at))).status).toBe(202);
}

/**
 * Partner `partnerId`'s show `showId` made on its Bambuser target `targetId` (an API key of its own, one
 * request per window; `apiKey` if given), then live with p1 pinned (no run of that yet); the job, the
 * partner's secret and the Bambuser show's id.
 */
async function liveBambuserShow(partnerId: string, targetId: string, showId: string, apiKey = `bmb_one_token_${targetId}`): Promise<{ job: Job; secret: string; id: string }> {
  const secret = await createPartner(svc, partnerId);
  const r = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, {
    json: { id: targetId, platform: 'bambuser', name: 'Bambuser', credentials: { apiKey }, baseUrl: sim.base('bambuser'), commissionRateBps: 500, rateLimit: ONE },
  });
  expect(r.status).toBe(201);
  const job = { partnerId, showId, targetId };
  await event(job, secret, 'show.scheduled', {}, '2026-11-24T17:00:00Z');
  await oneTokenRuns(job, 'made', 4);
  const id = (await svc.rt.shows.getMirror(partnerId, showId, targetId))!.remote!.externalId;
  await event(job, secret, 'show.live', { state: 'live', pinnedProductIds: ['p1'] }, '2026-11-24T18:00:00Z');
  return { job, secret, id };
}

/** One run whose one request reaches Bambuser while its answer never comes (the socket reset after 300 ms). */
async function unansweredRun(job: Job, name: string): Promise<void> {
  await sim.control('PUT', '/_sim/bambuser/faults', { rate: 1, kinds: ['timeout'], hangMs: 300 });
  try {
    await oneTokenRuns(job, name, 1);
  } finally {
    await sim.control('PUT', '/_sim/bambuser/faults', { rate: 0, kinds: [] });
  }
}

/** The product effects (pinned, unpinned) `platform` recorded on show `id`. */
async function productEffects(platform: string, id: string): Promise<string[]> {
  return (await sim.effects(platform)).filter((e) => e.externalId === id && e.type.startsWith('product.')).map((e) => `${e.type}:${e.productId}`);
}

async function setRateLimit(job: Job, rateLimit: { requests: number; windowMs: number }): Promise<void> {
  expect((await svc.api(`/v1/partners/${job.partnerId}/targets/${job.targetId}?verify=false`, { method: 'PATCH', json: { rateLimit } })).status).toBe(200);
}

/** Up to `max` one-token runs of the Bambuser pin job: the delays' reasons, pin p1's state, and show `id`'s product effects after them. */
async function pinRuns(job: Job, id: string, name: string, max: number): Promise<{ reasons: string[]; pin: string | undefined; effects: string[] }> {
  const reasons = await oneTokenRuns(job, name, max);
  const m = await svc.rt.shows.getMirror(job.partnerId, job.showId, job.targetId);
  return { reasons, pin: m?.pins['p1']?.state, effects: await productEffects('bambuser', id) };
}

/** addMet5xx's add made after all, once (the 5xx, then the add), and the pin made. */
const ADDED_ONCE = { pin: 'pinned', effects: ['product.pinned:p1'], adds: [500, 201] };

/**
 * A Bambuser add of show `id` that met a 5xx (not made), after the products read: the adds' statuses
 * and the products reads so far, as functions, and `after` (pinRuns, with the adds and the products
 * reads since `looksBefore`).
 */
async function addMet5xx(
  job: Job,
  id: string,
): Promise<{ adds: () => Promise<number[]>; looks: () => Promise<number>; after: (name: string, max: number, looksBefore: number) => Promise<Record<string, unknown>> }> {
  expect(await oneTokenRuns(job, 'read', 1)).toEqual(['rate_limited']);
  await sim.control('PUT', '/_sim/bambuser/faults', { rate: 1, kinds: ['500'] });
  try {
    await oneTokenRuns(job, 'fault', 1);
  } finally {
    await sim.control('PUT', '/_sim/bambuser/faults', { rate: 0, kinds: [] });
  }
  const adds = async () => (await requests('bambuser')).filter((q) => q.method === 'POST' && q.path.endsWith(`/shows/${id}/products`)).map((q) => q.status);
  const looks = async () => (await requests('bambuser')).filter((q) => q.method === 'GET' && q.path.endsWith(`/shows/${id}/products`)).length;
  expect(await adds()).toEqual([500]);
  const after = async (name: string, max: number, looksBefore: number) => ({ ...(await pinRuns(job, id, name, max)), adds: await adds(), looks: (await looks()) - looksBefore });
  return { adds, looks, after };
}

/**
 * Partner `partnerId`'s Facebook target `targetId` (a Page of its own whose token has the usual
 * permissions and `granted`, one request per window) and the show `showId` scheduled on it (no run
 * yet): the job, the partner's secret and the Page's id.
 */
async function scheduledFacebookShow(partnerId: string, targetId: string, showId: string, granted: string[]): Promise<{ job: Job; secret: string; pageId: string }> {
  const secret = await createPartner(svc, partnerId);
  const { pageId, pageAccessToken: token } = (await sim.control('POST', '/_sim/facebook/accounts', {})) as { pageId: string; pageAccessToken: string };
  await sim.control('PUT', '/_sim/facebook/permissions', { token, granted: ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts', 'pages_manage_engagement', ...granted] });
  const r = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, {
    json: { id: targetId, platform: 'facebook', name: 'Facebook Page', credentials: { pageId, pageAccessToken: token }, baseUrl: sim.base('facebook'), commissionRateBps: 500, rateLimit: ONE },
  });
  expect(r.status).toBe(201);
  const job = { partnerId, showId, targetId };
  await event(job, secret, 'show.scheduled', {}, '2026-11-24T17:00:00Z');
  return { job, secret, pageId };
}

/**
 * Facebook's writes take the same path through the intent store as Bambuser's (a step with a look, its
 * start taking the write's token): a create whose outcome is unknown is looked for on the run's one
 * token, found, and not made twice (no Facebook case of it before).
 */
lookOnStartToken('one request per run: a Facebook live video create whose outcome is unknown is looked for on the run\'s one token, found, not made twice', async () => {
  const { job, pageId } = await scheduledFacebookShow('fbadd', 'fb2', 'f2', []);
  // The create reaches Facebook, its answer never comes (the socket reset after 300 ms).
  await sim.control('PUT', '/_sim/facebook/faults', { rate: 1, kinds: ['timeout'], hangMs: 300 });
  try {
    await oneTokenRuns(job, 'lost', 1);
  } finally {
    await sim.control('PUT', '/_sim/facebook/faults', { rate: 0, kinds: [] });
  }
  const creates = async () => (await requests('facebook')).filter((q) => q.method === 'POST' && q.path.endsWith(`/${pageId}/live_videos`)).length;
  expect(await creates()).toBe(1);
  // Once that attempt has settled: the look (the run's request, on the token the create's start took)
  // finds the live video; its read is refused, and goes with the next run.
  await sleep(SETTLED_MS + 200);
  const reasons = await oneTokenRuns(job, 'found', 4);
  expect({ state: (await svc.rt.shows.getMirror('fbadd', 'f2', 'fb2'))?.state, reasons, creates: await creates() }).toEqual({ state: 'ready', reasons: ['rate_limited'], creates: 1 });
}, 30_000);

test('one request per run: a Facebook live video is made and a Live Shopping pin on it (the catalog read is a recorded step, not sent again by the run after a refused pin)', async () => {
  await sim.control('PUT', '/_sim/facebook/catalog', { items: [{ retailer_id: 'p1', name: 'Lip Oil' }] });
  const { job, secret } = await scheduledFacebookShow('fbone', 'fb1', 'f1', ['live_shopping_manage_video']);
  // The live video's create, then its read, one run each (the create's step, done, takes no token: its
  // slot was taken before it, and the read was refused for ever).
  const made = await oneTokenRuns(job, 'made', 6);
  expect({ state: (await svc.rt.shows.getMirror('fbone', 'f1', 'fb1'))?.state, made }).toEqual({ state: 'ready', made: ['rate_limited'] });
  const id = (await svc.rt.shows.getMirror('fbone', 'f1', 'fb1'))!.remote!.externalId;
  // Live with p1 pinned: LIVE_NOW, the token's permissions (what a pin is here), the catalog read, then
  // the pin, one run each.
  await event(job, secret, 'show.live', { state: 'live', pinnedProductIds: ['p1'] }, '2026-11-24T18:00:00Z');
  const reasons = await oneTokenRuns(job, 'live', 8);
  const m = await svc.rt.shows.getMirror('fbone', 'f1', 'fb1');
  expect({ state: m?.state, pin: m?.pins['p1']?.state, reasons }).toEqual({ state: 'live', pin: 'pinned', reasons: Array(3).fill('rate_limited') });
  expect(await productEffects('facebook', id)).toEqual(['product.pinned:p1']);
  const reads = (await requests('facebook')).filter((q) => q.path.endsWith(`/${id}/pinnable_products`));
  expect(reads).toHaveLength(1);
}, 30_000);

test('one request per run: a Bambuser pin is made (the show\'s products read is a recorded step, not sent again by the runs after a refused add)', async () => {
  const { job, id } = await liveBambuserShow('bmone', 'bm1', 'b1');
  // Live with p1 pinned: the products read, the add, then the highlight, one run each.
  const reasons = await oneTokenRuns(job, 'live', 8);
  const m = await svc.rt.shows.getMirror('bmone', 'b1', 'bm1');
  expect({ state: m?.state, pin: m?.pins['p1']?.state, reasons }).toEqual({ state: 'live', pin: 'pinned', reasons: ['rate_limited', 'rate_limited'] });
  expect(await productEffects('bambuser', id)).toEqual(['product.pinned:p1']);
}, 30_000);

lookOnStartToken('one request per run: a Bambuser add whose outcome is unknown after a products read of an earlier run is looked for on the run\'s one token, found, not made twice', async () => {
  const { job, id } = await liveBambuserShow('bmadd', 'bm2', 'b2');
  // The products read (none attached); the add refused.
  expect(await oneTokenRuns(job, 'read', 1)).toEqual(['rate_limited']);
  // The add reaches Bambuser, its answer never comes.
  await unansweredRun(job, 'lost');
  const adds = async () => (await requests('bambuser')).filter((q) => q.method === 'POST' && q.path.endsWith(`/shows/${id}/products`)).length;
  expect(await adds()).toBe(1);
  // Once that attempt has settled, the look for it is the run's request (on the token the add's start
  // took): it finds the add, the highlight is refused; the next run's highlight. Each look took a token
  // of its own, and at one request per window it was refused every run (the start had the window's one).
  await sleep(SETTLED_MS + 200);
  expect({ ...(await pinRuns(job, id, 'found', 3)), adds: await adds() }).toEqual({ reasons: ['rate_limited'], pin: 'pinned', effects: ['product.pinned:p1'], adds: 1 });
}, 30_000);

/**
 * From the review of the one-token runs: an add whose outcome is unknown (a 5xx) took a look for it
 * and the add's own token in one run. The look is the run's request now; the look finding nothing
 * (trusted: the attempt settled), the add's token is refused and the step forgotten, so the next run
 * sends the add on its own token without looking again; then the highlight.
 */
lookOnStartToken('one request per run: a Bambuser add that met a 5xx (not made) is looked for on one run\'s token, sent on the next\'s, once', async () => {
  const { job, id } = await liveBambuserShow('bm5xx', 'bm6', 'b6');
  const { looks, after } = await addMet5xx(job, id);
  await sleep(SETTLED_MS + 200);
  const looksBefore = await looks();
  // The look (nothing), the add, then the highlight: one run each.
  expect(await after('after', 4, looksBefore)).toEqual({ reasons: ['rate_limited', 'rate_limited'], looks: 1, ...ADDED_ONCE });
}, 30_000);

/**
 * With two requests a window the look and the add fit in one run, unless other runs on the account
 * take the spare token: an add refused its token after a trusted look that found nothing is forgotten
 * at any limit, and the next run sends it without looking again, on the evidence of that look (put
 * back, as at two or more before the review, the next run looked again first, and was refused the add
 * again whenever the spare token went to another run).
 */
lookOnStartToken('two requests per window, one taken by another run: a Bambuser add that met a 5xx, looked for and refused its token, is sent once by the next run without a second look', async () => {
  const { job, id } = await liveBambuserShow('bm5two', 'bm7', 'b7');
  const { adds, looks, after } = await addMet5xx(job, id);
  await setRateLimit(job, { requests: 2, windowMs: 60_000 });
  await sleep(SETTLED_MS + 200);
  const win = svc.rt.keys.targetLimit(limiterId('bambuser', { apiKey: 'bmb_one_token_bm7' }, 'bm7'), 'window');
  await svc.rt.redis.del(win);
  const [sec] = await svc.rt.redis.time();
  await svc.rt.redis.zadd(win, Number(sec) * 1000, 'other-0:1');
  const looksBefore = await looks();
  expect(await svc.rt.syncService.sync(job, { token: 'two-a' })).toMatchObject({ kind: 'delay', reason: 'rate_limited' });
  expect({ adds: await adds(), looks: (await looks()) - looksBefore }).toEqual({ adds: [500], looks: 1 });
  // The next run (the window free): the add and the highlight, no look again.
  expect(await after('two-b', 3, looksBefore)).toEqual({ reasons: [], looks: 1, ...ADDED_ONCE });
}, 30_000);

test('one request per run: a Bambuser pin taken back without a ref (its highlight\'s outcome unknown) is unpinned (the two reads are recorded steps)', async () => {
  const { job, secret, id } = await liveBambuserShow('bmun', 'bm3', 'b3');
  // The pin: the products read, the add, then the highlight, which reaches Bambuser while its answer
  // never comes: the pin's outcome is unknown (no ref).
  expect(await oneTokenRuns(job, 'pin', 2)).toEqual(['rate_limited', 'rate_limited']);
  await unansweredRun(job, 'lost');
  expect(await productEffects('bambuser', id)).toEqual(['product.pinned:p1']);
  const pin = (await svc.rt.shows.getMirror('bmun', 'b3', 'bm3'))?.pins['p1'];
  expect({ state: pin?.state, tried: pin?.tried, ref: pin?.ref }).toEqual({ state: 'pending', tried: true, ref: undefined });
  // Taken back once that attempt has settled: the products read, the highlights read, then the delete, one run each.
  await event(job, secret, 'show.live', { state: 'live', pinnedProductIds: [] }, '2026-11-24T18:01:00Z');
  await sleep(SETTLED_MS + 200);
  const reasons = await oneTokenRuns(job, 'unpin', 6);
  const m = await svc.rt.shows.getMirror('bmun', 'b3', 'bm3');
  expect({ pin: m?.pins['p1']?.state, reasons, effects: await productEffects('bambuser', id) }).toEqual({ pin: 'unpinned', reasons: ['rate_limited', 'rate_limited'], effects: ['product.pinned:p1', 'product.unpinned:p1'] });
}, 30_000);

test('one request per run: a Bambuser pin whose products read an earlier run recorded, the product removed by the seller since, is asked again and pinned (the refusal is mendable, not a failure for good)', async () => {
  const { job, secret, id } = await liveBambuserShow('bmgone', 'bm4', 'b4');
  expect(await oneTokenRuns(job, 'pin', 4)).toEqual(['rate_limited', 'rate_limited']);
  // Taken back (its ref known: the delete alone), then pinned again: the products read finds the
  // product attached by the first pin, and the highlight is refused by the limiter.
  await event(job, secret, 'show.live', { state: 'live', pinnedProductIds: [] }, '2026-11-24T18:01:00Z');
  await oneTokenRuns(job, 'unpin', 2);
  expect((await svc.rt.shows.getMirror('bmgone', 'b4', 'bm4'))?.pins['p1']?.state).toBe('unpinned');
  await event(job, secret, 'show.live', { state: 'live', pinnedProductIds: ['p1'] }, '2026-11-24T18:02:00Z');
  expect(await oneTokenRuns(job, 'read', 1)).toEqual(['rate_limited']);
  // The seller removes that product from the show meanwhile.
  const bmb = async (method: string, path: string): Promise<Response> => fetch(`${sim.base('bambuser')}/v1/shows/${id}${path}`, { method, headers: { authorization: 'Token bmb_one_token_bm4' } });
  const attached = ((await (await bmb('GET', '/products')).json()) as { results: { id: string }[] }).results;
  expect(attached).toHaveLength(1);
  expect((await bmb('DELETE', `/products/${attached[0]!.id}`)).status).toBeLessThan(300);
  // The highlight names the product read before: Bambuser refuses it. The products read again (in the
  // run after: the highlight took this one's token) show it gone: asked again once its wait is over, as
  // a new episode that reads the products again: added again, then highlighted.
  expect(await oneTokenRuns(job, 'refused', 2)).toEqual(['rate_limited']);
  const refused = (await svc.rt.shows.getMirror('bmgone', 'b4', 'bm4'))?.pins['p1'];
  expect({ state: refused?.state, retried: refused?.refused?.retry !== undefined }).toEqual({ state: 'failed', retried: true });
  await sleep(300);
  await oneTokenRuns(job, 'again', 5);
  expect((await svc.rt.shows.getMirror('bmgone', 'b4', 'bm4'))?.pins['p1']?.state).toBe('pinned');
  expect((await productEffects('bambuser', id)).at(-1)).toBe('product.pinned:p1');
}, 30_000);

test('one request per run: a Bambuser highlight refused for another reason (the product still attached: the products read again) fails for good, not asked again', async () => {
  // An organisation without the highlights beta: Bambuser refuses every highlight (400).
  const { apiKey } = (await sim.control('POST', '/_sim/bambuser/accounts', { highlights: false })) as { apiKey: string };
  const { job, id } = await liveBambuserShow('bmoff', 'bm5', 'b5', apiKey);
  // The products read, the add, the highlight (refused: its product id read and made by earlier runs),
  // then the products read again, one run each: the product is attached, the refusal is final.
  const reasons = await oneTokenRuns(job, 'pin', 8);
  const pin = (await svc.rt.shows.getMirror('bmoff', 'b5', 'bm5'))?.pins['p1'];
  expect({ state: pin?.state, retry: pin?.refused?.retry, reasons }).toEqual({ state: 'failed', retry: undefined, reasons: Array(3).fill('rate_limited') });
  expect(pin?.refused?.error).toMatch(/HTTP 400\): product highlights \(beta\) are not enabled/);
  // Each once: the highlight is not sent again by the run that reads the products again.
  const calls = (await requests('bambuser')).filter((q) => q.path.includes(`/shows/${id}/`)).map((q) => `${q.method} ${q.path.slice(q.path.indexOf(id) + id.length)} ${q.status}`);
  expect(calls).toEqual(['GET /products 200', 'POST /products 201', 'POST /highlights 400', 'GET /products 200']);
  expect(await productEffects('bambuser', id)).toEqual([]);
}, 30_000);
