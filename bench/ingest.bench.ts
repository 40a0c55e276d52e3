/**
 * Issue 3 — ingest: signed events/s and latency of POST /v1/partners/{id}/events against a bare
 * Fastify route that verifies the same Standard Webhooks HMAC and does one BullMQ queue.add.
 * Same load generator (autocannon in this process), same connections and duration, the same kind of
 * pre-signed requests (distinct webhook-ids, one new show per event so every event schedules one
 * sync on the partner's one enabled YouTube target; mirror workers are not running, the sync
 * dispatcher runs in its own process as part of ours and its CPU is reported: on one Redis with
 * INGEST_SYNC_JOBS=inline, the default, the ingest makes the jobs and the dispatcher is idle; on the
 * cluster it makes them). Once per appendfsync
 * mode, each with its own redis-server; on the cluster (ctx.topology, bench/lib/topology.ts) once,
 * everysec, the bare route's queue hash-tagged.
 */
import type { BenchContext, BenchResult, Benchmark, ResultRow } from './lib/bench.js';
import { ratioRow, resultHead } from './lib/bench.js';
import { cpuPerOp, measureLoad, runLoad, type LoadRun } from './lib/load.js';
import { cpuMeter, fsyncProbe } from './lib/machine.js';
import type { Appendfsync } from './lib/redis-server.js';
import { AdminClient, benchRuntime, signedEvent, youtubeQueues, type SignedRequest } from './lib/service.js';
import { round } from './lib/stats.js';
import { queuedJobs, startBareApi, startServiceApi, startServiceDispatcher } from './lib/systems.js';
import { infoTotals, startBenchStore, storeServiceEnv } from './lib/topology.js';

const PARTNER = 'bench';
/**
 * Requests per second we never expect to exceed on 2 cores; sizes the pre-signed pool (= the request
 * cap). 12,000 until 2026-12-01, when the bare route reached 20,000 events/s on a quiet machine and
 * hit the cap, ending its run early (its rate was right, but over a shorter window than ours).
 */
const MAX_RPS = 30_000;

function pool(secret: string, tag: string, n: number): () => SignedRequest {
  const occurredAt = new Date().toISOString();
  const ts = Math.floor(Date.now() / 1000);
  const reqs: SignedRequest[] = new Array<SignedRequest>(n);
  for (let i = 0; i < n; i++) {
    const event = { type: 'product.pinned', occurredAt, data: { showId: `${tag}-s${i}`, productId: 'p1' } };
    reqs[i] = signedEvent(secret, PARTNER, `msg_${tag}_${i}`, event, ts);
  }
  let next = 0;
  return () => {
    const r = reqs[next++];
    if (!r) throw new Error('pre-signed pool exhausted (raise MAX_RPS)');
    return r;
  };
}

export const ingestBench: Benchmark = {
  name: 'ingest',
  title: 'Signed partner events (POST /v1/partners/{id}/events)',
  issue: '3',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const started = Date.now();
    const p = ctx.quick ? { connections: 32, warmupS: 1, durationS: 3, rounds: 1 } : { connections: 32, warmupS: 5, durationS: 10, rounds: 2 };
    const rows: ResultRow[] = [];
    const notes: string[] = [];
    const setup: Record<string, unknown> = {
      ...p,
      loadGenerator: 'autocannon (programmatic) in the bench process; each system under test in its own process',
      event: 'product.pinned for a new show each time (distinct webhook-id), ~120 bytes',
      target: 'one enabled YouTube target; mirror workers not running, so every event leaves one waiting sync job',
      dispatcher:
        "ours: the sync dispatcher (role 'dispatch', part of every worker process) in its own process; on one Redis the ingest script makes the sync jobs itself (INGEST_SYNC_JOBS=inline, the default) and the dispatcher only waits, on the cluster it turns the events' dispatch entries into sync jobs (addBulk) during the load; its CPU per event is the 'dispatch' column, in the API's total no more",
      order: 'warm-up of both (discarded), then rounds alternating which system goes first',
    };
    // the cluster's nodes run everysec only
    for (const mode of (ctx.topology === 'cluster' ? ['everysec'] : ['everysec', 'always']) as Appendfsync[]) {
      ctx.log(`ingest: appendfsync ${mode}`);
      const redis = await startBenchStore(ctx.topology, mode);
      setup[`fsync_${mode}`] = fsyncProbe(redis.dir);
      const se = storeServiceEnv(redis);
      const rt = await benchRuntime(se);
      const ours = await startServiceApi(se, ctx.profileDir);
      const dispatcher = await startServiceDispatcher(se, ctx.profileDir);
      let bare: Awaited<ReturnType<typeof startBareApi>> | undefined;
      try {
        const admin = new AdminClient(ours.info.url);
        const secret = await admin.createPartner(PARTNER);
        // workers are not running: the target's API is never called
        await admin.createYoutubeTarget(PARTNER, 'yt1', 'http://127.0.0.1:9/youtube', { verify: false });
        bare = await startBareApi({ redisUrl: redis.url, store: redis, secret, queue: 'bare-ingest', prefix: 'bare' }, ctx.profileDir);
        const systems = { ours: ours.info.url, bare: bare.info.url };
        let seq = 0;
        const pids = { ours: ours.proc.pid, bare: bare.proc.pid };
        const dispatchPid = dispatcher.proc.pid;
        const load = async (who: 'ours' | 'bare', durationS: number): Promise<LoadRun> => {
          const max = MAX_RPS * durationS;
          const next = pool(secret, `${mode}-${who}-${++seq}`, max);
          const meter = cpuMeter({ api: pids[who], redis: redis.pids, loadgen: process.pid, ...(who === 'ours' ? { dispatch: dispatchPid } : {}) });
          const r = { ...(await runLoad({ url: systems[who], connections: p.connections, durationS, maxRequests: max, next })), cpu: meter() };
          if (r.ok >= max) notes.push(`${mode}/${who}: hit the request cap of ${max}; raise MAX_RPS`);
          ctx.log(`  ${who.padEnd(4)} ${round(r.rps, 0)} events/s  p50 ${r.p50} ms  p99 ${r.p99} ms  cpu/event ${JSON.stringify(cpuPerOp([r]))}  ${JSON.stringify(r.statusCodes)}${r.errors ? ` errors ${r.errors}` : ''}`);
          return r;
        };
        await load('bare', p.warmupS);
        const oursWarm = await load('ours', p.warmupS);
        const runs = { ours: [] as LoadRun[], bare: [] as LoadRun[] };
        for (let round_ = 0; round_ < p.rounds; round_++) {
          const order: ('ours' | 'bare')[] = round_ % 2 === 0 ? ['bare', 'ours'] : ['ours', 'bare'];
          for (const who of order) runs[who].push(await load(who, p.durationS));
        }
        // every accepted event must have left exactly one sync job behind
        // (autocannon does not count the responses still in flight when a run ends: up to `connections` per run)
        const oursRuns = [oursWarm, ...runs.ours];
        const accepted = oursRuns.reduce((n, r) => n + (r.statusCodes['202'] ?? 0), 0);
        // the dispatcher turns the last entries into jobs after the load ended
        const drainBy = Date.now() + 30_000;
        while ((await rt.redis.xlen(rt.keys.syncDispatch())) > 0 && Date.now() < drainBy) await new Promise((r) => setTimeout(r, 50));
        const jobs = await queuedJobs(youtubeQueues(rt));
        if (jobs < accepted || jobs > accepted + p.connections * oursRuns.length) notes.push(`${mode}: ${accepted} events accepted but ${jobs} sync jobs waiting`);
        const delayed = (await infoTotals(redis, ['aof_delayed_fsync']))['aof_delayed_fsync'];
        rows.push(
          ratioRow({
            scenario: `appendfsync ${mode}`,
            unit: 'events/s',
            ours: { ...measureLoad(runs.ours), extra: { ...measureLoad(runs.ours).extra, syncJobsWaiting: jobs, aofDelayedFsync: Number(delayed ?? 0) } },
            baseline: measureLoad(runs.bare),
            baselineLabel: 'bare Fastify: HMAC verify + 1 BullMQ add',
            ratioOf: 'throughput',
            goal: { ratio: 'throughput', min: 1.0 },
          }),
        );
      } finally {
        await bare?.stop();
        await dispatcher.stop();
        await ours.stop();
        await rt.close();
        await redis.destroy();
      }
    }
    return { ...resultHead(this, started), setup, rows, notes };
  },
};
