/**
 * Issue 4 (first version) — sync throughput: syncs/s of Syndicast's mirror workers (production
 * entrypoint `workers/mirror.ts` in a child process) against the YouTube simulator, vs a bare
 * BullMQ no-op worker (same number of queues, same concurrency) processing the same number of jobs.
 *
 * Method, identical for both: pause the queues, put N jobs in them (ours: N signed events through
 * the API, one per show, so one coalesced sync job each), resume, and time until no job is waiting,
 * delayed or active. Ours is measured for three kinds of sync, each one job per show:
 *   provision  show.scheduled → liveStreams.insert + liveBroadcasts.insert + bind   (ready)
 *   go live    show.live      → transition testing + transition live               (live)
 *   pin        product.pinned → liveChatMessages.insert with the tracked link
 * at simulator latency 0 and ~20 ms. The pin rows also have a latency-matched bare worker
 * (one real chat-message POST per job) to separate network wait from our own overhead; issue 12's
 * goal is on those (≥ 0.9× its syncs/s, worker CPU per sync ≤ 1.3× its). On one Redis or the
 * cluster (ctx.topology, bench/lib/topology.ts: the bare queues hash-tagged per queue there).
 */
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import type { BenchContext, BenchResult, Benchmark, Measure, ResultRow } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import type { Child } from './lib/proc.js';
import { AdminClient, benchRuntime, pool, send, showSnapshot, signedEvent, youtubeQueues } from './lib/service.js';
import { liftLimits, startBenchSim } from './lib/sim.js';
import { cpuMeter } from './lib/machine.js';
import { round, sleep, until } from './lib/stats.js';
import { pendingJobs, queuedJobs, startBareWorker, startServiceApi, startServiceWorker } from './lib/systems.js';
import { bareQueuePrefix, startBenchStore, storeServiceEnv } from './lib/topology.js';
import type { SimEffectType } from '../src/simulators/sim.platform.js';

const PARTNER = 'bench';

interface Drain {
  jobs: number;
  seconds: number;
  perSecond: number;
  /** CPU ms per job by process */
  cpu: Record<string, number>;
}

/** Resume the (paused, filled) queues and time until every job is finished. */
async function drain(queues: Queue[], jobs: number, maxMs: number, pids: Parameters<typeof cpuMeter>[0]): Promise<Drain> {
  const meter = cpuMeter(pids);
  const t0 = performance.now();
  await Promise.all(queues.map((q) => q.resume()));
  const deadline = Date.now() + maxMs;
  for (;;) {
    if ((await pendingJobs(queues)) === 0) break;
    if (Date.now() > deadline) throw new Error(`queues not drained after ${maxMs} ms`);
    await sleep(5);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = Object.fromEntries(Object.entries(meter()).map(([k, v]) => [k, round(v / jobs, 3)]));
  return { jobs, seconds: round(seconds, 3), perSecond: round(jobs / seconds, 0), cpu };
}

function m(d: Drain, extra: Record<string, unknown> = {}): Measure {
  return { throughput: d.perSecond, count: d.jobs, cpuMsPerOp: d.cpu, extra: { seconds: d.seconds, ...extra } };
}

export const syncBench: Benchmark = {
  name: 'sync',
  title: 'Mirror sync throughput (YouTube simulator)',
  issue: '4',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    const p = ctx.quick ? { jobs: 300, warmup: 100, latencies: [0, 20] } : { jobs: 2000, warmup: 500, latencies: [0, 20] };
    const maxDrainMs = 120_000;
    const notes: string[] = [];
    const rows: ResultRow[] = [];
    const redis = await startBenchStore(ctx.topology, 'everysec');
    const sim = await startBenchSim();
    await liftLimits(sim, 0);
    const se = storeServiceEnv(redis);
    const rt = await benchRuntime(se);
    const children: Child[] = [];
    const shards = rt.config.syncShards;
    const concurrency = rt.config.workerConcurrency;
    const ours = youtubeQueues(rt);
    const bareNames = Array.from({ length: shards }, (_, i) => `bare-sync-${i}`);
    try {
      const api = await startServiceApi(se, ctx.profileDir);
      children.push(api);
      const worker = await startServiceWorker(se, rt, ctx.profileDir);
      children.push(worker);
      const admin = new AdminClient(api.info.url);
      const secret = await admin.createPartner(PARTNER);
      await admin.createYoutubeTarget(PARTNER, 'yt1', sim.youtubeBase);
      const bareQueue = (name: string): Queue => {
        const q = new Queue(name, { connection: rt.bullConnection('worker'), prefix: bareQueuePrefix('bare', name, ctx.topology === 'cluster') });
        q.on('error', () => undefined);
        return q;
      };
      const bareQueues = bareNames.map(bareQueue);
      const bareNoop = await startBareWorker({ redisUrl: redis.url, store: redis, queues: bareNames, prefix: 'bare', concurrency, mode: 'noop' }, ctx.profileDir);
      children.push(bareNoop);

      /** Our side of one phase: pause, one event per show through the API, resume, drain. */
      const oursPhase = async (ids: string[], effect: SimEffectType, event: (id: string, i: number) => unknown, label: string): Promise<Drain> => {
        await Promise.all(ours.map((q) => q.pause()));
        const before = sim.countEffects(effect);
        await pool(ids, 32, async (id, i) => {
          const status = await send(api.info.url, signedEvent(secret, PARTNER, `${label}-${id}`, event(id, i)));
          if (status !== 202) throw new Error(`${label} ${id}: ${status}`);
        });
        await until(`${ids.length} ${label} jobs queued`, async () => (await queuedJobs(ours)) === ids.length, 30_000, 20);
        const d = await drain(ours, ids.length, maxDrainMs, { worker: worker.proc.pid, redis: redis.pids, 'bench+sim': process.pid });
        const got = sim.countEffects(effect) - before;
        if (got !== ids.length) notes.push(`${label}: ${got} ${effect} effects for ${ids.length} syncs`);
        ctx.log(`  ours ${label}: ${d.perSecond} syncs/s (${d.jobs} in ${d.seconds} s) cpu/sync ${JSON.stringify(d.cpu)}`);
        return d;
      };
      const barePhase = async (queues: Queue[], jobs: { name: string; data: unknown }[], label: string, pid: number | undefined): Promise<Drain> => {
        await Promise.all(queues.map((q) => q.pause()));
        await Promise.all(queues.map((q, qi) => q.addBulk(jobs.filter((_, i) => i % queues.length === qi).map((j) => ({ ...j, opts: { removeOnComplete: true } })))));
        await until(`${jobs.length} bare jobs queued`, async () => (await queuedJobs(queues)) === jobs.length, 30_000, 20);
        const d = await drain(queues, jobs.length, maxDrainMs, { worker: pid, redis: redis.pids, 'bench+sim': process.pid });
        ctx.log(`  bare ${label}: ${d.perSecond} jobs/s (${d.jobs} in ${d.seconds} s) cpu/job ${JSON.stringify(d.cpu)}`);
        return d;
      };

      /** One bare no-op drain, our three phases on n new shows, another bare no-op drain. */
      const cycle = async (tag: string, n: number) => {
        const ids = Array.from({ length: n }, (_, i) => `${tag}-s${i}`);
        const t = Date.now();
        const at = (s: number): string => new Date(t - 600_000 + s * 1000).toISOString();
        const noopJobs = ids.map((id) => ({ name: 'noop', data: { showId: id } }));
        const bare1 = await barePhase(bareQueues, noopJobs, 'noop', bareNoop.proc.pid);
        const provision = await oursPhase(ids, 'show.created', (id) => ({ type: 'show.scheduled', occurredAt: at(0), data: { show: showSnapshot(id, 'scheduled', 3) } }), `provision-${tag}`);
        const broadcasts: string[] = []; // went live in this cycle: the latency-matched baseline posts to their chats
        const offStarted = sim.onEffect((e) => {
          if (e.type === 'show.started') broadcasts.push(e.externalId);
        });
        const live = await oursPhase(ids, 'show.started', (id) => ({ type: 'show.live', occurredAt: at(1), data: { show: showSnapshot(id, 'live', 3) } }), `golive-${tag}`);
        offStarted();
        const pin = await oursPhase(ids, 'message.posted', (id) => ({ type: 'product.pinned', occurredAt: at(2), data: { showId: id, productId: 'p1' } }), `pin-${tag}`);
        const bare2 = await barePhase(bareQueues, noopJobs, 'noop', bareNoop.proc.pid);
        return { bare1, provision, live, pin, bare2, broadcasts };
      };

      ctx.log(`sync: warm-up (${p.warmup} shows, discarded)`);
      await cycle('warm', p.warmup);
      for (const latencyMs of p.latencies) {
        await liftLimits(sim, latencyMs);
        ctx.log(`sync: ${p.jobs} shows, sim latency ${latencyMs} ms`);
        const { bare1, provision, live, pin, bare2, broadcasts } = await cycle(`l${latencyMs}`, p.jobs);
        const avgCpu = Object.fromEntries(Object.keys(bare1.cpu).map((k) => [k, round(((bare1.cpu[k] ?? 0) + (bare2.cpu[k] ?? 0)) / 2, 3)]));
        const bare = { jobs: bare1.jobs, seconds: round((bare1.seconds + bare2.seconds) / 2, 3), perSecond: round((bare1.perSecond + bare2.perSecond) / 2, 0), cpu: avgCpu };
        const bareM = m(bare, { runs: [bare1.perSecond, bare2.perSecond] });
        const label = `sim latency ${latencyMs} ms`;
        const noopLabel = `bare BullMQ no-op worker (${shards} queues × concurrency ${concurrency})`;
        rows.push(
          ratioRow({ scenario: `provision (3 API calls), ${label}`, unit: 'syncs/s', ours: m(provision), baseline: bareM, baselineLabel: noopLabel, ratioOf: 'throughput' }),
          ratioRow({ scenario: `go live (2 API calls), ${label}`, unit: 'syncs/s', ours: m(live), baseline: bareM, baselineLabel: noopLabel, ratioOf: 'throughput' }),
          ratioRow({ scenario: `pin (1 API call), ${label}`, unit: 'syncs/s', ours: m(pin), baseline: bareM, baselineLabel: noopLabel, ratioOf: 'throughput' }),
        );
        {
          // latency-matched baseline: the same number of chat messages, posted by a bare worker
          const chatIds = await sim.liveChatIds(broadcasts);
          const chats = Object.fromEntries(chatIds);
          const chatNames = Array.from({ length: shards }, (_, i) => `bare-chat-${latencyMs}-${i}`);
          const chatWorker = await startBareWorker({ redisUrl: redis.url, store: redis, queues: chatNames, prefix: 'bare', concurrency, mode: 'chat', simBase: sim.youtubeBase, chats }, ctx.profileDir);
          try {
            const chatQueues = chatNames.map(bareQueue);
            const jobs = Object.keys(chats).map((ext) => ({ name: 'pin', data: { event: { data: { showId: ext, productId: 'p1' } } } }));
            // Warm first (discarded), like our worker, which ran the warm-up cycle: a cold process's
            // first jobs carry its JIT compilation and would flatter the CPU ratio.
            await barePhase(chatQueues, jobs.slice(0, p.warmup), `chat-${latencyMs}-warm`, chatWorker.proc.pid);
            const before = sim.countEffects('message.posted');
            const d = await barePhase(chatQueues, jobs, `chat-${latencyMs}`, chatWorker.proc.pid);
            const got = sim.countEffects('message.posted') - before;
            if (got !== jobs.length) notes.push(`bare chat ${latencyMs} ms: ${got} effects for ${jobs.length} jobs`);
            rows.push(
              ratioRow({
                scenario: `pin (1 API call), ${label}, vs latency-matched baseline`,
                unit: 'syncs/s',
                ours: m(pin),
                baseline: m(d),
                baselineLabel: `bare BullMQ worker posting the chat message (${shards} queues × concurrency ${concurrency})`,
                ratioOf: 'throughput',
                goal: { ratio: 'throughput', min: 0.9, cpu: { process: 'worker', max: 1.3 }, issue: '12' },
              }),
            );
            await Promise.all(chatQueues.map((q) => q.close()));
          } finally {
            await chatWorker.stop();
          }
        }
      }
      await Promise.all(bareQueues.map((q) => q.close()));
      return {
        ...resultHead(this, started),
        setup: {
          jobsPerPhase: p.jobs,
          warmup: `${p.warmup} shows through every phase at latency 0 first (discarded)`,
          simLatenciesMs: p.latencies,
          simLimits: 'quotaPerDay null, requestsPerWindow null, streamActivationMs 0, transitionMs 0',
          appendfsync: 'everysec',
          workers: `child process workers/mirror.ts (production entrypoint), ${shards} YouTube shards × concurrency ${concurrency} (config defaults)`,
          baseline: `child process bench/sut/bare-worker.ts, ${shards} queues × concurrency ${concurrency}; no-op baseline measured before and after our phases (mean)`,
          method: 'pause queues, enqueue N (one per show), resume, time until none waiting/delayed/active (polled every 5 ms)',
        },
        rows,
        notes,
      };
    } finally {
      for (const c of children.reverse()) await c.stop();
      await rt.close();
      await sim.close();
      await redis.destroy();
    }
  },
};
