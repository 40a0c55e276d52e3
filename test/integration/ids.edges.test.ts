/**
 * Ids at the edges of what the contract allows, in URL paths, keys and links: `.` and `..`, 128
 * characters (and platform order ids up to 256), ':' inside ids, platform show ids a platform could
 * never give. Once five files (dot-ids, long-ids, tenant-key-collision, long-order-ids,
 * link-external-id), each of which started its own redis-server and service for one to eight cases (CI
 * time: docs/testing.md). One service for all, with startService's defaults (the api role and the sync
 * dispatcher); each former file is a `describe` of its own, with its own partners ('..', '...', the
 * 128-character one, 'a' and 'a:b', longorders, xid) and targets, and reads only what it made.
 * Real redis-server, real HTTP.
 */
import { randomUUID } from 'node:crypto';
import type { Platform, PlatformOrder } from '../../src/targets/target.adapter.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';
import { ALL_PLATFORMS, CREDENTIALS } from '../helpers/platforms.js';
import { recentIso } from '../helpers/clock.js';
import { startSim, type TestSim } from '../helpers/sim.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('dot-ids', () => {
  /**
   * Ids `.` and `..` in paths. They are valid ids (`[A-Za-z0-9_.:-]{1,128}`), but URL normalisation
   * (fetch, browsers, curl) removes such a path segment, in its `%2E` forms too: a request for show `..`
   * of partner `acme` went to `/v1/partners/acme`, and the ops console could not open such a show. Each
   * dot is written `%252E`; a `/v1` path parameter that decodes to `%2E` or `%2E%2E` (never an id: no
   * `%`) is read as `.` or `..`. Real HTTP (fetch), real redis-server.
   */

  const DOTS = '%252E%252E';
  const DOT = '%252E';

  async function json(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await svc.api(path);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }

  test('partner `..` with shows `.` and `..`: events in, partner, show and ops views out, each by its escaped id', async () => {
    const secret = await createPartner(svc, '..', { name: 'Two dots' });
    for (const id of ['.', '..']) {
      expect((await sendEvent(svc, DOTS, secret, showEvent('show.scheduled', sampleShow(id, { title: `Show ${id}` }), '2026-11-24T10:00:00Z'))).status).toBe(202);
    }
    expect(await json(`/v1/partners/${DOTS}`)).toMatchObject({ status: 200, body: { id: '..', name: 'Two dots' } });
    expect(await json(`/v1/partners/${DOTS}/shows/${DOT}`)).toMatchObject({ status: 200, body: { show: { id: '.', title: 'Show .' } } });
    expect(await json(`/v1/partners/${DOTS}/shows/${DOTS}`)).toMatchObject({ status: 200, body: { show: { id: '..', title: 'Show ..' } } });
    expect(await json(`/v1/partners/${DOTS.toLowerCase()}/shows/${DOT.toLowerCase()}`)).toMatchObject({ status: 200, body: { show: { id: '.' } } });
    expect(await json(`/v1/ops/partners/${DOTS}/shows/${DOTS}`)).toMatchObject({ status: 200, body: { show: { id: '..' } } });
  });

  test('only a whole `.` or `..` is read so: `%2E` inside an id, or three escaped dots, stays what it is (no id has a `%`); `...` needs no escape', async () => {
    await createPartner(svc, '...');
    expect(await json('/v1/partners/...')).toMatchObject({ status: 200, body: { id: '...' } });
    for (const path of ['/v1/partners/a%252Eb', `/v1/partners/${DOTS}%252E`, '/v1/partners/%252E%252E%252E']) {
      const r = await json(path);
      expect([path, r.status]).toEqual([path, 400]);
    }
  });
});

describe('long-ids', () => {
  /**
   * Ids of the contract's full length, 128 characters ([A-Za-z0-9_.:-]{1,128}), in the URL paths. The
   * router refused any path parameter over 100 characters with 414, so a partner whose 120-character id
   * POST /v1/partners had accepted (201) could send no event at all, and a show or target with such an
   * id, stored from an event or a POST, could not be read, changed, linked or resynced.
   */

  const id128 = (head: string): string => (head + ':' + 'x'.repeat(128)).slice(0, 128);

  test('a partner, show and target with 128-character ids are reachable at every route that names them', async () => {
    const partnerId = id128('partner');
    const showId = id128('show');
    const targetId = id128('target');
    expect([partnerId.length, showId.length, targetId.length]).toEqual([128, 128, 128]);
    const secret = await createPartner(svc, partnerId);

    const ev = await sendEvent(svc, partnerId, secret, showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'));
    expect([ev.status, await ev.text()]).toEqual([202, expect.stringContaining('"duplicate":false')]);

    const t = await svc.api(`/v1/partners/${partnerId}/targets?verify=false`, { json: { id: targetId, platform: 'tiktok', name: 'TT', credentials: CREDENTIALS.tiktok, commissionRateBps: 500 } });
    expect(t.status).toBe(201);

    const answers: [string, number][] = [];
    const call = async (path: string, init?: Parameters<TestService['api']>[1]): Promise<void> => {
      const r = await svc.api(path, init);
      answers.push([path.replace(/x{20,}/g, '…').slice(0, 80) + ' ' + (init?.method ?? (init?.json ? 'POST' : 'GET')), r.status]);
    };
    await call(`/v1/partners/${partnerId}`);
    await call(`/v1/partners/${partnerId}/shows/${showId}`);
    await call(`/v1/partners/${partnerId}/targets/${targetId}`, { method: 'PATCH', json: { name: 'renamed' } });
    await call(`/v1/partners/${partnerId}/shows/${showId}/mirrors/${targetId}`, { method: 'PUT', json: { externalId: '7301234567890123456' } });
    await call(`/v1/partners/${partnerId}/shows/${showId}/mirrors/${targetId}/resync`, { method: 'POST', json: {} });
    expect(answers.filter(([, status]) => status < 200 || status >= 300)).toEqual([]);

    const doc = (await (await svc.api(`/v1/partners/${partnerId}/shows/${showId}`)).json()) as { show: { id: string }; mirrors: { targetId: string; externalId: string | null }[] };
    expect(doc.show.id).toBe(showId);
    expect(doc.mirrors).toEqual([expect.objectContaining({ targetId, externalId: '7301234567890123456' })]);

    // One character more is no id: still refused before any route runs.
    const over = await sendEvent(svc, partnerId + 'x', secret, showEvent('show.scheduled', sampleShow(showId), '2026-11-24T17:00:00Z'));
    expect(over.status).toBe(414);
  }, 60_000);
});

describe('tenant-key-collision', () => {
  /**
   * Tenant isolation when ids contain ':' (the contract's ids are `[A-Za-z0-9_.:-]{1,128}`). Key parts
   * are joined with ':', so before keyPart (src/store/keys.ts) partner "a" + show "b:c" and partner
   * "a:b" + show "c" were one key (`{s:a:b:c}`): partner "a:b" read partner "a"'s show (with its ingest
   * stream key) and overwrote it, and a webhook-id claim of one partner answered "duplicate" for the
   * other's event. Real redis-server, real HTTP.
   */
  let secretA: string;
  let secretAB: string;

  beforeAll(async () => {
    secretA = await createPartner(svc, 'a');
    secretAB = await createPartner(svc, 'a:b');
  }, 60_000);

  test("one partner's show is neither visible to nor writable by another partner whose id ends the same key", async () => {
    const r1 = await sendEvent(svc, 'a', secretA, showEvent('show.scheduled', sampleShow('b:c', { title: 'private show of a' }), '2026-11-24T17:00:00Z'));
    expect(r1.status).toBe(202);

    // Partner a:b never sent a show "c".
    const k = await svc.api('/v1/api-keys', { json: { role: 'partner', partnerId: 'a:b' } });
    const { key } = (await k.json()) as { key: string };
    const seen = await svc.api('/v1/partners/a:b/shows/c', { key });
    expect(seen.status).toBe(404);

    // Partner a:b's own show "c" must not change partner a's show "b:c".
    const r2 = await sendEvent(svc, 'a:b', secretAB, showEvent('show.cancelled', sampleShow('c', { title: 'a:b wrote this', state: 'cancelled' }), '2026-11-24T18:00:00Z'));
    expect(r2.status).toBe(202);
    const a = (await (await svc.api('/v1/partners/a/shows/b:c')).json()) as { show: { title: string; state: string } };
    expect(a.show).toMatchObject({ title: 'private show of a', state: 'scheduled' });
  });

  test("a webhook-id of one partner is not a duplicate of another partner's", async () => {
    const r1 = await sendEvent(svc, 'a', secretA, showEvent('show.scheduled', sampleShow('s-a'), '2026-11-24T17:00:00Z'), { webhookId: 'b:msg1' });
    expect(r1.status).toBe(202);
    const r2 = await sendEvent(svc, 'a:b', secretAB, showEvent('show.scheduled', sampleShow('s-ab'), '2026-11-24T17:00:00Z'), { webhookId: 'msg1' });
    expect(r2.status).toBe(202);
    expect((await svc.api('/v1/partners/a:b/shows/s-ab')).status).toBe(200);
  });
});

describe('long-order-ids', () => {
  /**
   * A platform's order ids are its own, kept up to 256 characters (longer ones are refused at ingest),
   * and the order view (`GET …/attribution/orders/{orderId}?targetId=`) declares 256. The router refused
   * every path segment over 128 characters with 414, so an order with a 129–256 character id was stored
   * and counted in reports but could never be viewed. The router now takes 256; every other path
   * parameter (an id, 128 at most) still gets the 414 it got, before the key is checked. Real
   * redis-server, real HTTP.
   */
  const P = 'longorders';

  beforeAll(async () => {
    const secret = await createPartner(svc, P);
    expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T10:00:00Z'))).status).toBe(202);
    const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'tt', platform: 'tiktok', name: 'tt', credentials: { token: 'x' }, commissionRateBps: 1000, enabled: false } });
    expect(t.status).toBe(201);
    await new ExternalShowIndex(svc.rt.redis, svc.rt.keys).set('tt', 'room-1', 's1');
  });

  const order = (orderId: string): PlatformOrder => ({
    orderId,
    externalShowId: 'room-1',
    productId: 'p1',
    clickId: undefined,
    createdAt: recentIso(),
    total: { amount: 5000, currency: 'USD' },
    refunded: { amount: 0, currency: 'USD' },
    status: undefined,
    commission: undefined,
  });

  const idOf = (n: number): string => `ord-${n}-`.padEnd(n, '0123456789abcdef');

  test('a platform order with an id of 129 to 256 characters is stored and can be viewed', async () => {
    for (const n of [128, 129, 200, 256]) {
      const id = idOf(n);
      expect(id).toHaveLength(n);
      expect(await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order(id)], 'report')).toHaveLength(1);
      const r = await svc.api(`/v1/partners/${P}/attribution/orders/${id}?targetId=tt`);
      expect([n, r.status]).toEqual([n, 200]);
      expect(await r.json()).toMatchObject({ orderId: id, source: 'platform_report', total: { amount: 5000, currency: 'USD' } });
    }
    // One more than ingest keeps: refused there, and no view can name it either (the router's 414).
    const over = idOf(257);
    expect(await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order(over)], 'report')).toEqual([]);
    const r = await svc.api(`/v1/partners/${P}/attribution/orders/${over}?targetId=tt`);
    expect(r.status).toBe(414);
  });

  test('every other path parameter over 128 characters is still a 414 problem, before the key is checked', async () => {
    const long = 'x'.repeat(129);
    const longer = 'x'.repeat(200);
    const paths = [
      `/v1/partners/${long}`,
      `/v1/partners/${longer}/shows`,
      `/v1/partners/${P}/shows/${long}`,
      `/v1/partners/${longer}/attribution/orders/o1`, // the partner id of the order view is an id
      [`/v1/partners/${P}/targets/${long}`, 'DELETE'] as const,
      `/v1/reconciliations/${longer}`,
      `/v1/api-keys/${long}`,
      `/ops/${long}`,
      `/l/${longer}`,
    ];
    for (const [path, method] of paths.map((p) => (Array.isArray(p) ? p : ([p, 'GET'] as const)))) {
      for (const key of [undefined, null]) {
        const r = await svc.api(path, { method, ...(key === null ? { key: null } : {}) });
        expect([path.slice(0, 40), key, r.status]).toEqual([path.slice(0, 40), key, 414]);
        expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(r.headers.get('x-request-id')).toBeTruthy();
        expect(await r.json()).toMatchObject({ status: 414, title: 'URI Too Long', detail: 'a path segment is too long' });
      }
    }
    // A partner event to a partner id one character too long (the router's own answer before).
    const ev = await fetch(`${svc.url}/v1/partners/${long}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(ev.status).toBe(414);
    // 128 is an id: the routes answer as they do (unknown partner).
    expect((await svc.api(`/v1/partners/${'x'.repeat(128)}`)).status).toBe(404);
  });
});

describe('link-external-id', () => {
  /**
   * PUT …/mirrors/{targetId} with an id the target's platform could never give (a TikTok room "abc")
   * answered 200 `ready` and stored it, and the next sync failed the mirror. Each platform's malformed
   * ids are a 422 problem naming body.externalId with nothing stored; the ids the simulators issue for a
   * show made by hand (the forms the real platforms use) are linked. Real redis-server, real HTTP.
   */
  let sim: TestSim;
  let secret: string;
  const P = 'xid';

  beforeAll(async () => {
    sim = await startSim();
    secret = await createPartner(svc, P);
    const show = { id: 's1', title: 'Ids', scheduledAt: '2026-11-24T18:00:00Z', state: 'scheduled', products: [], pinnedProductIds: [] };
    expect((await sendEvent(svc, P, secret, { type: 'show.scheduled', occurredAt: '2026-11-24T17:00:00Z', data: { show } })).status).toBe(202);
    for (const platform of ALL_PLATFORMS) {
      const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: platform, platform, name: platform, credentials: { accessToken: 'x' }, commissionRateBps: 100, enabled: false } });
      expect(t.status).toBe(201);
    }
  }, 60_000);
  afterAll(async () => {
    await sim?.close();
  });

  const MALFORMED: Record<Platform, string[]> = {
    // 10 or 12 characters; a character outside url-safe base64; a last character carrying more than 4 bits.
    youtube: ['abc', 'dQw4w9WgXc', 'dQw4w9WgXcQQ', 'dQw4w9WgX.Q', 'dQw4w9WgXcB'],
    tiktok: ['abc', '7301234567890abc456', '07301234567890123456', '-7301234567890123', '9223372036854775808', ' 7301234567890123456'],
    whatnot: ['abc', '3f1c2a8e-5b7d-4c9a-9e21-0b6f4d8a7c1', '3f1c2a8e5b7d4c9a9e210b6f4d8a7c15', '3f1c2a8e-5b7d-4c9a-9e21-0b6f4d8a7c1g'],
    bambuser: ['abc', 'vAtJH3xevpYTLJf1z6K', 'vAtJH3xevpYTLJf1z6Ko1', 'vAtJH3xevpYTLJf1z6K-'],
    facebook: ['abc', '1234567890123456_7890', '01234567890123456', '9223372036854775808'],
  };
  // A refused id is quoted in the problem only up to 64 characters (the body takes 256).
  MALFORMED.bambuser.push('b'.repeat(256));

  /** Well-formed ids at the edges of a form: a UUID in capitals, the largest 64-bit id. */
  const ALSO_LINKED: Partial<Record<Platform, string[]>> = {
    whatnot: ['3F1C2A8E-5B7D-4C9A-9E21-0B6F4D8A7C15'],
    tiktok: ['9223372036854775807'],
    facebook: ['9223372036854775807'],
  };

  test.each(ALL_PLATFORMS)('%s: a malformed show id is a 422 naming body.externalId, nothing stored; an id the simulator issues is linked', async (platform) => {
    for (const externalId of MALFORMED[platform]) {
      const r = await svc.api(`/v1/partners/${P}/shows/s1/mirrors/${platform}`, { method: 'PUT', json: { externalId } });
      expect({ externalId, status: r.status, type: r.headers.get('content-type') }).toEqual({ externalId, status: 422, type: expect.stringContaining('application/problem+json') });
      const problem = (await r.json()) as { detail: string; errors?: { path: string }[] };
      expect(problem.detail).toContain(`not a ${platform} show id`);
      expect(problem.errors?.map((e) => e.path)).toEqual(['body.externalId']);
      expect(problem.detail.length).toBeLessThan(200);
    }
    expect((await svc.rt.shows.getMirror(P, 's1', platform))?.remote).toBeUndefined();
    for (const externalId of ALSO_LINKED[platform] ?? []) {
      const r = await svc.api(`/v1/partners/${P}/shows/s1/mirrors/${platform}`, { method: 'PUT', json: { externalId } });
      expect({ externalId, status: r.status }).toEqual({ externalId, status: 200 });
    }
    const { externalId } = (await sim.control('POST', `/_sim/${platform}/shows`, { title: `by hand on ${platform}` })) as { externalId: string };
    const r = await svc.api(`/v1/partners/${P}/shows/s1/mirrors/${platform}`, { method: 'PUT', json: { externalId } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ targetId: platform, state: 'ready', externalId });
    expect((await svc.rt.shows.getMirror(P, 's1', platform))?.remote?.externalId).toBe(externalId);
  });

  test('two shows linked to one platform show at the same instant: one 200, one 409, the index names the linked one; a re-link stays 200, a moved link frees it', async () => {
    for (const id of ['race-a', 'race-b']) {
      const show = { id, title: id, scheduledAt: '2026-11-24T18:00:00Z', state: 'scheduled', products: [], pinnedProductIds: [] };
      expect((await sendEvent(svc, P, secret, { type: 'show.scheduled', occurredAt: '2026-11-24T17:00:00Z', data: { show } })).status).toBe(202);
    }
    const link = (showId: string, externalId: string) => svc.api(`/v1/partners/${P}/shows/${showId}/mirrors/whatnot`, { method: 'PUT', json: { externalId } });
    const entry = (externalId: string) => svc.rt.redis.get(svc.rt.keys.targetExternalShow('whatnot', externalId));
    const wnShow = randomUUID();
    // Before: both read no index entry, both saved their mirror and answered 200.
    const [a, b] = await Promise.all([link('race-a', wnShow), link('race-b', wnShow)]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const [winner, loser, refused] = a.status === 200 ? ['race-a', 'race-b', b] : ['race-b', 'race-a', a];
    expect(((await refused.json()) as { detail: string }).detail).toContain(`already the mirror of show ${winner} on target whatnot`);
    expect(await entry(wnShow)).toBe(winner);
    expect((await svc.rt.shows.getMirror(P, loser, 'whatnot'))?.remote).toBeUndefined();
    // The same show again: 200, nothing changes hands.
    expect((await link(winner, wnShow)).status).toBe(200);
    expect(await entry(wnShow)).toBe(winner);
    // Once the winner's mirror has another platform show, the other show may have this one.
    expect((await link(winner, randomUUID())).status).toBe(200);
    expect((await link(loser, wnShow)).status).toBe(200);
    expect(await entry(wnShow)).toBe(loser);
  });

  test('a link whose claim ran out (its lease) writes no entry when it settles: the link that claimed after it keeps its entry', async () => {
    const idx = new ExternalShowIndex(svc.rt.redis, svc.rt.keys);
    const entry = (externalId: string) => svc.rt.redis.get(svc.rt.keys.targetExternalShow('whatnot', externalId));
    const wnShow = randomUUID();
    const slow = await idx.claimLink('whatnot', wnShow, 50, 0);
    expect(slow).not.toBeNull();
    await new Promise((r) => setTimeout(r, 120));
    const second = await idx.claimLink('whatnot', wnShow, 30_000, 0);
    expect(second).not.toBeNull();
    const settled = await second!.settle('second');
    const lost = await slow!.settle('first');
    // Before: the slow link's settle wrote its show over the second's entry.
    expect(await entry(wnShow)).toBe('second');
    expect([settled, lost]).toEqual([true, false]);
  });

  test("a link waiting for another's claim stops waiting when its client goes away (the signal aborts)", async () => {
    const idx = new ExternalShowIndex(svc.rt.redis, svc.rt.keys);
    const wnShow = randomUUID();
    const held = await idx.claimLink('whatnot', wnShow, 30_000, 0);
    const gone = new AbortController();
    const t0 = Date.now();
    const waiting = idx.claimLink('whatnot', wnShow, 30_000, 5_000, gone.signal);
    setTimeout(() => gone.abort(), 100);
    expect(await waiting).toBeNull();
    expect(Date.now() - t0).toBeLessThan(3_000); // before: polled for the whole 5 s (3 s, not 1 s: room for a loaded CI)
    await held!.settle();
  });
});
