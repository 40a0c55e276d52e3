/**
 * The ops console's APIs without a browser: which shows the board holds, the live stream (a change
 * arrives as a new `board` event; shutdown ends open streams), the sign-in cookie that opens
 * /admin/queues (and only for admin sessions, until sign-out), and the dashboard page without
 * anything from outside. Real Redis, real HTTP.
 */
import { newMirror } from '../../src/domain/mirror.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: string;
const HOUR = 3_600_000;
const iso = (ms: number): string => new Date(ms).toISOString();

interface Board {
  me: { role: string };
  partners: { id: string }[];
  leftOff: number;
  shows: { showId: string; state: string; mirrors: { targetId: string; state: string; since: string | null; lastError: string | null; needsAction: boolean; pins: { mirrored: number; wanted: number } }[] }[];
}

beforeAll(async () => {
  svc = await startService();
  secret = await createPartner(svc, 'p1', { name: 'Partner One' });
  const r = await svc.api('/v1/partners/p1/targets?verify=false', { json: { id: 'wn', platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: 'a', webhookSecret: 'whsec_' + Buffer.from('x'.repeat(24)).toString('base64') }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 500 } });
  expect(r.status).toBe(201);
});

afterAll(async () => {
  await svc?.close();
});

async function board(key = ADMIN_KEY): Promise<Board> {
  const r = await svc.api('/v1/ops/board', { key });
  expect(r.status).toBe(200);
  return (await r.json()) as Board;
}

test("the board holds shows scheduled within a day of now and live shows, not last week's ended ones", async () => {
  const now = Date.now();
  const send = async (show: Record<string, unknown>, type = 'show.scheduled'): Promise<void> => {
    expect((await sendEvent(svc, 'p1', secret, showEvent(type, show, iso(now - 60_000)))).status).toBe(202);
  };
  await send(sampleShow('today', { scheduledAt: iso(now + 2 * HOUR), pinnedProductIds: ['p1'] }));
  await send(sampleShow('old-live', { scheduledAt: iso(now - 3 * 24 * HOUR), state: 'live' }), 'show.live');
  await send(sampleShow('old-ended', { scheduledAt: iso(now - 3 * 24 * HOUR), state: 'ended' }), 'show.ended');
  await send(sampleShow('next-week', { scheduledAt: iso(now + 7 * 24 * HOUR) }));
  const b = await board();
  expect(b.shows.map((s) => s.showId).sort()).toEqual(['old-live', 'today']);
  const today = b.shows.find((s) => s.showId === 'today')!;
  expect(today.mirrors).toEqual([expect.objectContaining({ targetId: 'wn', state: 'pending', pins: { mirrored: 0, wanted: 1 }, needsAction: false })]);
});

test('a live show is on the board whatever its scheduledAt; one that ended, or a late live event older than its end, is not', async () => {
  const now = Date.now();
  const send = async (show: Record<string, unknown>, type: string, occurredAt: number): Promise<void> => {
    expect((await sendEvent(svc, 'p1', secret, showEvent(type, show, iso(occurredAt)))).status).toBe(202);
  };
  const tenDaysAgo = iso(now - 10 * 24 * HOUR);
  // The partner's one-time backfill of its live-show index is done by now: what follows is the index's own upkeep.
  await board();
  // Went live ten days after it was scheduled (or has streamed since): live, so on the board.
  await send(sampleShow('long-live', { scheduledAt: tenDaysAgo, state: 'live' }), 'show.live', now - 60_000);
  // Live, then ended: it leaves the board; a live event older than the end (delivered late) does not bring it back.
  await send(sampleShow('long-ended', { scheduledAt: tenDaysAgo, state: 'live' }), 'show.live', now - 60_000);
  expect((await board()).shows.map((s) => s.showId)).toContain('long-ended');
  await send(sampleShow('long-ended', { scheduledAt: tenDaysAgo, state: 'ended' }), 'show.ended', now - 30_000);
  await send(sampleShow('long-ended', { scheduledAt: tenDaysAgo, state: 'live' }), 'show.live', now - 45_000);
  const ids = (await board()).shows.map((s) => s.showId);
  expect(ids).toContain('long-live');
  expect(ids).not.toContain('long-ended');
  // The ended show left the partner's live-show index (the board does not read it again each refresh).
  expect(await svc.rt.redis.sismember(svc.rt.keys.partnerLiveShows('p1'), 'long-ended')).toBe(0);
  expect(await svc.rt.redis.sismember(svc.rt.keys.partnerLiveShows('p1'), 'long-live')).toBe(1);
  expect((await board()).shows.find((s) => s.showId === 'long-live')).toMatchObject({ state: 'live' });
});

test('live shows stored before the live-show index existed are added to it by the one-time backfill, ended ones are not', async () => {
  const live = svc.rt.keys.partnerLiveShows('p1');
  // As a deployment from before the index left it: no index, no backfill mark.
  await svc.rt.redis.del(live, svc.rt.keys.partnerLiveBackfilled('p1'));
  await svc.rt.shows.backfillLive('p1', 2);
  const members = await svc.rt.redis.smembers(live);
  expect(members).toEqual(expect.arrayContaining(['long-live', 'old-live']));
  expect(members).not.toContain('long-ended');
  expect(members).not.toContain('old-ended');
  expect(await svc.rt.redis.get(svc.rt.keys.partnerLiveBackfilled('p1'))).toBe('1');
});

test('a mirror that needs action says so, with the time it entered its state, and comes first', async () => {
  await svc.rt.shows.saveMirror('p1', 'today', { ...newMirror('wn', 'whatnot'), state: 'action_required', lastError: 'whatnot: create the show in the Whatnot app, then link it' });
  const m = (await svc.rt.shows.getMirror('p1', 'today', 'wn'))!;
  expect(m.since).toEqual({ state: 'action_required', at: m.updatedAt });
  const b = await board();
  expect(b.shows[0]!.showId).toBe('today');
  expect(b.shows[0]!.mirrors[0]).toMatchObject({ state: 'action_required', since: m.updatedAt, needsAction: true, lastError: 'whatnot: create the show in the Whatnot app, then link it' });
  // A later save in the same state keeps the time it entered it.
  await svc.rt.shows.saveMirror('p1', 'today', { ...m, lastError: 'still waiting' });
  expect((await svc.rt.shows.getMirror('p1', 'today', 'wn'))!.since).toEqual(m.since);
});

test('the stream sends the board, then a new board event when a mirror changes', async () => {
  const ctl = new AbortController();
  const res = await fetch(`${svc.url}/v1/ops/stream`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: ctl.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const boards = (): Board[] => [...text.matchAll(/event: board\ndata: (.*)\n\n/g)].map((x) => JSON.parse(x[1]!) as Board);
  const until = async (ok: () => boolean): Promise<void> => {
    while (!ok()) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      text += value;
    }
  };
  await until(() => boards().length >= 1);
  expect(boards()[0]!.shows.find((s) => s.showId === 'today')!.mirrors[0]!.lastError).toBe('still waiting');
  const m = (await svc.rt.shows.getMirror('p1', 'today', 'wn'))!;
  await svc.rt.shows.saveMirror('p1', 'today', { ...m, state: 'ready', lastError: null });
  await until(() => boards().some((b) => b.shows.find((s) => s.showId === 'today')?.mirrors[0]?.state === 'ready'));
  ctl.abort();
});

test('a show page has the timeline and is 404 for a show that does not exist', async () => {
  const r = await svc.api('/v1/ops/partners/p1/shows/today');
  expect(r.status).toBe(200);
  const d = (await r.json()) as { timeline: { kind: string; summary: string }[]; sales: unknown[] };
  expect(d.timeline).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'event', summary: 'partner sent show.scheduled' })]));
  expect(d.sales).toEqual([]);
  expect((await svc.api('/v1/ops/partners/p1/shows/nosuch')).status).toBe(404);
});

test("the show timeline tells operators apart by key id: a key named like another (even 'ADMIN_API_KEY') cannot pass for it", async () => {
  const lookalike = (await (await svc.api('/v1/api-keys', { json: { role: 'admin', name: 'ADMIN_API_KEY' } })).json()) as { id: string; key: string };
  expect((await svc.api('/v1/partners/p1/shows/today/mirrors/wn/resync', { method: 'POST', key: lookalike.key })).status).toBe(202);
  expect((await svc.api('/v1/partners/p1/shows/today/mirrors/wn/resync', { method: 'POST' })).status).toBe(202);
  const d = (await (await svc.api('/v1/ops/partners/p1/shows/today')).json()) as { timeline: { kind: string; summary: string }[] };
  const resyncs = d.timeline.filter((t) => t.kind === 'operator' && t.summary.startsWith('mirror.'));
  expect(resyncs).toHaveLength(2);
  expect(resyncs[0]!.summary).not.toBe(resyncs[1]!.summary);
  expect(resyncs.some((t) => t.summary.includes(lookalike.id))).toBe(true);
});

test('sign-in sets an HttpOnly, SameSite=Strict cookie that opens /admin/queues for admins only, until sign-out', async () => {
  const signIn = (key: string): Promise<Response> => fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  expect((await signIn('sk_nope_0123456789')).status).toBe(401);
  const bad = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(bad.status).toBe(400);

  const admin = await signIn(ADMIN_KEY);
  expect(admin.status).toBe(201);
  expect(await admin.json()).toEqual({ id: 'admin', role: 'admin', partnerId: null });
  const setCookie = admin.headers.get('set-cookie')!;
  expect(setCookie).toMatch(/^syndicast_ops=[A-Za-z0-9_-]{20,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/);
  const cookie = setCookie.split(';')[0]!;

  expect((await fetch(`${svc.url}/admin/queues`)).status).toBe(401);
  const page = await fetch(`${svc.url}/admin/queues`, { headers: { cookie } });
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain('__UI_CONFIG__');
  expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1|localhost)[^"']*\.(googleapis|gstatic)\.com/);
  expect(html).not.toMatch(/(href|src)="https?:\/\//);
  const queues = await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } });
  expect(queues.status).toBe(200);
  const names = ((await queues.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
  expect(names).toEqual(expect.arrayContaining(['reconcile', 'scheduler', 'attribution', 'delivery', 'sync-youtube-0']));

  const viewerKey = ((await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { key: string }).key;
  const viewer = await signIn(viewerKey);
  expect(viewer.status).toBe(201);
  const viewerCookie = viewer.headers.get('set-cookie')!.split(';')[0]!;
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie: viewerCookie } })).status).toBe(403);

  const out = await fetch(`${svc.url}/v1/ops/session`, { method: 'DELETE', headers: { cookie } });
  expect(out.status).toBe(204);
  expect(out.headers.get('set-cookie')).toMatch(/^syndicast_ops=; .*Max-Age=0/);
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie } })).status).toBe(401);
});

test('a renewal (a sign-in that carries the session cookie it replaces) ends that session: one live session, not one per renewal', async () => {
  // The console renews its session on the Queues link and every hour; each renewal made a new 8-hour
  // session and left the one it replaced alive (up to ~8 per admin tab).
  const signIn = (cookie?: string): Promise<Response> =>
    fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ key: ADMIN_KEY }) });
  const first = (await signIn()).headers.get('set-cookie')!.split(';')[0]!;
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie: first } })).status).toBe(200);
  const renewed = await signIn(first);
  expect(renewed.status).toBe(201);
  const second = renewed.headers.get('set-cookie')!.split(';')[0]!;
  expect(second).not.toBe(first);
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie: first } })).status).toBe(401);
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie: second } })).status).toBe(200);
  // A refused key replaces nothing: the session stays.
  const refused = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: second }, body: JSON.stringify({ key: 'sk_nope_0123456789' }) });
  expect(refused.status).toBe(401);
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie: second } })).status).toBe(200);
});

test('revoking a key ends the browser sessions signed in with it: the /admin/queues cookie and the console stream', async () => {
  const created = (await (await svc.api('/v1/api-keys', { json: { role: 'admin', name: 'to revoke' } })).json()) as { id: string; key: string };
  const signIn = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: created.key }) });
  expect(signIn.status).toBe(201);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  expect((await fetch(`${svc.url}/admin/queues`, { headers: { cookie } })).status).toBe(200);
  const stream = await fetch(`${svc.url}/v1/ops/stream`, { headers: { authorization: `Bearer ${created.key}` } });
  expect(stream.status).toBe(200);
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while (!text.includes('event: board')) text += (await reader.read()).value ?? '';

  expect((await svc.api(`/v1/api-keys/${created.id}`, { method: 'DELETE' })).status).toBe(200);
  const after = await fetch(`${svc.url}/admin/queues`, { headers: { cookie } });
  expect(after.status).toBe(401);
  expect(after.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect((await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } })).status).toBe(401);
  // The open stream says why and ends; the console's reconnect then gets 401 and signs out.
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  expect(text).toMatch(/event: problem\ndata: .*"status":401/);
  expect((await fetch(`${svc.url}/v1/ops/stream`, { headers: { authorization: `Bearer ${created.key}` } })).status).toBe(401);
});

test("a key's expiry ends the browser sessions signed in with it, as a revocation does", async () => {
  const expiresAt = Date.now() + 3000;
  const created = (await (await svc.api('/v1/api-keys', { json: { role: 'admin', name: 'to expire', expiresAt: new Date(expiresAt).toISOString() } })).json()) as { id: string; key: string };
  const signIn = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: created.key }) });
  expect(signIn.status).toBe(201);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  expect((await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } })).status).toBe(200);
  // Past the expiry (the clock, not a timing assumption: the key is listed expired first).
  while (Date.now() <= expiresAt) await new Promise((r) => setTimeout(r, expiresAt + 10 - Date.now()));
  expect(((await (await svc.api(`/v1/api-keys/${created.id}`)).json()) as { status: string }).status).toBe('expired');
  const after = await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } });
  expect(after.status).toBe(401);
  expect(after.headers.get('content-type')).toMatch(/^application\/problem\+json/);
});

test('what an admin changes on /admin/queues (pause, resume, clean, by bearer key or session cookie) is in the audit log with who did it; reads are not', async () => {
  const created = (await (await svc.api('/v1/api-keys', { json: { role: 'admin', name: 'queue keeper' } })).json()) as { id: string; key: string };
  const t0 = new Date(Date.now() - 1000).toISOString();
  const board = (path: string, init: RequestInit) => fetch(`${svc.url}/admin/queues/api/queues${path}`, init);
  const bearer = { authorization: `Bearer ${created.key}`, 'x-request-id': 'qb-pause-1' };
  expect((await board('/delivery/pause', { method: 'PUT', headers: bearer })).status).toBe(200);
  expect((await board('', { headers: bearer })).status).toBe(200);
  const signIn = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: created.key }) });
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  expect((await board('/delivery/resume', { method: 'PUT', headers: { cookie } })).status).toBe(200);
  expect((await board('/delivery/clean/failed', { method: 'PUT', headers: { cookie } })).status).toBe(200);
  // Refused: not an admin change, not audited.
  const viewerKey = ((await (await svc.api('/v1/api-keys', { json: { role: 'viewer' } })).json()) as { key: string }).key;
  expect((await board('/delivery/pause', { method: 'PUT', headers: { authorization: `Bearer ${viewerKey}` } })).status).toBe(403);

  const r = await svc.api(`/v1/audit?action=queues.&from=${encodeURIComponent(t0)}`);
  expect(r.status).toBe(200);
  const entries = ((await r.json()) as { entries: { action: string; actor: unknown; requestId?: string; detail?: Record<string, unknown> }[] }).entries.reverse();
  expect(entries.map((e) => e.action)).toEqual(['queues.pause', 'queues.resume', 'queues.clean']);
  for (const e of entries) expect(e.actor).toEqual({ keyId: created.id, role: 'admin', name: 'queue keeper' });
  expect(entries[0]).toMatchObject({ requestId: 'qb-pause-1', detail: { queue: 'delivery', method: 'PUT' } });
  expect(entries[2]!.detail).toMatchObject({ queue: 'delivery', queueStatus: 'failed' });
});

test("a queue is cleaned only of a job state: another name (a key of the queue of another type, one no state has) is a 400 problem, nothing done or audited; the job states still clean", async () => {
  // bull-board handed `:queueStatus` to BullMQ's clean as it came: `meta`, `events`, `id` (the queue's
  // hash, stream and counter) were a WRONGTYPE from its script, a 500; `stalled` or `__proto__` a 200
  // that cleaned nothing, audited as a clean. Found by an attack round against `npm start` (h-edge).
  const t0 = new Date(Date.now() - 1000).toISOString();
  const cleaner = (await (await svc.api('/v1/api-keys', { json: { role: 'admin', name: 'cleaner' } })).json()) as { id: string; key: string };
  const clean = (q: string, status: string) => fetch(`${svc.url}/admin/queues/api/queues/${q}/clean/${status}`, { method: 'PUT', headers: { authorization: `Bearer ${cleaner.key}` } });
  for (const status of ['meta', 'events', 'id', 'stalled', '__proto__', 'latest']) {
    const r = await clean('delivery', status);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await r.json()) as { detail: string }).detail).toContain('queueStatus');
  }
  expect((await clean('delivery', 'completed')).status).toBe(200);
  expect((await clean('delivery', 'waiting')).status).toBe(200);
  const entries = ((await (await svc.api(`/v1/audit?action=queues.clean&from=${encodeURIComponent(t0)}`)).json()) as { entries: { actor: { keyId?: string }; detail?: Record<string, unknown> }[] }).entries;
  expect(entries.filter((e) => e.actor.keyId === cleaner.id).map((e) => e.detail?.['queueStatus']).sort()).toEqual(['completed', 'waiting']);
});

test('a session signed in with ADMIN_API_KEY ends when ADMIN_API_KEY is rotated (the api processes restarted with a new one)', async () => {
  const signIn = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: ADMIN_KEY }) });
  expect(signIn.status).toBe(201);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  expect((await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } })).status).toBe(200);
  // The same deployment (Redis, KEY_PREFIX) after the rotation: an api process with the new key.
  const rotated = await startService({ redis: svc.redis, env: { KEY_PREFIX: svc.config.keyPrefix, ADMIN_API_KEY: 'sk_admin_rotated_0123456789abcdef' } });
  try {
    expect((await fetch(`${rotated.url}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status).toBe(401);
    const after = await fetch(`${rotated.url}/admin/queues/api/queues`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { detail: string }).detail).toContain('no longer valid');
    // Signing in with the new key works.
    const again = await fetch(`${rotated.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'sk_admin_rotated_0123456789abcdef' }) });
    expect(again.status).toBe(201);
    expect((await fetch(`${rotated.url}/admin/queues/api/queues`, { headers: { cookie: again.headers.get('set-cookie')!.split(';')[0]! } })).status).toBe(200);
  } finally {
    await rotated.close();
  }
});

test('the console page allows nothing but this origin', async () => {
  const r = await fetch(`${svc.url}/ops`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
  const html = await r.text();
  expect(html).not.toMatch(/(href|src)="https?:\/\//);
  expect((await fetch(`${svc.url}/ops/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
  // Any other name is simply not there: a 404 problem, also for the page's own file under another address
  // and for a name that is an Object.prototype property.
  for (const name of ['other.js', 'index.html', '__proto__', 'toString', 'x'.repeat(128), 'x'.repeat(129)]) {
    const miss = await fetch(`${svc.url}/ops/${name}`);
    expect([name.slice(0, 20), miss.status, miss.headers.get('content-type')]).toEqual([name.slice(0, 20), name.length > 128 ? 414 : 404, expect.stringMatching(/^application\/problem\+json/)]);
  }
});

test('the pages answer with and without a trailing slash: /ops/ redirects to /ops, the API routes keep one address', async () => {
  for (const [from, to] of [['/ops/', '/ops'], ['/ops/?partner=p1', '/ops?partner=p1']] as const) {
    for (const method of ['GET', 'HEAD']) {
      const r = await fetch(`${svc.url}${from}`, { method, redirect: 'manual' });
      expect([r.status, r.headers.get('location')]).toEqual([301, to]);
    }
  }
  const followed = await fetch(`${svc.url}/ops/`);
  expect([followed.status, followed.url]).toEqual([200, `${svc.url}/ops`]);
  expect(followed.headers.get('content-type')).toMatch(/^text\/html/);
  // The other pages: swagger-ui and bull-board serve both forms themselves.
  expect((await fetch(`${svc.url}/docs/`)).status).toBe(200);
  expect((await fetch(`${svc.url}/admin/queues/`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status).toBe(200);
  // Not the API: a /v1 route, health and metrics have one address each (no router-wide ignoreTrailingSlash).
  for (const path of ['/v1/ops/board/', '/health/live/', '/metrics/']) expect((await svc.api(path)).status).toBe(404);
});

test('the root address, the one the start-up line prints, leads to the console instead of a 404', async () => {
  for (const method of ['GET', 'HEAD']) {
    const r = await fetch(`${svc.url}/`, { method, redirect: 'manual' });
    expect([r.status, r.headers.get('location')]).toEqual([302, '/ops']);
  }
  const followed = await fetch(`${svc.url}/`);
  expect([followed.status, followed.url]).toEqual([200, `${svc.url}/ops`]);
  // Only a page: any other method on / is a 405 naming the methods it has.
  const post = await fetch(`${svc.url}/`, { method: 'POST' });
  expect([post.status, post.headers.get('allow'), post.headers.get('content-type')]).toEqual([405, 'GET, HEAD', expect.stringMatching(/^application\/problem\+json/)]);
});

test('shutdown ends open streams instead of waiting for them', async () => {
  const other = await startService({ redis: svc.redis });
  const res = await fetch(`${other.url}/v1/ops/stream`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  await reader.read();
  await other.close(); // resolves: the stream was ended by preClose
  for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) break;
});

/**
 * A new partner `partnerId` with 320 ended shows, `${prefix}-k` scheduled k minutes after `firstAt`
 * (20 sent at a time), more than the board reads per partner (300); returns a sender of its events.
 */
async function crowdedPartner(partnerId: string, prefix: string, now: number, firstAt: number): Promise<(show: Record<string, unknown>, type: string) => Promise<void>> {
  const partnerSecret = await createPartner(svc, partnerId, { name: `Partner ${partnerId}` });
  const send = async (show: Record<string, unknown>, type: string): Promise<void> => {
    expect((await sendEvent(svc, partnerId, partnerSecret, showEvent(type, show, iso(now - 60_000)))).status).toBe(202);
  };
  for (let i = 0; i < 320; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => send(sampleShow(`${prefix}-${i + j}`, { scheduledAt: iso(firstAt + (i + j) * 60_000), state: 'ended' }), 'show.ended')));
  }
  return send;
}

test("a busy partner's last week does not push today's and live shows off the board", async () => {
  const now = Date.now();
  // More shows than the board reads per partner (300), scheduled in the days before today's window, all over.
  const send = await crowdedPartner('busy', 'past', now, now - 6 * 24 * HOUR);
  await send(sampleShow('busy-live', { scheduledAt: iso(now - 2 * 24 * HOUR), state: 'live' }), 'show.live');
  await send(sampleShow('busy-today', { scheduledAt: iso(now + HOUR) }), 'show.scheduled');
  const b = await board();
  expect(b.shows.filter((s) => s.showId.startsWith('busy-')).map((s) => s.showId).sort()).toEqual(['busy-live', 'busy-today']);
});

test("a busy day: the board holds the partner's shows nearest to now, the hours ahead included, and says how many it left off", async () => {
  const now = Date.now();
  // More shows than the board holds per partner (300), all in today's window but hours ago, all over;
  // then the shows of the next hours. Read oldest first, the window's first 300 were yesterday's.
  const send = await crowdedPartner('crowded', 'crowd', now, now - 23 * HOUR);
  await send(sampleShow('next-soon', { scheduledAt: iso(now + 10 * 60_000) }), 'show.scheduled');
  await send(sampleShow('next-tonight', { scheduledAt: iso(now + 6 * HOUR) }), 'show.scheduled');
  const b = await board();
  const crowded = b.shows.filter((s) => s.showId.startsWith('crowd-') || s.showId.startsWith('next-'));
  expect(crowded).toHaveLength(300);
  expect(crowded.map((s) => s.showId)).toEqual(expect.arrayContaining(['next-soon', 'next-tonight', 'crowd-319']));
  // The oldest of the window are the ones left off, and the board says how many.
  expect(crowded.map((s) => s.showId)).not.toContain('crowd-0');
  expect(b.leftOff).toBe(322 - 300);
});
