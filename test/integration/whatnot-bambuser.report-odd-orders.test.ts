/**
 * One odd order in Whatnot's order list or a Bambuser show's order stats is that order's problem, not
 * the report's (as TikTok's, tiktok.report-odd-orders.test.ts): an order whose amount, currency,
 * status or date cannot be read failed the target's whole report (`malformed_response`), and
 * reconciliation of every other order stopped on it. It is now reported as an invalid order (an
 * invalid_order discrepancy, never healed) and the rest of the report is compared as usual.
 *
 * What still fails the report: an order without an id it can be named by, and an envelope of another
 * shape. An order whose date cannot be read is in every run whose report lists it (createdAt ''). A
 * Whatnot webhook carrying such an order is still refused (400). Real HTTP on loopback (a platform
 * answering so); the comparison is reconciliation's own (compareTarget, reconcileTargetStream).
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIM_ACCOUNTS } from '../../src/simulators/sim.accounts.js';
import { compareTarget } from '../../src/reconcile/reconcile.compare.js';
import { pagesOf, reconcileTargetStream } from '../../src/reconcile/reconcile.stream.js';
import { createBambuserAdapter } from '../../src/targets/bambuser/bambuser.adapter.js';
import type { PlatformOrder } from '../../src/targets/target.adapter.js';
import { ALL_UNREADABLE_MIN } from '../../src/targets/report-order.js';
import { PermanentError } from '../../src/targets/target.errors.js';
import { buildWhatnotAdapter } from '../../src/targets/whatnot/whatnot.adapter.js';
import { caught } from '../helpers/adapter-context.js';
import { adapterHarness } from '../helpers/adapter-harness.js';

let server: Server;
let url = '';
/** What the platform answers: Whatnot's GET /orders (one page), Bambuser's order stats of show s1. */
let whatnot: unknown = { data: [] };
let bambuser: unknown = { orders: [] };

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    res.setHeader('content-type', 'application/json');
    if (path === '/v1/shows') res.end(JSON.stringify({ results: [{ id: 's1', title: null, state: 'live' }], cursor: null }));
    else if (path === '/v1/stats/show/s1/orders') res.end(JSON.stringify(bambuser));
    else res.end(JSON.stringify(whatnot));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

const WEBHOOK_SECRET = `whsec_${Buffer.from('odd-orders-secret-0123456789').toString('base64')}`;
const at = (): string => new Date(Date.now() - 60_000).toISOString();
const from = (): Date => new Date(Date.now() - 3600_000);
const to = (): Date => new Date(Date.now() + 60_000);
const ids = (orders: PlatformOrder[]): [string, string | undefined][] => orders.map((o) => [o.orderId, o.unreadable]);

const wn = (id: string, extra: Record<string, unknown> = {}, total: Record<string, unknown> = { amount: '10.00', currency: 'USD' }): Record<string, unknown> => ({
  id,
  status: 'completed',
  show_id: 'show-1',
  created_at: at(),
  amounts: { total },
  ...extra,
});
const whatnotAdapter = (): ReturnType<typeof adapterHarness>['adapter'] =>
  adapterHarness((ctx) => buildWhatnotAdapter(ctx), { platform: 'whatnot', baseUrl: url, credentials: { accessToken: SIM_ACCOUNTS.whatnot[0]!.accessToken, webhookSecret: WEBHOOK_SECRET } }).adapter;

/** The report ok1, odd, ok2 compared: the odd order an invalid_order (`problem` said), not healed; the others healed as usual. */
function expectComparedAlone(orders: PlatformOrder[], [ok1, odd, ok2]: [string, string, string], problem: RegExp): void {
  expect(ids(orders)).toEqual([
    [ok1, undefined],
    [odd, expect.stringMatching(problem)],
    [ok2, undefined],
  ]);
  const cmp = compareTarget('t', orders, [], /cancel/i);
  expect(cmp.heal.map((p) => p.orderId)).toEqual([ok1, ok2]);
  expect(cmp.discrepancies.filter((d) => d.orderId === odd)).toEqual([expect.objectContaining({ kind: 'missing_in_ledger', reason: 'invalid_order', healed: false, detail: expect.stringMatching(new RegExp(`^platform reports order ${odd}: .*: not added to the ledger$`)) })]);
}

test.each([
  ['a total that is no decimal ("25,99")', wn('w-odd', {}, { amount: '25,99', currency: 'USD' }), /amounts\.total\.amount/],
  ['a total past the minor unit ("12.345" USD)', wn('w-odd', {}, { amount: '12.345', currency: 'USD' }), /"12\.345" is not an amount in USD/],
  ['a refund below zero', wn('w-odd', { amounts: { total: { amount: '10.00', currency: 'USD' }, refunded: { amount: '-1.00', currency: 'USD' } } }), /refunded\.amount "-1\.00"/],
  ['a currency that is no ISO code ("usd")', wn('w-odd', {}, { amount: '10.00', currency: 'usd' }), /amounts\.total\.currency/],
  ['a status that is no text', wn('w-odd', { status: 7 }), /status/],
  ['a show id that is no text', wn('w-odd', { show_id: 42 }), /show_id/],
  ['a created_at that is no date ("yesterday"): in the run whose list names it', wn('w-odd', { created_at: 'yesterday' }), /created_at/],
])('Whatnot: an order with %s is an invalid order, never healed; the others of the report are compared and healed', async (_what, odd, problem) => {
  whatnot = { data: [wn('w-ok-1'), odd, wn('w-ok-2', { status: 'pending_fulfillment' })], next_cursor: null };
  expectComparedAlone(await whatnotAdapter().listOrders!(from(), to()), ['w-ok-1', 'w-odd', 'w-ok-2'], problem);
});

test('Whatnot: an order whose readable status says no sale (pending, failed) is left out, its odd amounts never judged', async () => {
  whatnot = {
    data: [wn('w-ok-1'), wn('w-pending', { status: 'pending' }, { amount: '25,99', currency: 'USD' }), wn('w-failed', { status: 'failed' }, { amount: null, currency: 'usd' }), wn('w-ok-2')],
    next_cursor: null,
  };
  expect(ids(await whatnotAdapter().listOrders!(from(), to()))).toEqual([
    ['w-ok-1', undefined],
    ['w-ok-2', undefined],
  ]);
});

test(`a report page whose orders all cannot be read (at least ${ALL_UNREADABLE_MIN}: a field renamed) fails the report (malformed_response naming the first problem); one readable order among them, or fewer, does not`, async () => {
  const odd = (id: string): Record<string, unknown> => ({ ...wn(id), amounts: { sum: { amount: '10.00', currency: 'USD' } } });
  const oddIds = Array.from({ length: ALL_UNREADABLE_MIN }, (_, i) => `w-odd-${i}`);
  whatnot = { data: oddIds.map(odd), next_cursor: null };
  const err = await caught(whatnotAdapter().listOrders!(from(), to()));
  expect([err instanceof PermanentError && err.reason, (err as Error).message]).toEqual(['malformed_response', expect.stringMatching(/^malformed response from Whatnot GET \/orders: none of its 5 orders can be read, e\.g\. order w-odd-0: amounts\.total/)]);
  whatnot = { data: [...oddIds.map(odd), wn('w-ok-1')], next_cursor: null };
  expect(await whatnotAdapter().listOrders!(from(), to())).toHaveLength(ALL_UNREADABLE_MIN + 1);
  whatnot = { data: oddIds.slice(1).map(odd), next_cursor: null };
  expect(await whatnotAdapter().listOrders!(from(), to())).toHaveLength(ALL_UNREADABLE_MIN - 1);
  bambuser = { showId: 's1', orders: oddIds.map((id) => bo(id, { orderValue: 'x' })) };
  const berr = await caught(bambuserReport());
  expect([berr instanceof PermanentError && berr.reason, (berr as Error).message]).toEqual(['malformed_response', expect.stringMatching(/^malformed response from Bambuser order stats of show s1: none of its 5 orders can be read, e\.g\. order w-odd-0: /)]);
  bambuser = { showId: 's1', orders: [...oddIds.map((id) => bo(id, { orderValue: 'x' })), bo('b-ok-1')] };
  expect(await bambuserReport()).toHaveLength(ALL_UNREADABLE_MIN + 1);
});

test('Whatnot: an order without an id, or a list of another shape, still fails the report (malformed_response naming it); a webhook of an odd order is still refused', async () => {
  for (const [body, field] of [
    [{ data: [wn('w-ok-1'), { ...wn('x'), id: undefined }] }, 'data.1.id'],
    [{ data: [wn('w-ok-1'), 'w-2'] }, 'data.1'],
    [{ orders: [wn('w-ok-1')] }, 'data'],
  ] as const) {
    whatnot = body;
    const err = await caught(whatnotAdapter().listOrders!(from(), to()));
    expect([err instanceof PermanentError && err.reason, (err as Error).message]).toEqual(['malformed_response', expect.stringContaining(`GET /orders: ${field}:`)]);
  }
  const ts = String(Math.floor(Date.now() / 1000));
  const body = Buffer.from(JSON.stringify({ type: 'orders.created', data: wn('w-odd', {}, { amount: '12.345', currency: 'USD' }) }));
  const signature = `v1,${createHmac('sha256', Buffer.from(WEBHOOK_SECRET.slice('whsec_'.length), 'base64')).update(`msg_1.${ts}.`).update(body).digest('base64')}`;
  const err = await caught(whatnotAdapter().handleWebhook!({ 'webhook-id': 'msg_1', 'webhook-timestamp': ts, 'webhook-signature': signature }, body));
  expect([err instanceof PermanentError && err.reason, (err as Error).message]).toEqual(['malformed_response', 'malformed response from Whatnot: data.amounts.total.amount "12.345" is not an amount in USD']);
});

const bo = (orderId: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ orderId, createdAt: at(), currency: 'USD', orderValue: '10.00', products: [{ productReference: 'p1' }], ...extra });
const bambuserReport = (): Promise<PlatformOrder[]> =>
  adapterHarness((ctx) => createBambuserAdapter(ctx), { platform: 'bambuser', baseUrl: url, credentials: { apiKey: SIM_ACCOUNTS.bambuser[0]!.apiKey } }).adapter.listOrders!(from(), to());

test.each([
  ['an orderValue that is no decimal ("12,50")', bo('b-odd', { orderValue: '12,50' }), /orderValue/],
  ['an orderValue past the minor unit (12.345 USD)', bo('b-odd', { orderValue: 12.345 }), /orderValue of b-odd "12\.345" is not a decimal amount/],
  ['a JSON number past 10^15 minor units', bo('b-odd', { orderValue: 1e14 }), /orderValue of b-odd "100000000000000"/],
  ['a currency that is no ISO code ("eur")', bo('b-odd', { currency: 'eur' }), /currency/],
  ['products that are no list', bo('b-odd', { products: 'p1' }), /products/],
  ['a createdAt that is no date ("2"): in every run that asks its show', bo('b-odd', { createdAt: '2' }), /createdAt/],
])('Bambuser: an order with %s is an invalid order, never healed; the others of the show are compared and healed', async (_what, odd, problem) => {
  bambuser = { showId: 's1', orders: [bo('b-ok-1'), odd, bo('b-ok-2')] };
  expectComparedAlone(await bambuserReport(), ['b-ok-1', 'b-odd', 'b-ok-2'], problem);
});

test('Bambuser: an order without an orderId still fails the report (malformed_response naming it)', async () => {
  bambuser = { showId: 's1', orders: [bo('b-ok-1'), { ...bo('x'), orderId: 7 }] };
  const err = await caught(bambuserReport());
  expect([err instanceof PermanentError && err.reason, (err as Error).message]).toEqual(['malformed_response', expect.stringContaining('GET /v1/stats/show/s1/orders: orders.1.orderId:')]);
});

test('an odd order without a date is reported by the run (counted, invalid_order), one dated outside the period is not', async () => {
  bambuser = { showId: 's1', orders: [bo('b-ok-1'), bo('b-undated', { createdAt: 'yesterday' }), bo('b-odd-old', { createdAt: '2020-01-01T00:00:00Z', orderValue: 'x' })] };
  const orders = await bambuserReport();
  expect(ids(orders).map(([id]) => id)).toEqual(['b-ok-1', 'b-undated']);
  const nowMs = Date.now();
  const ledger = { period: { fromMs: nowMs - 3600_000, toMs: nowMs }, lookup: async () => [], scan: async function* () {}, close: async () => undefined };
  const healed: string[] = [];
  const run = await reconcileTargetStream('t', pagesOf(orders), ledger, /cancel/i, async (cmp) => void healed.push(...cmp.heal.map((p) => p.orderId)));
  expect([run.platformOrders, healed, run.discrepancies.map((d) => [d.orderId, d.reason, d.healed])]).toEqual([2, ['b-ok-1'], [['b-ok-1', undefined, true], ['b-undated', 'invalid_order', false]]]);
});
