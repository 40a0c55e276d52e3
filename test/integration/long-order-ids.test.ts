/**
 * A platform's order ids are its own, kept up to 256 characters (longer ones are refused at ingest),
 * and the order view (`GET …/attribution/orders/{orderId}?targetId=`) declares 256. The router refused
 * every path segment over 128 characters with 414, so an order with a 129–256 character id was stored
 * and counted in reports but could never be viewed. The router now takes 256; every other path
 * parameter (an id, 128 at most) still gets the 414 it got, before the key is checked. Real
 * redis-server, real HTTP.
 */
import type { PlatformOrder } from '../../src/targets/target.adapter.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';
import { recentIso } from '../helpers/clock.js';
import { createPartner, sampleShow, sendEvent, showEvent, startService, type TestService } from '../helpers/service.js';

const P = 'longorders';
let svc: TestService;

beforeAll(async () => {
  svc = await startService();
  const secret = await createPartner(svc, P);
  expect((await sendEvent(svc, P, secret, showEvent('show.scheduled', sampleShow('s1'), '2026-11-24T10:00:00Z'))).status).toBe(202);
  const t = await svc.api(`/v1/partners/${P}/targets?verify=false`, { json: { id: 'tt', platform: 'tiktok', name: 'tt', credentials: { token: 'x' }, commissionRateBps: 1000, enabled: false } });
  expect(t.status).toBe(201);
  await new ExternalShowIndex(svc.rt.redis, svc.rt.keys).set('tt', 'room-1', 's1');
});
afterAll(async () => {
  await svc?.close();
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
