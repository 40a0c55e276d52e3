/**
 * Issue 12 §3/§8 — the same API on one Redis and on a 3-master + 3-replica Redis Cluster, with and
 * without acknowledging after replication (WAIT), in one run; plus the cost model's inputs: Redis
 * commands, bytes in/out and memory per accepted event and per counted click, read from INFO deltas
 * (summed over the masters on the cluster; the load generator is the only client doing work).
 *
 * Systems (each its own redis, its own `bench/sut/service-api.ts` process):
 *   single       one redis-server, appendfsync everysec (as the ingest/redirect benchmarks)
 *   cluster      3 + 3 cluster (test/helpers/redis-cluster.ts: AOF everysec), REDIS_WAIT_REPLICAS=0
 *   cluster+WAIT the same cluster setup, REDIS_WAIT_REPLICAS=auto (the default: WAIT 1 before each 2xx/3xx)
 * Ratios: cluster / single, and cluster+WAIT / cluster (what WAIT costs).
 */
import { Redis } from 'ioredis';
import type { BenchContext, BenchResult, Benchmark, Measure, ResultRow } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { cpuMeter } from './lib/machine.js';
import { startBenchRedis } from './lib/redis-server.js';
import { AdminClient, serviceEnv, signedEvent, type SignedRequest } from './lib/service.js';
import { mean, round } from './lib/stats.js';
import { startServiceApi } from './lib/systems.js';
import { startCluster } from '../test/helpers/redis-cluster.js';
import { trackPids } from './lib/proc.js';

const PARTNER = 'bench';
const MAX_RPS = 12_000;
const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

type System = 'single' | 'cluster' | 'cluster+WAIT';
type Run = LoadResult & { cpu: Record<string, number>; redis: RedisDelta };

interface RedisDelta {
  commands: number;
  bytesIn: number;
  bytesOut: number;
  memory: number;
}

/** INFO totals over the given nodes (masters of a cluster, or the one server). */
async function redisTotals(ports: number[]): Promise<RedisDelta> {
  const t: RedisDelta = { commands: 0, bytesIn: 0, bytesOut: 0, memory: 0 };
  for (const port of ports) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    await c.connect();
    const info = await c.info();
    c.disconnect();
    const n = (k: string): number => Number(new RegExp(`${k}:(\\d+)`).exec(info)?.[1] ?? 0);
    t.commands += n('total_commands_processed');
    t.bytesIn += n('total_net_input_bytes');
    t.bytesOut += n('total_net_output_bytes');
    t.memory += n('used_memory');
  }
  return t;
}

function measure(runs: Run[]): Measure {
  const ok = runs.reduce((n, r) => n + r.ok, 0);
  const cpu: Record<string, number> = {};
  for (const k of Object.keys(runs[0]?.cpu ?? {})) cpu[k] = round(runs.reduce((n, r) => n + (r.cpu[k] ?? 0), 0) / ok, 3);
  const per = (k: keyof RedisDelta): number => round(runs.reduce((n, r) => n + r.redis[k], 0) / ok, 1);
  return {
    cpuMsPerOp: cpu,
    throughput: round(mean(runs.map((r) => r.rps)), 0),
    p50: round(mean(runs.map((r) => r.p50)), 2),
    p99: round(mean(runs.map((r) => r.p99)), 2),
    count: ok,
    extra: {
      redisPerOp: { commands: per('commands'), bytesIn: per('bytesIn'), bytesOut: per('bytesOut'), memoryBytes: per('memory') },
      rounds: runs.map((r) => ({ rps: round(r.rps, 0), p50: r.p50, p99: r.p99, ok: r.ok, errors: r.errors, statusCodes: r.statusCodes })),
    },
  };
}

export const clusterBench: Benchmark = {
  name: 'cluster',
  title: 'The API on one Redis vs a 3+3 Redis Cluster, with and without WAIT; Redis cost per event and click',
  issue: '12',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    const p = ctx.quick ? { connections: 32, warmupS: 1, durationS: 3, rounds: 1, links: 200 } : { connections: 32, warmupS: 3, durationS: 10, rounds: 2, links: 1000 };
    const notes: string[] = [];
    const results: Record<System, { ingest: Run[]; redirect: Run[] }> = { single: { ingest: [], redirect: [] }, cluster: { ingest: [], redirect: [] }, 'cluster+WAIT': { ingest: [], redirect: [] } };
    let seq = 0;
    for (const system of ['single', 'cluster', 'cluster+WAIT'] as System[]) {
      ctx.log(`cluster bench: ${system}`);
      const single = system === 'single' ? await startBenchRedis('everysec') : undefined;
      const cluster = system === 'single' ? undefined : await startCluster();
      if (cluster) trackPids(() => cluster.nodes.map((n) => n.pid()));
      const base = serviceEnv(single?.url ?? cluster!.url);
      const env = { ...base.env };
      if (cluster) {
        delete env['REDIS_URL'];
        Object.assign(env, cluster.env, { REDIS_WAIT_REPLICAS: system === 'cluster+WAIT' ? 'auto' : '0' });
      }
      const se = { ...base, env };
      const ours = await startServiceApi(se, ctx.profileDir);
      try {
        const masters = single ? [single.port] : (await cluster!.roles()).masters;
        const redisPids = single ? { redis: single.pid } : {};
        const admin = new AdminClient(ours.info.url);
        const secret = await admin.createPartner(PARTNER);
        await admin.createYoutubeTarget(PARTNER, 'yt1', 'http://127.0.0.1:9/youtube', { verify: false });
        // Links to click: one live show with pins would need workers; the link service makes them directly.
        const { loadConfig } = await import('../src/config/config.js');
        const { createRuntime } = await import('../src/main/runtime.js');
        const { createLogger } = await import('../src/lib/logger.js');
        const rt = await createRuntime(loadConfig({ ...env, LOG_LEVEL: 'silent' }), 'worker', { log: createLogger('silent') });
        const codes: string[] = [];
        try {
          for (let i = 0; i < p.links; i++) {
            const url = await rt.links.ensure({ partnerId: PARTNER, showId: `s${i % 50}`, targetId: 'yt1', platform: 'youtube', productId: `p${i}`, url: `https://shop.example.com/products/p${i}` });
            codes.push(url.slice(url.lastIndexOf('/') + 1));
          }
        } finally {
          await rt.close();
        }
        const ingest = async (durationS: number): Promise<Run> => {
          const tag = `${system.replace(/[^a-z]/g, '')}-${++seq}`; // ids allow [A-Za-z0-9_-] only
          const occurredAt = new Date().toISOString();
          const ts = Math.floor(Date.now() / 1000);
          const max = MAX_RPS * durationS;
          const reqs: SignedRequest[] = Array.from({ length: max }, (_, i) =>
            signedEvent(secret, PARTNER, `msg_${tag}_${i}`, { type: 'product.pinned', occurredAt, data: { showId: `${tag}-s${i}`, productId: 'p1' } }, ts),
          );
          let next = 0;
          const before = await redisTotals(masters);
          const meter = cpuMeter({ api: ours.proc.pid, loadgen: process.pid, ...redisPids });
          const r = await runLoad({ url: ours.info.url, connections: p.connections, durationS, maxRequests: max, next: () => reqs[next++]! });
          const after = await redisTotals(masters);
          const run: Run = { ...r, cpu: meter(), redis: { commands: after.commands - before.commands, bytesIn: after.bytesIn - before.bytesIn, bytesOut: after.bytesOut - before.bytesOut, memory: after.memory - before.memory } };
          ctx.log(`  ${system} ingest ${round(r.rps, 0)} events/s p50 ${r.p50} p99 ${r.p99} ${JSON.stringify(r.statusCodes)} redis/op ${JSON.stringify(measure([run]).extra?.['redisPerOp'])}`);
          return run;
        };
        const redirect = async (durationS: number): Promise<Run> => {
          let i = 0;
          const headers = { 'user-agent': BROWSER_UA, accept: 'text/html' };
          const before = await redisTotals(masters);
          const meter = cpuMeter({ api: ours.proc.pid, loadgen: process.pid, ...redisPids });
          const r = await runLoad({ url: ours.info.url, connections: p.connections, durationS, maxRequests: 20_000 * durationS, ok: (s) => s === 302, next: () => ({ method: 'GET', path: `/l/${codes[i++ % codes.length] ?? ''}`, headers }) });
          const after = await redisTotals(masters);
          const run: Run = { ...r, cpu: meter(), redis: { commands: after.commands - before.commands, bytesIn: after.bytesIn - before.bytesIn, bytesOut: after.bytesOut - before.bytesOut, memory: after.memory - before.memory } };
          ctx.log(`  ${system} redirect ${round(r.rps, 0)} req/s p50 ${r.p50} p99 ${r.p99} ${JSON.stringify(r.statusCodes)} redis/op ${JSON.stringify(measure([run]).extra?.['redisPerOp'])}`);
          return run;
        };
        await ingest(p.warmupS);
        await redirect(p.warmupS);
        for (let k = 0; k < p.rounds; k++) {
          results[system].ingest.push(await ingest(p.durationS));
          results[system].redirect.push(await redirect(p.durationS));
        }
        for (const r of [...results[system].ingest, ...results[system].redirect]) {
          const bad = Object.entries(r.statusCodes).filter(([c]) => !['202', '302'].includes(c));
          if (bad.length) notes.push(`${system}: unexpected statuses ${JSON.stringify(Object.fromEntries(bad))}`);
        }
      } finally {
        await ours.stop();
        await single?.destroy();
        await cluster?.destroy();
      }
    }
    const rows: ResultRow[] = [];
    for (const [what, unit] of [
      ['ingest', 'events/s'],
      ['redirect', 'req/s'],
    ] as const) {
      const m = (s: System): Measure => measure(results[s][what]);
      rows.push(ratioRow({ scenario: `${what}: cluster 3+3 (no WAIT) vs one Redis`, unit, ours: m('cluster'), baseline: m('single'), baselineLabel: 'same API on one redis-server', ratioOf: 'throughput' }));
      rows.push(ratioRow({ scenario: `${what}: cluster 3+3 with WAIT 1 (default) vs without`, unit, ours: m('cluster+WAIT'), baseline: m('cluster'), baselineLabel: 'same API on the same cluster setup, REDIS_WAIT_REPLICAS=0', ratioOf: 'throughput' }));
    }
    return {
      ...resultHead(this, started),
      setup: {
        ...p,
        systems: 'single: one redis-server (everysec, .data/bench); cluster: 6 redis-server (3 masters + 3 replicas, everysec, tmpdir) from test/helpers/redis-cluster.ts',
        order: 'systems one after another (single, cluster, cluster+WAIT); per system a warm-up of each load, then rounds of ingest and redirect',
        redisPerOp: 'INFO deltas (total_commands_processed, total_net_input/output_bytes, used_memory) over the masters, divided by the successful requests; includes the INFO calls themselves (negligible)',
      },
      rows,
      notes,
    };
  },
};
