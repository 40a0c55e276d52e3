/**
 * API keys (list, revoke, expiry) and the audit log over REST (issue 11 item 4): every operator action
 * route leaves an entry with who / what / when / on which partner, show and target; paging by cursor,
 * filters, and a partner key that reads only its own partner's entries. Real redis-server, real HTTP.
 */
import { createPartner, sampleShow, sendEvent, showEvent, startService, waitFor, type TestService } from '../helpers/service.js';

let svc: TestService;

interface Entry {
  id: string;
  at: string;
  action: string;
  actor: { keyId: string; role: string; name?: string };
  partnerId?: string;
  showId?: string;
  targetId?: string;
  requestId?: string;
  detail?: Record<string, unknown>;
}
interface Page {
  entries: Entry[];
  nextCursor: string | null;
}
interface KeyView {
  id: string;
  role: string;
  partnerId: string | null;
  name: string | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  status: string;
}

async function createKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const r = await svc.api('/v1/api-keys', { json: body });
  expect(r.status).toBe(201);
  return (await r.json()) as { id: string; key: string };
}
async function audit(query: string, key?: string): Promise<Page> {
  const r = await svc.api(`/v1/audit${query}`, key ? { key } : {});
  expect(r.status).toBe(200);
  return (await r.json()) as Page;
}

let operator: { id: string; key: string };
let secretA: string;

beforeAll(async () => {
  svc = await startService();
  secretA = await createPartner(svc, 'pa');
  await createPartner(svc, 'pb');
  operator = await createKey({ role: 'operator', name: 'night shift' });
});
afterAll(async () => {
  await svc.close();
});

describe('API keys', () => {
  test('the list shows role, partner, name, created and last used, never the key or its hash', async () => {
    const p = await createKey({ role: 'partner', partnerId: 'pa', name: 'acme reporting' });
    expect((await svc.api('/v1/partners/pa', { key: p.key })).status).toBe(200);
    const r = await svc.api('/v1/api-keys');
    expect(r.status).toBe(200);
    const text = await r.text();
    const { keys } = JSON.parse(text) as { keys: KeyView[] };
    const mine = keys.find((k) => k.id === p.id)!;
    expect(mine).toMatchObject({ role: 'partner', partnerId: 'pa', name: 'acme reporting', status: 'active', revokedAt: null, expiresAt: null });
    expect(Date.parse(mine.createdAt)).toBeGreaterThan(0);
    expect(mine.lastUsedAt).not.toBeNull();
    const never = keys.find((k) => k.id === operator.id)!;
    expect(never).toMatchObject({ role: 'operator', name: 'night shift', partnerId: null });
    for (const k of [p, operator]) {
      expect(text).not.toContain(k.key);
      expect(text).not.toContain(k.key.slice(-32));
    }
    expect(text).not.toMatch(/"hash"|[0-9a-f]{64}/);
    const one = await svc.api(`/v1/api-keys/${p.id}`);
    expect(await one.json()).toMatchObject({ id: p.id, role: 'partner', partnerId: 'pa' });
    const filtered = (await (await svc.api('/v1/api-keys?partnerId=pa')).json()) as { keys: KeyView[] };
    expect(filtered.keys.map((k) => k.id)).toEqual([p.id]);
  });

  test('a revoked key gets 401 at once, says so, and shows as revoked; revoking twice is harmless', async () => {
    const k = await createKey({ role: 'viewer', name: 'temp' });
    expect((await svc.api('/v1/partners', { key: k.key })).status).toBe(200);
    const r = await svc.api(`/v1/api-keys/${k.id}`, { method: 'DELETE' });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ id: k.id, status: 'revoked' });
    const refused = await svc.api('/v1/partners', { key: k.key });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toMatch(/problem\+json/);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/revoked/);
    expect((await svc.api(`/v1/api-keys/${k.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await svc.api('/v1/api-keys/key_nosuch', { method: 'DELETE' })).status).toBe(404);
    const revocations = await audit(`?action=api_key.revoked`);
    expect(revocations.entries.filter((e) => e.detail?.['keyId'] === k.id)).toHaveLength(1);
  });

  // Found against npm start: 5 DELETEs of one key at once each read it active, each wrote its own
  // revokedAt and each left an api_key.revoked entry.
  test('revocations of one key at once: one audit entry, one revocation time, and the key refused', async () => {
    const k = await createKey({ role: 'operator', name: 'leaked' });
    const rs = await Promise.all(Array.from({ length: 8 }, () => svc.api(`/v1/api-keys/${k.id}`, { method: 'DELETE' })));
    expect(rs.map((r) => r.status)).toEqual(Array(8).fill(200));
    const views = (await Promise.all(rs.map((r) => r.json()))) as KeyView[];
    expect(new Set(views.map((v) => v.revokedAt)).size).toBe(1);
    const listed = (await (await svc.api(`/v1/api-keys/${k.id}`)).json()) as KeyView;
    expect(listed.revokedAt).toBe(views[0]!.revokedAt);
    expect((await svc.api('/v1/partners', { key: k.key })).status).toBe(401);
    const revocations = await audit(`?action=api_key.revoked&limit=500`);
    expect(revocations.entries.filter((e) => e.detail?.['keyId'] === k.id)).toHaveLength(1);
  });

  test('only admin lists or revokes keys', async () => {
    const victim = await createKey({ role: 'viewer' });
    for (const key of [operator.key, (await createKey({ role: 'partner', partnerId: 'pa' })).key]) {
      expect((await svc.api('/v1/api-keys', { key })).status).toBe(403);
      expect((await svc.api(`/v1/api-keys/${victim.id}`, { key, method: 'DELETE' })).status).toBe(403);
    }
    expect((await svc.api('/v1/partners', { key: victim.key })).status).toBe(200);
  });

  test('a key with an expiry works until then and gets 401 after; a past expiry is refused', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const k = await createKey({ role: 'viewer', expiresAt });
    expect((await svc.api('/v1/partners', { key: k.key })).status).toBe(200);
    await waitFor(async () => Date.now() > Date.parse(expiresAt) + 10);
    const r = await svc.api('/v1/partners', { key: k.key });
    expect(r.status).toBe(401);
    expect(((await r.json()) as { detail: string }).detail).toMatch(/expired/);
    expect(((await (await svc.api(`/v1/api-keys/${k.id}`)).json()) as KeyView).status).toBe('expired');
    expect((await svc.api('/v1/api-keys', { json: { role: 'viewer', expiresAt: '2020-01-01T00:00:00Z' } })).status).toBe(400);
    expect((await svc.api('/v1/api-keys', { json: { role: 'viewer', expiresAt: 'tomorrow' } })).status).toBe(400);
  });
});

describe('audit', () => {
  test('operator actions leave entries: who (key id and name), what, when, on which partner/show/target', async () => {
    const t0 = Date.now();
    const k = operator.key;
    expect((await svc.api('/v1/partners/pa/targets?verify=false', { key: k, json: { id: 'pa-wn', platform: 'whatnot', name: 'WN', credentials: { accessToken: 'x' }, baseUrl: 'http://127.0.0.1:9/', commissionRateBps: 100 } })).status).toBe(201);
    expect((await sendEvent(svc, 'pa', secretA, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T10:00:00Z'))).status).toBe(202);
    expect((await svc.api('/v1/partners/pa/shows/s1/mirrors/pa-wn', { key: k, method: 'PUT', json: { externalId: '3f1c2a8e-5b7d-4c9a-9e21-0b6f4d8a7c15' } })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa/shows/s1/mirrors/pa-wn/resync', { key: k, method: 'POST' })).status).toBe(202);
    expect((await svc.api('/v1/partners/pa/targets/pa-wn', { key: k, method: 'PATCH', json: { enabled: false } })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa', { key: k, method: 'PATCH', json: { reconcileCron: '0 4 * * *' } })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa/webhook-secret/rotate', { key: k, method: 'POST' })).status).toBe(200);
    expect((await svc.api('/v1/partners/pa/reconciliations', { key: k, json: { from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z' } })).status).toBe(202);

    const page = await audit(`?partnerId=pa&from=${encodeURIComponent(new Date(t0 - 1000).toISOString())}`);
    const actions = page.entries.map((e) => e.action).reverse();
    expect(actions).toEqual(['target.created', 'mirror.linked', 'mirror.resync', 'target.disabled', 'partner.updated', 'webhook_secret.rotated', 'reconciliation.requested']);
    for (const e of page.entries) {
      expect(e.actor).toEqual({ keyId: operator.id, role: 'operator', name: 'night shift' });
      expect(e.partnerId).toBe('pa');
      expect(Date.parse(e.at)).toBeGreaterThanOrEqual(t0 - 1000);
      expect(e.requestId).toBeTruthy();
    }
    const linked = page.entries.find((e) => e.action === 'mirror.linked')!;
    expect(linked).toMatchObject({ showId: 's1', targetId: 'pa-wn', detail: { externalId: '3f1c2a8e-5b7d-4c9a-9e21-0b6f4d8a7c15' } });
    expect(page.entries.find((e) => e.action === 'partner.updated')!.detail).toMatchObject({ changed: ['reconcileCron'] });
    // No secret in any entry (the rotated secret, the target credentials).
    expect(JSON.stringify(page)).not.toMatch(/whsec_|accessToken|"x"/);
  });

  test('filters: show, target, action (exact and prefix), time range', async () => {
    const byShow = await audit('?showId=s1');
    expect(byShow.entries.map((e) => e.action).sort()).toEqual(['mirror.linked', 'mirror.resync']);
    const byTarget = await audit('?targetId=pa-wn');
    expect(byTarget.entries.map((e) => e.action).sort()).toEqual(['mirror.linked', 'mirror.resync', 'target.created', 'target.disabled']);
    expect((await audit('?action=mirror.linked')).entries.map((e) => e.action)).toEqual(['mirror.linked']);
    expect((await audit('?action=mirror.')).entries.map((e) => e.action).sort()).toEqual(['mirror.linked', 'mirror.resync']);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await audit(`?from=${encodeURIComponent(future)}`)).entries).toEqual([]);
    const all = await audit('?limit=500');
    const last = all.entries[0]!;
    const before = await audit(`?to=${encodeURIComponent(last.at)}&limit=500`);
    expect(before.entries.every((e) => Date.parse(e.at) <= Date.parse(last.at))).toBe(true);
    // from = to: an empty range, as for the attribution reports (it was a 400); only a reversed range is refused.
    const at = encodeURIComponent(last.at);
    expect((await audit(`?from=${at}&to=${at}`)).entries).toEqual([]);
    expect((await audit(`?from=${at}&to=${at}&partnerId=pa`)).entries).toEqual([]);
    const reversed = await svc.api(`/v1/audit?from=${encodeURIComponent(future)}&to=${at}`);
    expect(reversed.status).toBe(400);
    expect(await reversed.json()).toMatchObject({ detail: 'from must not be after to', errors: [{ path: 'querystring.from', message: 'must not be after to' }] });
    expect((await svc.api('/v1/audit?from=yesterday')).status).toBe(400);
    expect((await svc.api('/v1/audit?cursor=abc')).status).toBe(400);
  });

  test('paging with the cursor returns every entry once, newest first', async () => {
    for (let i = 0; i < 7; i++) expect((await svc.api('/v1/partners/pb/webhook-secret/rotate', { method: 'POST' })).status).toBe(200);
    const whole = await audit('?limit=500');
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let n = 0; n < 100; n++) {
      const page: Page = await audit(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.entries.length).toBeLessThanOrEqual(3);
      seen.push(...page.entries.map((e) => e.id));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(whole.entries.map((e) => e.id));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThan(12);
    // Filtered paging too.
    const pb: string[] = [];
    cursor = null;
    do {
      const page: Page = await audit(`?partnerId=pb&action=webhook_secret.rotated&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      pb.push(...page.entries.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pb).toHaveLength(7);
  });

  test("rotating a show's stream key is audited like every other action: in the whole log, with the key's role and name and the request id", async () => {
    expect((await sendEvent(svc, 'pa', secretA, showEvent('show.scheduled', sampleShow('s-rot'), '2026-11-24T10:00:00Z'))).status).toBe(202);
    const r = await svc.api('/v1/partners/pa/shows/s-rot/ingest/rotate', { key: operator.key, method: 'POST', headers: { 'x-request-id': 'rotate-req-1' } });
    expect(r.status).toBe(200);
    const { ingest } = (await r.json()) as { ingest: { streamKey: string } };
    // The whole log (no partner filter) is what an auditor reads first.
    const all = await audit('?action=show.ingest_rotated');
    expect(all.entries).toHaveLength(1);
    expect(all.entries[0]).toMatchObject({ action: 'show.ingest_rotated', partnerId: 'pa', showId: 's-rot', requestId: 'rotate-req-1', actor: { keyId: operator.id, role: 'operator', name: 'night shift' } });
    expect((await audit('?partnerId=pa&action=show.ingest_rotated')).entries.map((e) => e.requestId)).toEqual(['rotate-req-1']);
    expect(JSON.stringify(all)).not.toContain(ingest.streamKey);
  });

  test("a partner key reads only its own partner's audit", async () => {
    const kb = await createKey({ role: 'partner', partnerId: 'pb' });
    const own = await audit('?limit=500', kb.key);
    expect(own.entries.length).toBeGreaterThan(0);
    expect(own.entries.every((e) => e.partnerId === 'pb')).toBe(true);
    expect(JSON.stringify(own)).not.toContain('night shift');
    expect((await svc.api('/v1/audit?partnerId=pa', { key: kb.key })).status).toBe(403);
    expect((await svc.api('/v1/audit?showId=s1', { key: kb.key }).then((r) => r.json())) as Page).toMatchObject({ entries: [] });
    // Viewers read everything; key creation for pb shows up in pb's log.
    const viewer = await createKey({ role: 'viewer' });
    expect((await audit('?action=api_key.created&partnerId=pb', viewer.key)).entries.some((e) => e.detail?.['keyId'] === kb.id)).toBe(true);
  });
});
