/**
 * Issue 3 — pin propagation: time from the 202 for a `product.pinned` event to the YouTube
 * simulator accepting the chat message with the tracked link (`message.posted`) for that show, with
 * N shows live at once. The simulator runs in this process and timestamps each effect when it
 * records it (performance.now, same clock as the 202). Syndicast runs as production does: the API
 * (bench/sut/service-api.ts) and the mirror workers (`workers/mirror.ts`) in two child processes;
 * the scheduler (periodic sweep) is not running, so a sync that never gets scheduled shows up as a
 * lost pin instead of a 10 s outlier.
 * Baseline: the bare API (HMAC + queue.add) and a bare BullMQ worker posting the same chat message.
 * Load: each show runs a closed loop — think 0..2×mean, pin the next product, wait for its effect.
 * Also measured unloaded: one show, one pin at a time.
 */
import { performance } from 'node:perf_hooks';
import type { BenchContext, BenchResult, Benchmark, Measure, ResultRow } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { watchJobs, type JobTimes } from './lib/jobwatch.js';
import { cpuMeter } from './lib/machine.js';
import type { Child } from './lib/proc.js';
import { startBenchRedis } from './lib/redis-server.js';
import { AdminClient, benchRuntime, pool, send, serviceEnv, showSnapshot, signedEvent, youtubeQueues } from './lib/service.js';
import { liftLimits, startBenchSim, type BenchSim } from './lib/sim.js';
import { percentile, round, sleep, summarize, until } from './lib/stats.js';
import { startBareApi, startBareWorker, startServiceApi, startServiceWorker } from './lib/systems.js';
import { syncJobId } from '../src/queues/queues.js';

const PARTNER = 'bench';
const EFFECT_TIMEOUT_MS = 30_000;

interface Pin {
  showId: string;
  /** epoch ms (performance.timeOrigin-based) */
  sentAt: number;
  acceptedAt: number;
  effectAt: number;
}

interface PinRun {
  pins: Pin[];
  lost: number;
  rejected: number;
  elapsedS: number;
  /** CPU ms per pin by process */
  cpu: Record<string, number>;
  /** What the service looked like for the first few pins that never showed up. */
  lostDetails: string[];
  jobs: JobTimes[];
}

interface Loop {
  sim: BenchSim;
  apiUrl: string;
  secret: string;
  /** showId → the broadcast id the effects carry */
  shows: Map<string, string>;
  label: string;
  pinsPerShow: number;
  firstProduct: number;
  thinkMeanMs: number;
  maxMs: number;
  pids: Record<string, number | undefined>;
  /** Job add/pick-up times of the queue(s) the pins go through. */
  watch: { redisUrl: string; queues: { name: string; prefix: string }[]; showOf: (data: unknown) => string | undefined };
  /** Called for a pin whose effect never came: a one-line account of that show's state. */
  diagnose?: (showId: string, productId: string) => Promise<string>;
}

const epoch = (t: number): number => performance.timeOrigin + t;

async function pinLoop(o: Loop): Promise<PinRun> {
  const run: PinRun = { pins: [], lost: 0, rejected: 0, elapsedS: 0, cpu: {}, lostDetails: [], jobs: [] };
  const watch = await watchJobs(o.watch.redisUrl, o.watch.queues, o.watch.showOf);
  const meter = cpuMeter(o.pids);
  const waiters = new Map<string, (at: number | undefined) => void>();
  const off = o.sim.onEffect((e, at) => {
    if (e.type !== 'message.posted') return;
    const w = waiters.get(e.externalId);
    if (w) {
      waiters.delete(e.externalId);
      w(at);
    }
  });
  const t0 = performance.now();
  const deadline = Date.now() + o.maxMs;
  // pins happen "now" in the partner's clock; later than the show.live snapshot
  const base = Date.now();
  try {
    await Promise.all(
      [...o.shows].map(async ([showId, ext]) => {
        for (let k = 0; k < o.pinsPerShow && Date.now() < deadline; k++) {
          await sleep(Math.random() * 2 * o.thinkMeanMs);
          const product = o.firstProduct + k;
          let timer: NodeJS.Timeout | undefined;
          const effect = new Promise<number | undefined>((res) => {
            waiters.set(ext, res);
            timer = setTimeout(() => {
              waiters.delete(ext);
              res(undefined);
            }, EFFECT_TIMEOUT_MS);
          });
          const event = { type: 'product.pinned', occurredAt: new Date(base + k * 1000).toISOString(), data: { showId, productId: `p${product}` } };
          const req = signedEvent(o.secret, PARTNER, `${o.label}-${showId}-${k}`, event);
          const tSend = performance.now();
          const status = await send(o.apiUrl, req);
          const t202 = performance.now();
          if (status !== 202) {
            run.rejected++;
            waiters.delete(ext);
            clearTimeout(timer);
            continue;
          }
          const at = await effect;
          clearTimeout(timer);
          if (at === undefined) {
            run.lost++;
            if (o.diagnose && run.lostDetails.length < 5) run.lostDetails.push(await o.diagnose(showId, `p${product}`).catch((e: unknown) => String(e)));
            continue;
          }
          run.pins.push({ showId, sentAt: epoch(tSend), acceptedAt: epoch(t202), effectAt: epoch(at) });
        }
      }),
    );
  } finally {
    off();
  }
  run.elapsedS = (performance.now() - t0) / 1000;
  const n = Math.max(1, run.pins.length);
  run.cpu = Object.fromEntries(Object.entries(meter()).map(([k, v]) => [k, round(v / n, 3)]));
  await sleep(200); // the last `active` lookups
  await watch.close();
  run.jobs = watch.times;
  return run;
}

/** Split each pin at the job that carried it: sent → job added (API) → picked up (queue) → effect (worker). */
function stages(r: PinRun): { api: number[]; queued: number[]; worker: number[] } {
  const byShow = new Map<string, JobTimes[]>();
  for (const j of r.jobs) {
    const list = byShow.get(j.showId) ?? [];
    list.push(j);
    byShow.set(j.showId, list);
  }
  const api: number[] = [];
  const queued: number[] = [];
  const worker: number[] = [];
  for (const p of r.pins) {
    // the job this pin's event added (ms clocks: allow 1 ms of rounding either side)
    const job = byShow.get(p.showId)?.find((j) => j.addedAt >= p.sentAt - 1 && j.addedAt <= p.effectAt + 1 && j.startedAt <= p.effectAt + 1);
    if (!job) continue;
    api.push(Math.max(0, job.addedAt - p.sentAt));
    queued.push(Math.max(0, job.startedAt - job.addedAt));
    worker.push(Math.max(0, p.effectAt - job.startedAt));
  }
  const sort = (xs: number[]): number[] => xs.sort((a, b) => a - b);
  return { api: sort(api), queued: sort(queued), worker: sort(worker) };
}

function measure(r: PinRun): Measure {
  const lat = summarize(r.pins.map((p) => p.effectAt - p.acceptedAt));
  const fromSend = summarize(r.pins.map((p) => p.effectAt - p.sentAt));
  const ingest = summarize(r.pins.map((p) => p.acceptedAt - p.sentAt));
  const st = stages(r);
  return {
    p50: round(lat.p50, 2),
    p99: round(lat.p99, 2),
    count: lat.count,
    cpuMsPerOp: r.cpu,
    breakdownP50: {
      'sent→job added': round(percentile(st.api, 50), 2),
      'added→picked up': round(percentile(st.queued, 50), 2),
      'picked up→effect': round(percentile(st.worker, 50), 2),
      'sent→202': round(ingest.p50, 2),
    },
    extra: {
      effectAfter202: { mean: round(lat.mean, 2), p90: round(lat.p90, 2), max: round(lat.max, 2) },
      effectAfterSend: { p50: round(fromSend.p50, 2), p99: round(fromSend.p99, 2) },
      sendTo202: { p50: round(ingest.p50, 2), p99: round(ingest.p99, 2) },
      sentToJobAdded: { p50: round(percentile(st.api, 50), 2), p99: round(percentile(st.api, 99), 2) },
      addedToPickedUp: { p50: round(percentile(st.queued, 50), 2), p99: round(percentile(st.queued, 99), 2) },
      pickedUpToEffect: { p50: round(percentile(st.worker, 50), 2), p99: round(percentile(st.worker, 99), 2) },
      pinsMatchedToJobs: st.worker.length,
      lost: r.lost,
      lostDetails: r.lostDetails,
      rejected: r.rejected,
      elapsedS: round(r.elapsedS, 1),
      pinsPerSecond: round(r.pins.length / r.elapsedS, 1),
    },
  };
}

export const pinPropagationBench: Benchmark = {
  name: 'pin-propagation',
  title: 'Pin propagation (202 → message.posted on the YouTube simulator)',
  issue: '3',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    const p = ctx.quick
      ? { shows: 50, pinsPerShow: 3, thinkMeanMs: 500, latencies: [0, 20], unloadedPins: 10 }
      : { shows: 200, pinsPerShow: 10, thinkMeanMs: 1000, latencies: [0, 20], unloadedPins: 100 };
    const maxMs = ctx.quick ? 30_000 : 60_000;
    const notes: string[] = [];
    const redis = await startBenchRedis('everysec');
    const sim = await startBenchSim();
    await liftLimits(sim, 0);
    const se = serviceEnv(redis.url);
    const rt = await benchRuntime(se);
    const children: Child[] = [];
    try {
      const api = await startServiceApi(se, ctx.profileDir);
      children.push(api);
      const worker = await startServiceWorker(se, rt, ctx.profileDir);
      children.push(worker);
      const admin = new AdminClient(api.info.url);
      const secret = await admin.createPartner(PARTNER);
      await admin.createYoutubeTarget(PARTNER, 'yt1', sim.youtubeBase);

      // Setup: N shows scheduled, then live, on the simulator (mirrors live).
      ctx.log(`pin-propagation: bringing ${p.shows} shows live`);
      const ids = Array.from({ length: p.shows }, (_, i) => `live-${i}`);
      const products = p.pinsPerShow * p.latencies.length + p.unloadedPins;
      const post = async (id: string, type: 'show.scheduled' | 'show.live', at: string): Promise<void> => {
        const ev = { type, occurredAt: at, data: { show: showSnapshot(id, type === 'show.live' ? 'live' : 'scheduled', products) } };
        const status = await send(api.info.url, signedEvent(secret, PARTNER, `${type}-${id}`, ev));
        if (status !== 202) throw new Error(`${type} ${id}: ${status}`);
      };
      const schedAt = new Date(Date.now() - 120_000).toISOString();
      const liveAt = new Date(Date.now() - 60_000).toISOString();
      await pool(ids, 16, (id) => post(id, 'show.scheduled', schedAt));
      await until('broadcasts created', async () => sim.countEffects('show.created') >= p.shows, 120_000, 50);
      await pool(ids, 16, (id) => post(id, 'show.live', liveAt));
      const shows = new Map<string, string>();
      await until(
        'mirrors live',
        async () => {
          await pool(
            ids.filter((id) => !shows.has(id)),
            16,
            async (id) => {
              const d = await admin.call<{ mirrors: { state: string; externalId: string | null }[] }>('GET', `/v1/partners/${PARTNER}/shows/${id}`);
              const m = d.mirrors[0];
              if (m?.state === 'live' && m.externalId) shows.set(id, m.externalId);
            },
          );
          return shows.size === ids.length;
        },
        120_000,
        200,
      );
      const firstShow = new Map([...shows].slice(0, 1));

      const queues = youtubeQueues(rt);
      const diagnose = async (showId: string, productId: string): Promise<string> => {
        const d = await admin.call<{ mirrors: { state: string; pins: { productId: string; state: string }[] }[] }>('GET', `/v1/partners/${PARTNER}/shows/${showId}`);
        const pin = d.mirrors[0]?.pins.find((x) => x.productId === productId);
        const version = await rt.shows.version(PARTNER, showId);
        const mirror = await rt.shows.getMirror(PARTNER, showId, 'yt1');
        const jobs: string[] = [];
        for (const q of queues) {
          const id = await q.getDeduplicationJobId(syncJobId({ partnerId: PARTNER, showId, targetId: 'yt1' }));
          if (!id) continue;
          const job = await q.getJob(id);
          jobs.push(`${q.name}:${id}:${job ? await job.getState() : 'gone'}`);
        }
        return `${showId}/${productId}: pin ${pin?.state ?? 'absent'}, desired v${version}, mirror synced v${mirror?.syncedVersion ?? '?'}, sync job ${jobs.join(',') || 'none'}`;
      };
      const oursWatch = {
        redisUrl: redis.url,
        queues: queues.map((q) => ({ name: q.name, prefix: rt.keys.queuePrefix(q.name) })),
        showOf: (d: unknown) => (d as { showId?: string }).showId,
      };
      const bareWatch = { redisUrl: redis.url, queues: [{ name: 'bare-pins', prefix: 'bare' }], showOf: (d: unknown) => (d as { event?: { data?: { showId?: string } } }).event?.data?.showId };

      type Scenario = { key: string; label: string; latencyMs: number; shows: Map<string, string>; pins: number; firstProduct: number; thinkMeanMs: number };
      const scenarios: Scenario[] = [
        { key: 'unloaded', label: `1 show, one pin at a time, sim latency 0 ms`, latencyMs: 0, shows: firstShow, pins: p.unloadedPins, firstProduct: 1 + p.pinsPerShow * p.latencies.length, thinkMeanMs: 50 },
        ...p.latencies.map((latencyMs, li) => ({
          key: `l${latencyMs}`,
          label: `${p.shows} live shows, ~${Math.round(p.shows / (p.thinkMeanMs / 1000))} pins/s offered, sim latency ${latencyMs} ms`,
          latencyMs,
          shows,
          pins: p.pinsPerShow,
          firstProduct: 1 + li * p.pinsPerShow,
          thinkMeanMs: p.thinkMeanMs,
        })),
      ];
      const runs: Record<string, { ours?: PinRun; bare?: PinRun }> = {};
      const pidsOurs = { api: api.proc.pid, worker: worker.proc.pid, redis: redis.pid };
      for (const sc of scenarios) {
        await liftLimits(sim, sc.latencyMs);
        ctx.log(`  ours: ${sc.label}`);
        const r = await pinLoop({ sim, apiUrl: api.info.url, secret, shows: sc.shows, label: `ours-${sc.key}`, pinsPerShow: sc.pins, firstProduct: sc.firstProduct, thinkMeanMs: sc.thinkMeanMs, maxMs, pids: pidsOurs, watch: oursWatch, diagnose });
        runs[sc.key] = { ours: r };
        const m = measure(r);
        ctx.log(`  ours: p50 ${m.p50} ms p99 ${m.p99} ms (${m.count} pins, ${r.lost} lost) ${JSON.stringify(m.breakdownP50)} cpu/pin ${JSON.stringify(r.cpu)}`);
      }
      await worker.stop();
      await api.stop();

      // Baseline on the same live broadcasts.
      const chatIds = await sim.liveChatIds([...shows.values()]);
      const chats: Record<string, string> = {};
      for (const [showId, ext] of shows) {
        const c = chatIds.get(ext);
        if (c) chats[showId] = c;
      }
      const concurrency = rt.config.syncShards * rt.config.workerConcurrency;
      const bareApi = await startBareApi({ redisUrl: redis.url, secret, queue: 'bare-pins', prefix: 'bare' }, ctx.profileDir);
      children.push(bareApi);
      const bareWorker = await startBareWorker({ redisUrl: redis.url, queues: ['bare-pins'], prefix: 'bare', concurrency, mode: 'chat', simBase: sim.youtubeBase, chats }, ctx.profileDir);
      children.push(bareWorker);
      const pidsBare = { api: bareApi.proc.pid, worker: bareWorker.proc.pid, redis: redis.pid };
      for (const sc of scenarios) {
        await liftLimits(sim, sc.latencyMs);
        ctx.log(`  bare: ${sc.label}`);
        const r = await pinLoop({ sim, apiUrl: bareApi.info.url, secret, shows: sc.shows, label: `bare-${sc.key}`, pinsPerShow: sc.pins, firstProduct: sc.firstProduct, thinkMeanMs: sc.thinkMeanMs, maxMs, pids: pidsBare, watch: bareWatch });
        (runs[sc.key] ??= {}).bare = r;
        const m = measure(r);
        ctx.log(`  bare: p50 ${m.p50} ms p99 ${m.p99} ms (${m.count} pins, ${r.lost} lost) ${JSON.stringify(m.breakdownP50)} cpu/pin ${JSON.stringify(r.cpu)}`);
      }

      const rows: ResultRow[] = [];
      for (const sc of scenarios) {
        const r = runs[sc.key];
        if (!r?.ours || !r.bare) continue;
        for (const [who, run] of [['ours', r.ours], ['bare', r.bare]] as const) {
          if (run.lost || run.rejected) {
            notes.push(`${sc.label}, ${who}: ${run.lost} of ${run.lost + run.pins.length} pins got no effect within ${EFFECT_TIMEOUT_MS / 1000} s, ${run.rejected} events not accepted${run.lostDetails.length ? ` — ${run.lostDetails.join('; ')}` : ''}`);
          }
        }
        rows.push(ratioRow({ scenario: sc.label, unit: 'pins/s', ours: measure(r.ours), baseline: measure(r.bare), baselineLabel: 'bare API (HMAC + add) → bare BullMQ worker posting the chat message', ratioOf: 'p50' }));
      }
      return {
        ...resultHead(this, started),
        setup: {
          shows: p.shows,
          pinsPerShow: p.pinsPerShow,
          thinkTimeMs: `uniform 0..${2 * p.thinkMeanMs} between a pin's effect and the next pin of the same show`,
          unloaded: `${p.unloadedPins} pins on one show, think 0..100 ms`,
          simLatenciesMs: p.latencies,
          simLimits: 'quotaPerDay null, requestsPerWindow null, streamActivationMs 0, transitionMs 0',
          appendfsync: 'everysec',
          workers: `child process workers/mirror.ts (production entrypoint), ${rt.config.syncShards} YouTube shards × concurrency ${rt.config.workerConcurrency}; scheduler/sweep not running`,
          api: 'child process bench/sut/service-api.ts (createRuntime + buildApp, logger off)',
          baselineWorker: `child process bench/sut/bare-worker.ts, one queue, concurrency ${concurrency}, one access token fetched up front`,
          measured:
            'effect − 202 received (p50/p99). Stages (ms clocks): request sent → sync job added (API) → picked up by a worker (BullMQ timestamp/processedOn via QueueEvents) → effect; the worker usually has the job before the 202 reaches the client',
          effectClock: 'in-process simulator, performance.now() when the effect is recorded',
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
