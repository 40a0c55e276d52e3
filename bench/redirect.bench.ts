/**
 * Issue 5 — redirect: GET /l/{code} throughput (link lookup, click recorded, 302 with sclid + utm)
 * against a bare Fastify route answering 302, same load generator, same run. Links are created with
 * runtime.links.ensure(); requests carry a desktop Chrome user agent so every one is a human click.
 * On one Redis or the cluster (ctx.topology, bench/lib/topology.ts).
 * Pairs: after a warm-up of each, one run measures BENCH_REDIRECT_PAIRS pairs (default 3, 1 with
 * BENCH_QUICK; bench/lib/pairs.ts), bare then ours in odd pairs and ours then bare in even ones: the bare
 * 302 moves most between runs (+20 % at c7ac0097 against d9e4fb54, ours +3 %, the ratio 0.64 → 0.55),
 * so the row's ratio, and the goal, is the median of the pairs' ratios, each side's cell its median
 * throughput, every pair listed with the other processes' load over each side's window (row.pairs).
 */
import { Redis, type Cluster } from 'ioredis';
import type { BenchContext, BenchResult, Benchmark, ResultRow } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { cpuPerOp, measureLoad, runLoad, type LoadRun } from './lib/load.js';
import { cpuMeter } from './lib/machine.js';
import { pairCount, ratioOfPairs, runPairs, windowLoad, type WindowLoad } from './lib/pairs.js';
import { benchRuntime } from './lib/service.js';
import { median, round } from './lib/stats.js';
import { startBareApi, startServiceApi } from './lib/systems.js';
import { startBenchStore, storeServiceEnv } from './lib/topology.js';

const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const MAX_RPS = 20_000;
const is302 = (s: number): boolean => s === 302;

/** One side's load run with the machine's load over it. */
type Side = LoadRun & { load: WindowLoad };

/** One side's runs, one a pair, as a Measure: the median throughput (the pairs' ratio is judged on medians too), the rest as measureLoad. */
function sideMeasure(runs: Side[]): ReturnType<typeof measureLoad> {
  const m = measureLoad(runs);
  return { ...m, throughput: round(median(runs.map((r) => r.rps)), 0), extra: { ...m.extra, othersPct: runs.map((r) => r.load.othersPct) } };
}

/** Keys matching `pattern` (SCAN over every master of a cluster): the clicks stored. */
async function countKeys(client: Redis | Cluster, pattern: string): Promise<number> {
  let n = 0;
  for (const node of client instanceof Redis ? [client] : client.nodes('master')) {
    for await (const keys of node.scanStream({ match: pattern, count: 5000 }) as AsyncIterable<string[]>) n += keys.length;
  }
  return n;
}

export const redirectBench: Benchmark = {
  name: 'redirect',
  title: 'Tracked link redirect (GET /l/{code})',
  issue: '5',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    const p = ctx.quick ? { connections: 32, warmupS: 1, durationS: 3, links: 200 } : { connections: 32, warmupS: 5, durationS: 10, links: 1000 };
    const pairs = pairCount('BENCH_REDIRECT_PAIRS', ctx.quick);
    const notes: string[] = [];
    const redis = await startBenchStore(ctx.topology, 'everysec');
    const se = storeServiceEnv(redis);
    const rt = await benchRuntime(se);
    const ours = await startServiceApi(se, ctx.profileDir);
    let bare: Awaited<ReturnType<typeof startBareApi>> | undefined;
    try {
      bare = await startBareApi({ redisUrl: redis.url, store: redis, secret: 'whsec_' + Buffer.from('unused').toString('base64'), queue: 'bare-unused', prefix: 'bare' }, ctx.profileDir);
      const codes: string[] = [];
      for (let i = 0; i < p.links; i++) {
        const url = await rt.links.ensure({ partnerId: 'bench', showId: `s${i % 50}`, targetId: 'yt1', platform: 'youtube', productId: `p${i}`, url: `https://shop.example.com/products/p${i}?ref=live` });
        codes.push(url.slice(url.lastIndexOf('/') + 1));
      }
      const systems = { ours: ours.info.url, bare: bare.info.url };
      const pids = { ours: ours.proc.pid, bare: bare.proc.pid };
      const load = async (who: 'ours' | 'bare', durationS: number): Promise<Side> => {
        let i = 0;
        const headers = { 'user-agent': BROWSER_UA, accept: 'text/html' };
        const machine = windowLoad();
        const meter = cpuMeter({ api: pids[who], redis: redis.pids, loadgen: process.pid });
        const r0 = await runLoad({
          url: systems[who],
          connections: p.connections,
          durationS,
          maxRequests: MAX_RPS * durationS,
          ok: is302,
          // both systems can serve the cap (MAX_RPS × duration) before the duration ends: measure
          // when they did, not the next whole second (bench/lib/load.ts)
          sampleIntMs: 50,
          next: () => ({ method: 'GET', path: `/l/${codes[i++ % codes.length] ?? ''}`, headers }),
        });
        const r = { ...r0, cpu: meter(), load: machine() };
        ctx.log(`  ${who.padEnd(4)} ${round(r.rps, 0)} redirects/s  p50 ${r.p50} ms  p99 ${r.p99} ms  cpu/req ${JSON.stringify(cpuPerOp([r]))}  ${JSON.stringify(r.statusCodes)}${r.errors ? ` errors ${r.errors}` : ''}  other processes ${r.load.othersPct} %`);
        return r;
      };
      const warm = await load('ours', p.warmupS);
      await load('bare', p.warmupS);
      const measured = await runPairs(
        pairs,
        (side) => load(side === 'ours' ? 'ours' : 'bare', p.durationS),
        (x, k) => ctx.log(`  pair ${k}/${pairs} (${x.first === 'ours' ? 'ours' : 'bare'} first): ${round(x.ours.rps / x.baseline.rps, 3)}`),
      );
      const runs = { ours: measured.map((x) => x.ours), bare: measured.map((x) => x.baseline) };
      const ratios = ratioOfPairs(measured, (r) => r.rps, (r) => r.load.othersPct);
      ctx.log(`  ratio: median ${round(ratios.median, 3)} of ${measured.length} pair(s), ${round(ratios.min, 3)}–${round(ratios.max, 3)}`);
      // every 302 of ours must have recorded one click
      // (autocannon does not count the responses still in flight when a run ends: up to `connections` per run)
      const oursRuns = [warm, ...runs.ours];
      const redirects = oursRuns.reduce((n, r) => n + r.ok, 0);
      const clicks = await countKeys(rt.redis, rt.keys.click('*'));
      if (clicks < redirects || clicks > redirects + p.connections * oursRuns.length) notes.push(`${redirects} redirects but ${clicks} clicks recorded`);
      const oursM = sideMeasure(runs.ours);
      const rows: ResultRow[] = [
        ratioRow({
          scenario: `${p.links} links, browser UA (click recorded), appendfsync everysec`,
          unit: 'req/s',
          ours: { ...oursM, extra: { ...oursM.extra, clicksRecorded: clicks } },
          baseline: sideMeasure(runs.bare),
          baselineLabel: 'bare Fastify route answering 302',
          ratioOf: 'throughput',
          goal: { ratio: 'throughput', min: 0.6 }, // issue 12 §5 (issue 5 had 0.5)
          pairs: ratios,
        }),
      ];
      return {
        ...resultHead(this, started),
        setup: {
          connections: p.connections,
          warmupS: p.warmupS,
          durationS: p.durationS,
          pairs: `${measured.length} (BENCH_REDIRECT_PAIRS; default 3, 1 with BENCH_QUICK): bare then ours in odd pairs, ours then bare in even ones; each side's median throughput in its cell (p50, p99 and CPU per request over all its pairs), the ratio (and the goal) the median of the pairs' ratios, every pair and the other processes' load over each side's window listed below`,
          links: p.links,
          appendfsync: 'everysec',
          userAgent: BROWSER_UA,
          loadGenerator: 'autocannon (programmatic) in the bench process; each system under test in its own process',
          order: 'warm-up of ours then bare (discarded), then the pairs',
        },
        rows,
        notes,
      };
    } finally {
      await bare?.stop();
      await ours.stop();
      await rt.close();
      await redis.destroy();
    }
  },
};
