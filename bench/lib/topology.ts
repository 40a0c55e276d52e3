/**
 * Issue 12 §8 — every ratio benchmark runs on one Redis and on a Redis Cluster, in the same run.
 *
 *   single   one redis-server (bench/lib/redis-server.ts: AOF, appendfsync as asked, .data/bench)
 *   cluster  3 masters + 3 replicas (test/helpers/redis-cluster.ts: AOF everysec, under .data/bench);
 *            Syndicast gets REDIS_CLUSTER_NODES and its default REDIS_WAIT_REPLICAS (auto: WAIT 1 before
 *            each acknowledgement, as production runs a cluster with replicas)
 *
 * BENCH_TOPOLOGY=single|cluster|both (default both) picks which ones `npm run bench` runs.
 *
 * The bare baselines run on the same topology: on a cluster their BullMQ queues get one hash tag per
 * queue (`bare:{q:<name>}`, as Syndicast's Keys.queuePrefix does), so each queue's keys share a slot
 * and different queues spread over the masters.
 */
import { mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { startCluster } from '../../test/helpers/redis-cluster.js';
import { trackPids } from './proc.js';
import type { BenchContext, BenchResult, Benchmark, Topology } from './bench.js';
import { BENCH_DATA_ROOT, startBenchRedis, type Appendfsync } from './redis-server.js';
import { serviceEnv, type ServiceEnv } from './service.js';

export type { Topology } from './bench.js';


/** The topologies this run covers (BENCH_TOPOLOGY). */
export function benchTopologies(): Topology[] {
  const v = (process.env.BENCH_TOPOLOGY ?? 'both').trim();
  if (v === 'single' || v === 'cluster') return [v];
  if (v === 'both' || v === '') return ['single', 'cluster'];
  throw new Error(`BENCH_TOPOLOGY must be single, cluster or both (got ${v})`);
}

/** What a scenario says about where it ran. */
export function topologyLabel(t: Topology): string {
  return t === 'single' ? 'one Redis' : 'cluster 3+3 (WAIT 1)';
}

export interface BenchStore {
  topology: Topology;
  /** A node to connect to: the one server, or the cluster's first seed. */
  url: string;
  /** `host:port,...` of every cluster node; undefined on one Redis. */
  clusterNodes: string | undefined;
  /** appendfsync of every redis-server (the cluster helper runs everysec). */
  appendfsync: Appendfsync;
  /** redis-server process ids (one, or all six of the cluster: replicas work for every write too). */
  pids: (number | undefined)[];
  /** Ports of the servers holding data: the one server, or the cluster's masters. */
  masters(): Promise<number[]>;
  /** A data dir (fsync probe). */
  dir: string;
  /** redis-server process ids by role (one Redis: a master without replicas). */
  pidsByRole(): Promise<{ masters: (number | undefined)[]; replicas: (number | undefined)[] }>;
  destroy(): Promise<void>;
}

/** One redis-server or a 3+3 cluster, each private to the benchmark. */
export async function startBenchStore(topology: Topology, appendfsync: Appendfsync = 'everysec'): Promise<BenchStore> {
  if (topology === 'single') {
    const r = await startBenchRedis(appendfsync);
    return { topology, url: r.url, clusterNodes: undefined, appendfsync, pids: [r.pid], masters: () => Promise.resolve([r.port]), dir: r.dir, pidsByRole: () => Promise.resolve({ masters: [r.pid], replicas: [] }), destroy: () => r.destroy() };
  }
  if (appendfsync !== 'everysec') throw new Error('the bench cluster runs appendfsync everysec only');
  mkdirSync(BENCH_DATA_ROOT, { recursive: true });
  const c = await startCluster({ parentDir: BENCH_DATA_ROOT });
  trackPids(() => c.nodes.map((n) => n.pid()));
  return {
    topology,
    url: c.url,
    clusterNodes: c.clusterNodes,
    appendfsync,
    pids: c.nodes.map((n) => n.pid()),
    masters: async () => (await c.roles()).masters,
    dir: c.nodes[0]!.dir,
    pidsByRole: async () => {
      const roles = await c.roles();
      const pidOf = (port: number): number | undefined => c.nodes.find((n) => n.port === port)?.pid();
      return { masters: roles.masters.map(pidOf), replicas: roles.replicas.map(pidOf) };
    },
    destroy: () => c.destroy(),
  };
}

/** Syndicast's environment on this store: REDIS_URL, or REDIS_CLUSTER_NODES on the cluster. */
export function storeServiceEnv(store: BenchStore, extra: Record<string, string> = {}): ServiceEnv {
  const se = serviceEnv(store.url, extra);
  if (store.clusterNodes) {
    delete se.env['REDIS_URL'];
    se.env['REDIS_CLUSTER_NODES'] = store.clusterNodes;
  }
  return se;
}

/** Environment of the bare baselines (bench/sut/bare-*.ts) for this store. */
export function bareStoreEnv(store: BenchStore): Record<string, string> {
  return store.clusterNodes ? { BARE_REDIS_CLUSTER_NODES: store.clusterNodes } : { BARE_REDIS_URL: store.url };
}

/** The BullMQ prefix of a bare queue: hash-tagged per queue on a cluster (BullMQ's keys of one queue must share a slot). */
export function bareQueuePrefix(prefix: string, queue: string, cluster: boolean): string {
  return cluster ? `${prefix}:{q:${queue}}` : prefix;
}

/** INFO counters summed over the store's data-holding servers (commands, bytes, memory). */
export async function infoTotals(store: BenchStore, fields: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.fromEntries(fields.map((f) => [f, 0]));
  for (const port of await store.masters()) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const info = await c.info();
      for (const f of fields) out[f]! += Number(new RegExp(`^${f}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    } finally {
      c.disconnect();
    }
  }
  return out;
}

/**
 * A benchmark that runs once per topology of this run (ctx.topology), as one result: each row's
 * scenario and each note start with where it ran (`one Redis: …`, `cluster 3+3 (WAIT 1): …`). A
 * topology that fails leaves a note (and the rows of the others); only when every one fails does
 * the benchmark fail.
 */
export function acrossTopologies(b: Benchmark): Benchmark {
  return {
    name: b.name,
    title: b.title,
    issue: b.issue,
    async run(ctx: BenchContext): Promise<BenchResult> {
      const started = Date.now();
      const results: { topology: Topology; r: BenchResult }[] = [];
      const failures: { topology: Topology; err: unknown }[] = [];
      for (const topology of benchTopologies()) {
        ctx.log(`${b.name} on ${topologyLabel(topology)}`);
        try {
          results.push({ topology, r: await b.run({ ...ctx, topology }) });
        } catch (err) {
          ctx.log(`   ${b.name} on ${topologyLabel(topology)} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          failures.push({ topology, err });
        }
      }
      const first = results[0];
      if (!first) throw failures[0]?.err ?? new Error(`${b.name}: no topology selected`);
      const label = (t: Topology, s: string): string => `${topologyLabel(t)}: ${s}`;
      const setup: Record<string, unknown> = { ...first.r.setup };
      for (const { topology, r } of results.slice(1)) {
        // what differs on the other topology (counts and durations are the same code path)
        for (const [k, v] of Object.entries(r.setup)) if (JSON.stringify(setup[k]) !== JSON.stringify(v)) setup[`${k} (${topology})`] = v;
      }
      setup['topologies'] = `${results.map((x) => topologyLabel(x.topology)).join(' and ')}, one after the other, each with its own Redis and its own bare baseline on the same topology; ${TOPOLOGY_SETUP}`;
      return {
        ...first.r,
        startedAt: new Date(started).toISOString(),
        durationS: Math.round((Date.now() - started) / 100) / 10,
        setup,
        rows: results.flatMap(({ topology, r }) => r.rows.map((row) => ({ ...row, scenario: label(topology, row.scenario) }))),
        notes: [
          ...results.flatMap(({ topology, r }) => r.notes.map((n) => label(topology, n))),
          ...failures.map(({ topology, err }) => label(topology, `FAILED, no rows: ${err instanceof Error ? err.message : String(err)}`)),
        ],
        ...(failures.length ? { failures: failures.map(({ topology }) => topology) } : {}),
      };
    },
  };
}

export const TOPOLOGY_SETUP =
  'cluster: 3 masters + 3 replicas (test/helpers/redis-cluster.ts, appendfsync everysec, data under .data/bench), Syndicast with REDIS_CLUSTER_NODES and its default REDIS_WAIT_REPLICAS=auto (WAIT 1 before acknowledging), bare BullMQ queues hash-tagged per queue (bare:{q:<name>}); CPU of "redis" is the sum over all six redis-servers';
