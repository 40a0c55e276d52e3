/**
 * A Whatnot order's product is read from `GET /orders/{id}/items`, the id percent-encoded. '.' and '..'
 * stay as they are under percent-encoding and the URL resolves them away: an order webhook whose id was
 * '..' made Syndicast call `GET /items` (and '.' `GET /orders/items`), another resource of the seller's
 * API, with the seller's token. Such an id is sent nowhere now; the sale is stored without a product (as
 * one whose items Whatnot cannot find). Real redis-server, the simulators over real HTTP, signed webhooks.
 */
import { CREDENTIALS, postWhatnotWebhook, webhookTargetPerFile } from '../helpers/platforms.js';
import type { TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';

const P = 'pdotorder';
const SECRET = 'whsec_' + Buffer.from('whatnot-dot-order-id-secret!!').toString('base64');
let svc: TestService;
let sim: TestSim;

webhookTargetPerFile(
  P,
  (s) => ({ id: 'wn', platform: 'whatnot', name: 'wn', credentials: { accessToken: CREDENTIALS.whatnot.accessToken!, webhookSecret: SECRET }, baseUrl: s.base('whatnot') }),
  (started) => ({ svc, sim } = started),
);

async function post(orderId: string): Promise<Response> {
  const data = { id: orderId, show_id: 'wn-show-1', status: 'completed', created_at: new Date().toISOString(), amounts: { total: { amount: '12.00', currency: 'USD' } } };
  return postWhatnotWebhook(svc, 'wn', SECRET, JSON.stringify({ type: 'orders.created', timestamp: new Date().toISOString(), data }));
}

const paths = async (): Promise<string[]> => ((await sim.control('GET', '/_sim/whatnot/requests')) as { path: string }[]).map((r) => r.path);

test.each(['..', '.'])('an order id %j asks Whatnot for no other resource, and the sale is stored', async (orderId) => {
  const before = (await paths()).length;
  const r = await post(orderId);
  expect(r.status).toBe(200);
  // Stored (the order view cannot name it: a URL resolves a '.' or '..' segment, also as %2E).
  expect(await r.json()).toMatchObject({ received: 1, stored: 1, new: 1 });
  expect((await paths()).slice(before)).toEqual([]);
});

test('an ordinary order id still has its items read (the control case)', async () => {
  const before = (await paths()).length;
  expect((await post('wn-order-plain')).status).toBe(200);
  expect((await paths()).slice(before)).toEqual(['/orders/wn-order-plain/items']);
});

test('an order id longer than the ledger stores is refused (400) without asking Whatnot for its items', async () => {
  // Before: GET /orders/<the whole id>/items went out (and into the log) first, a URL as long as the body.
  const before = (await paths()).length;
  const r = await post('x'.repeat(257));
  expect(r.status).toBe(400);
  expect((await paths()).slice(before)).toEqual([]);
});
