/**
 * Issue 12 §7 — the ledger at volume, on its own redis-server:
 *  1. Redis bytes per settled order: BENCH_LEDGER_ORDERS (default 100,000) partner orders stored the
 *     way the attribution worker stores them (AttributionRepository.applyOrder, markNotified for the
 *     attributed ones, a 30 % refund for every 10th), spread over 30 days; `used_memory` after −
 *     before, and `MEMORY USAGE` per key kind (order records, day sets, aggregates).
 *  2. Reports from the aggregates: the partner report over the 30 days (whole days: aggregates only)
 *     and over a period with two partly covered days, and a show report; wall time of each.
 *  3. Reconciling BENCH_LEDGER_RECONCILE (default 1,000,000) platform orders of one target against
 *     the ledger in a child process (bench/sut/ledger-reconcile.ts: reconcileTargetStream, as
 *     ReconcileService.run uses it, with heals): wall time and peak RSS of that process.
 * Goals (absolute): ≤ 600 B per settled order; reconcile < 60 s with RSS < 300 MB.
 * The baseline row is the goal itself (no bare system: the goals are absolute).
 */
import { Redis } from 'ioredis';
import { AttributionService } from '../src/attribution/attribution.service.js';
import { createLogger } from '../src/lib/logger.js';
import { AttributionRepository, DAY_MS } from '../src/store/attribution.repository.js';
import { Keys } from '../src/store/keys.js';
import type { BenchContext, BenchResult, Benchmark } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { startChild } from './lib/proc.js';
import { startBenchRedis } from './lib/redis-server.js';
import { serviceEnv } from './lib/service.js';
import { round } from './lib/stats.js';
import { ledgerPlatformOrder, partnerOrderOf, platformOrderOf } from './sut/ledger-shape.js';

async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        await fn(i);
      }
    }),
  );
}

async function usedMemory(c: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await c.info('memory'))?.[1] ?? Number.NaN);
}

/** MEMORY USAGE summed per key kind over the keys matching `pattern`. */
async function memoryByKind(c: Redis, pattern: string): Promise<Record<string, { keys: number; bytes: number }>> {
  const out: Record<string, { keys: number; bytes: number }> = {};
  let cursor = '0';
  do {
    const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const kind = /:(o|d|a|s|days)(?::[^:]*)?$/.exec(k)?.[1] ?? 'other';
      const bytes = Number(await c.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'));
      const e = (out[kind] ??= { keys: 0, bytes: 0 });
      e.keys += 1;
      e.bytes += bytes;
    }
  } while (cursor !== '0');
  return out;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, performance.now() - t];
}

export const ledgerBench: Benchmark = {
  name: 'ledger',
  title: 'Ledger at volume: Redis bytes per settled order, reports from aggregates, streamed reconciliation',
  issue: '12',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    const memOrders = ctx.quick ? 20_000 : Number(process.env['BENCH_LEDGER_ORDERS'] ?? 100_000);
    const reconOrders = ctx.quick ? 50_000 : Number(process.env['BENCH_LEDGER_RECONCILE'] ?? 1_000_000);
    const notes: string[] = [];
    const redis = await startBenchRedis('everysec');
    const se = serviceEnv(redis.url);
    const client = new Redis(redis.url);
    try {
      const keys = new Keys(se.keyPrefix);
      const repo = new AttributionRepository(client, keys);
      const nowMs = Date.now();
      const holdMs = 30 * DAY_MS;
      const opts = { nowMs, holdMs };

      // 1. bytes per settled order
      const before = await usedMemory(client);
      const [, fillMs] = await timed(() =>
        pool(memOrders, 128, async (i) => {
          const { order, attribution, refund } = partnerOrderOf(i, nowMs);
          const res = await repo.applyOrder('mem', order, attribution, opts);
          if (res.attributed) await repo.markNotified('mem', order.ref);
          if (refund !== null) await repo.applyRefund('mem', order.ref, { id: `rf_${i}`, amount: refund, currency: 'USD', createdAt: order.createdAt }, opts);
        }),
      );
      const after = await usedMemory(client);
      const bytesPerOrder = (after - before) / memOrders;
      const byKind = await memoryByKind(client, `${se.keyPrefix}:{lg:mem:*`);
      const usageTotal = Object.values(byKind).reduce((t, k) => t + k.bytes, 0);
      ctx.log(`  ${memOrders.toLocaleString('en-US')} orders stored in ${round(fillMs / 1000, 1)} s: used_memory +${round((after - before) / 2 ** 20, 1)} MiB = ${round(bytesPerOrder, 0)} B/order; MEMORY USAGE ${JSON.stringify(byKind)}`);

      // 2. reports
      const svc = new AttributionService({ repo, partners: null as never, links: null as never, externalShows: null as never, log: createLogger('silent'), holdDays: 30, now: () => nowMs });
      const dayNow = Math.floor(nowMs / DAY_MS);
      const [whole, wholeMs] = await timed(() => svc.report('mem', { fromMs: (dayNow - 30) * DAY_MS, toMs: (dayNow + 1) * DAY_MS }));
      const [, partMs] = await timed(() => svc.report('mem', { fromMs: nowMs - 10 * DAY_MS, toMs: nowMs - 3 * DAY_MS }));
      const [, showMs] = await timed(() => svc.showReport('mem', 'show-7', {}));
      const wholeOrders = whole.totals.reduce((t, r) => t + r.orders, 0) + whole.unattributed.reduce((t, r) => t + r.orders, 0);
      ctx.log(`  reports: 31 whole days ${round(wholeMs, 0)} ms (${wholeOrders} orders counted), 7 days with two partial ${round(partMs, 0)} ms, show report ${round(showMs, 0)} ms`);

      // 3. reconcile
      const fromMs = nowMs - 3 * DAY_MS;
      const toMs = nowMs;
      const [, reconFillMs] = await timed(() =>
        pool(reconOrders, 128, async (i) => {
          if (i % 1000 === 0) return; // missing in the ledger
          const p = platformOrderOf(i, fromMs, toMs);
          const { order, attribution } = ledgerPlatformOrder('wn1', p, i % 1000 === 2 ? 1 : 0);
          await repo.applyOrder('rec', order, attribution, opts);
        }),
      );
      ctx.log(`  ledger filled with ${reconOrders.toLocaleString('en-US')} platform orders in ${round(reconFillMs / 1000, 1)} s; reconciling in a child process`);
      const child = await startChild('bench/sut/ledger-reconcile.ts', {
        name: 'ledger-reconcile',
        env: { ...se.env, LEDGER_ORDERS: String(reconOrders), LEDGER_PARTNER: 'rec', LEDGER_TARGET: 'wn1', LEDGER_FROM_MS: String(fromMs), LEDGER_TO_MS: String(toMs) },
        ready: 'ipc',
        readyTimeoutMs: 120_000,
        profileDir: ctx.profileDir,
      });
      let done: { elapsedS: number; platformOrders: number; ledgerOrders: number; discrepancies: Record<string, number>; healed: number; rssAtStartMiB: number; peakRssMiB: number; vmHwmMiB: number | null };
      try {
        done = await new Promise((res, rej) => {
          child.proc.on('message', (m: { type?: string; error?: string }) => {
            if (m.type === 'done') res(m as typeof done);
            else if (m.type === 'failed') rej(new Error(`ledger-reconcile: ${m.error}`));
          });
          child.proc.once('exit', (code) => rej(new Error(`ledger-reconcile exited with ${code}`)));
          child.proc.send({ type: 'go' });
        });
      } finally {
        await child.stop();
      }
      const peakMiB = Math.max(done.peakRssMiB, done.vmHwmMiB ?? 0);
      ctx.log(`  reconciled ${done.platformOrders.toLocaleString('en-US')} platform orders vs ${done.ledgerOrders.toLocaleString('en-US')} ledger orders in ${round(done.elapsedS, 1)} s, peak RSS ${round(peakMiB, 0)} MiB (at start ${round(done.rssAtStartMiB, 0)}), discrepancies ${JSON.stringify(done.discrepancies)}`);

      const memMet = bytesPerOrder <= 600;
      const reconMet = done.elapsedS < 60 && peakMiB < 300;
      notes.push(
        `bytes per settled order: ${round(bytesPerOrder, 0)} (used_memory delta over ${memOrders.toLocaleString('en-US')} orders; MEMORY USAGE of the ledger's keys ${round(usageTotal / memOrders, 0)} B/order) — goal ≤ 600: ${memMet ? 'met' : 'NOT met'}`,
        `reconcile ${reconOrders.toLocaleString('en-US')} platform orders: ${round(done.elapsedS, 1)} s, peak RSS ${round(peakMiB, 0)} MiB — goal < 60 s and < 300 MB: ${reconMet ? 'met' : 'NOT met'}`,
        `reports: 31 whole days from the aggregates ${round(wholeMs, 0)} ms; a 7-day period with two partly covered days ${round(partMs, 0)} ms; one show's report ${round(showMs, 0)} ms`,
      );
      const rows = [
        ratioRow({
          scenario: `reconcile ${reconOrders.toLocaleString('en-US')} platform orders of one target against the ledger (streamed; ${done.healed} healed)`,
          unit: 'orders/s',
          ours: {
            throughput: round(done.platformOrders / done.elapsedS, 0),
            count: done.platformOrders,
            extra: { elapsedS: round(done.elapsedS, 1), peakRssMiB: round(peakMiB, 1), rssAtStartMiB: round(done.rssAtStartMiB, 1), discrepancies: done.discrepancies, ledgerOrders: done.ledgerOrders },
          },
          baseline: { throughput: round(reconOrders / 60, 0) },
          baselineLabel: 'the goal: all orders in 60 s',
          ratioOf: 'throughput',
          goal: { ratio: 'throughput', min: 1 },
        }),
      ];
      return {
        ...resultHead(this, started),
        setup: {
          memoryOrders: memOrders,
          memoryMix: '40 % attributed by click (100 shows, 2 targets, 20 products), 20 % click id that did not attribute, 40 % none; 26-character order and click ids; every 10th refunded 30 %; created over 30 days',
          bytesPerOrder: round(bytesPerOrder, 0),
          memoryUsageByKind: byKind,
          fillSeconds: round(fillMs / 1000, 1),
          reportMs: { wholeDays31: round(wholeMs, 0), sevenDaysTwoPartial: round(partMs, 0), showReport: round(showMs, 0) },
          reconcileOrders: reconOrders,
          reconcileShape: 'order i: i%1000==0 missing in the ledger (healed), ==1 refunded on the platform (healed), ==2 other total in the ledger, ==3 not in the report; 3-day period',
          reconcile: done,
          redis: 'own redis-server, appendfsync everysec',
        },
        rows,
        notes,
      };
    } finally {
      client.disconnect();
      await redis.destroy();
    }
  },
};
