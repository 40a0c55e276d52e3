/**
 * Issue 5 — redirect: GET /l/{code} throughput (link lookup, click recorded, 302 with sclid + utm)
 * against a bare Fastify route answering 302, same load generator, same run. Links are created with
 * runtime.links.ensure(); requests carry a desktop Chrome user agent so every one is a human click.
 * On one Redis or the cluster (ctx.topology, bench/lib/topology.ts).
 */
import { Redis, type Cluster } from 'ioredis';
import type { BenchContext, BenchResult, Benchmark, ResultRow } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { cpuPerOp, measureLoad, runLoad, type LoadRun } from './lib/load.js';
import { cpuMeter } from './lib/machine.js';
import { benchRuntime } from './lib/service.js';
import { round } from './lib/stats.js';
import { startBareApi, startServiceApi } from './lib/systems.js';
import { startBenchStore, storeServiceEnv } from './lib/topology.js';

const BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const MAX_RPS = 20_000;
const is302 = (s: number): boolean => s === 302;

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
    const p = ctx.quick ? { connections: 32, warmupS: 1, durationS: 3, rounds: 1, links: 200 } : { connections: 32, warmupS: 5, durationS: 10, rounds: 2, links: 1000 };
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
      const load = async (who: 'ours' | 'bare', durationS: number): Promise<LoadRun> => {
        let i = 0;
        const headers = { 'user-agent': BROWSER_UA, accept: 'text/html' };
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
        const r = { ...r0, cpu: meter() };
        ctx.log(`  ${who.padEnd(4)} ${round(r.rps, 0)} redirects/s  p50 ${r.p50} ms  p99 ${r.p99} ms  cpu/req ${JSON.stringify(cpuPerOp([r]))}  ${JSON.stringify(r.statusCodes)}${r.errors ? ` errors ${r.errors}` : ''}`);
        return r;
      };
      const warm = await load('ours', p.warmupS);
      await load('bare', p.warmupS);
      const runs = { ours: [] as LoadRun[], bare: [] as LoadRun[] };
      for (let k = 0; k < p.rounds; k++) {
        const order: ('ours' | 'bare')[] = k % 2 === 0 ? ['bare', 'ours'] : ['ours', 'bare'];
        for (const who of order) runs[who].push(await load(who, p.durationS));
      }
      // every 302 of ours must have recorded one click
      // (autocannon does not count the responses still in flight when a run ends: up to `connections` per run)
      const oursRuns = [warm, ...runs.ours];
      const redirects = oursRuns.reduce((n, r) => n + r.ok, 0);
      const clicks = await countKeys(rt.redis, rt.keys.click('*'));
      if (clicks < redirects || clicks > redirects + p.connections * oursRuns.length) notes.push(`${redirects} redirects but ${clicks} clicks recorded`);
      const oursM = measureLoad(runs.ours);
      const rows: ResultRow[] = [
        ratioRow({
          scenario: `${p.links} links, browser UA (click recorded), appendfsync everysec`,
          unit: 'req/s',
          ours: { ...oursM, extra: { ...oursM.extra, clicksRecorded: clicks } },
          baseline: measureLoad(runs.bare),
          baselineLabel: 'bare Fastify route answering 302',
          ratioOf: 'throughput',
          goal: { ratio: 'throughput', min: 0.6 }, // issue 12 §5 (issue 5 had 0.5)
        }),
      ];
      return {
        ...resultHead(this, started),
        setup: {
          connections: p.connections,
          warmupS: p.warmupS,
          durationS: p.durationS,
          rounds: p.rounds,
          links: p.links,
          appendfsync: 'everysec',
          userAgent: BROWSER_UA,
          loadGenerator: 'autocannon (programmatic) in the bench process; each system under test in its own process',
          order: 'warm-up of both (discarded), then rounds alternating which system goes first',
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
