/**
 * Reconciliation (the external contract §6) against a platform whose order report is wrong, over real
 * HTTP: a loopback proxy in front of the Bambuser simulator rewrites its answers.
 *
 * - The show list names the same show on two pages (its cursor does not move past it), and a show's
 *   order report names the same order twice. The adapter read the show's report once per listing and
 *   handed over every order as often as it was named: the run counted each order several times
 *   (`platformOrders`) and listed its `missing_in_ledger` discrepancy several times. The report is
 *   each order once, as the adapter contract says (TikTok and Whatnot already kept the ids seen).
 * - An order with a negative total (the report's decimal text admits "-18.00"). The ledger refuses it
 *   (`platform order skipped`), but the run reported it `missing_in_ledger`, "added to the ledger",
 *   `healed: true`, and remembered that heal for every later run of the period. It is now a
 *   discrepancy that is not healed, with `reason: "invalid_order"`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPartner, sampleShow, sendEvent, showEvent, type TestService } from '../helpers/service.js';
import type { TestSim } from '../helpers/sim.js';
import { addTarget, reconcileAndWait, simServicePerFile, simTarget, waitForMirror, type ReconRun } from '../helpers/mirrors.js';
import { isoFromNow } from '../helpers/clock.js';

const P = 'hostilerep';
let svc: TestService;
let sim: TestSim;
let proxy: http.Server;
let proxyUrl = '';

simServicePerFile((rig) => ({ sim, svc } = rig), { prepare: (s) => s.control('PUT', '/_sim/bambuser/limits', { requestsPerWindow: null }) });

type Json = Record<string, unknown>;

/** What the proxy does to the simulator's answer of `path` (JSON in, JSON out). */
function rewrite(path: string, body: Json): Json {
  if (/\/v1\/shows(\?|$)/.test(path)) {
    // The first page's cursor leads to a second page that names the same shows again, then ends.
    return path.includes('cursor=again') ? { ...body, cursor: null } : { ...body, cursor: 'again' };
  }
  const orders = /\/v1\/stats\/show\/[^/]+\/orders$/.exec(path.split('?')[0]!);
  if (orders) {
    const list = (body.orders as Json[]) ?? [];
    const first = list[0];
    const negative = first ? [{ ...first, orderId: `${String(first.orderId)}-neg`, orderValue: '-18.00' }] : [];
    return { ...body, orders: [...list, ...list, ...negative] };
  }
  return body;
}

beforeAll(async () => {
  const upstream = new URL(sim.base('bambuser'));
  proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const headers = { ...req.headers, host: upstream.host };
      // (The second page is the simulator's first again: it does not know the cursor.)
      const forwarded = path.replace(/([?&])cursor=again(&|$)/, '$1').replace(/[?&]$/, '');
      const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: forwarded, headers }, (up) => {
        const got: Buffer[] = [];
        up.on('data', (c: Buffer) => got.push(c));
        up.on('end', () => {
          let body = Buffer.concat(got);
          if (req.method === 'GET' && (up.statusCode ?? 0) < 300 && String(up.headers['content-type']).includes('json')) {
            body = Buffer.from(JSON.stringify(rewrite(path, JSON.parse(body.toString('utf8')) as Json)));
          }
          const h = { ...up.headers, 'content-length': String(body.length) };
          delete h['transfer-encoding'];
          res.writeHead(up.statusCode ?? 502, h).end(body);
        });
      });
      out.on('error', () => res.writeHead(502).end());
      out.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}${upstream.pathname}`;
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
});

const reconcile = (from: string, to: string): Promise<ReconRun> => reconcileAndWait(svc, P, from, to);

test('a report naming a show and an order twice, and an order with a negative total: each order once, and the refused one not reported healed', async () => {
  const secret = await createPartner(svc, P);
  await addTarget(svc, P, { ...simTarget(sim, 'bambuser', { id: 'bmb', name: 'Bambuser', commissionRateBps: 1000, rateLimit: { requests: 10_000, windowMs: 1000 } }), baseUrl: proxyUrl });
  const show = sampleShow('dup1', { scheduledAt: isoFromNow(3 * 3600_000) });
  await sendEvent(svc, P, secret, showEvent('show.scheduled', show, new Date().toISOString()));
  const mirror = await waitForMirror(svc, P, 'dup1', (m) => m.state === 'ready' && m.externalId !== null, { targetId: 'bmb', failedIsError: true });
  const order = (await sim.control('POST', '/_sim/bambuser/orders', { externalId: mirror.externalId, productId: 'p1', total: { amount: 1800, currency: 'USD' } })) as { orderId: string };

  const from = new Date(Date.now() - 3600_000).toISOString();
  const to = new Date(Date.now() + 60_000).toISOString();
  const run1 = await reconcile(from, to);
  expect(run1.status).toBe('completed');
  const neg = `${order.orderId}-neg`;
  const expected = [
    { kind: 'missing_in_ledger', targetId: 'bmb', orderId: order.orderId, healed: true },
    { kind: 'missing_in_ledger', targetId: 'bmb', orderId: neg, healed: false, reason: 'invalid_order' },
  ].sort((a, b) => a.orderId.localeCompare(b.orderId));
  expect(run1.discrepancies.map(({ kind, targetId, orderId, healed, reason }) => ({ kind, targetId, orderId, healed, ...(reason ? { reason } : {}) }))).toEqual(expected);
  expect(run1.summary.targets).toEqual([expect.objectContaining({ targetId: 'bmb', platformOrders: 2, ledgerOrders: 0, healed: 1 })]);

  // The ledger holds the order once (the negative one not at all); a re-run finds the same.
  const report = (await (await svc.api(`/v1/partners/${P}/attribution`)).json()) as { totals: { showId: string; orders: number; grossAmount: number }[] };
  expect(report.totals).toEqual([expect.objectContaining({ showId: 'dup1', orders: 1, grossAmount: 1800 })]);
  const run2 = await reconcile(from, to);
  expect(run2.discrepancies).toEqual(run1.discrepancies);
  expect(run2.summary.targets).toEqual([expect.objectContaining({ targetId: 'bmb', platformOrders: 2, ledgerOrders: 1, healed: 1 })]);
}, 90_000);
