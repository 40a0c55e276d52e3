/**
 * Stored records that do not read (an operator's hand edit with redis-cli, a half-migrated key): JSON
 * that does not parse, JSON of the wrong shape (`null`, a number, an array, an object without its
 * fields), a key of another type. Each is a StoredRecordCorruptError (src/store/stored-record.ts):
 * - a single read answers 500 with the problem type `stored-record-unreadable`, naming the record's
 *   family and id and never its content (before: a generic "internal error", or a TypeError's);
 * - a list leaves the record out (GET /v1/partners/{p}/shows says how many in `unreadable`; before, one
 *   bad show failed the list with a 500 for every other show; a partner document of the wrong shape
 *   failed GET /v1/partners for every partner);
 * - a sync of a show whose desired state is a key of another type fails the mirror once with a
 *   lastError naming the key (before: the Lua step's WRONGTYPE left the lease held, the job was retried
 *   to its last attempt and the sweep enqueued it again, for good);
 * - lists (API keys, audit, endpoints and emits, reconciliation runs) and the order-event sweep pass
 *   over the one record and go on with the others;
 * - a relay status: the show's views are a typed 500, the ops board leaves that show off (counted), the
 *   relay's own read carries nothing; a console session: /admin/queues is a typed 500, a new sign-in or a
 *   sign-out ends it;
 * - each is counted in syndicast_stored_records_unreadable_total{family}.
 */
import { createHash } from 'node:crypto';
import { jest } from '@jest/globals';
import { OrderEventSweep } from '../../src/attribution/order-event.sweep.js';
import { createLogger } from '../../src/lib/logger.js';
import { storedRecordsUnreadable } from '../../src/lib/metrics.js';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { allowAllWrites, refuseAccessTo } from '../helpers/acl.js';
import { addOfflineWhatnotTarget, handRunRelay, linkOperatorMirror } from '../helpers/hand-relay.js';
import { logSink } from '../helpers/log-sink.js';
import { ADMIN_KEY, createPartner, orderEvent, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;

serviceForFile((started) => (svc = started), { dispatch: false });

const TYPE = 'https://syndicast.dev/problems/stored-record-unreadable';
const counted = async (family: string): Promise<number> => (await storedRecordsUnreadable.get()).values.find((v) => v.labels['family'] === family)?.value ?? 0;

async function partnerWithShows(p: string, ids: string[]): Promise<void> {
  const secret = await createPartner(svc, p);
  for (const id of ids) expect((await sendEvent(svc, p, secret, showEvent('show.scheduled', sampleShow(id), '2026-11-24T17:00:00Z'))).status).toBe(202);
}

async function youtubeTarget(p: string): Promise<void> {
  const t = await svc.api(`/v1/partners/${p}/targets?verify=false`, { json: { id: `${p}-yt`, platform: 'youtube', name: 'YT', credentials: { refreshToken: 'r' }, commissionRateBps: 500 } });
  expect(t.status).toBe(201);
}

const SHOW_CORRUPTIONS: [string, (key: string) => Promise<unknown>][] = [
  ['truncated JSON', (key) => svc.rt.redis.hset(key, 'snap', '{"id":"bad","title":"Secret rec')],
  ['JSON null', (key) => svc.rt.redis.hset(key, 'snap', 'null')],
  ['an object without its products', (key) => svc.rt.redis.hset(key, 'snap', '{"id":"bad","title":"Secret rec","state":"scheduled","scheduledAt":"2026-11-24T17:00:00Z"}')],
  ['a product register of the wrong shape', (key) => svc.rt.redis.hset(key, 'prod:p1', '[1,2]', 'prod:p1@', '~')],
  ['a string where the hash is', async (key) => {
    await svc.rt.redis.del(key);
    await svc.rt.redis.set(key, 'Secret rec');
  }],
];

test.each(SHOW_CORRUPTIONS.map(([what, corrupt], i) => [what, `sc${i}`, corrupt] as const))('a show whose record is %s: the list leaves it out and says so; its own view is a typed 500', async (_what, p, corrupt) => {
  await partnerWithShows(p, ['bad', 'good']);
  const before = await counted('show');
  await corrupt(svc.rt.keys.desired(p, 'bad'));

  const list = await svc.api(`/v1/partners/${p}/shows`);
  expect(list.status).toBe(200);
  const body = (await list.json()) as { shows: { id: string }[]; unreadable?: number; total: number };
  expect(body.shows.map((s) => s.id)).toEqual(['good']);
  expect(body.unreadable).toBe(1);
  // Filtered too (every show is read to count `total`).
  const filtered = (await (await svc.api(`/v1/partners/${p}/shows?state=scheduled`)).json()) as { shows: { id: string }[]; unreadable?: number };
  expect(filtered).toMatchObject({ shows: [{ id: 'good' }], unreadable: 1 });

  const one = await svc.api(`/v1/partners/${p}/shows/bad`);
  expect(one.status).toBe(500);
  expect(one.headers.get('retry-after')).toBeNull();
  const problem = (await one.json()) as { type: string; detail: string };
  expect(problem.type).toBe(TYPE);
  expect(problem.detail).toContain('show record bad');
  expect(problem.detail).not.toContain('Secret rec');
  expect(await counted('show')).toBeGreaterThanOrEqual(before + 3);
}, 60_000);

test('the show list while Redis is gone answers 503, never a 200 that leaves the shows it could not read out as unreadable', async () => {
  const p = 'sd';
  await partnerWithShows(p, ['bad', 'good']);
  await svc.rt.redis.hset(svc.rt.keys.desired(p, 'bad'), 'snap', '{"id":"bad","title":"Secret rec');
  // Redis gone between the page's index read and the shows' reads (ioredis's error for a closed connection).
  const real = svc.rt.shows.desired.bind(svc.rt.shows);
  const gone = jest.spyOn(svc.rt.shows, 'desired').mockImplementation((partnerId, showId) => (showId === 'good' ? Promise.reject(new Error('Connection is closed.')) : real(partnerId, showId)));
  try {
    const list = await svc.api(`/v1/partners/${p}/shows`);
    expect(list.status).toBe(503);
    expect(((await list.json()) as { type: string }).type).toBe('https://syndicast.dev/problems/service-unavailable');
  } finally {
    gone.mockRestore();
  }
  expect((await svc.api(`/v1/partners/${p}/shows`)).status).toBe(200);
}, 60_000);

test.each([
  ['JSON null', 'null'],
  ['a number', '42'],
  ['an array', '[]'],
  ['an object without its fields', '{"id":"x"}'],
])('a partner document that is %s: GET /v1/partners lists the others; the partner itself is a typed 500', async (_what, doc) => {
  const p = `pd${doc.length}${doc.charCodeAt(0)}`;
  await createPartner(svc, `${p}-bad`);
  await createPartner(svc, `${p}-good`);
  const before = await counted('partner');
  await svc.rt.redis.hset(svc.rt.keys.partner(`${p}-bad`), 'doc', doc);

  const r = await svc.api('/v1/partners');
  expect(r.status).toBe(200);
  const ids = ((await r.json()) as { partners: { id: string }[] }).partners.map((x) => x.id);
  expect(ids).toContain(`${p}-good`);
  expect(ids).not.toContain(`${p}-bad`);
  for (const path of [`/v1/partners/${p}-bad`, `/v1/partners/${p}-bad/shows`]) {
    const one = await svc.api(path);
    expect(one.status).toBe(500);
    expect(((await one.json()) as { type: string }).type).toBe(TYPE);
  }
  expect(await counted('partner')).toBeGreaterThan(before);
}, 60_000);

test('a sync of a show whose desired state is a key of another type fails the mirror once, naming the key, and frees the lease', async () => {
  const p = 'sw';
  await createPartner(svc, p);
  await youtubeTarget(p);
  const key = svc.rt.keys.desired(p, 's1');
  await svc.rt.redis.set(key, 'hand edit');
  const job = { partnerId: p, showId: 's1', targetId: `${p}-yt` };
  const emits = jest.spyOn(svc.rt.outbound, 'emitMade');

  let first;
  let told;
  try {
    first = await svc.rt.syncService.sync(job);
    told = emits.mock.calls.filter((c) => c[0] === p && c[1] === 'mirror.updated').length;
  } finally {
    emits.mockRestore();
  }
  expect(first).toMatchObject({ kind: 'done', state: 'failed' });
  const mirror = await svc.rt.shows.getMirror(p, 's1', `${p}-yt`);
  expect(mirror?.state).toBe('failed');
  expect(mirror?.lastError).toContain(key);
  expect(mirror?.lastError).toContain('another type');
  // Told as every other failure is: the partner's mirror.updated (once) and the show's timeline.
  expect(told).toBe(1);
  expect(mirror?.notified).toBeDefined();
  expect((await svc.rt.activity.list(p, 's1', 10)).filter((e) => e.kind === 'mirror')).toMatchObject([{ targetId: `${p}-yt`, state: 'failed' }]);
  // The lease was released: the next run is not delayed behind it, and finds the mirror failed already.
  expect(await svc.rt.redis.exists(svc.rt.keys.mirrorLease(p, 's1', `${p}-yt`))).toBe(0);
  const rev = (await svc.rt.shows.getMirror(p, 's1', `${p}-yt`))?.rev;
  expect(await svc.rt.syncService.sync(job)).toMatchObject({ kind: 'done', state: 'failed' });
  expect((await svc.rt.shows.getMirror(p, 's1', `${p}-yt`))?.rev).toBe(rev);
  expect((await svc.rt.activity.list(p, 's1', 10)).filter((e) => e.kind === 'mirror')).toHaveLength(1);
}, 60_000);

test('a sync whose target record is not JSON fails clearly, naming the target, and frees the lease (the next run is not delayed behind it)', async () => {
  const p = 'tj';
  await partnerWithShows(p, ['s1']);
  await youtubeTarget(p);
  const { key, field } = svc.rt.partners.targetField(p, `${p}-yt`);
  await svc.rt.redis.hset(key, field, '{"id":"trunc');
  const job = { partnerId: p, showId: 's1', targetId: `${p}-yt` };

  // Before: a raw SyntaxError thrown after the lease was taken and before the run's try, so the lease
  // stayed for its PTTL and the next run answered "delay: mirror owned by another run".
  await expect(svc.rt.syncService.sync(job)).rejects.toThrow(`target record ${p}-yt`);
  expect(await svc.rt.redis.exists(svc.rt.keys.mirrorLease(p, 's1', `${p}-yt`))).toBe(0);
  await expect(svc.rt.syncService.sync(job)).rejects.toThrow(/does not read \(not JSON\)/);
}, 60_000);

test.each([
  ['truncated JSON', '{"targetId":"mc-yt","state":"sch'],
  ['JSON null', 'null'],
])('a mirror record that is %s: the show view is a typed 500 naming the mirror; a sync run fails and frees the lease', async (what, raw) => {
  const p = `mc${what.length}`;
  await partnerWithShows(p, ['s1']);
  await youtubeTarget(p);
  const before = await counted('mirror');
  await svc.rt.redis.set(svc.rt.keys.mirror(p, 's1', `${p}-yt`), raw);

  const view = await svc.api(`/v1/partners/${p}/shows/s1`);
  expect(view.status).toBe(500);
  const problem = (await view.json()) as { type: string; detail: string };
  expect(problem.type).toBe(TYPE);
  expect(problem.detail).toContain(`mirror record ${p}-yt`);

  await expect(svc.rt.syncService.sync({ partnerId: p, showId: 's1', targetId: `${p}-yt` })).rejects.toThrow(/does not read/);
  expect(await svc.rt.redis.exists(svc.rt.keys.mirrorLease(p, 's1', `${p}-yt`))).toBe(0);
  // Left as it is for an operator: whether the platform has the show is what the record said.
  expect(await svc.rt.redis.get(svc.rt.keys.mirror(p, 's1', `${p}-yt`))).toBe(raw);
  expect(await counted('mirror')).toBeGreaterThan(before);
}, 60_000);

test('an API key whose stored records do not read: left out of GET /v1/api-keys (the others listed); a request with it is a typed 500', async () => {
  const mk = async (name: string) => (await (await svc.api('/v1/api-keys', { json: { role: 'viewer', name } })).json()) as { id: string; key: string };
  const bad = await mk('bad');
  const good = await mk('good');
  const before = await counted('apiKey');
  await svc.rt.redis.hset(svc.rt.keys.apiKeyIndex(), bad.id, '{"id":"');
  const r = await svc.api('/v1/api-keys');
  expect(r.status).toBe(200);
  const ids = ((await r.json()) as { keys: { id: string }[] }).keys.map((k) => k.id);
  expect(ids).toContain(good.id);
  expect(ids).not.toContain(bad.id);
  // The key's own record (by its hash), the wrong shape: its requests answer the typed problem.
  await svc.rt.redis.set(svc.rt.keys.apiKey(createHash('sha256').update(bad.key).digest('hex')), '[]');
  const own = await svc.api('/v1/partners', { key: bad.key });
  expect(own.status).toBe(500);
  expect(((await own.json()) as { type: string }).type).toBe(TYPE);
  expect(await counted('apiKey')).toBeGreaterThanOrEqual(before + 2);
}, 60_000);

test('an audit entry that does not read is left out of GET /v1/audit; the others are listed', async () => {
  const p = 'au';
  await createPartner(svc, p);
  await svc.api(`/v1/partners/${p}`, { method: 'PATCH', json: { name: 'Renamed' } });
  const stream = svc.rt.keys.audit(p);
  await svc.rt.redis.xadd(stream, '*', 'entry', '{"action":"partner.upd');
  await svc.rt.redis.xadd(stream, '*', 'entry', 'null');
  const r = await svc.api(`/v1/audit?partnerId=${p}`);
  expect(r.status).toBe(200);
  const actions = ((await r.json()) as { entries: { action: string }[] }).entries.map((e) => e.action);
  expect(actions).toContain('partner.created');
}, 60_000);

test('an outbound endpoint whose events do not read: left out of the list and of the partner\'s emits; its own read is a typed 500', async () => {
  const p = 'ep';
  await createPartner(svc, p);
  const mk = async () => (await (await svc.api(`/v1/partners/${p}/endpoints`, { json: { url: 'https://example.com/hook', events: ['mirror.updated'] } })).json()) as { id: string };
  const bad = await mk();
  const good = await mk();
  await svc.rt.redis.hset(svc.rt.keys.endpoint(p, bad.id), 'events', 'null');
  const r = await svc.api(`/v1/partners/${p}/endpoints`);
  expect(r.status).toBe(200);
  const ids = ((await r.json()) as { endpoints: { id: string }[] }).endpoints.map((e) => e.id);
  expect(ids).toEqual([good.id]);
  await expect(svc.rt.outbound.emit(p, 'mirror.updated', { x: 1 }, 'corrupt-endpoint-1')).resolves.toBeDefined();
  const one = await svc.api(`/v1/partners/${p}/endpoints/${bad.id}`);
  expect(one.status).toBe(500);
  expect(((await one.json()) as { type: string; detail: string }).detail).toContain(`endpoint record ${bad.id}`);
}, 60_000);

test.each([
  ['truncated JSON', '{"id":"'],
  ['JSON null', 'null'],
])('a reconciliation run whose record is %s: left out of the partner\'s list and the ops list; its own read is a typed 500', async (what, raw) => {
  const p = `rc${what.length}`;
  await createPartner(svc, p);
  const run = async () => ((await (await svc.api(`/v1/partners/${p}/reconciliations`, { json: { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' } })).json()) as { id: string }).id;
  const bad = await run();
  const good = await run();
  await svc.rt.redis.set(svc.rt.keys.reconciliation(bad), raw);
  const r = await svc.api(`/v1/partners/${p}/reconciliations`);
  expect(r.status).toBe(200);
  expect(((await r.json()) as { reconciliations: { id: string }[] }).reconciliations.map((x) => x.id)).toEqual([good]);
  const ops = await svc.api('/v1/ops/reconciliations');
  expect(ops.status).toBe(200);
  const listed = ((await ops.json()) as { reconciliations: { id: string }[] }).reconciliations.map((x) => x.id);
  expect(listed).toContain(good);
  expect(listed).not.toContain(bad);
  const one = await svc.api(`/v1/reconciliations/${bad}`);
  expect(one.status).toBe(500);
  expect(((await one.json()) as { detail: string }).detail).toContain(`reconciliation record ${bad}`);
}, 60_000);

test('the order-event sweep passes over what does not read (a pending member, an event that is not JSON, a key of another type) and hands on the rest', async () => {
  const p = 'oes';
  const secret = await createPartner(svc, p);
  expect((await sendEvent(svc, p, secret, orderEvent('good'))).status).toBe(202);
  const k = svc.rt.keys;
  await svc.rt.redis.zadd(k.pendingOrders(), 0, 'hand edit');
  await svc.rt.redis.zadd(k.pendingOrders(), 0, JSON.stringify([p, 'notjson']));
  await svc.rt.redis.xadd(k.orderEvents(p, 'notjson'), '1-1', 'event', '{"type":"order.cre');
  await svc.rt.redis.hset(k.orderPending(p, 'notjson'), '1-1', '0');
  // The same order's next event reads: handed on (the unreadable one is dropped, not the whole order).
  await svc.rt.redis.xadd(k.orderEvents(p, 'notjson'), '1-2', 'event', JSON.stringify(orderEvent('notjson')));
  await svc.rt.redis.hset(k.orderPending(p, 'notjson'), '1-2', '0');
  await svc.rt.redis.zadd(k.pendingOrders(), 0, JSON.stringify([p, 'wrongtype']));
  await svc.rt.redis.set(k.orderPending(p, 'wrongtype'), 'hand edit');
  const before = await counted('order');

  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 10 });
  const r = await sweep.sweep();
  expect(r.handled).toBeGreaterThanOrEqual(1);
  expect((await svc.api(`/v1/partners/${p}/attribution/orders/good`)).status).toBe(200);
  expect((await svc.api(`/v1/partners/${p}/attribution/orders/notjson`)).status).toBe(200);
  expect(await svc.rt.redis.zscore(k.pendingOrders(), JSON.stringify([p, 'notjson']))).toBeNull();
  expect(await counted('order')).toBeGreaterThanOrEqual(before + 3);
}, 60_000);

test("the order-event sweep passes over an order whose event log is a key of another type alone, logged once, counted; another partner's order is handed on", async () => {
  const [p, q] = ['oew', 'oew2'];
  // What a sweep counts for the orders earlier tests left unreadable (they stay pending): this order adds one a sweep.
  const countOf = async (sweep: OrderEventSweep): Promise<number> => {
    const before = await counted('order');
    await expect(sweep.sweep()).resolves.toBeDefined();
    return (await counted('order')) - before;
  };
  const leftovers = await countOf(new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 10 }));
  await createPartner(svc, p);
  const secret = await createPartner(svc, q);
  const k = svc.rt.keys;
  // p's order: its pending mark fine, its event log a string (xrange: WRONGTYPE).
  await svc.rt.redis.zadd(k.pendingOrders(), 0, JSON.stringify([p, 'streamwrong']));
  await svc.rt.redis.hset(k.orderPending(p, 'streamwrong'), '1-1', '0');
  await svc.rt.redis.set(k.orderEvents(p, 'streamwrong'), 'hand edit');
  expect((await sendEvent(svc, q, secret, orderEvent('fine'))).status).toBe(202);
  const log = { error: jest.fn(), info: jest.fn(), warn: jest.fn(), debug: jest.fn() };
  const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, log as unknown as Logger, { graceMs: 0, pageSize: 10 });
  const first = await countOf(sweep);
  expect((await svc.api(`/v1/partners/${q}/attribution/orders/fine`)).status).toBe(200);
  const second = await countOf(sweep);
  const logged = log.error.mock.calls.filter((c) => (c[0] as { orderId?: string }).orderId === 'streamwrong');
  expect(logged).toHaveLength(1);
  expect([first, second]).toEqual([leftovers + 1, leftovers + 1]);
  // Left for an operator: still pending.
  expect(await svc.rt.redis.zscore(k.pendingOrders(), JSON.stringify([p, 'streamwrong']))).not.toBeNull();
}, 60_000);

test('a sync whose partner hash (its target records) is a key of another type fails naming it and frees the lease, on a Cluster too (whose target read runs beside the lease step)', async () => {
  const p = 'tw';
  await partnerWithShows(p, ['s1']);
  await youtubeTarget(p);
  const { key } = svc.rt.partners.targetField(p, `${p}-yt`);
  await svc.rt.redis.del(key);
  await svc.rt.redis.set(key, 'hand edit');
  const job = { partnerId: p, showId: 's1', targetId: `${p}-yt` };

  // Before, on a Cluster: the read's WRONGTYPE thrown by Promise.all after the lease was taken, so the
  // lease stayed for its PTTL and the next run answered "delay: mirror owned by another run". Each
  // topology's path: on a single Redis the Cluster's is forced too (its commands run there alike).
  const paths = svc.rt.redis.isCluster ? [true] : [false, true];
  for (const cluster of paths) {
    const redis = svc.rt.redis as { isCluster: boolean };
    const was = redis.isCluster;
    redis.isCluster = cluster;
    try {
      await expect(svc.rt.syncService.sync(job)).rejects.toThrow(`partner record ${p}`);
      expect(await svc.rt.redis.exists(svc.rt.keys.mirrorLease(p, 's1', `${p}-yt`))).toBe(0);
      await expect(svc.rt.syncService.sync(job)).rejects.toThrow(/another type/);
    } finally {
      redis.isCluster = was;
    }
  }
}, 60_000);

test("a partner's show index of another type leaves only that partner's part off GET /v1/ops/board, counted in `unreadable`; a show record that does not read, that show", async () => {
  const now = Date.now();
  const soon = new Date(now + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const [bad, good] = ['obw', 'obg'];
  // What the board leaves off for earlier tests' partners (their walks done by this read), before these two exist.
  const base = ((await (await svc.api('/v1/ops/board')).json()) as { unreadable?: number }).unreadable ?? 0;
  for (const p of [bad, good]) {
    const secret = await createPartner(svc, p);
    for (const id of ['b1', 'b2']) expect((await sendEvent(svc, p, secret, showEvent('show.scheduled', sampleShow(id, { scheduledAt: soon }), soon))).status).toBe(202);
  }
  await svc.rt.redis.del(svc.rt.keys.partnerShows(bad));
  await svc.rt.redis.set(svc.rt.keys.partnerShows(bad), 'hand edit');
  await svc.rt.redis.hset(svc.rt.keys.desired(good, 'b2'), 'snap', 'null');

  const before = await counted('show');
  const r = await svc.api('/v1/ops/board');
  expect(r.status).toBe(200);
  const board = (await r.json()) as { shows: { partnerId: string; showId: string }[]; unreadable?: number };
  const mine = board.shows.filter((s) => s.partnerId === bad || s.partnerId === good).map((s) => `${s.partnerId}/${s.showId}`);
  expect(mine).toEqual([`${good}/b1`]);
  // bad's part and good's b2, each once; counted once each in the metric (bad's walk and its count both fail: counted twice before).
  expect(board.unreadable).toBe(base + 2);
  expect((await counted('show')) - before).toBe(board.unreadable);
}, 60_000);

test("a show whose desired state is a key of another type when the partner's live shows are first walked leaves that show off GET /v1/ops/board, not the partner's other shows; the walk is done once", async () => {
  const soon = new Date(Date.now() + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const p = 'obl';
  const secret = await createPartner(svc, p);
  for (const id of ['b1', 'b2']) expect((await sendEvent(svc, p, secret, showEvent('show.scheduled', sampleShow(id, { scheduledAt: soon }), soon))).status).toBe(202);
  await svc.rt.redis.del(svc.rt.keys.desired(p, 'b2'));
  await svc.rt.redis.set(svc.rt.keys.desired(p, 'b2'), 'hand edit');

  // Before: the walk's WRONGTYPE left the whole partner off (`unreadable`), and every board walked again.
  for (let read = 0; read < 2; read++) {
    const board = (await (await svc.api('/v1/ops/board')).json()) as { shows: { partnerId: string; showId: string }[]; unreadable?: number };
    expect(board.shows.filter((s) => s.partnerId === p).map((s) => s.showId)).toEqual(['b1']);
  }
  expect(await svc.rt.redis.exists(svc.rt.keys.partnerLiveBackfilled(p))).toBe(1);
}, 60_000);

describe('an unavailable or refusing Redis is no unreadable record (NOPERM: neither a key of another type nor down)', () => {
  afterEach(() => allowAllWrites(svc.rt.redis as unknown as Redis));

  test('the order-event sweep tick fails and the order stays pending', async () => {
    const p = 'oer';
    const secret = await createPartner(svc, p);
    expect((await sendEvent(svc, p, secret, orderEvent('refused'))).status).toBe(202);
    await refuseAccessTo(svc.rt.redis as unknown as Redis, svc.rt.keys.orderEvents(p, 'refused'));
    const sweep = new OrderEventSweep(svc.rt.orderEvents, svc.rt.attribution, createLogger('silent'), { graceMs: 0, pageSize: 1000 });
    await expect(sweep.sweep()).rejects.toThrow(/NOPERM/);
    await allowAllWrites(svc.rt.redis as unknown as Redis);
    expect(await svc.rt.redis.zscore(svc.rt.keys.pendingOrders(), JSON.stringify([p, 'refused']))).not.toBeNull();
  }, 60_000);

  test('GET /v1/ops/board fails, never a partial 200 that leaves the partner off as unreadable', async () => {
    const soon = new Date(Date.now() + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const p = 'obr';
    const secret = await createPartner(svc, p);
    expect((await sendEvent(svc, p, secret, showEvent('show.scheduled', sampleShow('b1', { scheduledAt: soon }), soon))).status).toBe(202);
    expect((await svc.api('/v1/ops/board')).status).toBe(200); // its live shows walked
    await refuseAccessTo(svc.rt.redis as unknown as Redis, svc.rt.keys.partnerShows(p));
    const r = await svc.api('/v1/ops/board');
    expect(r.status).toBeGreaterThanOrEqual(500);
  }, 60_000);

  test("a sync whose target read fails beside the lease step (a Cluster's path) frees the lease and fails with that error", async () => {
    const p = 'tr';
    await partnerWithShows(p, ['s1']);
    await youtubeTarget(p);
    const redis = svc.rt.redis as { isCluster: boolean };
    const was = redis.isCluster;
    redis.isCluster = true;
    try {
      await refuseAccessTo(svc.rt.redis as unknown as Redis, svc.rt.partners.targetField(p, `${p}-yt`).key);
      await expect(svc.rt.syncService.sync({ partnerId: p, showId: 's1', targetId: `${p}-yt` })).rejects.toThrow(/NOPERM/);
      expect(await svc.rt.redis.exists(svc.rt.keys.mirrorLease(p, 's1', `${p}-yt`))).toBe(0);
    } finally {
      redis.isCluster = was;
    }
  }, 60_000);
});

test.each([
  ['truncated JSON', '{"code":"'],
  ['JSON null', 'null'],
  ['an object without its fields', '{"code":"x"}'],
])('a link record that is %s: its redirect is a typed 500 naming the link, never its content', async (what, raw) => {
  const code = `corruptlink${what.length}`;
  await svc.rt.redis.set(svc.rt.keys.link(code), raw);
  const r = await svc.api(`/l/${code}`, { redirect: 'manual' });
  expect(r.status).toBe(500);
  const problem = (await r.json()) as { type: string; detail: string };
  expect(problem.type).toBe(TYPE);
  expect(problem.detail).toContain(`link record ${code}`);
}, 30_000);

test.each([
  ['truncated JSON', '{"state":"sending","bitr'],
  ['JSON null', 'null'],
  ['an object without its fields', '{"state":"sending"}'],
])("a relay status that is %s: the show's views are a typed 500 naming it; the ops board leaves that show off (counted), the others stay; the relay's own read carries nothing", async (what, raw) => {
  const soon = new Date(Date.now() + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const p = `rs${what.length}`;
  const secret = await createPartner(svc, p);
  for (const id of ['s1', 's2']) expect((await sendEvent(svc, p, secret, showEvent('show.scheduled', sampleShow(id, { scheduledAt: soon }), soon))).status).toBe(202);
  await youtubeTarget(p);
  const base = ((await (await svc.api('/v1/ops/board')).json()) as { unreadable?: number }).unreadable ?? 0;
  const key = svc.rt.keys.relayStatus(p, 's1', `${p}-yt`);
  await svc.rt.redis.set(key, raw);
  const before = await counted('relayStatus');

  for (const path of [`/v1/partners/${p}/shows/s1`, `/v1/ops/partners/${p}/shows/s1`]) {
    const one = await svc.api(path);
    expect(one.status).toBe(500);
    const problem = (await one.json()) as { type: string; detail: string };
    expect(problem.type).toBe(TYPE);
    expect(problem.detail).toContain(`relayStatus record s1/${p}-yt`);
  }
  const board = await svc.api('/v1/ops/board');
  expect(board.status).toBe(200);
  const body = (await board.json()) as { shows: { partnerId: string; showId: string }[]; unreadable?: number };
  expect(body.shows.filter((s) => s.partnerId === p).map((s) => s.showId)).toEqual(['s2']);
  expect(body.unreadable).toBe(base + 1);
  // The relay's pass: nothing carried, reported once; it writes the status afresh.
  const left = jest.fn();
  expect(await svc.rt.relay.statuses(p, 's1', [`${p}-yt`], left)).toEqual([null]);
  expect(left).toHaveBeenCalledTimes(1);
  expect(await counted('relayStatus')).toBeGreaterThanOrEqual(before + 4);
}, 60_000);

test.each([
  ['truncated JSON', async (key: string) => svc.rt.redis.set(key, '{"id":"')],
  ['an object without its role', async (key: string) => svc.rt.redis.set(key, '{"id":"admin"}')],
  ['a key of another type', async (key: string) => {
    await svc.rt.redis.del(key);
    await svc.rt.redis.hset(key, 'id', 'admin');
  }],
])('a console session whose record is %s: /admin/queues answers the typed 500 naming the session; a sign-in with its cookie replaces it, a sign-out ends it', async (_what, corrupt) => {
  const signIn = async (cookie?: string): Promise<string> => {
    const r = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) }, body: JSON.stringify({ key: ADMIN_KEY }) });
    expect(r.status).toBe(201);
    return r.headers.get('set-cookie')!.split(';')[0]!;
  };
  const keyOf = (cookie: string): string => svc.rt.keys.consoleSession(createHash('sha256').update(cookie.split('=')[1]!).digest('hex'));
  const queues = (cookie: string) => fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } });
  const before = await counted('session');

  const cookie = await signIn();
  await corrupt(keyOf(cookie));
  const r = await queues(cookie);
  expect(r.status).toBe(500);
  expect(r.headers.get('content-type')).toContain('application/problem+json');
  const problem = (await r.json()) as { type: string; detail: string };
  expect(problem.type).toBe(TYPE);
  expect(problem.detail).toContain('session record');
  // Signing in again with it (the console's renewal) works, and ends it.
  const renewed = await signIn(cookie);
  expect((await queues(renewed)).status).toBe(200);
  expect(await svc.rt.redis.exists(keyOf(cookie))).toBe(0);
  // A sign-out of another such session ends it.
  const other = await signIn();
  await corrupt(keyOf(other));
  expect((await fetch(`${svc.url}/v1/ops/session`, { method: 'DELETE', headers: { cookie: other } })).status).toBe(204);
  expect(await svc.rt.redis.exists(keyOf(other))).toBe(0);
  expect(await counted('session')).toBeGreaterThan(before);
}, 60_000);

test('a console sign-in with a key whose record says "partnerId":null (a record that reads): its session reads too, /admin/queues answers 200 (not the typed 500 of a corrupt session)', async () => {
  const created = await svc.api('/v1/api-keys', { json: { role: 'admin' } });
  expect(created.status).toBe(201);
  const { key } = (await created.json()) as { key: string };
  const at = svc.rt.keys.apiKey(createHash('sha256').update(key).digest('hex'));
  const record = JSON.parse((await svc.rt.redis.get(at))!) as Record<string, unknown>;
  await svc.rt.redis.set(at, JSON.stringify({ ...record, partnerId: null }));
  const signIn = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  expect(signIn.status).toBe(201);
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
  // Before: the session stored the principal as the key record had it, and its read refused the null.
  expect((await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie } })).status).toBe(200);
  // Its renewal (a sign-in with the cookie) reads it as the same key's live session.
  const renewed = await fetch(`${svc.url}/v1/ops/session`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ key }) });
  expect(renewed.status).toBe(201);
  expect((await fetch(`${svc.url}/admin/queues/api/queues`, { headers: { cookie: renewed.headers.get('set-cookie')!.split(';')[0]! } })).status).toBe(200);
}, 30_000);

test("the relay's pass over a show whose relay status does not read logs it once (its key, not its content), carries nothing and writes the status afresh; the next pass logs nothing; a status key of another type reads as none, no line, and the pass replaces it", async () => {
  const p = 'rsp';
  const show = 'rsp1';
  const target = `${p}-a`;
  const secret = await createPartner(svc, p);
  await addOfflineWhatnotTarget(svc, p, target);
  expect((await sendEvent(svc, p, secret, showEvent('show.live', sampleShow(show, { state: 'live' }), new Date().toISOString()))).status).toBe(202);
  await linkOperatorMirror(svc, p, show, target, 'op-key', svc.rt.box, 'rtmp://127.0.0.1:9/app');
  const key = svc.rt.keys.relayStatus(p, show, target);
  await svc.rt.redis.set(key, '{"state":"sending","bytesSent":"secret rec');
  const { log, lines } = logSink<{ msg: string; key?: string; showId?: string }>('info');
  const relay = handRunRelay(svc, { log });
  try {
    await relay.tick();
    await relay.tick();
  } finally {
    await relay.close();
  }
  const logged = lines.filter((l) => l.msg.startsWith('relay status does not read'));
  expect(logged).toHaveLength(1);
  expect(logged[0]).toMatchObject({ key, showId: show });
  expect(JSON.stringify(lines)).not.toContain('secret rec');
  // Written afresh by the pass: it reads, its counters from 0.
  const left = jest.fn();
  const [status] = await svc.rt.relay.statuses(p, show, [target], left);
  expect(left).not.toHaveBeenCalled();
  expect(status).toMatchObject({ bytesSent: 0, restarts: 0 });

  // A status key of another type reads as none (MGET's nil: no line), and the pass's SET replaces it.
  await svc.rt.redis.del(key);
  await svc.rt.redis.hset(key, 'state', 'hand edit');
  expect(await svc.rt.relay.statuses(p, show, [target], left)).toEqual([null]);
  const again = handRunRelay(svc, { log });
  try {
    await again.tick();
  } finally {
    await again.close();
  }
  expect(lines.filter((l) => l.msg.startsWith('relay status does not read'))).toHaveLength(1);
  expect(await svc.rt.redis.type(key)).toBe('string');
  expect((await svc.api(`/v1/partners/${p}/shows/${show}`)).status).toBe(200);
}, 30_000);
