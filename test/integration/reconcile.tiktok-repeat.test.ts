/**
 * A TikTok order id named twice in other data on two pages of the affiliate report, through whole
 * reconciliation runs (the service: its stream, heals, remembered heals). The adapter handed the id on
 * twice, the second copy as the invalid order: run 1 counted two platform orders for one and reported
 * the order "added to the ledger" (its first copy, healed) and "not added" (the second), and a re-run,
 * which finds the first copy in the ledger, reported the second as another kind (amount_mismatch); with
 * pages compared four at a time even run 1 hung on which page's lookup came first. Now the id is handed
 * on once, the second copy is a note reported the same on every run, and the order is counted once.
 * A fake TikTok Shop on loopback serves the report (real HTTP); real Redis.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simTargetCredentials } from '../../src/simulators/sim.accounts.js';
import { createPartner, retryingUnavailable, serviceForFile, type TestService } from '../helpers/service.js';

let svc: TestService;
serviceForFile((s) => (svc = s as TestService));

let server: Server;
let url = '';
const CREDENTIALS: Record<string, string> = { ...simTargetCredentials('tiktok', 'a'), accessToken: 'at-1' };
const createdS = Math.floor(Date.now() / 1000) - 600;
const sku = (amount: string): Record<string, unknown> => ({ product_id: 'p1', quantity: 1, price: { amount, currency: 'USD' }, content_type: 'LIVE', content_id: '1234567' });
const order = (id: string, amount: string): Record<string, unknown> => ({ id, status: 'COMPLETED', create_time: createdS, skus: [sku(amount)] });
/** The affiliate report: the second copy of tt-x, in another total, on the second page. */
const PAGES = [[order('tt-a', '10.00'), order('tt-x', '1.00')], [order('tt-b', '2.00'), order('tt-x', '9.00')]];

beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (u.pathname.includes('/authorization/')) {
      res.end(JSON.stringify({ code: 0, message: 'Success', request_id: 'r0', data: { shops: [{ id: 'shop-a', cipher: CREDENTIALS['shopCipher'] }] } }));
      return;
    }
    const token = u.searchParams.get('page_token');
    const i = token ? Number(token.slice(1)) : 0;
    res.end(JSON.stringify({ code: 0, message: 'Success', request_id: 'r1', data: { orders: PAGES[i] ?? [], ...(i + 1 < PAGES.length ? { next_page_token: `P${i + 1}` } : {}) } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await createPartner(svc, 'ttr');
  const t = await retryingUnavailable(() => svc.api('/v1/partners/ttr/targets?verify=false', { json: { id: 'tt', platform: 'tiktok', name: 'tt', credentials: CREDENTIALS, baseUrl: url, commissionRateBps: 1000 } }));
  expect(t.status).toBe(201);
});
afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

async function reconcile(): Promise<{ discrepancies: unknown[]; platformOrders: number | undefined }> {
  const rec = await svc.rt.reconcile.request('ttr', new Date(Date.now() - 3600_000), new Date(), 'manual');
  const done = await svc.rt.reconcile.run(rec.id);
  expect(done.status).toBe('completed');
  return { discrepancies: done.discrepancies, platformOrders: done.summary?.targets[0]?.platformOrders };
}

test('an order id whose second copy in other data comes on a later page: handed on once, counted once, the same discrepancies on a re-run', async () => {
  const first = await reconcile();
  expect(first.platformOrders).toBe(3);
  expect(first.discrepancies).toEqual([
    expect.objectContaining({ kind: 'missing_in_ledger', orderId: 'tt-a', healed: true }),
    expect.objectContaining({ kind: 'missing_in_ledger', orderId: 'tt-b', healed: true }),
    { kind: 'amount_mismatch', reason: 'invalid_order', targetId: 'tt', orderId: 'tt-x', detail: 'platform reports order "tt-x" twice, with different data: only its first copy is compared with the ledger', healed: false },
    expect.objectContaining({ kind: 'missing_in_ledger', orderId: 'tt-x', detail: 'platform reports 100 USD; added to the ledger', healed: true }),
  ]);
  const again = await reconcile();
  expect(again).toEqual(first);
});
