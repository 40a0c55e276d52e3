/**
 * What a reconciliation run says it healed is what happened (the external contract §6), against the
 * Whatnot simulator over real HTTP, webhooks signed as Whatnot signs them.
 *
 * - An order the ledger holds, dated by its webhook just before the period, that the platform's report
 *   puts inside it (clock skew, a time zone): the by-period lookup missed it, so the run reported it
 *   `missing_in_ledger`, "added to the ledger", `healed: true`, and remembered that heal for every later
 *   run of the period. The heal added nothing (the order's ref was taken): the ledger holds it once, and
 *   the run now says so (no discrepancy). The two dates are 12 minutes apart, more than the margin
 *   (RECONCILE_CLOCK_SKEW_MS, 5 minutes: docs/attribution.md "Periods and clock skew"): the order is
 *   the period's the report dates it in, this one's, which compares and counts it.
 * - A run whose only target's report failed (the platform answers 500) listed the heals earlier runs of
 *   the period made (`healed: 1` beside `ledgerOrders: 0`): the target's report is failed in the run's
 *   result, and only heals this run made are listed. A later run that reads the report gives the first
 *   run's result again.
 * - A report that fails on its second page after the first healed an order: the heal is listed (this run
 *   made it), also when the attempt that healed it was interrupted and the job's retry, finding the order
 *   in the ledger, never healed it itself (the heals were kept in memory: the retry dropped it).
 */
import { createPartner, retryingUnavailable, waitFor, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { reconcileAndWait, simServicePerFile } from '../helpers/mirrors.js';
import { CREDENTIALS, OTHER_CREDENTIALS, postWhatnotWebhook } from '../helpers/platforms.js';
import type { TargetRecord } from '../../src/store/partner.repository.js';
import type { PlatformOrder, TargetAdapter } from '../../src/targets/target.adapter.js';
import { RetryableError } from '../../src/targets/target.errors.js';

const SECRET = 'whsec_' + Buffer.from('reconcile-honest-heals-secret').toString('base64');
let svc: TestService;
let sim: TestSim;

simServicePerFile((rig) => ({ sim, svc } = rig));

const HOUR = 3600_000;

/** A partner with one Whatnot target `targetId` on a seller of its own (the token), and a show of that seller on the platform. */
async function whatnotPartner(partnerId: string, targetId: string, token: string): Promise<string> {
  await createPartner(svc, partnerId);
  // (a 503 sent again: the target's credential check may time out under CI load)
  const t = await retryingUnavailable(() =>
    svc.api(`/v1/partners/${partnerId}/targets`, {
      json: { id: targetId, platform: 'whatnot', name: 'Whatnot', credentials: { accessToken: token, webhookSecret: SECRET }, baseUrl: sim.base('whatnot'), commissionRateBps: 1000, enabled: false },
    }),
  );
  expect(t.status).toBe(201);
  const { externalId } = (await sim.control('POST', '/_sim/whatnot/shows', { title: `${partnerId} show`, account: token })) as { externalId: string };
  return externalId;
}

/** Whatnot's `orders.created` webhook for `orderId` as our side receives it. */
function webhookBody(orderId: string, showId: string, createdAt: string, amount: string): string {
  return JSON.stringify({ type: 'orders.created', timestamp: new Date().toISOString(), data: { id: orderId, show_id: showId, status: 'completed', created_at: createdAt, amounts: { total: { amount, currency: 'USD' } } } });
}

// A target id with a ':' is looked up under its legacy ref too (attribution.service.ts targetLedger): its own path.
test.each([
  ['skew', 'wn', CREDENTIALS.whatnot.accessToken!, 30],
  ['skewc', 'wn:c', OTHER_CREDENTIALS.whatnot.accessToken!, 110],
])('an order the ledger dates just before the period and the report inside it is held: not reported missing, not healed, stored once (%s, target %s)', async (skew, wn, token, hoursAgo) => {
  const externalId = await whatnotPartner(skew, wn, token);
  const from = Date.now() - hoursAgo * HOUR;
  const to = from + 2 * HOUR;
  // The platform's report dates the order 10 minutes into the period; its webhook said 2 minutes before it.
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 2000, currency: 'USD' }, createdAt: new Date(from + 10 * 60_000).toISOString() })) as { orderId: string };
  const hook = await postWhatnotWebhook(svc, wn, SECRET, webhookBody(orderId, externalId, new Date(from - 2 * 60_000).toISOString(), '20.00'));
  expect(hook.status).toBe(200);
  expect(await hook.json()).toMatchObject({ stored: 1, new: 1 });

  const iso = (ms: number): string => new Date(ms).toISOString();
  const run1 = await reconcileAndWait(svc, skew, iso(from), iso(to));
  expect(run1.status).toBe('completed');
  expect(run1.discrepancies).toEqual([]);
  // the ledger dates it in the period before, 12 minutes from the report's date (more than the margin):
  // this period's order, compared and counted here (that period's report, widened by 5 minutes, does not name it)
  expect(run1.summary.targets).toEqual([expect.objectContaining({ targetId: wn, platformOrders: 1, ledgerOrders: 1, healed: 0 })]);
  const run2 = await reconcileAndWait(svc, skew, iso(from), iso(to));
  expect(run2.discrepancies).toEqual([]);

  // Stored once, with one accrual: the ledger's order, nothing added.
  const orders = await svc.rt.attribution.orders(skew);
  expect(orders.map((o) => [o.order.orderId, o.gross, o.entries.length])).toEqual([[orderId, 2000, 0]]);
  const view = (await (await svc.api(`/v1/partners/${skew}/attribution/orders/${orderId}?targetId=${encodeURIComponent(wn)}`)).json()) as { source: string };
  expect(view.source).toBe('platform_webhook');
}, 60_000);

test('a run whose only report failed lists no heal of earlier runs; the next run that reads it gives the first result again', async () => {
  const externalId = await whatnotPartner('failrep', 'wnb', OTHER_CREDENTIALS.whatnot.accessToken!);
  const from = Date.now() - 50 * HOUR;
  const to = from + 2 * HOUR;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 3000, currency: 'USD' }, createdAt: iso(from + HOUR) })) as { orderId: string };

  const run1 = await reconcileAndWait(svc, 'failrep', iso(from), iso(to));
  expect(run1.status).toBe('completed');
  expect(run1.discrepancies.map((d) => [d.orderId, d.kind, d.healed])).toEqual([[orderId, 'missing_in_ledger', true]]);

  await sim.control('PUT', '/_sim/whatnot/faults', { rate: 1, kinds: ['500'] });
  let run2;
  try {
    run2 = await reconcileAndWait(svc, 'failrep', iso(from), iso(to));
  } finally {
    await sim.control('PUT', '/_sim/whatnot/faults', { rate: 0, kinds: [] });
  }
  expect(run2.status).toBe('failed');
  expect(run2.summary.targets).toEqual([expect.objectContaining({ targetId: 'wnb', error: expect.stringMatching(/^whatnot: /), healed: 0 })]);
  expect(run2.discrepancies).toEqual([]);
  expect((run2.summary as unknown as { healed: number }).healed).toBe(0);

  const run3 = await reconcileAndWait(svc, 'failrep', iso(from), iso(to));
  expect(run3.status).toBe('completed');
  expect(run3.discrepancies).toEqual(run1.discrepancies);
  await waitFor(async () => (await svc.rt.attribution.orders('failrep')).length === 1);
}, 90_000);

/**
 * `targetId`'s order report served as the real report's orders in one page, then the error `after(n)`
 * (n: the report's read, from 1): a report that fails on its second page. Returns the undo.
 */
function secondPageFails(targetId: string, after: (read: number) => Error): () => void {
  const sync = svc.rt.syncService;
  const real = sync.adapterFor.bind(sync);
  let reads = 0;
  const adapterFor = (t: TargetRecord): TargetAdapter | null => {
    const a = real(t);
    if (t.id !== targetId || !a?.orderPages) return a;
    const pages = a.orderPages.bind(a);
    async function* orderPages(from: Date, to: Date, signal?: AbortSignal): AsyncGenerator<PlatformOrder[]> {
      const all: PlatformOrder[] = [];
      for await (const page of pages(from, to, signal)) all.push(...page);
      yield all;
      throw after(++reads);
    }
    return new Proxy(a, { get: (obj, k) => (k === 'orderPages' ? orderPages : Reflect.get(obj, k)) });
  };
  Object.assign(sync, { adapterFor });
  return () => void Reflect.deleteProperty(sync, 'adapterFor');
}

test('a report that fails on its second page lists the order its first page healed', async () => {
  const externalId = await whatnotPartner('page2', 'wnp', OTHER_CREDENTIALS.whatnot.accessToken!);
  const from = Date.now() - 70 * HOUR;
  const to = from + 2 * HOUR;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 1500, currency: 'USD' }, createdAt: iso(from + HOUR) })) as { orderId: string };
  const undo = secondPageFails('wnp', () => new RetryableError('Whatnot API answered 502', { reason: 'http_502' }));
  let run;
  try {
    run = await reconcileAndWait(svc, 'page2', iso(from), iso(to));
  } finally {
    undo();
  }
  expect(run.status).toBe('failed');
  expect(run.summary.targets).toEqual([expect.objectContaining({ targetId: 'wnp', error: 'whatnot: Whatnot API answered 502', healed: 1 })]);
  expect(run.discrepancies.map((d) => [d.orderId, d.kind, d.healed])).toEqual([[orderId, 'missing_in_ledger', true]]);
  expect((await svc.rt.attribution.orders('page2')).map((o) => [o.order.orderId, o.gross])).toEqual([[orderId, 1500]]);
}, 60_000);

test('a heal made by an interrupted attempt of the run is listed when the retry finds its report failing', async () => {
  const externalId = await whatnotPartner('retried', 'wnr', CREDENTIALS.whatnot.accessToken!);
  const from = Date.now() - 90 * HOUR;
  const to = from + 2 * HOUR;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 2500, currency: 'USD' }, createdAt: iso(from + HOUR) })) as { orderId: string };
  // Attempt 1 heals the order on page 1 and is interrupted (the worker closing, a crash: no report
  // error, so the job is retried from the start); attempt 2 finds the order held and its page 2 fails.
  const undo = secondPageFails('wnr', (read) => (read === 1 ? new Error('interrupted (test)') : new RetryableError('Whatnot API answered 502', { reason: 'http_502' })));
  const retry = svc.rt.reconcile.retry;
  Object.assign(svc.rt.reconcile, { retry: { attempts: 3, backoffMs: 50 } });
  let run;
  try {
    run = await reconcileAndWait(svc, 'retried', iso(from), iso(to));
  } finally {
    Object.assign(svc.rt.reconcile, { retry });
    undo();
  }
  expect(run.status).toBe('failed');
  expect(run.summary.targets).toEqual([expect.objectContaining({ targetId: 'wnr', error: 'whatnot: Whatnot API answered 502', ledgerOrders: 0, healed: 1 })]);
  expect(run.discrepancies.map((d) => [d.orderId, d.kind, d.healed])).toEqual([[orderId, 'missing_in_ledger', true]]);
  expect((await svc.rt.attribution.orders('retried')).map((o) => [o.order.orderId, o.gross])).toEqual([[orderId, 2500]]);
}, 60_000);

test('a missing_in_ledger heal remembered by the code before run ids for an order its webhook stored is not listed again', async () => {
  const externalId = await whatnotPartner('oldheal', 'wno', CREDENTIALS.whatnot.accessToken!);
  const from = Date.now() - 130 * HOUR;
  const to = from + 2 * HOUR;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const { orderId } = (await sim.control('POST', '/_sim/whatnot/orders', { externalId, productId: 'p1', total: { amount: 1200, currency: 'USD' }, createdAt: iso(from + 10 * 60_000) })) as { orderId: string };
  const hook = await postWhatnotWebhook(svc, 'wno', SECRET, webhookBody(orderId, externalId, iso(from - 2 * 60_000), '12.00'));
  expect(await hook.json()).toMatchObject({ stored: 1, new: 1 });
  // What the old by-period lookup remembered (no run id): a heal that added nothing, the order being held.
  const key = svc.rt.keys.reconHealedDay('oldheal', Math.floor((from + 10 * 60_000) / 86_400_000));
  const heal = { kind: 'missing_in_ledger', targetId: 'wno', orderId, detail: 'platform reports 12.00 USD; added to the ledger', healed: true, createdAtMs: from + 10 * 60_000 };
  await svc.rt.redis.hset(key, `wno\u0000${orderId}\u0000missing_in_ledger`, JSON.stringify(heal));

  const run = await reconcileAndWait(svc, 'oldheal', iso(from), iso(to));
  expect(run.status).toBe('completed');
  expect(run.discrepancies).toEqual([]);
  // (the ledger dates the order in the period before, 12 minutes from the report's date, more than the margin: this period's, counted here)
  expect(run.summary.targets).toEqual([expect.objectContaining({ targetId: 'wno', ledgerOrders: 1, healed: 0 })]);
}, 60_000);
