/**
 * Pre-show readiness (issue 11 item 6) against the simulators: a show starting within 30 minutes has
 * each mirror checked — a YouTube mirror whose remote show exists (token refreshed now) is ready with
 * its ingest; a Whatnot mirror nobody linked is blocked and says exactly what to do, and becomes ready
 * once linked; a YouTube target whose authorization the platform refuses is blocked with the fix. The
 * result is on the show view and reaches the partner as `mirror.updated` with `readiness`. A show
 * further out is not checked. Real redis-server, real HTTP, real simulators.
 */
import { createServer, type Server } from 'node:http';
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';
import { startSim, type TestSim } from '../helpers/sim.js';
import { CREDENTIALS } from '../helpers/platforms.js';
import type { Readiness } from '../../src/mirror/readiness.service.js';
import { RedisRateLimiter } from '../../src/store/rate-limiter.js';
import { limiterId } from '../../src/targets/target.registry.js';

let svc: TestService;
let sim: TestSim;
let receiver: Server;
const received: { type: string; data: { showId: string; targetId: string; readiness?: Readiness } }[] = [];

beforeAll(async () => {
  sim = await startSim();
  await sim.control('PUT', '/_sim/youtube/limits', { streamActivationMs: 0 });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as (typeof received)[number]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  svc = await startService({ workers: true });
}, 60_000);
afterAll(async () => {
  await svc?.close();
  await sim?.close();
  await new Promise((r) => receiver?.close(r));
});

type View = { mirrors: { targetId: string; readiness?: Readiness }[] };
const check = (r: Readiness, name: string) => r.checks.find((c) => c.name === name)!;

test('ready, blocked with the action, and ready after the fix; on the show view and as mirror.updated', async () => {
  const secret = await createPartner(svc, 'rd');
  const port = (receiver.address() as { port: number }).port;
  expect((await svc.api('/v1/partners/rd/endpoints', { json: { url: `http://127.0.0.1:${port}/hooks`, events: ['mirror.updated'] } })).status).toBe(201);
  for (const [id, platform] of [['rd-yt', 'youtube'], ['rd-wn', 'whatnot']] as const) {
    expect((await svc.api('/v1/partners/rd/targets', { json: { id, platform, name: id, credentials: CREDENTIALS[platform], baseUrl: sim.base(platform), commissionRateBps: 100 } })).status).toBe(201);
  }
  const soon = new Date(Date.now() + 20 * 60_000).toISOString();
  const later = new Date(Date.now() + 3 * 3_600_000).toISOString();
  expect((await sendEvent(svc, 'rd', secret, showEvent('show.scheduled', sampleShow('soon', { scheduledAt: soon }), new Date().toISOString()))).status).toBe(202);
  expect((await sendEvent(svc, 'rd', secret, showEvent('show.scheduled', sampleShow('later', { scheduledAt: later }), new Date().toISOString()))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('rd', 'soon', 'rd-yt'))?.state === 'ready' && (await svc.rt.shows.getMirror('rd', 'soon', 'rd-wn'))?.state === 'action_required', 60_000);
  await waitFor(async () => (await svc.rt.shows.getMirror('rd', 'later', 'rd-yt'))?.state === 'ready', 60_000);

  const refreshesBefore = ((await sim.control('GET', '/_sim/youtube/requests')) as { path?: string; url?: string }[]).filter((q) => /token/.test(q.path ?? q.url ?? '')).length;
  expect(await svc.rt.readiness.sweep()).toEqual({ checked: 2 }); // 'later' starts in 3 h: not checked yet
  const view = (await (await svc.api('/v1/partners/rd/shows/soon')).json()) as View;
  const yt = view.mirrors.find((m) => m.targetId === 'rd-yt')!.readiness!;
  const wn = view.mirrors.find((m) => m.targetId === 'rd-wn')!.readiness!;
  expect(yt.state).toBe('ready');
  expect(yt.checks.map((c) => [c.name, c.ok])).toEqual([['operator_link', true], ['token', true], ['remote_show', true], ['ingest', true], ['quota', true]]);
  expect(check(yt, 'ingest').detail).toMatch(/rtmp/);
  // The token was refreshed by the check (not left for go-live).
  const refreshesAfter = ((await sim.control('GET', '/_sim/youtube/requests')) as { path?: string; url?: string }[]).filter((q) => /token/.test(q.path ?? q.url ?? '')).length;
  expect(refreshesAfter).toBeGreaterThan(refreshesBefore);
  expect(wn.state).toBe('blocked');
  expect(check(wn, 'operator_link')).toMatchObject({ ok: false, action: expect.stringContaining('PUT /v1/partners/rd/shows/soon/mirrors/rd-wn {"externalId"') });
  const later2 = (await (await svc.api('/v1/partners/rd/shows/later')).json()) as View;
  expect(later2.mirrors.every((m) => m.readiness === undefined)).toBe(true);
  await waitFor(async () => received.some((m) => m.type === 'mirror.updated' && m.data.targetId === 'rd-wn' && m.data.readiness?.state === 'blocked'), 30_000);
  const sent = received.find((m) => m.data.targetId === 'rd-wn' && m.data.readiness)!;
  expect(sent.data).toMatchObject({ showId: 'soon', state: 'action_required', readiness: { state: 'blocked', checks: expect.arrayContaining([expect.objectContaining({ name: 'operator_link', ok: false })]) } });

  // The operator does what it says; the next check is ready, and the partner hears that too.
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'by hand' })) as { externalId: string };
  expect((await svc.api('/v1/partners/rd/shows/soon/mirrors/rd-wn', { method: 'PUT', json: { externalId } })).status).toBe(200);
  await waitFor(async () => (await svc.rt.shows.getMirror('rd', 'soon', 'rd-wn'))?.state === 'ready', 30_000);
  await svc.rt.readiness.sweep();
  const after = (await (await svc.api('/v1/partners/rd/shows/soon')).json()) as View;
  expect(after.mirrors.find((m) => m.targetId === 'rd-wn')!.readiness).toMatchObject({ state: 'ready' });
  await waitFor(async () => received.some((m) => m.data.targetId === 'rd-wn' && m.data.readiness?.state === 'ready'), 30_000);
  // An unchanged result is not sent again.
  const count = received.filter((m) => m.data.readiness).length;
  await svc.rt.readiness.sweep();
  await new Promise((r) => setTimeout(r, 500));
  expect(received.filter((m) => m.data.readiness).length).toBe(count);
}, 180_000);

test('a refused authorization blocks the mirror with the fix to apply', async () => {
  const secret = await createPartner(svc, 'rd2');
  expect((await svc.api('/v1/partners/rd2/targets', { json: { id: 'rd2-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 100 } })).status).toBe(201);
  const soon = new Date(Date.now() + 10 * 60_000).toISOString();
  expect((await sendEvent(svc, 'rd2', secret, showEvent('show.scheduled', sampleShow('s', { scheduledAt: soon }), new Date().toISOString()))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('rd2', 's', 'rd2-yt'))?.state === 'ready', 60_000);
  // Every token refresh now fails the way Google answers a revoked grant.
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 1, kinds: ['token_expired'], seed: 1 });
  const desired = (await svc.rt.shows.desired('rd2', 's'))!;
  const [r] = await svc.rt.readiness.checkShow('rd2', desired);
  await sim.control('PUT', '/_sim/youtube/faults', { rate: 0, kinds: [] });
  expect(r!.state).not.toBe('ready');
  const token = check(r!, 'token');
  expect(token.ok).toBe(false);
  expect(token.action).toMatch(/PATCH \/v1\/partners\/rd2\/targets\/rd2-yt|checked again/);
});

test('a show already live is not checked: readiness is a pre-show check (each check refreshes the token and calls the platform)', async () => {
  const secret = await createPartner(svc, 'rd3');
  expect((await svc.api('/v1/partners/rd3/targets', { json: { id: 'rd3-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 100 } })).status).toBe(201);
  // Started five minutes after its scheduled time, which is well inside the readiness window.
  const started = new Date(Date.now() - 5 * 60_000).toISOString();
  expect((await sendEvent(svc, 'rd3', secret, showEvent('show.live', sampleShow('on-air', { scheduledAt: started, state: 'live' }), new Date().toISOString()))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('rd3', 'on-air', 'rd3-yt'))?.remote !== undefined, 60_000);
  await svc.rt.readiness.sweep();
  // Nothing stored (the show view shows readiness for scheduled shows only; the partner was not told either).
  expect(await svc.rt.readiness.get('rd3', 'on-air', ['rd3-yt'])).toEqual([null]);
}, 120_000);

test("a block of one of the account's use cases (a Facebook Business Use Case throttle) is the quota check's too", async () => {
  const secret = await createPartner(svc, 'rdq');
  expect((await svc.api('/v1/partners/rdq/targets', { json: { id: 'rdq-yt', platform: 'youtube', name: 'yt', credentials: CREDENTIALS.youtube, baseUrl: sim.base('youtube'), commissionRateBps: 100 } })).status).toBe(201);
  const soon = new Date(Date.now() + 10 * 60_000).toISOString();
  expect((await sendEvent(svc, 'rdq', secret, showEvent('show.scheduled', sampleShow('q', { scheduledAt: soon }), new Date().toISOString()))).status).toBe(202);
  await waitFor(async () => (await svc.rt.shows.getMirror('rdq', 'q', 'rdq-yt'))?.state === 'ready', 60_000);
  // A use-case block that outlasts the start, as Facebook's 80001 leaves one (src/store/rate-limiter.ts).
  const limiter = new RedisRateLimiter(svc.rt.redis, svc.rt.keys, limiterId('youtube', CREDENTIALS.youtube, 'rdq-yt'), undefined);
  // A use case the show never calls (ads_management, a day) holds none of its calls: still ready.
  await limiter.blockUntil(Date.now() + 24 * 3_600_000, 'facebook throttling (ads_management)', 'ads_management');
  const [unheld] = await svc.rt.readiness.checkShow('rdq', (await svc.rt.shows.desired('rdq', 'q'))!);
  expect(check(unheld!, 'quota').ok).toBe(true);
  await limiter.blockUntil(Date.now() + 2 * 3_600_000, 'facebook throttling (pages)', 'pages');
  const [r] = await svc.rt.readiness.checkShow('rdq', (await svc.rt.shows.desired('rdq', 'q'))!);
  expect(check(r!, 'quota')).toMatchObject({ ok: false, action: expect.stringContaining('The block outlasts the start') });
  expect(r!.state).toBe('blocked');
});
