/**
 * Issue 5 — attribution at volume: 1,000,000 partner orders (+ a partial refund for every 10th)
 * attributed from events, orders/s and peak RSS of the process doing the work and of redis-server.
 * The work runs in a child (bench/sut/attribution-driver.ts) that calls
 * `AttributionService.handlePartnerEvent` directly with 64 in flight: the attribution worker's
 * processor minus BullMQ. Direct on purpose: the queue's own cost per job is what the ingest and
 * sync benchmarks already measure, a million queued jobs would be a million job hashes in Redis
 * (measuring BullMQ's memory, not the ledger's), and an in-process loop is the only way to keep
 * exactly 64 in flight.
 * Mix (deterministic per order number, identical for both systems): 40 % carry the id of a click
 * recorded inside the 168 h window, 10 % a click recorded 200 h earlier, 10 % an unknown click id,
 * 40 % no click id; every 10th order gets a partial (30 %) refund right after it.
 * Baseline, same run, own redis-server: a minimal ledger — GET the click + window check, one Lua
 * call per order (EXISTS check, HSET, RPUSH) and one per refund (HSETNX, HINCRBY, RPUSH).
 * On one Redis or the cluster (ctx.topology, bench/lib/topology.ts; there redis RSS and CPU are
 * summed over all six servers, used_memory over the masters).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { BenchContext, BenchResult, Benchmark, Measure } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { cpuMeter } from './lib/machine.js';
import { startChild, type Child } from './lib/proc.js';
import { infoTotals, startBenchStore, storeServiceEnv, type BenchStore } from './lib/topology.js';
import { round } from './lib/stats.js';

interface Done {
  type: 'done';
  orders: number;
  events: number;
  elapsedS: number;
  outcomes: Record<string, number>;
  truncated: boolean;
  rssAtStartMiB: number;
  peakRssMiB: number;
}

function statusKiB(pids: number | undefined | (number | undefined)[], field: 'VmRSS' | 'VmHWM'): number {
  if (Array.isArray(pids)) return pids.reduce<number>((n, p) => n + statusKiB(p, field), 0);
  const pid = pids;
  if (pid === undefined) return Number.NaN;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Commands executed, script calls and GETs, summed over the store's masters (INFO commandstats), and
 * per command its calls and the µs Redis spent executing it (a script's inner commands count apart
 * and inside the script's own time).
 */
interface CommandTotals {
  all: number;
  scripts: number;
  gets: number;
  /** µs executing EVALSHA / EVAL (their inner commands included). */
  scriptUsec: number;
  byCommand: Map<string, { calls: number; usec: number }>;
}
async function commandTotals(store: BenchStore): Promise<CommandTotals> {
  const out: CommandTotals = { all: 0, scripts: 0, gets: 0, scriptUsec: 0, byCommand: new Map() };
  for (const port of await store.masters()) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      for (const m of (await c.info('commandstats')).matchAll(/cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/g)) {
        const name = m[1]!;
        const n = Number(m[2]);
        const usec = Number(m[3]);
        out.all += n;
        if (name === 'evalsha' || name === 'eval') {
          out.scripts += n;
          out.scriptUsec += usec;
        }
        if (name === 'get') out.gets += n;
        const e = out.byCommand.get(name) ?? { calls: 0, usec: 0 };
        e.calls += n;
        e.usec += usec;
        out.byCommand.set(name, e);
      }
    } finally {
      c.disconnect();
    }
  }
  return out;
}

async function runSystem(ctx: BenchContext, mode: 'ours' | 'bare', orders: number, concurrency: number, maxMs: number): Promise<Measure> {
  const redis = await startBenchStore(ctx.topology, 'everysec');
  const se = storeServiceEnv(redis);
  let child: Child | undefined;
  try {
    child = await startChild('bench/sut/attribution-driver.ts', {
      name: `attribution-${mode}`,
      env: { ...se.env, ATTR_MODE: mode, ATTR_ORDERS: String(orders), ATTR_CONCURRENCY: String(concurrency), ATTR_MAX_MS: String(maxMs) },
      ready: 'ipc',
      readyTimeoutMs: 300_000,
      profileDir: ctx.profileDir,
    });
    const info = child.info as { clicksInWindow?: number; clicksOutside?: number; setupS?: number };
    ctx.log(`  ${mode}: setup done (${info.clicksInWindow} clicks in window, ${info.clicksOutside} outside, ${round(info.setupS ?? 0, 1)} s); attributing ${orders.toLocaleString('en-US')} orders`);
    const proc = child.proc;
    const redisRssStartMiB = statusKiB(redis.pids, 'VmRSS') / 1024;
    let redisPeakKiB = 0;
    const sampler = setInterval(() => {
      const v = statusKiB(redis.pids, 'VmRSS');
      if (v > redisPeakKiB) redisPeakKiB = v;
    }, 100);
    const roles = await redis.pidsByRole();
    const meter = cpuMeter({ worker: proc.pid, redis: redis.pids });
    const roleMeter = cpuMeter({ masters: roles.masters, replicas: roles.replicas });
    const cmds0 = await commandTotals(redis);
    const done = await new Promise<Done>((res, rej) => {
      proc.on('message', (m: unknown) => {
        const msg = m as { type?: string; done?: number; rate?: number; rssMiB?: number; error?: string };
        if (msg.type === 'progress') ctx.log(`  ${mode}: ${msg.done?.toLocaleString('en-US')} orders, ${msg.rate}/s over the last 10 s, RSS ${msg.rssMiB} MiB, redis ${Math.round(statusKiB(redis.pids, 'VmRSS') / 1024)} MiB`);
        else if (msg.type === 'done') res(m as Done);
        else if (msg.type === 'failed') rej(new Error(`attribution-${mode}: ${msg.error}`));
      });
      proc.once('exit', (code) => rej(new Error(`attribution-${mode} exited with ${code}`)));
      proc.send({ type: 'go' });
    });
    clearInterval(sampler);
    const cpu = meter();
    const byRole = roleMeter();
    const cmds1 = await commandTotals(redis);
    // what the masters executed per order (INFO commandstats: a script's inner commands count too) and the calls sent
    const perOrder = (k: 'all' | 'scripts' | 'gets' | 'scriptUsec'): number => round((cmds1[k] - cmds0[k]) / done.orders, 2);
    // per command: [calls, µs executing] per order, the commands the masters ran (inner ones of scripts too)
    const byCommand: Record<string, [number, number]> = {};
    for (const [name, e] of cmds1.byCommand) {
      const e0 = cmds0.byCommand.get(name) ?? { calls: 0, usec: 0 };
      const calls = round((e.calls - e0.calls) / done.orders, 3);
      if (calls >= 0.001) byCommand[name] = [calls, round((e.usec - e0.usec) / done.orders, 2)];
    }
    const commands = { executed: perOrder('all'), scriptCalls: perOrder('scripts'), gets: perOrder('gets'), scriptUsec: perOrder('scriptUsec'), byCommand };
    ctx.log(`  ${mode}: per order [calls, µs executing] by command: ${JSON.stringify(byCommand)}`);
    ctx.log(`  ${mode}: per order: commands executed ${commands.executed}, script calls ${commands.scriptCalls}, GET ${commands.gets}, µs executing scripts ${commands.scriptUsec}; redis CPU ms masters ${round(byRole['masters']! / done.orders, 3)} · replicas ${round(byRole['replicas']! / done.orders, 3)}`);
    const redisUsed = (await redisUsedMemory(redis)) / 2 ** 20;
    const m: Measure = {
      throughput: round(done.orders / done.elapsedS, 0),
      count: done.orders,
      cpuMsPerOp: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v / done.orders, 3)])),
      extra: {
        commandsPerOrder: commands,
        redisCpuMsPerOrderByRole: { masters: round(byRole['masters']! / done.orders, 3), replicas: round(byRole['replicas']! / done.orders, 3) },
        events: done.events,
        eventsPerSecond: round(done.events / done.elapsedS, 0),
        elapsedS: round(done.elapsedS, 1),
        outcomes: done.outcomes,
        truncated: done.truncated,
        workerRssAtStartMiB: round(done.rssAtStartMiB, 1),
        workerPeakRssMiB: round(done.peakRssMiB, 1),
        redisRssAtStartMiB: round(redisRssStartMiB, 1),
        redisPeakRssMiB: round(redisPeakKiB / 1024, 1),
        redisVmHWMMiB: round(statusKiB(redis.pids, 'VmHWM') / 1024, 1),
        redisUsedMemoryMiB: round(redisUsed, 1),
        redisBytesPerOrder: round((redisUsed * 2 ** 20) / done.orders, 0),
        clicks: { inWindow: info.clicksInWindow, outsideWindow: info.clicksOutside },
      },
    };
    ctx.log(`  ${mode}: ${m.throughput} orders/s (${done.orders} orders in ${round(done.elapsedS, 1)} s), peak RSS ${round(done.peakRssMiB, 0)} MiB, redis peak RSS ${round(redisPeakKiB / 1024, 0)} MiB, cpu/order ${JSON.stringify(m.cpuMsPerOp)}`);
    return m;
  } finally {
    await child?.stop();
    await redis.destroy();
  }
}

/** used_memory of the one server, or summed over the cluster's masters. */
async function redisUsedMemory(store: BenchStore): Promise<number> {
  return (await infoTotals(store, ['used_memory']))['used_memory'] ?? Number.NaN;
}

export const attributionBench: Benchmark = {
  name: 'attribution',
  title: 'Attribution of partner orders (AttributionService.handlePartnerEvent → ledger)',
  issue: '5',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    // BENCH_ATTRIBUTION_ORDERS: fewer (or more) orders for development; the documented number is 1,000,000
    const orders = Number(process.env['BENCH_ATTRIBUTION_ORDERS'] ?? (ctx.quick ? 50_000 : 1_000_000));
    const concurrency = 64;
    // bounded: a run that would take longer stops issuing orders and says so (truncated: true)
    const maxMs = ctx.quick ? 120_000 : 900_000;
    const notes: string[] = [];
    const bare = await runSystem(ctx, 'bare', orders, concurrency, maxMs);
    const ours = await runSystem(ctx, 'ours', orders, concurrency, maxMs);
    for (const [who, m] of [['ours', ours], ['bare', bare]] as const) {
      if (m.extra?.truncated) notes.push(`${who}: stopped after ${maxMs / 1000} s with ${m.count} of ${orders} orders attributed (rate measured over those)`);
    }
    const oe = ours.extra ?? {};
    const be = bare.extra ?? {};
    notes.push(
      `peak RSS of the attributing process: ours ${String(oe.workerPeakRssMiB)} MiB (at start ${String(oe.workerRssAtStartMiB)}), bare ${String(be.workerPeakRssMiB)} MiB; redis-server peak RSS: ours ${String(oe.redisPeakRssMiB)} MiB (used_memory ${String(oe.redisUsedMemoryMiB)} MiB, ${String(oe.redisBytesPerOrder)} B/order), bare ${String(be.redisPeakRssMiB)} MiB (${String(be.redisBytesPerOrder)} B/order)`,
    );
    const row = ratioRow({
      scenario: `${orders.toLocaleString('en-US')} orders (40 % click in window, 10 % outside, 10 % unknown click, 40 % none; 10 % partially refunded), 64 in flight`,
      unit: 'orders/s',
      ours,
      baseline: bare,
      baselineLabel: 'minimal ledger: GET click + one Lua (EXISTS, HSET, RPUSH) per order, one per refund',
      ratioOf: 'throughput',
      goal: { ratio: 'throughput', min: 0.5 }, // issue 12 §7
    });
    return {
      ...resultHead(this, started),
      setup: {
        orders,
        refunds: 'every 10th order, 30 % of its total, right after the order (same lane)',
        inFlight: concurrency,
        driver: 'child process bench/sut/attribution-driver.ts: createRuntime (worker role) + AttributionService.handlePartnerEvent called directly (the attribution worker processor minus BullMQ); no outbound endpoints configured',
        clicks: 'recorded with runtime.links.recordClick before the measured phase: up to 100,000 inside the window (0–48 h before the orders, reused round-robin), up to 10,000 at 200 h before (window 168 h)',
        redis: 'one private redis-server per system, appendfsync everysec, AOF rewrite off',
        rss: 'attributing process: process.memoryUsage().rss sampled every 100 ms during the measured phase; redis-server: /proc/<pid>/status VmRSS sampled every 100 ms',
        maxSecondsPerSystem: maxMs / 1000,
      },
      rows: [row],
      notes,
    };
  },
};
