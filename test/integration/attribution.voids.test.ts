/**
 * Refunds beyond the order total and platform statuses that take an order back (issue 13): reports
 * count at most the order total as refunded, and a `returned` (or cancelled, voided, refunded) order
 * is fully reversed. Real redis-server, reports over real HTTP.
 */
import type { PartnerEvent } from '../../src/domain/events.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { recentIso } from '../helpers/clock.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const P = 'voids';
let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  const secret = await createPartner(svc, P);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('over'), '2026-11-24T10:00:00Z'))).status).toBe(202);
  const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'tt', platform: 'tiktok', name: 'tt', credentials: { token: 'x' }, commissionRateBps: 1000, enabled: false } });
  expect(t.status).toBe(201);
});
afterAll(async () => {
  await svc?.close();
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
