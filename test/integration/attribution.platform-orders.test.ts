/**
 * Platform orders in the ledger: statuses that take an order back, refunds past the total, and the
 * refs of targets whose ids contain ':'. Once two files (attribution.voids, platform-order-ref), each of
 * which started its own redis-server and service (CI time: docs/testing.md). One service for both, on
 * startService's defaults; each former file is a `describe` of its own, with its own partner (voids, rp)
 * and reads only that partner's orders and ledgers. Real redis-server, reports over real HTTP.
 */
import { jest } from '@jest/globals';
import type { PartnerEvent } from '../../src/domain/events.js';
import { legacyPlatformOrderRef, platformOrderRef } from '../../src/domain/order.js';
import { AttributionRepository } from '../../src/store/attribution.repository.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';
import { recentIso } from '../helpers/clock.js';
import { createPartner, sampleShow, sendEvent, serviceForFile, showEvent, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((started) => (svc = started));

describe('attribution.voids', () => {
  /**
   * Refunds beyond the order total and platform statuses that take an order back (issue 13): reports
   * count at most the order total as refunded, and a `returned` (or cancelled, voided, refunded) order
   * is fully reversed. Real redis-server, reports over real HTTP.
   */
  const P = 'voids';

  beforeAll(async () => {
    const secret = await createPartner(svc, P);
    expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('over'), '2026-11-24T10:00:00Z'))).status).toBe(202);
    const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'tt', platform: 'tiktok', name: 'tt', credentials: { token: 'x' }, commissionRateBps: 1000, enabled: false } });
    expect(t.status).toBe(201);
  });

  async function get<T>(path: string, headers: Record<string, string> = {}): Promise<T> {
    const r = await svc.api(path, { headers });
    expect(r.status).toBe(200);
    return (headers['accept'] === 'text/csv' ? await r.text() : await r.json()) as T;
  }

  test('refunds that add up to more than the order total count as the total in every report', async () => {
    const T = Date.parse('2026-11-24T18:00:00Z');
    const url = await svc.rt.links.ensure({ partnerId: P, showId: 'over', targetId: 'tt', platform: 'tiktok', productId: 'p1', url: 'https://shop.example.com/p1' });
    const click = await svc.rt.links.recordClick((await svc.rt.links.find(url.split('/l/')[1]!))!, '203.0.113.1', T);
    const ev = (e: unknown): PartnerEvent => e as PartnerEvent;
    await svc.rt.attribution.handlePartnerEvent(P, ev({ type: 'order.created', occurredAt: '2026-11-24T18:05:00Z', data: { order: { id: 'over-1', clickId: click.id, createdAt: '2026-11-24T18:05:00Z', lines: [], total: { amount: 10_000, currency: 'USD' } } } }));
    for (const [id, amount] of [['over-r1', 6000], ['over-r2', 6000]] as const) {
      await svc.rt.attribution.handlePartnerEvent(P, ev({ type: 'order.refunded', occurredAt: '2026-11-25T10:00:00Z', data: { refund: { id, orderId: 'over-1', createdAt: '2026-11-25T10:00:00Z', amount: { amount, currency: 'USD' } } } }));
    }
    // The ledger keeps what was refunded (12,000); reports never count more than the total.
    expect((await svc.rt.attribution.orders(P)).find((o) => o.order.orderId === 'over-1')).toMatchObject({ refunded: 12_000, gross: 10_000 });

    const view = await get<{ refundedAmount: number; commission: { amount: number }; status: string }>(`/v1/partners/${P}/attribution/orders/over-1`);
    expect(view).toMatchObject({ refundedAmount: 10_000, commission: { amount: 0 }, status: 'reversed' });

    const report = await get<unknown>(`/v1/partners/${P}/attribution?showId=over`);
    expect(report).toEqual({ totals: [{ showId: 'over', targetId: 'tt', currency: 'USD', orders: 1, grossAmount: 10_000, refundedAmount: 10_000, commission: 0 }], unattributed: [] });

    const csv = await get<string>(`/v1/partners/${P}/attribution?showId=over`, { accept: 'text/csv' });
    expect(csv.trim().split('\r\n')).toEqual(['attributed,showId,targetId,currency,orders,grossAmount,refundedAmount,commission', 'true,over,tt,USD,1,10000,10000,0']);

    const breakdown = await get<{ byTarget: unknown[]; byProduct: unknown[] }>(`/v1/partners/${P}/shows/over/attribution`);
    expect(breakdown.byTarget).toHaveLength(1);
    expect(breakdown.byProduct).toHaveLength(1);
    for (const row of [...breakdown.byTarget, ...breakdown.byProduct]) expect(row).toMatchObject({ orders: 1, grossAmount: 10_000, refundedAmount: 10_000, commission: 0 });
  });

  describe('platform order statuses (a platform reports an order taken back)', () => {
    const order = (orderId: string, status: string | undefined): PlatformOrder => ({
      orderId,
      externalShowId: 'room-1',
      productId: 'p1',
      clickId: undefined,
      // Recent: a sale stays 'pending' through the commission hold (30 days from createdAt), so a fixed
      // date here turned the sale tests 'approved' once it was 30 days old (from 2026-12-24 18:10 UTC).
      createdAt: recentIso(),
      total: { amount: 5000, currency: 'USD' },
      refunded: { amount: 0, currency: 'USD' },
      status,
      commission: undefined,
    });

    beforeAll(async () => {
      await new ExternalShowIndex(svc.rt.redis, svc.rt.keys).set('tt', 'room-1', 'live-1');
    });

    test.each(['returned', 'RETURNED', 'Returned', 'cancelled', 'canceled', 'CANCELLED', 'void', 'VOID', 'Void', 'voided', 'VOIDED', 'refunded', 'REFUNDED'])('%s voids the whole order: refunded = total, no commission left', async (status) => {
      const id = `st-${status}`;
      await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order(id, status)], 'report');
      const v = await get<{ attribution: { attributed: boolean }; refundedAmount: number; commission: { amount: number }; accrued: number; reversed: number; status: string }>(`/v1/partners/${P}/attribution/orders/${id}?targetId=tt`);
      expect(v).toMatchObject({ attribution: { attributed: true }, refundedAmount: 5000, commission: { amount: 0 }, accrued: 500, reversed: 500, status: 'reversed' });
    });

    test.each(['completed', 'COMPLETED', 'delivered', 'return_requested', 'partially_returned', 'voide', 'avoided', 'void_requested', undefined])('%s is a sale: full commission, nothing refunded', async (status) => {
      const id = `st-${String(status)}`;
      await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order(id, status)], 'report');
      const v = await get<{ refundedAmount: number; commission: { amount: number }; status: string }>(`/v1/partners/${P}/attribution/orders/${id}?targetId=tt`);
      expect(v).toMatchObject({ refundedAmount: 0, commission: { amount: 500 }, status: 'pending' });
    });

    test('a taken-back order whose refund figure is in another currency is refunded its total, never that figure as if in its currency', async () => {
      await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [{ ...order('void-jpy', 'CANCELLED'), refunded: { amount: 90_000, currency: 'JPY' } }], 'report');
      expect((await svc.rt.attribution.orders(P)).find((o) => o.order.orderId === 'void-jpy')).toMatchObject({ gross: 5000, refunded: 5000 });
    });

    test('a platform order in a currency that is not ISO 4217 is not stored (as a partner event would be refused)', async () => {
      const out = await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [{ ...order('zzz-1', 'COMPLETED'), total: { amount: 5000, currency: 'ZZZ' }, refunded: { amount: 0, currency: 'ZZZ' } }], 'report');
      expect(out).toEqual([]);
      expect((await svc.rt.attribution.orders(P)).find((o) => o.order.orderId === 'zzz-1')).toBeUndefined();
    });

    test('a platform order looked up without ?targetId is a 400 naming targetId; an order found nowhere is a 404 that says how platform orders are looked up', async () => {
      await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order('plat-only', 'COMPLETED')], 'report');
      const r = await svc.api(`/v1/partners/${P}/attribution/orders/plat-only`);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const body = (await r.json()) as { detail: string; errors: { path: string; message: string }[] };
      expect(body.detail).toMatch(/targetId/);
      expect(body.errors).toEqual([{ path: 'querystring.targetId', message: expect.stringContaining('tt') }]);
      const none = await svc.api(`/v1/partners/${P}/attribution/orders/no-such-order`);
      expect(none.status).toBe(404);
      expect(none.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await none.json()) as { detail: string }).detail).toMatch(/\?targetId=/);
      expect((await svc.api(`/v1/partners/${P}/attribution/orders/plat-only?targetId=tt`)).status).toBe(200);
    });

    test('an order first reported as a sale, then as returned, is reversed by a new ledger entry', async () => {
      await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order('later-returned', 'COMPLETED')], 'report');
      await svc.rt.attribution.ingestPlatformOrders(P, 'tt', [order('later-returned', 'RETURNED')], 'report');
      const v = await get<{ entries: { kind: string; amount: number }[]; refundedAmount: number; status: string }>(`/v1/partners/${P}/attribution/orders/later-returned?targetId=tt`);
      expect(v.entries.map((e) => [e.kind, e.amount])).toEqual([
        ['accrual', 500],
        ['reversal', 500],
      ]);
      expect(v).toMatchObject({ refundedAmount: 5000, status: 'reversed' });
    });
  });
});

describe('platform-order-ref', () => {
  /**
   * Platform order refs when target ids contain ':' (contract ids `[A-Za-z0-9_.:-]{1,128}`). The ref was
   * `@<targetId>:<platform order id>`, so one partner's target `t` + order `x:1` and target `t:x` + order
   * `1` were one ledger record (the second order was taken for a duplicate of the first), and
   * reconciliation's ledger of target `t` (refs starting `@t:`) held target `t:y`'s orders too. Now the
   * target is written as keyPart; an order a target with ':' stored under the old ref is found again, by
   * ingest and by reconciliation's ledger of that target (review 2026-12-01 K1: lookup and scan read the new
   * ref only, so the order was "missing" and healed on every run, while target `t`'s scan took it for its
   * own order `z:7`). Real redis-server.
   */
  beforeAll(async () => {
    await createPartner(svc, 'rp');
  }, 60_000);

  const order = (orderId: string, amount: number) => ({
    orderId,
    externalShowId: undefined,
    productId: undefined,
    clickId: undefined,
    createdAt: '2026-11-24T18:00:00.000Z',
    total: { amount, currency: 'USD' },
    refunded: { amount: 0, currency: 'USD' },
    status: 'COMPLETED',
    commission: undefined,
  });

  test("target t's order x:1 and target t:x's order 1 are two orders", async () => {
    const [a] = await svc.rt.attribution.ingestPlatformOrders('rp', 't', [order('x:1', 1000)], 'webhook');
    const [b] = await svc.rt.attribution.ingestPlatformOrders('rp', 't:x', [order('1', 2000)], 'webhook');
    expect([a?.isNew, b?.isNew]).toEqual([true, true]);
    expect((await svc.rt.attribution.orders('rp')).map((o) => [o.order.targetId, o.order.orderId, o.gross]).sort()).toEqual([
      ['t', 'x:1', 1000],
      ['t:x', '1', 2000],
    ]);
    expect(await svc.rt.attribution.order('rp', 'x:1', 't')).toMatchObject({ orderId: 'x:1', total: { amount: 1000 } });
    expect(await svc.rt.attribution.order('rp', '1', 't:x')).toMatchObject({ orderId: '1', total: { amount: 2000 } });
  });

  test("reconciliation's ledger of target t holds only target t's orders", async () => {
    await svc.rt.attribution.ingestPlatformOrders('rp', 't:y', [order('5', 3000)], 'webhook');
    const ledger = svc.rt.attribution.targetLedger('rp', 't', { fromMs: 0, toMs: Date.parse('2027-01-01') });
    const seen: string[] = [];
    for await (const page of ledger.scan()) seen.push(...page.map((o) => o.orderId));
    await ledger.close();
    expect(seen).toEqual(['x:1']);
  });

  test('an order of a target with ":" stored under the ref from before keyPart is found again, not stored twice', async () => {
    // what the previous code stored: ref `@t:z:7`, the order id derived from it
    const legacy = legacyPlatformOrderRef('t:z', '7');
    const o = { ref: legacy, orderId: '7', source: 'platform_webhook' as const, targetId: 't:z', clickId: undefined, showId: undefined, externalShowId: undefined, productId: undefined, createdAt: '2026-11-24T18:00:00.000Z', total: { amount: 700, currency: 'USD' }, lines: [] };
    await new AttributionRepository(svc.rt.redis, svc.rt.keys).applyOrder('rp', o, { attributed: false, reason: 'no_click', clickId: undefined }, { nowMs: Date.now(), holdMs: 0 });
    const [again] = await svc.rt.attribution.ingestPlatformOrders('rp', 't:z', [order('7', 700)], 'report');
    expect(again).toMatchObject({ ref: legacy, isNew: false });
    expect((await svc.rt.attribution.orders('rp')).filter((s) => s.order.targetId === 't:z').map((s) => s.ref)).toEqual([legacy]);
    expect(await svc.rt.attribution.order('rp', '7', 't:z')).toMatchObject({ orderId: '7', ref: legacy });
  });

  /** What the code before keyPart stored for a platform order of `targetId` (ref `@<targetId>:<orderId>`), or under `ref`. */
  async function storeRaw(targetId: string, orderId: string, amount: number, ref = legacyPlatformOrderRef(targetId, orderId)): Promise<void> {
    const o = { ref, orderId, source: 'platform_webhook' as const, targetId, clickId: undefined, showId: undefined, externalShowId: undefined, productId: undefined, createdAt: '2026-11-24T18:00:00.000Z', total: { amount, currency: 'USD' }, lines: [] };
    await new AttributionRepository(svc.rt.redis, svc.rt.keys).applyOrder('rp', o, { attributed: false, reason: 'no_click', clickId: undefined }, { nowMs: Date.now(), holdMs: 0 });
  }

  const period = { fromMs: 0, toMs: Date.parse('2027-01-01') };

  async function reconcileView(targetId: string, lookup: string[]): Promise<{ found: string[]; scanned: string[] }> {
    const ledger = svc.rt.attribution.targetLedger('rp', targetId, period);
    const found = (await ledger.lookup(lookup)).map((f) => f.order.orderId);
    const scanned: string[] = [];
    for await (const page of ledger.scan()) scanned.push(...page.map((o) => o.orderId));
    await ledger.close();
    return { found, scanned };
  }

  test("reconciliation's ledger of target t:z finds its order stored under the legacy ref, by lookup and by scan", async () => {
    // `@t:z:7` stored by the test above
    expect(await reconcileView('t:z', ['7'])).toEqual({ found: ['7'], scanned: [] });
    expect(await reconcileView('t:z', [])).toEqual({ found: [], scanned: ['7'] });
  });

  test("reconciliation's ledger of target t takes no legacy order of target t:z (whose ref starts `@t:`)", async () => {
    expect(await reconcileView('t', ['z:7'])).toEqual({ found: [], scanned: ['x:1'] });
  });

  test('an order stored under both its legacy and its new ref comes back once', async () => {
    // e.g. written by an instance of each version during a rolling upgrade
    await storeRaw('t:w', '9', 900);
    await storeRaw('t:w', '9', 500, platformOrderRef('t:w', '9'));
    expect(await reconcileView('t:w', ['9'])).toEqual({ found: ['9'], scanned: [] });
    // The legacy row's (the one platformRef keeps updating), not the new ref's.
    const ledger = svc.rt.attribution.targetLedger('rp', 't:w', period);
    expect((await ledger.lookup(['9'])).map((f) => f.order.gross)).toEqual([900]);
    await ledger.close();
    expect(await reconcileView('t:w', [])).toEqual({ found: [], scanned: ['9'] });
    expect(await reconcileView('t', [])).toEqual({ found: [], scanned: ['x:1'] });
  });

  test("an ordinary target's order whose ref is another target's legacy ref is its own order, that record unchanged", async () => {
    // target u:q's order 8 stored before keyPart under `@u:q:8`: target u's ref for its order q:8
    await storeRaw('u:q', '8', 800);
    const before = await svc.rt.attribution.order('rp', '8', 'u:q');
    const repo = new AttributionRepository(svc.rt.redis, svc.rt.keys);
    const legacyRecord = async (): Promise<string | null> => svc.rt.redis.hget(repo.orderKey('rp', legacyPlatformOrderRef('u:q', '8')), legacyPlatformOrderRef('u:q', '8'));
    const raw = await legacyRecord();
    const [first] = await svc.rt.attribution.ingestPlatformOrders('rp', 'u', [{ ...order('q:8', 1200), refunded: { amount: 300, currency: 'USD' } }], 'webhook');
    expect(first).toMatchObject({ orderId: 'q:8', isNew: true });
    expect(first!.ref).not.toBe(legacyPlatformOrderRef('u:q', '8'));
    const [again] = await svc.rt.attribution.ingestPlatformOrders('rp', 'u', [{ ...order('q:8', 1200), refunded: { amount: 500, currency: 'USD' } }], 'report');
    expect(again).toMatchObject({ ref: first!.ref, isNew: false });
    expect(again!.conflict).toBeUndefined();
    expect(await svc.rt.attribution.order('rp', 'q:8', 'u')).toMatchObject({ orderId: 'q:8', ref: first!.ref, total: { amount: 1200 }, refundedAmount: 500 });
    expect(await svc.rt.attribution.storedUnder('rp', 'u', 'q:8')).toBe(true);
    // u:q's order: the same record, byte for byte
    expect(await legacyRecord()).toBe(raw);
    expect(await svc.rt.attribution.order('rp', '8', 'u:q')).toEqual(before);
    expect(await reconcileView('u', ['q:8'])).toEqual({ found: ['q:8'], scanned: [] });
    expect(await reconcileView('u', [])).toEqual({ found: [], scanned: ['q:8'] });
    expect(await reconcileView('u:q', [])).toEqual({ found: [], scanned: ['8'] });
  });

  /**
   * An id with ':' reads the record under its ref to decide it (another target's legacy record?), and
   * storedUnder and order() take that record: they read it again (two HGETs of one record; a shared
   * account's webhook order three, its storedUnder and then its ingest). A displaced order is read
   * under its two refs.
   */
  test("an ordinary target's order id without ':' costs no ledger read before its step (no other target's legacy ref); one with ':' reads its record once", async () => {
    const get = jest.spyOn(AttributionRepository.prototype, 'get');
    try {
      const [o] = await svc.rt.attribution.ingestPlatformOrders('rp', 'u', [order('q8', 100)], 'webhook');
      expect(o).toMatchObject({ ref: platformOrderRef('u', 'q8'), isNew: true });
      expect(get).not.toHaveBeenCalled();
      const [c] = await svc.rt.attribution.ingestPlatformOrders('rp', 'u', [order('r:9', 100)], 'webhook');
      expect(c).toMatchObject({ ref: platformOrderRef('u', 'r:9'), isNew: true });
      expect(get).toHaveBeenCalledTimes(1);
      // a shared account's webhook order (AccountOrders.webhookOrders): storedUnder, then its ingest
      get.mockClear();
      expect(await svc.rt.attribution.storedUnder('rp', 'u', 'r:9')).toBe(true);
      expect((await svc.rt.attribution.ingestPlatformOrders('rp', 'u', [order('r:9', 100)], 'webhook'))[0]).toMatchObject({ isNew: false });
      expect(get).toHaveBeenCalledTimes(2);
      get.mockClear();
      expect(await svc.rt.attribution.order('rp', 'r:9', 'u')).toMatchObject({ orderId: 'r:9', ref: platformOrderRef('u', 'r:9') });
      expect(get).toHaveBeenCalledTimes(1);
      // q:8 (above): under its displaced ref, u:q's legacy record under its ref
      get.mockClear();
      expect(await svc.rt.attribution.storedUnder('rp', 'u', 'q:8')).toBe(true);
      expect(get).toHaveBeenCalledTimes(2);
    } finally {
      get.mockRestore();
    }
  });
});
