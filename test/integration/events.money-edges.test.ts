/**
 * Money in partner events (order.created / order.refunded) at and past 2^53: nothing is stored rounded
 * and nothing answers 5xx. JSON.parse rounds every number literal to a double, so a literal that reads
 * as a safe integer it is not (`1.0000000000000001` → 1, `9007199254740990.6` → 9007199254740991) was
 * accepted as that integer and stored: now a 400 naming it. Literals past 2^53 − 1 (the documented
 * maximum per amount) and fractions are refused by the schema; `1e3` is exactly 1000 and `-0` exactly 0.
 * Real redis-server, real HTTP, signed bodies written by hand (JSON.stringify cannot write these).
 */
import { createPartner, sendEvent, startService, waitFor, type TestService } from '../helpers/service.js';

const P = 'evmoney';
let svc: TestService;
let secret: string;

beforeAll(async () => {
  svc = await startService({ workers: true });
  secret = await createPartner(svc, P);
}, 60_000);

afterAll(async () => {
  await svc?.close();
});

let seq = 0;
const created = (id: string, amount: string): string =>
  `{"type":"order.created","occurredAt":"2026-11-24T18:00:00Z","data":{"order":{"id":"${id}","createdAt":"2026-11-24T18:00:00Z","lines":[{"productId":"p1","quantity":1,"amount":{"amount":${amount},"currency":"USD"}}],"total":{"amount":${amount},"currency":"USD"}}}}`;
const refunded = (id: string, orderId: string, amount: string): string =>
  `{"type":"order.refunded","occurredAt":"2026-11-24T18:10:00Z","data":{"refund":{"id":"${id}","orderId":"${orderId}","createdAt":"2026-11-24T18:10:00Z","amount":{"amount":${amount},"currency":"USD"}}}}`;

async function post(body: string): Promise<Response> {
  return sendEvent(svc, P, secret, undefined, { body, webhookId: `msg_money_${++seq}` });
}

const orderView = async (id: string): Promise<Response> => svc.api(`/v1/partners/${P}/attribution/orders/${id}`);

test.each([
  ['9007199254740993 (2^53 + 1, reads as 2^53)', '9007199254740993'],
  ['9007199254740992 (2^53)', '9007199254740992'],
  ['1e300', '1e300'],
  ['1.0000000000000001 (reads as 1)', '1.0000000000000001'],
  ['9007199254740990.6 (reads as 9007199254740991)', '9007199254740990.6'],
  ['4503599627370495.5 (reads as 4503599627370496)', '4503599627370495.5'],
  ['12.5', '12.5'],
  ['"1e3" (a string)', '"1e3"'],
  ['-1 (negative)', '-1'],
])('order.created with amount %s → 400 problem+json, nothing stored', async (_name, amount) => {
  const id = `o-bad-${++seq}`;
  const r = await post(created(id, amount));
  expect(r.status).toBe(400);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(((await r.json()) as { status: number }).status).toBe(400);
  expect((await orderView(id)).status).toBe(404);
});

test.each([
  ['1e3 is exactly 1000', '1e3', 1000],
  ['100.0 is exactly 100', '100.0', 100],
  ['-0 is exactly 0', '-0', 0],
  ['2^53 − 1 is the maximum', '9007199254740991', Number.MAX_SAFE_INTEGER],
])('order.created with amount %s → 202, stored exactly', async (_name, amount, exact) => {
  const id = `o-ok-${++seq}`;
  const r = await post(created(id, amount));
  expect(r.status).toBe(202);
  const text = await waitFor(async () => {
    const v = await orderView(id);
    return v.status === 200 ? v.text() : undefined;
  }, 20_000);
  expect(text).toMatch(new RegExp(`"amount":${exact}[,}]`));
});

test('order.refunded: an amount JSON.parse would round is refused; past the order total it never goes below zero', async () => {
  const id = `o-ref-${++seq}`;
  expect((await post(created(id, '1000'))).status).toBe(202);
  for (const amount of ['1.0000000000000001', '9007199254740993', '1e300', '-0', '-5', '"5"']) {
    const r = await post(refunded(`rf-${++seq}`, id, amount));
    expect({ amount, status: r.status }).toEqual({ amount, status: 400 });
  }
  expect((await post(refunded(`rf-${++seq}`, id, '9007199254740991'))).status).toBeLessThan(500);
});
