/**
 * The ops console's reconciliations and endpoints views and GET /v1/api-keys are paged (limit +
 * cursor, as the API's other lists; GET /v1/api-keys without `limit` still answers every key): they answered every partner's runs and endpoints (every
 * endpoint's attempt log read one after another) and every key in one response. A walk of the pages
 * lists each item once, in the list's order; a bad limit or cursor is a 400 problem. Real Redis, HTTP.
 */
import { ADMIN_KEY, createPartner, startService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startService({ workers: false, scheduler: false, dispatch: false });
  for (const p of ['pa', 'pb']) await createPartner(svc, p);
});

afterAll(async () => {
  await svc?.close();
});

async function get<T>(path: string): Promise<{ status: number; type: string | null; body: T }> {
  const r = await svc.api(path, { key: ADMIN_KEY });
  return { status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as T };
}

/** Every page of `path` (limit `limit`), and the items of each. */
async function walk<T>(path: string, list: string, limit: number): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const r: { status: number; body: Record<string, unknown> } = await get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status).toBe(200);
    pages.push(r.body[list] as T[]);
    cursor = r.body['nextCursor'] as string | null;
    expect(pages.length).toBeLessThan(20);
  } while (cursor);
  return pages;
}

async function expectBadQuery(path: string): Promise<void> {
  const r = await get<{ status: number }>(path);
  expect([r.status, r.type, r.body.status]).toEqual([400, expect.stringMatching(/^application\/problem\+json/), 400]);
}

test('the reconciliations view: pages of `limit` runs, newest first across partners, each run once', async () => {
  const day = 86_400_000;
  const base = Date.parse('2026-01-01T00:00:00Z');
  for (let i = 0; i < 7; i++) {
    const partner = i % 2 === 0 ? 'pa' : 'pb';
    const r = await svc.api(`/v1/partners/${partner}/reconciliations`, { key: ADMIN_KEY, json: { from: new Date(base + i * day).toISOString(), to: new Date(base + (i + 1) * day).toISOString() } });
    expect(r.status).toBe(202);
  }
  const pages = await walk<{ id: string; partnerId: string; createdAt: string }>('/v1/ops/reconciliations', 'reconciliations', 3);
  expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
  const runs = pages.flat();
  expect(new Set(runs.map((r) => r.id)).size).toBe(7);
  expect(new Set(runs.map((r) => r.partnerId))).toEqual(new Set(['pa', 'pb']));
  const created = runs.map((r) => r.createdAt);
  expect(created).toEqual([...created].sort().reverse());
  // A partner key: its own partner's runs only, paged the same way.
  const all = await get<{ reconciliations: unknown[]; nextCursor: string | null }>('/v1/ops/reconciliations');
  expect([all.body.reconciliations.length, all.body.nextCursor]).toEqual([7, null]);
  await expectBadQuery('/v1/ops/reconciliations?limit=0');
  await expectBadQuery('/v1/ops/reconciliations?limit=101');
  await expectBadQuery('/v1/ops/reconciliations?cursor=not!a!cursor');
  await expectBadQuery('/v1/ops/reconciliations?cursor=3');
});

test("the endpoints view: pages of `limit` endpoints, disabled and failing first, each once, with the page's recent failures", async () => {
  const made: string[] = [];
  for (let i = 0; i < 5; i++) {
    const partner = i < 3 ? 'pa' : 'pb';
    const r = await svc.api(`/v1/partners/${partner}/endpoints`, { key: ADMIN_KEY, json: { url: `https://hooks${i}.example.com/in`, events: ['mirror.updated'] } });
    expect(r.status).toBe(201);
    made.push(`${partner}/${((await r.json()) as { id: string }).id}`);
  }
  const [pb, pbEndpoint] = made[4]!.split('/') as [string, string];
  await svc.rt.outbound.endpoints.disable(pb, pbEndpoint, 'test');
  const [pa, paEndpoint] = made[1]!.split('/') as [string, string];
  await svc.rt.outbound.endpoints.recordFailure(pa, paEndpoint, Date.now() - 60_000);
  await svc.rt.outbound.endpoints.addAttempt(pa, paEndpoint, { messageId: 'm1', eventType: 'mirror.updated', attempt: 1, run: 1, trigger: 'initial', at: new Date().toISOString(), success: false, statusCode: 500, error: 'HTTP 500', durationMs: 3 } as never);
  const pages = await walk<{ id: string; partnerId: string; recentFailures: { messageId: string }[] }>('/v1/ops/endpoints', 'endpoints', 2);
  expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
  const listed = pages.flat().map((e) => `${e.partnerId}/${e.id}`);
  expect(listed.slice(0, 2)).toEqual([made[4], made[1]]);
  expect([...listed].sort()).toEqual([...made].sort());
  expect(pages[0]![1]!.recentFailures.map((f) => f.messageId)).toEqual(['m1']);
  await expectBadQuery('/v1/ops/endpoints?limit=0');
  await expectBadQuery('/v1/ops/endpoints?cursor=not!a!cursor');
  await expectBadQuery(`/v1/ops/endpoints?cursor=${Buffer.from(JSON.stringify([0, 'pa'])).toString('base64url')}`);
});

test('GET /v1/api-keys: pages of `limit` keys, oldest first, each once; filters page too', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await svc.api('/v1/api-keys', { key: ADMIN_KEY, json: { role: i % 2 === 0 ? 'viewer' : 'partner', ...(i % 2 === 0 ? {} : { partnerId: 'pa' }), name: `k${i}` } });
    expect(r.status).toBe(201);
  }
  const pages = await walk<{ id: string; createdAt: string; partnerId: string | null }>('/v1/api-keys', 'keys', 2);
  const keys = pages.flat();
  expect(pages.every((p) => p.length <= 2)).toBe(true);
  expect(pages.at(-1)!.length).toBeGreaterThan(0);
  expect(new Set(keys.map((k) => k.id)).size).toBe(keys.length);
  expect(keys.length).toBeGreaterThanOrEqual(5);
  const created = keys.map((k) => k.createdAt);
  expect(created).toEqual([...created].sort());
  const partnerKeys = await walk<{ partnerId: string | null }>('/v1/api-keys?partnerId=pa', 'keys', 1);
  expect(partnerKeys.map((p) => p.length)).toEqual([1, 1]);
  await expectBadQuery('/v1/api-keys?limit=0');
  await expectBadQuery('/v1/api-keys?limit=201');
  await expectBadQuery('/v1/api-keys?cursor=%%%');
});

test('GET /v1/api-keys without `limit` answers every key, as the unpaged list did (CONTRACT.md)', async () => {
  const before = (await get<{ keys: unknown[] }>('/v1/api-keys?limit=200')).body.keys.length;
  for (let i = 0; i < 60; i += 10) {
    const made = await Promise.all(Array.from({ length: 10 }, (_, j) => svc.api('/v1/api-keys', { key: ADMIN_KEY, json: { role: 'viewer', name: `all${i + j}` } })));
    expect(made.map((r) => r.status)).toEqual(Array(10).fill(201));
  }
  const r = await get<{ keys: { name: string | null }[]; nextCursor: string | null }>('/v1/api-keys');
  expect(r.status).toBe(200);
  expect(r.body.keys.length).toBe(before + 60);
  expect(r.body.keys.filter((k) => k.name?.startsWith('all')).length).toBe(60);
  expect(r.body.nextCursor).toBeNull();
});
