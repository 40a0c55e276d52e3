/**
 * A platform order re-sent with another total (or currency) than the ledger holds (docs/attribution.md
 * "An order re-sent with another total"). The ledger keeps the total it stored first (first write wins
 * by ref, entries append-only) and the webhook was answered `stored: 1, new: 0`, as if the new total had
 * been taken. The answer now counts such an order apart (`conflicting`, with the ledger's and the sent
 * total), it is logged and counted (`syndicast_platform_order_conflicts_total`), and reconciliation
 * reports the amount_mismatch against the platform's report. No correction entry is appended: the
 * commission stays round-half-up(first total × rate / 10000) whatever is re-sent, in whatever order.
 * Real redis-server, the Whatnot simulator, real HTTP, webhooks signed as Whatnot signs them.
 */
import fc from 'fast-check';
import { createPartner, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { reconcileAndWait, simServicePerFile } from '../helpers/mirrors.js';
import { CREDENTIALS, postWhatnotWebhook } from '../helpers/platforms.js';
import { ExternalShowIndex } from '../../src/store/external-show.index.js';

const P = 'pupdate';
const T = 'wnupd';
const SECRET = 'whsec_' + Buffer.from('platform-webhooks-money-update').toString('base64');
const RATE = 1234;
let svc: TestService;
let sim: TestSim;
let externalId = '';

simServicePerFile((rig) => ({ sim, svc } = rig));

beforeAll(async () => {
  await createPartner(svc, P);
  const t = await svc.api(`/v1/partners/${P}/targets`, {
    json: { id: T, platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: CREDENTIALS.whatnot.accessToken!, webhookSecret: SECRET }, baseUrl: sim.base('whatnot'), commissionRateBps: RATE, enabled: false },
  });
  expect(t.status).toBe(201);
  ({ externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: 'update show' })) as { externalId: string });
  // The platform show is ours (what a mirror's sync or an operator link writes): its orders are attributed (rule 2).
  await new ExternalShowIndex(svc.rt.redis, svc.rt.keys).set(T, externalId, 'show-upd');
});

/** Whatnot's webhook for `orderId` with `total` (minor units, in `currency`). */
function body(orderId: string, total: number, currency: string, createdAt: string, type = 'orders.updated'): string {
  const exp = currency === 'JPY' ? 0 : 2;
  const amount = exp === 0 ? String(total) : `${Math.floor(total / 100)}.${String(total % 100).padStart(2, '0')}`;
  return JSON.stringify({ type, timestamp: new Date().toISOString(), data: { id: orderId, show_id: externalId, status: 'completed', created_at: createdAt, amounts: { total: { amount, currency } } } });
}

async function send(orderId: string, total: number, currency: string, createdAt: string): Promise<Record<string, unknown>> {
  const r = await postWhatnotWebhook(svc, T, SECRET, body(orderId, total, currency, createdAt));
  expect(r.status).toBe(200);
  return (await r.json()) as Record<string, unknown>;
}

interface View {
  total: { amount: number; currency: string };
  accrued: number;
  reversed: number;
  entries: { kind: string; amount: number; base: number; currency: string }[];
}
const view = async (orderId: string): Promise<View> => (await (await svc.api(`/v1/partners/${P}/attribution/orders/${orderId}?targetId=${T}`)).json()) as View;

async function conflictsCounted(): Promise<number> {
  const text = await (await svc.api('/metrics')).text();
  const m = /^syndicast_platform_order_conflicts_total\{platform_source="webhook"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const halfUp = (amount: number, bps: number): number => Number((BigInt(amount) * BigInt(bps) + 5000n) / 10000n);

test('another total or currency for a stored order: answered as conflicting (not stored), counted; the ledger keeps its total; reconciliation reports the amount_mismatch', async () => {
  const from = Date.now() - 3 * 3600_000;
  const createdAt = new Date(from + 3600_000).toISOString();
  // The platform's report has the later total (25.00); its first webhook said 20.00.
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 2500, currency: 'USD' }, createdAt })) as { orderId: string };
  const none = { conflicting: 0, conflictingOrders: [] };
  expect(await send(orderId, 2000, 'USD', createdAt)).toEqual({ received: 1, stored: 1, new: 1, otherTargetOrders: 0, ...none });
  const first = await view(orderId);
  expect(first).toMatchObject({ total: { amount: 2000, currency: 'USD' }, accrued: halfUp(2000, RATE), reversed: 0 });
  const counted = await conflictsCounted();

  expect(await send(orderId, 2500, 'USD', createdAt)).toEqual({
    received: 1,
    stored: 0,
    new: 0,
    otherTargetOrders: 0,
    conflicting: 1,
    conflictingOrders: [{ orderId, ledgerTotal: { amount: 2000, currency: 'USD' }, platformTotal: { amount: 2500, currency: 'USD' } }],
  });
  expect(await send(orderId, 2000, 'EUR', createdAt)).toMatchObject({ stored: 0, conflicting: 1, conflictingOrders: [{ orderId, ledgerTotal: { amount: 2000, currency: 'USD' }, platformTotal: { amount: 2000, currency: 'EUR' } }] });
  // The same total again is the stored order (a repeat): stored, not new, no conflict.
  expect(await send(orderId, 2000, 'USD', createdAt)).toEqual({ received: 1, stored: 1, new: 0, otherTargetOrders: 0, ...none });
  expect(await conflictsCounted()).toBe(counted + 2);
  // The ledger is as the first webhook left it: no entry appended, no entry changed.
  expect(await view(orderId)).toEqual(first);

  const run = await reconcileAndWait(svc, P, new Date(from).toISOString(), new Date(Date.now() + 60_000).toISOString());
  expect(run.status).toBe('completed');
  expect(run.discrepancies).toEqual([expect.objectContaining({ kind: 'amount_mismatch', targetId: T, orderId, healed: false, detail: 'ledger 2000 USD, platform 2500 USD' })]);
  expect(await view(orderId)).toEqual(first);
}, 60_000);

/**
 * Any sequence of re-sent totals (amounts, currencies, repeats) for one order, in any order: each answer
 * says conflicting exactly when the total or currency is not the first one's, and the ledger keeps the
 * first total with its one accrual of round-half-up(total × rate / 10000), never a correction.
 */
test('property: whatever totals are re-sent and in whatever order, the first stands and only differing ones are conflicting', async () => {
  let n = 0;
  const money = fc.record({ amount: fc.integer({ min: 0, max: 5_000_000 }), currency: fc.constantFrom('USD', 'EUR', 'JPY') });
  await fc.assert(
    fc.asyncProperty(fc.array(money, { minLength: 1, maxLength: 6 }), async (totals) => {
      const orderId = `prop-${++n}`;
      const createdAt = new Date(Date.now() - 3600_000).toISOString();
      const [head] = totals;
      for (const [i, t] of totals.entries()) {
        const answer = await send(orderId, t.amount, t.currency, createdAt);
        const differs = t.amount !== head!.amount || t.currency !== head!.currency;
        expect(answer).toMatchObject({ received: 1, stored: differs ? 0 : 1, new: i === 0 ? 1 : 0, conflicting: differs ? 1 : 0 });
      }
      const v = await view(orderId);
      expect(v.total).toEqual(head);
      expect(v.accrued).toBe(halfUp(head!.amount, RATE));
      // one entry, the first total's accrual (a zero one too): no correction appended
      expect(v.entries).toEqual([expect.objectContaining({ kind: 'accrual', amount: halfUp(head!.amount, RATE), base: head!.amount, currency: head!.currency })]);
    }),
    // (a zero total has its zero accrual; the same amount in another currency is a conflict)
    { numRuns: 25, examples: [[[{ amount: 0, currency: 'USD' }, { amount: 1, currency: 'USD' }, { amount: 0, currency: 'JPY' }, { amount: 0, currency: 'USD' }]]] },
  );
}, 120_000);
