/**
 * Tenancy matrix (issue 13). Every route the app registers — read from the router itself, so a new
 * route cannot slip past — has an entry saying how it is protected, and is called the way another
 * partner would call it:
 *
 * - `partner-read`: partner B's key on partner A's ids answers 403/404 and none of A's data; B's key
 *   with B's own partner id and A's object ids answers 404 (lookups are scoped by partner); A's own key
 *   answers 2xx (so the refusals are not an artefact of a wrong path or missing fixture);
 * - `partner-list`: the list is narrowed to the caller's own partner;
 * - `partner-filtered`: a log across partners (`GET /v1/audit`): a partner key gets only entries of its
 *   own partner (none of A's for B, some for A), and 403 when it names another partner;
 * - `operator` / `admin`: partner keys are refused by role whoever owns the data (with a valid body,
 *   so that validation cannot answer first), and nothing of A's changes;
 * - `signed-partner` / `signed-target`: no API key; another partner's signature is refused (401);
 * - `public`: no partner data behind it (the reason is part of the entry).
 *
 * Real redis-server, real HTTP; the app is the harness's, built through startRoles like `npm start`.
 */
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { newMirror } from '../../src/domain/mirror.js';
import type { PartnerEvent } from '../../src/domain/events.js';
import { signatureHeader } from '../../src/sources/signature.js';
import { ADMIN_KEY, createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';
import { HOUR_MS, isoFromNow } from '../helpers/clock.js';

type Access =
  | { kind: 'partner-read' }
  | { kind: 'partner-list' }
  | { kind: 'partner-filtered'; list: string }
  | { kind: 'operator'; body?: unknown }
  | { kind: 'admin'; body?: unknown }
  | { kind: 'signed-partner' }
  | { kind: 'signed-target' }
  | { kind: 'public'; reason: string }
  /** A server-sent event stream narrowed to the caller's partner (its first `board` event is checked). */
  | { kind: 'partner-stream' };

const PERIOD = { from: '2025-03-17T01:23:45.000Z', to: '2025-03-18T01:23:45.000Z' };

/** One entry per `METHOD /path` the app registers (HEAD follows its GET). */
const MATRIX: Record<string, Access> = {
  'GET /health/live': { kind: 'public', reason: 'liveness probe' },
  'GET /health/ready': { kind: 'public', reason: 'readiness probe' },
  'GET /metrics': { kind: 'public', reason: 'Prometheus text: counters and queue depths, no partner ids or data' },
  'GET /l/:code': { kind: 'public', reason: "a tracked link is public by design: it redirects a buyer to the partner's product page" },
  'POST /v1/api-keys': { kind: 'admin', body: { role: 'partner', partnerId: 'tenant-a' } },
  'GET /v1/api-keys': { kind: 'admin' },
  'GET /v1/api-keys/:keyId': { kind: 'admin' },
  'DELETE /v1/api-keys/:keyId': { kind: 'admin' },
  'GET /v1/relay': { kind: 'admin' },
  'DELETE /v1/relay': { kind: 'admin' },
  'GET /v1/audit': { kind: 'partner-filtered', list: 'entries' },
  'PATCH /v1/partners/:partnerId': { kind: 'operator', body: { name: 'renamed by a partner key', reconcileCron: '0 * * * *' } },
  'POST /v1/partners': { kind: 'operator', body: { id: 'tenant-x', name: 'made by a partner key' } },
  'GET /v1/partners': { kind: 'partner-list' },
  'GET /v1/partners/:partnerId': { kind: 'partner-read' },
  'POST /v1/partners/:partnerId/webhook-secret/rotate': { kind: 'operator' },
  'POST /v1/partners/:partnerId/events': { kind: 'signed-partner' },
  'POST /v1/partners/:partnerId/targets': { kind: 'operator', body: { platform: 'youtube', name: 'x', credentials: { refreshToken: 'x' }, commissionRateBps: 1 } },
  'GET /v1/partners/:partnerId/targets': { kind: 'partner-read' },
  'PATCH /v1/partners/:partnerId/targets/:targetId': { kind: 'operator', body: { enabled: false } },
  'DELETE /v1/partners/:partnerId/targets/:targetId': { kind: 'operator' },
  'GET /v1/partners/:partnerId/shows': { kind: 'partner-read' },
  'GET /v1/partners/:partnerId/shows/:showId': { kind: 'partner-read' },
  'PUT /v1/partners/:partnerId/shows/:showId/mirrors/:targetId': { kind: 'operator', body: { externalId: 'hijacked' } },
  'POST /v1/partners/:partnerId/shows/:showId/mirrors/:targetId/resync': { kind: 'operator' },
  'POST /v1/partners/:partnerId/shows/:showId/ingest/rotate': { kind: 'operator' },
  'GET /v1/partners/:partnerId/shows/:showId/attribution': { kind: 'partner-read' },
  'GET /v1/partners/:partnerId/attribution': { kind: 'partner-read' },
  'GET /v1/partners/:partnerId/attribution/orders/:orderId': { kind: 'partner-read' },
  'POST /v1/partners/:partnerId/reconciliations': { kind: 'operator', body: PERIOD },
  'GET /v1/reconciliations/:id': { kind: 'partner-read' },
  'GET /v1/partners/:partnerId/reconciliations': { kind: 'partner-read' },
  'POST /v1/partners/:partnerId/endpoints': { kind: 'operator', body: { url: 'https://attacker.example.com/', events: ['mirror.updated'] } },
  'GET /v1/partners/:partnerId/endpoints': { kind: 'partner-read' },
  'GET /v1/partners/:partnerId/endpoints/:endpointId': { kind: 'partner-read' },
  'PATCH /v1/partners/:partnerId/endpoints/:endpointId': { kind: 'operator', body: { url: 'https://attacker.example.com/' } },
  'DELETE /v1/partners/:partnerId/endpoints/:endpointId': { kind: 'operator' },
  'POST /v1/partners/:partnerId/endpoints/:endpointId/rotate-secret': { kind: 'operator' },
  'GET /v1/partners/:partnerId/endpoints/:endpointId/attempts': { kind: 'partner-read' },
  'GET /v1/partners/:partnerId/messages/:messageId': { kind: 'partner-read' },
  'POST /v1/partners/:partnerId/messages/:messageId/redeliver': { kind: 'operator', body: {} },
  'POST /v1/platform-webhooks/:targetId': { kind: 'signed-target' },
  'POST /v1/relay/edge/on-publish': { kind: 'public', reason: "nginx-rtmp callback: the show's stream key is the credential; answers 204/403/404 with no partner data" },
  'POST /v1/relay/edge/on-publish-done': { kind: 'public', reason: "nginx-rtmp callback: the show's stream key is the credential; answers 204/403/404 with no partner data" },
  'GET /': { kind: 'public', reason: 'a redirect to /ops, the console page' },
  'GET /ops': { kind: 'public', reason: 'the ops console page: static HTML, data comes from the authenticated APIs' },
  'GET /ops/:file': { kind: 'public', reason: "the ops console's script and style sheet (static files)" },
  'POST /v1/ops/session': { kind: 'public', reason: 'console sign-in: checks the key in its body, answers the caller its own role' },
  'DELETE /v1/ops/session': { kind: 'public', reason: 'console sign-out: ends the caller\'s own session cookie' },
  'GET /v1/ops/board': { kind: 'partner-list' },
  'GET /v1/ops/stream': { kind: 'partner-stream' },
  'GET /v1/ops/partners/:partnerId/shows/:showId': { kind: 'partner-read' },
  'GET /v1/ops/reconciliations': { kind: 'partner-list' },
  'GET /v1/ops/endpoints': { kind: 'partner-list' },
};

/** Routes that a library registers under one prefix, with one rule for all of them. */
const PREFIXES: { prefix: string; access: Access }[] = [
  { prefix: '/docs', access: { kind: 'public', reason: 'OpenAPI document and swagger-ui assets: route schemas only' } },
  { prefix: '/admin/queues', access: { kind: 'admin' } },
];

const A = 'tenant-a';
const B = 'tenant-b';

/** Values of path parameters: partner A's objects (filled in by beforeAll where they are generated). */
const PARAMS: Record<string, string> = {
  partnerId: A,
  showId: 'show-a',
  targetId: 'a-whatnot',
  orderId: 'order-a',
  endpointId: '',
  messageId: '',
  id: '',
  code: '',
  file: 'app.js',
  keyId: '',
  // bull-board's own parameters
  queueName: 'sync-youtube-0',
  jobId: 'nosuch',
  queueStatus: 'failed',
  schedulerId: 'nosuch',
};

/** Partner A's data that partner B must never see (checked when the request did not name it itself). */
const MARKERS = ['Tenant A SECRET name', 'SECRET-A-target', 'SECRET-A-show-title', 'secret-a.example.com', 'SECRET-A-endpoint', 'SECRET-A-message', '424242', '2025-03-17T01:23:45'];

let svc: TestService;
let app: FastifyInstance;
let base: string;
let keyA: string;
let keyB: string;
let secretA: string;
let secretB: string;
const whatnotSecretA = `whsec_${randomBytes(24).toString('base64')}`;
const whatnotSecretB = `whsec_${randomBytes(24).toString('base64')}`;

interface Route {
  method: string;
  url: string;
}

/** The routes the router holds, from Fastify's own listing (`printRoutes` without prefix compression). */
function registeredRoutes(f: FastifyInstance): Route[] {
  const stack: string[] = [];
  const out: Route[] = [];
  for (const line of f.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + m[2]!;
    stack[depth] = path;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) out.push({ method, url: path.replace(/(.)\/$/, '$1') });
  }
  const seen = new Set<string>();
  return out.filter((r) => (seen.has(`${r.method} ${r.url}`) ? false : (seen.add(`${r.method} ${r.url}`), true)));
}

function accessOf(r: Route): Access | undefined {
  const method = r.method === 'HEAD' ? 'GET' : r.method;
  return MATRIX[`${method} ${r.url}`] ?? PREFIXES.find((p) => r.url === p.prefix || r.url.startsWith(`${p.prefix}/`))?.access;
}

function fill(url: string, params: Record<string, string>): string {
  return url
    .replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
      const v = params[name];
      if (!v) throw new Error(`route ${url}: no fixture value for :${name} — add it to PARAMS in test/integration/tenancy.matrix.test.ts`);
      return encodeURIComponent(v);
    })
    .replace(/\*/g, 'anything');
}

interface Answer {
  status: number;
  text: string;
}

async function call(method: string, path: string, opts: { key?: string | null; body?: unknown; headers?: Record<string, string>; raw?: string } = {}): Promise<Answer> {
  const headers = new Headers(opts.headers);
  if (opts.key) headers.set('authorization', `Bearer ${opts.key}`);
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(opts.body);
  }
  const r = await fetch(base + path, { method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
  return { status: r.status, text: await r.text() };
}

/** The markers of A's data in `text` that the request did not name itself. */
function leaks(text: string, path: string): string[] {
  return MARKERS.filter((m) => !path.includes(m) && text.includes(m));
}

/** A's data as an admin sees it: must be the same after every refused write. */
async function snapshotA(): Promise<string> {
  const parts: string[] = [];
  for (const p of [`/v1/partners/${A}`, `/v1/partners/${A}/targets`, `/v1/partners/${A}/shows/show-a`, `/v1/partners/${A}/endpoints`, `/v1/partners/${A}/attribution`, `/v1/reconciliations/${PARAMS['id']}`, `/v1/api-keys/${PARAMS['keyId']}`]) {
    const r = await call('GET', p, { key: ADMIN_KEY });
    expect(r.status).toBe(200);
    parts.push(r.text);
  }
  parts.push(JSON.stringify(await svc.rt.partners.getTarget(A, 'a-youtube')));
  parts.push(JSON.stringify(await svc.rt.shows.getMirror(A, 'show-a', 'a-whatnot')));
  return parts.join('\n');
}

beforeAll(async () => {
  svc = await startService(); // built through startRoles, as `npm start` builds it (dashboard included)
  app = svc.app;
  base = svc.url;

  secretA = await createPartner(svc, A, { name: 'Tenant A SECRET name' });
  secretB = await createPartner(svc, B, { name: 'Tenant B' });
  for (const [pid, id, platform, credentials] of [
    [A, 'a-youtube', 'youtube', { clientId: 'c', clientSecret: 's', refreshToken: 'r' }],
    [A, 'a-whatnot', 'whatnot', { accessToken: 'wn-a', webhookSecret: whatnotSecretA }],
    [B, 'b-whatnot', 'whatnot', { accessToken: 'wn-b', webhookSecret: whatnotSecretB }],
  ] as const) {
    const r = await svc.api(`/v1/partners/${pid}/targets?verify=false`, { json: { id, platform, name: pid === A ? `SECRET-A-target ${id}` : id, credentials, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 1000 } });
    expect(r.status).toBe(201);
  }
  // Scheduled near now, so that A's show is on the ops board (a day either side of now) and the board
  // and stream leak checks have A's title to find; with sampleShow's fixed 2026-11-24 they found
  // nothing to leak from 2026-11-25 18:00 UTC on, and passed whatever the board showed B.
  const show = sampleShow('show-a', { title: 'SECRET-A-show-title', scheduledAt: isoFromNow(2 * HOUR_MS), products: [{ id: 'p1', title: 'Lip Oil', price: { amount: 1800, currency: 'USD' }, url: 'https://secret-a.example.com/p1' }] });
  expect((await sendEvent(svc, A, secretA, showEvent('show.scheduled', show, '2026-11-24T10:00:00Z'))).status).toBe(202);
  expect((await call('GET', '/v1/ops/board', { key: ADMIN_KEY })).text).toContain('SECRET-A-show-title');
  await svc.rt.shows.saveMirror(A, 'show-a', { ...newMirror('a-whatnot', 'whatnot'), state: 'action_required', lastError: 'link it' });

  const link = await svc.rt.links.ensure({ partnerId: A, showId: 'show-a', targetId: 'a-youtube', platform: 'youtube', productId: 'p1', url: 'https://secret-a.example.com/p1' });
  PARAMS['code'] = link.split('/l/')[1]!;
  const click = await svc.rt.links.recordClick((await svc.rt.links.find(PARAMS['code']))!, '203.0.113.7', Date.parse('2026-11-24T18:00:00Z'));
  // An attributed order, so that A's reports carry it (and the leak check has something to find).
  const order = { type: 'order.created', occurredAt: '2026-11-24T18:05:00Z', data: { order: { id: 'order-a', clickId: click.id, createdAt: '2026-11-24T18:05:00Z', lines: [], total: { amount: 424242, currency: 'USD' } } } };
  expect(await svc.rt.attribution.handlePartnerEvent(A, order as unknown as PartnerEvent)).toMatchObject({ attributed: true });

  const ep = await svc.api(`/v1/partners/${A}/endpoints`, { json: { url: 'https://hooks.secret-a.example.com/in', events: ['mirror.updated'], description: 'SECRET-A-endpoint' } });
  expect(ep.status).toBe(201);
  PARAMS['endpointId'] = ((await ep.json()) as { id: string }).id;
  const emitted = await svc.rt.outbound.emit(A, 'mirror.updated', { note: 'SECRET-A-message' }, 'tenancy-1');
  PARAMS['messageId'] = emitted.messageId!;
  const rec = await svc.api(`/v1/partners/${A}/reconciliations`, { json: PERIOD });
  expect(rec.status).toBe(202);
  PARAMS['id'] = ((await rec.json()) as { id: string }).id;

  const key = async (partnerId: string): Promise<string> => {
    const r = await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId } });
    expect(r.status).toBe(201);
    return ((await r.json()) as { key: string }).key;
  };
  keyA = await key(A);
  keyB = await key(B);
  // An operator key that can be listed (and must survive every refused revocation).
  const op = await svc.api('/v1/api-keys', { json: { role: 'operator', name: 'tenancy operator' } });
  PARAMS['keyId'] = ((await op.json()) as { id: string }).id;
});

afterAll(async () => {
  await svc?.close();
});

const KINDS_HELP = `kinds: partner-read (a partner's own data: another partner's key must get 403/404), partner-list, operator / admin (writes: give a valid body so validation cannot answer before the role check), signed-partner, signed-target, public (say why no partner data is behind it)`;

test('every registered route has a tenancy entry, and every entry a route', () => {
  const routes = registeredRoutes(app);
  // The listing is read correctly (if Fastify changes its format, this fails before anything passes vacuously).
  expect(routes).toEqual(expect.arrayContaining([{ method: 'GET', url: '/v1/reconciliations/:id' }, { method: 'GET', url: '/v1/partners/:partnerId/messages/:messageId' }, { method: 'POST', url: '/v1/partners/:partnerId/events' }]));
  const missing = routes.filter((r) => !accessOf(r)).map((r) => `${r.method === 'HEAD' ? 'GET' : r.method} ${r.url}`);
  const problems = [...new Set(missing)].map(
    (k) => `Route \`${k}\` has no entry in the tenancy matrix: add \`'${k}': { kind: ... }\` to MATRIX in test/integration/tenancy.matrix.test.ts (and a PARAMS value for any new path parameter); ${KINDS_HELP}.`,
  );
  const keys = new Set(routes.map((r) => `${r.method} ${r.url}`));
  for (const k of Object.keys(MATRIX)) if (!keys.has(k)) problems.push(`MATRIX entry \`${k}\` matches no registered route: remove it or fix its method/path.`);
  expect(problems).toEqual([]);
});

test("partner-read routes: another partner's key gets 403/404 and none of the owner's data; the owner's key gets it", async () => {
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => accessOf(x)?.kind === 'partner-read')) {
    const own = fill(r.url, PARAMS);
    const mine = await call(r.method, own, { key: keyA });
    if (mine.status !== 200) problems.push(`${r.method} ${own} with the owner's key: ${mine.status} (expected 200; the fixture is not reachable, so the refusals below would prove nothing) ${mine.text.slice(0, 200)}`);
    else if (r.method === 'GET' && leaks(mine.text, own).length === 0 && !r.url.endsWith('/attempts')) {
      // The owner's answer carries its data (so the leak check on the refusals looks for the right strings).
      problems.push(`${r.method} ${own} with the owner's key shows none of the markers ${MARKERS.join(', ')}`);
    }
    const other = await call(r.method, own, { key: keyB });
    if (other.status !== 403 && other.status !== 404) problems.push(`${r.method} ${own} with partner ${B}'s key: ${other.status} (expected 403 or 404) ${other.text.slice(0, 300)}`);
    const leaked = leaks(other.text, own);
    if (leaked.length) problems.push(`${r.method} ${own} with partner ${B}'s key leaks ${leaked.join(', ')}`);
    if (r.url.includes(':partnerId') && /:(?!partnerId)[A-Za-z]/.test(r.url)) {
      // B's own partner id with A's object ids: the lookup must be scoped by partner.
      const crossed = fill(r.url, { ...PARAMS, partnerId: B });
      const x = await call(r.method, crossed, { key: keyB });
      if (x.status !== 404) problems.push(`${r.method} ${crossed} (partner ${B}'s own id, ${A}'s object ids) with ${B}'s key: ${x.status} (expected 404) ${x.text.slice(0, 300)}`);
      const xl = leaks(x.text, crossed);
      if (xl.length) problems.push(`${r.method} ${crossed} with ${B}'s key leaks ${xl.join(', ')}`);
    }
  }
  expect(problems).toEqual([]);
});

test("partner-list routes show a partner key only its own partner", async () => {
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => accessOf(x)?.kind === 'partner-list')) {
    const res = await call(r.method, r.url, { key: keyB });
    if (res.status !== 200) problems.push(`${r.method} ${r.url} with ${B}'s key: ${res.status}`);
    if (r.method === 'GET') {
      const ids = ((JSON.parse(res.text) as { partners: { id: string }[] }).partners ?? []).map((p) => p.id);
      if (JSON.stringify(ids) !== JSON.stringify([B])) problems.push(`${r.method} ${r.url} with ${B}'s key lists ${ids.join(', ')}`);
    }
    const l = leaks(res.text, r.url);
    if (l.length) problems.push(`${r.method} ${r.url} with ${B}'s key leaks ${l.join(', ')}`);
  }
  expect(problems).toEqual([]);
});

test('partner-stream routes: the first board event lists only the caller\'s partner and none of another partner\'s data; no key, no stream', async () => {
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => accessOf(x)?.kind === 'partner-stream')) {
    const anon = await call(r.method, r.url);
    if (anon.status !== 401) problems.push(`${r.method} ${r.url} without a key: ${anon.status} (expected 401)`);
    const ctl = new AbortController();
    const res = await fetch(base + r.url, { headers: { authorization: `Bearer ${keyB}` }, signal: ctl.signal });
    if (res.status !== 200 || !res.body) {
      problems.push(`${r.method} ${r.url} with ${B}'s key: ${res.status}`);
      continue;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/event: board\ndata: .*\n\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    ctl.abort();
    const data = /event: board\ndata: (.*)\n\n/.exec(text)?.[1];
    if (!data) {
      problems.push(`${r.method} ${r.url}: no board event in ${text.slice(0, 200)}`);
      continue;
    }
    const ids = (JSON.parse(data) as { partners: { id: string }[] }).partners.map((p) => p.id);
    if (JSON.stringify(ids) !== JSON.stringify([B])) problems.push(`${r.method} ${r.url} with ${B}'s key lists ${ids.join(', ')}`);
    if (leaks(text, r.url).length) problems.push(`${r.method} ${r.url} with ${B}'s key leaks ${leaks(text, r.url).join(', ')}`);
  }
  expect(problems).toEqual([]);
});

test("partner-filtered routes give a partner key only its own partner's entries", async () => {
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => x.method === 'GET' && accessOf(x)?.kind === 'partner-filtered')) {
    const { list } = accessOf(r) as { kind: 'partner-filtered'; list: string };
    const entries = (text: string): { partnerId?: string }[] => (JSON.parse(text) as Record<string, { partnerId?: string }[]>)[list] ?? [];
    const other = await call(r.method, r.url, { key: keyB });
    if (other.status !== 200) problems.push(`${r.method} ${r.url} with ${B}'s key: ${other.status}`);
    else if (entries(other.text).some((e) => e.partnerId !== B)) problems.push(`${r.method} ${r.url} with ${B}'s key lists entries of ${[...new Set(entries(other.text).map((e) => e.partnerId))].join(', ')}`);
    if (leaks(other.text, r.url).length) problems.push(`${r.method} ${r.url} with ${B}'s key leaks ${leaks(other.text, r.url).join(', ')}`);
    const named = await call(r.method, `${r.url}?partnerId=${A}`, { key: keyB });
    if (named.status !== 403) problems.push(`${r.method} ${r.url}?partnerId=${A} with ${B}'s key: ${named.status} (expected 403)`);
    const own = await call(r.method, r.url, { key: keyA });
    if (own.status !== 200 || entries(own.text).length === 0 || entries(own.text).some((e) => e.partnerId !== A)) {
      problems.push(`${r.method} ${r.url} with the owner's key: ${own.status}, expected some entries and only ${A}'s (the fixture is not reachable, so the refusals prove nothing) ${own.text.slice(0, 200)}`);
    }
  }
  expect(problems).toEqual([]);
});

test('public routes carry none of a partner\'s data (tracked links excepted, by design)', async () => {
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => accessOf(x)?.kind === 'public')) {
    const path = fill(r.url, PARAMS);
    const res = await call(r.method, path, { key: keyB });
    if (res.status >= 500) problems.push(`${r.method} ${path}: ${res.status}`);
    if (r.url !== '/l/:code' && leaks(res.text, path).length) problems.push(`${r.method} ${path} leaks ${leaks(res.text, path).join(', ')}`);
  }
  expect(problems).toEqual([]);
});

test("signed routes refuse another partner's signature", async () => {
  const before = await snapshotA();
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => accessOf(x)?.kind === 'signed-partner' || accessOf(x)?.kind === 'signed-target')) {
    const path = fill(r.url, PARAMS);
    const kind = accessOf(r)!.kind;
    const body =
      kind === 'signed-partner'
        ? JSON.stringify(showEvent('show.updated', sampleShow('show-a', { title: 'renamed by B' }), '2026-11-24T11:00:00Z'))
        : JSON.stringify({ type: 'orders.created', timestamp: new Date().toISOString(), data: { id: 'o-b', show_id: 'x' } });
    const id = `msg_b_${r.url.length}`;
    const ts = Math.floor(Date.now() / 1000);
    // Signed correctly — with B's own secret for the same scheme.
    const secret = kind === 'signed-partner' ? secretB : whatnotSecretB;
    const res = await call(r.method, path, { key: keyB, raw: body, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signatureHeader(secret, id, ts, body) } });
    if (res.status !== 401) problems.push(`${r.method} ${path} signed with ${B}'s secret: ${res.status} (expected 401) ${res.text.slice(0, 300)}`);
    if (leaks(res.text, path).length) problems.push(`${r.method} ${path} leaks ${leaks(res.text, path).join(', ')}`);
  }
  expect(problems).toEqual([]);
  expect(await snapshotA()).toBe(before);
});

test('write routes refuse partner keys (another partner\'s and the owner\'s) and change nothing', async () => {
  const before = await snapshotA();
  const problems: string[] = [];
  for (const r of registeredRoutes(app).filter((x) => accessOf(x)?.kind === 'operator' || accessOf(x)?.kind === 'admin')) {
    const access = accessOf(r) as { kind: 'operator' | 'admin'; body?: unknown };
    const path = fill(r.url, PARAMS);
    for (const [who, key] of [[B, keyB], [A, keyA]] as const) {
      const res = await call(r.method, path, { key, ...(access.body !== undefined ? { body: access.body } : {}) });
      // A wildcard (a library's catch-all for unknown paths) may answer 404 before any role check: nothing is behind it.
      const ok = res.status === 403 || (r.url.endsWith('*') && res.status === 404);
      if (!ok) problems.push(`${r.method} ${path} with partner ${who}'s key: ${res.status} (expected 403) ${res.text.slice(0, 200)}`);
      if (who === B && leaks(res.text, path).length) problems.push(`${r.method} ${path} leaks ${leaks(res.text, path).join(', ')}`);
    }
  }
  expect(problems).toEqual([]);
  expect(await snapshotA()).toBe(before);
  // A's webhook secret was not rotated: its events still verify.
  expect((await sendEvent(svc, A, secretA, showEvent('show.updated', sampleShow('show-a', { title: 'SECRET-A-show-title' }), '2026-11-24T10:00:00Z'))).status).toBe(202);
});
