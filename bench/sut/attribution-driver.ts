/**
 * The process doing the attribution work in bench/attribution.bench.ts (one per system, so its
 * peak RSS is its own). Setup (not measured): a partner with one target, and clicks recorded with
 * `runtime.links.recordClick` (a pool inside the attribution window, a pool outside it). On `go`
 * it attributes ATTR_ORDERS partner orders (+ a partial refund for every 10th) with at most
 * ATTR_CONCURRENCY in flight, sampling process.memoryUsage().rss every 100 ms, and reports.
 *  - ATTR_MODE=ours: `runtime.attribution.handlePartnerEvent(partnerId, event, false)` per event — the
 *    attribution worker's processor minus BullMQ (no outbound endpoint is configured, so the
 *    `order_attributed` hook finds no subscriber, as for a partner without webhooks). `false` is the
 *    mark the order event's store puts on each of these jobs (AttributionJob.otherCurrency: every
 *    order is its order's first order.created), so the worker reads no recorded currency, as in service.
 *  - ATTR_MODE=bare: a minimal ledger on the same Redis client: GET the click (if any) + window
 *    check in JS, then one Lua call per order (EXISTS idempotency check, HSET order, RPUSH ledger
 *    entry) and one per refund (HSETNX refund id, HINCRBY refunded, RPUSH ledger entry), both by
 *    EVALSHA (defineCommand), as Syndicast calls its own scripts.
 * Env: the service's (REDIS_URL, KEY_PREFIX, SECRETS_KEY…) plus ATTR_MODE, ATTR_ORDERS,
 * ATTR_CONCURRENCY, ATTR_MAX_MS.
 */
import { performance } from 'node:perf_hooks';
import type { PartnerEvent } from '../../src/domain/events.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/lib/logger.js';
import type { LinkRecord } from '../../src/links/link.service.js';
import { createRuntime } from '../../src/main/runtime.js';
import { onStop, ready, requireEnv } from './child.js';

const mode = requireEnv('ATTR_MODE');
const N = Number(requireEnv('ATTR_ORDERS'));
const CONCURRENCY = Number(requireEnv('ATTR_CONCURRENCY'));
const MAX_MS = Number(requireEnv('ATTR_MAX_MS'));
const PARTNER = 'attr';
const TARGET = 'yt1';
const WINDOW_H = 168;

const rt = await createRuntime(loadConfig(process.env), 'worker', { log: createLogger('silent') });
onStop(async () => {
  await rt.close();
});

// ---- setup: partner, target, clicks ---------------------------------------------------------
const nowIso = new Date().toISOString();
await rt.partners.create({ id: PARTNER, name: 'Bench attribution', attributionWindowHours: WINDOW_H, reconcileCron: '0 3 * * *', reconcileLookbackDays: 7, createdAt: nowIso }, 'whsec_' + Buffer.alloc(24, 7).toString('base64'));
await rt.partners.createTarget({
  id: TARGET,
  partnerId: PARTNER,
  platform: 'youtube',
  name: 'YouTube',
  baseUrl: undefined,
  commissionRateBps: 1000,
  enabled: true,
  pinDelayMs: 0,
  credentialsSealed: rt.box.encrypt('{}'),
  createdAt: nowIso,
  updatedAt: nowIso,
});

async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>, deadline = Infinity): Promise<number> {
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n || Date.now() > deadline) return;
        await fn(i);
        done++;
      }
    }),
  );
  return done;
}

const link = (i: number): LinkRecord => {
  const showId = `show-${i % 100}`;
  const productId = `p${i % 20}`;
  return { code: rt.links.code(PARTNER, showId, TARGET, productId), partnerId: PARTNER, showId, targetId: TARGET, platform: 'youtube', productId, url: `https://shop.example.com/products/${productId}` };
};
const t0 = Date.now();
const inWindow: string[] = new Array<string>(Math.max(1, Math.min(100_000, Math.round(N * 0.4))));
const outside: string[] = new Array<string>(Math.max(1, Math.min(10_000, Math.round(N * 0.1))));
// clicks inside the window: up to 48 h before the orders; outside: 200 h before (window 168 h)
await pool(inWindow.length, 64, async (i) => {
  inWindow[i] = (await rt.links.recordClick(link(i), `10.0.${i % 250}.${i % 199}`, t0 - 1000 - ((i * 7919) % (48 * 3_600_000)))).id;
});
await pool(outside.length, 64, async (i) => {
  outside[i] = (await rt.links.recordClick(link(i), `10.1.${i % 250}.${i % 199}`, t0 - 200 * 3_600_000)).id;
});

// ---- the workload: deterministic mix --------------------------------------------------------
type Kind = 'click_in_window' | 'click_outside_window' | 'unknown_click' | 'no_click';
function kindOf(i: number): Kind {
  const r = (i * 2_654_435_761) % 100; // spread over i, same for both systems
  return r < 40 ? 'click_in_window' : r < 50 ? 'click_outside_window' : r < 60 ? 'unknown_click' : 'no_click';
}
const orderTime = new Date(t0).toISOString();
function orderEvent(i: number): Extract<PartnerEvent, { type: 'order.created' }> {
  const k = kindOf(i);
  const clickId = k === 'click_in_window' ? inWindow[i % inWindow.length] : k === 'click_outside_window' ? outside[i % outside.length] : k === 'unknown_click' ? `clk_unknown_${i}` : undefined;
  const amount = 1000 + (i % 50) * 100;
  return {
    type: 'order.created',
    occurredAt: orderTime,
    data: { order: { id: `o${i}`, ...(clickId ? { clickId } : {}), createdAt: orderTime, lines: [{ productId: `p${i % 20}`, quantity: 1, amount: { amount, currency: 'USD' } }], total: { amount, currency: 'USD' } } },
  };
}
const refunded = (i: number): boolean => i % 10 === 3;
function refundEvent(i: number): Extract<PartnerEvent, { type: 'order.refunded' }> {
  const amount = Math.round((1000 + (i % 50) * 100) * 0.3);
  return { type: 'order.refunded', occurredAt: orderTime, data: { refund: { id: `r${i}`, orderId: `o${i}`, createdAt: orderTime, amount: { amount, currency: 'USD' } } } };
}

// ---- bare ledger ----------------------------------------------------------------------------
const ORDER_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'order', ARGV[1], 'gross', ARGV[2], 'accrued', ARGV[3], 'refunded', 0, 'attribution', ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[5])
return 1`;
const REFUND_LUA = `
if redis.call('HSETNX', KEYS[1], 'refund:' .. ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'refunded', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1`;
// EVALSHA as any real implementation (and ours) calls its scripts: EVAL would send the script's text
// and make Redis hash it on every call, a cost the baseline has no reason to pay.
const bare = rt.redis as typeof rt.redis & {
  bareLedgerOrder(...args: (string | number)[]): Promise<number>;
  bareLedgerRefund(...args: (string | number)[]): Promise<number>;
};
bare.defineCommand('bareLedgerOrder', { numberOfKeys: 2, lua: ORDER_LUA });
bare.defineCommand('bareLedgerRefund', { numberOfKeys: 2, lua: REFUND_LUA });
const bareKey = (id: string): string => `bare:{${PARTNER}}:order:${id}`;
const bareLedger = `bare:{${PARTNER}}:ledger`;
async function bareOrder(e: Extract<PartnerEvent, { type: 'order.created' }>): Promise<boolean> {
  const o = e.data.order;
  let attribution: { showId: string; targetId: string } | null = null;
  if (o.clickId) {
    const raw = await rt.redis.get(rt.keys.click(o.clickId));
    if (raw) {
      const c = JSON.parse(raw) as { partnerId: string; showId: string; targetId: string; at: string };
      const delta = Date.parse(o.createdAt) - Date.parse(c.at);
      if (c.partnerId === PARTNER && delta >= 0 && delta <= WINDOW_H * 3_600_000) attribution = { showId: c.showId, targetId: c.targetId };
    }
  }
  const commission = attribution ? Math.round(o.total.amount * 0.1) : 0;
  const entry = JSON.stringify({ ref: o.id, kind: 'accrual', amount: commission, at: o.createdAt });
  await bare.bareLedgerOrder(bareKey(o.id), bareLedger, JSON.stringify(o), o.total.amount, commission, JSON.stringify(attribution), entry);
  return attribution !== null;
}
async function bareRefund(e: Extract<PartnerEvent, { type: 'order.refunded' }>): Promise<void> {
  const r = e.data.refund;
  await bare.bareLedgerRefund(bareKey(r.orderId), bareLedger, r.id, r.amount.amount, JSON.stringify({ ref: r.orderId, kind: 'refund', id: r.id, amount: r.amount.amount, at: r.createdAt }));
}

// ---- run on `go` ----------------------------------------------------------------------------
let peakRss = process.memoryUsage().rss;
let rssAtStart = peakRss;
const sample = setInterval(() => {
  const r = process.memoryUsage().rss;
  if (r > peakRss) peakRss = r;
}, 100);
sample.unref();

async function run(): Promise<void> {
  peakRss = rssAtStart = process.memoryUsage().rss;
  const outcomes: Record<string, number> = {};
  const count = (k: string): void => {
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  };
  let events = 0;
  let lastDone = 0;
  const start = performance.now();
  const deadline = Date.now() + MAX_MS;
  let done = 0;
  const progress = setInterval(() => {
    process.send?.({ type: 'progress', done, rate: Math.round((done - lastDone) / 10), rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) });
    lastDone = done;
  }, 10_000);
  done = await pool(
    N,
    CONCURRENCY,
    async (i) => {
      const ev = orderEvent(i);
      if (mode === 'ours') {
        const out = await rt.attribution.handlePartnerEvent(PARTNER, ev, false);
        count('attributed' in out && out.attributed ? 'attributed' : 'unattributed');
      } else {
        count((await bareOrder(ev)) ? 'attributed' : 'unattributed');
      }
      events++;
      if (refunded(i)) {
        if (mode === 'ours') await rt.attribution.handlePartnerEvent(PARTNER, refundEvent(i));
        else await bareRefund(refundEvent(i));
        count('refunds');
        events++;
      }
      done++;
    },
    deadline,
  );
  clearInterval(progress);
  const elapsedS = (performance.now() - start) / 1000;
  process.send?.({ type: 'done', orders: done, events, elapsedS, outcomes, truncated: done < N, rssAtStartMiB: rssAtStart / 2 ** 20, peakRssMiB: peakRss / 2 ** 20 });
}
process.on('message', (m: unknown) => {
  if ((m as { type?: string }).type === 'go') {
    run().catch((err: unknown) => {
      process.send?.({ type: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    });
  }
});
ready({ clicksInWindow: inWindow.length, clicksOutside: outside.length, setupS: (Date.now() - t0) / 1000 });
